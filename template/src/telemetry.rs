//! Logging and tracing, set up once per process.
//!
//! Requests are traced by `tracing-actix-web`, which gives each one a `request_id`
//! field carried by every event logged while serving it.

use tracing::Subscriber;
use tracing_subscriber::{EnvFilter, Registry, fmt::MakeWriter, layer::SubscriberExt};

use crate::config::{LogFormat, TelemetrySettings};

/// Builds the subscriber; `sink` is where lines go (stdout in production, a sink in tests).
///
/// `RUST_LOG`, when set, takes precedence over the configured filter.
pub fn get_subscriber<Sink>(
    settings: &TelemetrySettings,
    sink: Sink,
) -> Box<dyn Subscriber + Send + Sync>
where
    Sink: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.filter));
    let registry = Registry::default().with(filter);
    match settings.format {
        LogFormat::Json => Box::new(
            registry.with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_writer(sink),
            ),
        ),
        LogFormat::Pretty => {
            Box::new(registry.with(tracing_subscriber::fmt::layer().with_writer(sink)))
        }
    }
}

/// Installs `subscriber` as the global default.
///
/// # Errors
/// Fails if a global subscriber is already installed.
pub fn init_subscriber(
    subscriber: Box<dyn Subscriber + Send + Sync>,
) -> Result<(), tracing::subscriber::SetGlobalDefaultError> {
    tracing::subscriber::set_global_default(subscriber)
}
