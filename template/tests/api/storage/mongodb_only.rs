//! What only MongoDB can show: the real binary configured for it, a server that stops
//! answering, and the test databases. Ignored unless asked for, and named so one filter
//! runs them all:
//! `TEST_MONGODB_URI=… cargo test --test api -- --ignored mongodb_only`.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::{
    net::{TcpListener, TcpStream},
    task::{JoinHandle, JoinSet},
};

use {{crate_name}}::storage::{Storage, StorageUrl};

use crate::{
    helpers::{TestDatabase, spawn_app_with},
    shutdown::{binary, serve, terminate},
};

/// A TCP relay in front of MongoDB that a test can cut and restore.
struct Proxy {
    port: u16,
    upstream: String,
    relay: Option<JoinHandle<()>>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut proxy = Self {
            port,
            upstream,
            relay: None,
        };
        proxy.relay = Some(tokio::spawn(relay(listener, proxy.upstream.clone())));
        proxy
    }

    /// Closes the listener and every relayed connection.
    fn cut(&mut self) {
        if let Some(relay) = self.relay.take() {
            relay.abort();
        }
    }

    async fn restore(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.relay = Some(tokio::spawn(relay(listener, self.upstream.clone())));
    }

    /// Straight to this relay: without `directConnection` the driver would follow the
    /// server's own address past it. The relay carries no credentials of the test URI.
    fn uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}/?directConnection=true", self.port)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
    }
}

/// Dropping the task drops its `JoinSet`, which aborts every open connection.
async fn relay(listener: TcpListener, upstream: String) {
    let mut connections = JoinSet::new();
    while let Ok((mut inbound, _)) = listener.accept().await {
        let upstream = upstream.clone();
        connections.spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

/// `host:port` of the first server in `uri`.
async fn first_host(uri: &str) -> String {
    let options = mongodb::options::ClientOptions::parse(uri).await.unwrap();
    options.hosts[0].to_string()
}

async fn readiness(app: &crate::helpers::TestApp) -> (u16, Value) {
    let response = app.get("/health/ready").await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Polls readiness until it answers `status` or `limit` passes; the last answer.
async fn readiness_until(
    app: &crate::helpers::TestApp,
    status: u16,
    limit: Duration,
) -> (u16, Value) {
    let started = Instant::now();
    loop {
        let (found, report) = readiness(app).await;
        if found == status || started.elapsed() > limit {
            return (found, report);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
#[ignore = "needs MongoDB: set TEST_MONGODB_URI, run with --ignored mongodb_only"]
async fn the_binary_configured_from_the_environment_serves_on_mongodb() {
    let database = TestDatabase::required();
    let (mut child, address) = serve(
        binary(&["serve"])
            .env("APP_HTTP__PORT", "0")
            .env("APP_DATABASE__URL", &database.uri)
            .env("APP_DATABASE__MONGODB_DATABASE", &database.name),
    );

    let ready = reqwest::get(format!("{address}/health/ready"))
        .await
        .unwrap();
    let status = terminate(&mut child).await;

    assert_eq!(ready.status(), 200);
    assert!(status.success(), "exited with {status}");
    let collections = database
        .handle()
        .await
        .list_collection_names()
        .await
        .unwrap();
{%- if auth %}
    // Start-up made the users collection with its unique email index.
    assert_eq!(collections, ["users"]);
{%- else %}
    assert!(collections.is_empty(), "{collections:?}");
{%- endif %}
}

#[tokio::test]
#[ignore = "needs MongoDB: set TEST_MONGODB_URI, run with --ignored mongodb_only"]
async fn readiness_follows_mongodb_going_away_and_coming_back() {
    let database = TestDatabase::required();
    let mut proxy = Proxy::start(first_host(&database.uri).await).await;
    let app = spawn_app_with(|settings| {
        settings.database.url = StorageUrl::parse(&proxy.uri()).unwrap();
        settings.database.mongodb_database = database.name.clone();
        settings.database.timeout = Duration::from_secs(1);
    })
    .await;

    let (before, _) = readiness(&app).await;
    proxy.cut();
    // Readiness is a snapshot at most `Readiness::MAX_AGE` old: the cut shows after it.
    let (during, report) = readiness_until(&app, 503, Duration::from_secs(5)).await;
    proxy.restore().await;
    let started = Instant::now();
    let (after, _) = readiness_until(&app, 200, Duration::from_secs(15)).await;

    assert_eq!(before, 200);
    assert_eq!(during, 503, "{report}");
    assert_eq!(report["checks"][0]["name"], "database");
    assert_eq!(report["checks"][0]["ok"], false);
    assert_eq!(
        after,
        200,
        "still not ready {:?} after the restore",
        started.elapsed()
    );
}

#[tokio::test]
#[ignore = "needs MongoDB: set TEST_MONGODB_URI, run with --ignored mongodb_only"]
async fn a_test_database_is_dropped_even_when_its_test_panics() {
    let names = tokio::spawn(async {
        let database = TestDatabase::required();
        let storage = Storage::connect(&database.settings()).await.unwrap();
        let Storage::Mongo(store) = &storage else {
            panic!("TEST_MONGODB_URI did not give a MongoDB store");
        };
        store
            .db()
            .collection("probe")
            .insert_one(mongodb::bson::doc! { "written": true })
            .await
            .unwrap();
        let client = database.handle().await.client().clone();
        let listed = client.list_database_names().await.unwrap();
        assert!(listed.contains(&database.name), "{listed:?}");
        panic!("{}", database.name);
    });

    let panic = names.await.unwrap_err().into_panic();
    let name = panic.downcast_ref::<String>().unwrap();
    let database = TestDatabase::required();
    let listed = database
        .handle()
        .await
        .client()
        .list_database_names()
        .await
        .unwrap();

    assert!(
        !listed.contains(name),
        "{name} outlived its test: {listed:?}"
    );
}
