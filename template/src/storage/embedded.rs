//! Embedded adapter: redb, a pure-Rust transactional key-value store.
//!
//! One file (or memory) per process: redb locks its file, so a second process opening the
//! same path fails at start-up rather than corrupting data. Its calls block, so they run
//! on tokio's blocking pool.

use std::{path::Path, sync::Arc};

use redb::{Database, ReadableDatabase, backends::InMemoryBackend};

use super::StorageError;

#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
}

impl EmbeddedStore {
    /// A store that lives and dies with the process (tests).
    ///
    /// # Errors
    /// Fails only if redb cannot initialise its in-memory backend.
    pub fn in_memory() -> Result<Self, StorageError> {
        let db = Database::builder()
            .create_with_backend(InMemoryBackend::new())
            .map_err(redb::Error::from)?;
        Ok(Self { db: Arc::new(db) })
    }

    /// Opens (or creates) the store file, creating its directory if needed.
    ///
    /// # Errors
    /// Fails if the directory cannot be created, or the file is corrupt or locked by
    /// another process.
    pub async fn open(path: &Path) -> Result<Self, StorageError> {
        let path = path.to_owned();
        let db = tokio::task::spawn_blocking(move || -> Result<Database, StorageError> {
            if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            Ok(Database::create(&path).map_err(redb::Error::from)?)
        })
        .await
        .map_err(|e| StorageError::Io(std::io::Error::other(e)))??;
        Ok(Self { db: Arc::new(db) })
    }

    /// # Errors
    /// Fails if a read transaction cannot be started.
    pub async fn ping(&self) -> Result<(), StorageError> {
        let db = Arc::clone(&self.db);
        self.blocking(move || {
            db.begin_read().map_err(redb::Error::from)?;
            Ok(())
        })
        .await
    }

    /// The database, for repositories implemented on this store.
    pub fn db(&self) -> &Database {
        &self.db
    }

    /// Runs a redb call on the blocking pool, keeping the caller's tracing span.
    ///
    /// # Errors
    /// Whatever `work` returns, or an error if the blocking task panicked.
    pub async fn blocking<T, F>(&self, work: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, StorageError> + Send + 'static,
    {
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(work))
            .await
            .map_err(|e| StorageError::Io(std::io::Error::other(e)))?
    }
}
