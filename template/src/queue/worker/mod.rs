//! The consuming side: fetches jobs, runs each on a handler thread, settles them.
//!
//! Delivery is at least once. A delivered job stays in the consumer group's pending
//! list, leased to its worker, until the worker settles it; a worker that dies or stalls
//! past `lease_secs` loses its jobs to the next worker that looks. Handlers must
//! therefore be idempotent: running a job twice must have the effect of running it once
//! (the [`JobRun::id`] is the key to remember it by).

mod fetch;
mod lease;
mod settler;
mod threads;

use std::{
    collections::VecDeque,
    hash::{BuildHasher as _, RandomState},
    panic::AssertUnwindSafe,
    sync::Arc,
    time::{Duration, Instant},
};

use futures_util::FutureExt as _;
use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tracing::Instrument as _;

use self::{
    fetch::{Fetcher, RawDelivery},
    lease::Leases,
    settler::{Outcome, Outcomes, Settler},
    threads::HandlerThreads,
};
use super::{
    Backoff, DeadJob, JobQueue, JobRun, QueueSettings,
    envelope::{Envelope, EnvelopeHeader, JobId},
    metrics::{self, JobKind},
};
use crate::clock::{as_ms, unix_ms};

/// Pauses after the queue failed to answer: from 100 ms, doubling up to 5 s.
const PAUSES: Backoff = Backoff {
    min: Duration::from_millis(100),
    max: Duration::from_secs(5),
};

/// Runs `handler` on `queue`'s jobs until `shutdown` turns true (or its sender is
/// dropped); then stops fetching, hands claimed but unstarted jobs back to the queue,
/// and waits up to `shutdown_timeout_secs` for running jobs to finish.
///
/// At most `concurrency` handlers run at once, each on a thread of its own (see
/// `threads.rs`): a handler that blocks holds up no other job, a panic fails its job
/// only. A failed job is retried with exponential backoff; after `max_attempts`
/// failed runs, a panic, or `max_deliveries` deliveries that never finished (the
/// process died each time), it moves to the dead set. Redis failures never stop the
/// worker: it pauses and tries again.
///
/// # Errors
/// Fails when a thread cannot be started.
pub async fn run<J, H, Fut>(
    queue: JobQueue<J>,
    handler: H,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()>
where
    J: Serialize + DeserializeOwned + JobKind + Send + 'static,
    H: Fn(J, JobRun) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let settings = queue.settings().clone();
    let concurrency = settings.concurrency.get();
    let consumer: Arc<str> = consumer_name().into();
    let keys = queue.keys().clone();
    let leases = Leases::start(
        queue.redis().clone(),
        keys,
        consumer.clone(),
        settings.lease,
    )?;
    let settler = Settler::start(queue.clone(), consumer.clone(), leases.held());
    let mut fetcher = Fetcher::new(queue, consumer.clone(), leases.held());
    let runner = Runner {
        handler: Arc::new(handler),
        outcomes: settler.outcomes(),
        settings: Arc::new(settings.clone()),
    };
    let threads = HandlerThreads::start(concurrency, &tokio::runtime::Handle::current())?;
    let slots = Arc::new(Semaphore::new(concurrency));
    let mut claimed = VecDeque::new();
    let mut failures = 0;
    tracing::debug!(worker = %consumer, "Fetching jobs");

    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot?,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        if claimed.is_empty() {
            match fetcher.next(settings.fetch_batch.get()).await {
                Ok(deliveries) => {
                    failures = 0;
                    claimed.extend(deliveries.into_iter().filter_map(|raw| runner.accept(raw)));
                }
                Err(error) => {
                    failures += 1;
                    let pause = PAUSES.after(failures, 0);
                    tracing::warn!(error = %error, ?pause, "Failed to fetch jobs; trying again");
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        _ = shutdown.wait_for(|stop| *stop) => break,
                    }
                }
            }
        }
        if let Some(delivery) = claimed.pop_front() {
            threads.run(runner.perform(delivery, slot));
        }
    }

    for delivery in claimed {
        let payload = delivery.payload;
        runner
            .outcomes
            .send(delivery.entry, Outcome::HandBack { payload });
    }
    let limit = settings.shutdown_timeout;
    let all_slots = u32::try_from(concurrency)?;
    if tokio::time::timeout(limit, slots.acquire_many(all_slots))
        .await
        .is_err()
    {
        tracing::warn!(
            jobs = concurrency - slots.available_permits(),
            "Jobs still running at the shutdown timeout will run again on another worker"
        );
    }
    drop((runner, threads));
    if !settler.finish(limit).await {
        tracing::warn!("Jobs not settled by the shutdown timeout will run again on another worker");
    }
    drop(leases);
    Ok(())
}

/// A delivery accepted for running.
struct Delivery<J> {
    entry: String,
    /// The envelope's JSON, to retry or hand back from.
    payload: String,
    envelope: Envelope<J>,
}

/// What every running job shares: the handler, where outcomes go, the settings.
struct Runner<H> {
    handler: Arc<H>,
    outcomes: Outcomes,
    settings: Arc<QueueSettings>,
}

impl<H> Runner<H> {
    /// The delivery to run, or `None` after burying it: it was delivered too often
    /// without finishing, or does not decode as a job.
    fn accept<J: DeserializeOwned + JobKind>(&self, raw: RawDelivery) -> Option<Delivery<J>> {
        let max_deliveries = self.settings.max_deliveries.get();
        let decoded = serde_json::from_str::<Envelope<J>>(&raw.payload);
        let kind = decoded
            .as_ref()
            .map_or(metrics::UNKNOWN, |envelope| envelope.job.kind());
        let refusal = if raw.deliveries > max_deliveries {
            format!(
                "delivered {} times without finishing: its worker died or stalled each time",
                raw.deliveries - 1
            )
        } else {
            match decoded {
                Ok(envelope) => {
                    return Some(Delivery {
                        entry: raw.entry,
                        payload: raw.payload,
                        envelope,
                    });
                }
                Err(error) => format!("does not decode as a job: {error}"),
            }
        };
        tracing::error!(reason = %refusal, "Burying a job");
        let header = serde_json::from_str::<EnvelopeHeader>(&raw.payload).ok();
        let (id, failures) =
            header.map_or((JobId::new(), 0), |header| (header.id, header.failures));
        self.outcomes
            .send(raw.entry, bury(id, failures, refusal, raw.payload));
        metrics::buried(kind);
        None
    }

    /// Runs one job and settles it; `slot` is freed once the settlement is handed over.
    fn perform<J, Fut>(
        &self,
        delivery: Delivery<J>,
        slot: OwnedSemaphorePermit,
    ) -> impl Future<Output = ()> + Send + 'static
    where
        H: Fn(J, JobRun) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
        J: JobKind + Send + 'static,
    {
        let (handler, outcomes, settings) = (
            self.handler.clone(),
            self.outcomes.clone(),
            self.settings.clone(),
        );
        let run = delivery.envelope.run();
        let kind = delivery.envelope.job.kind();
        let span = tracing::info_span!("job", id = %run.id, attempt = run.attempt);
        crate::telemetry::join_trace(&span, delivery.envelope.trace.as_deref());
        async move {
            let job = delivery.envelope.job;
            let started = Instant::now();
            // Calling the handler inside the future catches a panic in the call too.
            let result = AssertUnwindSafe(async move { handler(job, run).await })
                .catch_unwind()
                .await;
            let took = started.elapsed();
            let outcome = match result {
                Ok(Ok(())) => {
                    metrics::ran(kind, "ok", took);
                    Outcome::Done
                }
                Ok(Err(error)) => {
                    metrics::ran(kind, "error", took);
                    failed(&settings, run, &error, delivery.payload)
                }
                Err(panic) => {
                    metrics::ran(kind, "panic", took);
                    let reason = format!("the job panicked: {}", panic_message(&*panic));
                    tracing::error!(reason = %reason, "Burying a job");
                    bury(run.id, run.attempt, reason, delivery.payload)
                }
            };
            count(kind, &outcome);
            outcomes.send(delivery.entry, outcome);
            drop(slot);
        }
        .instrument(span)
    }
}

/// Counts the fate of a `kind` job the worker ran.
fn count(kind: &'static str, outcome: &Outcome) {
    match outcome {
        Outcome::Done => metrics::finished(kind),
        Outcome::RetryAt { .. } => metrics::retried(kind),
        Outcome::Bury { .. } => metrics::buried(kind),
        Outcome::HandBack { .. } => {}
    }
}

/// The outcome of a failed run: a retry after the backoff, or burial once the job has
/// used its attempts.
fn failed(
    settings: &QueueSettings,
    run: JobRun,
    error: &anyhow::Error,
    payload: String,
) -> Outcome {
    let reason = format!("{error:#}");
    if run.attempt >= settings.max_attempts.get() {
        tracing::error!(error = %reason, "A job failed for the last time; burying it");
        return bury(run.id, run.attempt, reason, payload);
    }
    let jitter = RandomState::new().hash_one((run.id, run.attempt));
    let delay = settings.backoff.after(run.attempt, jitter);
    tracing::warn!(error = %reason, retry_in = ?delay, "A job failed; it will be retried");
    match with_failures(&payload, run.attempt) {
        Ok(payload) => Outcome::RetryAt {
            due_ms: unix_ms().saturating_add(as_ms(delay)),
            payload,
        },
        Err(error) => bury(
            run.id,
            run.attempt,
            format!("{reason}; not retried: {error}"),
            payload,
        ),
    }
}

/// The stored job `payload` with its failure count set to `failures`.
fn with_failures(payload: &str, failures: u32) -> serde_json::Result<String> {
    let mut envelope: serde_json::Value = serde_json::from_str(payload)?;
    envelope["failures"] = failures.into();
    Ok(envelope.to_string())
}

fn bury(id: JobId, attempts: u32, error: String, payload: String) -> Outcome {
    let record = DeadJob {
        id: id.to_string(),
        attempts,
        error,
        failed_at: unix_ms() / 1000,
        payload,
    };
    Outcome::Bury {
        id: record.id.clone(),
        record: serde_json::to_string(&record).expect("a dead job record always encodes"),
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message")
}

/// Unique per worker run: the consumer name its deliveries are pending under.
fn consumer_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".into());
    format!("{host}-{}-{}", std::process::id(), JobId::new())
}
