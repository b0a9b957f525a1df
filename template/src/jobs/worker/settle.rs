//! Settling delivered jobs: finished ones are acknowledged in batches, failed ones move
//! to the delayed set (a retry) or the dead set, unstarted ones go back to the stream.
//!
//! A settlement that fails on a Redis error is tried again, with the job's lease renewed
//! meanwhile; should the worker die first, the job is delivered again. Every script
//! checks that this worker still holds the entry, so trying again is always safe.

use std::{sync::Arc, time::Duration};

use serde::{Serialize, de::DeserializeOwned};
use tokio::{sync::mpsc, task::JoinHandle};

use super::lease::Held;
use crate::jobs::{
    JobError, JobQueue,
    keys::GROUP,
    queue::unix_ms,
    scripts::{ACK, BURY, HAND_BACK, RETRY_LATER},
};

/// Most settlements per round trip.
const MAX_BATCH: usize = 256;
const FIRST_PAUSE: Duration = Duration::from_millis(50);
const LONGEST_PAUSE: Duration = Duration::from_secs(5);

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

pub(super) struct Settlement {
    pub entry: String,
    pub outcome: Outcome,
}

/// Hands settlements to the worker's settler task.
#[derive(Clone)]
pub(super) struct Settle(mpsc::UnboundedSender<Settlement>);

impl Settle {
    pub fn send(&self, entry: String, outcome: Outcome) {
        // The settler outlives every sender: a failed send cannot happen.
        let _ = self.0.send(Settlement { entry, outcome });
    }
}

pub(super) struct Settler {
    settle: Settle,
    task: JoinHandle<()>,
}

impl Settler {
    pub fn start<J>(queue: JobQueue<J>, consumer: Arc<str>, held: Held) -> Self
    where
        J: Serialize + DeserializeOwned + Send + 'static,
    {
        let (sender, receiver) = mpsc::unbounded_channel();
        let task = tokio::spawn(settle_all(queue, consumer, held, receiver));
        Self {
            settle: Settle(sender),
            task,
        }
    }

    pub fn settle(&self) -> Settle {
        self.settle.clone()
    }

    /// Settles whatever is still queued, for at most `limit`; `false` if time ran out.
    pub async fn finish(self, limit: Duration) -> bool {
        drop(self.settle);
        let finished = tokio::time::timeout(limit, self.task).await;
        finished.is_ok()
    }
}

async fn settle_all<J>(
    queue: JobQueue<J>,
    consumer: Arc<str>,
    held: Held,
    mut receiver: mpsc::UnboundedReceiver<Settlement>,
) where
    J: Serialize + DeserializeOwned + Send + 'static,
{
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut pause = FIRST_PAUSE;
        while let Err(error) = settle(&queue, &consumer, &batch).await {
            tracing::warn!(error = %error, ?pause, "Failed to settle jobs; trying again");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(LONGEST_PAUSE);
        }
        held.remove(batch.iter().map(|settlement| &settlement.entry));
        batch.clear();
    }
}

async fn settle<J>(
    queue: &JobQueue<J>,
    consumer: &str,
    batch: &[Settlement],
) -> Result<(), JobError>
where
    J: Serialize + DeserializeOwned + Send + 'static,
{
    let keys = queue.keys();
    let mut connection = queue.connection();
    let done: Vec<&String> = batch
        .iter()
        .filter(|settlement| matches!(settlement.outcome, Outcome::Done))
        .map(|settlement| &settlement.entry)
        .collect();
    let mut settled = 0;
    if !done.is_empty() {
        let acked: usize = ACK
            .key(&keys.stream)
            .key(&keys.done)
            .arg(GROUP)
            .arg(consumer)
            .arg(&done)
            .invoke_async(&mut connection)
            .await?;
        settled += acked;
    }
    for Settlement { entry, outcome } in batch {
        let script = match outcome {
            Outcome::Done => continue,
            Outcome::RetryAt { .. } => &RETRY_LATER,
            Outcome::Bury { .. } => &BURY,
            Outcome::HandBack { .. } => &HAND_BACK,
        };
        let mut invocation = script.prepare_invoke();
        invocation
            .key(&keys.stream)
            .arg(GROUP)
            .arg(consumer)
            .arg(entry);
        match outcome {
            Outcome::Done => {}
            Outcome::RetryAt { due_ms, payload } => {
                invocation.key(&keys.delayed).arg(due_ms).arg(payload);
            }
            Outcome::Bury { id, record } => {
                invocation.key(&keys.dead).key(&keys.dead_index);
                invocation
                    .arg(id)
                    .arg(record)
                    .arg(unix_ms())
                    .arg(queue.settings().dead_max);
            }
            Outcome::HandBack { payload } => {
                invocation.arg(payload);
            }
        }
        let held: usize = invocation.invoke_async(&mut connection).await?;
        settled += held;
    }
    if settled < batch.len() {
        tracing::warn!(
            jobs = batch.len() - settled,
            "Jobs were settled by another worker after their leases ran out"
        );
    }
    Ok(())
}
