//! Limits on password guessing with a soft lockout (OWASP ASVS 5.0 V6.3.1, V6.3.x).
//!
//! Every password check (`login`, `changePassword`) counts against its client's limit.
//! Only wrong passwords count against the account: once it has
//! `login_failures_per_account` in a window, a client that sent one of them is refused,
//! while a client with no recent failure on it may still sign in. A stranger's guesses
//! therefore cannot lock the owner out, and past the lockout each further guess needs a
//! client address that has not failed yet, all of them under their own limits.
//!
//! A success forgets its client's failures but not the account's: the owner signing in
//! during an attack must not hand the attacker a fresh set of guesses.
//!
//! A check reserves its place before any hash is computed, in one script: it counts as
//! pending until it is settled as a failure or a success, and pending checks count
//! against the account like failures. Concurrent guesses therefore cannot all pass a
//! check made before any of them failed: however many arrive at once, at most the
//! account's remaining allowance is evaluated, and against a locked account at most one
//! guess per client that has not failed yet.

use std::{sync::LazyLock, time::Duration};

use redis::Script;
use sha2::{Digest, Sha256};

use super::{
    client::ClientBuckets,
    rate_limit::{Limit, RateLimiter, limited},
};
use crate::{
    domain::Email,
    error::AppError,
    redis::{Redis, unavailable},
};

/// Longest a reserved check may stay unsettled: a process that dies mid-check frees its
/// reservation after this long.
const RESERVATION: Duration = Duration::from_secs(30);

/// Admits a check on account keys `KEYS` = {failures, pending checks, the client's
/// failures, the client's pending checks, the clients that checked} at `ARGV[1]` (ms),
/// reserving it as `ARGV[2]` until `ARGV[3]` (ms), with the account allowance `ARGV[4]`;
/// the client's pending count lives `ARGV[5]` ms; the client `ARGV[6]` is listed for
/// `ARGV[7]` seconds, so that erasing the account finds its keys. Returns `{1, client
/// failed}` when admitted, `{0, seconds to wait}` when refused.
static RESERVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
local failures = tonumber(redis.call('GET', KEYS[1]) or '0')
local pending = redis.call('ZCARD', KEYS[2])
local client_failed = redis.call('EXISTS', KEYS[3]) == 1
local client_busy = tonumber(redis.call('GET', KEYS[4]) or '0') > 0
if failures + pending >= tonumber(ARGV[4]) and (client_failed or client_busy) then
  local wait = 1
  if failures >= tonumber(ARGV[4]) then wait = math.max(redis.call('TTL', KEYS[1]), 1) end
  return {0, wait}
end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
redis.call('PEXPIREAT', KEYS[2], ARGV[3])
redis.call('INCR', KEYS[4])
redis.call('PEXPIRE', KEYS[4], ARGV[5])
redis.call('SADD', KEYS[5], ARGV[6])
redis.call('EXPIRE', KEYS[5], ARGV[7])
if client_failed then return {1, 1} end
return {1, 0}
",
    )
});

/// Settles reservation `ARGV[1]` (keys as for `RESERVE`): with `ARGV[2]` = `failed`, a
/// wrong password counted against the account and the client for `ARGV[3]` seconds;
/// otherwise the client's failures forgotten.
static SETTLE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('ZREM', KEYS[2], ARGV[1])
if tonumber(redis.call('DECR', KEYS[4])) <= 0 then redis.call('DEL', KEYS[4]) end
if ARGV[2] == 'failed' then
  for _, key in ipairs({KEYS[1], KEYS[3]}) do
    redis.call('INCR', key)
    redis.call('EXPIRE', key, ARGV[3], 'NX')
  end
else
  redis.call('DEL', KEYS[3])
end
",
    )
});

#[derive(Clone)]
pub struct Lockout {
    redis: Redis,
    limiter: RateLimiter,
    per_client: Limit,
    per_account: Limit,
}

/// An admitted password check, to be settled as failed or succeeded. Dropped unsettled
/// (the request failed on the way), its reservation lapses after [`RESERVATION`].
#[must_use = "settle the check as failed or succeeded"]
pub struct Attempt {
    /// The account's and this client's keys, sharing the account's hash tag.
    keys: [String; 5],
    reservation: String,
}

impl Lockout {
    pub fn new(redis: Redis, per_client: Limit, per_account: Limit) -> Self {
        Self {
            limiter: RateLimiter::new(redis.clone()),
            redis,
            per_client,
            per_account,
        }
    }

    /// Counts a password check on `account` by `client` and reserves its place (see the
    /// module docs) before any hash is computed; `action` names the check in the
    /// metrics.
    ///
    /// # Errors
    /// `RateLimited` beyond the client's limit, or when the account has no allowance
    /// left for this client; `Unavailable` without Redis.
    pub async fn admit(
        &self,
        client: &ClientBuckets,
        account: &Email,
        action: &'static str,
    ) -> Result<Attempt, AppError> {
        self.reserve(client, account)
            .await
            .inspect_err(|error| super::metrics::limited(action, error))
    }

    async fn reserve(&self, client: &ClientBuckets, account: &Email) -> Result<Attempt, AppError> {
        self.limiter
            .hit_client("password", client, self.per_client)
            .await?;
        let keys = self.keys(client, account);
        let reservation = uuid::Uuid::new_v4().simple().to_string();
        let now = crate::clock::unix_ms();
        let deadline = now.saturating_add(crate::clock::as_ms(RESERVATION));
        let (admitted, detail): (u8, i64) = RESERVE
            .key(&keys[..])
            .arg(now)
            .arg(&reservation)
            .arg(deadline)
            .arg(self.per_account.attempts)
            .arg(crate::clock::as_ms(RESERVATION))
            .arg(client.finest())
            .arg(self.per_account.window.max(RESERVATION).as_secs())
            .invoke_async(&mut self.redis.connection())
            .await
            .map_err(unavailable)?;
        if admitted == 0 {
            return Err(limited(detail));
        }
        Ok(Attempt { keys, reservation })
    }

    /// Counts a wrong password against the account and its client.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn failed(&self, attempt: Attempt) -> Result<(), AppError> {
        self.settle(attempt, "failed").await
    }

    /// Forgets the client's failures on the account (see the module docs).
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn succeeded(&self, attempt: Attempt) -> Result<(), AppError> {
        self.settle(attempt, "succeeded").await
    }

    async fn settle(&self, attempt: Attempt, outcome: &str) -> Result<(), AppError> {
        SETTLE
            .key(&attempt.keys[..])
            .arg(&attempt.reservation)
            .arg(outcome)
            .arg(self.per_account.window_secs())
            .invoke_async::<()>(&mut self.redis.connection())
            .await
            .map_err(unavailable)
    }

    /// Forgets every count kept on `account`, its clients' included: the account is
    /// being erased.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn forget(&self, account: &Email) -> Result<(), AppError> {
        let key = self.account_key(account);
        let mut connection = self.redis.connection();
        let clients: Vec<String> = redis::cmd("SMEMBERS")
            .arg(key("clients"))
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
        // All under the account's hash tag: one command on Redis Cluster too.
        let mut keys = vec![key("failures"), key("pending"), key("clients")];
        for client in &clients {
            keys.push(key(&format!("client:{client}:failures")));
            keys.push(key(&format!("client:{client}:pending")));
        }
        redis::cmd("DEL")
            .arg(keys)
            .query_async::<()>(&mut connection)
            .await
            .map_err(unavailable)
    }

    /// The keys of `account` and `client`'s checks on it (see [`Self::account_key`]).
    fn keys(&self, client: &ClientBuckets, account: &Email) -> [String; 5] {
        let key = self.account_key(account);
        let client = client.finest();
        [
            key("failures"),
            key("pending"),
            key(&format!("client:{client}:failures")),
            key(&format!("client:{client}:pending")),
            key("clients"),
        ]
    }

    /// The key `name` among `account`'s. Hashed: rate-limit keys should not spell out who
    /// is being targeted; tagged with the account, so that one script may touch them all
    /// on Redis Cluster.
    fn account_key(&self, account: &Email) -> impl Fn(&str) -> String {
        let account = hex::encode(Sha256::digest(account.as_ref()));
        let redis = self.redis.clone();
        // `{…}` is the hash tag (built without format braces, which Liquid would read).
        move |name: &str| redis.key(&["rate-limit:password:{", &account, "}:", name].concat())
    }
}
