//! Fixed-window counters in Redis for costly or abusable actions, such as registrations
//! per client. Password checks also reserve their attempt against the account, in
//! `lockout.rs`.
//!
//! Every attempt counts, including each alias of a batched or aliased request, because
//! the counter is hit inside the resolver, once per executed field. A client's counters
//! share a hash tag (its coarsest bucket), so they are counted in one round trip on
//! Redis Cluster as on one node, while different clients spread over the slots.

use std::time::Duration;

use super::client::ClientBuckets;
use crate::{
    error::AppError,
    redis::{Redis, unavailable},
};

#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub attempts: u64,
    pub window: Duration,
}

#[derive(Clone)]
pub struct RateLimiter {
    redis: Redis,
}

impl RateLimiter {
    pub fn new(redis: Redis) -> Self {
        Self { redis }
    }

    /// Counts one attempt in `bucket`.
    ///
    /// # Errors
    /// `RateLimited` with the seconds left in the window once `limit` is exceeded;
    /// `Unavailable` when Redis does not answer.
    pub async fn hit(&self, bucket: &str, limit: Limit) -> Result<(), AppError> {
        self.hit_all(&[(format!("rate-limit:{bucket}"), limit.attempts)], limit)
            .await
    }

    /// Forgets the count of `bucket`.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn forget(&self, bucket: &str) -> Result<(), AppError> {
        redis::cmd("DEL")
            .arg(self.redis.key(&format!("rate-limit:{bucket}")))
            .query_async::<()>(&mut self.redis.connection())
            .await
            .map_err(unavailable)
    }

    /// Counts one attempt at `action` by `client` in each of its buckets, a coarser
    /// bucket allowing its factor times `limit`.
    ///
    /// # Errors
    /// `RateLimited` once any bucket is over its allowance; `Unavailable` without Redis.
    pub async fn hit_client(
        &self,
        action: &str,
        client: &ClientBuckets,
        limit: Limit,
    ) -> Result<(), AppError> {
        let tag = client.coarsest();
        let counters: Vec<(String, u64)> = client
            .all()
            .iter()
            .map(|bucket| {
                // `{…}` is the hash tag (built without format braces, which Liquid reads).
                let name = ["rate-limit:", action, ":ip:{", tag, "}:", &bucket.key].concat();
                (name, limit.attempts.saturating_mul(bucket.factor))
            })
            .collect();
        self.hit_all(&counters, limit).await
    }

    /// Counts one attempt in each `(name, allowance)` counter of the window `limit`.
    async fn hit_all(&self, counters: &[(String, u64)], limit: Limit) -> Result<(), AppError> {
        let window = limit.window_secs();
        // One pipeline, no transaction: each counter stands on its own.
        let mut pipe = redis::pipe();
        for (name, _) in counters {
            let key = self.redis.key(name);
            pipe.incr(&key, 1)
                .cmd("EXPIRE")
                .arg(&key)
                .arg(window)
                .arg("NX")
                .ignore()
                .ttl(&key);
        }
        // Two answers per counter: its count, then its seconds to live.
        let answers: Vec<i64> = pipe
            .query_async(&mut self.redis.connection())
            .await
            .map_err(unavailable)?;
        let over = answers
            .chunks_exact(2)
            .zip(counters)
            .filter(|(answer, (_, allowance))| u64::try_from(answer[0]).unwrap_or(0) > *allowance)
            .map(|(answer, _)| answer[1])
            .max();
        match over {
            Some(ttl) => Err(limited(ttl)),
            None => Ok(()),
        }
    }
}

impl Limit {
    pub(super) fn window_secs(self) -> i64 {
        i64::try_from(self.window.as_secs()).unwrap_or(i64::MAX)
    }
}

/// `RateLimited`, retrying once a counter with `ttl` seconds left has expired.
pub(super) fn limited(ttl: i64) -> AppError {
    AppError::RateLimited {
        retry_after_secs: u64::try_from(ttl).unwrap_or(1).max(1),
    }
}
