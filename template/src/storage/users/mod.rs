//! Accounts. `UserRepository` is implemented by each adapter and by `Storage`, which
//! forwards to the backend picked at start-up. `tests/api/users_storage.rs` holds the
//! contract both adapters must meet.

mod embedded;
mod mongo;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Storage, StorageError};
use crate::domain::{Email, Role, UserId};

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub password_hash: String,
    pub role: Role,
    /// Set once the owner follows a confirmation or reset link (email module).
    pub email_confirmed: bool,
    pub created_at: DateTime<Utc>,
}

impl User {
    pub fn new(email: Email, password_hash: String) -> Self {
        Self {
            id: UserId::generate(),
            email,
            password_hash,
            role: Role::User,
            email_confirmed: false,
            created_at: Utc::now(),
        }
    }
}

/// How a user is stored by both adapters; `_id` is MongoDB's primary key.
#[derive(Debug, Serialize, Deserialize)]
struct StoredUser {
    #[serde(rename = "_id")]
    id: UserId,
    email: Email,
    password_hash: String,
    role: Role,
    #[serde(default)]
    email_confirmed: bool,
    created_at_ms: i64,
}

impl From<&User> for StoredUser {
    fn from(user: &User) -> Self {
        Self {
            id: user.id,
            email: user.email.clone(),
            password_hash: user.password_hash.clone(),
            role: user.role,
            email_confirmed: user.email_confirmed,
            created_at_ms: user.created_at.timestamp_millis(),
        }
    }
}

impl From<StoredUser> for User {
    fn from(stored: StoredUser) -> Self {
        Self {
            id: stored.id,
            email: stored.email,
            password_hash: stored.password_hash,
            role: stored.role,
            email_confirmed: stored.email_confirmed,
            created_at: DateTime::from_timestamp_millis(stored.created_at_ms).unwrap_or_default(),
        }
    }
}

/// A page of users in creation order, with the cursor of the next page.
#[derive(Debug)]
pub struct UserPage {
    pub users: Vec<User>,
    pub next: Option<UserId>,
}

pub trait UserRepository {
    /// # Errors
    /// `StorageError::Conflict` when the (normalised) email is taken.
    fn insert(&self, user: &User) -> impl Future<Output = Result<(), StorageError>> + Send;

    fn find_by_email(
        &self,
        email: &Email,
    ) -> impl Future<Output = Result<Option<User>, StorageError>> + Send;

    fn find_by_id(
        &self,
        id: UserId,
    ) -> impl Future<Output = Result<Option<User>, StorageError>> + Send;

    /// # Errors
    /// `StorageError::NotFound` when no user has this id.
    fn update_password_hash(
        &self,
        id: UserId,
        password_hash: &str,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// # Errors
    /// `StorageError::NotFound` when no user has this id.
    fn set_role(
        &self,
        id: UserId,
        role: Role,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// # Errors
    /// `StorageError::NotFound` when no user has this id.
    fn confirm_email(&self, id: UserId) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Up to `limit` users created after `after` (from the first when `None`).
    fn list(
        &self,
        after: Option<UserId>,
        limit: usize,
    ) -> impl Future<Output = Result<UserPage, StorageError>> + Send;
}

/// Makes a page from up to `limit + 1` rows: the extra row only proves there is more.
fn page(mut users: Vec<User>, limit: usize) -> UserPage {
    let next = if users.len() > limit {
        users.truncate(limit);
        users.last().map(|user| user.id)
    } else {
        None
    };
    UserPage { users, next }
}

impl UserRepository for Storage {
    async fn insert(&self, user: &User) -> Result<(), StorageError> {
        match self {
            Self::Mongo(store) => store.insert(user).await,
            Self::Embedded(store) => store.insert(user).await,
        }
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, StorageError> {
        match self {
            Self::Mongo(store) => store.find_by_email(email).await,
            Self::Embedded(store) => store.find_by_email(email).await,
        }
    }

    async fn find_by_id(&self, id: UserId) -> Result<Option<User>, StorageError> {
        match self {
            Self::Mongo(store) => store.find_by_id(id).await,
            Self::Embedded(store) => store.find_by_id(id).await,
        }
    }

    async fn update_password_hash(&self, id: UserId, hash: &str) -> Result<(), StorageError> {
        match self {
            Self::Mongo(store) => store.update_password_hash(id, hash).await,
            Self::Embedded(store) => store.update_password_hash(id, hash).await,
        }
    }

    async fn set_role(&self, id: UserId, role: Role) -> Result<(), StorageError> {
        match self {
            Self::Mongo(store) => store.set_role(id, role).await,
            Self::Embedded(store) => store.set_role(id, role).await,
        }
    }

    async fn confirm_email(&self, id: UserId) -> Result<(), StorageError> {
        match self {
            Self::Mongo(store) => store.confirm_email(id).await,
            Self::Embedded(store) => store.confirm_email(id).await,
        }
    }

    async fn list(&self, after: Option<UserId>, limit: usize) -> Result<UserPage, StorageError> {
        match self {
            Self::Mongo(store) => store.list(after, limit).await,
            Self::Embedded(store) => store.list(after, limit).await,
        }
    }
}

/// Prepares the backend for users: MongoDB gets its unique email index.
///
/// # Errors
/// Fails if the index cannot be created (e.g. duplicates already stored).
pub async fn bootstrap(storage: &Storage) -> Result<(), StorageError> {
    match storage {
        Storage::Mongo(store) => store.create_user_indexes().await,
        Storage::Embedded(_) => Ok(()),
    }
}
