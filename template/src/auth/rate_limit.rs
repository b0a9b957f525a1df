//! Fixed-window counters in Redis against password guessing (OWASP ASVS 5.0 V6.3.1).
//!
//! Every attempt counts, including each alias of a batched or aliased login, because
//! the counter is hit inside the resolver, once per executed field.

use std::time::Duration;

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
        let key = self.redis.key(&format!("rate-limit:{bucket}"));
        let window = i64::try_from(limit.window.as_secs()).unwrap_or(i64::MAX);
        let (count, ttl): (u64, i64) = redis::pipe()
            .atomic()
            .incr(&key, 1)
            .cmd("EXPIRE")
            .arg(&key)
            .arg(window)
            .arg("NX")
            .ignore()
            .ttl(&key)
            .query_async(&mut self.redis.connection())
            .await
            .map_err(unavailable)?;
        if count > limit.attempts {
            return Err(AppError::RateLimited {
                retry_after_secs: u64::try_from(ttl).unwrap_or(1).max(1),
            });
        }
        Ok(())
    }

    /// Forgets the attempts in `bucket` (after a successful login).
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn reset(&self, bucket: &str) -> Result<(), AppError> {
        redis::cmd("DEL")
            .arg(self.redis.key(&format!("rate-limit:{bucket}")))
            .query_async::<()>(&mut self.redis.connection())
            .await
            .map_err(unavailable)
    }
}
