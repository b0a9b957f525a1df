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
    clock::{as_ms, unix_ms},
    redis::Connection,
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

/// An enqueue that failed, and what is known of the job since.
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    /// The job is certainly not queued: nothing reached Redis, or Redis refused it.
    #[error("the job was not queued: {0}")]
    NotQueued(#[source] JobError),
    /// The request reached Redis but its answer did not come back (a timeout, a dropped
    /// connection): each job may or may not be queued. Enqueue again with the same
    /// key ([`JobQueue::enqueue_keyed`]) to have it queued exactly once.
    #[error("the jobs {keys:?} may or may not be queued: {source}")]
    Unknown {
        /// Each job's idempotency key, with the id it was queued under if it was.
        keys: Vec<String>,
        ids: Vec<JobId>,
        #[source]
        source: JobError,
    },
}

impl EnqueueError {
    fn from_redis<J>(error: redis::RedisError, jobs: &[Pending<J>]) -> Self {
        if may_have_run(&error) {
            return Self::Unknown {
                keys: jobs.iter().map(|pending| pending.key.clone()).collect(),
                ids: jobs.iter().map(|pending| pending.envelope.id).collect(),
                source: error.into(),
            };
        }
        Self::NotQueued(error.into())
    }

    /// Whether the job may have been queued despite the error.
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, Self::Unknown { .. })
    }
}

/// Whether a request that failed with `error` may have run on the server: it timed out,
/// or its connection broke after the request could have been read. A refused or absent
/// connection, a write into a closed one, or an error answer mean it did not.
fn may_have_run(error: &redis::RedisError) -> bool {
    use std::io::ErrorKind;
    if !error.is_io_error() {
        return error.is_timeout();
    }
    // redis keeps the I/O error behind an `Arc` of its own.
    let io = std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<Arc<dyn std::error::Error + Send + Sync>>())
        .and_then(|inner| inner.downcast_ref::<std::io::Error>());
    !matches!(
        io.map(std::io::Error::kind),
        Some(
            ErrorKind::ConnectionRefused
                | ErrorKind::NotConnected
                | ErrorKind::BrokenPipe
                | ErrorKind::NotFound
        )
    )
}

/// A job on its way in: its envelope, its idempotency key and when it is due.
struct Pending<J> {
    envelope: Envelope<J>,
    key: String,
    /// Unix ms, or `None` to run as soon as a worker is free.
    due_ms: Option<u64>,
}

impl<J> Pending<J> {
    fn new(job: J, key: Option<&str>, due_ms: Option<u64>) -> Self {
        let envelope = Envelope::new(job);
        let key = key.map_or_else(|| envelope.id.to_string(), str::to_string);
        Self {
            envelope,
            key,
            due_ms,
        }
    }
}

/// The id of a one-job enqueue.
fn first(ids: Vec<JobId>) -> JobId {
    ids.into_iter().next().expect("one job queued, one id")
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

    /// Queues `job` for the next free worker. Its id is its idempotency key: after
    /// [`EnqueueError::Unknown`], [`JobQueue::enqueue_keyed`] with that key queues it at
    /// most once.
    ///
    /// # Errors
    /// [`EnqueueError`]: not queued, or not known to be.
    pub async fn enqueue(&self, job: J) -> Result<JobId, EnqueueError>
    where
        J: JobKind,
    {
        self.enqueue_all_with(vec![Pending::new(job, None, None)])
            .await
            .map(first)
    }

    /// Queues `job` unless a job was queued under `key` within the idempotency window
    /// (`jobs.idempotency_window_secs`); returns the id of the job `key` stands for, new
    /// or earlier. Retrying after any error is therefore safe.
    ///
    /// # Errors
    /// [`EnqueueError`]: not queued, or not known to be.
    pub async fn enqueue_keyed(&self, job: J, key: &str) -> Result<JobId, EnqueueError>
    where
        J: JobKind,
    {
        self.enqueue_all_with(vec![Pending::new(job, Some(key), None)])
            .await
            .map(first)
    }

    /// Queues `job` to run once `delay` has passed, under its id as key.
    ///
    /// # Errors
    /// [`EnqueueError`]: not queued, or not known to be.
    pub async fn enqueue_in(&self, job: J, delay: Duration) -> Result<JobId, EnqueueError>
    where
        J: JobKind,
    {
        let due = unix_ms().saturating_add(as_ms(delay));
        self.enqueue_all_with(vec![Pending::new(job, None, Some(due))])
            .await
            .map(first)
    }

    /// Queues every job in one step: all of them or, when Redis fails, none; each under
    /// its id as key.
    ///
    /// # Errors
    /// [`EnqueueError`]: none queued, or not known whether all were.
    pub async fn enqueue_all(&self, jobs: Vec<J>) -> Result<Vec<JobId>, EnqueueError>
    where
        J: JobKind,
    {
        let pending = jobs
            .into_iter()
            .map(|job| Pending::new(job, None, None))
            .collect();
        self.enqueue_all_with(pending).await
    }

    async fn enqueue_all_with(&self, jobs: Vec<Pending<J>>) -> Result<Vec<JobId>, EnqueueError>
    where
        J: JobKind,
    {
        let mut entries = Vec::with_capacity(jobs.len());
        for pending in &jobs {
            let payload = serde_json::to_string(&pending.envelope)
                .map_err(|error| EnqueueError::NotQueued(error.into()))?;
            entries.push(scripts::NewJob {
                holder: self.keys.idempotency(&pending.key),
                id: pending.envelope.id.to_string(),
                payload,
                due_ms: pending.due_ms,
            });
        }
        let window = as_ms(self.settings.idempotency_window);
        let holders = scripts::enqueue(&mut self.connection(), &self.keys, window, &entries)
            .await
            .map_err(|error| EnqueueError::from_redis(error, &jobs))?;
        let mut ids = Vec::with_capacity(jobs.len());
        for (pending, holder) in jobs.iter().zip(holders) {
            // The key holds ids this queue wrote; anything else would be a foreign key.
            let id = holder.parse().unwrap_or(pending.envelope.id);
            if id == pending.envelope.id {
                metrics::enqueued(pending.envelope.job.kind());
            }
            ids.push(id);
        }
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

    /// Deletes the queue: its jobs, queued, delayed and dead, and its counters. Its
    /// idempotency keys expire on their own. For benchmarks and retiring a queue; a
    /// worker still running on it starts an empty one.
    ///
    /// # Errors
    /// Fails when Redis is unavailable.
    pub async fn remove(&self) -> Result<(), JobError> {
        let keys = &self.keys;
        let all = [
            &keys.stream,
            &keys.delayed,
            &keys.dead,
            &keys.dead_index,
            &keys.done,
            &keys.workers,
        ];
        let _: () = redis::cmd("DEL")
            .arg(&all[..])
            .query_async(&mut self.connection())
            .await?;
        Ok(())
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
