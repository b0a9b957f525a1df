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
        tokio::task::spawn_blocking(move || db.begin_read().map(drop))
            .await
            .map_err(|e| StorageError::Io(std::io::Error::other(e)))?
            .map_err(|e| StorageError::Embedded(e.into()))
    }
}
