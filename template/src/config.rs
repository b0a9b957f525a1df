//! The configuration: every part's settings slice, composed here and parsed into its
//! valid form as it loads. Each slice is defined by the part it configures (`http`,
//! `storage`, `graphql`, …) and handed only to it; nothing below the top reads the
//! whole.
//!
//! Layers, each overriding the one before:
//! 1. `config/base.toml`, compiled into the binary;
//! 2. `config/production.toml` when `APP_ENVIRONMENT=production`;
//! 3. environment variables (also read from `.env`), `APP_<SECTION>__<KEY>`:
//!    `APP_HTTP__PORT=5001` sets `Settings.http.port`.
//!
//! Loading fails with a message naming the offending key, so a bad deployment stops at
//! start-up instead of misbehaving later.

use config::{Config, ConfigError, File, FileFormat};
use serde::Deserialize;

use crate::{
    graphql::GraphqlSettings, http::HttpSettings, monitoring::MetricsSettings,
    storage::DatabaseSettings, telemetry::TelemetrySettings,
};

const BASE: &str = include_str!("../config/base.toml");
const PRODUCTION: &str = include_str!("../config/production.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub environment: Environment,
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    pub graphql: GraphqlSettings,
    pub telemetry: TelemetrySettings,
    pub metrics: MetricsSettings,
{%- if uses_redis %}
    pub redis: crate::redis::RedisSettings,
{%- endif %}
{%- if auth %}
    pub auth: crate::auth::AuthSettings,
    pub subscriptions: crate::http::websocket::SubscriptionSettings,
{%- endif %}
{%- if queue %}
    pub jobs: crate::queue::QueueSettings,
{%- endif %}
{%- if email %}
    pub mail: crate::mail::MailSettings,
{%- endif %}
}

/// Where the service runs; picks the settings layer applied over `base.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Environment {
    Development,
    Production,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::Production => "production",
        }
    }

    fn overrides(self) -> Option<&'static str> {
        match self {
            Self::Development => None,
            Self::Production => Some(PRODUCTION),
        }
    }
}

impl TryFrom<String> for Environment {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.to_lowercase().as_str() {
            "development" => Ok(Self::Development),
            "production" => Ok(Self::Production),
            other => Err(format!(
                "`{other}` is not a supported environment: use `development` or `production`"
            )),
        }
    }
}

impl Settings {
    /// Reads `.env` if present, then the layers described in the module docs.
    ///
    /// # Errors
    /// Fails on an unknown environment, a missing key, or a value out of its range
    /// (a zero count, an unsupported database URL, a malformed network, …); the message
    /// names the key.
    pub fn load() -> Result<Self, ConfigError> {
        // A missing `.env` is normal (containers, CI); a malformed one is not.
        match dotenvy::dotenv() {
            Ok(_) => {}
            Err(e) if e.not_found() => {}
            Err(e) => return Err(ConfigError::Message(format!(".env: {e}"))),
        }
        let environment = match std::env::var("APP_ENVIRONMENT") {
            Ok(value) => Environment::try_from(value)
                .map_err(|e| ConfigError::Message(format!("APP_ENVIRONMENT: {e}")))?,
            Err(_) => Environment::Development,
        };
        Self::build(environment, None)
    }

    /// The layers over `variables`, or over the process environment when `None`.
    fn build(
        environment: Environment,
        variables: Option<config::Map<String, String>>,
    ) -> Result<Self, ConfigError> {
        let mut builder = Config::builder()
            .add_source(File::from_str(BASE, FileFormat::Toml))
            .set_override("environment", environment.as_str())?;
        if let Some(overrides) = environment.overrides() {
            builder = builder.add_source(File::from_str(overrides, FileFormat::Toml));
        }
        let settings: Self = builder
            .add_source(
                config::Environment::with_prefix("APP")
                    .prefix_separator("_")
                    .separator("__")
                    .try_parsing(true)
                    .source(variables),
            )
            .build()?
            .try_deserialize()
            // Every struct denies unknown fields: a misspelt APP_… variable stops
            // start-up instead of being ignored.
            .map_err(|error| ConfigError::Message(format!("{error} (from config/*.toml or an APP_… variable)")))?;
        if environment == Environment::Production && settings.http.trusted_proxies.is_none() {
            // Behind an unlisted proxy every client would share one rate-limit bucket.
            return Err(ConfigError::Message(
                "http.trusted_proxies must be set in production (APP_HTTP__TRUSTED_PROXIES): \
                 the networks of the reverse proxies in front of the service, or `none` when \
                 clients connect to it directly"
                    .into(),
            ));
        }
{%- if auth %}
        if environment == Environment::Production
            && settings.auth.totp_encryption_key.is_development_key()
        {
            // Everyone who has the template has that key.
            return Err(ConfigError::Message(
                "auth.totp_encryption_key must be set in production \
                 (APP_AUTH__TOTP_ENCRYPTION_KEY): 64 hex digits, e.g. from `openssl rand -hex 32`, \
                 kept as a secret; the key in base.toml is for development only"
                    .into(),
            ));
        }
{%- endif %}
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{client_ip::TrustedProxies, telemetry::LogFormat};

    /// The variables a production deployment sets at the least.
    fn production_variables() -> config::Map<String, String> {
        [
            ("APP_HTTP__TRUSTED_PROXIES", "10.0.0.0/8"),
{%- if auth %}
            ("APP_AUTH__TOTP_ENCRYPTION_KEY", "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"),
{%- endif %}
        ]
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .into()
    }

    /// [`production_variables`] with `name` set to `value`.
    fn production_with(name: &str, value: &str) -> Option<config::Map<String, String>> {
        let mut variables = production_variables();
        variables.insert(name.to_string(), value.to_string());
        Some(variables)
    }

    fn with(name: &str, value: &str) -> Option<config::Map<String, String>> {
        Some([(name.to_string(), value.to_string())].into())
    }

    #[test]
    fn base_settings_load_for_every_environment() {
        for (environment, variables) in [
            (Environment::Development, None),
            (Environment::Production, Some(production_variables())),
        ] {
            let settings = Settings::build(environment, variables).expect("settings load");
            assert_eq!(settings.environment, environment);
        }
    }

    #[test]
    fn production_refuses_to_start_until_trusted_proxies_are_set() {
        let unset = Settings::build(Environment::Production, Some(config::Map::new())).unwrap_err();
        let empty = Settings::build(Environment::Production, with("APP_HTTP__TRUSTED_PROXIES", ""))
            .unwrap_err();
        // What the Kubernetes ConfigMap ships until the operator decides.
        let placeholder =
            Settings::build(Environment::Production, with("APP_HTTP__TRUSTED_PROXIES", "REPLACE-ME"))
                .unwrap_err();
        let none = Settings::build(Environment::Production, production_with("APP_HTTP__TRUSTED_PROXIES", "none"))
            .expect("`none` is an explicit choice");

        assert!(unset.to_string().contains("http.trusted_proxies"), "{unset}");
        assert!(empty.to_string().contains("`none`"), "{empty}");
        assert!(placeholder.to_string().contains("http.trusted_proxies"), "{placeholder}");
        assert_eq!(none.http.proxies(), TrustedProxies::default());
        assert!(Settings::build(Environment::Development, Some(config::Map::new())).is_ok());
    }

{%- if auth %}

    #[test]
    fn production_refuses_the_development_totp_key() {
        let development_key = crate::auth::second_factor::DEVELOPMENT_KEY;

        let error = Settings::build(
            Environment::Production,
            production_with("APP_AUTH__TOTP_ENCRYPTION_KEY", development_key),
        )
        .unwrap_err();

        assert!(error.to_string().contains("APP_AUTH__TOTP_ENCRYPTION_KEY"), "{error}");
        assert!(Settings::build(Environment::Development, None).is_ok());
    }
{%- endif %}

    #[test]
    fn production_turns_developer_tooling_off() {
        let settings = Settings::build(Environment::Production, Some(production_variables()))
            .expect("settings load");
        assert!(!settings.graphql.introspection);
        assert!(!settings.graphql.graphiql);
        assert_eq!(settings.telemetry.format, LogFormat::Json);
        assert!(settings.http.https);
{%- if auth and email %}
        assert!(settings.auth.require_confirmed_email);
        let development = Settings::build(Environment::Development, None).expect("settings load");
        assert!(!development.auth.require_confirmed_email);
{%- endif %}
    }

    #[test]
    fn metrics_are_served_in_production_only_and_apart() {
        let development = Settings::build(Environment::Development, None).expect("settings load");
        let production = Settings::build(Environment::Production, Some(production_variables()))
            .expect("settings load");
        assert!(!development.metrics.enabled);
        assert!(production.metrics.enabled);
        assert_ne!(production.metrics.port, production.http.port);
    }

    /// The variables of `.env.example`, as `cp .env.example .env` would set them.
    fn env_example() -> config::Map<String, String> {
        let text = include_str!("../.env.example");
        dotenvy::from_read_iter(text.as_bytes())
            .map(|variable| variable.expect("a well-formed .env.example"))
            .collect()
    }

    #[test]
    fn env_example_loads_and_sets_only_known_settings() {
        let variables = env_example();
        assert!(variables.len() > 10, "{variables:?}");

        let settings = Settings::build(Environment::Development, Some(variables));

        assert!(settings.is_ok(), "{:?}", settings.err());
    }

    #[test]
    fn an_unknown_app_variable_stops_start_up_naming_it() {
        let mut variables = env_example();
        variables.insert("APP_HTTP__PROT".into(), "8081".into());

        let error = Settings::build(Environment::Development, Some(variables)).unwrap_err();

        assert!(error.to_string().contains("prot"), "{error}");
    }

    #[test]
    fn a_value_out_of_range_stops_start_up_naming_its_key() {
        for (variable, key) in [
            ("APP_DATABASE__URL", "database.url"),
            ("APP_GRAPHQL__MAX_DEPTH", "graphql.max_depth"),
        ] {
            let value = if key == "database.url" { "postgres://nope" } else { "0" };
            let error = Settings::build(Environment::Development, with(variable, value)).unwrap_err();
            assert!(error.to_string().contains(key), "{variable}: {error}");
        }
    }

    #[test]
    fn unknown_environment_is_refused_with_the_accepted_values() {
        let error = Environment::try_from("staging".to_string()).unwrap_err();
        assert!(error.contains("`development` or `production`"), "{error}");
    }
}
