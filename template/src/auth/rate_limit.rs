//! Fixed-window counters in Redis for costly or abusable actions, such as registrations
//! per client. Password checks have counters of their own, in `lockout.rs`.
//!
//! Every attempt counts, including each alias of a batched or aliased request, because
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
        let window = limit.window_secs();
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
            return Err(limited(ttl));
        }
        Ok(())
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
