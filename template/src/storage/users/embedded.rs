//! Users in redb: one table by id, one unique index by email, written in one transaction.

use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use super::{Disabled, SecondFactor, StoredUser, User, UserFilter, UserPage, UserRepository, page};
use crate::{
    domain::{Email, Role, UserId},
    storage::{EmbeddedStore, StorageError},
};

const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
const USERS_BY_EMAIL: TableDefinition<&str, &str> = TableDefinition::new("users_by_email");

fn encode(user: &User) -> Result<Vec<u8>, StorageError> {
    serde_json::to_vec(&StoredUser::from(user)).map_err(StorageError::corrupt)
}

fn decode(bytes: &[u8]) -> Result<User, StorageError> {
    serde_json::from_slice::<StoredUser>(bytes)
        .map(User::from)
        .map_err(StorageError::corrupt)
}

/// Whether `user` meets each criterion set; `prefix` is the filter's normalised prefix.
fn holds(user: &User, prefix: Option<&str>, role: Option<Role>) -> bool {
    prefix.is_none_or(|prefix| user.email.as_ref().starts_with(prefix))
        && role.is_none_or(|role| user.role == role)
}

impl EmbeddedStore {
    fn read_user(&self, id: &str) -> Result<Option<User>, StorageError> {
        let tx = self.db().begin_read().map_err(redb::Error::from)?;
        let table = match tx.open_table(USERS) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(redb::Error::from(e).into()),
        };
        let found = table.get(id).map_err(redb::Error::from)?;
        found.map(|bytes| decode(bytes.value())).transpose()
    }

    /// Applies `change` to the user in one write transaction and returns what it returns.
    fn modify_user<T>(
        &self,
        id: UserId,
        change: impl FnOnce(&mut User) -> T,
    ) -> Result<T, StorageError> {
        let key = id.to_string();
        let tx = self.db().begin_write().map_err(redb::Error::from)?;
        let outcome = {
            let mut table = tx.open_table(USERS).map_err(redb::Error::from)?;
            let mut user = match table.get(key.as_str()).map_err(redb::Error::from)? {
                Some(bytes) => decode(bytes.value())?,
                None => return Err(StorageError::NotFound),
            };
            let outcome = change(&mut user);
            table
                .insert(key.as_str(), encode(&user)?.as_slice())
                .map_err(redb::Error::from)?;
            outcome
        };
        tx.commit().map_err(redb::Error::from)?;
        Ok(outcome)
    }
}

impl UserRepository for EmbeddedStore {
    async fn insert(&self, user: &User) -> Result<(), StorageError> {
        let store = self.clone();
        let user = user.clone();
        self.blocking(move || {
            let tx = store.db().begin_write().map_err(redb::Error::from)?;
            {
                let mut by_email = tx.open_table(USERS_BY_EMAIL).map_err(redb::Error::from)?;
                if by_email
                    .get(user.email.as_ref())
                    .map_err(redb::Error::from)?
                    .is_some()
                {
                    return Err(StorageError::Conflict);
                }
                let id = user.id.to_string();
                by_email
                    .insert(user.email.as_ref(), id.as_str())
                    .map_err(redb::Error::from)?;
                let mut users = tx.open_table(USERS).map_err(redb::Error::from)?;
                users
                    .insert(id.as_str(), encode(&user)?.as_slice())
                    .map_err(redb::Error::from)?;
            }
            tx.commit().map_err(redb::Error::from)?;
            Ok(())
        })
        .await
    }

    // Point reads run inline: they touch cached pages and take microseconds, less than a
    // hop to the blocking pool and back. Writes wait for fsync and scans can be long, so
    // those go to the pool.
    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, StorageError> {
        let tx = self.db().begin_read().map_err(redb::Error::from)?;
        let id = match tx.open_table(USERS_BY_EMAIL) {
            Ok(table) => table
                .get(email.as_ref())
                .map_err(redb::Error::from)?
                .map(|id| id.value().to_string()),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(redb::Error::from(e).into()),
        };
        drop(tx);
        id.map_or(Ok(None), |id| self.read_user(&id))
    }

    async fn find_by_id(&self, id: UserId) -> Result<Option<User>, StorageError> {
        self.read_user(&id.to_string())
    }

    async fn update_password_hash(&self, id: UserId, hash: &str) -> Result<(), StorageError> {
        let store = self.clone();
        let hash = hash.to_string();
        self.blocking(move || store.modify_user(id, |user| user.password_hash = hash))
            .await
    }

    async fn set_role(&self, id: UserId, role: Role) -> Result<(), StorageError> {
        let store = self.clone();
        self.blocking(move || store.modify_user(id, |user| user.role = role))
            .await
    }

    async fn confirm_email(&self, id: UserId) -> Result<(), StorageError> {
        let store = self.clone();
        self.blocking(move || store.modify_user(id, |user| user.email_confirmed = true))
            .await
    }

    async fn list(
        &self,
        filter: &UserFilter,
        after: Option<UserId>,
        limit: usize,
    ) -> Result<UserPage, StorageError> {
        let store = self.clone();
        let prefix = filter.normalised_prefix();
        let role = filter.role;
        self.blocking(move || {
            let tx = store.db().begin_read().map_err(redb::Error::from)?;
            let table = match tx.open_table(USERS) {
                Ok(table) => table,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(page(Vec::new(), limit)),
                Err(e) => return Err(redb::Error::from(e).into()),
            };
            let start = after.map(|id| id.to_string());
            let rows = match &start {
                Some(start) => table.range::<&str>((
                    std::ops::Bound::Excluded(start.as_str()),
                    std::ops::Bound::Unbounded,
                )),
                None => table.range::<&str>(..),
            }
            .map_err(redb::Error::from)?;
            // A filter may skip any number of rows, so the walk stops on the rows kept.
            let mut users = Vec::with_capacity(limit + 1);
            for row in rows {
                let (_, bytes) = row.map_err(redb::Error::from)?;
                let user = decode(bytes.value())?;
                if holds(&user, prefix.as_deref(), role) {
                    users.push(user);
                    if users.len() > limit {
                        break;
                    }
                }
            }
            Ok(page(users, limit))
        })
        .await
    }

    async fn delete(&self, id: UserId) -> Result<bool, StorageError> {
        let store = self.clone();
        self.blocking(move || {
            let key = id.to_string();
            let tx = store.db().begin_write().map_err(redb::Error::from)?;
            {
                let mut users = tx.open_table(USERS).map_err(redb::Error::from)?;
                let removed = users.remove(key.as_str()).map_err(redb::Error::from)?;
                let Some(user) = removed.map(|bytes| decode(bytes.value())).transpose()? else {
                    return Ok(false);
                };
                let mut by_email = tx.open_table(USERS_BY_EMAIL).map_err(redb::Error::from)?;
                by_email
                    .remove(user.email.as_ref())
                    .map_err(redb::Error::from)?;
            }
            tx.commit().map_err(redb::Error::from)?;
            Ok(true)
        })
        .await
    }

    async fn set_disabled(
        &self,
        id: UserId,
        disabled: Option<&Disabled>,
    ) -> Result<(), StorageError> {
        let store = self.clone();
        let disabled = disabled.cloned();
        self.blocking(move || store.modify_user(id, |user| user.disabled = disabled))
            .await
    }

    async fn update_email(&self, id: UserId, email: &Email) -> Result<(), StorageError> {
        let store = self.clone();
        let email = email.clone();
        self.blocking(move || {
            let key = id.to_string();
            let tx = store.db().begin_write().map_err(redb::Error::from)?;
            {
                let mut users = tx.open_table(USERS).map_err(redb::Error::from)?;
                let mut user = match users.get(key.as_str()).map_err(redb::Error::from)? {
                    Some(bytes) => decode(bytes.value())?,
                    None => return Err(StorageError::NotFound),
                };
                let mut by_email = tx.open_table(USERS_BY_EMAIL).map_err(redb::Error::from)?;
                let taken = by_email
                    .get(email.as_ref())
                    .map_err(redb::Error::from)?
                    .is_some_and(|owner| owner.value() != key);
                if taken {
                    return Err(StorageError::Conflict);
                }
                by_email
                    .remove(user.email.as_ref())
                    .map_err(redb::Error::from)?;
                by_email
                    .insert(email.as_ref(), key.as_str())
                    .map_err(redb::Error::from)?;
                user.email = email;
                user.email_confirmed = true;
                users
                    .insert(key.as_str(), encode(&user)?.as_slice())
                    .map_err(redb::Error::from)?;
            }
            tx.commit().map_err(redb::Error::from)?;
            Ok(())
        })
        .await
    }

    async fn count_admins(&self) -> Result<u64, StorageError> {
        let store = self.clone();
        self.blocking(move || {
            let tx = store.db().begin_read().map_err(redb::Error::from)?;
            let table = match tx.open_table(USERS) {
                Ok(table) => table,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
                Err(e) => return Err(redb::Error::from(e).into()),
            };
            let mut admins = 0;
            for row in table.iter().map_err(redb::Error::from)? {
                let (_, bytes) = row.map_err(redb::Error::from)?;
                let user = decode(bytes.value())?;
                if user.role == Role::Admin && user.disabled.is_none() {
                    admins += 1;
                }
            }
            Ok(admins)
        })
        .await
    }

    async fn set_second_factor(
        &self,
        id: UserId,
        factor: Option<&SecondFactor>,
    ) -> Result<(), StorageError> {
        let store = self.clone();
        let factor = factor.cloned();
        self.blocking(move || store.modify_user(id, |user| user.second_factor = factor))
            .await
    }

    async fn use_recovery_code(&self, id: UserId, code_hash: &str) -> Result<bool, StorageError> {
        let store = self.clone();
        let code_hash = code_hash.to_string();
        // redb runs one write transaction at a time: of two uses of a code, only the
        // first finds it.
        let used = self
            .blocking(move || {
                store.modify_user(id, |user| {
                    let Some(factor) = &mut user.second_factor else {
                        return false;
                    };
                    let before = factor.recovery_codes.len();
                    factor.recovery_codes.retain(|code| *code != code_hash);
                    factor.recovery_codes.len() < before
                })
            })
            .await;
        match used {
            Err(StorageError::NotFound) => Ok(false),
            used => used,
        }
    }
}
