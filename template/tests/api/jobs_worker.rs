//! Worker processes: workers killed or aborted mid-job, and the real `worker` and `jobs`
//! commands.

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use {{crate_name}}::{
    jobs::{self, Job},
    queue::worker,
};

use crate::{
    queue::{TestJob, TestQueue, eventually, fast_settings, fast_settings_with, redis_under},
    metrics::Metered,
    redis_server::unique_prefix,
    shutdown::{binary, start_until_logged, terminate},
};

const CHILD_PREFIX: &str = "JOBS_TEST_CHILD_PREFIX";
const CHILD_CONCURRENCY: &str = "JOBS_TEST_CHILD_CONCURRENCY";

/// Not a test of its own: the body of the child processes that other tests start and
/// kill. Runs a worker on the queue under `JOBS_TEST_CHILD_PREFIX`.
#[tokio::test]
#[ignore = "runs only as a child of another test"]
async fn child_worker() {
    let Ok(prefix) = std::env::var(CHILD_PREFIX) else {
        return;
    };
    let concurrency = std::env::var(CHILD_CONCURRENCY).map_or(4, |n| n.parse().unwrap());
    let settings = fast_settings_with(&format!("concurrency = {concurrency}\nfetch_batch = {concurrency}"));
    let test = TestQueue::on(crate::redis_server::url(), &prefix, settings).await;
    let (_stop, worker) = test.start_worker();
    let _ = worker.await;
}

/// This test binary again, running only `child_worker` on the queue under `prefix`.
fn spawn_child_worker(prefix: &str, concurrency: usize) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "jobs_worker::child_worker",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_PREFIX, prefix)
        .env(CHILD_CONCURRENCY, concurrency.to_string())
        // The same Redis as this process, a cluster too (see `redis_server`).
        .env("REDIS_URL", crate::redis_server::url())
        .env("TEST_REDIS_CLUSTER", crate::redis_server::url())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("Failed to start the child worker")
}

#[tokio::test]
async fn a_job_whose_worker_is_killed_is_run_again_by_another() {
    let prefix = unique_prefix();
    let test = TestQueue::on(crate::redis_server::url(), &prefix, fast_settings()).await;
    let mut child = spawn_child_worker(&prefix, 4);
    test.queue
        .enqueue(TestJob {
            sleep_ms: 3000,
            ..TestJob::new(1)
        })
        .await
        .unwrap();
    eventually(
        "the child to start the job",
        Duration::from_secs(20),
        || async { test.count("starts", 1).await == 1 },
    )
    .await;

    child.kill().unwrap(); // SIGKILL: no chance to hand the job back
    child.wait().unwrap();
    let killed_at = {{crate_name}}::clock::unix_ms();
    let (_stop, _worker) = test.start_worker();

    eventually(
        "another worker to start the job",
        Duration::from_secs(10),
        || async { test.count("starts", 1).await == 2 },
    )
    .await;
    let recovery = test.times("started_at", 1).await[1] - killed_at;
    println!("restarted {recovery} ms after the kill, with a 2 s lease and 100 ms polls");
    // Within lease + one poll, and room for a loaded machine.
    assert!(
        recovery < 2000 + 100 + 1500,
        "recovered after {recovery} ms"
    );
    test.wait_until_idle(Duration::from_secs(10)).await;
    assert_eq!(test.stats().await.done, 1, "one completion recorded");
    assert_eq!(test.count("starts", 1).await, 2, "run again once");
}

#[tokio::test]
async fn a_job_that_aborts_its_worker_is_buried_after_max_deliveries() {
    let prefix = unique_prefix();
    let test = TestQueue::on(crate::redis_server::url(), &prefix, fast_settings()).await;
    test.queue
        .enqueue(TestJob {
            aborts: true,
            ..TestJob::new(0)
        })
        .await
        .unwrap();
    test.queue
        .enqueue_all((1..=20).map(TestJob::new).collect())
        .await
        .unwrap();

    // One job at a time, so that the aborting job takes no other down with it; a
    // worker is restarted whenever one dies, as an orchestrator would.
    let mut child = spawn_child_worker(&prefix, 1);
    let mut deaths = 0;
    eventually(
        "the aborting job to be buried",
        Duration::from_secs(60),
        || {
            if child.try_wait().unwrap().is_some() {
                deaths += 1;
                child = spawn_child_worker(&prefix, 1);
            }
            async { test.queue.stats().await.is_ok_and(|stats| stats.dead == 1) }
        },
    )
    .await;
    eventually("the other jobs to run", Duration::from_secs(20), || async {
        test.effects().await == 20
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();

    // max_deliveries = 3: three deliveries ended in an abort, the fourth buried it.
    assert_eq!(test.count("starts", 0).await, 3);
    assert_eq!(deaths, 3);
    let dead = test.queue.dead().await.unwrap();
    assert!(
        dead[0]
            .error
            .contains("delivered 3 times without finishing"),
        "{:?}",
        dead[0]
    );
}

#[tokio::test]
async fn the_worker_command_runs_jobs_and_stops_on_sigterm() {
    let prefix = unique_prefix();
    let redis = redis_under(crate::redis_server::url(), &prefix).await;
    let jobs = jobs::queue(&redis, &fast_settings());
    let (mut child, _) = start_until_logged(
        binary(&["worker"]).env("APP_REDIS__KEY_PREFIX", &prefix),
        "Worker started",
    );

    jobs.enqueue(Job::PurgeDeadJobs).await.unwrap();
    eventually(
        "the worker to run the jobs",
        Duration::from_secs(10),
        || async {
            let stats = jobs.stats().await.unwrap();
            stats.queued == 0 && stats.running == 0 && stats.done >= 1
        },
    )
    .await;

    let status = terminate(&mut child).await;
    assert!(status.success(), "exited with {status}");
    assert_eq!(
        jobs.stats().await.unwrap().workers,
        0,
        "its heartbeat retired on the way out"
    );
}

#[tokio::test]
async fn the_worker_command_serves_job_counters_and_the_queue_depth() {
    let prefix = unique_prefix();
    let redis = redis_under(crate::redis_server::url(), &prefix).await;
    let jobs = jobs::queue(&redis, &fast_settings());
    let worker = Metered::start(
        "worker",
        "Worker started",
        &[
            ("APP_REDIS__KEY_PREFIX", &prefix),
            ("APP_JOBS__POLL_INTERVAL_MS", "100"),
        ],
    );

    jobs.enqueue(Job::PurgeDeadJobs).await.unwrap();

    let purges = [("job", "purge_dead_jobs")];
    // Ours, and the one the worker schedules as it starts.
    eventually("both purges to finish", Duration::from_secs(10), || async {
        worker.scrape().await.value("jobs_finished_total", &purges) == Some(2.0)
    })
    .await;
    eventually(
        "the depth to show an idle queue",
        Duration::from_secs(10),
        || async {
            let scrape = worker.scrape().await;
            ["queued", "scheduled", "running", "dead"]
                .iter()
                .all(|state| scrape.value("jobs_queue_depth", &[("state", state)]) == Some(0.0))
        },
    )
    .await;
    let scrape = worker.scrape().await;
    assert_eq!(scrape.value("jobs_enqueued_total", &purges), Some(1.0));
    assert_eq!(
        scrape.value(
            "job_duration_seconds_count",
            &[("job", "purge_dead_jobs"), ("outcome", "ok")]
        ),
        Some(2.0)
    );
    worker.stop().await;
}

#[tokio::test]
async fn the_jobs_commands_count_list_and_retry_dead_jobs() {
    let prefix = unique_prefix();
    let redis = redis_under(crate::redis_server::url(), &prefix).await;
    let jobs = jobs::queue(&redis, &fast_settings());
    let id = jobs.enqueue(Job::PurgeDeadJobs).await.unwrap();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let failing = |_: Job, _| async { anyhow::bail!("the purge is broken") };
    let worker = tokio::spawn(worker::run(jobs.clone(), failing, shutdown));
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
    assert_eq!(
        (listed["id"].as_str(), listed["attempts"].as_u64()),
        (Some(id.to_string().as_str()), Some(3))
    );
    assert!(
        listed["error"]
            .as_str()
            .unwrap()
            .contains("the purge is broken")
    );
    assert!(retried.contains(&id.to_string()), "{retried}");
    let after = jobs.stats().await.unwrap();
    assert_eq!((after.dead, after.queued), (0, 1), "{after:?}");
}

#[tokio::test]
async fn a_bad_jobs_setting_stops_serve_at_start_up_naming_its_key() {
    // The server never runs jobs, yet refuses settings no worker could run with.
    let output = binary(&["serve"])
        .env("APP_HTTP__PORT", "0")
        .env("APP_JOBS__LEASE_SECS", "0")
        .stderr(Stdio::piped())
        .output()
        .expect("Failed to run the binary");

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("jobs.lease_secs"), "{stderr}");
}
