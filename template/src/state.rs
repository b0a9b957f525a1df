//! Handles shared by every request: cheap to clone, safe to send across threads.

use std::time::Duration;

use anyhow::Context as _;

use crate::{config::Settings, storage::Storage};
{%- if auth %}
use std::sync::Arc;

use crate::{auth::Auth, redis::Redis};
{%- endif %}

#[derive(Clone)]
pub struct AppState {
    pub storage: Storage,
{%- if auth %}
    pub redis: Redis,
    pub auth: Arc<Auth>,
{%- endif %}
    /// Longest wait on a dependency in a health check.
    pub health_timeout: Duration,
}

impl AppState {
    /// Connects to every dependency, failing fast when one is unreachable.
    ///
    /// # Errors
    /// Names the dependency that could not be reached.
    pub async fn connect(settings: &Settings) -> anyhow::Result<Self> {
        let storage = Storage::connect(&settings.database)
            .await
            .context("Failed to connect to the database")?;
{%- if auth %}
        let redis = Redis::connect(&settings.redis)
            .await
            .context("Failed to connect to Redis")?;
        let auth = Arc::new(Auth::new(&settings.auth, redis.clone()));
{%- endif %}
        Ok(Self {
            storage,
{%- if auth %}
            redis,
            auth,
{%- endif %}
            health_timeout: settings.database.timeout(),
        })
    }
}
