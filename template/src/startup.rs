//! Builds the application (storage, listener, HTTP server) and runs it.
//!
//! `main` and the tests use the same `Application::build`, so the tests exercise exactly
//! what ships; they bind port 0 and read the real port back.

use std::net::TcpListener;

use actix_web::middleware::{Condition, from_fn};
use actix_web::{App, HttpServer, dev::Server, web};
use anyhow::Context as _;
use tracing_actix_web::TracingLogger;

use crate::monitoring::{self, MetricsServer};
use crate::{config::Settings, http, state::AppState, telemetry::RequestSpan};

pub struct Application {
    port: u16,
    state: AppState,
    server: Server,
    /// `GET /metrics` on its own listener, when metrics are on.
    metrics: Option<MetricsServer>,
}

impl Application {
    /// Connects to every dependency and binds the listener; nothing is served until
    /// [`Application::run_until_stopped`].
    ///
    /// # Errors
    /// Fails if a dependency is unreachable or the address cannot be bound.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let state = AppState::connect(&settings).await?;
        let address = (settings.http.host.as_str(), settings.http.port);
        let listener = TcpListener::bind(address)
            .with_context(|| format!("Failed to bind {}:{}", address.0, address.1))?;
        let port = listener.local_addr()?.port();
        for network in settings.http.proxies().too_wide() {
            tracing::warn!(%network, "http.trusted_proxies lists a network wider than a /16 (IPv4) or /48 (IPv6): every address in it may forge X-Forwarded-For");
        }
        let metrics = MetricsServer::bind(&settings.metrics)?;
        let server =
            serve(listener, state.clone(), &settings).context("Failed to start the server")?;
        Ok(Self {
            port,
            state,
            server,
            metrics,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the metrics listener, when metrics are on.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(MetricsServer::port)
    }

    /// The connections the server uses, for tests and maintenance tasks.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGTERM or Ctrl-C; in-flight requests then get
    /// `http.shutdown_timeout_secs` to finish, and the metrics listener closes last.
    ///
    /// # Errors
    /// Fails if a server stops on an I/O error.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        monitoring::serve_beside(self.metrics, self.server).await?
    }
}

fn serve(listener: TcpListener, state: AppState, settings: &Settings) -> std::io::Result<Server> {
    let state = web::Data::new(state);
    let endpoint = web::Data::new(http::GraphqlEndpoint::new(&settings.graphql));
    let http_settings = web::Data::new(settings.http.clone());
    let proxies = web::Data::new(settings.http.proxies());
    let metrics = settings.metrics.enabled;
    let mut server = HttpServer::new(move || {
        App::new()
            .wrap(Condition::new(metrics, from_fn(http::record_metrics)))
            .wrap(TracingLogger::<RequestSpan>::new())
            .app_data(state.clone())
            .app_data(endpoint.clone())
            .app_data(http_settings.clone())
            .app_data(proxies.clone())
            .configure(http::configure)
    })
    .shutdown_timeout(settings.http.shutdown_timeout.as_secs());
    if settings.http.workers > 0 {
        server = server.workers(settings.http.workers);
    }
    Ok(server.listen(listener)?.run())
}
