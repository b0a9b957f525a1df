//! Job queue throughput against a real Redis. A benchmark, not a test:
//!
//!     cargo bench --bench queue
//!
//! Enqueue rows time `BENCH_JOBS` enqueues, one per call and in bulk. Process rows
//! measure as BullMQ's benchmark does: the jobs are queued first, then one worker
//! process starts, and the clock runs from the first completion to the last
//! acknowledgement. Every reliability feature is on (leases renewed on their own thread,
//! deliveries counted, retries armed), with the default settings but for concurrency.
//!
//! `REDIS_URL` (default redis://127.0.0.1:6379; `redis+cluster://…` for a Redis Cluster)
//! picks the server, `BENCH_JOBS` (default 40000) the number of jobs per row. Keys live
//! under a fresh prefix; each row's queue is deleted after it, and the idempotency keys
//! expire after `jobs.idempotency_window_secs`.

use std::{
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use {{crate_name}}::{
    config::Settings,
    queue::{JobKind, JobQueue, JobRun, QueueSettings, worker},
    redis::{Redis, RedisSettings, RedisUrl},
};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Work {
    /// Microseconds of CPU the handler burns, as a busy loop.
    cpu_us: u64,
}

impl JobKind for Work {
    fn kind(&self) -> &'static str {
        "work"
    }
}

/// Jobs per `enqueue_all` call.
const BULK_CHUNK: usize = 1000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let jobs: u32 = std::env::var("BENCH_JOBS").map_or(Ok(40_000), |n| n.parse())?;
    let prefix = format!("bench:{}:", std::process::id());
    let redis = Redis::connect(&RedisSettings {
        url: RedisUrl::parse(&url).map_err(anyhow::Error::msg)?,
        key_prefix: prefix,
        timeout: Duration::from_secs(5),
    })
    .await?;
    let settings = Settings::load()?.jobs;
    let noop = Work { cpu_us: 0 };

    println!("{jobs} jobs per row against {url}\n");
    println!("| run | jobs/s |");
    println!("|---|---:|");
    let queue = JobQueue::new(&redis, &settings, "enqueue-single");
    let started = Instant::now();
    for _ in 0..jobs {
        queue.enqueue(noop.clone()).await?;
    }
    report("enqueue, one call per job", jobs, started.elapsed());
    queue.remove().await?;

    let queue = JobQueue::new(&redis, &settings, "enqueue-bulk");
    let started = Instant::now();
    fill(&queue, &noop, jobs).await?;
    report(
        &format!("enqueue, {BULK_CHUNK} per call"),
        jobs,
        started.elapsed(),
    );
    queue.remove().await?;

    let rows = [(1, 0), (16, 0), (64, 0), (1, 1000), (16, 1000)];
    for (concurrency, cpu_us) in rows {
        let settings = worker_settings(&settings, concurrency)?;
        let queue = JobQueue::new(
            &redis,
            &settings,
            &format!("process-{concurrency}-{cpu_us}"),
        );
        let work = Work { cpu_us };
        fill(&queue, &work, jobs).await?;
        let elapsed = work_off(&queue, jobs).await?;
        let load = if cpu_us == 0 {
            "no-op".to_string()
        } else {
            format!("{cpu_us} µs CPU")
        };
        report(
            &format!("process, {load}, concurrency {concurrency}"),
            jobs,
            elapsed,
        );
        queue.remove().await?;
    }
    Ok(())
}

fn worker_settings(defaults: &QueueSettings, concurrency: usize) -> anyhow::Result<QueueSettings> {
    Ok(QueueSettings {
        concurrency: concurrency.try_into()?,
        ..defaults.clone()
    })
}

async fn fill(queue: &JobQueue<Work>, work: &Work, jobs: u32) -> anyhow::Result<()> {
    let all: Vec<_> = (0..jobs).map(|_| work.clone()).collect();
    for chunk in all.chunks(BULK_CHUNK) {
        queue.enqueue_all(chunk.to_vec()).await?;
    }
    Ok(())
}

/// Runs a worker on the queued jobs; the time from its first completion to the moment
/// every job is acknowledged.
async fn work_off(queue: &JobQueue<Work>, jobs: u32) -> anyhow::Result<Duration> {
    let first_done = Arc::new(OnceLock::new());
    let finished = Arc::new(AtomicU32::new(0));
    let handler = {
        let (first_done, finished) = (first_done.clone(), finished.clone());
        move |work: Work, _: JobRun| {
            burn(Duration::from_micros(work.cpu_us));
            first_done.get_or_init(Instant::now);
            finished.fetch_add(1, Ordering::Relaxed);
            async { Ok(()) }
        }
    };
    let (stop, shutdown) = watch::channel(false);
    let worker = tokio::spawn(worker::run(queue.clone(), handler, shutdown));
    while queue.stats().await?.done < u64::from(jobs) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = first_done.get().map(Instant::elapsed).unwrap_or_default();
    stop.send(true)?;
    worker.await??;
    anyhow::ensure!(
        finished.load(Ordering::Relaxed) >= jobs,
        "jobs went missing"
    );
    Ok(elapsed)
}

/// Keeps this thread busy for `duration`.
fn burn(duration: Duration) {
    let until = Instant::now() + duration;
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

fn report(run: &str, jobs: u32, elapsed: Duration) {
    println!("| {run} | {:.0} |", f64::from(jobs) / elapsed.as_secs_f64());
}
