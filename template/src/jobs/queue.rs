//! The enqueue side of the job queue, and the inspection behind the `jobs` commands.
//!
//! Jobs live in Redis under `<redis.key_prefix>jobs:*`, in apalis-redis's layout: an
//! active list, a scheduled set, one in-flight set per worker, done and dead sets.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apalis::prelude::{TaskBuilder, TaskSink, TaskSinkError};
use apalis_core::backend::Vacuum;
use apalis_redis::{Config, RedisStorage};
use redis::{AsyncCommands as _, aio::ConnectionManager};
use serde::{Serialize, de::DeserializeOwned};

use super::{
    JobSettings,
    scripts::{FORGET_PURGED, PROMOTE_DUE},
};
use crate::redis::Redis;

/// Jobs moved per script call when promoting a backlog; well under Lua's unpack limit.
const PROMOTE_CHUNK: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("failed to enqueue the job: {0}")]
    Enqueue(#[from] TaskSinkError<apalis_redis::Error>),
    #[error("the job queue is unavailable: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("the job store failed: {0}")]
    Store(#[from] apalis_redis::Error),
    #[error("the stored job does not decode: {0}")]
    Decode(#[from] serde_json::Error),
}

/// Counts of jobs per state, as `jobs stats` prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct JobStats {
    /// Waiting for a worker.
    pub queued: u64,
    /// Delayed: due later.
    pub scheduled: u64,
    /// Claimed by a live or not yet recovered worker, retries included.
    pub running: u64,
    pub done: u64,
    /// Out of attempts; see `jobs dead` and `jobs retry`.
    pub dead: u64,
    pub workers: u64,
}

/// A job that failed `max_attempts` times (or panicked), kept for inspection.
#[derive(Debug, Clone, Serialize)]
pub struct DeadJob {
    pub id: String,
    pub attempts: u64,
    pub error: String,
    /// Unix seconds of the last failure.
    pub failed_at: u64,
    /// The job as stored, in JSON.
    pub payload: String,
}

/// A dead job's payload, then its attempts, result and failure time.
type DeadRecord = (Option<String>, (Option<u64>, Option<String>, Option<u64>));

/// A typed queue of `J` jobs; cheap to clone, shared by every request.
pub struct JobQueue<J> {
    storage: RedisStorage<J>,
    connection: ConnectionManager,
}

impl<J> Clone for JobQueue<J> {
    fn clone(&self) -> Self {
        Self {
            storage: self.storage.clone(),
            connection: self.connection.clone(),
        }
    }
}

impl<J> JobQueue<J>
where
    J: Serialize + DeserializeOwned + Send + Sync + Unpin + 'static,
{
    /// The queue `name` under the service's Redis key prefix.
    pub fn new(redis: &Redis, settings: &JobSettings, name: &str) -> Self {
        let config = Config::default()
            .queue(redis.key(name))
            .batch_size(settings.fetch_batch.max(1))
            .heartbeat_interval(settings.heartbeat())
            .missed_heartbeats(settings.missed_heartbeats())
            // Crashed workers are detected by their heartbeats; per-job leases would cost
            // a round trip per batch and recover nothing more.
            .lock_tasks(false)
            // Nothing subscribes to per-job pub/sub events.
            .emit_events(false)
            // Keys of `enqueue_once` outlive the period they deduplicate.
            .idempotency_ttl(Some(settings.purge_interval() * 2));
        Self {
            storage: RedisStorage::new(redis.connection()).with_config(config),
            connection: redis.connection(),
        }
    }

    /// The storage a worker consumes.
    pub(super) fn storage(&self) -> RedisStorage<J> {
        self.storage.clone()
    }

    fn config(&self) -> &Config {
        self.storage.get_config()
    }

    /// Queues `job` for the next free worker.
    ///
    /// # Errors
    /// Fails when Redis is unavailable; the job is then not queued.
    pub async fn enqueue(&self, job: J) -> Result<(), JobError> {
        Ok(self.storage.clone().push(job).await?)
    }

    /// Queues `job` to run once `delay` (whole seconds) has passed.
    ///
    /// # Errors
    /// Fails when Redis is unavailable; the job is then not queued.
    pub async fn enqueue_in(&self, job: J, delay: Duration) -> Result<(), JobError> {
        let task = TaskBuilder::new(job).run_after(delay).build();
        Ok(self.storage.clone().push_task(task).await?)
    }

    /// Queues `job` unless a job with the same `key` was queued in the last two purge
    /// intervals: lets several worker processes schedule a periodic job once.
    ///
    /// # Errors
    /// Fails when Redis is unavailable.
    pub async fn enqueue_once(&self, job: J, key: &str) -> Result<(), JobError> {
        let task = TaskBuilder::new(job).idempotency_key(key).build();
        Ok(self.storage.clone().push_task(task).await?)
    }

    /// Queues every job in one round trip.
    ///
    /// # Errors
    /// Fails when Redis is unavailable; no job is then queued.
    pub async fn enqueue_all(&self, jobs: Vec<J>) -> Result<(), JobError> {
        Ok(self.storage.clone().push_bulk(jobs).await?)
    }

    /// # Errors
    /// Fails when Redis is unavailable.
    pub async fn stats(&self) -> Result<JobStats, JobError> {
        let config = self.config();
        let now = unix_now();
        let mut connection = self.connection.clone();
        let (active, due, later, done, dead, workers): (u64, u64, u64, u64, u64, Vec<String>) =
            redis::pipe()
                .llen(config.active_jobs_list())
                .zcount(config.scheduled_jobs_set(), "-inf", now)
                .zcount(config.scheduled_jobs_set(), format!("({now}"), "+inf")
                .scard(config.done_jobs_set())
                .scard(config.dead_jobs_set())
                .zrange(config.workers_set(), 0, -1)
                .query_async(&mut connection)
                .await?;
        let mut running: Vec<u64> = Vec::new();
        if !workers.is_empty() {
            let mut in_flight = redis::pipe();
            for worker in &workers {
                in_flight.scard(format!("{}:{worker}", config.inflight_jobs_set()));
            }
            running = in_flight.query_async(&mut connection).await?;
        }
        Ok(JobStats {
            queued: active + due,
            scheduled: later,
            running: running.iter().sum(),
            done,
            dead,
            workers: workers.len() as u64,
        })
    }

    /// Dead jobs, oldest failure first.
    ///
    /// # Errors
    /// Fails when Redis is unavailable.
    pub async fn dead(&self) -> Result<Vec<DeadJob>, JobError> {
        let config = self.config();
        let mut connection = self.connection.clone();
        let ids: Vec<String> = redis::cmd("SMEMBERS")
            .arg(config.dead_jobs_set())
            .query_async(&mut connection)
            .await?;
        let mut records = redis::pipe();
        for id in &ids {
            records
                .hget(config.job_data_hash(), id)
                .hmget(self.meta_key(id), &["attempts", "result", "done_at"]);
        }
        let rows: Vec<DeadRecord> = records.query_async(&mut connection).await?;
        let mut dead: Vec<DeadJob> = ids
            .into_iter()
            .zip(rows)
            .map(|(id, (payload, (attempts, result, failed_at)))| DeadJob {
                id,
                attempts: attempts.unwrap_or_default(),
                error: result.as_deref().map(error_of).unwrap_or_default(),
                failed_at: failed_at.unwrap_or_default(),
                payload: payload.unwrap_or_default(),
            })
            .collect();
        dead.sort_by_key(|job| job.failed_at);
        Ok(dead)
    }

    /// Queues a dead job again as a new job with fresh attempts, and forgets the dead
    /// one. Returns `false` when no dead job has this id.
    ///
    /// # Errors
    /// Fails when Redis is unavailable or the stored job no longer decodes as `J`.
    pub async fn retry_dead(&self, id: &str) -> Result<bool, JobError> {
        let config = self.config();
        let mut connection = self.connection.clone();
        let (is_dead, payload): (bool, Option<Vec<u8>>) = redis::pipe()
            .sismember(config.dead_jobs_set(), id)
            .hget(config.job_data_hash(), id)
            .query_async(&mut connection)
            .await?;
        let Some(payload) = payload.filter(|_| is_dead) else {
            return Ok(false);
        };
        self.enqueue(serde_json::from_slice(&payload)?).await?;
        redis::pipe()
            .srem(config.dead_jobs_set(), id)
            .hdel(config.job_data_hash(), id)
            .del(self.meta_key(id))
            .query_async::<()>(&mut connection)
            .await?;
        Ok(true)
    }

    /// Deletes the records of jobs that finished or died more than `age` ago. Returns
    /// how many were deleted.
    ///
    /// # Errors
    /// Fails when Redis is unavailable.
    pub async fn purge(&self, age: Duration) -> Result<usize, JobError> {
        let purged = self.storage.clone().vacuum_before(age).await?;
        let config = self.config();
        let _: u64 = FORGET_PURGED
            .key(config.done_jobs_set())
            .key(config.dead_jobs_set())
            .key(config.job_data_hash())
            .invoke_async(&mut self.connection.clone())
            .await?;
        self.forget_departed_workers().await?;
        Ok(purged)
    }

    /// Records a worker's name before it starts, so that the purge job can clean up
    /// after it should it crash.
    ///
    /// # Errors
    /// Fails when Redis is unavailable.
    pub(super) async fn register(&self, worker: &str) -> Result<(), JobError> {
        let mut connection = self.connection.clone();
        connection.sadd::<_, _, ()>(self.worker_names(), worker).await?;
        Ok(())
    }

    /// Removes a stopped worker's registration: apalis-redis 1.0 removes the wrong
    /// member on shutdown, leaving the worker listed until its lease runs out.
    ///
    /// # Errors
    /// Fails when Redis is unavailable.
    pub(super) async fn unregister(&self, worker: &str) -> Result<(), JobError> {
        redis::pipe()
            .zrem(self.config().workers_set(), worker)
            .del(self.worker_metadata_key(worker))
            .srem(self.worker_names(), worker)
            .query_async::<()>(&mut self.connection.clone())
            .await?;
        Ok(())
    }

    /// Forgets workers that died without unregistering once their lease has run out
    /// and their jobs went back to the queue.
    async fn forget_departed_workers(&self) -> Result<(), JobError> {
        let mut connection = self.connection.clone();
        let (known, registered): (Vec<String>, Vec<String>) = redis::pipe()
            .smembers(self.worker_names())
            .zrange(self.config().workers_set(), 0, -1)
            .query_async(&mut connection)
            .await?;
        for worker in known.iter().filter(|worker| !registered.contains(worker)) {
            redis::pipe()
                .del(self.worker_metadata_key(worker))
                .srem(self.worker_names(), worker)
                .query_async::<()>(&mut connection)
                .await?;
        }
        Ok(())
    }

    /// Our own set of the names of workers started on this queue.
    fn worker_names(&self) -> String {
        format!("{}:worker-names", self.config().queue.as_ref())
    }

    fn worker_metadata_key(&self, worker: &str) -> String {
        format!("{}:workers:metadata:{worker}", self.config().queue.as_ref())
    }

    /// Moves due jobs to the active list in chunks (see `scripts::PROMOTE_DUE`).
    ///
    /// # Errors
    /// Fails when Redis is unavailable.
    pub async fn promote_due(&self) -> Result<usize, JobError> {
        let config = self.config();
        let mut connection = self.connection.clone();
        let mut promoted = 0;
        loop {
            let moved: usize = PROMOTE_DUE
                .key(config.scheduled_jobs_set())
                .key(config.active_jobs_list())
                .arg(unix_now())
                .arg(PROMOTE_CHUNK)
                .invoke_async(&mut connection)
                .await?;
            promoted += moved;
            if moved < PROMOTE_CHUNK {
                return Ok(promoted);
            }
        }
    }

    fn meta_key(&self, id: &str) -> String {
        format!("{}:{id}", self.config().job_meta_hash())
    }
}

/// The message of a failed job's stored result, `{"Err": "..."}`.
fn error_of(result: &str) -> String {
    serde_json::from_str::<serde_json::Value>(result)
        .ok()
        .and_then(|value| value["Err"].as_str().map(str::to_string))
        .unwrap_or_else(|| result.to_string())
}

pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_result_gives_its_message() {
        assert_eq!(error_of(r#"{"Err":"SMTP refused"}"#), "SMTP refused");
        assert_eq!(error_of("not json"), "not json");
    }
}
