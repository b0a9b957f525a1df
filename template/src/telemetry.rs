//! Logging and tracing, set up once per process.
//!
//! Requests are traced by `tracing-actix-web`, which gives each one a `request_id`
//! field carried by every event logged while serving it.
//!
//! The log layer formats a span's fields as the span opens, on every request, whether
//! or not anything is logged inside it; the request span therefore carries only what
//! ties a request's events together.
//!
//! With `telemetry.traces` on, an OpenTelemetry layer makes spans OpenTelemetry spans
//! too: a request from a trusted proxy (`http.trusted_proxies`) joins the trace of its
//! W3C `traceparent` header, a job joins the trace of the span that queued it, and when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, spans are exported over OTLP/HTTP in batches.
//! Without an endpoint nothing would read a recorded span: a request is traced only when
//! a trusted proxy sent a `traceparent` (whose trace then flows on into the jobs it
//! queues), only spans of sampled traces are recorded, and the request span keeps its
//! three fields. With `telemetry.traces` off none of this is installed and requests pay
//! nothing for it.
//!
//! Anyone else's `traceparent` starts no trace: the sampled flag would let a caller
//! force its requests past the operator's sampler (`01`) or hide them and their jobs
//! from it (`00`). Their request starts a trace of its own, sampled by the operator's
//! rules, with the caller's span context kept as a link.

use std::{
    collections::HashMap,
    io::IsTerminal as _,
    sync::atomic::{AtomicBool, Ordering},
};

use actix_web::{
    Error, HttpMessage as _,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::header::HeaderMap,
    web,
};
use opentelemetry::{
    Context,
    propagation::{Extractor, TextMapPropagator as _},
    trace::{TraceContextExt as _, TracerProvider as _},
};
use opentelemetry_otlp::{ExporterBuildError, SpanExporter};
use opentelemetry_sdk::{
    Resource,
    propagation::TraceContextPropagator,
    trace::{Sampler, SdkTracerProvider},
};
use tracing::{Span, Subscriber, field::Empty};
use tracing_actix_web::{RequestId, RootSpanBuilder};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::{
    EnvFilter, Layer, Registry, filter::filter_fn, fmt::MakeWriter, layer::SubscriberExt,
    registry::LookupSpan,
};

use serde::Deserialize;

use crate::client_ip::{self, TrustedProxies};

/// `[telemetry]`: what is logged, how, and whether spans are traced.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    pub filter: String,
    pub format: LogFormat,
    /// Spans are OpenTelemetry spans, joining trusted callers' and jobs' traces;
    /// exported over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
    pub traces: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Whether this process built its subscriber with the OpenTelemetry layer: one load
/// decides whether a request or a job does any tracing work at all.
static TRACES: AtomicBool = AtomicBool::new(false);
/// Whether spans leave the process: only then are they recorded and given the
/// attributes an exporter sends.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// The target of request spans the OpenTelemetry layer skips: without an endpoint, those
/// of requests that bring no trace of their own (nothing would read their spans, and a
/// job they queue starts its trace in the worker).
const UNTRACED: &str = concat!(module_path!(), "::untraced");

/// The request span's field naming the GraphQL operation.
const GRAPHQL_OPERATION: &str = "graphql.operation";

/// Builds the subscriber; `sink` is where lines go (stdout in production, a sink in tests).
/// The [`TraceExport`] flushes exported spans when dropped: hold it until exit.
///
/// `RUST_LOG`, when set, takes precedence over the configured filter.
///
/// # Errors
/// Fails when the OTLP exporter cannot be built from the `OTEL_EXPORTER_OTLP_*`
/// variables, e.g. an endpoint that is no URL.
pub fn get_subscriber<Sink>(
    settings: &TelemetrySettings,
    sink: Sink,
) -> Result<(Box<dyn Subscriber + Send + Sync>, TraceExport), ExporterBuildError>
where
    Sink: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.filter));
    let (traces, export) = if settings.traces {
        let (layer, export) = trace_layer()?;
        (Some(layer), export)
    } else {
        (None, TraceExport { provider: None })
    };
    let registry = Registry::default().with(filter).with(traces);
    let subscriber: Box<dyn Subscriber + Send + Sync> = match settings.format {
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
    };
    Ok((subscriber, export))
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

/// Sends the spans still waiting in the exporter's batch when dropped, so that the last
/// requests and jobs before a shutdown are not lost.
#[must_use = "dropping it stops the export of spans"]
pub struct TraceExport {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TraceExport {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            tracing::warn!(error = %error, "Failed to export the last spans");
        }
    }
}

/// The OpenTelemetry layer, exporting over OTLP/HTTP when an endpoint is configured.
fn trace_layer<S>() -> Result<(impl Layer<S>, TraceExport), ExporterBuildError>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    let exporting = [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()));
    let mut provider = SdkTracerProvider::builder().with_resource(resource());
    if exporting {
        // Endpoint, headers, timeout and compression come from the OTEL_EXPORTER_OTLP_*
        // variables, the batching from OTEL_BSP_*.
        let exporter = SpanExporter::builder().with_http().build()?;
        provider = provider.with_batch_exporter(exporter);
    } else {
        // Nothing would read a recorded span: record only those of traces a caller
        // sampled, so its trace still flows on (into jobs too) at the least cost.
        provider = provider.with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)));
    }
    let provider = provider.build();
    // Busy/idle timings, thread attributes and activating the OpenTelemetry context on
    // every poll cost clock reads and allocations per request, for data nothing here
    // uses: trace context is read from the span itself (`current_traceparent`).
    let layer = tracing_opentelemetry::layer()
        .with_tracked_inactivity(false)
        .with_context_activation(false)
        .with_threads(false)
        .with_tracer(provider.tracer(env!("CARGO_PKG_NAME")))
        .with_filter(filter_fn(|span| span.target() != UNTRACED));
    TRACES.store(true, Ordering::Relaxed);
    EXPORTING.store(exporting, Ordering::Relaxed);
    Ok((
        layer,
        TraceExport {
            provider: exporting.then_some(provider),
        },
    ))
}

/// The standard resource variables, with this crate as the service when none names one.
fn resource() -> Resource {
    let detected = Resource::builder().build();
    let named = detected
        .get(&"service.name".into())
        .is_some_and(|name| !name.as_str().starts_with("unknown_service"));
    if named {
        detected
    } else {
        Resource::builder()
            .with_service_name(env!("CARGO_PKG_NAME"))
            .build()
    }
}

fn traces_on() -> bool {
    TRACES.load(Ordering::Relaxed)
}

fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// The W3C `traceparent` of the current span, for work that runs elsewhere (a job) to
/// join its trace; `None` with traces off or outside any trace.
pub fn current_traceparent() -> Option<String> {
    if !traces_on() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&Span::current().context(), &mut carrier);
    carrier.remove("traceparent")
}

/// Makes `span`, before it is first entered, a child of the span that `traceparent`
/// names; a missing or malformed value leaves it where it is.
pub fn join_trace(span: &Span, traceparent: Option<&str>) {
    if let Some(traceparent) = traceparent.filter(|_| traces_on()) {
        set_remote_parent(span, &Traceparent(traceparent));
    }
}

fn set_remote_parent(span: &Span, carrier: &dyn Extractor) {
    let parent = TraceContextPropagator::new().extract_with_context(&Context::new(), carrier);
    if parent.span().span_context().is_valid() {
        // Fails for a span filtered out or already started: it then stays as it is.
        let _ = span.set_parent(parent);
    }
}

/// Links `span` to the span context in `carrier`, if a valid one, without joining its
/// trace.
fn link_remote(span: &Span, carrier: &dyn Extractor) {
    let remote = TraceContextPropagator::new().extract_with_context(&Context::new(), carrier);
    let context = remote.span().span_context().clone();
    if context.is_valid() {
        span.add_link(context);
    }
}

/// Names the GraphQL operation on the request span. `name` runs with traces on only.
/// The name comes from the caller: keep it out of metrics' labels, where each new value
/// would be a new series.
pub fn record_graphql_operation(name: impl FnOnce() -> Option<String>) {
    if exporting()
        && let Some(name) = name()
    {
        Span::current().record(GRAPHQL_OPERATION, name);
    }
}

/// A lone `traceparent` value, as the propagator reads it.
struct Traceparent<'a>(&'a str);

impl Extractor for Traceparent<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        (key == "traceparent").then_some(self.0)
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent"]
    }
}

/// A request's headers, as the propagator reads them (`traceparent`, `tracestate`).
struct RequestHeaders<'a>(&'a HeaderMap);

impl Extractor for RequestHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|name| name.as_str()).collect()
    }
}

/// The span each request runs in: method, path and request id. The default builder
/// records a dozen OpenTelemetry fields, which cost about a fifth of the throughput of a
/// cheap query; with traces on, this one adds the few a trace needs.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = request.extensions().get::<RequestId>().copied();
        let trusted = match request.app_data::<web::Data<TrustedProxies>>() {
            Some(proxies) => {
                // Every request passes here: the place to notice an unlisted proxy.
                client_ip::watch_forwarding(request.peer_addr(), request.headers(), proxies);
                client_ip::peer_is_trusted(request.peer_addr(), proxies)
            }
            None => false,
        };
        // The three fields every request span logs, under the given target.
        macro_rules! logged_span {
            ($target:expr) => {
                tracing::info_span!(
                    target: $target,
                    "HTTP request",
                    method = %request.method(),
                    path = request.path(),
                    request_id = request_id.map(tracing::field::display),
                )
            };
        }
        if !exporting() {
            let headers = RequestHeaders(request.headers());
            if !traces_on() || !trusted || headers.get("traceparent").is_none() {
                return logged_span!(UNTRACED);
            }
            let span = logged_span!(module_path!());
            set_remote_parent(&span, &headers);
            return span;
        }
        let route = request.match_pattern();
        let span = tracing::info_span!(
            "HTTP request",
            method = %request.method(),
            path = request.path(),
            request_id = request_id.map(tracing::field::display),
            otel.name = %format_args!("{} {}", request.method(), route.as_deref().unwrap_or("unmatched")),
            otel.kind = "server",
            otel.status_code = Empty,
            http.response.status_code = Empty,
            graphql.operation = Empty,
        );
        let headers = RequestHeaders(request.headers());
        if trusted {
            set_remote_parent(&span, &headers);
        } else {
            link_remote(&span, &headers);
        }
        span
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        if !exporting() {
            return;
        }
        let status = match outcome {
            Ok(response) => response.status(),
            Err(error) => error.as_response_error().status_code(),
        };
        span.record("http.response.status_code", status.as_u16());
        if status.is_server_error() {
            span.record("otel.status_code", "ERROR");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const SPAN_ID: &str = "00f067aa0ba902b7";

    fn settings(traces: bool) -> TelemetrySettings {
        TelemetrySettings {
            filter: "info".into(),
            format: LogFormat::Json,
            traces,
        }
    }

    #[test]
    fn a_span_that_joins_a_traceparent_passes_its_trace_on() {
        let (subscriber, _export) = get_subscriber(&settings(true), std::io::sink).unwrap();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("job");
            join_trace(&span, Some(&format!("00-{TRACE_ID}-{SPAN_ID}-01")));

            let passed_on = span.in_scope(current_traceparent).expect("a traceparent");

            let parts: Vec<&str> = passed_on.split('-').collect();
            assert_eq!(parts[1], TRACE_ID, "{passed_on}");
            assert_ne!(parts[2], SPAN_ID, "the job's own span: {passed_on}");
        });
    }

    #[test]
    fn a_malformed_traceparent_is_ignored() {
        let (subscriber, _export) = get_subscriber(&settings(true), std::io::sink).unwrap();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("job");
            join_trace(&span, Some("00-not-a-trace-01"));

            let passed_on = span
                .in_scope(current_traceparent)
                .expect("a trace of its own");

            assert!(!passed_on.contains(TRACE_ID), "{passed_on}");
        });
    }

    /// A request from `peer`, behind the proxies of 10.0.0.0/8, with `traceparent` if any.
    fn request_from(peer: &str, traceparent: Option<String>) -> ServiceRequest {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8".into()]).unwrap();
        let request = actix_web::test::TestRequest::default()
            .peer_addr(format!("{peer}:443").parse().unwrap())
            .app_data(web::Data::new(proxies));
        match traceparent {
            Some(traceparent) => request.insert_header(("traceparent", traceparent)),
            None => request,
        }
        .to_srv_request()
    }

    #[test]
    fn without_an_endpoint_only_requests_that_bring_a_trace_pass_one_on() {
        let (subscriber, _export) = get_subscriber(&settings(true), std::io::sink).unwrap();
        tracing::subscriber::with_default(subscriber, || {
            let plain = request_from("10.0.0.1", None);
            let traced = request_from("10.0.0.1", Some(format!("00-{TRACE_ID}-{SPAN_ID}-01")));

            let from_plain = RequestSpan::on_request_start(&plain).in_scope(current_traceparent);
            let from_traced = RequestSpan::on_request_start(&traced)
                .in_scope(current_traceparent)
                .expect("the caller's trace");

            assert_eq!(from_plain, None);
            assert_eq!(
                from_traced.split('-').nth(1),
                Some(TRACE_ID),
                "{from_traced}"
            );
        });
    }

    #[test]
    fn a_trace_from_a_peer_that_is_no_trusted_proxy_is_not_joined() {
        let (subscriber, _export) = get_subscriber(&settings(true), std::io::sink).unwrap();
        tracing::subscriber::with_default(subscriber, || {
            let traced = request_from("198.51.100.7", Some(format!("00-{TRACE_ID}-{SPAN_ID}-01")));

            let passed_on = RequestSpan::on_request_start(&traced).in_scope(current_traceparent);

            assert_eq!(passed_on, None);
        });
    }

    #[test]
    fn without_the_layer_nothing_is_passed_on() {
        let (subscriber, _export) = get_subscriber(&settings(false), std::io::sink).unwrap();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request");
            join_trace(&span, Some(&format!("00-{TRACE_ID}-{SPAN_ID}-01")));

            assert_eq!(span.in_scope(current_traceparent), None);
        });
    }
}
