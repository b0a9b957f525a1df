//! The audit log in MongoDB: one document per entry in `audit_log`, keyed by its id.
//!
//! Ids are UUIDv7 strings, which sort by time, so lists walk the `_id` index backwards
//! and the collection needs no index of its own.

use futures_util::TryStreamExt;
use mongodb::{Collection, bson::doc};

use super::{AuditEntry, AuditId, AuditPage, AuditRepository, StoredEntry, page};
use crate::storage::{
    MongoStore, StorageError,
    mongo::{DUPLICATE_KEY, server_code},
};

impl MongoStore {
    fn audit_log(&self) -> Collection<StoredEntry> {
        self.db().collection("audit_log")
    }
}

impl AuditRepository for MongoStore {
    async fn record(&self, entry: &AuditEntry) -> Result<(), StorageError> {
        match self.audit_log().insert_one(StoredEntry::from(entry)).await {
            Ok(_) => Ok(()),
            Err(e) if server_code(&e) == Some(DUPLICATE_KEY) => Err(StorageError::Conflict),
            Err(e) => Err(e.into()),
        }
    }

    async fn list(&self, before: Option<AuditId>, limit: usize) -> Result<AuditPage, StorageError> {
        let query = match before {
            Some(id) => doc! { "_id": { "$lt": id.to_string() } },
            None => doc! {},
        };
        let rows: Vec<StoredEntry> = self
            .audit_log()
            .find(query)
            .sort(doc! { "_id": -1 })
            .limit(i64::try_from(limit + 1).unwrap_or(i64::MAX))
            .await?
            .try_collect()
            .await?;
        Ok(page(
            rows.into_iter().map(AuditEntry::from).collect(),
            limit,
        ))
    }
}
