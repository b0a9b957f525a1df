//! The enqueue side of a queue, and the inspection behind the `jobs` commands.

use std::{marker::PhantomData, sync::Arc, time::Duration};

use redis::AsyncCommands as _;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::{
    QueueSettings,
    envelope::{Envelope, JobId},
    keys::QueueKeys,
    metrics::{self, JobKind},
    scripts,
};
use crate::{
    redis::Connection,
    clock::{as_ms, unix_ms},
    redis::Redis,
};

/// Jobs moved per script call; well under Lua's `unpack` limit.
pub(super) const CHUNK: usize = 1000;
/// Consumers (one per worker start) idle this long with nothing held are forgotten.
const CONSUMER_RETENTION: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("the job queue is unavailable: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("the job does not encode or decode as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Counts of jobs per state, as `jobs stats` prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct JobStats {
    /// Ready for the next free worker, due retries and delayed jobs included.
    pub queued: u64,
    /// Delayed jobs and retries not due yet.
    pub scheduled: u64,
    /// Delivered to a worker and not settled, jobs awaiting recovery from a dead worker
    /// included.
    pub running: u64,
    /// Finished since the queue was created.
    pub done: u64,
    /// Out of attempts or deliveries; see `jobs dead` and `jobs retry`.
    pub dead: u64,
    /// Workers that renewed their leases within the last lease.
    pub workers: u64,
}

/// A job that failed `max_attempts` times, panicked, or was delivered `max_deliveries`
/// times without finishing; kept for inspection and `jobs retry`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeadJob {
    pub id: String,
    /// Runs that ended in an error.
    pub attempts: u32,
    pub error: String,
    /// Unix seconds of the burial.
    pub failed_at: u64,
    /// The job as stored, in JSON.
    pub payload: String,
}

/// A typed queue of `J` jobs; cheap to clone, shared by every request.
pub struct JobQueue<J> {
    redis: Redis,
    keys: Arc<QueueKeys>,
    settings: Arc<QueueSettings>,
    job: PhantomData<fn() -> J>,
}

impl<J> Clone for JobQueue<J> {
    fn clone(&self) -> Self {
        Self {
            redis: self.redis.clone(),
            keys: self.keys.clone(),
            settings: self.settings.clone(),
            job: PhantomData,
        }
    }
}

impl<J> JobQueue<J>
where
    J: Serialize + DeserializeOwned + Send + 'static,
{
    /// The queue `name` under the service's Redis key prefix.
    pub fn new(redis: &Redis, settings: &QueueSettings, name: &str) -> Self {
        Self {
            redis: redis.clone(),
            keys: Arc::new(QueueKeys::new(&redis.key(name))),
            settings: Arc::new(settings.clone()),
            job: PhantomData,
        }
    }

    /// Queues `job` for the next free worker.
    ///
    /// # Errors
    /// Fails when Redis is unavailable; the job is then not queued.
    pub async fn enqueue(&self, job: J) -> Result<JobId, JobError>
    where
        J: JobKind,
    {
        let kind = job.kind();
        let envelope = Envelope::new(job);
        let _: String = self
            .connection()
            .xadd(
                &self.keys.stream,
                "*",
                &[("job", serde_json::to_string(&envelope)?)],
            )
            .await?;
        metrics::enqueued(kind);
        Ok(envelope.id)
    }

    /// Queues `job` to run once `delay` has passed.
    ///
    /// # Errors
    /// Fails when Redis is unavailable; the job is then not queued.
    pub async fn enqueue_in(&self, job: J, delay: Duration) -> Result<JobId, JobError>
    where
        J: JobKind,
    {
        let kind = job.kind();
        let envelope = Envelope::new(job);
        let due = unix_ms().saturating_add(as_ms(delay));
        let _: () = self
            .connection()
            .zadd(&self.keys.delayed, serde_json::to_string(&envelope)?, due)
            .await?;
        metrics::enqueued(kind);
        Ok(envelope.id)
    }

    /// Queues `job` unless a job queued under the same `key` in the last two purge
    /// intervals exists: lets every worker process schedule a periodic job, once.
    /// Returns the id of the job the key stands for, new or earlier.
    ///
    /// # Errors
    /// Fails when Redis is unavailable.
    pub async fn enqueue_once(&self, job: J, key: &str) -> Result<JobId, JobError>
    where
        J: JobKind,
    {
        let kind = job.kind();
        let envelope = Envelope::new(job);
        let remember = self.settings.purge_interval * 2;
        let holder = scripts::enqueue_once(
            &mut self.connection(),
            &self.keys,
            &self.keys.once(key),
            &envelope.id.to_string(),
            &serde_json::to_string(&envelope)?,
            as_ms(remember),
        )
        .await?;
        // The key holds ids this queue wrote; anything else would be a foreign key.
        let id = holder.parse().unwrap_or(envelope.id);
        if id == envelope.id {
            metrics::enqueued(kind);
        }
        Ok(id)
    }

    /// Queues every job in one transaction: all of them or, when Redis fails, none.
    ///
    /// # Errors
    /// Fails when Redis is unavailable; no job is then queued.
    pub async fn enqueue_all(&self, jobs: Vec<J>) -> Result<Vec<JobId>, JobError>
    where
        J: JobKind,
    {
        let kinds: Vec<_> = jobs.iter().map(JobKind::kind).collect();
        let mut ids = Vec::with_capacity(jobs.len());
        let mut transaction = redis::pipe();
        transaction.atomic();
        for job in jobs {
            let envelope = Envelope::new(job);
            ids.push(envelope.id);
            transaction
                .xadd(
                    &self.keys.stream,
                    "*",
                    &[("job", serde_json::to_string(&envelope)?)],
                )
                .ignore();
        }
        let _: () = transaction.query_async(&mut self.connection()).await?;
        kinds.into_iter().for_each(metrics::enqueued);
        Ok(ids)
    }

    /// # Errors
    /// Fails when Redis is unavailable.
    pub async fn stats(&self) -> Result<JobStats, JobError> {
        let now = unix_ms();
        let live_since = now.saturating_sub(as_ms(self.settings.lease));
        let [ready, pending, due, later, done, dead, workers] =
            scripts::stats(&mut self.connection(), &self.keys, now, live_since).await?;
        Ok(JobStats {
            queued: ready + due,
            scheduled: later,
            running: pending,
            done,
            dead,
            workers,
        })
    }

    /// Dead jobs, oldest burial first.
    ///
    /// # Errors
    /// Fails when Redis is unavailable or a record does not decode.
    pub async fn dead(&self) -> Result<Vec<DeadJob>, JobError> {
        let mut connection = self.connection();
        let ids: Vec<String> = connection.zrange(&self.keys.dead_index, 0, -1).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let records: Vec<Option<String>> = connection.hmget(&self.keys.dead, &ids).await?;
        records
            .into_iter()
            .flatten()
            .map(|record| Ok(serde_json::from_str(&record)?))
            .collect()
    }

    /// Queues a dead job again under its id, with fresh attempts. Returns `false` when
    /// no dead job has this id.
    ///
    /// # Errors
    /// Fails when Redis is unavailable or the record does not decode.
    pub async fn retry_dead(&self, id: &str) -> Result<bool, JobError> {
        let record: Option<String> = self.connection().hget(&self.keys.dead, id).await?;
        let Some(record) = record else {
            return Ok(false);
        };
        let dead: DeadJob = serde_json::from_str(&record)?;
        // Kept as JSON: a job that no longer decodes as `J` can still be revived once
        // the code reads it again.
        let mut envelope: serde_json::Value = serde_json::from_str(&dead.payload)?;
        envelope["failures"] = 0.into();
        let revived = scripts::revive(
            &mut self.connection(),
            &self.keys,
            id,
            &envelope.to_string(),
        )
        .await?;
        Ok(revived)
    }

    /// Deletes dead jobs buried more than `age` ago and forgets departed workers.
    /// Returns how many dead jobs went.
    ///
    /// # Errors
    /// Fails when Redis is unavailable.
    pub async fn purge(&self, age: Duration) -> Result<usize, JobError> {
        let cutoff = unix_ms().saturating_sub(as_ms(age));
        let mut purged = 0;
        loop {
            let deleted =
                scripts::purge_dead(&mut self.connection(), &self.keys, cutoff, CHUNK).await?;
            purged += deleted;
            if deleted < CHUNK {
                break;
            }
        }
        scripts::forget_departed(
            &mut self.connection(),
            &self.keys,
            as_ms(CONSUMER_RETENTION),
            unix_ms().saturating_sub(as_ms(CONSUMER_RETENTION)),
        )
        .await?;
        Ok(purged)
    }

    /// Moves due delayed jobs and retries to the stream, in chunks.
    ///
    /// # Errors
    /// Fails when Redis is unavailable.
    pub async fn promote_due(&self) -> Result<usize, JobError> {
        let mut promoted = 0;
        loop {
            let moved =
                scripts::promote_due(&mut self.connection(), &self.keys, unix_ms(), CHUNK).await?;
            promoted += moved;
            if moved < CHUNK {
                return Ok(promoted);
            }
        }
    }

    pub(super) fn redis(&self) -> &Redis {
        &self.redis
    }

    pub(super) fn keys(&self) -> &QueueKeys {
        &self.keys
    }

    pub fn settings(&self) -> &QueueSettings {
        &self.settings
    }

    pub(super) fn connection(&self) -> Connection {
        self.redis.connection()
    }
}
