//! The devices an account signed in from lately, so that a sign-in from one not seen in
//! [`REMEMBERED`] sends its owner a notice. A device is its label ("Firefox on Linux"):
//! coarse on purpose, since the label is all a notice could show. One sorted set per
//! user, under the user's hash tag.

use std::{sync::LazyLock, time::Duration};

use redis::Script;

use crate::{
    domain::UserId,
    error::AppError,
    redis::{Redis, unavailable},
};

/// How long a device stays known after its last sign-in.
const REMEMBERED: Duration = Duration::from_secs(30 * 24 * 3600);

/// Records device `ARGV[1]` signing in at `ARGV[2]` (s) in `KEYS[1]`, forgetting devices
/// unseen for `ARGV[3]` s. Returns 1 when the device is new to an account that had
/// signed in before, 0 otherwise (the first sign-in of an account is no news).
static NOTE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local since = tonumber(ARGV[2]) - tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. since)
local known = redis.call('ZSCORE', KEYS[1], ARGV[1])
local others = redis.call('ZCARD', KEYS[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
if not known and others > 0 then return 1 end
return 0
",
    )
});

#[derive(Clone)]
pub struct KnownDevices {
    redis: Redis,
}

impl KnownDevices {
    pub fn new(redis: Redis) -> Self {
        Self { redis }
    }

    fn key(&self, user: UserId) -> String {
        super::user_key(&self.redis, user, "devices")
    }

    /// Records a sign-in of `user` from `device`; `true` when the device is news.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn note(&self, user: UserId, device: &str) -> Result<bool, AppError> {
        let new: u8 = NOTE
            .key(self.key(user))
            .arg(device)
            .arg(crate::clock::unix_secs())
            .arg(REMEMBERED.as_secs())
            .invoke_async(&mut self.redis.connection())
            .await
            .map_err(unavailable)?;
        Ok(new == 1)
    }

    /// Forgets `user`'s devices: the account is being erased.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn forget(&self, user: UserId) -> Result<(), AppError> {
        redis::cmd("DEL")
            .arg(self.key(user))
            .query_async::<()>(&mut self.redis.connection())
            .await
            .map_err(unavailable)
    }
}
