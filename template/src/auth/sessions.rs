//! Server-side sessions in Redis (OWASP ASVS 5.0 V7).
//!
//! The client holds a 256-bit random token; Redis holds only its SHA-256, so a leaked
//! Redis dump cannot be replayed. Each session expires after an idle period and, however
//! active, after an absolute lifetime. A per-user set lists the user's sessions so that
//! the user can see them, end one, or end them all ("log out everywhere", password
//! changes). A session remembers when it last proved its password (signing in or
//! `reauthenticate`), for operations that need a recent proof.

use std::{sync::LazyLock, time::Duration};

use chrono::{DateTime, Utc};
use redis::{AsyncCommands as _, Script};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::{
    domain::UserId,
    error::AppError,
    redis::{Redis, unavailable},
};

/// The secret the client presents; shown once, at login. It is the user's id (32 hex
/// digits, which place the session's keys in the user's Redis Cluster slot) and 256
/// random bits (64 hex digits).
#[derive(Clone)]
pub struct SessionToken(SecretString);

/// Hex digits of a token: the user's id, then the secret.
const USER_PART: usize = 32;
const TOKEN_LEN: usize = USER_PART + 64;

impl SessionToken {
    pub(super) fn generate(user_id: UserId) -> Result<Self, AppError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("no randomness available: {e}")))?;
        let token = [user_id.simple(), hex::encode(bytes)].concat();
        Ok(Self(SecretString::from(token)))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The user and the secret of `candidate`, if it could be a token at all; anything
    /// else skips Redis.
    pub(super) fn parse(candidate: &str) -> Option<(UserId, &str)> {
        if candidate.len() != TOKEN_LEN || !candidate.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let (user, secret) = candidate.split_at(USER_PART);
        Some((UserId::parse(user).ok()?, secret))
    }
}

/// A session found for the current request.
#[derive(Debug, Clone)]
pub struct ActiveSession {
    id_hash: String,
    pub user_id: UserId,
    /// Unix seconds of the last password proof: sign-in or `reauthenticate`.
    authenticated_at: u64,
}

impl ActiveSession {
    /// Whether the session proved its password within `window`.
    pub fn authenticated_within(&self, window: Duration) -> bool {
        crate::clock::unix_secs().saturating_sub(self.authenticated_at) <= window.as_secs()
    }

    /// The session's public id (see [`public_id`]).
    pub fn id(&self) -> String {
        public_id(&self.id_hash)
    }
}

/// Where a session was started: shown to its user in the list of sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOrigin {
    /// A short label such as "Firefox on Linux" (see `device.rs`).
    pub device: String,
    /// The client's address as limits count it: an IPv4 address or an IPv6 /64.
    pub client: String,
}

/// One of a user's live sessions, as the user may see it.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub origin: SessionOrigin,
    /// The session of the request that asked.
    pub current: bool,
}

/// A session's public id: derived from the hash of its token, so it names the session
/// without being a way to it: neither the token nor the Redis key can be computed back.
fn public_id(id_hash: &str) -> String {
    hash(&["session-id:", id_hash].concat())[..32].to_string()
}

#[derive(Clone)]
pub struct SessionStore {
    redis: Redis,
    idle: Duration,
    absolute: Duration,
}

/// Slides a live session's idle expiry; a session deleted meanwhile stays deleted.
/// Scripts are built once: each hashes its source for EVALSHA.
static REFRESH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'last_seen', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
",
    )
});

/// Longest a session's idle expiry may lag behind its last use: sliding it on every
/// request would turn each authenticated read into a Redis write.
const MAX_REFRESH_LAG: Duration = Duration::from_secs(60);

/// How stale `last_seen` may get before a request slides the idle expiry: a tenth of
/// the idle timeout, at most a minute.
fn refresh_lag(idle: Duration) -> Duration {
    (idle / 10).min(MAX_REFRESH_LAG)
}

/// Deletes every session listed in the user's set `KEYS[1]` (keys `ARGV[1]` + hash)
/// but the one whose hash is `ARGV[2]`, and unlists them; returns how many ended.
static REVOKE_ALL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local ended = 0
for _, hash in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if hash ~= ARGV[2] then
    redis.call('DEL', ARGV[1] .. hash)
    redis.call('SREM', KEYS[1], hash)
    ended = ended + 1
  end
end
return ended
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

    fn session_key(&self, user_id: UserId, id_hash: &str) -> String {
        super::user_key(&self.redis, user_id, &format!("session:{id_hash}"))
    }

    fn user_sessions_key(&self, user_id: UserId) -> String {
        super::user_key(&self.redis, user_id, "sessions")
    }

    /// Starts a session with a fresh token (never reusing one the client sent, which
    /// rules out session fixation).
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn create(
        &self,
        user_id: UserId,
        origin: &SessionOrigin,
    ) -> Result<SessionToken, AppError> {
        let token = SessionToken::generate(user_id)?;
        let (_, secret) = SessionToken::parse(token.expose()).expect("a token just made");
        let id_hash = hash(secret);
        let session = self.session_key(user_id, &id_hash);
        let now = crate::clock::unix_secs();
        let user_sessions = self.user_sessions_key(user_id);
        redis::pipe()
            .atomic()
            .hset_multiple(
                &session,
                &[
                    ("user_id", user_id.to_string()),
                    ("created_at", now.to_string()),
                    ("last_seen", now.to_string()),
                    ("authenticated_at", now.to_string()),
                    ("device", origin.device.clone()),
                    ("client", origin.client.clone()),
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

    /// The live session for `token`, sliding its idle expiry (see [`refresh_lag`]).
    /// A read in the common case, as cheap as a GET; once per lag a write, which runs
    /// after the request instead of holding it up.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn resolve(&self, token: &str) -> Result<Option<ActiveSession>, AppError> {
        let Some((token_user, secret)) = SessionToken::parse(token) else {
            return Ok(None);
        };
        let id_hash = hash(secret);
        let key = self.session_key(token_user, &id_hash);
        let mut connection = self.redis.connection();
        type Fields = (Option<String>, Option<u64>, Option<u64>, Option<u64>);
        let (user_id, created_at, last_seen, authenticated_at): Fields = connection
            .hmget(
                &key,
                &["user_id", "created_at", "last_seen", "authenticated_at"],
            )
            .await
            .map_err(unavailable)?;
        let (Some(user_id), Some(created_at)) = (user_id, created_at) else {
            return Ok(None);
        };
        if UserId::parse(&user_id).ok() != Some(token_user) {
            return Ok(None);
        }
        let now = crate::clock::unix_secs();
        let age = now.saturating_sub(created_at);
        let Some(remaining) = self
            .absolute
            .as_secs()
            .checked_sub(age)
            .filter(|left| *left > 0)
        else {
            connection.del::<_, ()>(&key).await.map_err(unavailable)?;
            return Ok(None);
        };
        let idle_for = now.saturating_sub(last_seen.unwrap_or(created_at));
        if idle_for >= refresh_lag(self.idle).as_secs() {
            let expiry = self.idle.as_secs().min(remaining);
            tokio::spawn(async move {
                let refreshed: redis::RedisResult<u8> = REFRESH
                    .key(&key)
                    .arg(now)
                    .arg(expiry)
                    .invoke_async(&mut connection)
                    .await;
                if let Err(error) = refreshed {
                    tracing::warn!(error = %error, "Failed to slide a session's idle expiry");
                }
            });
        }
        Ok(Some(ActiveSession {
            id_hash,
            user_id: token_user,
            authenticated_at: authenticated_at.unwrap_or(created_at),
        }))
    }

    /// Ends one session.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn revoke(&self, session: &ActiveSession) -> Result<(), AppError> {
        redis::pipe()
            .del(self.session_key(session.user_id, &session.id_hash))
            .ignore()
            .srem(self.user_sessions_key(session.user_id), &session.id_hash)
            .ignore()
            .query_async::<()>(&mut self.redis.connection())
            .await
            .map_err(unavailable)
    }

    /// Whether `session` still lives: neither ended nor expired.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn is_live(&self, session: &ActiveSession) -> Result<bool, AppError> {
        let key = self.session_key(session.user_id, &session.id_hash);
        let created_at: Option<u64> = self
            .redis
            .connection()
            .hget(&key, "created_at")
            .await
            .map_err(unavailable)?;
        let age = |created_at| crate::clock::unix_secs().saturating_sub(created_at);
        Ok(created_at.is_some_and(|created_at| age(created_at) < self.absolute.as_secs()))
    }

    /// Records that `session` proved its password just now.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn mark_authenticated(&self, session: &ActiveSession) -> Result<(), AppError> {
        let key = self.session_key(session.user_id, &session.id_hash);
        redis::cmd("HSET")
            .arg(key)
            .arg("authenticated_at")
            .arg(crate::clock::unix_secs())
            .query_async::<()>(&mut self.redis.connection())
            .await
            .map_err(unavailable)
    }

    /// The live sessions of `user_id`, newest first; `current` marks the asking one.
    /// Sessions that expired meanwhile leave the user's set on the way.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn list(
        &self,
        user_id: UserId,
        current: Option<&ActiveSession>,
    ) -> Result<Vec<SessionInfo>, AppError> {
        let mut connection = self.redis.connection();
        let hashes: Vec<String> = connection
            .smembers(self.user_sessions_key(user_id))
            .await
            .map_err(unavailable)?;
        if hashes.is_empty() {
            return Ok(Vec::new());
        }
        // The user's keys share its hash tag: one round trip on a cluster too.
        let mut pipe = redis::pipe();
        for id_hash in &hashes {
            pipe.cmd("HMGET")
                .arg(self.session_key(user_id, id_hash))
                .arg(&["created_at", "last_seen", "device", "client"]);
        }
        type Fields = (Option<i64>, Option<i64>, Option<String>, Option<String>);
        let fields: Vec<Fields> = pipe
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
        let mut sessions = Vec::new();
        let mut gone = Vec::new();
        for (id_hash, fields) in hashes.into_iter().zip(fields) {
            let (Some(created), Some(seen), device, client) = fields else {
                gone.push(id_hash);
                continue;
            };
            sessions.push(SessionInfo {
                id: public_id(&id_hash),
                created_at: DateTime::from_timestamp(created, 0).unwrap_or_default(),
                last_seen_at: DateTime::from_timestamp(seen, 0).unwrap_or_default(),
                origin: SessionOrigin {
                    device: device.unwrap_or_default(),
                    client: client.unwrap_or_default(),
                },
                current: current.is_some_and(|current| current.id_hash == id_hash),
            });
        }
        if !gone.is_empty() {
            connection
                .srem::<_, _, ()>(self.user_sessions_key(user_id), &gone)
                .await
                .map_err(unavailable)?;
        }
        sessions.sort_by_key(|session| std::cmp::Reverse(session.created_at));
        Ok(sessions)
    }

    /// Ends the session of `user_id` whose public id is `id`, returning where it came
    /// from; `None` when the user has no such session.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn revoke_by_id(
        &self,
        user_id: UserId,
        id: &str,
    ) -> Result<Option<SessionOrigin>, AppError> {
        let mut connection = self.redis.connection();
        let hashes: Vec<String> = connection
            .smembers(self.user_sessions_key(user_id))
            .await
            .map_err(unavailable)?;
        let Some(id_hash) = hashes.into_iter().find(|id_hash| public_id(id_hash) == id) else {
            return Ok(None);
        };
        let (device, client): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(self.session_key(user_id, &id_hash))
            .arg(&["device", "client"])
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
        let session = ActiveSession {
            id_hash,
            user_id,
            authenticated_at: 0,
        };
        self.revoke(&session).await?;
        Ok(Some(SessionOrigin {
            device: device.unwrap_or_default(),
            client: client.unwrap_or_default(),
        }))
    }

    /// Ends every session of `user_id`; returns how many there were.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn revoke_all(&self, user_id: UserId) -> Result<u64, AppError> {
        self.revoke_all_but(user_id, "").await
    }

    /// Ends every session of `user_id` but `kept`; returns how many ended.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn revoke_others(&self, kept: &ActiveSession) -> Result<u64, AppError> {
        self.revoke_all_but(kept.user_id, &kept.id_hash).await
    }

    async fn revoke_all_but(&self, user_id: UserId, kept_hash: &str) -> Result<u64, AppError> {
        REVOKE_ALL
            .key(self.user_sessions_key(user_id))
            .arg(self.session_key(user_id, ""))
            .arg(kept_hash)
            .invoke_async(&mut self.redis.connection())
            .await
            .map_err(unavailable)
    }
}

pub(super) fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_idle_expiry_lags_a_tenth_of_the_timeout_at_most_a_minute() {
        assert_eq!(refresh_lag(Duration::from_secs(1800)), MAX_REFRESH_LAG);
        assert_eq!(
            refresh_lag(Duration::from_secs(300)),
            Duration::from_secs(30)
        );
        assert_eq!(refresh_lag(Duration::from_secs(2)).as_secs(), 0);
    }

    #[test]
    fn tokens_carry_256_random_bits() {
        let user = UserId::generate();
        let first = SessionToken::generate(user).unwrap();
        let second = SessionToken::generate(user).unwrap();

        assert_eq!(
            SessionToken::parse(first.expose()).map(|(u, _)| u),
            Some(user)
        );
        assert_ne!(first.expose(), second.expose());
    }

    #[test]
    fn only_the_hash_of_a_token_is_stored() {
        let token = SessionToken::generate(UserId::generate()).unwrap();

        let stored = hash(token.expose());

        assert_ne!(stored, token.expose());
        assert_eq!(stored.len(), 64);
    }

    #[test]
    fn malformed_tokens_are_not_looked_up() {
        for token in ["", "abc", &"z".repeat(96), &"a".repeat(97), &"a".repeat(64)] {
            assert!(SessionToken::parse(token).is_none(), "{token}");
        }
    }
}
