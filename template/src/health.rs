//! Readiness of the service's dependencies, shared by `/health/ready` and the GraphQL
//! `health` field.
//!
//! Both read one snapshot, checked again at most once a second: `health` is public and
//! may be asked for many times in one request (aliases, batches), and each check pings
//! the database{% if uses_redis %} and Redis{% endif %}{% if email %} and opens an SMTP connection{% endif %}. So however many ask, the
//! dependencies see one check per second per process.

use std::{
    fmt::Display,
    future::Future,
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    time::{Duration, Instant},
};

use juniper::GraphQLObject;
use serde::Serialize;

use crate::state::AppState;

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

/// The latest report and when it was made (see the module docs).
#[derive(Default)]
pub struct Readiness {
    latest: tokio::sync::Mutex<Option<(Instant, HealthReport)>>,
}

impl Readiness {
    /// How old a report may be before the next caller checks again.
    pub const MAX_AGE: Duration = Duration::from_secs(1);

    /// The latest report if it is recent, else a new one. Callers arriving during a
    /// check wait for it and share its result.
    pub async fn report(&self, state: &AppState) -> HealthReport {
        let mut latest = self.latest.lock().await;
        if let Some((checked_at, report)) = latest.as_ref()
            && checked_at.elapsed() < Self::MAX_AGE
        {
            return report.clone();
        }
        let report = check_dependencies(state).await;
        *latest = Some((Instant::now(), report.clone()));
        report
    }
}

/// Checks each dependency once; failures are logged here and reported as `ok: false`.
#[tracing::instrument(name = "Checking readiness", skip_all)]
async fn check_dependencies(state: &AppState) -> HealthReport {
    let timeout = state.health_timeout;
    let checks = vec![
        // One line per dependency; modules add theirs.
        check("database", timeout, state.storage.ping(timeout)).await,
{%- if uses_redis %}
        check("redis", timeout, state.redis.ping()).await,
{%- endif %}
{%- if email %}
        check("mail", timeout, state.mailer.check()).await,
{%- endif %}
    ];
    HealthReport {
        ready: checks.iter().all(|check| check.ok),
        checks,
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
