//! The service's modules, registered in one place: the handle each adds to
//! [`AppState`], how it connects (registering its readiness probes), and its commands.
//! A module joins with one entry in `app_state!` below and one in [`commands`];
//! `config.rs` takes its settings section.

use std::sync::Arc;

use anyhow::Context as _;

use crate::{cli, config::Settings, health::Readiness, storage::Storage};

/// Declares [`AppState`] with a field per entry and [`AppState::connect`], which
/// connects the entries in order: each one's expression may use the settings, the
/// readiness registry and the entries above it, by the names given.
macro_rules! app_state {
    (
        |$settings:ident, $readiness:ident| {
            $( $(#[doc = $doc:literal])* $name:ident: $type:ty = $connect:expr; )*
        }
    ) => {
        /// Handles shared by every request: cheap to clone, safe to send across threads.
        #[derive(Clone)]
        pub struct AppState {
            pub storage: Storage,
            /// The dependencies' probes and their latest report, shared by every request.
            pub readiness: Arc<Readiness>,
            $( $(#[doc = $doc])* pub $name: $type, )*
        }

        impl AppState {
            /// Connects to every dependency, failing fast when one is unreachable; each
            /// module registers its readiness probes on the way.
            ///
            /// # Errors
            /// Names the dependency that could not be reached or is misconfigured.
            pub async fn connect($settings: &Settings) -> anyhow::Result<Self> {
                let storage = Storage::connect(&$settings.database)
                    .await
                    .context("Failed to connect to the database")?;
                Self::connect_on($settings, storage).await
            }

            /// Like [`AppState::connect`], on a store already open: another instance
            /// of the service in the same process (tests of what crosses replicas).
            ///
            /// # Errors
            /// As [`AppState::connect`].
            pub async fn connect_on($settings: &Settings, storage: Storage) -> anyhow::Result<Self> {
                let timeout = $settings.database.timeout;
                let mut $readiness = Readiness::new(timeout);
                $readiness.watch("database", storage.clone(), move |storage| async move {
                    storage.ping(timeout).await
                });
                $( let $name: $type = $connect; )*
                Ok(Self {
                    storage,
                    readiness: Arc::new($readiness),
                    $( $name, )*
                })
            }
        }
    };
}

app_state! {
    |settings, readiness| {
{%- if uses_redis %}
        /// The Redis connection the modules share.
        redis: crate::redis::Redis = crate::redis::Redis::connect_watched(&settings.redis, &mut readiness).await?;
{%- endif %}
{%- if email %}
        /// Sends mail over the configured transport.
        mailer: Arc<crate::mail::Mailer> = crate::mail::Mailer::connect(&settings.mail, &mut readiness)?;
{%- endif %}
{%- if queue %}
        /// Enqueues background jobs for the worker process.
        jobs: crate::jobs::Jobs = crate::jobs::queue(&redis, &settings.jobs);
{%- endif %}
{%- if auth %}
        /// Accounts, sessions and their rate limits.
        auth: Arc<crate::auth::Auth> = Arc::new(crate::auth::Auth::new(&settings.auth, settings.http.https, redis.clone()));
{%- endif %}
{%- if auth and email %}
        /// Where account mails go: {% if queue %}queued for the worker{% else %}sent at once{% endif %}.
        account_mails: crate::auth::AccountMails = crate::auth::AccountMails::new({% if queue %}&jobs{% else %}&redis, &mailer, &settings.auth{% endif %});
{%- endif %}
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
