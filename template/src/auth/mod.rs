//! Accounts and sessions: registration, login, logout (one device or all), password
//! change, roles and guards. Sessions and rate-limit counters live in Redis, accounts in
//! storage. The rules follow OWASP ASVS 5.0; each one cites its section where applied.

pub mod account;
pub mod admin;
pub mod administration;
pub mod cli;
mod client;
mod code_check;
mod cookie;
mod device;
mod erasure;
pub mod events;
mod guard;
mod lockout;
mod metrics;
mod origin;
mod password;
mod rate_limit;
mod request;
pub mod resolvers;
pub mod second_factor;
mod sessions;
mod settings;
{%- if email %}

mod account_mail;
mod background;
mod devices;
pub mod email_flows;
pub mod login_code;
mod mails;
mod tokens;
{%- endif %}

{% if email %}pub use account_mail::{About, AccountMail, AccountMailer, AccountMails, SecondFactorChange};
pub use background::Background;
{% endif %}pub use client::{ClientBuckets, Ipv6Factors};
pub use cookie::SessionCookie;
pub use origin::AllowedOrigins;
pub use password::PasswordHasher;
pub use request::RequestAuth;
pub use sessions::ActiveSession;
pub use settings::AuthSettings;

use erasure::Erasures;
use lockout::Lockout;
use rate_limit::{Limit, RateLimiter};
use second_factor::SecondFactors;
use sessions::SessionStore;

use crate::{domain::UserId, error::AppError, redis::Redis};

/// The Redis key `name` of `user`: tagged with the user, so that every key of one
/// account lives in one Redis Cluster slot and one script may touch several of them.
pub(crate) fn user_key(redis: &Redis, user: UserId, name: &str) -> String {
    // `{…}` is the hash tag (built without format braces, which Liquid would read).
    redis.key(&["user:{", &user.to_string(), "}:", name].concat())
}

/// The auth services shared by all requests.
pub struct Auth {
    /// Sessions, counters{% if email %} and single-use tokens{% endif %} live here.
    pub redis: Redis,
    pub sessions: SessionStore,
    pub passwords: PasswordHasher,
    pub limiter: RateLimiter,
    pub lockout: Lockout,
    pub erasures: Erasures,
    pub second_factors: SecondFactors,
    /// Security events, told to the account's live subscriptions on every replica.
    pub events: events::AccountEvents,
    pub cookie: SessionCookie,
    /// The cookie of a sign-in waiting for its second factor.
    pub pending_cookie: SessionCookie,
    pub settings: AuthSettings,
{%- if email %}
    /// Account mails on their way, sent after the request that asked for them answered.
    pub background: Background,
    pub login_codes: login_code::LoginCodes,
{%- endif %}
}

impl Auth {
    /// The auth services on `redis`. `https`: the service is reached over HTTPS only, so
    /// the session cookie is `Secure` and named `__Host-session`.
    pub fn new(settings: &AuthSettings, https: bool, redis: Redis) -> Self {
        let absolute = settings.session_absolute_timeout;
        let window = settings.login_window;
        let per_client = Limit {
            attempts: settings.login_attempts_per_ip,
            window,
        };
        let per_account = Limit {
            attempts: settings.login_failures_per_account,
            window,
        };
        Self {
            sessions: SessionStore::new(redis.clone(), settings.session_idle_timeout, absolute),
            passwords: PasswordHasher::new(settings.bcrypt_cost),
            limiter: RateLimiter::new(redis.clone()),
            lockout: Lockout::new(redis.clone(), per_client, per_account),
            erasures: Erasures::new(redis.clone()),
            second_factors: SecondFactors::new(settings, &redis),
            events: events::AccountEvents::new(&redis),
{%- if email %}
            login_codes: login_code::LoginCodes::new(redis.clone()),
{%- endif %}
            redis,
            cookie: SessionCookie::new(https, absolute),
            pending_cookie: SessionCookie::pending_login(https, second_factor::PENDING_LOGIN_LIFETIME),
            settings: settings.clone(),
{%- if email %}
            background: Background::default(),
{%- endif %}
        }
    }

    /// Whether a page that sent `request` may act for the caller: a browser's request
    /// from this origin or one in `auth.allowed_origins`, or no browser's at all (see
    /// `origin.rs`).
    pub fn admits_page_of(&self, request: &actix_web::HttpRequest) -> bool {
        origin::may_use_cookie(request, &self.settings.allowed_origins)
    }

    /// Counts one attempt at `action` (a registration) from `client` against the
    /// per-client limit.
    ///
    /// # Errors
    /// `RateLimited` once the limit is exceeded; `Unavailable` without Redis.
    pub async fn limit_client(
        &self,
        action: &'static str,
        client: &ClientBuckets,
    ) -> Result<(), AppError> {
        let limit = Limit {
            attempts: self.settings.login_attempts_per_ip,
            window: self.settings.login_window,
        };
        self.limiter
            .hit_client(action, client, limit)
            .await
            .inspect_err(|error| metrics::limited(action, error))
    }
{%- if email %}

    /// Counts one mail to `recipient` sent on behalf of an anonymous request, whether or
    /// not the address has an account (so the limit reveals nothing), before anything is
    /// sent: no address can be flooded through the API.
    ///
    /// # Errors
    /// The recipient is its mailbox: `ada+1@…` and `ada+2@…` count as `ada@…`.
    ///
    /// # Errors
    /// `RateLimited` once the address had its share; `Unavailable` without Redis.
    pub async fn limit_recipient(&self, recipient: &crate::domain::Email) -> Result<(), AppError> {
        let limit = Limit {
            attempts: self.settings.mails_per_address,
            window: self.settings.mail_window,
        };
        self.limiter
            .hit(&recipient_bucket(recipient), limit)
            .await
            .inspect_err(|error| metrics::limited("mail_recipient", error))
    }

    /// Forgets the count of mails to `recipient`: its account is being erased.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn forget_recipient(&self, recipient: &crate::domain::Email) -> Result<(), AppError> {
        self.limiter.forget(&recipient_bucket(recipient)).await
    }

    /// Counts one mail that an anonymous request of `client` asks for (a confirmation, a
    /// reset link), before anything is sent: no client can send mail to many addresses.
    ///
    /// # Errors
    /// `RateLimited` once the client had its share; `Unavailable` without Redis.
    pub async fn limit_client_mail(&self, client: &ClientBuckets) -> Result<(), AppError> {
        let limit = Limit {
            attempts: self.settings.mails_per_client,
            window: self.settings.mail_window,
        };
        self.limiter
            .hit_client("mail", client, limit)
            .await
            .inspect_err(|error| metrics::limited("mail", error))
    }
{%- endif %}
}
{%- if email %}

/// The rate-limit bucket of mails to `recipient`'s mailbox, hashed: keys should not
/// spell out addresses.
fn recipient_bucket(recipient: &crate::domain::Email) -> String {
    use sha2::{Digest, Sha256};
    let mailbox = hex::encode(Sha256::digest(recipient.mailbox().as_bytes()));
    format!("mail:to:{mailbox}")
}
{%- endif %}
