//! MongoDB adapter (production).
//!
//! Only exercised where a MongoDB server is reachable: the contract tests run against it
//! when `MONGODB_URI` is set, as the generated CI workflow does.

use std::time::Duration;

use mongodb::{Client, Database, bson::doc, options::ClientOptions};
use secrecy::{ExposeSecret, SecretString};

use super::StorageError;

#[derive(Clone)]
pub struct MongoStore {
    db: Database,
}

impl MongoStore {
    /// # Errors
    /// Fails on a malformed URI; an unreachable server shows up at the first `ping`.
    pub async fn connect(
        uri: &SecretString,
        database: &str,
        timeout: Duration,
    ) -> Result<Self, StorageError> {
        let mut options = ClientOptions::parse(uri.expose_secret()).await?;
        options.app_name = Some(env!("CARGO_PKG_NAME").to_string());
        // Fail within the configured timeout instead of the driver's 30 s default.
        options.server_selection_timeout = Some(timeout);
        options.connect_timeout = Some(timeout);
        let client = Client::with_options(options)?;
        Ok(Self {
            db: client.database(database),
        })
    }

    /// The database, for repositories implemented on this store.
    pub fn db(&self) -> &Database {
        &self.db
    }

    /// # Errors
    /// Fails when no server is selectable within the timeout.
    pub async fn ping(&self) -> Result<(), StorageError> {
        self.db.run_command(doc! { "ping": 1 }).await?;
        Ok(())
    }
}
