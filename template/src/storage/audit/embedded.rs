//! The audit log in redb: one table keyed by entry id, which sorts by time.

use redb::{ReadableDatabase, TableDefinition};

use super::{AuditEntry, AuditId, AuditPage, AuditRepository, StoredEntry, page};
use crate::storage::{EmbeddedStore, StorageError};

const AUDIT_LOG: TableDefinition<&str, &[u8]> = TableDefinition::new("audit_log");

fn encode(entry: &AuditEntry) -> Result<Vec<u8>, StorageError> {
    serde_json::to_vec(&StoredEntry::from(entry)).map_err(StorageError::corrupt)
}

fn decode(bytes: &[u8]) -> Result<AuditEntry, StorageError> {
    serde_json::from_slice::<StoredEntry>(bytes)
        .map(AuditEntry::from)
        .map_err(StorageError::corrupt)
}

impl AuditRepository for EmbeddedStore {
    async fn record(&self, entry: &AuditEntry) -> Result<(), StorageError> {
        let store = self.clone();
        let entry = entry.clone();
        self.blocking(move || {
            let tx = store.db().begin_write().map_err(redb::Error::from)?;
            {
                let mut log = tx.open_table(AUDIT_LOG).map_err(redb::Error::from)?;
                let id = entry.id.to_string();
                let replaced = log
                    .insert(id.as_str(), encode(&entry)?.as_slice())
                    .map_err(redb::Error::from)?;
                // Dropping the transaction uncommitted leaves the first entry as it was.
                if replaced.is_some() {
                    return Err(StorageError::Conflict);
                }
            }
            tx.commit().map_err(redb::Error::from)?;
            Ok(())
        })
        .await
    }

    async fn list(&self, before: Option<AuditId>, limit: usize) -> Result<AuditPage, StorageError> {
        let store = self.clone();
        self.blocking(move || {
            let tx = store.db().begin_read().map_err(redb::Error::from)?;
            let table = match tx.open_table(AUDIT_LOG) {
                Ok(table) => table,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(page(Vec::new(), limit)),
                Err(e) => return Err(redb::Error::from(e).into()),
            };
            let end = before.map(|id| id.to_string());
            let rows = match &end {
                Some(end) => table.range::<&str>(..end.as_str()),
                None => table.range::<&str>(..),
            }
            .map_err(redb::Error::from)?;
            let mut entries = Vec::with_capacity(limit + 1);
            for row in rows.rev().take(limit + 1) {
                let (_, bytes) = row.map_err(redb::Error::from)?;
                entries.push(decode(bytes.value())?);
            }
            Ok(page(entries, limit))
        })
        .await
    }
}
