use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    /// bcrypt work factor: 12 or more in production (OWASP ASVS 5.0 V11.4.2).
    pub bcrypt_cost: u32,
    /// A session unused this long is gone.
    pub session_idle_timeout_secs: u64,
    /// A session is gone this long after login, however active.
    pub session_absolute_timeout_secs: u64,
    /// `Secure` session cookie named `__Host-session`; needs HTTPS, so on in production.
    pub secure_cookie: bool,
    /// Login attempts allowed per account, and per client IP, in each window.
    pub login_attempts_per_account: u64,
    pub login_attempts_per_ip: u64,
    pub login_window_secs: u64,
    /// Take the client IP from `X-Forwarded-For`/`Forwarded`: only behind a proxy that
    /// sets them, or clients could pick their own rate-limit bucket.
    pub trust_forwarded_headers: bool,
{%- if email %}
    /// Refuse to sign in accounts whose email is not confirmed yet.
    pub require_confirmed_email: bool,
    /// Lifetime of the links in confirmation and password-reset mails.
    pub confirm_token_ttl_secs: u64,
    pub reset_token_ttl_secs: u64,
{%- endif %}
}
