//! The admin audit log: what admins (and the operator, on the command line) did to
//! accounts, kept append-only so a later admin can tell who did what. `AuditRepository`
//! is implemented by each adapter and by `Storage`; `tests/api/audit_storage.rs` holds
//! the contract both adapters must meet.

mod embedded;
mod mongo;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Storage, StorageError};
use crate::domain::{DomainError, UserId};

/// An entry's id: a UUIDv7, so ids sort by time and serve as page cursors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AuditId(Uuid);

impl AuditId {
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }
}

impl std::fmt::Display for AuditId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for AuditId {
    type Err = DomainError;

    /// # Errors
    /// Refuses anything that is not a UUID.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(input)
            .map(Self)
            .map_err(|_| DomainError(format!("`{input}` is not a valid audit entry id")))
    }
}

impl TryFrom<String> for AuditId {
    type Error = DomainError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<AuditId> for String {
    fn from(id: AuditId) -> Self {
        id.to_string()
    }
}

/// What an admin did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, juniper::GraphQLEnum)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    CreateAdmin,
    PromoteAdmin,
    SetRole,
    DisableUser,
    EnableUser,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub id: AuditId,
    /// Who acted; `None` for the command line, run by whoever operates the service.
    pub actor: Option<UserId>,
    pub action: AuditAction,
    /// The account acted on, if any. It may have been deleted since.
    pub target: Option<UserId>,
    /// What an admin reading the log needs besides the action: a reason, the new role.
    pub detail: String,
    pub at: DateTime<Utc>,
}

impl AuditEntry {
    pub fn new(
        actor: Option<UserId>,
        action: AuditAction,
        target: Option<UserId>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            id: AuditId::generate(),
            actor,
            action,
            target,
            detail: detail.into(),
            at: Utc::now(),
        }
    }
}

/// How an entry is stored by both adapters; `_id` is MongoDB's primary key.
#[derive(Debug, Serialize, Deserialize)]
struct StoredEntry {
    #[serde(rename = "_id")]
    id: AuditId,
    actor: Option<UserId>,
    action: AuditAction,
    target: Option<UserId>,
    detail: String,
    at_ms: i64,
}

impl From<&AuditEntry> for StoredEntry {
    fn from(entry: &AuditEntry) -> Self {
        Self {
            id: entry.id,
            actor: entry.actor,
            action: entry.action,
            target: entry.target,
            detail: entry.detail.clone(),
            at_ms: entry.at.timestamp_millis(),
        }
    }
}

impl From<StoredEntry> for AuditEntry {
    fn from(stored: StoredEntry) -> Self {
        Self {
            id: stored.id,
            actor: stored.actor,
            action: stored.action,
            target: stored.target,
            detail: stored.detail,
            at: DateTime::from_timestamp_millis(stored.at_ms).unwrap_or_default(),
        }
    }
}

/// A page of entries, newest first, with the cursor of the next (older) page.
#[derive(Debug)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    pub next: Option<AuditId>,
}

pub trait AuditRepository {
    /// Appends `entry`; entries are never changed or removed.
    ///
    /// # Errors
    /// `StorageError::Conflict` when an entry with this id is recorded already.
    fn record(&self, entry: &AuditEntry) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Up to `limit` entries older than `before` (from the newest when `None`), newest
    /// first.
    fn list(
        &self,
        before: Option<AuditId>,
        limit: usize,
    ) -> impl Future<Output = Result<AuditPage, StorageError>> + Send;
}

/// Makes a page from up to `limit + 1` entries: the extra one only proves there is more.
fn page(entries: Vec<AuditEntry>, limit: usize) -> AuditPage {
    let (entries, next) = super::users::paginate(entries, limit, |entry| entry.id);
    AuditPage { entries, next }
}

impl AuditRepository for Storage {
    async fn record(&self, entry: &AuditEntry) -> Result<(), StorageError> {
        match self {
            Self::Mongo(store) => store.record(entry).await,
            Self::Embedded(store) => store.record(entry).await,
        }
    }

    async fn list(&self, before: Option<AuditId>, limit: usize) -> Result<AuditPage, StorageError> {
        match self {
            Self::Mongo(store) => store.list(before, limit).await,
            Self::Embedded(store) => store.list(before, limit).await,
        }
    }
}
