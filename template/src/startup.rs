//! Builds the application (storage, listener, HTTP server) and runs it.
//!
//! `main` and the tests use the same `Application::build`, so the tests exercise exactly
//! what ships; they bind port 0 and read the real port back.

use std::net::TcpListener;

use actix_web::middleware::{Condition, from_fn};
use actix_web::{App, HttpServer, dev::Server, web};
use anyhow::Context as _;
use tokio::sync::watch;
use tracing_actix_web::TracingLogger;

use crate::monitoring::{self, MetricsServer};
use crate::{config::Settings, http, state::AppState, telemetry::RequestSpan};

pub struct Application {
    port: u16,
    state: AppState,
    server: Server,
    /// Tells long-lived connections (WebSockets) that the server is shutting down.
    going_away: watch::Sender<bool>,
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
        Self::serve_state(state, settings)
    }

    /// Like [`Application::build`], on `storage`, already open: another replica in the
    /// same process, for tests of what crosses replicas.
    ///
    /// # Errors
    /// As [`Application::build`].
    pub async fn build_on(settings: Settings, storage: crate::storage::Storage) -> anyhow::Result<Self> {
        let state = AppState::connect_on(&settings, storage).await?;
        Self::serve_state(state, settings)
    }

    fn serve_state(state: AppState, settings: Settings) -> anyhow::Result<Self> {
        let address = (settings.http.host.as_str(), settings.http.port);
        let listener = TcpListener::bind(address)
            .with_context(|| format!("Failed to bind {}:{}", address.0, address.1))?;
        let port = listener.local_addr()?.port();
        for network in settings.http.proxies().too_wide() {
            tracing::warn!(%network, "http.trusted_proxies lists a network wider than a /16 (IPv4) or /48 (IPv6): every address in it may forge X-Forwarded-For");
        }
        let metrics = MetricsServer::bind(&settings.metrics)?;
        let (going_away, shutdown) = watch::channel(false);
        let server = serve(listener, state.clone(), &settings, shutdown)
            .context("Failed to start the server")?;
        Ok(Self {
            port,
            state,
            server,
            going_away,
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

    /// Serves until SIGTERM or Ctrl-C; WebSockets are then closed (1001), in-flight
    /// requests get `http.shutdown_timeout_secs` to finish, and the metrics listener
    /// closes last.
    ///
    /// # Errors
    /// Fails if a server stops on an I/O error.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let server = self.server.handle();
        let going_away = self.going_away;
        tokio::spawn(async move {
            crate::shutdown::requested().await;
            // First: open WebSockets would hold the graceful stop until its timeout.
            going_away.send_replace(true);
            server.stop(true).await;
        });
        monitoring::serve_beside(self.metrics, self.server).await?
    }
}

fn serve(
    listener: TcpListener,
    state: AppState,
    settings: &Settings,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<Server> {
    let state = web::Data::new(state);
    let endpoint = web::Data::new(http::GraphqlEndpoint::new(&settings.graphql));
    let http_settings = web::Data::new(settings.http.clone());
    let proxies = web::Data::new(settings.http.proxies());
    let metrics = settings.metrics.enabled;
{%- if auth %}
    let subscriptions = web::Data::new(http::websocket::Subscriptions::new(&settings.subscriptions, shutdown));
{%- else %}
    drop(shutdown); // nothing long-lived to tell without subscriptions
{%- endif %}
    let mut server = HttpServer::new(move || {
        App::new()
            .wrap(Condition::new(metrics, from_fn(http::record_metrics)))
            .wrap(TracingLogger::<RequestSpan>::new())
            .app_data(state.clone())
            .app_data(endpoint.clone())
            .app_data(http_settings.clone())
            .app_data(proxies.clone())
{%- if auth %}
            .app_data(subscriptions.clone())
{%- endif %}
            .configure(http::configure)
    })
    // Signals are ours to handle (`run_until_stopped`).
    .disable_signals()
    .shutdown_timeout(settings.http.shutdown_timeout.as_secs());
    if settings.http.workers > 0 {
        server = server.workers(settings.http.workers);
    }
    Ok(server.listen(listener)?.run())
}
