//! What remains of an erased account: a marker under its id for a day, no address, no
//! data. It answers a retried `deleteAccount` with the same success{% if queue and email %}, and turns mails
//! still queued about the account into no-ops: the worker cannot look users up in an
//! embedded store the API holds, so it asks here{% endif %}.

use std::time::Duration;

use crate::{
    domain::UserId,
    error::AppError,
    redis::{Redis, unavailable},
};

/// How long an erasure is remembered: longer than a request is retried{% if queue and email %} and than a
/// mail waits in the queue between its retries{% endif %}.
const REMEMBERED: Duration = Duration::from_secs(24 * 3600);

#[derive(Clone)]
pub struct Erasures {
    redis: Redis,
}

impl Erasures {
    pub fn new(redis: Redis) -> Self {
        Self { redis }
    }

    fn key(&self, user: UserId) -> String {
        super::user_key(&self.redis, user, "erased")
    }

    /// Remembers that `user`'s account is being erased.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn mark(&self, user: UserId) -> Result<(), AppError> {
        redis::cmd("SET")
            .arg(self.key(user))
            .arg(1)
            .arg("EX")
            .arg(REMEMBERED.as_secs())
            .query_async::<()>(&mut self.redis.connection())
            .await
            .map_err(unavailable)
    }

    /// Whether `user`'s account was erased in the last day.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn contains(&self, user: UserId) -> Result<bool, AppError> {
        redis::cmd("EXISTS")
            .arg(self.key(user))
            .query_async(&mut self.redis.connection())
            .await
            .map_err(unavailable)
    }
}
