//! Handles shared by every request: cheap to clone, safe to send across threads.

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;

{% if auth %}use crate::auth::Auth;
{% endif %}{% if queue %}use crate::jobs::Jobs;
{% endif %}{% if email %}use crate::mail::Mailer;
{% endif %}{% if uses_redis %}use crate::redis::Redis;
{% endif %}use crate::{config::Settings, health::Readiness, storage::Storage};

#[derive(Clone)]
pub struct AppState {
    pub storage: Storage,
{%- if uses_redis %}
    pub redis: Redis,
{%- endif %}
{%- if auth %}
    pub auth: Arc<Auth>,
{%- endif %}
{%- if email %}
    pub mailer: Arc<Mailer>,
{%- endif %}
{%- if queue %}
    /// Enqueues background jobs for the worker process.
    pub jobs: Jobs,
{%- endif %}
    /// Longest wait on a dependency in a health check.
    pub health_timeout: Duration,
    /// The latest readiness report, shared by every request.
    pub readiness: Arc<Readiness>,
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
{%- if uses_redis %}
        let redis = Redis::connect(&settings.redis)
            .await
            .context("Failed to connect to Redis")?;
{%- endif %}
{%- if auth %}
        let auth = Arc::new(Auth::new(&settings.auth, redis.clone()));
{%- endif %}
{%- if email %}
        let mailer = Mailer::from_settings(&settings.mail).context("Invalid mail settings")?;
        let mailer = Arc::new(mailer);
{%- endif %}
        Ok(Self {
            storage,
{%- if queue %}
            jobs: Jobs::connect(&redis, &settings.jobs),
{%- endif %}
{%- if uses_redis %}
            redis,
{%- endif %}
{%- if auth %}
            auth,
{%- endif %}
{%- if email %}
            mailer,
{%- endif %}
            health_timeout: settings.database.timeout(),
            readiness: Arc::default(),
        })
    }
}
