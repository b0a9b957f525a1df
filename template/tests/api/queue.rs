//! The job queue and worker against a real Redis. Each test has its own key prefix. The
//! test job records what its handler saw on the shared test Redis, the *observer*, so
//! that workers in other processes, or on a Redis a test breaks, can be watched.

use std::{
    future::Future,
    time::{Duration, Instant},
};

use redis::AsyncCommands as _;
use serde::{Deserialize, Serialize};
use tokio::{sync::watch, task::JoinHandle};

use crate::redis_server::unique_prefix;
use {{crate_name}}::{
    clock::unix_ms,
    jobs::Job,
    monitoring,
    queue::{EnqueueError, JobKind, JobQueue, JobRun, JobStats, QueueSettings, worker},
    redis::{Redis, RedisSettings, RedisUrl},
};

use crate::{
    helpers::{TestApp, free_port, spawn_app},
    metrics::Scrape,
    redis_server::{Lag, LaggingProxy, PrivateRedis},
};

/// A job whose handler records its runs, can sleep, block its thread, fail, panic or
/// abort the process, and applies its effect idempotently: adding its id to a set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TestJob {
    pub id: u32,
    /// Milliseconds the handler awaits.
    pub sleep_ms: u64,
    /// Milliseconds the handler blocks its thread, as CPU-bound or blocking code does.
    pub block_ms: u64,
    /// The handler fails while the `broken` key exists.
    pub fails_while_broken: bool,
    /// The handler fails on this many first attempts.
    pub fail_runs: u32,
    pub panics: bool,
    /// The handler aborts its process: only for workers in child processes.
    pub aborts: bool,
    /// Records the effect only, for tests with thousands of jobs.
    pub quiet: bool,
}

impl JobKind for TestJob {
    fn kind(&self) -> &'static str {
        "test"
    }
}

impl TestJob {
    pub fn new(id: u32) -> Self {
        Self {
            id,
            ..Self::default()
        }
    }
}

/// A queue of test jobs, and the observer its handler records on.
#[derive(Clone)]
pub struct TestQueue {
    pub queue: JobQueue<TestJob>,
    pub observer: Redis,
    /// The key prefix of the queue and of the observer's records.
    pub prefix: String,
}

impl TestQueue {
    pub async fn new() -> Self {
        Self::with(fast_settings()).await
    }

    pub async fn with(settings: QueueSettings) -> Self {
        Self::on(crate::redis_server::url(), &unique_prefix(), settings).await
    }

    /// The queue under `prefix` on the Redis at `url`; the observer is the shared test
    /// Redis, under the same prefix.
    pub async fn on(url: &str, prefix: &str, settings: QueueSettings) -> Self {
        std::sync::LazyLock::force(&crate::helpers::TRACING);
        let redis = redis_under(url, prefix).await;
        Self {
            queue: JobQueue::new(&redis, &settings, "jobs"),
            observer: redis_under(crate::redis_server::url(), prefix).await,
            prefix: prefix.to_string(),
        }
    }

    /// Starts a worker in this process; it stops when the returned sender says so.
    pub fn start_worker(&self) -> (watch::Sender<bool>, JoinHandle<anyhow::Result<()>>) {
        let (stop, shutdown) = watch::channel(false);
        let handler_queue = self.clone();
        let handler = move |job, run| handler_queue.clone().handle(job, run);
        let worker = tokio::spawn(worker::run(self.queue.clone(), handler, shutdown));
        (stop, worker)
    }

    /// The test handler.
    pub async fn handle(self, job: TestJob, run: JobRun) -> anyhow::Result<()> {
        let mut observer = self.observer.connection();
        if !job.quiet {
            let _: () = redis::pipe()
                .incr(self.key("starts", job.id), 1)
                .rpush(self.key("started_at", job.id), unix_ms())
                .rpush(
                    self.key("runs", job.id),
                    format!("{} {}", run.id, run.attempt),
                )
                .query_async(&mut observer)
                .await?;
        }
        tokio::time::sleep(Duration::from_millis(job.sleep_ms)).await;
        std::thread::sleep(Duration::from_millis(job.block_ms));
        assert!(!job.panics, "a job that panics");
        if job.aborts {
            std::process::abort();
        }
        let broken: bool = observer.exists(self.observed("broken")).await?;
        anyhow::ensure!(!(job.fails_while_broken && broken), "the service is broken");
        anyhow::ensure!(
            run.attempt > job.fail_runs,
            "planned failure on attempt {}",
            run.attempt
        );
        let _: () = redis::pipe()
            .sadd(self.observed("effects"), job.id)
            .rpush(self.key("finished_at", job.id), unix_ms())
            .query_async(&mut observer)
            .await?;
        Ok(())
    }

    /// The observer's key `what` of job `id`. Every observer key shares one hash tag, so
    /// a handler's pipeline stays in one slot on Redis Cluster too.
    fn key(&self, what: &str, id: u32) -> String {
        self.observed(&format!("{what}:{id}"))
    }

    fn observed(&self, name: &str) -> String {
        self.observer.key(&["{observed}:", name].concat())
    }

    pub async fn count(&self, what: &str, id: u32) -> u64 {
        let value: Option<u64> = self
            .observer
            .connection()
            .get(self.key(what, id))
            .await
            .unwrap();
        value.unwrap_or_default()
    }

    /// Unix ms of each start (or, for `finished_at`, each finish) of job `id`.
    pub async fn times(&self, what: &str, id: u32) -> Vec<u64> {
        self.observer
            .connection()
            .lrange(self.key(what, id), 0, -1)
            .await
            .unwrap()
    }

    /// `(job id, attempt)` of each run of test job `id`.
    pub async fn runs(&self, id: u32) -> Vec<(String, u32)> {
        let runs: Vec<String> = self
            .observer
            .connection()
            .lrange(self.key("runs", id), 0, -1)
            .await
            .unwrap();
        runs.iter()
            .map(|run| {
                let (job_id, attempt) = run.split_once(' ').unwrap();
                (job_id.to_string(), attempt.parse().unwrap())
            })
            .collect()
    }

    /// How many distinct jobs applied their effect.
    pub async fn effects(&self) -> u64 {
        self.observer
            .connection()
            .scard(self.observed("effects"))
            .await
            .unwrap()
    }

    pub async fn applied(&self, id: u32) -> bool {
        let key = self.observed("effects");
        self.observer.connection().sismember(key, id).await.unwrap()
    }

    pub async fn stats(&self) -> JobStats {
        self.queue.stats().await.expect("Failed to read the stats")
    }

    /// Waits until nothing is queued, scheduled or running.
    pub async fn wait_until_idle(&self, limit: Duration) {
        eventually("the queue to be idle", limit, || async {
            self.queue
                .stats()
                .await
                .is_ok_and(|stats| (stats.queued, stats.scheduled, stats.running) == (0, 0, 0))
        })
        .await;
    }

    pub async fn set_broken(&self, broken: bool) {
        let mut observer = self.observer.connection();
        let key = self.observed("broken");
        let _: () = if broken {
            observer.set(key, 1).await.unwrap()
        } else {
            observer.del(key).await.unwrap()
        };
    }
}

/// A connection to the Redis at `url` whose keys live under `prefix`.
pub async fn redis_under(url: &str, prefix: &str) -> Redis {
    Redis::connect(&RedisSettings {
        url: RedisUrl::parse(url).expect("a Redis URL"),
        key_prefix: prefix.to_string(),
        timeout: Duration::from_secs(2),
    })
    .await
    .expect("Failed to connect to Redis")
}

/// A 2 s lease, 100 ms polls and short backoff, so recovery and retries are quick.
pub fn fast_settings() -> QueueSettings {
    fast_settings_with("")
}

/// [`fast_settings`] with `overrides`, `[jobs]` lines parsed as the configuration is.
pub fn fast_settings_with(overrides: &str) -> QueueSettings {
    const FAST: &str = "
        concurrency = 4
        fetch_batch = 8
        poll_interval_ms = 100
        lease_secs = 2
        max_deliveries = 3
        max_attempts = 3
        backoff_min_ms = 200
        backoff_max_secs = 5
        dead_max = 100
        retention_hours = 1
        purge_interval_secs = 3600
        shutdown_timeout_secs = 10
        idempotency_window_secs = 600
    ";
    let toml = |text: &str| config::File::from_str(text, config::FileFormat::Toml);
    config::Config::builder()
        .add_source(toml(FAST))
        .add_source(toml(overrides))
        .build()
        .and_then(config::Config::try_deserialize)
        .expect("valid [jobs] settings")
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
async fn the_worker_runs_enqueued_jobs_and_hands_each_its_id() {
    let test = TestQueue::new().await;
    let mut ids = Vec::new();
    for id in 0..20 {
        ids.push(test.queue.enqueue(TestJob::new(id)).await.unwrap());
    }
    assert_eq!(test.stats().await.queued, 20);

    let (_stop, _worker) = test.start_worker();

    eventually("20 jobs done", WAIT, || async {
        test.stats().await.done == 20
    })
    .await;
    for (id, job_id) in (0..20).zip(&ids) {
        assert_eq!(test.runs(id).await, [(job_id.to_string(), 1)]);
    }
    let stats = test.stats().await;
    assert_eq!(
        (stats.queued, stats.running, stats.dead, stats.workers),
        (0, 0, 0, 1)
    );
}

#[tokio::test]
async fn a_failing_job_is_retried_with_the_configured_backoff() {
    let test = TestQueue::new().await;
    let (_stop, _worker) = test.start_worker();

    let id = test
        .queue
        .enqueue(TestJob {
            fail_runs: 2,
            ..TestJob::new(1)
        })
        .await
        .unwrap();

    eventually("the third attempt to succeed", WAIT, || async {
        test.applied(1).await
    })
    .await;
    let runs = test.runs(1).await;
    let expected: Vec<_> = (1..=3).map(|attempt| (id.to_string(), attempt)).collect();
    assert_eq!(runs, expected, "one job id, attempts counted");
    let started = test.times("started_at", 1).await;
    // backoff_min_ms = 200, doubled for the second retry, plus up to a quarter of jitter;
    // a retry is picked up within one 100 ms poll of falling due.
    for (pause, backoff) in [
        (started[1] - started[0], 200),
        (started[2] - started[1], 400),
    ] {
        assert!(
            pause >= backoff,
            "retried after {pause} ms, backoff {backoff} ms"
        );
        assert!(
            pause < backoff * 5 / 4 + 100 + 700,
            "retried after {pause} ms, backoff {backoff} ms"
        );
    }
    test.wait_until_idle(WAIT).await;
    assert_eq!((test.stats().await.done, test.stats().await.dead), (1, 0));
}

#[tokio::test]
async fn a_job_out_of_attempts_is_dead_until_retried() {
    let test = TestQueue::new().await;
    test.set_broken(true).await;
    let (_stop, _worker) = test.start_worker();

    let job = TestJob {
        fails_while_broken: true,
        ..TestJob::new(7)
    };
    let id = test.queue.enqueue(job.clone()).await.unwrap();

    eventually("the job to die", WAIT, || async {
        test.stats().await.dead == 1
    })
    .await;
    assert_eq!(test.count("starts", 7).await, 3, "max_attempts runs");
    let dead = test.queue.dead().await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0].id.as_str(), dead[0].attempts),
        (id.to_string().as_str(), 3)
    );
    assert!(
        dead[0].error.contains("the service is broken"),
        "{:?}",
        dead[0]
    );
    let payload: serde_json::Value = serde_json::from_str(&dead[0].payload).unwrap();
    assert_eq!(payload["job"], serde_json::to_value(&job).unwrap());

    test.set_broken(false).await;
    assert!(test.queue.retry_dead(&dead[0].id).await.unwrap());
    assert!(
        !test.queue.retry_dead(&dead[0].id).await.unwrap(),
        "retried once"
    );

    eventually("the retried job to succeed", WAIT, || async {
        test.applied(7).await
    })
    .await;
    assert_eq!(
        test.runs(7).await.last().unwrap(),
        &(id.to_string(), 1),
        "fresh attempts"
    );
    test.wait_until_idle(WAIT).await;
    let stats = test.stats().await;
    assert_eq!((stats.dead, stats.done), (0, 1));
}

#[tokio::test]
async fn a_panicking_job_is_buried_and_the_worker_carries_on() {
    let test = TestQueue::new().await;
    let (_stop, _worker) = test.start_worker();

    test.queue
        .enqueue(TestJob {
            panics: true,
            ..TestJob::new(3)
        })
        .await
        .unwrap();
    test.queue.enqueue(TestJob::new(4)).await.unwrap();

    eventually("the panic to be buried", WAIT, || async {
        test.stats().await.dead == 1
    })
    .await;
    assert_eq!(test.count("starts", 3).await, 1, "a panic is not retried");
    let dead = test.queue.dead().await.unwrap();
    assert!(dead[0].error.contains("a job that panics"), "{:?}", dead[0]);
    eventually("the other job to run", WAIT, || async {
        test.applied(4).await
    })
    .await;
}

#[tokio::test]
async fn a_delayed_job_runs_not_before_its_time_and_within_a_poll_after() {
    let test = TestQueue::new().await;
    let (_stop, _worker) = test.start_worker();
    let enqueued = unix_ms();

    test.queue
        .enqueue_in(TestJob::new(5), Duration::from_millis(1500))
        .await
        .unwrap();

    assert_eq!(test.stats().await.scheduled, 1);
    eventually("the delayed job to run", WAIT, || async {
        test.applied(5).await
    })
    .await;
    let waited = test.times("started_at", 5).await[0] - enqueued;
    assert!(waited >= 1500, "ran after {waited} ms, due after 1500 ms");
    // One 100 ms poll, and room for a loaded machine.
    assert!(
        waited < 1500 + 100 + 700,
        "ran after {waited} ms, due after 1500 ms"
    );
}

#[tokio::test]
async fn shutdown_finishes_running_jobs_and_hands_back_claimed_ones() {
    // One slot, eight claimed per fetch, and a lease far longer than the test: the
    // claimed jobs can only reach the second worker by being handed back.
    let settings = fast_settings_with("concurrency = 1\nlease_secs = 60");
    let test = TestQueue::with(settings).await;
    let mut jobs = vec![TestJob {
        sleep_ms: 1000,
        ..TestJob::new(0)
    }];
    jobs.extend((1..6).map(TestJob::new));
    test.queue.enqueue_all(jobs).await.unwrap();
    let (stop, first) = test.start_worker();
    eventually("the long job to start", WAIT, || async {
        test.count("starts", 0).await == 1
    })
    .await;
    assert_eq!(
        test.stats().await.running,
        6,
        "all six claimed by the first worker"
    );

    stop.send(true).unwrap();
    tokio::time::timeout(WAIT, first)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    assert!(test.applied(0).await, "the running job finished");
    for id in 1..6 {
        assert_eq!(test.count("starts", id).await, 0, "job {id} was started");
    }
    let stats = test.stats().await;
    assert_eq!(
        (stats.queued, stats.running, stats.workers),
        (5, 0, 0),
        "{stats:?}"
    );
    let (_stop, _second) = test.start_worker();
    eventually(
        "the handed-back jobs to run",
        Duration::from_secs(5),
        || async { test.effects().await == 6 },
    )
    .await;
}

#[tokio::test]
async fn a_blocking_handler_keeps_its_lease_and_does_not_hold_up_other_jobs() {
    let test = TestQueue::new().await;
    let (_stop_a, _a) = test.start_worker();
    let (_stop_b, _b) = test.start_worker();
    // Blocks its thread for longer than the 2 s lease.
    test.queue
        .enqueue(TestJob {
            block_ms: 3000,
            ..TestJob::new(0)
        })
        .await
        .unwrap();
    eventually("the blocking job to start", WAIT, || async {
        test.count("starts", 0).await == 1
    })
    .await;

    let quick: Vec<_> = (1..=200).map(TestJob::new).collect();
    test.queue.enqueue_all(quick).await.unwrap();

    eventually("every job to finish", Duration::from_secs(20), || async {
        test.effects().await == 201
    })
    .await;
    let blocking_finished = test.times("finished_at", 0).await[0];
    for id in 1..=200 {
        let finished = test.times("finished_at", id).await[0];
        assert!(
            finished < blocking_finished,
            "job {id} waited for the blocking one"
        );
    }
    // Had the lease lapsed, the other worker would have started it again by now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(test.count("starts", 0).await, 1, "started once");
    assert_eq!(test.stats().await.done, 201);
}

#[tokio::test]
async fn backlogs_arriving_while_workers_run_are_all_worked_off() {
    let settings = fast_settings_with("concurrency = 16\nfetch_batch = 32");
    let test = TestQueue::with(settings).await;
    let (_stop_a, _a) = test.start_worker();
    let (_stop_b, _b) = test.start_worker();
    let quiet = |id| TestJob {
        quiet: true,
        ..TestJob::new(id)
    };

    // 12 000 at once, more than Lua can unpack in one call...
    test.queue
        .enqueue_all((0..12_000).map(quiet).collect())
        .await
        .unwrap();
    // ...and 12 000 delayed ones falling due together, queued 500 calls at a time: as
    // many calls at once as a busy service makes, not 12 000 on one connection.
    let due = unix_ms() + 2000;
    for batch in (12_000..24_000).collect::<Vec<u32>>().chunks(500) {
        let delayed = batch.iter().map(|id| {
            let delay = Duration::from_millis(due.saturating_sub(unix_ms()));
            test.queue.enqueue_in(quiet(*id), delay)
        });
        futures_util::future::try_join_all(delayed).await.unwrap();
    }

    eventually("24 000 jobs to run", Duration::from_secs(120), || async {
        test.effects().await == 24_000
    })
    .await;
    test.wait_until_idle(WAIT).await;
    let stats = test.stats().await;
    assert_eq!((stats.done, stats.dead), (24_000, 0), "{stats:?}");
}

#[tokio::test]
async fn an_idempotency_key_queues_one_job() {
    let test = TestQueue::new().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            test.queue
                .enqueue_keyed(TestJob::default(), "nightly:42")
                .await
                .unwrap(),
        );
    }
    let other = test
        .queue
        .enqueue_keyed(TestJob::default(), "nightly:43")
        .await
        .unwrap();

    assert_eq!(test.stats().await.queued, 2);
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_ne!(other, ids[0]);
}

#[tokio::test]
async fn the_dead_set_keeps_the_newest_jobs_up_to_its_cap() {
    let settings = fast_settings_with("max_attempts = 1\ndead_max = 3");
    let test = TestQueue::with(settings).await;
    test.set_broken(true).await;
    let (_stop, _worker) = test.start_worker();

    for id in 0..5 {
        let job = TestJob {
            fails_while_broken: true,
            ..TestJob::new(id)
        };
        test.queue.enqueue(job).await.unwrap();
        eventually("the job to die", WAIT, || async {
            test.count("starts", id).await == 1
        })
        .await;
        test.wait_until_idle(WAIT).await;
    }

    let dead = test.queue.dead().await.unwrap();
    let kept: Vec<u64> = dead
        .iter()
        .map(|job| {
            serde_json::from_str::<serde_json::Value>(&job.payload).unwrap()["job"]["id"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(kept, [2, 3, 4]);
    assert_eq!(test.stats().await.dead, 3);
}

#[tokio::test]
async fn purging_deletes_dead_jobs_past_their_retention() {
    let test = TestQueue::with(fast_settings_with("max_attempts = 1")).await;
    test.set_broken(true).await;
    let (_stop, _worker) = test.start_worker();
    test.queue
        .enqueue(TestJob {
            fails_while_broken: true,
            ..TestJob::new(1)
        })
        .await
        .unwrap();
    eventually("the job to die", WAIT, || async {
        test.stats().await.dead == 1
    })
    .await;

    assert_eq!(
        test.queue.purge(Duration::from_secs(3600)).await.unwrap(),
        0,
        "too recent"
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(test.queue.purge(Duration::ZERO).await.unwrap(), 1);
    assert_eq!(test.stats().await.dead, 0);
}

/// A job only the metrics test runs: its `job` label counts nothing else in this process.
#[derive(Serialize, Deserialize)]
enum MeteredJob {
    Succeeds,
    Fails,
    Panics,
}

impl JobKind for MeteredJob {
    fn kind(&self) -> &'static str {
        "metered_test"
    }
}

#[tokio::test]
async fn the_worker_counts_jobs_by_kind_and_fate() {
    // Arrange: one job succeeds, one fails twice (its attempts), one panics.
    let recorder = monitoring::recorder().unwrap();
    let redis = redis_under(crate::redis_server::url(), &unique_prefix()).await;
    let settings = fast_settings_with("max_attempts = 2\nbackoff_min_ms = 10");
    let queue = JobQueue::new(&redis, &settings, "jobs");
    let handler = |job, _| async move {
        match job {
            MeteredJob::Succeeds => Ok(()),
            MeteredJob::Fails => anyhow::bail!("a planned failure"),
            MeteredJob::Panics => panic!("a planned panic"),
        }
    };
    let (stop, shutdown) = watch::channel(false);

    // Act
    queue
        .enqueue_all(vec![
            MeteredJob::Succeeds,
            MeteredJob::Fails,
            MeteredJob::Panics,
        ])
        .await
        .unwrap();
    let worker = tokio::spawn(worker::run(queue.clone(), handler, shutdown));
    eventually("every job to end", WAIT, || async {
        let stats = queue.stats().await.unwrap();
        stats.done == 1 && stats.dead == 2
    })
    .await;
    stop.send(true).unwrap();
    worker.await.unwrap().unwrap();
    let scrape = Scrape::parse(&recorder.render());

    // Assert
    let jobs = |name| scrape.value(name, &[("job", "metered_test")]);
    assert_eq!(jobs("jobs_enqueued_total"), Some(3.0));
    assert_eq!(jobs("jobs_finished_total"), Some(1.0));
    assert_eq!(jobs("jobs_retried_total"), Some(1.0));
    assert_eq!(jobs("jobs_buried_total"), Some(2.0));
    let runs = |outcome| {
        let labels = [("job", "metered_test"), ("outcome", outcome)];
        scrape.value("job_duration_seconds_count", &labels)
    };
    assert_eq!(runs("ok"), Some(1.0));
    assert_eq!(runs("error"), Some(2.0));
    assert_eq!(runs("panic"), Some(1.0));
}

/// A job of an older release, which `TestJob` no longer reads.
#[derive(Serialize, Deserialize)]
struct RetiredJob {
    retired_field: u32,
}

impl JobKind for RetiredJob {
    fn kind(&self) -> &'static str {
        "retired"
    }
}

#[tokio::test]
async fn a_job_that_no_longer_decodes_is_buried_with_the_reason() {
    let test = TestQueue::new().await;
    // An older release's job, under the same queue.
    let redis = redis_under(crate::redis_server::url(), &test.prefix).await;
    let stale: JobQueue<RetiredJob> = JobQueue::new(&redis, &fast_settings(), "jobs");
    let id = stale
        .enqueue(RetiredJob { retired_field: 1 })
        .await
        .unwrap();
    let (_stop, _worker) = test.start_worker();

    eventually("the job to be buried", WAIT, || async {
        test.stats().await.dead == 1
    })
    .await;
    let dead = test.queue.dead().await.unwrap();
    assert_eq!(dead[0].id, id.to_string());
    assert!(dead[0].error.contains("does not decode"), "{:?}", dead[0]);
}

#[tokio::test]
async fn the_worker_carries_on_after_redis_restarts_empty() {
    let server = PrivateRedis::start();
    let port = server.port();
    let test = TestQueue::on(&server.url(), &unique_prefix(), fast_settings()).await;
    let (_stop, _worker) = test.start_worker();
    test.queue.enqueue(TestJob::new(1)).await.unwrap();
    eventually("the first job", WAIT, || async { test.applied(1).await }).await;

    server.stop();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(test.queue.stats().await.is_err(), "Redis is down");
    let _restarted = PrivateRedis::start_on(port);

    // Nothing was persisted: the stream and its group are gone and come back.
    eventually(
        "the queue to answer again",
        Duration::from_secs(30),
        || async { test.queue.enqueue(TestJob::new(2)).await.is_ok() },
    )
    .await;
    eventually(
        "the job after the restart",
        Duration::from_secs(45),
        || async { test.applied(2).await },
    )
    .await;
}

#[tokio::test]
async fn queued_jobs_survive_a_redis_restart_with_persistence() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // Every command on disk before it is answered: a restart loses nothing.
    let persistent = format!(
        "--save '' --appendonly yes --appendfsync always --dir '{}'",
        dir.path().display()
    );
    let server = PrivateRedis::launch(port, &persistent);
    let test = TestQueue::on(&server.url(), &unique_prefix(), fast_settings()).await;
    let jobs: Vec<_> = (0..200)
        .map(|id| TestJob {
            sleep_ms: 20,
            ..TestJob::new(id)
        })
        .collect();
    test.queue.enqueue_all(jobs).await.unwrap();
    let (_stop, _worker) = test.start_worker();
    eventually("some jobs to run", WAIT, || async {
        test.effects().await >= 20
    })
    .await;

    server.stop();
    let _restarted = PrivateRedis::launch(port, &persistent);

    eventually("every job to run", Duration::from_secs(60), || async {
        test.effects().await == 200
    })
    .await;
    test.wait_until_idle(Duration::from_secs(20)).await;
    assert_eq!(test.stats().await.dead, 0);
}

#[tokio::test]
async fn the_app_enqueues_jobs_its_worker_runs() {
    let app = spawn_app().await;

    app.state.jobs.enqueue(Job::PurgeDeadJobs).await.unwrap();

    app.wait_for_jobs().await;
    let stats = app.state.jobs.stats().await.unwrap();
    assert!(stats.done >= 1, "{stats:?}");
    assert_eq!(stats.dead, 0);
}

#[tokio::test]
async fn a_retried_enqueue_under_the_same_key_runs_once_even_after_a_timeout() {
    // Arrange: Redis behind a proxy that holds its answers longer than the timeout, so
    // the enqueue runs but its caller hears nothing back in time.
    let server = PrivateRedis::start();
    let proxy = LaggingProxy::start(server.port(), Lag::None).await;
    let prefix = unique_prefix();
    let redis = Redis::connect(&RedisSettings {
        url: RedisUrl::parse(&proxy.url()).unwrap(),
        key_prefix: prefix.clone(),
        timeout: Duration::from_millis(300),
    })
    .await
    .unwrap();
    let queue: JobQueue<TestJob> = JobQueue::new(&redis, &fast_settings(), "jobs");
    // Redis learns the enqueue script first: otherwise the first call would wait for its
    // `NOSCRIPT` answer and never send the script itself.
    JobQueue::<TestJob>::new(&redis, &fast_settings(), "warm-up")
        .enqueue(TestJob::new(0))
        .await
        .unwrap();
    let job = TestJob::new(9);
    proxy.set(Lag::Answers(Duration::from_secs(1)));

    // Act: the first call times out, yet queues the job; the retry uses its key.
    let error = queue.enqueue(job.clone()).await.unwrap_err();
    proxy.set(Lag::None);
    let EnqueueError::Unknown { keys, ids, .. } = &error else {
        panic!("a timeout leaves the outcome unknown: {error:?}");
    };
    // A caller backs off before trying again; the held answer arrives meanwhile.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let retried = queue.enqueue_keyed(job, &keys[0]).await.unwrap();

    // Assert: the retry found the first call's job, which runs once.
    assert_eq!(retried, ids[0]);
    let test = TestQueue::on(&server.url(), &prefix, fast_settings()).await;
    let (_stop, _worker) = test.start_worker();
    eventually("the job to run", WAIT, || async { test.effects().await == 1 }).await;
    test.wait_until_idle(WAIT).await;
    assert_eq!(test.count("starts", 9).await, 1);
    assert_eq!(test.stats().await.done, 1);
}

#[tokio::test]
async fn an_enqueue_that_never_reached_redis_says_the_job_is_not_queued() {
    let server = PrivateRedis::start();
    let redis = redis_under(&server.url(), &unique_prefix()).await;
    let queue: JobQueue<TestJob> = JobQueue::new(&redis, &fast_settings(), "jobs");
    server.stop();
    // The connection notices its server is gone, and finds nobody to reconnect to.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let error = queue.enqueue(TestJob::new(1)).await.unwrap_err();

    assert!(!error.outcome_unknown(), "{error:?}");
}

#[tokio::test]
async fn a_dead_workers_jobs_behind_many_live_ones_are_recovered() {
    // Arrange: 400 jobs held by a live worker that keeps renewing them, then 20 held by
    // a worker that died; only the real worker below runs jobs.
    let test = TestQueue::new().await;
    let live: Vec<TestJob> = (0..400).map(|id| TestJob { quiet: true, ..TestJob::new(id) }).collect();
    let dead: Vec<TestJob> = (1000..1020).map(|id| TestJob { quiet: true, ..TestJob::new(id) }).collect();
    test.queue.enqueue_all(live).await.unwrap();
    test.queue.enqueue_all(dead).await.unwrap();
    // The queue's stream, as `QueueKeys` names it.
    let stream = ["{", &test.prefix, "jobs}:stream"].concat();
    let mut raw = test.observer.connection();
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&stream)
        .arg("workers")
        .arg("0")
        .query_async(&mut raw)
        .await
        .unwrap();
    let read = async |consumer: &str, count: usize| -> Vec<String> {
        let reply: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("workers")
            .arg(consumer)
            .arg("COUNT")
            .arg(count)
            .arg("STREAMS")
            .arg(&stream)
            .arg(">")
            .query_async(&mut test.observer.connection())
            .await
            .unwrap();
        reply.keys.into_iter().flat_map(|key| key.ids).map(|entry| entry.id).collect()
    };
    let live_entries = read("live-worker", 400).await;
    read("dead-worker", 20).await;
    let renewing = tokio::spawn({
        let (mut raw, stream) = (test.observer.connection(), stream.clone());
        async move {
            loop {
                let _: redis::RedisResult<()> = redis::cmd("XCLAIM")
                    .arg(&stream)
                    .arg("workers")
                    .arg("live-worker")
                    .arg(0)
                    .arg(&live_entries)
                    .arg("JUSTID")
                    .query_async(&mut raw)
                    .await;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    });

    // Act: the dead worker's lease (2 s) runs out while a worker polls.
    let (_stop, _worker) = test.start_worker();

    // Assert
    eventually("the dead worker's 20 jobs to run", Duration::from_secs(15), || async {
        test.effects().await == 20
    })
    .await;
    renewing.abort();
}
