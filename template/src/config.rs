//! Typed settings.
//!
//! Layers, each overriding the one before:
//! 1. `config/base.toml`, compiled into the binary;
//! 2. `config/production.toml` when `APP_ENVIRONMENT=production`;
//! 3. environment variables (also read from `.env`), `APP_<SECTION>__<KEY>`:
//!    `APP_HTTP__PORT=5001` sets `Settings.http.port`.
//!
//! Loading fails with a message naming the offending key, so a bad deployment stops at
//! start-up instead of misbehaving later.

use std::time::Duration;

use config::{Config, ConfigError, File, FileFormat};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::{client_ip::TrustedProxies, storage::StorageUrl};

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
    pub metrics: crate::monitoring::MetricsSettings,
{%- if uses_redis %}
    pub redis: crate::redis::RedisSettings,
{%- endif %}
{%- if auth %}
    pub auth: crate::auth::AuthSettings,
{%- endif %}
{%- if queue %}
    pub jobs: crate::jobs::JobSettings,
{%- endif %}
{%- if email %}
    pub mail: crate::mail::MailSettings,
{%- endif %}
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    pub host: String,
    pub port: u16,
    pub workers: usize,
    pub shutdown_timeout_secs: u64,
    /// Clients reach the service over HTTPS only (a TLS-terminating proxy in front):
    /// responses carry HSTS and cookies are `Secure`.
    pub https: bool,
    /// The reverse proxies whose forwarding headers and trace context are believed (see
    /// `client_ip.rs`); unset means none, and is refused in production.
    pub trusted_proxies: Option<TrustedProxies>,
}

impl HttpSettings {
    /// The trusted proxies; none when unset (development).
    pub fn proxies(&self) -> TrustedProxies {
        self.trusted_proxies.clone().unwrap_or_default()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// May carry credentials, so it stays secret until the storage layer parses it.
    pub url: SecretString,
    pub mongodb_database: String,
    pub timeout_secs: u64,
}

impl DatabaseSettings {
    /// # Errors
    /// Fails when the URL's scheme names no supported backend.
    pub fn storage_url(&self) -> Result<StorageUrl, ConfigError> {
        StorageUrl::parse(self.url.expose_secret())
            .map_err(|e| ConfigError::Message(format!("database.url: {e}")))
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphqlSettings {
    pub max_body_bytes: usize,
    pub max_depth: usize,
    pub max_fields: usize,
    pub max_aliases: usize,
    pub max_batch: usize,
    pub introspection: bool,
    pub graphiql: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    pub filter: String,
    pub format: LogFormat,
    /// Spans are OpenTelemetry spans, joining callers' and jobs' traces; exported over
    /// OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (see `telemetry.rs`).
    pub traces: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
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
    /// Fails on an unknown environment, a missing key, a value of the wrong type or an
    /// unsupported database URL; the message names the key.
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
        settings.database.storage_url()?;
        if environment == Environment::Production && settings.http.trusted_proxies.is_none() {
            // Behind an unlisted proxy every client would share one rate-limit bucket.
            return Err(ConfigError::Message(
                "http.trusted_proxies must be set in production (APP_HTTP__TRUSTED_PROXIES): \
                 the networks of the reverse proxies in front of the service, or `none` when \
                 clients connect to it directly"
                    .into(),
            ));
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The variables a production deployment sets at the least.
    fn production_variables() -> config::Map<String, String> {
        [("APP_HTTP__TRUSTED_PROXIES".to_string(), "10.0.0.0/8".to_string())].into()
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
        let empty = Settings::build(
            Environment::Production,
            Some([("APP_HTTP__TRUSTED_PROXIES".to_string(), String::new())].into()),
        )
        .unwrap_err();
        let none = Settings::build(
            Environment::Production,
            Some([("APP_HTTP__TRUSTED_PROXIES".to_string(), "none".to_string())].into()),
        )
        .expect("`none` is an explicit choice");

        assert!(unset.to_string().contains("http.trusted_proxies"), "{unset}");
        assert!(empty.to_string().contains("`none`"), "{empty}");
        assert_eq!(none.http.proxies(), TrustedProxies::default());
        assert!(Settings::build(Environment::Development, Some(config::Map::new())).is_ok());
    }

    #[test]
    fn production_turns_developer_tooling_off() {
        let settings = Settings::build(Environment::Production, Some(production_variables()))
            .expect("settings load");
        assert!(!settings.graphql.introspection);
        assert!(!settings.graphql.graphiql);
        assert_eq!(settings.telemetry.format, LogFormat::Json);
        assert!(settings.http.https);
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
    fn unknown_environment_is_refused_with_the_accepted_values() {
        let error = Environment::try_from("staging".to_string()).unwrap_err();
        assert!(error.contains("`development` or `production`"), "{error}");
    }
}
