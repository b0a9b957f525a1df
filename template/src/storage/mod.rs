//! Storage behind one enum, two adapters.
//!
//! `database.url` picks the backend: MongoDB for production, an embedded pure-Rust store
//! (redb) so `cargo run` and the tests need no running services. Modules add repository
//! traits here, each implemented by both adapters and checked by one contract test suite
//! (`tests/api/storage.rs`).

mod embedded;
mod mongo;
mod settings;
{% if auth %}pub mod audit;
pub mod users;
{% endif %}
use std::path::PathBuf;

use secrecy::SecretString;

pub use embedded::EmbeddedStore;
pub use mongo::MongoStore;
pub use settings::DatabaseSettings;

/// A parsed `database.url`.
#[derive(Debug, Clone)]
pub enum StorageUrl {
    Mongo(SecretString),
    EmbeddedMemory,
    EmbeddedFile(PathBuf),
}

impl StorageUrl {
    /// # Errors
    /// Fails for any scheme other than `mongodb://`, `mongodb+srv://` and `embedded://`.
    pub fn parse(url: &str) -> Result<Self, StorageError> {
        if url.starts_with("mongodb://") || url.starts_with("mongodb+srv://") {
            return Ok(Self::Mongo(SecretString::from(url)));
        }
        match url.strip_prefix("embedded://") {
            Some("memory") => Ok(Self::EmbeddedMemory),
            Some(path) if !path.is_empty() => Ok(Self::EmbeddedFile(PathBuf::from(path))),
            _ => Err(StorageError::UnsupportedUrl),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error(
        "unsupported URL: use mongodb://…, mongodb+srv://…, embedded://memory or embedded://<path>"
    )]
    UnsupportedUrl,
    #[error("the database did not answer within {0:?}")]
    Timeout(std::time::Duration),
    #[error(transparent)]
    Mongo(#[from] mongodb::error::Error),
    /// MongoDB would not build an index the service relies on; it does not start without.
    #[error("MongoDB refused to create the index `{index}` on `{collection}`: {reason}")]
    IndexRefused {
        collection: String,
        index: String,
        reason: &'static str,
        #[source]
        source: Box<mongodb::error::Error>,
    },
    #[error(transparent)]
    Embedded(#[from] redb::Error),
    #[error("failed to prepare the embedded store's directory")]
    Io(#[from] std::io::Error),
    /// A unique key (such as a user's email) is already taken.
    #[error("the record already exists")]
    Conflict,
    #[error("no such record")]
    NotFound,
    #[error("a stored record could not be decoded: {0}")]
    Corrupt(String),
}

/// Storage failures reach clients as internal errors, their cause in the log only.
impl From<StorageError> for crate::error::AppError {
    fn from(error: StorageError) -> Self {
        Self::Internal(anyhow::Error::new(error).context("Storage failed"))
    }
}

impl StorageError {
    pub fn corrupt(error: impl std::fmt::Display) -> Self {
        Self::Corrupt(error.to_string())
    }
}

/// A connected backend. Cloning is cheap: both adapters share their connection.
#[derive(Clone)]
pub enum Storage {
    Mongo(MongoStore),
    Embedded(EmbeddedStore),
}

impl Storage {
    /// Connects and prepares the backend (indexes, tables), failing fast if it is down.
    ///
    /// # Errors
    /// Fails on an unsupported URL, an unreachable MongoDB or an unusable store file.
    #[tracing::instrument(name = "Connecting to storage", skip_all)]
    pub async fn connect(settings: &DatabaseSettings) -> Result<Self, StorageError> {
        let storage = match &settings.url {
            StorageUrl::Mongo(uri) => Self::Mongo(
                MongoStore::connect(uri, &settings.mongodb_database, settings.timeout).await?,
            ),
            StorageUrl::EmbeddedMemory => Self::Embedded(EmbeddedStore::in_memory()?),
            StorageUrl::EmbeddedFile(path) => Self::Embedded(EmbeddedStore::open(path).await?),
        };
        storage.ping(settings.timeout).await?;
{%- if auth %}
        users::bootstrap(&storage).await?;
{%- endif %}
        Ok(storage)
    }

    /// Proves the backend answers, within `timeout`.
    ///
    /// # Errors
    /// Fails when the backend errors or does not answer in time.
    pub async fn ping(&self, timeout: std::time::Duration) -> Result<(), StorageError> {
        let ping = async {
            match self {
                Self::Mongo(store) => store.ping().await,
                Self::Embedded(store) => store.ping().await,
            }
        };
        tokio::time::timeout(timeout, ping)
            .await
            .map_err(|_| StorageError::Timeout(timeout))?
    }

    /// Name of the backend, for logs and health reports.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Mongo(_) => "mongodb",
            Self::Embedded(_) => "embedded",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_pick_their_backend() {
        assert!(matches!(
            StorageUrl::parse("mongodb://localhost:27017"),
            Ok(StorageUrl::Mongo(_))
        ));
        assert!(matches!(
            StorageUrl::parse("mongodb+srv://cluster.example.com"),
            Ok(StorageUrl::Mongo(_))
        ));
        assert!(matches!(
            StorageUrl::parse("embedded://memory"),
            Ok(StorageUrl::EmbeddedMemory)
        ));
        assert!(matches!(
            StorageUrl::parse("embedded://data/app.redb"),
            Ok(StorageUrl::EmbeddedFile(path)) if path.as_os_str() == "data/app.redb"
        ));
    }

    #[test]
    fn unsupported_urls_are_refused() {
        for url in ["postgres://localhost/app", "embedded://", "memory", ""] {
            assert!(
                matches!(StorageUrl::parse(url), Err(StorageError::UnsupportedUrl)),
                "{url} was accepted"
            );
        }
    }
}
