//! The real binary: configured from the environment, stopped gracefully by SIGTERM.

use std::{
    collections::{HashMap, VecDeque},
    io::{BufRead, BufReader},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{LazyLock, Mutex},
    time::{Duration, Instant},
};

/// How long a binary may take to stop after SIGTERM: its own limits (the HTTP server's
/// and the worker's drain) are 30 s, so a longer wait is a hang.
const STOP_LIMIT: Duration = Duration::from_secs(30);

/// The lines each started binary logged last, by process id: one that does not stop
/// shows how far it got.
static LAST_LINES: LazyLock<Mutex<HashMap<u32, VecDeque<String>>>> =
    LazyLock::new(Mutex::default);
const LINES_KEPT: usize = 20;

/// The binary with `args`, JSON logs on a piped stdout, the test{% if uses_redis %} Redis and{% endif %} store, and
/// metrics off (on a free port when a test turns them on).
pub fn binary(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_{{project-name}}"));
    command
        .args(args)
        .env("APP_DATABASE__URL", "embedded://memory")
        .env("APP_TELEMETRY__FORMAT", "json")
        .env("APP_TELEMETRY__FILTER", "info")
        .env("APP_METRICS__ENABLED", "false")
        .env("APP_METRICS__PORT", "0")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
{%- if uses_redis %}
    command.env("APP_REDIS__URL", crate::redis_server::url());
{%- endif %}
{%- if email %}
    command.env("APP_MAIL__FILE_DIR", std::env::temp_dir().join("shutdown-test-mail"));
{%- endif %}
    command
}

/// Starts `command`, a `serve`, and waits until it listens; returns it and its base URL.
pub fn serve(command: &mut Command) -> (Child, String) {
    let (child, listening) = start_until_logged(command, "Listening");
    let port = listening["port"].as_u64().expect("no port in the log line");
    (child, format!("http://127.0.0.1:{port}"))
}

/// Starts `command` and waits for its log line with `message`, which it returns.
pub fn start_until_logged(command: &mut Command, message: &str) -> (Child, serde_json::Value) {
    let (child, mut events) = start_until_all_logged(command, &[message]);
    (child, events.remove(0))
}

/// Starts `command` and waits until it has logged a line with each of `messages`, in
/// any order; returns those lines in the order of `messages`.
pub fn start_until_all_logged(
    command: &mut Command,
    messages: &[&str],
) -> (Child, Vec<serde_json::Value>) {
    let mut child = command.spawn().expect("Failed to start the binary");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut events = vec![serde_json::Value::Null; messages.len()];
    for line in lines.by_ref() {
        let event: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap_or_default();
        if let Some(index) = messages.iter().position(|message| event["message"] == *message) {
            events[index] = event;
        }
        if events.iter().all(|event| !event.is_null()) {
            let pid = child.id();
            std::thread::spawn(move || keep_last_lines(pid, lines));
            return (child, events);
        }
    }
    let status = child.wait().expect("Failed to reap the binary");
    panic!("the binary exited ({status}) before logging all of {messages:?}");
}

/// Reads the binary's log to its end, keeping the last [`LINES_KEPT`] lines.
fn keep_last_lines(pid: u32, lines: impl Iterator<Item = std::io::Result<String>>) {
    for line in lines.map_while(Result::ok) {
        let mut kept = LAST_LINES.lock().unwrap();
        let last = kept.entry(pid).or_default();
        if last.len() == LINES_KEPT {
            last.pop_front();
        }
        last.push_back(line);
    }
}

/// Sends SIGTERM and waits up to [`STOP_LIMIT`] for the exit; a binary still running
/// then is killed and its last log lines are shown.
pub async fn terminate(child: &mut Child) -> ExitStatus {
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            LAST_LINES.lock().unwrap().remove(&child.id());
            return status;
        }
        if started.elapsed() > STOP_LIMIT {
            let _ = child.kill();
            let last = LAST_LINES.lock().unwrap().remove(&child.id()).unwrap_or_default();
            panic!(
                "still running {STOP_LIMIT:?} after SIGTERM; it logged last:\n{}",
                Vec::from(last).join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn sigterm_stops_the_server_cleanly() {
    let (mut child, address) = serve(binary(&["serve"]).env("APP_HTTP__PORT", "0"));
    let live = reqwest::get(format!("{address}/health/live")).await.unwrap();
    assert_eq!(live.status(), 200);

    let status = terminate(&mut child).await;

    assert!(status.success(), "exited with {status}");
    assert!(reqwest::get(format!("{address}/health/live")).await.is_err());
}
