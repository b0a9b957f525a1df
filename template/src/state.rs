//! The service's modules, registered in one place: the handle each adds to
//! [`AppState`], how it connects (registering its readiness probes), and its commands.
//! A module joins with one block in each of the three lists below, in this file only;
//! `config.rs` takes its settings section.

use std::sync::Arc;

use anyhow::Context as _;

use crate::{cli, config::Settings, health::Readiness, storage::Storage};

/// Handles shared by every request: cheap to clone, safe to send across threads.
#[derive(Clone)]
pub struct AppState {
    pub storage: Storage,
    /// The dependencies' probes and their latest report, shared by every request.
    pub readiness: Arc<Readiness>,
{%- if auth %}
    /// Accounts, sessions and their rate limits.
    pub auth: Arc<crate::auth::Auth>,
{%- endif %}
{%- if email %}
    /// Sends mail over the configured transport.
    pub mailer: Arc<crate::mail::Mailer>,
{%- endif %}
{%- if queue %}
    /// Enqueues background jobs for the worker process.
    pub jobs: crate::jobs::Jobs,
{%- endif %}
}

impl AppState {
    /// Connects to every dependency, failing fast when one is unreachable; each module
    /// registers its readiness probes on the way.
    ///
    /// # Errors
    /// Names the dependency that could not be reached or is misconfigured.
    pub async fn connect(settings: &Settings) -> anyhow::Result<Self> {
        let storage = Storage::connect(&settings.database)
            .await
            .context("Failed to connect to the database")?;
        let timeout = settings.database.timeout;
        let mut readiness = Readiness::new(timeout);
        readiness.watch("database", storage.clone(), move |storage| async move {
            storage.ping(timeout).await
        });
{%- if uses_redis %}
        let redis = crate::redis::Redis::connect_watched(&settings.redis, &mut readiness).await?;
{%- endif %}
{%- if email %}
        let mailer = crate::mail::Mailer::connect(&settings.mail, &mut readiness)?;
{%- endif %}
{%- if queue %}
        let jobs = crate::jobs::queue(&redis, &settings.jobs);
{%- endif %}
{%- if auth and email %}
        let mails = crate::auth::AccountMails::new({% if queue %}&jobs{% else %}&redis, &mailer, &settings.auth{% endif %});
{%- endif %}
{%- if auth %}
        let auth = crate::auth::Auth::new(&settings.auth, settings.http.https, redis{% if email %}, mails{% endif %});
{%- endif %}
        Ok(Self {
            storage,
            readiness: Arc::new(readiness),
{%- if auth %}
            auth: Arc::new(auth),
{%- endif %}
{%- if email %}
            mailer,
{%- endif %}
{%- if queue %}
            jobs,
{%- endif %}
        })
    }
}

/// The commands the modules add, each with what it needs from the configuration.
pub fn commands() -> Vec<cli::Module> {
    vec![
{%- if auth %}
        cli::Module::of::<crate::auth::cli::Command>(|settings| crate::auth::cli::Needs {
            database: settings.database,
            redis: settings.redis,
            auth: settings.auth,
        }),
{%- endif %}
{%- if email %}
        cli::Module::of::<crate::mail::cli::Command>(|settings| settings.mail),
{%- endif %}
{%- if queue %}
        cli::Module::of::<crate::worker::Command>(|settings| settings),
{%- endif %}
    ]
}
