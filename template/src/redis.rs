//! The Redis connection: one multiplexed connection per process that reconnects by
//! itself, so a Redis restart costs failed requests, never a service restart.

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    pub url: SecretString,
    /// Prepended to every key, so several services (or test runs) can share a server.
    pub key_prefix: String,
    /// Longest wait for a connection or an answer before a request fails.
    #[serde(
        rename = "timeout_ms",
        deserialize_with = "crate::setting::positive_millis"
    )]
    pub timeout: Duration,
}

#[derive(Clone)]
pub struct Redis {
    client: redis::Client,
    connection: ConnectionManager,
    prefix: Arc<str>,
    timeout: Duration,
}

impl Redis {
    /// # Errors
    /// Fails on a malformed URL or when the server does not answer within the timeout.
    pub async fn connect(settings: &RedisSettings) -> redis::RedisResult<Self> {
        let client = redis::Client::open(settings.url.expose_secret())?;
        let timeout = settings.timeout;
        let connection =
            ConnectionManager::new_with_config(client.clone(), manager_config(timeout)).await?;
        Ok(Self {
            client,
            connection,
            prefix: settings.key_prefix.clone().into(),
            timeout,
        })
    }

    /// Connects and registers the readiness probe `redis`: what each module that keeps
    /// its data in Redis does at start-up.
    ///
    /// # Errors
    /// Fails on a malformed URL or when the server does not answer within the timeout.
    pub async fn connect_watched(
        settings: &RedisSettings,
        readiness: &mut crate::health::Readiness,
    ) -> anyhow::Result<Self> {
        let redis = Self::connect(settings)
            .await
            .context("Failed to connect to Redis")?;
        readiness.watch(
            "redis",
            redis.clone(),
            |redis| async move { redis.ping().await },
        );
        Ok(redis)
    }

    /// `name` under this service's key prefix.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// A handle on the shared connection; cheap to clone.
    pub fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    /// A connection of its own, for commands that block on the server for up to
    /// `blocking` (which would hold up everyone on the shared one), or for use on
    /// another Tokio runtime.
    ///
    /// # Errors
    /// Fails when the server does not answer within the timeout.
    pub async fn dedicated_connection(
        &self,
        blocking: Duration,
    ) -> redis::RedisResult<ConnectionManager> {
        let config =
            manager_config(self.timeout).set_response_timeout(Some(self.timeout + blocking));
        ConnectionManager::new_with_config(self.client.clone(), config).await
    }

    /// # Errors
    /// Fails when Redis does not answer.
    pub async fn ping(&self) -> redis::RedisResult<()> {
        redis::cmd("PING").query_async(&mut self.connection()).await
    }
}

fn manager_config(timeout: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        // Fail the request quickly while Redis is down; the manager keeps reconnecting.
        .set_number_of_retries(1)
}

/// A Redis failure as the API reports it: 503, details in the log only.
pub fn unavailable(error: redis::RedisError) -> crate::error::AppError {
    crate::error::AppError::Unavailable(anyhow::Error::new(error).context("Redis is unavailable"))
}
