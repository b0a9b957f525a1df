//! The Redis connection: one multiplexed connection per process that reconnects by
//! itself, so a Redis restart costs failed requests, never a service restart.

use std::{sync::Arc, time::Duration};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct RedisSettings {
    pub url: SecretString,
    /// Prepended to every key, so several services (or test runs) can share a server.
    pub key_prefix: String,
    /// Longest wait for a connection or an answer before a request fails.
    pub timeout_ms: u64,
}

#[derive(Clone)]
pub struct Redis {
    connection: ConnectionManager,
    prefix: Arc<str>,
}

impl Redis {
    /// # Errors
    /// Fails on a malformed URL or when the server does not answer within the timeout.
    pub async fn connect(settings: &RedisSettings) -> redis::RedisResult<Self> {
        let client = redis::Client::open(settings.url.expose_secret())?;
        let timeout = Duration::from_millis(settings.timeout_ms);
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            // Fail the request quickly while Redis is down; the manager keeps reconnecting.
            .set_number_of_retries(1);
        let connection = ConnectionManager::new_with_config(client, config).await?;
        Ok(Self {
            connection,
            prefix: settings.key_prefix.clone().into(),
        })
    }

    /// `name` under this service's key prefix.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// A handle on the shared connection; cheap to clone.
    pub fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    /// # Errors
    /// Fails when Redis does not answer.
    pub async fn ping(&self) -> redis::RedisResult<()> {
        redis::cmd("PING").query_async(&mut self.connection()).await
    }
}

/// A Redis failure as the API reports it: 503, details in the log only.
pub fn unavailable(error: redis::RedisError) -> crate::error::AppError {
    crate::error::AppError::Unavailable(anyhow::Error::new(error).context("Redis is unavailable"))
}
