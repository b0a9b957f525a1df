//! Logging and tracing, set up once per process.
//!
//! Requests are traced by `tracing-actix-web`, which gives each one a `request_id`
//! field carried by every event logged while serving it.
//!
//! The log layer formats a span's fields as the span opens, on every request, whether
//! or not anything is logged inside it; the request span therefore carries only what
//! ties a request's events together.

use std::io::IsTerminal as _;

use actix_web::{
    Error, HttpMessage as _,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
};
use tracing::{Span, Subscriber};
use tracing_actix_web::{RequestId, RootSpanBuilder};
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
        LogFormat::Pretty => Box::new(
            registry.with(
                tracing_subscriber::fmt::layer()
                    // Colours for a person at a terminal, plain text in files and pipes.
                    .with_ansi(std::io::stdout().is_terminal())
                    .with_writer(sink),
            ),
        ),
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

/// The span each request runs in: method, path and request id. The default builder
/// records a dozen OpenTelemetry fields, which cost about a fifth of the throughput of a
/// cheap query.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = request.extensions().get::<RequestId>().copied();
        tracing::info_span!(
            "HTTP request",
            method = %request.method(),
            path = request.path(),
            request_id = request_id.map(tracing::field::display),
        )
    }

    fn on_request_end<B: MessageBody>(_: Span, _: &Result<ServiceResponse<B>, Error>) {}
}
