//! Traces, end to end: the real binaries export to an OTLP/HTTP collector run by the
//! test. A request joins its caller's W3C trace{% if queue %} and the jobs it queues join the request{% endif %}.

use std::{
    process::Command,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use actix_web::{App, HttpResponse, HttpServer, web};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse},
    common::v1::{AnyValue, KeyValue, any_value::Value},
    trace::v1::{Span, span::SpanKind},
};
use prost::Message as _;
use serde_json::json;
{%- if queue %}
use tracing::Instrument as _;
{%- endif %}

use crate::shutdown::{binary, serve, terminate};

/// A span as the collector received it, with the service that sent it.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    span: Span,
}

impl Received {
    fn trace_id(&self) -> String {
        hex(&self.span.trace_id)
    }

    fn parent_span_id(&self) -> String {
        hex(&self.span.parent_span_id)
    }

    fn attribute(&self, key: &str) -> Option<&str> {
        self.span
            .attributes
            .iter()
            .find(|attribute| attribute.key == key)
            .and_then(string_value)
    }
}

fn is_server(received: &Received) -> bool {
    received.span.kind == SpanKind::Server as i32
}

fn string_value(attribute: &KeyValue) -> Option<&str> {
    match &attribute.value {
        Some(AnyValue {
            value: Some(Value::StringValue(value)),
        }) => Some(value),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// An OTLP/HTTP collector on a free port: it keeps every span posted to `/v1/traces`.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Received>>>,
    exports: Arc<Mutex<usize>>,
}

impl Collector {
    /// Starts the collector; returns it and its base URL, as OTEL_EXPORTER_OTLP_ENDPOINT.
    fn start() -> (Self, String) {
        let collector = Self::default();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let state = web::Data::new(collector.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(web::PayloadConfig::new(16 << 20))
                .route("/v1/traces", web::post().to(receive))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        (collector, endpoint)
    }

    /// Export requests received so far.
    fn exports(&self) -> usize {
        *self.exports.lock().unwrap()
    }

    fn in_trace(&self, trace_id: &str) -> Vec<Received> {
        let spans = self.spans.lock().unwrap();
        spans
            .iter()
            .filter(|received| received.trace_id() == trace_id)
            .cloned()
            .collect()
    }

    /// The spans of `trace_id` once `done` holds for them, within 20 s.
    async fn wait_for_trace(
        &self,
        trace_id: &str,
        what: &str,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let started = Instant::now();
        loop {
            let spans = self.in_trace(trace_id);
            if done(&spans) {
                return spans;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "no {what} in trace {trace_id} after 20 s; received: {:#?}",
                self.spans.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The first span for which `found` holds, within 20 s.
    async fn wait_for_span(&self, what: &str, found: impl Fn(&Received) -> bool) -> Received {
        let started = Instant::now();
        loop {
            if let Some(span) = self.spans.lock().unwrap().iter().find(|span| found(span)) {
                return span.clone();
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "no {what} after 20 s; received: {:#?}",
                self.spans.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn receive(body: web::Bytes, collector: web::Data<Collector>) -> HttpResponse {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return HttpResponse::BadRequest().finish();
    };
    *collector.exports.lock().unwrap() += 1;
    let mut spans = collector.spans.lock().unwrap();
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|resource| &resource.attributes)
            .find(|attribute| attribute.key == "service.name")
            .and_then(string_value)
            .unwrap_or_default()
            .to_string();
        for scope_spans in resource_spans.scope_spans {
            spans.extend(scope_spans.spans.into_iter().map(|span| Received {
                service: service.clone(),
                span,
            }));
        }
    }
    HttpResponse::Ok()
        .content_type("application/x-protobuf")
        .body(ExportTraceServiceResponse::default().encode_to_vec())
}

/// A caller's span, as its `traceparent` header names it.
struct Caller {
    trace_id: String,
    span_id: String,
}

impl Caller {
    fn new() -> Self {
        let span_id = uuid::Uuid::new_v4().simple().to_string();
        Self {
            trace_id: uuid::Uuid::new_v4().simple().to_string(),
            span_id: span_id[..16].to_string(),
        }
    }

    fn traceparent(&self) -> String {
        format!("00-{}-{}-01", self.trace_id, self.span_id)
    }
}

/// The binary with `args`, traces on and exported to `endpoint` within 100 ms of a span's
/// end, and no other OTEL_* variable of this environment. The test is the caller and its
/// trusted proxy: only a trusted proxy's trace context is joined.
fn exporting(args: &[&str], endpoint: &str) -> Command {
    let mut command = binary(args);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("OTEL_") {
            command.env_remove(name);
        }
    }
    command
        .env("APP_TELEMETRY__TRACES", "true")
        .env("APP_HTTP__PORT", "0")
        .env("APP_HTTP__TRUSTED_PROXIES", "127.0.0.1/32")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        .env("OTEL_BSP_SCHEDULE_DELAY", "100");
{%- if uses_redis %}
    // Keys of its own; processes that share a queue are given one prefix.
    command.env(
        "APP_REDIS__KEY_PREFIX",
        crate::redis_server::unique_prefix(),
    );
{%- endif %}
{%- if auth %}
    // Registrations hash at the lowest cost: these tests are about traces.
    command.env("APP_AUTH__BCRYPT_COST", "4");
{%- endif %}
    command
}

async fn post_graphql(
    address: &str,
    caller: &Caller,
    body: serde_json::Value,
) -> serde_json::Value {
    let response = reqwest::Client::new()
        .post(format!("{address}/graphql"))
        .header("traceparent", caller.traceparent())
        .json(&body)
        .send()
        .await
        .expect("Failed to send the request");
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_request_joins_its_callers_trace_named_by_its_operation() {
    let (collector, endpoint) = Collector::start();
    let (mut server, address) = serve(
        // Batches wait a minute: only the flush at shutdown can send the span in time.
        exporting(&["serve"], &endpoint).env("OTEL_BSP_SCHEDULE_DELAY", "60000"),
    );
    let caller = Caller::new();

    post_graphql(
        &address,
        &caller,
        json!({ "query": "query Version { apiVersion }" }),
    )
    .await;
    let status = terminate(&mut server).await;

    assert!(status.success(), "exited with {status}");
    // Sent by the flush at exit, or never.
    let spans = collector
        .wait_for_trace(&caller.trace_id, "server span", |spans| {
            spans.iter().any(is_server)
        })
        .await;
    let request = spans.iter().find(|received| is_server(received)).unwrap();
    assert_eq!(request.parent_span_id(), caller.span_id);
    assert_eq!(request.span.name, "POST /graphql");
    assert_eq!(request.attribute("graphql.operation"), Some("Version"));
    assert_eq!(request.service, "{{project-name}}");
}

#[tokio::test]
async fn an_untrusted_callers_trace_is_linked_not_joined() {
    let (collector, endpoint) = Collector::start();
    let (mut server, address) = serve(
        exporting(&["serve"], &endpoint).env("APP_HTTP__TRUSTED_PROXIES", "none"),
    );
    let caller = Caller::new();

    post_graphql(&address, &caller, json!({ "query": "{ apiVersion }" })).await;
    let status = terminate(&mut server).await;

    assert!(status.success(), "exited with {status}");
    let request = collector
        .wait_for_span("a server span linked to the caller", |received| {
            is_server(received)
                && received
                    .span
                    .links
                    .iter()
                    .any(|link| hex(&link.trace_id) == caller.trace_id)
        })
        .await;
    assert_ne!(request.trace_id(), caller.trace_id);
    assert!(request.span.parent_span_id.is_empty(), "a root of its own");
    let link = &request.span.links[0];
    assert_eq!(hex(&link.span_id), caller.span_id);
}

#[tokio::test]
async fn an_untrusted_caller_cannot_force_its_trace_past_the_sampler() {
    let (collector, endpoint) = Collector::start();
    // The operator samples nothing but what trusted callers sampled.
    let (mut server, address) = serve(
        exporting(&["serve"], &endpoint)
            .env("APP_HTTP__TRUSTED_PROXIES", "none")
            .env("OTEL_TRACES_SAMPLER", "parentbased_always_off"),
    );
    let caller = Caller::new(); // its traceparent says "sampled"

    post_graphql(&address, &caller, json!({ "query": "{ apiVersion }" })).await;
    let status = terminate(&mut server).await;

    assert!(status.success(), "exited with {status}");
    // The flush at exit has run: whatever was recorded has arrived.
    let spans = collector.spans.lock().unwrap();
    assert!(
        !spans.iter().any(is_server),
        "{spans:#?}"
    );
}

#[tokio::test]
async fn with_traces_off_nothing_is_exported() {
    let (collector, endpoint) = Collector::start();
    let (mut server, address) =
        serve(exporting(&["serve"], &endpoint).env("APP_TELEMETRY__TRACES", "false"));

    post_graphql(
        &address,
        &Caller::new(),
        json!({ "query": "{ apiVersion }" }),
    )
    .await;
    let status = terminate(&mut server).await;

    assert!(status.success(), "exited with {status}");
    assert_eq!(
        collector.exports(),
        0,
        "{:#?}",
        collector.spans.lock().unwrap()
    );
}
{%- if queue %}

#[tokio::test]
async fn a_job_queued_in_a_trace_runs_in_that_trace() {
    use {{crate_name}}::{
        jobs::{self, Job},
        telemetry::{current_traceparent, join_trace},
    };

    // The test's own spans get trace ids (see `helpers::TRACING`).
    std::sync::LazyLock::force(&crate::helpers::TRACING);
    let (collector, endpoint) = Collector::start();
    let prefix = crate::redis_server::unique_prefix();
    let (mut worker, _) = crate::shutdown::start_until_logged(
        exporting(&["worker"], &endpoint).env("APP_REDIS__KEY_PREFIX", &prefix),
        "Worker started",
    );
    let redis = crate::queue::redis_under(crate::redis_server::url(), &prefix).await;
    let jobs = jobs::queue(&redis, &crate::queue::fast_settings());
    let caller = Caller::new();
    let queuing = tracing::info_span!("queuing");
    join_trace(&queuing, Some(&caller.traceparent()));
    let queued_by = queuing.in_scope(current_traceparent).expect("a trace");

    jobs.enqueue(Job::PurgeDeadJobs)
        .instrument(queuing)
        .await
        .unwrap();

    let spans = collector
        .wait_for_trace(&caller.trace_id, "job span", |spans| {
            spans.iter().any(|received| received.span.name == "job")
        })
        .await;
    let job = spans
        .iter()
        .find(|received| received.span.name == "job")
        .unwrap();
    assert_eq!(
        job.parent_span_id(),
        queued_by.split('-').nth(2).unwrap(),
        "the job is a child of the span that queued it"
    );
    assert!(terminate(&mut worker).await.success());
}
{%- endif %}
{%- if auth and email and queue %}

#[tokio::test]
async fn a_registrations_mail_job_runs_in_the_requests_trace() {
    let (collector, endpoint) = Collector::start();
    let prefix = crate::redis_server::unique_prefix();
    let (mut worker, _) = crate::shutdown::start_until_logged(
        exporting(&["worker"], &endpoint).env("APP_REDIS__KEY_PREFIX", &prefix),
        "Worker started",
    );
    let (mut server, address) =
        serve(exporting(&["serve"], &endpoint).env("APP_REDIS__KEY_PREFIX", &prefix));
    let caller = Caller::new();

    register(&address, &caller).await;

    let spans = collector
        .wait_for_trace(&caller.trace_id, "server and job spans", |spans| {
            spans.iter().any(is_server) && spans.iter().any(|received| received.span.name == "job")
        })
        .await;
    let request = spans.iter().find(|received| is_server(received)).unwrap();
    assert_eq!(request.parent_span_id(), caller.span_id);
    assert_eq!(request.attribute("graphql.operation"), Some("register"));
    let job = spans
        .iter()
        .find(|received| received.span.name == "job")
        .unwrap();
    assert!(
        spans
            .iter()
            .any(|received| hex(&received.span.span_id) == job.parent_span_id()
                && received.span.name != "job"),
        "the job's parent is a span of the request: {spans:#?}"
    );
    assert!(terminate(&mut server).await.success());
    assert!(terminate(&mut worker).await.success());
}

#[tokio::test]
async fn with_traces_off_a_queued_job_carries_no_trace() {
    let (_collector, endpoint) = Collector::start();
    let prefix = crate::redis_server::unique_prefix();
    let (mut server, address) = serve(
        exporting(&["serve"], &endpoint)
            .env("APP_TELEMETRY__TRACES", "false")
            .env("APP_REDIS__KEY_PREFIX", &prefix),
    );

    // A registration queues its mail, once it has answered.
    register(&address, &Caller::new()).await;
    let queued = queued_jobs(&prefix).await;

    assert_eq!(queued.len(), 1, "{queued:?}");
    assert!(!queued[0].contains("\"trace\""), "{}", queued[0]);
    assert!(terminate(&mut server).await.success());
}

async fn register(address: &str, caller: &Caller) {
    let body = post_graphql(
        address,
        caller,
        json!({
            "query": "mutation($email: String!, $password: String!) { register(email: $email, password: $password) { message } }",
            "variables": { "email": crate::auth::unique_email(), "password": crate::auth::PASSWORD },
        }),
    )
    .await;
    assert!(body["errors"].is_null(), "{body}");
}

/// The JSON of the jobs in the stream of the queue under `prefix`, once there are any
/// (within 10 s).
async fn queued_jobs(prefix: &str) -> Vec<String> {
    let redis = crate::queue::redis_under(crate::redis_server::url(), prefix).await;
    let stream = ["{", prefix, "jobs}:stream"].concat();
    let started = Instant::now();
    loop {
        let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
            .arg(&stream)
            .arg("-")
            .arg("+")
            .query_async(&mut redis.connection())
            .await
            .unwrap();
        if !entries.is_empty() || started.elapsed() > Duration::from_secs(10) {
            return entries
                .into_iter()
                .flat_map(|(_, fields)| fields.into_iter().map(|(_, job)| job))
                .collect();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
{%- endif %}
{%- if auth %}

mod sign_in_secrets {
    //! What must never leave the app: the secrets, codes and tokens of the second
    //! factor{% if email %} and of sign-in by code{% endif %}, in its logs, traces or metrics.

    use std::{path::Path, process::Child, time::Duration};

    use serde_json::{Value, json};

    use super::{Collector, exporting, terminate};
    use crate::{
        auth::{PASSWORD, unique_email},
        second_factor::{COMPLETE, CONFIRM, LOGIN, SET_UP, code_at, with_time_left_in_the_period},
    };

    /// The answer of the binary at `address` to one operation.
    async fn post(address: &str, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = reqwest::Client::new()
            .post(format!("{address}/graphql"))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap().json().await.unwrap()
    }

    /// The log line with `message` in the log file at `path`, once written.
    async fn logged(path: &Path, message: &str) -> Value {
        for _ in 0..300 {
            let text = std::fs::read_to_string(path).unwrap();
            let line = text
                .lines()
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .find(|event| event["message"] == message);
            if let Some(line) = line {
                return line;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no {message:?} in the log");
    }

    /// `command` of the binary, exporting to `endpoint`, logging at debug level into
    /// `log`, with its metrics on.
    fn start(command: &str, endpoint: &str, log: &Path, env: &[(&str, &str)]) -> Child {
        exporting(&[command], endpoint)
            .env("APP_METRICS__ENABLED", "true")
            .env("APP_TELEMETRY__FILTER", "debug")
            .envs(env.iter().copied())
            .stdout(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap()
    }
{%- if email %}

    /// The code in the first code mail to `email` in `folder`.
    async fn mailed_code(folder: &Path, email: &str) -> String {
        const INTRO: &str = "Your sign-in code: ";
        for _ in 0..300 {
            for entry in std::fs::read_dir(folder).unwrap() {
                let text = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
                if let Some(start) = text.find(INTRO).filter(|_| text.contains(email)) {
                    return text[start + INTRO.len()..][..9].to_string();
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no code mail to {email}");
    }
{%- endif %}

    #[tokio::test]
    async fn no_secret_or_code_reaches_the_logs_the_traces_or_the_metrics() {
        // The real binaries, sharing one queue{% if email %} and one mail folder{% endif %}.
        let (collector, endpoint) = Collector::start();
        let folder = tempfile::tempdir().unwrap();
        let log = folder.path().join("serve.log");
        let prefix = crate::redis_server::unique_prefix();
        let {% if email %}mut {% endif %}env = vec![("APP_REDIS__KEY_PREFIX", prefix.as_str())];
{%- if email %}
        let mail = folder.path().join("mail");
        let mail = mail.to_str().unwrap();
        env.push(("APP_MAIL__FILE_DIR", mail));
{%- endif %}
        let mut server = start("serve", &endpoint, &log, &env);
        let address = format!("http://127.0.0.1:{}", logged(&log, "Listening").await["port"]);
        let metrics_port = logged(&log, "Serving metrics on /metrics").await["port"].clone();
{%- if queue %}
        let worker_log = folder.path().join("worker.log");
        let mut worker = start("worker", &endpoint, &worker_log, &env);
        logged(&worker_log, "Worker started").await;
{%- endif %}

        // Enrol, then sign in with a wrong code, a TOTP code and a recovery code.
        let email = unique_email();
        let credentials = json!({ "e": email, "p": PASSWORD });
        let register = "mutation($e: String!, $p: String!) { register(email: $e, password: $p) { message } }";
        post(&address, None, register, credentials.clone()).await;
        let session = post(&address, None, LOGIN, credentials.clone()).await["data"]["login"]["sessionToken"].clone();
        let session = session.as_str().unwrap();
        let secret = post(&address, Some(session), SET_UP, json!({})).await["data"]["setUpTotp"]["secret"].clone();
        let secret = secret.as_str().unwrap();
        with_time_left_in_the_period(Duration::from_secs(3)).await;
        let first_code = code_at(secret, 0);
        let confirmed = post(&address, Some(session), CONFIRM, json!({ "c": first_code })).await;
        let recovery_codes: Vec<String> = serde_json::from_value(confirmed["data"]["confirmTotp"].clone()).unwrap();
        let mut secrets = vec![secret.to_string(), session.to_string(), first_code, code_at(secret, 1)];
        for code in ["000000", &code_at(secret, 1), &recovery_codes[0]] {
            let login = post(&address, None, LOGIN, credentials.clone()).await;
            let pending = login["data"]["login"]["secondFactorToken"].as_str().unwrap().to_string();
            let completed = post(&address, None, COMPLETE, json!({ "c": code, "t": pending })).await;
            secrets.push(pending);
            if let Some(token) = completed["data"]["completeLogin"]["sessionToken"].as_str() {
                secrets.push(token.to_string());
            }
        }
        assert_eq!(secrets.len(), 4 + 5, "two of three sign-ins completed: {secrets:?}");
        secrets.extend(recovery_codes.iter().cloned());
        secrets.extend(recovery_codes.iter().map(|code| code.replace('-', "")));
{%- if email %}

        // Sign in by code: a wrong one, then the mailed one, which leaves the second factor due.
        let ask = "mutation($e: String!) { requestLoginCode(email: $e, bearer: true) { loginCodeToken } }";
        let asked = post(&address, None, ask, json!({ "e": email })).await;
        let code_token = asked["data"]["requestLoginCode"]["loginCodeToken"].as_str().unwrap().to_string();
        let code = mailed_code(Path::new(mail), &email).await;
        let by_code = "mutation($c: String!, $t: String) { loginWithCode(code: $c, loginCodeToken: $t) { secondFactorToken } }";
        post(&address, None, by_code, json!({ "c": "AAAA-AAAA", "t": code_token })).await;
        let signed_in = post(&address, None, by_code, json!({ "c": code, "t": code_token })).await;
        let pending = signed_in["data"]["loginWithCode"]["secondFactorToken"].as_str();
        secrets.extend([code.clone(), code.replace('-', ""), code_token]);
        secrets.push(pending.unwrap_or_else(|| panic!("{signed_in}")).to_string());
{%- endif %}

        let metrics = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        terminate(&mut server).await;
{%- if queue %}
        terminate(&mut worker).await;
        let logs = [std::fs::read_to_string(&log).unwrap(), std::fs::read_to_string(&worker_log).unwrap()].concat();
{%- else %}
        let logs = std::fs::read_to_string(&log).unwrap();
{%- endif %}
        let spans = collector
            .wait_for_span("a span of completeLogin", |span| {
                span.attribute("graphql.operation") == Some("completeLogin")
            })
            .await;
        let traces = format!("{spans:?} {:?}", collector.spans.lock().unwrap());

        assert!(logs.contains(r#""level":"DEBUG""#), "debug lines are logged: {logs}");
        for secret in &secrets {
            // Codes are six digits: look for whole words only.
            let holds = |text: &str| {
                text.split(|c: char| !c.is_ascii_alphanumeric() && c != '-')
                    .any(|word| word == secret)
            };
            assert!(!holds(&logs), "{secret} is in the log");
            assert!(!holds(&metrics), "{secret} is in the metrics");
            assert!(!holds(&traces), "{secret} is in the traces");
        }
    }
}
{%- endif %}
