//! The real binary: configured from the environment, stopped gracefully by SIGTERM.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// Starts `serve` on a free port and returns the child and its port, read from the
/// JSON "Listening" log line.
fn start_server() -> (std::process::Child, u16) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_{{project-name}}"));
    command
        .env("APP_HTTP__PORT", "0")
        .env("APP_DATABASE__URL", "embedded://memory")
        .env("APP_TELEMETRY__FORMAT", "json")
        .env("APP_TELEMETRY__FILTER", "info")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
{%- if uses_redis %}
    command.env("APP_REDIS__URL", crate::redis_server::url());
{%- endif %}
{%- if email %}
    command.env("APP_MAIL__FILE_DIR", std::env::temp_dir().join("shutdown-test-mail"));
{%- endif %}
    let mut child = command.spawn().expect("Failed to start the binary");
    let stdout = BufReader::new(child.stdout.take().unwrap());
    for line in stdout.lines() {
        let line = line.unwrap();
        let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if event["message"] == "Listening" {
            let port = event["port"].as_u64().expect("no port in the log line");
            return (child, u16::try_from(port).unwrap());
        }
    }
    let status = child.wait().expect("Failed to reap the server");
    panic!("the server exited ({status}) before listening");
}

#[tokio::test]
async fn sigterm_stops_the_server_cleanly() {
    let (mut child, port) = start_server();
    let address = format!("http://127.0.0.1:{port}");
    let live = reqwest::get(format!("{address}/health/live")).await.unwrap();
    assert_eq!(live.status(), 200);

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still running 10 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    assert!(status.success(), "exited with {status}");
    assert!(reqwest::get(format!("{address}/health/live")).await.is_err());
}
