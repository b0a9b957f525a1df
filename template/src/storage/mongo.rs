//! MongoDB adapter (production).
//!
//! Exercised where a MongoDB server is reachable: with `TEST_MONGODB_URI` set the whole
//! API test suite runs on it, as the generated CI workflow does.

use std::time::Duration;

use mongodb::{
    Client, Collection, Database, IndexModel,
    bson::doc,
    error::{CommandError, ErrorKind},
    options::ClientOptions,
};
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

    /// Creates `index` unless it exists with the same keys and options (MongoDB makes
    /// that a no-op), so every start-up may call it.
    ///
    /// # Errors
    /// `StorageError::IndexRefused`, saying what to fix, when the server will not build
    /// it: stored documents break its uniqueness, or an index of that name or keys
    /// exists with other options.
    pub async fn ensure_index<T: Send + Sync>(
        &self,
        collection: &Collection<T>,
        index: IndexModel,
    ) -> Result<(), StorageError> {
        let name = index_name(&index);
        collection
            .create_index(index)
            .await
            .map_err(|source| StorageError::IndexRefused {
                collection: collection.name().to_string(),
                index: name,
                reason: refusal_reason(&source),
                source: Box::new(source),
            })?;
        Ok(())
    }
}

/// The name MongoDB gives an index with no explicit one: `email_1`, `a_1_b_-1`.
fn index_name(index: &IndexModel) -> String {
    if let Some(name) = index.options.as_ref().and_then(|o| o.name.clone()) {
        return name;
    }
    index
        .keys
        .iter()
        .map(|(key, direction)| format!("{key}_{direction}"))
        .collect::<Vec<_>>()
        .join("_")
}

pub(super) const DUPLICATE_KEY: i32 = 11000;
const INDEX_OPTIONS_CONFLICT: i32 = 85;
const INDEX_KEY_SPECS_CONFLICT: i32 = 86;

fn refusal_reason(error: &mongodb::error::Error) -> &'static str {
    match server_code(error) {
        Some(DUPLICATE_KEY) => {
            "stored documents share a value it must keep unique; remove the duplicates, then start again"
        }
        Some(INDEX_OPTIONS_CONFLICT | INDEX_KEY_SPECS_CONFLICT) => {
            "an index with the same name or keys but other options exists; drop it, then start again"
        }
        _ => "see the server's answer below",
    }
}

/// The server's error code, wherever the driver put it.
pub(super) fn server_code(error: &mongodb::error::Error) -> Option<i32> {
    match error.kind.as_ref() {
        ErrorKind::Command(CommandError { code, .. }) => Some(*code),
        ErrorKind::Write(mongodb::error::WriteFailure::WriteError(e)) => Some(e.code),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unnamed_indexes_get_mongodbs_own_names() {
        let compound = IndexModel::builder().keys(doc! { "a": 1, "b": -1 }).build();
        let named = IndexModel::builder()
            .keys(doc! { "a": 1 })
            .options(
                mongodb::options::IndexOptions::builder()
                    .name("by_a".to_string())
                    .build(),
            )
            .build();

        assert_eq!(index_name(&compound), "a_1_b_-1");
        assert_eq!(index_name(&named), "by_a");
    }
}
