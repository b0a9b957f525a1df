//! Settling delivered jobs: finished ones are acknowledged in batches, failed ones move
//! to the delayed set (a retry) or the dead set, unstarted ones go back to the stream.
//!
//! Runners hand each job's [`Outcome`] to the settler task through [`Outcomes`]. A batch
//! that fails on a Redis error is tried again, with the jobs' leases renewed meanwhile;
//! should the worker die first, the jobs are delivered again. Every script checks that
//! this worker still holds the entry, so trying again is always safe.

use std::{sync::Arc, time::Duration};

use serde::{Serialize, de::DeserializeOwned};
use tokio::{sync::mpsc, task::JoinHandle};

use super::lease::Held;
use crate::{
    clock::unix_ms,
    queue::{
        Backoff, JobError, JobQueue,
        scripts::{self, Burial},
    },
};

/// Most settlements per round trip.
const MAX_BATCH: usize = 256;
/// Pauses while Redis fails: from 50 ms, doubling up to 5 s.
const PAUSES: Backoff = Backoff {
    min: Duration::from_millis(50),
    max: Duration::from_secs(5),
};

/// What becomes of a delivered entry.
pub(super) enum Outcome {
    /// The job finished.
    Done,
    /// The job failed and runs again at `due_ms` as `payload`.
    RetryAt { due_ms: u64, payload: String },
    /// The job goes to the dead set as `record`, under its job `id`.
    Bury { id: String, record: String },
    /// The job never started and goes back to the stream as `payload`.
    HandBack { payload: String },
}

/// An entry and what becomes of it.
struct Decided {
    entry: String,
    outcome: Outcome,
}

/// Hands outcomes to the settler task.
#[derive(Clone)]
pub(super) struct Outcomes(mpsc::UnboundedSender<Decided>);

impl Outcomes {
    pub fn send(&self, entry: String, outcome: Outcome) {
        // The settler outlives every sender: a failed send cannot happen.
        let _ = self.0.send(Decided { entry, outcome });
    }
}

/// The settler task of one worker.
pub(super) struct Settler {
    outcomes: Outcomes,
    task: JoinHandle<()>,
}

impl Settler {
    pub fn start<J>(queue: JobQueue<J>, consumer: Arc<str>, held: Held) -> Self
    where
        J: Serialize + DeserializeOwned + Send + 'static,
    {
        let (sender, receiver) = mpsc::unbounded_channel();
        let task = tokio::spawn(settle_until_closed(queue, consumer, held, receiver));
        Self {
            outcomes: Outcomes(sender),
            task,
        }
    }

    pub fn outcomes(&self) -> Outcomes {
        self.outcomes.clone()
    }

    /// Settles whatever is still queued, for at most `limit`; `false` if time ran out.
    pub async fn finish(self, limit: Duration) -> bool {
        drop(self.outcomes);
        let finished = tokio::time::timeout(limit, self.task).await;
        finished.is_ok()
    }
}

/// Settles batches until every [`Outcomes`] is dropped.
async fn settle_until_closed<J>(
    queue: JobQueue<J>,
    consumer: Arc<str>,
    held: Held,
    mut receiver: mpsc::UnboundedReceiver<Decided>,
) where
    J: Serialize + DeserializeOwned + Send + 'static,
{
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut failures = 0;
        while let Err(error) = settle_batch(&queue, &consumer, &batch).await {
            failures += 1;
            let pause = PAUSES.after(failures, 0);
            tracing::warn!(error = %error, ?pause, "Failed to settle jobs; trying again");
            tokio::time::sleep(pause).await;
        }
        held.remove(batch.iter().map(|decided| &decided.entry));
        batch.clear();
    }
}

async fn settle_batch<J>(
    queue: &JobQueue<J>,
    consumer: &str,
    batch: &[Decided],
) -> Result<(), JobError>
where
    J: Serialize + DeserializeOwned + Send + 'static,
{
    let keys = queue.keys();
    let mut connection = queue.connection();
    let done: Vec<&String> = batch
        .iter()
        .filter(|decided| matches!(decided.outcome, Outcome::Done))
        .map(|decided| &decided.entry)
        .collect();
    let mut settled = 0;
    if !done.is_empty() {
        settled += scripts::ack(&mut connection, keys, consumer, &done).await?;
    }
    for Decided { entry, outcome } in batch {
        let held = match outcome {
            Outcome::Done => continue,
            Outcome::RetryAt { due_ms, payload } => {
                scripts::retry_later(&mut connection, keys, consumer, entry, *due_ms, payload)
                    .await?
            }
            Outcome::Bury { id, record } => {
                let burial = Burial {
                    id,
                    record,
                    at_ms: unix_ms(),
                    keep: queue.settings().dead_max.get(),
                };
                scripts::bury(&mut connection, keys, consumer, entry, &burial).await?
            }
            Outcome::HandBack { payload } => {
                scripts::hand_back(&mut connection, keys, consumer, entry, payload).await?
            }
        };
        settled += usize::from(held);
    }
    if settled < batch.len() {
        tracing::warn!(
            jobs = batch.len() - settled,
            "Jobs were settled by another worker after their leases ran out"
        );
    }
    Ok(())
}
