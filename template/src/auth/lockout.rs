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

use sha2::{Digest, Sha256};

use super::rate_limit::{Limit, limited};
use crate::{
    domain::Email,
    error::AppError,
    redis::{Redis, unavailable},
};

#[derive(Clone)]
pub struct Lockout {
    redis: Redis,
    per_client: Limit,
    per_account: Limit,
}

/// An admitted password check, to be reported as failed or succeeded.
#[must_use = "report the outcome of the check"]
pub struct Attempt {
    account_failures: String,
    client_failures: String,
    client_failed: bool,
}

impl Lockout {
    pub fn new(redis: Redis, per_client: Limit, per_account: Limit) -> Self {
        Self {
            redis,
            per_client,
            per_account,
        }
    }

    /// Counts a password check on `account` by `client`, in one round trip, before any
    /// hash is computed; `action` names the check in the metrics.
    ///
    /// # Errors
    /// `RateLimited` beyond the client's limit, or for a client that failed recently on
    /// a locked account; `Unavailable` without Redis.
    pub async fn admit(
        &self,
        client: &str,
        account: &Email,
        action: &'static str,
    ) -> Result<Attempt, AppError> {
        self.count(client, account)
            .await
            .inspect_err(|error| super::metrics::limited(action, error))
    }

    async fn count(&self, client: &str, account: &Email) -> Result<Attempt, AppError> {
        // Hashed: rate-limit keys should not spell out who is being targeted.
        let account = hex::encode(Sha256::digest(account.as_ref()));
        let client_attempts = self.key(&format!("ip:{client}"));
        let account_failures = self.key(&format!("failures:{account}"));
        let client_failures = self.key(&format!("failures:{account}:{client}"));
        let (attempts, client_ttl, failures, account_ttl, client_failed): (
            u64,
            i64,
            Option<u64>,
            i64,
            bool,
        ) = redis::pipe()
            .atomic()
            .incr(&client_attempts, 1)
            .cmd("EXPIRE")
            .arg(&client_attempts)
            .arg(self.per_client.window_secs())
            .arg("NX")
            .ignore()
            .ttl(&client_attempts)
            .get(&account_failures)
            .ttl(&account_failures)
            .exists(&client_failures)
            .query_async(&mut self.redis.connection())
            .await
            .map_err(unavailable)?;
        if attempts > self.per_client.attempts {
            return Err(limited(client_ttl));
        }
        if client_failed && failures.unwrap_or(0) >= self.per_account.attempts {
            return Err(limited(account_ttl));
        }
        Ok(Attempt {
            account_failures,
            client_failures,
            client_failed,
        })
    }

    /// Counts a wrong password against the account and its client.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn failed(&self, attempt: Attempt) -> Result<(), AppError> {
        let window = self.per_account.window_secs();
        let mut pipe = redis::pipe();
        pipe.atomic();
        for key in [&attempt.account_failures, &attempt.client_failures] {
            pipe.incr(key, 1)
                .ignore()
                .cmd("EXPIRE")
                .arg(key)
                .arg(window)
                .arg("NX")
                .ignore();
        }
        pipe.query_async::<()>(&mut self.redis.connection())
            .await
            .map_err(unavailable)
    }

    /// Forgets the client's failures on the account (see the module docs).
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn succeeded(&self, attempt: Attempt) -> Result<(), AppError> {
        if !attempt.client_failed {
            return Ok(());
        }
        redis::cmd("DEL")
            .arg(&attempt.client_failures)
            .query_async::<()>(&mut self.redis.connection())
            .await
            .map_err(unavailable)
    }

    fn key(&self, name: &str) -> String {
        self.redis.key(&format!("rate-limit:password:{name}"))
    }
}
