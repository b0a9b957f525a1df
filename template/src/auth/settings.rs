use serde::{Deserialize, Deserializer};

use super::{client_ip::TrustedProxies, origin::AllowedOrigins};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// bcrypt work factor: 12 or more in production (OWASP ASVS 5.0 V11.4.2).
    pub bcrypt_cost: u32,
    /// A session unused this long is gone.
    pub session_idle_timeout_secs: u64,
    /// A session is gone this long after login, however active.
    pub session_absolute_timeout_secs: u64,
    /// Front ends on other origins whose pages may send cookie-authenticated requests.
    pub allowed_origins: AllowedOrigins,
    /// Wrong passwords per account in a window before clients that sent one are refused
    /// (soft lockout, see `lockout.rs`).
    pub login_failures_per_account: u64,
    /// Password checks, registrations and mail requests per client in a window.
    pub login_attempts_per_ip: u64,
    pub login_window_secs: u64,
    /// Networks of the reverse proxies whose `X-Forwarded-For` entries are believed.
    pub trusted_proxies: TrustedProxies,
{%- if email %}
    /// Refuse to sign in accounts whose email is not confirmed yet.
    pub require_confirmed_email: bool,
    /// Lifetime of the links in confirmation and password-reset mails.
    pub confirm_token_ttl_secs: u64,
    pub reset_token_ttl_secs: u64,
    /// Mails one address may be sent on behalf of anonymous requests in a window.
    pub mails_per_address: u64,
    pub mail_window_secs: u64,
{%- endif %}
}

/// A list setting: a TOML array, or one comma-separated string, which is how an
/// environment variable carries a list (`APP_AUTH__TRUSTED_PROXIES=10.0.0.0/8,fd00::/8`).
pub(super) fn string_list<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum List {
        Items(Vec<String>),
        Text(String),
    }
    Ok(match List::deserialize(deserializer)? {
        List::Items(items) => items,
        List::Text(text) => text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(String::from)
            .collect(),
    })
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
    fn lists_come_as_arrays_or_comma_separated_text() {
        let from_array = with_auth(r#"trusted_proxies = ["10.0.0.0/8", "fd00::/8"]"#);
        let from_text = with_auth(r#"trusted_proxies = "10.0.0.0/8, fd00::/8""#);

        assert!(from_array.is_ok(), "{from_array:?}");
        assert!(from_text.is_ok(), "{from_text:?}");
    }

    #[test]
    fn a_bad_network_or_origin_stops_start_up_naming_it() {
        let proxy = with_auth(r#"trusted_proxies = ["10.0.0.0/8", "10.0.0/33"]"#).unwrap_err();
        let origin = with_auth(r#"allowed_origins = "https://app.example.com/path""#).unwrap_err();

        assert!(proxy.contains("`10.0.0/33`"), "{proxy}");
        assert!(proxy.contains("auth.trusted_proxies"), "{proxy}");
        assert!(origin.contains("`https://app.example.com/path`"), "{origin}");
        assert!(origin.contains("auth.allowed_origins"), "{origin}");
    }
}
