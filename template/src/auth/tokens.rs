//! Single-use tokens for links sent by mail (OWASP ASVS 5.0 V6.4).
//!
//! A token is the user's id and 128 random bits. Redis keeps only the SHA-256 of the
//! random part, under a key that names the user and the purpose: a confirmation token can
//! never reset a password, issuing a new token for the same user and purpose voids the
//! previous one, and revoking a purpose voids every outstanding link of it at once. Each
//! user's tokens are one key per purpose, tagged with the user, so every step is a single
//! key on Redis Cluster too. A token may carry a payload that only the server sees (the
//! new address of an email change), stored beside its hash.

use std::{sync::LazyLock, time::Duration};

use redis::Script;
use secrecy::{ExposeSecret, SecretString};

use super::sessions::hash;
use crate::{
    domain::UserId,
    error::AppError,
    redis::{Redis, unavailable},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    ConfirmEmail,
    ResetPassword,
    ChangeEmail,
}

impl Purpose {
    const ALL: [Self; 3] = [Self::ConfirmEmail, Self::ResetPassword, Self::ChangeEmail];

    fn as_str(self) -> &'static str {
        match self {
            Self::ConfirmEmail => "confirm-email",
            Self::ResetPassword => "reset-password",
            Self::ChangeEmail => "change-email",
        }
    }
}

/// Deletes the token `KEYS[1]` if it holds the hash `ARGV[1]` (then a space and its
/// payload, if any): returns what it held, or nil.
static CONSUME: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local stored = redis.call('GET', KEYS[1])
if stored and (stored == ARGV[1] or string.sub(stored, 1, #ARGV[1] + 1) == ARGV[1] .. ' ') then
  redis.call('DEL', KEYS[1])
  return stored
end
return false
",
    )
});

/// What a token's key holds: the hash of its secret, then its payload if any.
fn stored_value(secret_hash: String, payload: &str) -> String {
    if payload.is_empty() {
        secret_hash
    } else {
        [secret_hash.as_str(), " ", payload].concat()
    }
}

/// The payload of a stored value whose hash matched.
fn payload_of(stored: &str) -> String {
    stored
        .split_once(' ')
        .map(|(_, payload)| payload.to_string())
        .unwrap_or_default()
}

/// The text of a link's token, shown only in its mail.
pub struct LinkToken(SecretString);

impl LinkToken {
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

/// A token as presented: whose it is and the random part to check.
struct Presented<'a> {
    user: UserId,
    secret: &'a str,
}

/// Hex digits of each part of a token: a UUID's 32, then 128 random bits.
const PART: usize = 32;

impl<'a> Presented<'a> {
    fn parse(token: &'a str) -> Option<Self> {
        if token.len() != 2 * PART || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let (user, secret) = token.split_at(PART);
        let user = UserId::parse(user).ok()?;
        Some(Self { user, secret })
    }
}

#[derive(Clone)]
pub struct OneTimeTokens {
    redis: Redis,
}

impl OneTimeTokens {
    pub fn new(redis: Redis) -> Self {
        Self { redis }
    }

    fn key(&self, purpose: Purpose, user: UserId) -> String {
        super::user_key(&self.redis, user, &format!("token:{}", purpose.as_str()))
    }

    /// A new token for `user` and `purpose`, valid for `ttl`, keeping `payload` (no
    /// spaces; empty for none) for whoever consumes it; the previous token of the same
    /// purpose stops working.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn issue(
        &self,
        purpose: Purpose,
        user: UserId,
        ttl: Duration,
        payload: &str,
    ) -> Result<LinkToken, AppError> {
        let mut random = [0u8; PART / 2];
        getrandom::fill(&mut random)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("no randomness available: {e}")))?;
        let secret = hex::encode(random);
        redis::cmd("SET")
            .arg(self.key(purpose, user))
            .arg(stored_value(hash(&secret), payload))
            .arg("EX")
            .arg(ttl.as_secs().max(1))
            .query_async::<()>(&mut self.redis.connection())
            .await
            .map_err(unavailable)?;
        let user = user.simple();
        Ok(LinkToken(SecretString::from(format!("{user}{secret}"))))
    }

    /// The user the token was issued to, if it is live; the token stays live.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn peek(&self, purpose: Purpose, token: &str) -> Result<Option<UserId>, AppError> {
        let Some(presented) = Presented::parse(token) else {
            return Ok(None);
        };
        let stored: Option<String> = redis::cmd("GET")
            .arg(self.key(purpose, presented.user))
            .query_async(&mut self.redis.connection())
            .await
            .map_err(unavailable)?;
        let secret_hash = hash(presented.secret);
        let live = stored.is_some_and(|stored| {
            stored
                .split_once(' ')
                .map_or(stored.as_str(), |(hash, _)| hash)
                == secret_hash
        });
        Ok(live.then_some(presented.user))
    }

    /// The user the token was issued to, if it is live; a live token is spent.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn consume(&self, purpose: Purpose, token: &str) -> Result<Option<UserId>, AppError> {
        let spent = self.consume_carrying(purpose, token).await?;
        Ok(spent.map(|(user, _)| user))
    }

    /// The user the token was issued to and its payload, if it is live; a live token is
    /// spent.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn consume_carrying(
        &self,
        purpose: Purpose,
        token: &str,
    ) -> Result<Option<(UserId, String)>, AppError> {
        let Some(presented) = Presented::parse(token) else {
            return Ok(None);
        };
        let stored: Option<String> = CONSUME
            .key(self.key(purpose, presented.user))
            .arg(hash(presented.secret))
            .invoke_async(&mut self.redis.connection())
            .await
            .map_err(unavailable)?;
        Ok(stored.map(|stored| (presented.user, payload_of(&stored))))
    }

    /// Voids every outstanding token of `user` for `purpose`.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn revoke(&self, purpose: Purpose, user: UserId) -> Result<(), AppError> {
        redis::cmd("DEL")
            .arg(self.key(purpose, user))
            .query_async::<()>(&mut self.redis.connection())
            .await
            .map_err(unavailable)
    }

    /// Voids every outstanding token of `user`, whatever its purpose.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn revoke_all(&self, user: UserId) -> Result<(), AppError> {
        let keys: Vec<String> = Purpose::ALL
            .iter()
            .map(|purpose| self.key(*purpose, user))
            .collect();
        // One tag, one slot: a single command on Redis Cluster too.
        redis::cmd("DEL")
            .arg(keys)
            .query_async::<()>(&mut self.redis.connection())
            .await
            .map_err(unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_user_and_anything_else_is_no_token() {
        let user = UserId::generate();
        let token = format!("{}{}", user.simple(), "ab".repeat(16));

        assert_eq!(Presented::parse(&token).map(|p| p.user), Some(user));
        for malformed in ["", "abc", &"z".repeat(64), &"a".repeat(65), &token[1..]] {
            assert!(Presented::parse(malformed).is_none(), "{malformed}");
        }
    }
}
