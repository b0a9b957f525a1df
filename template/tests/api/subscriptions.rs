//! Subscriptions over the `/graphql` WebSocket (graphql-transport-ws): who may open one,
//! events raised on another instance, the end of the session, the limits, metrics and
//! shutdown.

use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{self, Message, client::IntoClientRequest as _},
};

use {{crate_name}}::{config::Settings, domain::UserId, startup::Application};

use crate::{
    auth::{
        PASSWORD, cookie_set_by, graphql, login, login_at, me, post_login_selecting, register,
        signed_in, unique_email,
    },
    helpers::{TestApp, spawn_app, spawn_app_with},
    metrics::Metered,
};

const ACCOUNT_EVENTS: &str = "subscription { accountEvents { kind endsThisSession } }";
const LOGOUT_EVERYWHERE: &str = "mutation { logoutEverywhere }";

/// What the server sent next.
#[derive(Debug)]
enum Received {
    Message(Value),
    Closed(u16),
}

/// A graphql-transport-ws client.
struct Client {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    /// Opens a WebSocket to `address`'s `/graphql` with the extra `headers`.
    async fn open(address: &str, headers: &[(&str, &str)]) -> Result<Self, tungstenite::Error> {
        let url = format!("{}/graphql", address.replacen("http", "ws", 1));
        let mut request = url.into_client_request()?;
        let protocol = "graphql-transport-ws".parse().unwrap();
        request.headers_mut().insert("Sec-WebSocket-Protocol", protocol);
        for (name, value) in headers {
            let name: tungstenite::http::HeaderName = name.parse().unwrap();
            request.headers_mut().insert(name, value.parse().unwrap());
        }
        let (socket, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(Self { socket })
    }

    /// Opens a connection and initialises it with the bearer `token`.
    async fn signed_in(address: &str, token: &str) -> Self {
        let mut client = Self::open(address, &[]).await.expect("the upgrade succeeds");
        client.init(json!({ "authorization": format!("Bearer {token}") })).await;
        client
    }

    /// Sends `connection_init` with `payload`; waits for the acknowledgement.
    async fn init(&mut self, payload: Value) {
        self.send(json!({ "type": "connection_init", "payload": payload })).await;
        let ack = self.next().await;
        assert!(
            matches!(&ack, Received::Message(m) if m["type"] == "connection_ack"),
            "no connection_ack: {ack:?}"
        );
    }

    async fn subscribe(&mut self, id: &str, query: &str) {
        self.send(json!({ "id": id, "type": "subscribe", "payload": { "query": query } }))
            .await;
    }

    async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::text(message.to_string()))
            .await
            .expect("the message is sent");
    }

    /// The next message or the close, within 10 s.
    async fn next(&mut self) -> Received {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(10), self.socket.next())
                .await
                .expect("nothing from the server within 10 s");
            match frame {
                Some(Ok(Message::Text(text))) => {
                    return Received::Message(serde_json::from_str(&text).unwrap());
                }
                Some(Ok(Message::Close(frame))) => {
                    return Received::Closed(frame.map_or(1005, |frame| u16::from(frame.code)));
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => panic!("the connection failed: {error}"),
                None => return Received::Closed(1006),
            }
        }
    }

    /// The next message, which must be one.
    async fn message(&mut self) -> Value {
        match self.next().await {
            Received::Message(message) => message,
            closed => panic!("expected a message, got {closed:?}"),
        }
    }

    /// The next message that is not a `SIGNED_IN` event: [`wait_until_listening`] may
    /// leave some of those behind it, and a sign-in's event may come after its answer.
    async fn message_after_sign_ins(&mut self) -> Value {
        loop {
            let message = self.message().await;
            if event_of(&message)["kind"] != "SIGNED_IN" {
                return message;
            }
        }
    }

    /// The close code, skipping messages before it.
    async fn close_code(&mut self) -> u16 {
        loop {
            if let Received::Closed(code) = self.next().await {
                return code;
            }
        }
    }
}

/// A second instance of `app`'s service: its settings, Redis and store, its own
/// listener and its own subscriber to account events.
async fn replica_of(app: &TestApp) -> String {
    let application = Application::build_on(app.settings.clone(), app.state.storage.clone())
        .await
        .expect("Failed to build the replica");
    let address = format!("http://127.0.0.1:{}", application.port());
    tokio::spawn(application.run_until_stopped());
    address
}

/// Signs in as `email` on `address` until subscription `id` of `client` hears it: then
/// the subscription is surely listening (a subscribe message has no answer of its own).
/// The events of sign-ins it heard too late may follow.
async fn wait_until_listening(client: &mut Client, id: &str, address: &str, email: &str) {
    let started = Instant::now();
    loop {
        sign_in_at(address, email).await;
        let heard = tokio::time::timeout(Duration::from_millis(500), client.socket.next()).await;
        if let Ok(Some(Ok(Message::Text(text)))) = heard {
            let message: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(message["id"], id, "{message}");
            assert_eq!(message["payload"]["data"]["accountEvents"]["kind"], "SIGNED_IN", "{message}");
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the subscription never heard a sign-in");
    }
}

/// A bearer sign-in at `address`; returns the token.
async fn sign_in_at(address: &str, email: &str) -> String {
    login_at(address, email, "subscription tests").await
}

fn event_of(message: &Value) -> &Value {
    &message["payload"]["data"]["accountEvents"]
}

#[tokio::test]
async fn an_account_events_subscription_hears_logout_everywhere_from_another_instance_and_ends() {
    // Arrange: two instances on one Redis and store; a subscription on the first.
    let app = spawn_app().await;
    let other = replica_of(&app).await;
    let (email, token) = signed_in(&app).await;
    let mut client = Client::signed_in(&app.address, &token).await;
    client.subscribe("events", ACCOUNT_EVENTS).await;
    wait_until_listening(&mut client, "events", &other, &email).await;

    // Act: another session, on the other instance, signs out everywhere.
    let elsewhere = sign_in_at(&other, &email).await;
    let body: Value = reqwest::Client::new()
        .post(format!("{other}/graphql"))
        .bearer_auth(&elsewhere)
        .json(&json!({ "query": LOGOUT_EVERYWHERE }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["data"]["logoutEverywhere"], true, "{body}");

    // Assert: the event, the end of the subscription, then the close.
    let last = client.message_after_sign_ins().await;
    assert_eq!(last["id"], "events");
    assert_eq!(event_of(&last)["kind"], "SESSION_REVOKED");
    assert_eq!(event_of(&last)["endsThisSession"], true);
    let complete = client.message().await;
    assert_eq!(complete, json!({ "type": "complete", "id": "events" }));
    assert_eq!(client.close_code().await, 4401);
}

#[tokio::test]
async fn events_that_leave_the_session_alive_keep_the_subscription() {
    let app = spawn_app().await;
    let (email, token) = signed_in(&app).await;
    let other = login(&app, &email, PASSWORD).await;
    let mut client = Client::signed_in(&app.address, &token).await;
    client.subscribe("events", ACCOUNT_EVENTS).await;
    wait_until_listening(&mut client, "events", &app.address, &email).await;

    // The other session ends: an event for this one, which lives on.
    let sessions = graphql(&app, Some(&other), "{ sessions { id current } }", json!({})).await;
    let other_id = sessions["data"]["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|session| session["current"] == true)
        .map(|session| session["id"].clone())
        .unwrap();
    let revoked = graphql(&app, Some(&token), "mutation($id: ID!) { revokeSession(id: $id) }", json!({ "id": other_id })).await;
    assert_eq!(revoked["data"]["revokeSession"], true, "{revoked}");

    let event = client.message_after_sign_ins().await;
    assert_eq!(event_of(&event)["kind"], "SESSION_REVOKED");
    assert_eq!(event_of(&event)["endsThisSession"], false);
    // Events keep coming, in the order they were raised.
    sign_in_at(&app.address, &email).await;
    assert_eq!(event_of(&client.message().await)["kind"], "SIGNED_IN");
}

#[tokio::test]
async fn a_session_ended_without_its_event_closes_its_connection_at_the_next_check() {
    let app = spawn_app_with(|settings| settings.subscriptions.session_check = Duration::from_secs(1)).await;
    let (_, token) = signed_in(&app).await;
    let mut client = Client::signed_in(&app.address, &token).await;
    client.subscribe("events", ACCOUNT_EVENTS).await;

    // Ended behind the API's back, as expiry does: no event is raised.
    let user = graphql(&app, Some(&token), "{ me { id } }", json!({})).await;
    let id = UserId::parse(user["data"]["me"]["id"].as_str().unwrap()).unwrap();
    app.state.auth.sessions.revoke_all(id).await.unwrap();

    let started = Instant::now();
    assert_eq!(client.close_code().await, 4401);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_cross_site_upgrade_is_refused_and_a_same_site_cookie_signs_in() {
    let app = spawn_app().await;
    let email = unique_email();
    register(&app, &email, PASSWORD).await;
    let cookie = cookie_set_by(&post_login_selecting(&app, &email, "user { email }").await);

    let cross_site = Client::open(&app.address, &[("Cookie", &cookie), ("Origin", "https://evil.example")]).await;
    let Err(tungstenite::Error::Http(refusal)) = cross_site else {
        panic!("a cross-site upgrade was accepted");
    };
    assert_eq!(refusal.status(), 403);

    let own_origin = app.address.clone();
    let mut client = Client::open(&app.address, &[("Cookie", &cookie), ("Origin", &own_origin)])
        .await
        .expect("a same-origin upgrade is accepted");
    client.init(json!({})).await;
    client.subscribe("events", ACCOUNT_EVENTS).await;
    wait_until_listening(&mut client, "events", &app.address, &email).await;
}

#[tokio::test]
async fn a_connection_without_a_session_is_refused_at_init() {
    let app = spawn_app().await;
    for payload in [json!({}), json!({ "authorization": "Bearer not-a-token" })] {
        let mut client = Client::open(&app.address, &[]).await.unwrap();
        client.send(json!({ "type": "connection_init", "payload": payload })).await;
        assert_eq!(client.close_code().await, 4403, "{payload}");
    }
    let mut early = Client::open(&app.address, &[]).await.unwrap();
    early.subscribe("1", ACCOUNT_EVENTS).await;
    assert_eq!(early.close_code().await, 4401, "subscribe before init");
}

#[tokio::test]
async fn queries_and_mutations_are_refused_over_the_websocket() {
    let app = spawn_app().await;
    let (_, token) = signed_in(&app).await;
    let mut client = Client::signed_in(&app.address, &token).await;

    client.subscribe("1", "mutation { logoutEverywhere }").await;

    let refusal = client.message().await;
    assert_eq!(refusal["type"], "error");
    assert_eq!(refusal["id"], "1");
    assert_eq!(refusal["payload"][0]["extensions"]["code"], "BAD_REQUEST");
    assert_eq!(me(&app, &token).await["data"]["me"]["role"], "USER", "the session lives");
}

#[tokio::test]
async fn a_completed_subscription_id_may_be_used_again() {
    let app = spawn_app().await;
    let (email, token) = signed_in(&app).await;
    let mut client = Client::signed_in(&app.address, &token).await;
    client.subscribe("events", ACCOUNT_EVENTS).await;
    wait_until_listening(&mut client, "events", &app.address, &email).await;

    client.send(json!({ "type": "complete", "id": "events" })).await;
    let complete = client.message_after_sign_ins().await;
    assert_eq!(complete, json!({ "type": "complete", "id": "events" }));
    client.subscribe("events", ACCOUNT_EVENTS).await;

    wait_until_listening(&mut client, "events", &app.address, &email).await;
}

#[tokio::test]
async fn the_limits_hold() {
    let app = spawn_app_with(|settings: &mut Settings| {
        let limits = &mut settings.subscriptions;
        limits.max_per_connection = 2.try_into().unwrap();
        limits.max_connections_per_client = 2.try_into().unwrap();
        limits.max_message_bytes = 1024.try_into().unwrap();
        limits.init_timeout = Duration::from_secs(1);
    })
    .await;
    let (_, token) = signed_in(&app).await;

    // Subscriptions per connection.
    let mut client = Client::signed_in(&app.address, &token).await;
    for id in ["1", "2", "3"] {
        client.subscribe(id, ACCOUNT_EVENTS).await;
    }
    // The sign-in's own event may reach the first subscriptions: pub/sub through a
    // cluster can take longer than the answer to the sign-in.
    let refusal = client.message_after_sign_ins().await;
    assert_eq!((refusal["type"].as_str(), refusal["id"].as_str()), (Some("error"), Some("3")), "{refusal}");

    // Connections per client: the second is open, a third is refused.
    let mut second = Client::open(&app.address, &[]).await.unwrap();
    let Err(tungstenite::Error::Http(refusal)) = Client::open(&app.address, &[]).await else {
        panic!("a third connection was accepted");
    };
    assert_eq!(refusal.status(), 429);

    // Message size, then the init timeout once a slot is free again.
    second.send(json!({ "type": "ping", "payload": { "pad": "x".repeat(2048) } })).await;
    assert_eq!(second.close_code().await, 1009);
    drop(second);
    let started = Instant::now();
    let mut silent = loop {
        match Client::open(&app.address, &[]).await {
            Ok(client) => break client,
            Err(_) if started.elapsed() < Duration::from_secs(5) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("no slot came free: {error}"),
        }
    };
    assert_eq!(silent.close_code().await, 4408);
}

#[tokio::test]
async fn a_client_that_stops_answering_pings_is_closed() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let app = spawn_app_with(|settings| settings.subscriptions.keep_alive = Duration::from_secs(1)).await;
    let host = app.address.trim_start_matches("http://");

    // A handshake by hand, then silence: no pong, no message.
    let mut socket = TcpStream::connect(host).await.unwrap();
    let handshake = format!(
        "GET /graphql HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
    );
    socket.write_all(handshake.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut received)).await;

    assert!(read.is_ok(), "still open after 10 s");
    // A close frame (0x88) whose payload starts with the code 1001.
    let close = received.windows(4).any(|w| w[0] == 0x88 && w[2..4] == 1001u16.to_be_bytes());
    assert!(close, "no close 1001 in {received:?}");
}

#[tokio::test]
async fn metrics_count_connections_and_shutdown_closes_them_with_1001() {
    let server = Metered::serve(&[("APP_AUTH__BCRYPT_COST", "4")]);
    let address = server.address.clone().unwrap();
    let email = unique_email();
    server
        .graphql(
            "mutation($e: String!, $p: String!) { register(email: $e, password: $p) { message } }",
            json!({ "e": email, "p": PASSWORD }),
        )
        .await;
    let token = sign_in_at(&address, &email).await;
    let mut client = Client::signed_in(&address, &token).await;
    client.subscribe("events", ACCOUNT_EVENTS).await;
    wait_until_listening(&mut client, "events", &address, &email).await;

    let scrape = server.scrape().await;
    assert_eq!(scrape.value("graphql_ws_connections_open", &[]), Some(1.0), "{}", scrape.text);
    assert_eq!(scrape.value("graphql_ws_subscriptions_open", &[]), Some(1.0));
    assert_eq!(scrape.value("graphql_ws_messages_sent_total", &[("type", "connection_ack")]), Some(1.0));
    assert!(scrape.value("graphql_ws_messages_sent_total", &[("type", "next")]) >= Some(1.0));

    let closed = tokio::spawn(async move { client.close_code().await });
    server.stop().await;
    assert_eq!(closed.await.unwrap(), 1001);
}
