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
    /// Set while an admin keeps the account out; the account and its data stay.
    pub disabled: Option<Disabled>,
    /// Set while sign-in needs a code from an authenticator app or a recovery code.
    pub second_factor: Option<SecondFactor>,
}

/// Why and since when an account is disabled, for the admin who looks at it later.
#[derive(Debug, Clone, PartialEq)]
pub struct Disabled {
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// An enabled second factor: the TOTP secret, sealed (see `auth/second_factor/sealing.rs`),
/// and the hashes of the recovery codes not used yet.
#[derive(Debug, Clone, PartialEq)]
pub struct SecondFactor {
    pub totp_secret: String,
    pub recovery_codes: Vec<String>,
    pub enabled_at: DateTime<Utc>,
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
            disabled: None,
            second_factor: None,
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
    /// Absent from documents written before accounts could be disabled: those are enabled.
    #[serde(default)]
    disabled: Option<StoredDisabled>,
    /// Absent from documents written before second factors: those have none.
    #[serde(default)]
    second_factor: Option<StoredSecondFactor>,
}

/// `SecondFactor` with its time in milliseconds.
#[derive(Debug, Serialize, Deserialize)]
struct StoredSecondFactor {
    totp_secret: String,
    recovery_codes: Vec<String>,
    enabled_at_ms: i64,
}

impl From<&SecondFactor> for StoredSecondFactor {
    fn from(factor: &SecondFactor) -> Self {
        Self {
            totp_secret: factor.totp_secret.clone(),
            recovery_codes: factor.recovery_codes.clone(),
            enabled_at_ms: factor.enabled_at.timestamp_millis(),
        }
    }
}

impl From<StoredSecondFactor> for SecondFactor {
    fn from(stored: StoredSecondFactor) -> Self {
        Self {
            totp_secret: stored.totp_secret,
            recovery_codes: stored.recovery_codes,
            enabled_at: DateTime::from_timestamp_millis(stored.enabled_at_ms).unwrap_or_default(),
        }
    }
}

/// `Disabled` with its time in milliseconds, as `created_at_ms` is kept.
#[derive(Debug, Serialize, Deserialize)]
struct StoredDisabled {
    reason: String,
    at_ms: i64,
}

impl From<&Disabled> for StoredDisabled {
    fn from(disabled: &Disabled) -> Self {
        Self {
            reason: disabled.reason.clone(),
            at_ms: disabled.at.timestamp_millis(),
        }
    }
}

impl From<StoredDisabled> for Disabled {
    fn from(stored: StoredDisabled) -> Self {
        Self {
            reason: stored.reason,
            at: DateTime::from_timestamp_millis(stored.at_ms).unwrap_or_default(),
        }
    }
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
            disabled: user.disabled.as_ref().map(StoredDisabled::from),
            second_factor: user.second_factor.as_ref().map(StoredSecondFactor::from),
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
            disabled: stored.disabled.map(Disabled::from),
            second_factor: stored.second_factor.map(SecondFactor::from),
        }
    }
}

/// A page of users in creation order, with the cursor of the next page.
#[derive(Debug)]
pub struct UserPage {
    pub users: Vec<User>,
    pub next: Option<UserId>,
}

/// Which users a list holds; the default holds them all. Criteria combine: a user must
/// meet each one that is set.
#[derive(Debug, Default, Clone)]
pub struct UserFilter {
    /// The start of the address, in any case: it is matched against the normalised
    /// (lower-case) email.
    pub email_prefix: Option<String>,
    pub role: Option<Role>,
}

impl UserFilter {
    /// The prefix as stored addresses are spelled.
    fn normalised_prefix(&self) -> Option<String> {
        self.email_prefix.as_deref().map(str::to_lowercase)
    }
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

    /// Up to `limit` users that `filter` holds, created after `after` (from the first when
    /// `None`). A page's `next` is a cursor for the same filter.
    fn list(
        &self,
        filter: &UserFilter,
        after: Option<UserId>,
        limit: usize,
    ) -> impl Future<Output = Result<UserPage, StorageError>> + Send;

    /// Removes the user for good; `false` when none had this id, so a repeated delete is
    /// harmless. The address is free for a new account afterwards.
    fn delete(&self, id: UserId) -> impl Future<Output = Result<bool, StorageError>> + Send;

    /// Disables the account with `disabled`'s reason, or enables it again with `None`.
    ///
    /// # Errors
    /// `StorageError::NotFound` when no user has this id.
    fn set_disabled(
        &self,
        id: UserId,
        disabled: Option<&Disabled>,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Sets a new address and marks it confirmed: callers change it once the new address
    /// is proven (a link sent to it was followed) or an admin vouches for it.
    ///
    /// # Errors
    /// `StorageError::Conflict` when another user has this email, `StorageError::NotFound`
    /// when no user has this id.
    fn update_email(
        &self,
        id: UserId,
        email: &Email,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Admins who are not disabled: the ones who can still act as admins, so the last of
    /// them is never removed or demoted by mistake.
    fn count_admins(&self) -> impl Future<Output = Result<u64, StorageError>> + Send;

    /// Turns the second factor on (or replaces it, as new recovery codes do) with
    /// `factor`, or off with `None`.
    ///
    /// # Errors
    /// `StorageError::NotFound` when no user has this id.
    fn set_second_factor(
        &self,
        id: UserId,
        factor: Option<&SecondFactor>,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Removes the recovery code hashed `code_hash` from the user's second factor, in one
    /// atomic step: `true` for the one caller that removed it, `false` for every other
    /// (an unknown code, a used one, or a user without a second factor).
    fn use_recovery_code(
        &self,
        id: UserId,
        code_hash: &str,
    ) -> impl Future<Output = Result<bool, StorageError>> + Send;
}

/// Makes a page from up to `limit + 1` rows: the extra row only proves there is more.
fn page(users: Vec<User>, limit: usize) -> UserPage {
    let (users, next) = paginate(users, limit, |user| user.id);
    UserPage { users, next }
}

/// Splits up to `limit + 1` rows into the first `limit` and, when the extra row shows
/// there is more, the cursor of the last one kept.
pub(super) fn paginate<T, C>(
    mut rows: Vec<T>,
    limit: usize,
    cursor: impl Fn(&T) -> C,
) -> (Vec<T>, Option<C>) {
    if rows.len() > limit {
        rows.truncate(limit);
        let next = rows.last().map(cursor);
        (rows, next)
    } else {
        (rows, None)
    }
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

    async fn list(
        &self,
        filter: &UserFilter,
        after: Option<UserId>,
        limit: usize,
    ) -> Result<UserPage, StorageError> {
        match self {
            Self::Mongo(store) => store.list(filter, after, limit).await,
            Self::Embedded(store) => store.list(filter, after, limit).await,
        }
    }

    async fn delete(&self, id: UserId) -> Result<bool, StorageError> {
        match self {
            Self::Mongo(store) => store.delete(id).await,
            Self::Embedded(store) => store.delete(id).await,
        }
    }

    async fn set_disabled(
        &self,
        id: UserId,
        disabled: Option<&Disabled>,
    ) -> Result<(), StorageError> {
        match self {
            Self::Mongo(store) => store.set_disabled(id, disabled).await,
            Self::Embedded(store) => store.set_disabled(id, disabled).await,
        }
    }

    async fn update_email(&self, id: UserId, email: &Email) -> Result<(), StorageError> {
        match self {
            Self::Mongo(store) => store.update_email(id, email).await,
            Self::Embedded(store) => store.update_email(id, email).await,
        }
    }

    async fn count_admins(&self) -> Result<u64, StorageError> {
        match self {
            Self::Mongo(store) => store.count_admins().await,
            Self::Embedded(store) => store.count_admins().await,
        }
    }

    async fn set_second_factor(
        &self,
        id: UserId,
        factor: Option<&SecondFactor>,
    ) -> Result<(), StorageError> {
        match self {
            Self::Mongo(store) => store.set_second_factor(id, factor).await,
            Self::Embedded(store) => store.set_second_factor(id, factor).await,
        }
    }

    async fn use_recovery_code(&self, id: UserId, code_hash: &str) -> Result<bool, StorageError> {
        match self {
            Self::Mongo(store) => store.use_recovery_code(id, code_hash).await,
            Self::Embedded(store) => store.use_recovery_code(id, code_hash).await,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_from_before_disabling_and_second_factors_reads_as_enabled_without_one() {
        let old = serde_json::json!({
            "_id": UserId::generate(),
            "email": "old@example.com",
            "password_hash": "hash",
            "role": "admin",
            "created_at_ms": 0,
        });

        let user = User::from(serde_json::from_value::<StoredUser>(old).unwrap());

        assert!(user.disabled.is_none());
        assert!(user.second_factor.is_none());
    }
}
