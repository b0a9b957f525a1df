//! Builds the application (storage, listener, HTTP server) and runs it.
//!
//! `main` and the tests use the same `Application::build`, so the tests exercise exactly
//! what ships; they bind port 0 and read the real port back.

use std::net::TcpListener;

use actix_web::{App, HttpServer, dev::Server, web};
use anyhow::Context as _;
use tracing_actix_web::TracingLogger;

use crate::{config::Settings, http, state::AppState, telemetry::RequestSpan};

pub struct Application {
    port: u16,
    state: AppState,
    server: Server,
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
        let server =
            serve(listener, state.clone(), &settings).context("Failed to start the server")?;
        Ok(Self {
            port,
            state,
            server,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The connections the server uses, for tests and maintenance tasks.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGTERM or Ctrl-C; in-flight requests then get
    /// `http.shutdown_timeout_secs` to finish.
    ///
    /// # Errors
    /// Fails if the server stops on an I/O error.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

fn serve(listener: TcpListener, state: AppState, settings: &Settings) -> std::io::Result<Server> {
    let state = web::Data::new(state);
    let endpoint = web::Data::new(http::GraphqlEndpoint::new(&settings.graphql));
    let mut server = HttpServer::new(move || {
        App::new()
            .wrap(TracingLogger::<RequestSpan>::new())
            .app_data(state.clone())
            .app_data(endpoint.clone())
            .configure(http::configure)
    })
    .shutdown_timeout(settings.http.shutdown_timeout_secs);
    if settings.http.workers > 0 {
        server = server.workers(settings.http.workers);
    }
    Ok(server.listen(listener)?.run())
}
