//! Users in redb: one table by id, one unique index by email, written in one transaction.

use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use super::{StoredUser, User, UserPage, UserRepository, page};
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

    fn modify_user(&self, id: UserId, change: impl FnOnce(&mut User)) -> Result<(), StorageError> {
        let key = id.to_string();
        let tx = self.db().begin_write().map_err(redb::Error::from)?;
        {
            let mut table = tx.open_table(USERS).map_err(redb::Error::from)?;
            let mut user = match table.get(key.as_str()).map_err(redb::Error::from)? {
                Some(bytes) => decode(bytes.value())?,
                None => return Err(StorageError::NotFound),
            };
            change(&mut user);
            table
                .insert(key.as_str(), encode(&user)?.as_slice())
                .map_err(redb::Error::from)?;
        }
        tx.commit().map_err(redb::Error::from)?;
        Ok(())
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

    async fn list(&self, after: Option<UserId>, limit: usize) -> Result<UserPage, StorageError> {
        let store = self.clone();
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
            let mut users = Vec::with_capacity(limit + 1);
            for row in rows.take(limit + 1) {
                let (_, bytes) = row.map_err(redb::Error::from)?;
                users.push(decode(bytes.value())?);
            }
            Ok(page(users, limit))
        })
        .await
    }
}
