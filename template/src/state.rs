//! Handles shared by every request: cheap to clone, safe to send across threads.

{% if auth or email %}use std::{sync::Arc, time::Duration};{% else %}use std::time::Duration;{% endif %}

use anyhow::Context as _;

{% if email %}use crate::mail::Mailer;
{% endif %}{% if auth %}use crate::{auth::Auth, redis::Redis};
{% endif %}use crate::{config::Settings, storage::Storage};

#[derive(Clone)]
pub struct AppState {
    pub storage: Storage,
{%- if auth %}
    pub redis: Redis,
    pub auth: Arc<Auth>,
{%- endif %}
{%- if email %}
    pub mailer: Arc<Mailer>,
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
{%- if email %}
        let mailer = Mailer::from_settings(&settings.mail).context("Invalid mail settings")?;
        let mailer = Arc::new(mailer);
{%- endif %}
        Ok(Self {
            storage,
{%- if auth %}
            redis,
            auth,
{%- endif %}
{%- if email %}
            mailer,
{%- endif %}
            health_timeout: settings.database.timeout(),
        })
    }
}
