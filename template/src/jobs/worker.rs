//! The consuming side: a supervised apalis worker.
//!
//! Delivery is at least once. A job is claimed into this worker's in-flight set and
//! acknowledged after its handler returns; if the process dies first, another worker
//! re-queues it once this one has missed its heartbeats for `lease_secs`. Handlers must
//! therefore be idempotent: running a job twice must have the effect of running it once.

use std::{future::Future, panic::AssertUnwindSafe, time::Duration};

use apalis::{
    layers::retry::{HasherRng, backoff::ExponentialBackoffMaker, backoff::MakeBackoff},
    prelude::*,
};
use futures_util::{FutureExt as _, future::BoxFuture};
use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::watch;

use super::{JobError, JobQueue, JobSettings};

/// How often an idle worker looks for new jobs.
const IDLE_POLL: Duration = Duration::from_millis(100);
/// Longest pause before restarting a worker that stopped on an error.
const MAX_RESTART_PAUSE: Duration = Duration::from_secs(30);

/// Runs `handler` on `queue`'s jobs until `shutdown` turns true, then stops fetching,
/// lets running jobs finish and hands claimed but unstarted ones back to the queue.
///
/// A failing job is retried with exponential backoff; after `max_attempts` runs, or
/// on a panic, it moves to the dead set. When Redis fails the worker restarts itself
/// with a growing pause; jobs it held are recovered by their lease.
///
/// # Errors
/// Fails only on settings no worker can run with.
pub async fn run<J, H, Fut>(
    queue: JobQueue<J>,
    settings: &JobSettings,
    handler: H,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()>
where
    J: Serialize + DeserializeOwned + Clone + Send + Sync + Unpin + 'static,
    H: Fn(J) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let mut pause = Duration::from_secs(1);
    loop {
        let name = worker_name();
        let stopped = match prepare(&queue, &name).await {
            Ok(()) => run_once(&name, &queue, settings, handler.clone(), shutdown.clone())?
                .await
                .map_err(anyhow::Error::from),
            Err(error) => Err(error.into()),
        };
        if let Err(error) = queue.unregister(&name).await {
            tracing::warn!(error = %error, "Failed to unregister the worker");
        }
        if *shutdown.borrow() {
            return Ok(());
        }
        if let Err(error) = stopped {
            tracing::error!(error = %error, ?pause, "The worker stopped on an error; restarting");
        }
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
        }
        pause = (pause * 2).min(MAX_RESTART_PAUSE);
    }
}

/// Records the worker and promotes due jobs before the library's first fetch.
async fn prepare<J>(queue: &JobQueue<J>, name: &str) -> Result<(), JobError>
where
    J: Serialize + DeserializeOwned + Send + Sync + Unpin + 'static,
{
    queue.register(name).await?;
    queue.promote_due().await?;
    Ok(())
}

/// One worker registration, from start to shutdown or to its first backend error.
///
/// Not an `async fn`: boxing the worker here proves it `Send` outside of a generator,
/// which the compiler cannot do for apalis's middleware stack inside one.
fn run_once<J, H, Fut>(
    name: &str,
    queue: &JobQueue<J>,
    settings: &JobSettings,
    handler: H,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<BoxFuture<'static, Result<(), WorkerError>>>
where
    J: Serialize + DeserializeOwned + Clone + Send + Sync + Unpin + 'static,
    H: Fn(J) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let max_attempts = settings.max_attempts.max(1);
    let backoff = ExponentialBackoffMaker::new(
        Duration::from_millis(settings.backoff_min_ms),
        Duration::from_secs(settings.backoff_max_secs).max(Duration::from_millis(1)),
        0.1,
        HasherRng::default(),
    )
    .map_err(|e| anyhow::anyhow!("jobs.backoff_min_ms and backoff_max_secs: {e}"))?
    .make_backoff();
    let worker = WorkerBuilder::new(name)
        .backend(queue.storage().poll_with_interval(IDLE_POLL))
        // A job waiting to retry keeps its slot: a failing dependency slows the worker
        // down instead of piling up jobs in memory.
        .concurrency(settings.concurrency.max(1))
        .retry(RetryPolicy::retries(max_attempts).with_backoff(backoff))
        .build(move |job: J, attempt: Attempt| {
            let run = AssertUnwindSafe(handler(job)).catch_unwind();
            async move {
                match run.await {
                    Ok(result) => result
                        .map_err(|error| give_up_after(error, attempt.current(), max_attempts)),
                    Err(_) => Err(panicked()),
                }
            }
        });
    Ok(worker
        .run_until(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
            Ok::<(), WorkerError>(())
        })
        .boxed())
}

/// The handler's error, marked final once the job has used its attempts so that it
/// goes to the dead set instead of back to the queue.
fn give_up_after(error: anyhow::Error, attempt: usize, max_attempts: usize) -> BoxDynError {
    if attempt >= max_attempts {
        tracing::error!(error = %error, attempt, "A job failed for the last time");
        Box::new(AbortError::new(error))
    } else {
        tracing::warn!(error = %error, attempt, "A job failed; it will be retried");
        error.into()
    }
}

/// A panic is a bug, not a transient failure: the job goes straight to the dead set.
fn panicked() -> BoxDynError {
    tracing::error!("A job panicked");
    Box::new(AbortError::new(anyhow::anyhow!("the job panicked")))
}

/// Unique per registration: in-flight sets and heartbeats are keyed by worker name.
fn worker_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".into());
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{host}-{}-{started}", std::process::id())
}
