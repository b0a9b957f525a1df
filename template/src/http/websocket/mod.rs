//! `/graphql` over WebSocket: subscriptions by the `graphql-transport-ws` protocol (the
//! one of the `graphql-ws` npm package and Apollo), for signed-in callers.
//!
//! The upgrade is refused with 403 when a browser sends it from a page of another
//! origin not listed in `auth.allowed_origins` (cross-site WebSocket hijacking: a
//! browser would attach the session cookie), and with 429 past the connection limits.
//! The caller is the upgrade's session cookie, or the bearer token `connection_init`
//! carries (`{"authorization": "Bearer …"}`: browsers cannot set headers on a
//! WebSocket). Only subscriptions run here; queries and mutations go over POST, where
//! cookies, request limits and the answers' status codes apply.

mod connection;
mod metrics;
mod settings;
mod slots;

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, http::header, web};
use tokio::sync::watch;

pub use settings::SubscriptionSettings;

use crate::{
    auth::{ClientBuckets, RequestAuth},
    error::AppError,
    state::AppState,
};

/// The only subprotocol spoken.
const PROTOCOL: &str = "graphql-transport-ws";

/// What every WebSocket connection of the instance shares.
pub struct Subscriptions {
    settings: SubscriptionSettings,
    slots: Arc<slots::ConnectionSlots>,
    /// Turns `true` when the instance begins to shut down.
    going_away: watch::Receiver<bool>,
}

impl Subscriptions {
    pub fn new(settings: &SubscriptionSettings, going_away: watch::Receiver<bool>) -> Self {
        Self {
            settings: settings.clone(),
            slots: Arc::default(),
            going_away,
        }
    }
}

/// Routes a GET of `/graphql` here when it asks for a WebSocket.
pub fn is_upgrade(context: &actix_web::guard::GuardContext) -> bool {
    context
        .head()
        .headers()
        .get(header::UPGRADE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.eq_ignore_ascii_case("websocket"))
}

pub async fn upgrade(
    request: HttpRequest,
    payload: web::Payload,
    endpoint: web::Data<super::GraphqlEndpoint>,
    state: web::Data<AppState>,
    subscriptions: web::Data<Subscriptions>,
) -> Result<HttpResponse, AppError> {
    let auth = &state.auth;
    if !auth.admits_page_of(&request) {
        let origin = request.headers().get(header::ORIGIN);
        tracing::warn!(?origin, "Refused a WebSocket from a page of another origin");
        metrics::refused("origin");
        return Err(AppError::Forbidden);
    }
    if !offers_protocol(&request) {
        metrics::refused("protocol");
        return Err(AppError::BadRequest(format!(
            "offer the `{PROTOCOL}` subprotocol (Sec-WebSocket-Protocol)"
        )));
    }
    let caller = RequestAuth::from_request(&request, auth).await?;
    let client = crate::client_ip::of_request(&request)
        .map_or_else(ClientBuckets::unknown, |address| {
            ClientBuckets::of(address, auth.settings.ipv6_factors())
        });
    let settings = &subscriptions.settings;
    let slot = subscriptions
        .slots
        .claim(
            client.finest(),
            settings.max_connections_per_client.get(),
            settings.max_connections.get(),
        )
        .map_err(|full| {
            metrics::refused(match full {
                slots::Full::Client => "client_limit",
                slots::Full::Instance => "instance_limit",
            });
            AppError::RateLimited {
                retry_after_secs: settings.keep_alive.as_secs(),
            }
        })?;
    let (response, socket, messages) =
        actix_ws::handle_with_protocols(&request, payload, &[PROTOCOL])
            .map_err(|error| AppError::BadRequest(format!("not a WebSocket upgrade: {error}")))?;
    let max = settings.max_message_bytes.get();
    let connection = connection::Connection {
        socket,
        messages: messages
            .max_frame_size(max)
            .aggregate_continuations()
            .max_continuation_size(max),
        caller,
        endpoint: endpoint.into_inner(),
        state: state.get_ref().clone(),
        settings: settings.clone(),
        going_away: subscriptions.going_away.clone(),
        _slot: slot,
    };
    actix_web::rt::spawn(connection.run());
    Ok(response)
}

fn offers_protocol(request: &HttpRequest) -> bool {
    request
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|offered| offered.trim() == PROTOCOL)
}
