//! Job queue throughput against a real Redis: enqueue one at a time, enqueue in bulk,
//! then work the jobs off at several concurrencies. A benchmark, not a test:
//!
//!     cargo bench --bench queue
//!
//! `REDIS_URL` (default redis://127.0.0.1:6379) picks the server and `BENCH_JOBS`
//! (default 20000) the number of no-op jobs per run. Keys live under a fresh prefix and
//! are deleted afterwards.

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use redis::AsyncCommands as _;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use {{crate_name}}::{
    jobs::{JobQueue, JobSettings, worker},
    redis::{Redis, RedisSettings},
};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Noop {
    n: u32,
}

/// Jobs pushed per `enqueue_all` call in the bulk run.
const BULK_CHUNK: usize = 1000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let jobs: u32 = std::env::var("BENCH_JOBS").map_or(Ok(20_000), |n| n.parse())?;
    let settings = JobSettings {
        concurrency: 16,
        fetch_batch: 32,
        heartbeat_secs: 5,
        lease_secs: 30,
        max_attempts: 1,
        backoff_min_ms: 1000,
        backoff_max_secs: 1,
        retention_hours: 1,
        purge_interval_secs: 3600,
    };
    let prefix = format!("bench:{}:", std::process::id());
    let redis = Redis::connect(&RedisSettings {
        url: SecretString::from(url.as_str()),
        key_prefix: prefix.clone(),
        timeout_ms: 5000,
    })
    .await?;

    println!("{jobs} no-op jobs against {url}\n");
    println!("| run | jobs/s |");
    println!("|---|---:|");
    let queue = JobQueue::<Noop>::new(&redis, &settings, "single");
    let started = Instant::now();
    for n in 0..jobs {
        queue.enqueue(Noop { n }).await?;
    }
    report("enqueue, one call per job", jobs, started.elapsed());

    let queue = JobQueue::<Noop>::new(&redis, &settings, "bulk");
    let started = Instant::now();
    let all: Vec<_> = (0..jobs).map(|n| Noop { n }).collect();
    for chunk in all.chunks(BULK_CHUNK) {
        queue.enqueue_all(chunk.to_vec()).await?;
    }
    report(&format!("enqueue, {BULK_CHUNK} per call"), jobs, started.elapsed());

    for concurrency in [1, 16, 64] {
        let settings = JobSettings { concurrency, ..settings.clone() };
        let queue = JobQueue::<Noop>::new(&redis, &settings, &format!("work{concurrency}"));
        let all: Vec<_> = (0..jobs).map(|n| Noop { n }).collect();
        for chunk in all.chunks(BULK_CHUNK) {
            queue.enqueue_all(chunk.to_vec()).await?;
        }
        let elapsed = work_off(&queue, &settings, jobs).await?;
        let run = format!(
            "process, concurrency {concurrency}, batch {}",
            settings.fetch_batch
        );
        report(&run, jobs, elapsed);
    }

    delete_keys(&redis, &prefix).await?;
    Ok(())
}

/// Starts a worker and times it until every job is acknowledged as done.
async fn work_off(
    queue: &JobQueue<Noop>,
    settings: &JobSettings,
    jobs: u32,
) -> anyhow::Result<Duration> {
    let (stop, shutdown) = watch::channel(false);
    let started = Instant::now();
    let worker = tokio::spawn({
        let (queue, settings) = (queue.clone(), settings.clone());
        async move {
            worker::run(queue, &settings, |_job: Noop| async { Ok(()) }, shutdown).await
        }
    });
    while queue.stats().await?.done < u64::from(jobs) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    stop.send(true)?;
    worker.await??;
    Ok(elapsed)
}

fn report(run: &str, jobs: u32, elapsed: Duration) {
    println!("| {run} | {:.0} |", f64::from(jobs) / elapsed.as_secs_f64());
}

async fn delete_keys(redis: &Redis, prefix: &str) -> anyhow::Result<()> {
    let mut connection = redis.connection();
    let keys: Vec<redis::RedisResult<String>> = connection
        .scan_match(format!("{prefix}*"))
        .await?
        .collect()
        .await;
    let keys = keys.into_iter().collect::<Result<Vec<_>, _>>()?;
    for chunk in keys.chunks(1000) {
        redis::cmd("DEL").arg(chunk).query_async::<()>(&mut connection).await?;
    }
    Ok(())
}
