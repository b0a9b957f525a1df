//! `spawn_app()` boots the real application on a random port; `for_each_backend` runs a
//! storage contract test against every available backend.
//!
//! Without `TEST_MONGODB_URI` every app keeps its data in an in-memory embedded store.
//! With it, every app runs on that MongoDB server instead, in a database of its own that
//! is dropped when the test ends, and the contract tests run on both stores.

mod test_database;

use std::{any::Any, sync::LazyLock};

use serde_json::{Value, json};

use {{crate_name}}::{
    config::Settings,
    startup::Application,
    state::AppState,
    storage::{DatabaseSettings, Storage, StorageUrl},
    telemetry::{LogFormat, TelemetrySettings, get_subscriber, init_subscriber},
};

pub use test_database::TestDatabase;

/// Logs stay quiet unless `TEST_LOG` is set.
pub static TRACING: LazyLock<()> = LazyLock::new(|| {
    let settings = TelemetrySettings {
        filter: "info".into(),
        format: LogFormat::Pretty,
        // Spans get trace ids, so tests can follow a trace into a job.
        traces: true,
    };
    let built = if std::env::var_os("TEST_LOG").is_some() {
        get_subscriber(&settings, std::io::stdout)
    } else {
        get_subscriber(&settings, std::io::sink)
    };
    let (subscriber, _traces) = built.expect("Failed to build the test subscriber");
    init_subscriber(subscriber).expect("Failed to install the test subscriber");
});

pub struct TestApp {
    pub address: String,
    /// The metrics listener, when the settings turn metrics on.
    pub metrics_address: Option<String>,
    pub client: reqwest::Client,
    /// The app's connections, to arrange state the API cannot (e.g. an admin).
    pub state: AppState,
    /// The settings the app runs with.
    pub settings: Settings,
    /// What lives as long as the app, dropped in this order: a mail folder, an
    /// in-process worker…, and last the app's MongoDB database (with `TEST_MONGODB_URI`),
    /// after everything that might still write to it.
    _companions: Vec<Box<dyn Any + Send>>,
}

impl TestApp {
    pub async fn post_graphql(&self, query: &str) -> reqwest::Response {
        self.post_json(&json!({ "query": query })).await
    }

    pub async fn post_json(&self, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}/graphql", self.address))
            .json(body)
            .send()
            .await
            .expect("Failed to send the request")
    }

    pub async fn post_raw(&self, content_type: &str, body: impl Into<String>) -> reqwest::Response {
        self.client
            .post(format!("{}/graphql", self.address))
            .header("Content-Type", content_type)
            .body(body.into())
            .send()
            .await
            .expect("Failed to send the request")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("Failed to send the request")
    }
}

/// A client as GraphQL over HTTP describes them: it accepts
/// `application/graphql-response+json`, so statuses tell what happened.
pub fn graphql_client() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::ACCEPT,
        reqwest::header::HeaderValue::from_static("application/graphql-response+json"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("Failed to build the HTTP client")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Like [`spawn_app`], with a chance to adjust the settings first.
pub async fn spawn_app_with(customise: impl FnOnce(&mut Settings)) -> TestApp {
    LazyLock::force(&TRACING);
    let mut settings = Settings::load().expect("Failed to load the settings");
    // Randomise and pin what the tests depend on, whatever `.env` says.
    settings.http.host = "127.0.0.1".into();
    settings.http.port = 0;
    settings.http.workers = 1;
    settings.metrics.enabled = false;
    settings.metrics.host = "127.0.0.1".into();
    settings.metrics.port = 0;
    let database = TestDatabase::fresh();
    settings.database = match &database {
        Some(database) => database.settings(),
        None => database_settings("embedded://memory", "unused"),
    };
    settings.graphql.introspection = true;
    settings.graphql.graphiql = true;
    let mut companions: Vec<Box<dyn Any + Send>> = Vec::new();
{%- if uses_redis %}
    settings.redis.url = {{crate_name}}::redis::RedisUrl::parse(crate::redis_server::url()).expect("a Redis URL");
    // A key prefix per app keeps tests sharing one Redis apart.
    settings.redis.key_prefix = crate::redis_server::unique_prefix();
{%- endif %}
{%- if auth %}
    // The minimum cost: tests check behaviour, not hashing strength.
    settings.auth.bcrypt_cost = 4;
{%- endif %}
{%- if email %}
    // Mails go to files, read by the helpers in `mail.rs`.
    let mail_dir = tempfile::tempdir().expect("Failed to create a mail folder");
    settings.mail.transport = {{crate_name}}::mail::TransportKind::File;
    settings.mail.file_dir = mail_dir.path().to_path_buf();
    companions.push(Box::new(mail_dir));
{%- endif %}
{%- if queue %}
    // Failed jobs retry quickly: tests wait on them.
    settings.jobs.backoff = {{crate_name}}::queue::Backoff::new(
        std::time::Duration::from_millis(50),
        std::time::Duration::from_secs(1),
    )
    .unwrap();
{%- endif %}
    customise(&mut settings);
{%- if queue %}
    // The app's own worker runs in this process until the app is dropped.
    let (stop_worker, shutdown) = tokio::sync::watch::channel(false);
    tokio::spawn({{crate_name}}::worker::work(settings.clone(), shutdown));
    companions.push(Box::new(stop_worker));
{%- endif %}
    companions.push(Box::new(database));

    let application = Application::build(settings.clone())
        .await
        .expect("Failed to build the application");
    let address = format!("http://127.0.0.1:{}", application.port());
    let metrics_address = application
        .metrics_port()
        .map(|port| format!("http://127.0.0.1:{port}"));
    let state = application.state().clone();
    tokio::spawn(application.run_until_stopped());
    TestApp {
        address,
        metrics_address,
        client: graphql_client(),
        state,
        settings,
        _companions: companions,
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on (until the caller binds it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("No free port")
        .port()
}

/// The first GraphQL error's `extensions.code`.
pub fn error_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
}

/// A backend under test: the in-memory store always, MongoDB too when `TEST_MONGODB_URI`
/// is set (in a fresh database, dropped with the backend).
pub struct TestBackend {
    pub storage: Storage,
    _database: Option<TestDatabase>,
}

impl TestBackend {
    async fn all() -> Vec<Self> {
        let embedded = database_settings("embedded://memory", "unused");
        let mut backends = vec![Self::connect(embedded, None).await];
        if let Some(database) = TestDatabase::fresh() {
            backends.push(Self::connect(database.settings(), Some(database)).await);
        }
        backends
    }

    async fn connect(settings: DatabaseSettings, database: Option<TestDatabase>) -> Self {
        let storage = Storage::connect(&settings)
            .await
            .expect("Failed to connect to a test backend");
        Self {
            storage,
            _database: database,
        }
    }
}

pub fn database_settings(url: &str, mongodb_database: &str) -> DatabaseSettings {
    DatabaseSettings {
        url: StorageUrl::parse(url).expect("a supported database URL"),
        mongodb_database: mongodb_database.into(),
        timeout: std::time::Duration::from_secs(5),
    }
}

/// Runs `test` once per available backend; each is cleaned up as it goes, pass or fail.
pub async fn for_each_backend(test: impl AsyncFn(&TestBackend)) {
    for backend in TestBackend::all().await {
        test(&backend).await;
    }
}
