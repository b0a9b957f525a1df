//! Databases of their own for tests on MongoDB.
//!
//! `TEST_MONGODB_URI` names the server. Each test gets a fresh database, dropped when its
//! [`TestDatabase`] guard is, so a failing test cleans up as well as a passing one.

use std::{
    collections::HashMap,
    sync::{LazyLock, mpsc},
    time::Duration,
};

use {{crate_name}}::storage::DatabaseSettings;

use super::database_settings;

/// The variable that moves the tests onto MongoDB. It is not `MONGODB_URI` on purpose:
/// the tests create and drop databases, so they only run where this name is set.
const URI_VARIABLE: &str = "TEST_MONGODB_URI";

/// How long a guard waits for its database to be dropped.
const DROP_TIMEOUT: Duration = Duration::from_secs(10);

/// The server `TEST_MONGODB_URI` names, if any.
fn mongodb_uri() -> Option<String> {
    std::env::var(URI_VARIABLE)
        .ok()
        .filter(|uri| !uri.trim().is_empty())
}

/// A database that exists for one test and is dropped with this guard, even when the
/// test panics.
pub struct TestDatabase {
    pub uri: String,
    pub name: String,
}

impl TestDatabase {
    /// A fresh database on the `TEST_MONGODB_URI` server; `None` without one.
    pub fn fresh() -> Option<Self> {
        mongodb_uri().map(|uri| Self {
            uri,
            name: format!("test_{}", uuid::Uuid::new_v4().simple()),
        })
    }

    /// A fresh database for a test that only makes sense on MongoDB.
    pub fn required() -> Self {
        Self::fresh().unwrap_or_else(|| {
            panic!("this test needs MongoDB: set {URI_VARIABLE}, e.g. mongodb://localhost:27017")
        })
    }

    pub fn settings(&self) -> DatabaseSettings {
        database_settings(&self.uri, &self.name)
    }

    /// A handle of the test's own, to arrange or inspect what the service cannot.
    pub async fn handle(&self) -> mongodb::Database {
        mongodb::Client::with_uri_str(&self.uri)
            .await
            .expect("Failed to reach MongoDB")
            .database(&self.name)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Err(error) = JANITOR.drop_database(&self.uri, &self.name) {
            let message = format!("Failed to drop the test database {}: {error}", self.name);
            // A second panic while a failed test unwinds would abort the whole run.
            if std::thread::panicking() {
                eprintln!("{message}");
            } else {
                panic!("{message}");
            }
        }
    }
}

/// Drops databases on a thread with a runtime of its own. Guards are dropped inside a
/// test's runtime, which cannot run the drop itself: `block_on` there panics, and waiting
/// for a task of the same current-thread runtime never ends. The guard only waits for
/// the answer; the test's runtime has finished its work by then.
struct Janitor {
    requests: mpsc::Sender<DropRequest>,
}

struct DropRequest {
    uri: String,
    name: String,
    done: mpsc::SyncSender<Result<(), String>>,
}

static JANITOR: LazyLock<Janitor> = LazyLock::new(Janitor::start);

impl Janitor {
    fn start() -> Self {
        let (requests, incoming) = mpsc::channel::<DropRequest>();
        std::thread::Builder::new()
            .name("test-database-janitor".into())
            .spawn(move || {
                // One worker keeps the driver's monitors running between requests.
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .expect("Failed to start the janitor's runtime");
                let mut clients: HashMap<String, mongodb::Client> = HashMap::new();
                for request in incoming {
                    let outcome =
                        runtime.block_on(drop_database(&mut clients, &request.uri, &request.name));
                    let _ = request.done.send(outcome.map_err(|e| e.to_string()));
                }
            })
            .expect("Failed to start the janitor thread");
        Self { requests }
    }

    fn drop_database(&self, uri: &str, name: &str) -> Result<(), String> {
        let (done, outcome) = mpsc::sync_channel(1);
        let request = DropRequest {
            uri: uri.to_string(),
            name: name.to_string(),
            done,
        };
        self.requests
            .send(request)
            .map_err(|_| "the janitor thread has stopped".to_string())?;
        outcome
            .recv_timeout(DROP_TIMEOUT)
            .map_err(|_| format!("no answer within {DROP_TIMEOUT:?}"))?
    }
}

/// One client per server, reused: a drop is then a single round trip.
async fn drop_database(
    clients: &mut HashMap<String, mongodb::Client>,
    uri: &str,
    name: &str,
) -> mongodb::error::Result<()> {
    let client = match clients.get(uri) {
        Some(client) => client.clone(),
        None => {
            let mut options = mongodb::options::ClientOptions::parse(uri).await?;
            // A server that is gone fails the drop in seconds, not the driver's 30.
            options.server_selection_timeout = Some(Duration::from_secs(5));
            let client = mongodb::Client::with_options(options)?;
            clients.insert(uri.to_string(), client.clone());
            client
        }
    };
    client.database(name).drop().await
}
