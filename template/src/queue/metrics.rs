//! Metrics of the queue, each labelled by `job`, the kind of job (see [`JobKind`]).
//!
//! Counters count in the process that acted: `jobs_enqueued_total` wherever jobs are
//! queued (the API), `jobs_finished_total`, `jobs_retried_total` and `jobs_buried_total`
//! in the worker that decided the job's fate. `job_duration_seconds{job,outcome}` times
//! each run (`outcome`: `ok`, `error` or `panic`). The gauge `jobs_queue_depth{state}`
//! holds what `jobs stats` prints (`queued`, `scheduled`, `running`, `dead`); each worker
//! with metrics on refreshes it every poll interval.

use std::time::Duration;

use serde::{Serialize, de::DeserializeOwned};

use super::JobQueue;

/// The kind of a job: its `job` label, so one of a fixed set, never data from the job.
pub trait JobKind {
    fn kind(&self) -> &'static str;
}

/// The `job` label of a stored job that no longer decodes.
pub(super) const UNKNOWN: &str = "unknown";

pub(super) fn enqueued(kind: &'static str) {
    metrics::counter!("jobs_enqueued_total", "job" => kind).increment(1);
}

/// Times one run; `outcome` is `ok`, `error` or `panic`.
pub(super) fn ran(kind: &'static str, outcome: &'static str, took: Duration) {
    metrics::histogram!("job_duration_seconds", "job" => kind, "outcome" => outcome).record(took);
}

pub(super) fn finished(kind: &'static str) {
    metrics::counter!("jobs_finished_total", "job" => kind).increment(1);
}

pub(super) fn retried(kind: &'static str) {
    metrics::counter!("jobs_retried_total", "job" => kind).increment(1);
}

pub(super) fn buried(kind: &'static str) {
    metrics::counter!("jobs_buried_total", "job" => kind).increment(1);
}

/// Sets `jobs_queue_depth` from the queue's stats every `every`, until aborted; a
/// failed read keeps the last values.
pub async fn report_depth<J>(queue: JobQueue<J>, every: Duration)
where
    J: Serialize + DeserializeOwned + Send + 'static,
{
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        match queue.stats().await {
            Ok(stats) => {
                let states = [
                    ("queued", stats.queued),
                    ("scheduled", stats.scheduled),
                    ("running", stats.running),
                    ("dead", stats.dead),
                ];
                for (state, jobs) in states {
                    // Counts of jobs stay far below 2^53, exact as f64.
                    #[expect(clippy::cast_precision_loss)]
                    metrics::gauge!("jobs_queue_depth", "state" => state).set(jobs as f64);
                }
            }
            Err(error) => tracing::warn!(error = %error, "Failed to read the queue's depth"),
        }
    }
}
