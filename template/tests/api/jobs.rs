//! The job queue and worker against a real Redis. Each test has its own key prefix; the
//! test job records what its handler saw in Redis, so that worker processes can be
//! observed from outside.

use std::{
    future::Future,
    time::{Duration, Instant},
};

use redis::AsyncCommands as _;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use tokio::{sync::watch, task::JoinHandle};

use {{crate_name}}::{
    jobs::{Job, JobQueue, JobSettings, JobStats, worker},
    redis::{Redis, RedisSettings},
};

use crate::{
    helpers::{TestApp, spawn_app},
    redis_server::PrivateRedis,
};

/// A job whose handler counts its starts, can sleep, fail or panic, and applies its
/// effect idempotently: the effect counter can only reach one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TestJob {
    pub id: u32,
    /// Milliseconds the handler takes.
    pub sleep_ms: u64,
    /// The handler fails while the `broken` key exists.
    pub fails_while_broken: bool,
    /// The handler fails on this many first runs.
    pub fail_runs: u64,
    pub panics: bool,
}

/// A queue of test jobs under a fresh key prefix, and what its handler recorded.
#[derive(Clone)]
pub struct TestQueue {
    pub redis: Redis,
    pub queue: JobQueue<TestJob>,
    pub settings: JobSettings,
}

impl TestQueue {
    pub async fn new() -> Self {
        Self::on(crate::redis_server::url(), &unique_prefix()).await
    }

    /// The queue under `prefix` on the Redis at `url`, e.g. to share it with a child.
    pub async fn on(url: &str, prefix: &str) -> Self {
        let redis = redis_under(url, prefix).await;
        let settings = fast_settings();
        let queue = JobQueue::new(&redis, &settings, "jobs");
        Self {
            redis,
            queue,
            settings,
        }
    }

    /// Starts a worker in this process; it stops when the returned sender says so.
    pub fn start_worker(&self) -> (watch::Sender<bool>, JoinHandle<anyhow::Result<()>>) {
        let (stop, shutdown) = watch::channel(false);
        let this = self.clone();
        let handler_queue = self.clone();
        let worker = tokio::spawn(async move {
            worker::run(
                this.queue.clone(),
                &this.settings,
                move |job| handler_queue.clone().handle(job),
                shutdown,
            )
            .await
        });
        (stop, worker)
    }

    /// The test handler.
    pub async fn handle(self, job: TestJob) -> anyhow::Result<()> {
        let mut redis = self.redis.connection();
        let runs: u64 = redis.incr(self.key("starts", job.id), 1).await?;
        let now = now_ms();
        let _: () = redis.rpush(self.key("started_at", job.id), now).await?;
        tokio::time::sleep(Duration::from_millis(job.sleep_ms)).await;
        assert!(!job.panics, "a job that panics");
        let broken: bool = redis.exists(self.redis.key("broken")).await?;
        anyhow::ensure!(!(job.fails_while_broken && broken), "the service is broken");
        anyhow::ensure!(runs > job.fail_runs, "planned failure on run {runs}");
        // The idempotent effect: applied by the first run to get here, never again.
        let first: bool = redis.set_nx(self.key("applied", job.id), 1).await?;
        if first {
            let _: () = redis.incr(self.key("effects", job.id), 1).await?;
        }
        Ok(())
    }

    fn key(&self, what: &str, id: u32) -> String {
        self.redis.key(&format!("test:{what}:{id}"))
    }

    pub async fn count(&self, what: &str, id: u32) -> u64 {
        let mut redis = self.redis.connection();
        let value: Option<u64> = redis.get(self.key(what, id)).await.unwrap();
        value.unwrap_or_default()
    }

    pub async fn started_at(&self, id: u32) -> Vec<u64> {
        let mut redis = self.redis.connection();
        redis.lrange(self.key("started_at", id), 0, -1).await.unwrap()
    }

    pub async fn stats(&self) -> JobStats {
        self.queue.stats().await.expect("Failed to read the stats")
    }

    pub async fn set_broken(&self, broken: bool) {
        let mut redis = self.redis.connection();
        let key = self.redis.key("broken");
        let _: () = if broken {
            redis.set(key, 1).await.unwrap()
        } else {
            redis.del(key).await.unwrap()
        };
    }
}

/// A connection to the Redis at `url` whose keys live under `prefix`.
pub async fn redis_under(url: &str, prefix: &str) -> Redis {
    Redis::connect(&RedisSettings {
        url: SecretString::from(url),
        key_prefix: prefix.to_string(),
        timeout_ms: 2000,
    })
    .await
    .expect("Failed to connect to Redis")
}

/// A 2 s lease (1 s heartbeats) and short backoff, so recovery and retries are quick.
pub fn fast_settings() -> JobSettings {
    JobSettings {
        concurrency: 4,
        fetch_batch: 8,
        heartbeat_secs: 1,
        lease_secs: 2,
        max_attempts: 3,
        backoff_min_ms: 200,
        backoff_max_secs: 5,
        retention_hours: 1,
        purge_interval_secs: 3600,
    }
}

pub fn unique_prefix() -> String {
    format!("test:{}:", uuid::Uuid::new_v4().simple())
}

pub fn now_ms() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// Polls `condition` every 20 ms until it holds, failing after `limit`.
pub async fn eventually<F: Future<Output = bool>>(
    what: &str,
    limit: Duration,
    mut condition: impl FnMut() -> F,
) {
    let started = Instant::now();
    while !condition().await {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl TestApp {
    /// Waits until the app's worker has nothing queued or running.
    pub async fn wait_for_jobs(&self) {
        eventually("the queue to run dry", Duration::from_secs(10), || async {
            let stats = self.state.jobs.stats().await.unwrap();
            stats.queued == 0 && stats.running == 0
        })
        .await;
    }
}

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn the_worker_runs_enqueued_jobs() {
    let test = TestQueue::new().await;
    for id in 0..20 {
        test.queue.enqueue(TestJob { id, ..TestJob::default() }).await.unwrap();
    }
    assert_eq!(test.stats().await.queued, 20);

    let (_stop, _worker) = test.start_worker();

    eventually("20 jobs done", WAIT, || async { test.stats().await.done == 20 }).await;
    for id in 0..20 {
        assert_eq!(test.count("effects", id).await, 1);
    }
    let stats = test.stats().await;
    assert_eq!((stats.queued, stats.running, stats.dead), (0, 0, 0));
}

#[tokio::test]
async fn a_failing_job_is_retried_with_growing_pauses() {
    let test = TestQueue::new().await;
    let (_stop, _worker) = test.start_worker();

    let job = TestJob { id: 1, fail_runs: 2, ..TestJob::default() };
    test.queue.enqueue(job).await.unwrap();

    eventually("the third run to succeed", WAIT, || async {
        test.count("effects", 1).await == 1
    })
    .await;
    let started = test.started_at(1).await;
    assert_eq!(started.len(), 3, "two failures, then success");
    let (first_pause, second_pause) = (started[1] - started[0], started[2] - started[1]);
    // backoff_min_ms = 200, doubled for the second retry.
    assert!(first_pause >= 200, "first pause {first_pause} ms");
    assert!(second_pause >= 400, "second pause {second_pause} ms");
    eventually("the job to be done", WAIT, || async { test.stats().await.done == 1 }).await;
    assert_eq!(test.stats().await.dead, 0);
}

#[tokio::test]
async fn a_job_out_of_attempts_is_dead_until_retried() {
    let test = TestQueue::new().await;
    test.set_broken(true).await;
    let (_stop, _worker) = test.start_worker();

    let job = TestJob { id: 7, fails_while_broken: true, ..TestJob::default() };
    test.queue.enqueue(job.clone()).await.unwrap();

    eventually("the job to die", WAIT, || async { test.stats().await.dead == 1 }).await;
    assert_eq!(test.count("starts", 7).await, 3, "max_attempts runs");
    let dead = test.queue.dead().await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 3);
    assert!(dead[0].error.contains("the service is broken"), "{:?}", dead[0]);
    let payload: TestJob = serde_json::from_str(&dead[0].payload).unwrap();
    assert_eq!(payload, job);

    test.set_broken(false).await;
    assert!(test.queue.retry_dead(&dead[0].id).await.unwrap());
    assert!(!test.queue.retry_dead(&dead[0].id).await.unwrap(), "retried once");

    eventually("the retried job to succeed", WAIT, || async {
        test.count("effects", 7).await == 1
    })
    .await;
    eventually("the dead set to empty", WAIT, || async {
        let stats = test.stats().await;
        stats.dead == 0 && stats.done == 1
    })
    .await;
}

#[tokio::test]
async fn a_panicking_job_goes_straight_to_the_dead_set() {
    let test = TestQueue::new().await;
    let (_stop, _worker) = test.start_worker();

    test.queue.enqueue(TestJob { id: 3, panics: true, ..TestJob::default() }).await.unwrap();
    test.queue.enqueue(TestJob { id: 4, ..TestJob::default() }).await.unwrap();

    eventually("the panic to be buried", WAIT, || async { test.stats().await.dead == 1 }).await;
    assert_eq!(test.count("starts", 3).await, 1, "a panic is not retried");
    eventually("the other job to run", WAIT, || async {
        test.count("effects", 4).await == 1
    })
    .await;
}

#[tokio::test]
async fn a_delayed_job_does_not_run_early() {
    let test = TestQueue::new().await;
    let (_stop, _worker) = test.start_worker();
    let enqueued = now_ms();

    test.queue
        .enqueue_in(TestJob { id: 5, ..TestJob::default() }, Duration::from_secs(3))
        .await
        .unwrap();

    assert_eq!(test.stats().await.scheduled, 1);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(test.count("starts", 5).await, 0, "ran before its time");
    eventually("the delayed job to run", WAIT, || async {
        test.count("effects", 5).await == 1
    })
    .await;
    // Due times have a one-second resolution.
    let waited = test.started_at(5).await[0] - enqueued;
    assert!(waited >= 2000, "ran after {waited} ms");
}

#[tokio::test]
async fn shutdown_lets_running_jobs_finish() {
    let test = TestQueue::new().await;
    let (stop, worker) = test.start_worker();
    test.queue.enqueue(TestJob { id: 9, sleep_ms: 1000, ..TestJob::default() }).await.unwrap();
    eventually("the job to start", WAIT, || async { test.count("starts", 9).await == 1 }).await;

    stop.send(true).unwrap();
    tokio::time::timeout(WAIT, worker).await.unwrap().unwrap().unwrap();

    assert_eq!(test.count("effects", 9).await, 1, "the running job finished");
    let stats = test.stats().await;
    assert_eq!((stats.done, stats.running, stats.workers), (1, 0, 0), "{stats:?}");
}

#[tokio::test]
async fn a_backlog_beyond_one_script_call_is_worked_off() {
    let test = TestQueue::new().await;
    // More than Lua's unpack limit (about 8000), all due at once.
    let jobs: Vec<_> = (0..10_000).map(|id| TestJob { id, ..TestJob::default() }).collect();
    test.queue.enqueue_all(jobs).await.unwrap();
    assert_eq!(test.stats().await.queued, 10_000);

    let (_stop, _worker) = test.start_worker();

    eventually("the backlog to be done", Duration::from_secs(60), || async {
        test.stats().await.done == 10_000
    })
    .await;
}

#[tokio::test]
async fn enqueue_once_queues_one_job_per_key() {
    let test = TestQueue::new().await;
    for _ in 0..3 {
        test.queue.enqueue_once(TestJob::default(), "nightly:42").await.unwrap();
    }
    test.queue.enqueue_once(TestJob::default(), "nightly:43").await.unwrap();

    assert_eq!(test.stats().await.queued, 2);
}

#[tokio::test]
async fn purging_forgets_finished_jobs() {
    let test = TestQueue::new().await;
    let (_stop, _worker) = test.start_worker();
    test.queue.enqueue(TestJob { id: 1, ..TestJob::default() }).await.unwrap();
    eventually("the job to be done", WAIT, || async { test.stats().await.done == 1 }).await;

    assert_eq!(test.queue.purge(Duration::from_secs(3600)).await.unwrap(), 0, "too recent");
    assert_eq!(test.queue.purge(Duration::ZERO).await.unwrap(), 1);
    assert_eq!(test.stats().await.done, 0);
}

#[tokio::test]
async fn the_worker_carries_on_after_a_redis_restart() {
    let server = PrivateRedis::start();
    let port = server.port();
    let test = TestQueue::on(&server.url(), &unique_prefix()).await;
    let (_stop, _worker) = test.start_worker();
    test.queue.enqueue(TestJob { id: 1, ..TestJob::default() }).await.unwrap();
    eventually("the first job", WAIT, || async { test.count("effects", 1).await == 1 }).await;

    server.stop();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(test.queue.stats().await.is_err(), "Redis is down");
    let _restarted = PrivateRedis::start_on(port);

    // Nothing was persisted: the restarted server is empty, the worker registers again.
    eventually("the queue to answer again", Duration::from_secs(30), || async {
        test.queue.enqueue(TestJob { id: 2, ..TestJob::default() }).await.is_ok()
    })
    .await;
    eventually("the job after the restart", Duration::from_secs(45), || async {
        test.count("effects", 2).await == 1
    })
    .await;
}

#[tokio::test]
async fn the_app_enqueues_jobs_its_worker_runs() {
    let app = spawn_app().await;

    app.state.jobs.enqueue(Job::PurgeFinishedJobs).await.unwrap();

    app.wait_for_jobs().await;
    let stats = app.state.jobs.stats().await.unwrap();
    assert!(stats.done >= 1, "{stats:?}");
    assert_eq!(stats.dead, 0);
}
