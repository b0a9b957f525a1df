//! Prometheus metrics: served on a listener of their own, never the public one, and a
//! scrape after some traffic holds the documented series with exact counts.
//!
//! The recorder is global to a process and shared by every app a test starts in it, so
//! the tests that count run the real binary, whose series no other test touches.

use std::{collections::BTreeMap, process::Child};

use serde_json::{Value, json};

use crate::{
    helpers::{spawn_app, spawn_app_with},
    shutdown::{binary, start_until_all_logged, terminate},
};

const SERVING_METRICS: &str = "Serving metrics on /metrics";

/// One scrape: every series (its name and labels) with its value, and the raw text.
pub struct Scrape {
    series: BTreeMap<(String, BTreeMap<String, String>), f64>,
    pub text: String,
}

impl Scrape {
    /// Reads the Prometheus text format.
    pub fn parse(text: &str) -> Self {
        let series = text
            .lines()
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| {
                let (series, value) = line
                    .rsplit_once(' ')
                    .unwrap_or_else(|| panic!("no value in {line:?}"));
                let value = value
                    .parse()
                    .unwrap_or_else(|_| panic!("no number in {line:?}"));
                (parse_series(series), value)
            })
            .collect();
        Self {
            series,
            text: text.to_string(),
        }
    }

    /// The value of the series `name` with exactly `labels`, if it exists.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let labels = labels
            .iter()
            .map(|(label, value)| (label.to_string(), value.to_string()))
            .collect();
        self.series.get(&(name.to_string(), labels)).copied()
    }
}

/// `name{label="value",…}` as the name and its labels.
fn parse_series(series: &str) -> (String, BTreeMap<String, String>) {
    let Some((name, labels)) = series.split_once('{') else {
        return (series.to_string(), BTreeMap::new());
    };
    let mut rest = labels.strip_suffix('}').expect("labels end with a brace");
    let mut parsed = BTreeMap::new();
    while !rest.is_empty() {
        let (label, quoted) = rest.split_once("=\"").expect("labels are label=\"value\"");
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        let end = loop {
            match chars.next() {
                Some((at, '"')) => break at,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, escaped)) => value.push(escaped),
                    None => panic!("a dangling escape in {series:?}"),
                },
                Some((_, character)) => value.push(character),
                None => panic!("an unterminated label value in {series:?}"),
            }
        };
        parsed.insert(label.to_string(), value);
        rest = quoted[end + 1..].trim_start_matches(',');
    }
    (name.to_string(), parsed)
}

/// The binary running one command with metrics on, on ports of its own; killed if a
/// test fails before stopping it.
pub struct Metered {
    child: Child,
    client: reqwest::Client,
    /// The public listener of `serve`.
    pub address: Option<String>,
    metrics: String,
}

impl Metered {
    /// `serve`, with the variables `env` on top of the tests' own.
    pub fn serve(env: &[(&str, &str)]) -> Self {
        Self::start("serve", "Listening", env)
    }

    /// `command`, ready once it has logged `ready`, with the variables `env` on top of the
    /// tests' own.
    pub fn start(command: &str, ready: &str, env: &[(&str, &str)]) -> Self {
        let mut command = binary(&[command]);
        command
            .env("APP_HTTP__PORT", "0")
            .env("APP_METRICS__ENABLED", "true")
            .envs(env.iter().copied());
        let (child, events) = start_until_all_logged(&mut command, &[SERVING_METRICS, ready]);
        let metrics_port = events[0]["port"].as_u64().expect("no metrics port logged");
        Self {
            child,
            client: crate::helpers::graphql_client(),
            address: events[1]["port"]
                .as_u64()
                .map(|port| format!("http://127.0.0.1:{port}")),
            metrics: format!("http://127.0.0.1:{metrics_port}/metrics"),
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        let address = self.address.as_deref().expect("a public listener");
        self.client
            .get(format!("{address}{path}"))
            .send()
            .await
            .expect("Failed to send the request")
    }

    /// The process id, to read its memory by.
    #[cfg(target_os = "linux")]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub async fn post(&self, body: &Value) -> reqwest::Response {
        let address = self.address.as_deref().expect("a public listener");
        self.client
            .post(format!("{address}/graphql"))
            .json(body)
            .send()
            .await
            .expect("Failed to send the request")
    }

    /// The answer to one operation.
    pub async fn graphql(&self, query: &str, variables: Value) -> Value {
        let body = json!({ "query": query, "variables": variables });
        self.post(&body).await.json().await.expect("a JSON answer")
    }

    pub async fn scrape(&self) -> Scrape {
        let response = self
            .client
            .get(&self.metrics)
            .send()
            .await
            .expect("Failed to scrape");
        assert_eq!(response.status(), 200);
        Scrape::parse(&response.text().await.expect("a text body"))
    }

    /// SIGTERM: a clean exit, after which the metrics listener is closed too.
    pub async fn stop(mut self) {
        let status = terminate(&mut self.child).await;
        assert!(status.success(), "exited with {status}");
        assert!(self.client.get(&self.metrics).send().await.is_err());
    }
}

impl Drop for Metered {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn metrics_are_served_apart_from_the_public_listener_and_only_when_on() {
    let off = spawn_app().await;
    let on = spawn_app_with(|settings| settings.metrics.enabled = true).await;
    let metrics = on.metrics_address.as_deref().expect("a metrics listener");

    let public = on.get("/metrics").await;
    let scraped = on
        .client
        .get(format!("{metrics}/metrics"))
        .send()
        .await
        .unwrap();

    assert_eq!(off.metrics_address, None);
    assert_ne!(metrics, on.address);
    assert_eq!(public.status(), 404);
    assert_eq!(scraped.status(), 200);
    assert_eq!(
        scraped.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
}

#[tokio::test]
async fn a_scrape_counts_requests_by_route_and_operations_by_root_field() {
    // Arrange
    let app = Metered::serve(&[]);

    // Act
    for _ in 0..2 {
        app.graphql("{ apiVersion }", json!({})).await;
    }
    let refused = app
        .graphql("query ChosenByTheClient { noSuchField }", json!({}))
        .await;
    let batch = json!([{ "query": "{ apiVersion }" }, { "query": "{ health { ready } }" }]);
    assert_eq!(app.post(&batch).await.status(), 200);
    assert_eq!(app.get("/no/such/path").await.status(), 404);
    let scrape = app.scrape().await;

    // Assert
    assert_eq!(
        refused["errors"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    let requests = |name, method, route, status| {
        let labels = [("method", method), ("route", route), ("status", status)];
        scrape.value(name, &labels)
    };
    for name in ["http_requests_total", "http_request_duration_seconds_count"] {
        assert_eq!(
            requests(name, "POST", "/graphql", "200"),
            Some(3.0),
            "{name}"
        );
        assert_eq!(
            requests(name, "POST", "/graphql", "400"),
            Some(1.0),
            "{name}"
        );
        assert_eq!(
            requests(name, "GET", "unmatched", "404"),
            Some(1.0),
            "{name}"
        );
    }
    let operations = |name, operation, outcome| {
        scrape.value(name, &[("operation", operation), ("outcome", outcome)])
    };
    for name in [
        "graphql_operations_total",
        "graphql_operation_duration_seconds_count",
    ] {
        assert_eq!(operations(name, "apiVersion", "ok"), Some(3.0), "{name}");
        assert_eq!(operations(name, "health", "ok"), Some(1.0), "{name}");
        assert_eq!(
            operations(name, "unknown", "GRAPHQL_VALIDATION_FAILED"),
            Some(1.0),
            "{name}"
        );
    }
    for chosen_by_the_client in ["no/such/path", "ChosenByTheClient", "noSuchField"] {
        assert!(
            !scrape.text.contains(chosen_by_the_client),
            "{chosen_by_the_client} became a label:\n{}",
            scrape.text
        );
    }
    app.stop().await;
}

#[test]
fn the_parser_reads_names_labels_and_escapes() {
    let scrape = Scrape::parse(
        "# TYPE a_total counter\na_total{b=\"x\",c=\"say \\\"hi\\\", twice\"} 2\nplain 0.5\n",
    );
    assert_eq!(
        scrape.value("a_total", &[("c", "say \"hi\", twice"), ("b", "x")]),
        Some(2.0)
    );
    assert_eq!(scrape.value("plain", &[]), Some(0.5));
    assert_eq!(scrape.value("a_total", &[("b", "x")]), None);
}

/// Resident memory of the process `pid`.
#[cfg(target_os = "linux")]
fn resident_bytes(pid: u32) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("no /proc/<pid>/status");
    let kilobytes = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().strip_suffix("kB"))
        .and_then(|value| value.trim().parse::<u64>().ok())
        .expect("no VmRSS in /proc/<pid>/status");
    kilobytes << 10
}

/// Operations numbered `numbers`, each named by a client for the first time: a name of
/// 60 kB (the body stays within its limit) that no operation of the document declares.
/// Sent 16 at a time, so the stream takes seconds, not minutes.
#[cfg(target_os = "linux")]
async fn post_new_operation_names(app: &Metered, numbers: std::ops::Range<usize>) {
    let url = format!(
        "{}/graphql",
        app.address.as_deref().expect("a public listener")
    );
    let padding = "n".repeat(60_000);
    let end = numbers.end;
    for first in numbers.step_by(16) {
        let mut requests = tokio::task::JoinSet::new();
        for number in first..end.min(first + 16) {
            let body = json!({
                "query": "{ apiVersion }",
                "operationName": format!("{number}{padding}"),
            });
            requests.spawn(app.client.post(&url).json(&body).send());
        }
        while let Some(sent) = requests.join_next().await {
            let response = sent.unwrap().expect("Failed to send the request");
            assert_eq!(response.status(), 400);
            let answer: Value = response.json().await.expect("a JSON answer");
            assert_eq!(answer["errors"][0]["message"], "Unknown operation");
        }
    }
}

/// The app runs as the binary, so that its memory is measured apart from the tests
/// running beside this one in the test process.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn memory_stays_flat_under_a_stream_of_new_operation_names() {
    // Arrange: buffers and caches of a first stream stay, as they would in a service.
    let app = Metered::serve(&[]);
    post_new_operation_names(&app, 0..200).await;
    let before = resident_bytes(app.pid());

    // Act
    post_new_operation_names(&app, 200..2_200).await;
    let after = resident_bytes(app.pid());

    // Assert: 2 000 names of 60 kB are 120 MB.
    let grown = after.saturating_sub(before);
    assert!(
        grown < 32 << 20,
        "RSS grew from {} MiB to {} MiB",
        before >> 20,
        after >> 20
    );
}
