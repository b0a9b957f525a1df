//! Sign-ins that proved the password and wait for the second factor.
//!
//! `login` for an account with a second factor starts no session: it leaves a pending
//! sign-in in Redis, named by a token that only its client holds (an HttpOnly cookie, or
//! the answer for `bearer: true` clients), and `completeLogin` finishes it with a code.
//! A pending sign-in lives five minutes and allows five wrong codes; then it is gone
//! and the password is needed again. Like a session, Redis keeps only the SHA-256 of its
//! token, under a key tagged with the user.

use std::{sync::LazyLock, time::Duration};

use redis::{AsyncCommands as _, Script};
use secrecy::{ExposeSecret, SecretString};

use crate::{
    auth::sessions::{SessionToken, hash},
    domain::UserId,
    error::AppError,
    redis::{Redis, unavailable},
};

/// How long a pending sign-in waits for its code.
pub const LIFETIME: Duration = Duration::from_secs(300);
/// Wrong codes a pending sign-in allows: the fifth ends it.
pub const WRONG_CODES_ALLOWED: u32 = 5;

/// Deletes every pending sign-in listed in the user's set `KEYS[1]` (keys `ARGV[1]` +
/// hash), and the set.
static FORGET_ALL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
for _, hash in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  redis.call('DEL', ARGV[1] .. hash)
end
redis.call('DEL', KEYS[1])
",
    )
});

/// The token of a pending sign-in: the same shape as a session token (the user's id and
/// 256 random bits), a different key in Redis.
pub struct PendingToken(SecretString);

impl PendingToken {
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

/// A pending sign-in a request presented.
pub struct PendingLogin {
    pub user: UserId,
    /// The session it ends in goes to the answer rather than a cookie.
    pub bearer: bool,
    /// Its Redis hash.
    pub key: String,
}

#[derive(Clone)]
pub struct PendingLogins {
    redis: Redis,
}

impl PendingLogins {
    pub fn new(redis: Redis) -> Self {
        Self { redis }
    }

    fn key(&self, user: UserId, secret: &str) -> String {
        self.key_of_hash(user, &hash(secret))
    }

    fn key_of_hash(&self, user: UserId, secret_hash: &str) -> String {
        crate::auth::user_key(&self.redis, user, &["pending-login:", secret_hash].concat())
    }

    /// The set of the user's pending sign-ins, which lets an erasure find them.
    fn list_key(&self, user: UserId) -> String {
        crate::auth::user_key(&self.redis, user, "pending-logins")
    }

    /// Starts a pending sign-in of `user`.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn start(&self, user: UserId, bearer: bool) -> Result<PendingToken, AppError> {
        let token = SessionToken::generate(user)?;
        let (_, secret) = SessionToken::parse(token.expose()).expect("a token just made");
        let secret_hash = hash(secret);
        let key = self.key_of_hash(user, &secret_hash);
        let list = self.list_key(user);
        let lifetime = LIFETIME.as_secs().cast_signed();
        redis::pipe()
            .atomic()
            .hset_multiple(
                &key,
                &[("wrong", "0"), ("bearer", if bearer { "1" } else { "0" })],
            )
            .ignore()
            .expire(&key, lifetime)
            .ignore()
            .sadd(&list, &secret_hash)
            .ignore()
            .expire(&list, lifetime)
            .ignore()
            .query_async::<()>(&mut self.redis.connection())
            .await
            .map_err(unavailable)?;
        Ok(PendingToken(SecretString::from(token.expose().to_string())))
    }

    /// The live pending sign-in `token` names, if any.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn find(&self, token: &str) -> Result<Option<PendingLogin>, AppError> {
        let Some((user, secret)) = SessionToken::parse(token) else {
            return Ok(None);
        };
        let key = self.key(user, secret);
        let bearer: Option<String> = self
            .redis
            .connection()
            .hget(&key, "bearer")
            .await
            .map_err(unavailable)?;
        Ok(bearer.map(|bearer| PendingLogin {
            user,
            bearer: bearer == "1",
            key,
        }))
    }

    /// Ends the pending sign-in: its account cannot sign in any more.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn end(&self, pending: &PendingLogin) -> Result<(), AppError> {
        self.redis
            .connection()
            .del(&pending.key)
            .await
            .map_err(unavailable)
    }

    /// Ends every pending sign-in of `user`: the account is being erased.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn forget(&self, user: UserId) -> Result<(), AppError> {
        FORGET_ALL
            .key(self.list_key(user))
            .arg(self.key_of_hash(user, ""))
            .invoke_async::<()>(&mut self.redis.connection())
            .await
            .map_err(unavailable)
    }
}
