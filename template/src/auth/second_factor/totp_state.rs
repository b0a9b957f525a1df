//! What TOTP needs in Redis: the secret of an enrolment awaiting its first code, and the
//! last period whose code each account used, so that a code works once. Both keys are
//! tagged with the user.

use std::{sync::LazyLock, time::Duration};

use redis::{AsyncCommands as _, Script};

use crate::{
    domain::UserId,
    error::AppError,
    redis::{Redis, unavailable},
};

/// How long `setUpTotp`'s secret waits for `confirmTotp`.
pub const SETUP_LIFETIME: Duration = Duration::from_secs(600);
/// A code passes up to one period after its own: its period must be remembered for the
/// three periods it can pass in, and a little more.
const USED_PERIOD_LIFETIME: Duration = Duration::from_secs(120);

/// Records period `ARGV[1]` in `KEYS[1]` unless that period or a later one was used:
/// returns 1 when recorded, 0 for a replay (or an older code after a newer one).
static USE_PERIOD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local last = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) <= last then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
",
    )
});

#[derive(Clone)]
pub struct TotpState {
    redis: Redis,
}

impl TotpState {
    pub fn new(redis: Redis) -> Self {
        Self { redis }
    }

    fn setup_key(&self, user: UserId) -> String {
        crate::auth::user_key(&self.redis, user, "totp-setup")
    }

    fn used_period_key(&self, user: UserId) -> String {
        crate::auth::user_key(&self.redis, user, "totp-used-period")
    }

    /// Keeps `sealed`, the secret `setUpTotp` showed `user`, until it is confirmed; a
    /// later `setUpTotp` replaces it.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn save_setup(&self, user: UserId, sealed: &str) -> Result<(), AppError> {
        self.redis
            .connection()
            .set_ex(self.setup_key(user), sealed, SETUP_LIFETIME.as_secs())
            .await
            .map_err(unavailable)
    }

    /// The sealed secret awaiting confirmation by `user`, if any.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn setup(&self, user: UserId) -> Result<Option<String>, AppError> {
        self.redis
            .connection()
            .get(self.setup_key(user))
            .await
            .map_err(unavailable)
    }

    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn clear_setup(&self, user: UserId) -> Result<(), AppError> {
        self.redis
            .connection()
            .del(self.setup_key(user))
            .await
            .map_err(unavailable)
    }

    /// Claims `period`'s code for `user`: `false` when it, or a later one, was used.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn use_period(&self, user: UserId, period: u64) -> Result<bool, AppError> {
        let recorded: u8 = USE_PERIOD
            .key(self.used_period_key(user))
            .arg(period)
            .arg(USED_PERIOD_LIFETIME.as_secs())
            .invoke_async(&mut self.redis.connection())
            .await
            .map_err(unavailable)?;
        Ok(recorded == 1)
    }

    /// Forgets what Redis holds on `user`'s TOTP: the account is being erased.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn forget(&self, user: UserId) -> Result<(), AppError> {
        redis::pipe()
            .del(self.setup_key(user))
            .ignore()
            .del(self.used_period_key(user))
            .ignore()
            .query_async::<()>(&mut self.redis.connection())
            .await
            .map_err(unavailable)
    }
}
