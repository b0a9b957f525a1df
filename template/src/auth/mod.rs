//! Accounts and sessions: registration, login, logout (one device or all), password
//! change, roles and guards. Sessions and rate-limit counters live in Redis, accounts in
//! storage. The rules follow OWASP ASVS 5.0; each one cites its section where applied.

pub mod admin;
mod cookie;
mod guard;
mod password;
mod rate_limit;
mod request;
pub mod resolvers;
mod sessions;
mod settings;
{%- if email %}

pub mod email_flows;
mod mails;
mod tokens;
{%- endif %}

use std::time::Duration;

pub use cookie::SessionCookie;
pub use password::PasswordHasher;
pub use request::RequestAuth;
pub use settings::AuthSettings;

use rate_limit::{Limit, RateLimiter};
use sessions::SessionStore;

use sha2::{Digest, Sha256};

use crate::{domain::Email, error::AppError, redis::Redis};

/// The auth services shared by all requests.
pub struct Auth {
    pub sessions: SessionStore,
    pub passwords: PasswordHasher,
    pub limiter: RateLimiter,
    pub cookie: SessionCookie,
    pub settings: AuthSettings,
}

impl Auth {
    pub fn new(settings: &AuthSettings, redis: Redis) -> Self {
        let absolute = Duration::from_secs(settings.session_absolute_timeout_secs);
        Self {
            sessions: SessionStore::new(
                redis.clone(),
                Duration::from_secs(settings.session_idle_timeout_secs),
                absolute,
            ),
            passwords: PasswordHasher::new(settings.bcrypt_cost),
            limiter: RateLimiter::new(redis),
            cookie: SessionCookie::new(settings.secure_cookie, absolute),
            settings: settings.clone(),
        }
    }

    /// Counts one attempt at `action` (login, a mail request) from `client_ip` on the
    /// account `email`, and returns the account's bucket so a success can reset it.
    ///
    /// # Errors
    /// `RateLimited` once either limit is exceeded; `Unavailable` without Redis.
    pub async fn limit_attempts(
        &self,
        action: &str,
        client_ip: &str,
        email: &Email,
    ) -> Result<String, AppError> {
        self.limit_client(action, client_ip).await?;
        // Hashed: rate-limit keys should not spell out who is being targeted.
        let account = hex::encode(Sha256::digest(email.as_ref()));
        let bucket = format!("{action}:account:{account}");
        self.limiter
            .hit(&bucket, self.login_limit_per_account())
            .await?;
        Ok(bucket)
    }

    /// Counts one attempt at `action` from `client_ip` against the per-IP limit.
    ///
    /// # Errors
    /// `RateLimited` once the limit is exceeded; `Unavailable` without Redis.
    pub async fn limit_client(&self, action: &str, client_ip: &str) -> Result<(), AppError> {
        self.limiter
            .hit(&format!("{action}:ip:{client_ip}"), self.login_limit_per_ip())
            .await
    }

    pub fn login_limit_per_ip(&self) -> Limit {
        Limit {
            attempts: self.settings.login_attempts_per_ip,
            window: Duration::from_secs(self.settings.login_window_secs),
        }
    }

    pub fn login_limit_per_account(&self) -> Limit {
        Limit {
            attempts: self.settings.login_attempts_per_account,
            window: Duration::from_secs(self.settings.login_window_secs),
        }
    }
}
