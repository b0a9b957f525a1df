//! Server-side sessions in Redis (OWASP ASVS 5.0 V7).
//!
//! The client holds a 256-bit random token; Redis holds only its SHA-256, so a leaked
//! Redis dump cannot be replayed. Each session expires after an idle period and, however
//! active, after an absolute lifetime. A per-user set lists the user's sessions so that
//! "log out everywhere" and password changes can revoke them all.

use std::{
    sync::LazyLock,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use redis::Script;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::{
    domain::UserId,
    error::AppError,
    redis::{Redis, unavailable},
};

/// The secret the client presents; shown once, at login.
#[derive(Clone)]
pub struct SessionToken(SecretString);

impl SessionToken {
    pub(super) fn generate() -> Result<Self, AppError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("no randomness available: {e}")))?;
        Ok(Self(SecretString::from(hex::encode(bytes))))
    }

    #[cfg(test)]
    pub(crate) fn from_test(token: String) -> Self {
        Self(SecretString::from(token))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Whether `candidate` could be a token at all; anything else skips Redis.
    pub(super) fn is_well_formed(candidate: &str) -> bool {
        candidate.len() == 64 && candidate.bytes().all(|b| b.is_ascii_hexdigit())
    }
}

/// A session found for the current request.
#[derive(Debug, Clone)]
pub struct ActiveSession {
    id_hash: String,
    pub user_id: UserId,
}

#[derive(Clone)]
pub struct SessionStore {
    redis: Redis,
    idle: Duration,
    absolute: Duration,
}

/// Reads a session and slides its idle expiry, in one round trip. Expired by age: deleted.
/// Scripts are built once: each hashes its source for EVALSHA.
static RESOLVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local fields = redis.call('HMGET', KEYS[1], 'user_id', 'created_at')
if not fields[1] then return false end
local remaining = tonumber(ARGV[3]) - (tonumber(ARGV[1]) - tonumber(fields[2]))
if remaining <= 0 then
  redis.call('DEL', KEYS[1])
  return false
end
redis.call('HSET', KEYS[1], 'last_seen', ARGV[1])
redis.call('EXPIRE', KEYS[1], math.min(tonumber(ARGV[2]), remaining))
return fields[1]
",
    )
});

/// Deletes every session listed in a user's set, then the set.
static REVOKE_ALL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local hashes = redis.call('SMEMBERS', KEYS[1])
for _, hash in ipairs(hashes) do
  redis.call('DEL', ARGV[1] .. hash)
end
redis.call('DEL', KEYS[1])
return #hashes
",
    )
});

impl SessionStore {
    pub fn new(redis: Redis, idle: Duration, absolute: Duration) -> Self {
        Self {
            redis,
            idle,
            absolute,
        }
    }

    fn session_key(&self, id_hash: &str) -> String {
        self.redis.key(&format!("session:{id_hash}"))
    }

    fn user_sessions_key(&self, user_id: UserId) -> String {
        self.redis.key(&format!("user-sessions:{user_id}"))
    }

    /// Starts a session with a fresh token (never reusing one the client sent, which
    /// rules out session fixation).
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn create(&self, user_id: UserId) -> Result<SessionToken, AppError> {
        let token = SessionToken::generate()?;
        let id_hash = hash(token.expose());
        let session = self.session_key(&id_hash);
        let now = unix_now();
        let user_sessions = self.user_sessions_key(user_id);
        redis::pipe()
            .atomic()
            .hset_multiple(
                &session,
                &[
                    ("user_id", user_id.to_string()),
                    ("created_at", now.to_string()),
                    ("last_seen", now.to_string()),
                ],
            )
            .ignore()
            .expire(&session, seconds(self.idle))
            .ignore()
            .sadd(&user_sessions, &id_hash)
            .ignore()
            .expire(&user_sessions, seconds(self.absolute))
            .ignore()
            .query_async::<()>(&mut self.redis.connection())
            .await
            .map_err(unavailable)?;
        Ok(token)
    }

    /// The live session for `token`, refreshing its idle timer.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn resolve(&self, token: &str) -> Result<Option<ActiveSession>, AppError> {
        if !SessionToken::is_well_formed(token) {
            return Ok(None);
        }
        let id_hash = hash(token);
        let user_id: Option<String> = RESOLVE
            .key(self.session_key(&id_hash))
            .arg(unix_now())
            .arg(seconds(self.idle))
            .arg(seconds(self.absolute))
            .invoke_async(&mut self.redis.connection())
            .await
            .map_err(unavailable)?;
        Ok(user_id
            .and_then(|id| UserId::parse(&id).ok())
            .map(|user_id| ActiveSession { id_hash, user_id }))
    }

    /// Ends one session.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn revoke(&self, session: &ActiveSession) -> Result<(), AppError> {
        redis::pipe()
            .del(self.session_key(&session.id_hash))
            .ignore()
            .srem(self.user_sessions_key(session.user_id), &session.id_hash)
            .ignore()
            .query_async::<()>(&mut self.redis.connection())
            .await
            .map_err(unavailable)
    }

    /// Ends every session of `user_id`; returns how many there were.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn revoke_all(&self, user_id: UserId) -> Result<u64, AppError> {
        REVOKE_ALL
            .key(self.user_sessions_key(user_id))
            .arg(self.redis.key("session:"))
            .invoke_async(&mut self.redis.connection())
            .await
            .map_err(unavailable)
    }
}

pub(super) fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

fn seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_256_random_bits() {
        let first = SessionToken::generate().unwrap();
        let second = SessionToken::generate().unwrap();

        assert!(SessionToken::is_well_formed(first.expose()));
        assert_ne!(first.expose(), second.expose());
    }

    #[test]
    fn only_the_hash_of_a_token_is_stored() {
        let token = SessionToken::generate().unwrap();

        let stored = hash(token.expose());

        assert_ne!(stored, token.expose());
        assert_eq!(stored.len(), 64);
    }

    #[test]
    fn malformed_tokens_are_not_looked_up() {
        for token in ["", "abc", &"z".repeat(64), &"a".repeat(65)] {
            assert!(!SessionToken::is_well_formed(token), "{token}");
        }
    }
}
