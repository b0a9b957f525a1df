//! Worker processes: a worker killed mid-job, and the real `worker` command.

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use {{crate_name}}::jobs::{Job, Jobs};

use crate::{
    jobs::{TestJob, TestQueue, eventually, fast_settings, now_ms, redis_under, unique_prefix},
    shutdown::{binary, start_until_logged, terminate},
};

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

#[tokio::test]
async fn the_worker_command_runs_jobs_and_stops_on_sigterm() {
    let prefix = unique_prefix();
    let redis = redis_under(crate::redis_server::url(), &prefix).await;
    let jobs = Jobs::connect(&redis, &fast_settings());
    let (mut child, _) = start_until_logged(
        binary(&["worker"]).env("APP_REDIS__KEY_PREFIX", &prefix),
        "Worker started",
    );

    jobs.enqueue(Job::PurgeFinishedJobs).await.unwrap();
    eventually("the worker to run the jobs", Duration::from_secs(10), || async {
        let stats = jobs.stats().await.unwrap();
        stats.queued == 0 && stats.running == 0 && stats.done >= 1
    })
    .await;

    let status = terminate(&mut child).await;
    assert!(status.success(), "exited with {status}");
    assert_eq!(jobs.stats().await.unwrap().workers, 0, "unregistered on the way out");
}

#[tokio::test]
async fn the_jobs_commands_count_list_and_retry_dead_jobs() {
    let prefix = unique_prefix();
    let redis = redis_under(crate::redis_server::url(), &prefix).await;
    let settings = fast_settings();
    let jobs = Jobs::connect(&redis, &settings);
    jobs.enqueue(Job::PurgeFinishedJobs).await.unwrap();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let failing = |_: Job| async { anyhow::bail!("the purge is broken") };
    let worker = tokio::spawn({
        let (jobs, settings) = (jobs.clone(), settings.clone());
        async move { {{crate_name}}::jobs::worker::run(jobs, &settings, failing, shutdown).await }
    });
    eventually("the job to die", Duration::from_secs(10), || async {
        jobs.stats().await.unwrap().dead == 1
    })
    .await;
    stop.send(true).unwrap();
    worker.await.unwrap().unwrap();
    let command = |args: &[&str]| {
        let output = binary(args)
            .env("APP_REDIS__KEY_PREFIX", &prefix)
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap()
    };

    let stats: serde_json::Value = serde_json::from_str(&command(&["jobs", "stats"])).unwrap();
    let dead = command(&["jobs", "dead"]);
    let retried = command(&["jobs", "retry", "--all"]);

    assert_eq!(stats["dead"], 1, "{stats}");
    let listed: serde_json::Value = serde_json::from_str(dead.trim()).unwrap();
    assert_eq!(listed["attempts"], 3, "{listed}");
    assert!(listed["error"].as_str().unwrap().contains("the purge is broken"));
    assert!(retried.contains(listed["id"].as_str().unwrap()), "{retried}");
    let after = jobs.stats().await.unwrap();
    assert_eq!((after.dead, after.queued), (0, 1), "{after:?}");
}
