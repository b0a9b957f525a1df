//! Single-use tokens for links sent by mail (OWASP ASVS 5.0 V6.4).
//!
//! 256 random bits; Redis keeps only the SHA-256, under a key that names the purpose, so a
//! confirmation token can never reset a password. A token works once and expires; issuing
//! a new one for the same user and purpose invalidates the previous one.

use std::{sync::LazyLock, time::Duration};

use redis::Script;

use super::sessions::{SessionToken, hash};
use crate::{
    domain::UserId,
    error::AppError,
    redis::{Redis, unavailable},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    ConfirmEmail,
    ResetPassword,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::ConfirmEmail => "confirm-email",
            Self::ResetPassword => "reset-password",
        }
    }
}

/// Stores the new token and drops the user's previous one of the same purpose.
static ISSUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local previous = redis.call('GET', KEYS[2])
if previous then redis.call('DEL', ARGV[3] .. previous) end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('SET', KEYS[2], ARGV[4], 'EX', ARGV[2])
",
    )
});

/// Returns the token's user and deletes the token, so it cannot be used twice.
static CONSUME: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local user = redis.call('GETDEL', KEYS[1])
if user then redis.call('DEL', ARGV[1] .. user) end
return user
",
    )
});

#[derive(Clone)]
pub struct OneTimeTokens {
    redis: Redis,
}

impl OneTimeTokens {
    pub fn new(redis: Redis) -> Self {
        Self { redis }
    }

    fn token_prefix(&self, purpose: Purpose) -> String {
        self.redis.key(&format!("token:{}:", purpose.as_str()))
    }

    fn latest_prefix(&self, purpose: Purpose) -> String {
        self.redis
            .key(&format!("latest-token:{}:", purpose.as_str()))
    }

    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn issue(
        &self,
        purpose: Purpose,
        user_id: UserId,
        ttl: Duration,
    ) -> Result<SessionToken, AppError> {
        let token = SessionToken::generate()?;
        let id_hash = hash(token.expose());
        ISSUE
            .key(format!("{}{id_hash}", self.token_prefix(purpose)))
            .key(format!("{}{user_id}", self.latest_prefix(purpose)))
            .arg(user_id.to_string())
            .arg(ttl.as_secs().max(1))
            .arg(self.token_prefix(purpose))
            .arg(&id_hash)
            .invoke_async::<()>(&mut self.redis.connection())
            .await
            .map_err(unavailable)?;
        Ok(token)
    }

    /// The user the token was issued to, if it is live; the token stays live.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn peek(&self, purpose: Purpose, token: &str) -> Result<Option<UserId>, AppError> {
        if !SessionToken::is_well_formed(token) {
            return Ok(None);
        }
        let user: Option<String> = redis::cmd("GET")
            .arg(format!("{}{}", self.token_prefix(purpose), hash(token)))
            .query_async(&mut self.redis.connection())
            .await
            .map_err(unavailable)?;
        Ok(user.and_then(|id| UserId::parse(&id).ok()))
    }

    /// The user the token was issued to, if it is live; the token is spent either way.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn consume(&self, purpose: Purpose, token: &str) -> Result<Option<UserId>, AppError> {
        if !SessionToken::is_well_formed(token) {
            return Ok(None);
        }
        let user: Option<String> = CONSUME
            .key(format!("{}{}", self.token_prefix(purpose), hash(token)))
            .arg(self.latest_prefix(purpose))
            .invoke_async(&mut self.redis.connection())
            .await
            .map_err(unavailable)?;
        Ok(user.and_then(|id| UserId::parse(&id).ok()))
    }
}
