//! One WebSocket connection, from `connection_init` to its close.
//!
//! juniper_graphql_ws runs the protocol once the caller is known; this loop owns what it
//! leaves open: who the caller is, the init timeout, dead clients (WebSocket pings), the
//! session's end, the subscription limit, refusing queries and mutations, and shutdown.
//! Close codes: 4400 malformed message, 4401 subscribe before init or session ended,
//! 4403 no valid session, 4408 no `connection_init` in time, 4409 duplicate id (juniper),
//! 4429 a second `connection_init`, 1009 message too large, 1001 shutdown or a client
//! that stopped answering pings.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason};
use futures_util::StreamExt as _;
use juniper::{DefaultScalarValue, Variables, futures::SinkExt as _};
use juniper_graphql_ws::{
    ConnectionConfig,
    graphql_transport_ws::{self as protocol, ClientMessage, Input, Output, ServerMessage},
};
use tokio::sync::watch;

use super::{SubscriptionSettings, metrics, slots::Slot};
use crate::{
    auth::{ActiveSession, RequestAuth},
    error::AppError,
    graphql::{Context, Schema},
    http::GraphqlEndpoint,
    state::AppState,
};

type Juniper = protocol::Connection<Arc<Schema>, ConnectionConfig<Context, DefaultScalarValue>>;

/// How long subscriptions get to deliver the event that ended their session before the
/// connection closes.
const SESSION_END_GRACE: Duration = Duration::from_secs(1);

pub(super) struct Connection {
    pub socket: actix_ws::Session,
    pub messages: AggregatedMessageStream,
    /// Who the upgrade request came from: a cookie session, or none yet.
    pub caller: RequestAuth,
    pub endpoint: Arc<GraphqlEndpoint>,
    pub state: AppState,
    pub settings: SubscriptionSettings,
    pub going_away: watch::Receiver<bool>,
    /// Held for as long as the connection lives.
    pub _slot: Slot,
}

/// The protocol once `connection_init` found the caller.
struct Ready {
    juniper: Juniper,
    caller: Arc<RequestAuth>,
    session: ActiveSession,
    /// The running subscriptions by id, each counted in the gauge.
    running: HashMap<String, metrics::Open>,
    /// Since when the session is over: the connection closes once its subscriptions
    /// delivered their last event.
    ending_since: Option<Instant>,
}

/// What the loop reacts to.
enum Step {
    Received(Option<Result<AggregatedMessage, actix_ws::ProtocolError>>),
    Output(Option<Output<DefaultScalarValue>>),
    Ping,
    CheckSession,
    Closing(u16, &'static str),
}

impl Connection {
    pub async fn run(mut self) {
        let _open = metrics::Open::connection();
        let reason = self.serve().await;
        metrics::closed(
            reason
                .as_ref()
                .map_or(1000, |reason| u16::from(reason.code)),
        );
        // The client may be gone already; nothing is left to tell it.
        let _ = self.socket.close(reason).await;
    }

    /// Serves the connection until it should close, and says why.
    async fn serve(&mut self) -> Option<CloseReason> {
        let opened = Instant::now();
        let mut ready: Option<Ready> = None;
        let mut last_heard = Instant::now();
        let mut pings = tokio::time::interval(self.settings.keep_alive);
        let mut session_checks = tokio::time::interval(self.settings.session_check);
        pings.tick().await;
        session_checks.tick().await;
        let init_deadline = tokio::time::Instant::from_std(opened + self.settings.init_timeout);
        loop {
            let awaiting_init = ready.is_none();
            let step = tokio::select! {
                received = self.messages.next() => Step::Received(received),
                output = next_output(&mut ready) => Step::Output(output),
                _ = pings.tick() => Step::Ping,
                _ = session_checks.tick() => Step::CheckSession,
                () = tokio::time::sleep_until(init_deadline), if awaiting_init => {
                    Step::Closing(4408, "Connection initialisation timeout")
                }
                _ = self.going_away.wait_for(|going| *going) => {
                    Step::Closing(1001, "The server is shutting down")
                }
            };
            match step {
                Step::Received(None) => return None,
                Step::Received(Some(Err(actix_ws::ProtocolError::Overflow))) => {
                    return close(1009, "Message too large");
                }
                Step::Received(Some(Err(_))) => return close(4400, "Malformed WebSocket frame"),
                Step::Received(Some(Ok(message))) => {
                    last_heard = Instant::now();
                    if let Some(reason) = self.receive(message, &mut ready).await {
                        return reason;
                    }
                }
                Step::Output(None) => return None,
                Step::Output(Some(output)) => {
                    if let Some(reason) = self.send(output, &mut ready).await {
                        return reason;
                    }
                }
                Step::Ping => {
                    if last_heard.elapsed() > self.settings.keep_alive * 2 {
                        return close(1001, "No answer to pings");
                    }
                    if self.socket.ping(b"").await.is_err() {
                        return None;
                    }
                }
                Step::CheckSession => {
                    if let Some(ready) = &ready {
                        let sessions = &self.state.auth.sessions;
                        if matches!(sessions.is_live(&ready.session).await, Ok(false)) {
                            ready.caller.end_session();
                        }
                    }
                }
                Step::Closing(code, why) => return close(code, why),
            }
            if let Some(ready) = &mut ready
                && ready.session_over()
            {
                return close(4401, "The session ended");
            }
        }
    }

    /// Handles one client message; `Some` closes the connection.
    async fn receive(
        &mut self,
        message: AggregatedMessage,
        ready: &mut Option<Ready>,
    ) -> Option<Option<CloseReason>> {
        let text = match message {
            AggregatedMessage::Text(text) => text,
            AggregatedMessage::Ping(bytes) => {
                return self.socket.pong(&bytes).await.err().map(|_| None);
            }
            AggregatedMessage::Pong(_) => return None,
            AggregatedMessage::Close(_) => return Some(None),
            AggregatedMessage::Binary(_) => return Some(close(4400, "Messages are JSON text")),
        };
        let Ok(message) = serde_json::from_str::<ClientMessage<DefaultScalarValue>>(&text) else {
            return Some(close(4400, "Not a graphql-transport-ws message"));
        };
        let Some(active) = ready.as_mut() else {
            return self.before_init(message, ready).await;
        };
        let message = match message {
            ClientMessage::ConnectionInit { .. } => {
                return Some(close(4429, "Too many initialisation requests"));
            }
            ClientMessage::Subscribe { id, payload } => {
                if let Err(refusal) = self.admit(&payload) {
                    let answer = refusal_message(&id, &refusal);
                    return self.send_text(answer, "error").await;
                }
                active
                    .running
                    .insert(id.clone(), metrics::Open::subscription());
                ClientMessage::Subscribe { id, payload }
            }
            other => other,
        };
        // juniper's sink never fails: its errors are `Infallible`.
        let _ = active.juniper.send(Input::Message(message)).await;
        None
    }

    /// Before `connection_init`, only pings are answered; the init finds the caller.
    async fn before_init(
        &mut self,
        message: ClientMessage<DefaultScalarValue>,
        ready: &mut Option<Ready>,
    ) -> Option<Option<CloseReason>> {
        let payload = match message {
            ClientMessage::ConnectionInit { payload } => payload,
            ClientMessage::Ping { .. } => {
                return self.send_text(r#"{"type":"pong"}"#.into(), "pong").await;
            }
            ClientMessage::Subscribe { .. } => return Some(close(4401, "Unauthorized")),
            ClientMessage::Pong { .. } | ClientMessage::Complete { .. } => return None,
        };
        let caller = std::mem::replace(&mut self.caller, RequestAuth::anonymous());
        let caller = match bearer_of(&payload) {
            Some(token) => caller.or_bearer(token, &self.state.auth).await,
            None => Ok(caller),
        };
        let caller = match caller {
            Ok(caller) => Arc::new(caller),
            Err(AppError::Unavailable(_)) => return Some(close(1011, "Try again later")),
            Err(_) => return Some(close(4403, "Forbidden")),
        };
        let Some(session) = caller.session().cloned() else {
            return Some(close(4403, "Forbidden: sign in first"));
        };
        let context = Context {
            state: self.state.clone(),
            auth: caller.clone(),
        };
        let config = ConnectionConfig::new(context)
            .with_max_in_flight_operations(self.settings.max_per_connection.get())
            // Dead clients are found by WebSocket pings, which every client answers
            // (the protocol's own pings are optional for clients).
            .with_keep_alive_interval(Duration::ZERO)
            .with_panic_handler(|_, _: &Context| {
                tracing::error!("A subscription panicked; its connection closes");
                None
            });
        let mut juniper = Juniper::new(self.endpoint.schema(), config);
        let init = ClientMessage::ConnectionInit {
            payload: Variables::new(),
        };
        let _ = juniper.send(Input::Message(init)).await;
        *ready = Some(Ready {
            juniper,
            caller,
            session,
            running: HashMap::new(),
            ending_since: None,
        });
        None
    }

    /// Subscriptions only, within the request limits.
    fn admit(
        &self,
        payload: &protocol::SubscribePayload<DefaultScalarValue>,
    ) -> Result<(), AppError> {
        if !is_subscription(&payload.query, payload.operation_name.as_deref()) {
            return Err(AppError::BadRequest(
                "only subscriptions run over the WebSocket: send queries and mutations by POST"
                    .into(),
            ));
        }
        self.endpoint.limits().check_document(&payload.query)
    }

    /// Sends one of juniper's outputs; `Some` closes the connection.
    async fn send(
        &mut self,
        output: Output<DefaultScalarValue>,
        ready: &mut Option<Ready>,
    ) -> Option<Option<CloseReason>> {
        let message = match output {
            Output::Message(message) => message,
            Output::Close { code, message } => {
                return Some(Some(CloseReason {
                    code: CloseCode::Other(code),
                    description: Some(message),
                }));
            }
        };
        let kind = match &message {
            ServerMessage::ConnectionAck => "connection_ack",
            ServerMessage::Pong => "pong",
            ServerMessage::Next { .. } => "next",
            ServerMessage::Error { .. } => "error",
            ServerMessage::Complete { id } => {
                if let Some(ready) = ready {
                    ready.running.remove(id);
                }
                "complete"
            }
        };
        let text = serde_json::to_string(&message).expect("a server message serializes");
        self.send_text(text, kind).await
    }

    async fn send_text(&mut self, text: String, kind: &'static str) -> Option<Option<CloseReason>> {
        if self.socket.text(text).await.is_err() {
            return Some(None);
        }
        metrics::sent(kind);
        None
    }
}

impl Ready {
    /// Whether the session is over and its subscriptions had their chance to say why.
    fn session_over(&mut self) -> bool {
        if self.caller.session().is_some() {
            return false;
        }
        let since = *self.ending_since.get_or_insert_with(Instant::now);
        self.running.is_empty() || since.elapsed() > SESSION_END_GRACE
    }
}

async fn next_output(ready: &mut Option<Ready>) -> Option<Output<DefaultScalarValue>> {
    match ready {
        Some(ready) => ready.juniper.next().await,
        None => std::future::pending().await,
    }
}

fn close(code: u16, description: &str) -> Option<CloseReason> {
    Some(CloseReason {
        code: CloseCode::Other(code),
        description: Some(description.into()),
    })
}

/// The token of `{"authorization": "Bearer …"}`.
fn bearer_of(payload: &Variables<DefaultScalarValue>) -> Option<&str> {
    use juniper::ScalarValue as _;
    let value = payload.get("authorization")?.as_scalar()?.try_as_str()?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
}

/// Whether the operation to run is a subscription. A document that does not parse
/// counts as one: juniper then answers with the parse error.
fn is_subscription(query: &str, operation_name: Option<&str>) -> bool {
    use graphql_parser::query::{Definition, OperationDefinition};
    let Ok(document) = graphql_parser::parse_query::<&str>(query) else {
        return true;
    };
    document
        .definitions
        .iter()
        .filter_map(|definition| match definition {
            Definition::Operation(operation) => Some(operation),
            Definition::Fragment(_) => None,
        })
        .map(|operation| match operation {
            OperationDefinition::Subscription(s) => (s.name, true),
            OperationDefinition::Query(q) => (q.name, false),
            OperationDefinition::Mutation(m) => (m.name, false),
            OperationDefinition::SelectionSet(_) => (None, false),
        })
        .find(|(name, _)| operation_name.is_none() || *name == operation_name)
        .is_some_and(|(_, subscription)| subscription)
}

/// A graphql-transport-ws `error` message for an operation refused before it ran.
fn refusal_message(id: &str, refusal: &AppError) -> String {
    let error = serde_json::json!({
        "message": refusal.public_message(),
        "extensions": { "code": refusal.code().as_str() },
    });
    serde_json::json!({ "id": id, "type": "error", "payload": [error] }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_subscriptions_are_subscriptions() {
        assert!(is_subscription(
            "subscription { accountEvents { kind } }",
            None
        ));
        assert!(!is_subscription("{ me { id } }", None));
        assert!(!is_subscription("mutation { logout }", None));
        let both = "query A { me { id } } subscription B { accountEvents { kind } }";
        assert!(is_subscription(both, Some("B")));
        assert!(!is_subscription(both, Some("A")));
        assert!(
            is_subscription("subscription {", None),
            "juniper reports the parse error"
        );
    }

    #[test]
    fn the_bearer_token_comes_from_the_authorization_entry() {
        let payload: Variables<DefaultScalarValue> =
            serde_json::from_str(r#"{"authorization": "Bearer abc"}"#).unwrap();
        assert_eq!(bearer_of(&payload), Some("abc"));
        assert_eq!(bearer_of(&Variables::new()), None);
    }
}
