//! Prometheus metrics: the settings, the process's recorder and the server of
//! `GET /metrics`.
//!
//! Code records through the `metrics` facade (`metrics::counter!` and friends), which
//! does nothing until [`recorder`] installs the Prometheus recorder. The text format is
//! served on a listener of its own (`metrics.host`, `metrics.port`), never on the public
//! one: series describe the service's internals and are for the monitoring network only.
//! Every label has a fixed set of values; none comes from what a client sent.

use std::{
    cell::RefCell, collections::HashMap, hash::Hash, net::TcpListener, sync::OnceLock,
    thread::LocalKey, time::Duration,
};

use actix_web::{App, HttpResponse, HttpServer, dev::Server, http::header, web};
use anyhow::Context as _;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::Deserialize;

/// Upper bounds of the `_seconds` histograms' buckets: 1 ms to 30 s, about doubling,
/// which covers a cached read as well as a slow job.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// How often histogram samples are folded into their buckets when nobody scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// Serve `GET /metrics`; off in development, on in production.
    pub enabled: bool,
    /// Interface of the metrics listener, apart from the public one.
    pub host: String,
    /// Its TCP port; 0 picks a free one (tests).
    pub port: u16,
}

static RECORDER: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

/// The process's Prometheus recorder, installed on the first call; later calls return the
/// same handle, so every server and test in one process shares one set of series.
///
/// # Errors
/// Fails when another metrics recorder was installed first.
pub fn recorder() -> anyhow::Result<PrometheusHandle> {
    RECORDER
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .and_then(PrometheusBuilder::install_recorder)
                .map_err(|error| error.to_string())
        })
        .clone()
        .map_err(|error| anyhow::anyhow!("Failed to install the metrics recorder: {error}"))
}

/// Whether this process records metrics: lets code skip work that only serves a label.
pub fn enabled() -> bool {
    RECORDER.get().is_some_and(Result::is_ok)
}

/// A `_total` counter and a `_seconds` histogram sharing one set of label values.
pub struct TimedSeries {
    count: metrics::Counter,
    seconds: metrics::Histogram,
}

impl TimedSeries {
    pub fn new(count: metrics::Counter, seconds: metrics::Histogram) -> Self {
        Self { count, seconds }
    }

    pub fn record(&self, elapsed: Duration) {
        self.count.increment(1);
        self.seconds.record(elapsed);
    }
}

/// Records `elapsed` in the series for `labels`, found in a per-thread cache and
/// registered on first use. Registering builds, hashes and stores a key per series; on a
/// hot path (every request) a lookup by the bare label values costs a fraction of that.
/// Label sets are bounded by design, so the cache is too.
pub fn record_timed<K: Eq + Hash>(
    cache: &'static LocalKey<RefCell<HashMap<K, TimedSeries>>>,
    labels: K,
    elapsed: Duration,
    register: impl FnOnce(&K) -> TimedSeries,
) {
    cache.with_borrow_mut(|series| {
        if let Some(found) = series.get(&labels) {
            return found.record(elapsed);
        }
        let registered = register(&labels);
        registered.record(elapsed);
        series.insert(labels, registered);
    });
}

/// `GET /metrics` on a listener of its own.
pub struct MetricsServer {
    port: u16,
    server: Server,
    recorder: PrometheusHandle,
}

impl MetricsServer {
    /// Installs the recorder and binds the metrics listener; `None` when metrics are off.
    /// Nothing is served until [`serve_beside`] runs it.
    ///
    /// # Errors
    /// Fails when the address cannot be bound or the recorder cannot be installed.
    pub fn bind(settings: &MetricsSettings) -> anyhow::Result<Option<Self>> {
        if !settings.enabled {
            return Ok(None);
        }
        let recorder = recorder()?;
        let address = (settings.host.as_str(), settings.port);
        let listener = TcpListener::bind(address).with_context(|| {
            format!(
                "Failed to bind the metrics listener {}:{}",
                address.0, address.1
            )
        })?;
        let port = listener.local_addr()?.port();
        let handle = web::Data::new(recorder.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(handle.clone())
                .route("/metrics", web::get().to(scrape))
        })
        .workers(1)
        // The process's graceful shutdown stops it, once the main work has stopped.
        .disable_signals()
        .shutdown_timeout(5)
        .listen(listener)?
        .run();
        tracing::info!(host = %settings.host, port, "Serving metrics on /metrics");
        Ok(Some(Self {
            port,
            server,
            recorder,
        }))
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

async fn scrape(recorder: web::Data<PrometheusHandle>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        ))
        .body(recorder.render())
}

/// Runs `main` with `metrics` served beside it, and stops serving metrics once `main`
/// has finished (its graceful shutdown included): the last scrape sees the drain.
///
/// # Errors
/// Fails when the metrics server stops on an I/O error.
pub async fn serve_beside<T>(
    metrics: Option<MetricsServer>,
    main: impl Future<Output = T>,
) -> std::io::Result<T> {
    let Some(MetricsServer {
        server, recorder, ..
    }) = metrics
    else {
        return Ok(main.await);
    };
    let control = server.handle();
    let main = async move {
        let output = main.await;
        control.stop(true).await;
        output
    };
    let metrics = async move {
        tokio::select! {
            served = server => served,
            never = upkeep(recorder) => never,
        }
    };
    let (output, served) = tokio::join!(main, metrics);
    served.map(|()| output)
}

/// Folds histogram samples into buckets now and then, so memory stays flat between
/// scrapes (a scrape folds them too).
async fn upkeep(recorder: PrometheusHandle) -> std::io::Result<()> {
    let mut ticks = tokio::time::interval(UPKEEP_INTERVAL);
    loop {
        ticks.tick().await;
        recorder.run_upkeep();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_call_returns_the_one_recorder() {
        let first = recorder().expect("the recorder installs");
        metrics::counter!("monitoring_unit_test_total").increment(2);

        let second = recorder().expect("the same recorder");

        assert!(first.render().contains("monitoring_unit_test_total 2"));
        assert!(second.render().contains("monitoring_unit_test_total 2"));
    }

    #[test]
    fn seconds_histograms_have_buckets() {
        let recorder = recorder().expect("the recorder installs");
        metrics::histogram!("monitoring_unit_test_seconds").record(0.003);

        let text = recorder.render();

        assert!(
            text.contains("monitoring_unit_test_seconds_bucket{le=\"0.005\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("monitoring_unit_test_seconds_count 1"),
            "{text}"
        );
    }
}
