//! Readiness of the service's dependencies, shared by `/health/ready` and the GraphQL
//! `health` field.
//!
//! At start-up each part of the service registers a probe for what it depends on
//! ([`Readiness::watch`]). Requests read one snapshot, probed again at most once a
//! second: `health` is public and may be asked for many times in one request (aliases,
//! batches), and a probe may open a connection. So however many ask, the dependencies
//! see one check per second per process.

use std::{
    fmt::Display,
    future::Future,
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    pin::Pin,
    time::{Duration, Instant},
};

use juniper::GraphQLObject;
use serde::Serialize;

/// Whether every dependency answered, and how each one did.
#[derive(Debug, Clone, Serialize, GraphQLObject)]
pub struct HealthReport {
    pub ready: bool,
    pub checks: Vec<HealthCheck>,
}

#[derive(Debug, Clone, Serialize, GraphQLObject)]
pub struct HealthCheck {
    pub name: String,
    pub ok: bool,
}

type ProbeResult = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type Probe = Box<dyn Fn() -> ProbeResult + Send + Sync>;

/// The registered probes and the latest report (see the module docs).
pub struct Readiness {
    probes: Vec<(&'static str, Probe)>,
    timeout: Duration,
    latest: tokio::sync::Mutex<Option<(Instant, HealthReport)>>,
}

impl Readiness {
    /// How old a report may be before the next caller checks again.
    pub const MAX_AGE: Duration = Duration::from_secs(1);

    /// No probes yet; each may take up to `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Self {
            probes: Vec::new(),
            timeout,
            latest: tokio::sync::Mutex::new(None),
        }
    }

    /// Checks `name` in every report by calling `probe` on a clone of `target`. A
    /// dependency is checked once however many parts of the service use it: a second
    /// probe under the same name is ignored.
    pub fn watch<T, F, Fut, E>(&mut self, name: &'static str, target: T, probe: F)
    where
        T: Clone + Send + Sync + 'static,
        F: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Display,
    {
        if self.probes.iter().any(|(watched, _)| *watched == name) {
            return;
        }
        let probe: Probe = Box::new(move || {
            let answer = probe(target.clone());
            Box::pin(async move { answer.await.map_err(|error| error.to_string()) })
        });
        self.probes.push((name, probe));
    }

    /// The latest report if it is recent, else a new one. Callers arriving during a
    /// check wait for it and share its result.
    pub async fn report(&self) -> HealthReport {
        let mut latest = self.latest.lock().await;
        if let Some((checked_at, report)) = latest.as_ref()
            && checked_at.elapsed() < Self::MAX_AGE
        {
            return report.clone();
        }
        let report = self.check().await;
        *latest = Some((Instant::now(), report.clone()));
        report
    }

    /// Runs every probe once; failures are logged here and reported as `ok: false`.
    #[tracing::instrument(name = "Checking readiness", skip_all)]
    async fn check(&self) -> HealthReport {
        let mut checks = Vec::with_capacity(self.probes.len());
        for (name, probe) in &self.probes {
            checks.push(check(name, self.timeout, probe()).await);
        }
        HealthReport {
            ready: checks.iter().all(|check| check.ok),
            checks,
        }
    }
}

/// The `healthcheck` command's probe: asks the server on this host for `path` over
/// HTTP/1.0 with the standard library alone, so the runtime image needs no curl.
///
/// # Errors
/// Fails when nothing answers on `port` in time or the status is not 200.
pub fn probe(port: u16, path: &str) -> anyhow::Result<()> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let answer = String::from_utf8_lossy(&answer);
    let status_line = answer.lines().next().unwrap_or_default();
    anyhow::ensure!(
        status_line.split(' ').nth(1) == Some("200"),
        "{path} answered `{status_line}`"
    );
    Ok(())
}

async fn check<E: Display>(
    name: &str,
    timeout: Duration,
    probe: impl Future<Output = Result<(), E>>,
) -> HealthCheck {
    let ok = match tokio::time::timeout(timeout, probe).await {
        Ok(Ok(())) => true,
        Ok(Err(error)) => {
            tracing::warn!(dependency = name, error = %error, "Dependency is not ready");
            false
        }
        Err(_) => {
            tracing::warn!(
                dependency = name,
                ?timeout,
                "Dependency did not answer in time"
            );
            false
        }
    };
    HealthCheck {
        name: name.to_string(),
        ok,
    }
}
