//! Worker processes: a worker killed mid-job, and the real `worker` command.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use {{crate_name}}::{
    jobs::{Job, Jobs},
    redis::{Redis, RedisSettings},
};

use crate::jobs::{TestJob, TestQueue, eventually, fast_settings, now_ms, unique_prefix};

const CHILD_PREFIX: &str = "JOBS_TEST_CHILD_PREFIX";
const CHILD_REDIS: &str = "JOBS_TEST_CHILD_REDIS";

/// Not a test of its own: the body of the child process that
/// `a_job_whose_worker_is_killed_is_run_again_by_another` starts and kills.
#[tokio::test]
#[ignore = "runs only as a child of another test"]
async fn child_worker() {
    let (Ok(prefix), Ok(url)) = (std::env::var(CHILD_PREFIX), std::env::var(CHILD_REDIS)) else {
        return;
    };
    let test = TestQueue::on(&url, &prefix).await;
    let (_stop, worker) = test.start_worker();
    let _ = worker.await;
}

/// This test binary again, running only `child_worker` on the queue under `prefix`.
fn spawn_child_worker(prefix: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["jobs_worker::child_worker", "--exact", "--ignored", "--nocapture"])
        .env(CHILD_PREFIX, prefix)
        .env(CHILD_REDIS, crate::redis_server::url())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("Failed to start the child worker")
}

#[tokio::test]
async fn a_job_whose_worker_is_killed_is_run_again_by_another() {
    let prefix = unique_prefix();
    let test = TestQueue::on(crate::redis_server::url(), &prefix).await;
    let mut child = spawn_child_worker(&prefix);
    let job = TestJob { id: 1, sleep_ms: 3000, ..TestJob::default() };
    test.queue.enqueue(job).await.unwrap();
    eventually("the child to start the job", Duration::from_secs(20), || async {
        test.count("starts", 1).await == 1
    })
    .await;

    child.kill().unwrap(); // SIGKILL: no chance to hand the job back
    child.wait().unwrap();
    let killed_at = now_ms();
    let (_stop, _worker) = test.start_worker();

    eventually("another worker to start the job", Duration::from_secs(10), || async {
        test.count("starts", 1).await == 2
    })
    .await;
    let recovery = test.started_at(1).await[1] - killed_at;
    println!("restarted {recovery} ms after the kill, with a 2 s lease");
    assert!(recovery < 5000, "recovered after {recovery} ms");
    eventually("the job to be done", Duration::from_secs(10), || async {
        test.stats().await.done == 1
    })
    .await;
    assert_eq!(test.count("starts", 1).await, 2, "run again once");
    assert_eq!(test.count("effects", 1).await, 1, "the effect applied once");
}

/// Starts the `worker` command on the queue under `prefix` and waits for it to say so.
fn start_worker_command(prefix: &str) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_{{project-name}}"));
    command
        .arg("worker")
        .env("APP_DATABASE__URL", "embedded://memory")
        .env("APP_REDIS__URL", crate::redis_server::url())
        .env("APP_REDIS__KEY_PREFIX", prefix)
        .env("APP_TELEMETRY__FORMAT", "json")
        .env("APP_TELEMETRY__FILTER", "info")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
{%- if email %}
    command.env("APP_MAIL__FILE_DIR", std::env::temp_dir().join("worker-test-mail"));
{%- endif %}
    let mut child = command.spawn().expect("Failed to start the worker");
    let stdout = BufReader::new(child.stdout.take().unwrap());
    for line in stdout.lines() {
        let event: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap_or_default();
        if event["message"] == "Worker started" {
            return child;
        }
    }
    let status = child.wait().expect("Failed to reap the worker");
    panic!("the worker exited ({status}) before starting");
}

#[tokio::test]
async fn the_worker_command_runs_jobs_and_stops_on_sigterm() {
    let prefix = unique_prefix();
    let redis = Redis::connect(&RedisSettings {
        url: crate::redis_server::url().into(),
        key_prefix: prefix.clone(),
        timeout_ms: 2000,
    })
    .await
    .unwrap();
    let jobs = Jobs::connect(&redis, &fast_settings());
    let mut child = start_worker_command(&prefix);

    jobs.enqueue(Job::PurgeFinishedJobs).await.unwrap();
    eventually("the worker to run the jobs", Duration::from_secs(10), || async {
        let stats = jobs.stats().await.unwrap();
        stats.queued == 0 && stats.running == 0 && stats.done >= 1
    })
    .await;

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
        assert!(started.elapsed() < Duration::from_secs(10), "still running 10 s after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exited with {status}");
    assert_eq!(jobs.stats().await.unwrap().workers, 0, "unregistered on the way out");
}
