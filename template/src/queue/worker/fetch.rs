//! Where a worker's jobs come from: new stream entries, and every poll interval the due
//! delayed jobs and the entries of workers that died or stalled past their lease.

use std::{sync::Arc, time::Instant};

use serde::{Serialize, de::DeserializeOwned};

use super::lease::Held;
use crate::{
    clock::as_ms,
    queue::{JobError, JobQueue, keys::GROUP, scripts},
    redis::Connection,
};

/// One delivery of a stream entry to this worker.
pub(super) struct RawDelivery {
    pub entry: String,
    /// The envelope's JSON.
    pub payload: String,
    /// Deliveries of this entry so far, this one included.
    pub deliveries: u32,
}

/// `XREADGROUP` answers: per stream, its entries as `(id, [field, value, …])`.
type ReadReply = Option<Vec<(String, Vec<(String, Vec<String>)>)>>;

pub(super) struct Fetcher<J> {
    queue: JobQueue<J>,
    consumer: Arc<str>,
    held: Held,
    /// Blocking reads get a connection of their own, opened on first use.
    reads: Option<Connection>,
    last_upkeep: Option<Instant>,
    /// Where the next look for stale entries starts: it goes on through the pending
    /// entries across polls, so those behind many live ones are reached too.
    stale_cursor: String,
}

impl<J> Fetcher<J>
where
    J: Serialize + DeserializeOwned + Send + 'static,
{
    pub fn new(queue: JobQueue<J>, consumer: Arc<str>, held: Held) -> Self {
        Self {
            queue,
            consumer,
            held,
            reads: None,
            last_upkeep: None,
            stale_cursor: "-".into(),
        }
    }

    /// Up to `max` deliveries, waiting at most one poll interval for new jobs. Every
    /// entry returned is in the worker's held set, so its lease is renewed.
    pub async fn next(&mut self, max: usize) -> Result<Vec<RawDelivery>, JobError> {
        match self.fetch(max).await {
            Err(JobError::Redis(error)) if error.code() == Some("NOGROUP") => {
                // A new queue, or a Redis that restarted empty.
                self.create_group().await?;
                Ok(Vec::new())
            }
            Err(JobError::Redis(error)) => {
                // The blocking connection may be the broken part: start afresh.
                self.reads = None;
                Err(error.into())
            }
            fetched => fetched,
        }
    }

    async fn fetch(&mut self, max: usize) -> Result<Vec<RawDelivery>, JobError> {
        let poll = self.queue.settings().poll_interval;
        if self.last_upkeep.is_none_or(|last| last.elapsed() >= poll) {
            self.queue.promote_due().await?;
            self.last_upkeep = Some(Instant::now());
            let stale = self.claim_stale(max).await?;
            if !stale.is_empty() {
                return Ok(stale);
            }
        }
        self.read_new(max).await
    }

    async fn claim_stale(&mut self, max: usize) -> Result<Vec<RawDelivery>, JobError> {
        let claimed = scripts::claim_stale(
            &mut self.queue.connection(),
            self.queue.keys(),
            &self.consumer,
            as_ms(self.queue.settings().lease),
            max,
            &self.stale_cursor,
        )
        .await?;
        let Some(stale) = claimed else {
            // A new queue, or a Redis that restarted empty.
            self.create_group().await?;
            return Ok(Vec::new());
        };
        self.stale_cursor = stale.cursor;
        let fresh = stale
            .entries
            .into_iter()
            // Held here already: this worker's renewals were late, but it still runs it.
            .filter(|(entry, _, _)| !self.held.contains(entry))
            .map(|(entry, payload, deliveries)| RawDelivery {
                entry,
                payload,
                deliveries,
            });
        Ok(self.hold(fresh))
    }

    async fn read_new(&mut self, max: usize) -> Result<Vec<RawDelivery>, JobError> {
        let poll = self.queue.settings().poll_interval;
        let reads = match &mut self.reads {
            Some(reads) => reads,
            empty => empty.insert(self.queue.redis().dedicated_connection(poll).await?),
        };
        let reply: ReadReply = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(GROUP)
            .arg(&*self.consumer)
            .arg("COUNT")
            .arg(max)
            .arg("BLOCK")
            .arg(as_ms(poll))
            .arg("STREAMS")
            .arg(&self.queue.keys().stream)
            .arg(">")
            .query_async(reads)
            .await?;
        let entries = reply.into_iter().flatten().flat_map(|(_, entries)| entries);
        let deliveries = entries.map(|(entry, fields)| RawDelivery {
            entry,
            payload: job_field(fields),
            deliveries: 1,
        });
        Ok(self.hold(deliveries))
    }

    fn hold(&self, deliveries: impl Iterator<Item = RawDelivery>) -> Vec<RawDelivery> {
        let deliveries: Vec<_> = deliveries.collect();
        self.held
            .add(deliveries.iter().map(|delivery| delivery.entry.clone()));
        deliveries
    }

    /// Reads from the start of the stream, so jobs queued before any worker ran count.
    async fn create_group(&self) -> Result<(), JobError> {
        let created: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.queue.keys().stream)
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut self.queue.connection())
            .await;
        match created {
            Err(error) if error.code() != Some("BUSYGROUP") => Err(error.into()),
            _ => Ok(()),
        }
    }
}

/// The value of the `job` field; empty when missing, which then fails to decode.
fn job_field(fields: Vec<String>) -> String {
    let mut fields = fields.into_iter();
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        if name == "job" {
            return value;
        }
    }
    String::new()
}
