use std::time::Duration;

use serde::Deserialize;

use super::{
    client::Ipv6Factors,
    origin::AllowedOrigins,
    second_factor::{KeyMaterial, key_list},
};
use crate::setting;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// bcrypt work factor: 12 or more in production (OWASP ASVS 5.0 V11.4.2).
    pub bcrypt_cost: u32,
    /// A session unused this long is gone.
    #[serde(rename = "session_idle_timeout_secs", deserialize_with = "setting::positive_secs")]
    pub session_idle_timeout: Duration,
    /// A session is gone this long after login, however active.
    #[serde(rename = "session_absolute_timeout_secs", deserialize_with = "setting::positive_secs")]
    pub session_absolute_timeout: Duration,
    /// Front ends on other origins whose pages may send cookie-authenticated requests.
    pub allowed_origins: AllowedOrigins,
    /// Wrong passwords per account in a window before clients that sent one are refused
    /// (soft lockout, see `lockout.rs`).
    pub login_failures_per_account: u64,
    /// Password checks, registrations and mail requests per client in a window.
    pub login_attempts_per_ip: u64,
    #[serde(rename = "login_window_secs", deserialize_with = "setting::positive_secs")]
    pub login_window: Duration,
    /// How many times a /64's allowance an IPv6 /56 and /48 may use (see `client.rs`).
    pub ipv6_56_factor: u64,
    pub ipv6_48_factor: u64,
    /// How long after signing in or `reauthenticate` a session may run sensitive
    /// operations (OWASP ASVS 5.0 V7.5.3).
    #[serde(rename = "reauth_window_secs", deserialize_with = "setting::positive_secs")]
    pub reauth_window: Duration,
    /// The name authenticator apps list the account under.
    pub totp_issuer: String,
    /// Seals TOTP secrets at rest; production refuses the development key.
    pub totp_encryption_key: KeyMaterial,
    /// Earlier encryption keys, still opening the secrets they sealed (key rotation).
    #[serde(default, deserialize_with = "key_list")]
    pub totp_decryption_keys: Vec<KeyMaterial>,
{%- if email %}
    /// Refuse to sign in accounts whose email is not confirmed yet.
    pub require_confirmed_email: bool,
    /// Lifetime of the links in confirmation and password-reset mails.
    #[serde(rename = "confirm_token_ttl_secs", deserialize_with = "setting::positive_secs")]
    pub confirm_token_ttl: Duration,
    #[serde(rename = "reset_token_ttl_secs", deserialize_with = "setting::positive_secs")]
    pub reset_token_ttl: Duration,
    /// Mails one address may be sent on behalf of anonymous requests in a window.
    pub mails_per_address: u64,
    /// Mails one client may cause to be sent by anonymous requests in a window.
    pub mails_per_client: u64,
    #[serde(rename = "mail_window_secs", deserialize_with = "setting::positive_secs")]
    pub mail_window: Duration,
    /// Whether `requestLoginCode` and `loginWithCode` sign in by a mailed code.
    pub login_by_code: bool,
{%- endif %}
}

impl AuthSettings {
    pub fn ipv6_factors(&self) -> Ipv6Factors {
        Ipv6Factors {
            per_56: self.ipv6_56_factor,
            per_48: self.ipv6_48_factor,
        }
    }
}

#[cfg(test)]
mod tests {
    use config::{Config, File, FileFormat};

    use super::*;

    #[derive(Debug, Deserialize)]
    struct Root {
        auth: AuthSettings,
    }

    /// The `[auth]` settings of `base.toml` with `overrides`, loaded as at start-up.
    fn with_auth(overrides: &str) -> Result<AuthSettings, String> {
        let base = include_str!("../../config/base.toml");
        Config::builder()
            .add_source(File::from_str(base, FileFormat::Toml))
            .add_source(File::from_str(&format!("[auth]\n{overrides}"), FileFormat::Toml))
            .build()
            .and_then(Config::try_deserialize::<Root>)
            .map(|root| root.auth)
            .map_err(|error| error.to_string())
    }

    #[test]
    fn a_malformed_totp_key_stops_start_up_naming_it() {
        let short = with_auth(r#"totp_encryption_key = "abc""#).unwrap_err();
        let old = with_auth(r#"totp_decryption_keys = "zz""#).unwrap_err();

        assert!(short.contains("auth.totp_encryption_key"), "{short}");
        assert!(short.contains("64 hex digits"), "{short}");
        assert!(old.contains("auth.totp_decryption_keys"), "{old}");
    }

    #[test]
    fn old_totp_keys_come_as_a_comma_separated_list() {
        let keys = [hex::encode([1u8; 32]), hex::encode([2u8; 32])].join(",");

        let settings = with_auth(&format!(r#"totp_decryption_keys = "{keys}""#)).unwrap();

        assert_eq!(settings.totp_decryption_keys.len(), 2);
    }

    #[test]
    fn a_bad_origin_stops_start_up_naming_it() {
        let origin = with_auth(r#"allowed_origins = "https://app.example.com/path""#).unwrap_err();

        assert!(origin.contains("`https://app.example.com/path`"), "{origin}");
        assert!(origin.contains("auth.allowed_origins"), "{origin}");
    }
}
