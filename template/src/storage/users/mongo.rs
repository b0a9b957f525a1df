//! Users in MongoDB: one document per user, a unique index on the normalised email.

use futures_util::TryStreamExt;
use mongodb::{
    Collection, IndexModel,
    bson::{doc, to_bson},
    options::IndexOptions,
};

use super::{StoredUser, User, UserPage, UserRepository, page};
use crate::{
    domain::{Email, Role, UserId},
    storage::{
        MongoStore, StorageError,
        mongo::{DUPLICATE_KEY, server_code},
    },
};

impl MongoStore {
    fn users(&self) -> Collection<StoredUser> {
        self.db().collection("users")
    }

    /// The unique index on the normalised email, which makes a second account for one
    /// address a `Conflict`. Lists need no index of their own: they walk `_id`.
    ///
    /// # Errors
    /// `StorageError::IndexRefused` when MongoDB will not build it.
    pub async fn create_user_indexes(&self) -> Result<(), StorageError> {
        let unique_email = IndexModel::builder()
            .keys(doc! { "email": 1 })
            .options(IndexOptions::builder().unique(true).build())
            .build();
        self.ensure_index(&self.users(), unique_email).await
    }

    async fn update_user(
        &self,
        id: UserId,
        set: mongodb::bson::Document,
    ) -> Result<(), StorageError> {
        let result = self
            .users()
            .update_one(doc! { "_id": id.to_string() }, doc! { "$set": set })
            .await?;
        if result.matched_count == 0 {
            return Err(StorageError::NotFound);
        }
        Ok(())
    }
}

/// Whether the unique email index refused the write.
fn is_duplicate_key(error: &mongodb::error::Error) -> bool {
    server_code(error) == Some(DUPLICATE_KEY)
}

impl UserRepository for MongoStore {
    async fn insert(&self, user: &User) -> Result<(), StorageError> {
        match self.users().insert_one(StoredUser::from(user)).await {
            Ok(_) => Ok(()),
            Err(e) if is_duplicate_key(&e) => Err(StorageError::Conflict),
            Err(e) => Err(e.into()),
        }
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, StorageError> {
        let found = self
            .users()
            .find_one(doc! { "email": email.as_ref() })
            .await?;
        Ok(found.map(User::from))
    }

    async fn find_by_id(&self, id: UserId) -> Result<Option<User>, StorageError> {
        let found = self
            .users()
            .find_one(doc! { "_id": id.to_string() })
            .await?;
        Ok(found.map(User::from))
    }

    async fn update_password_hash(&self, id: UserId, hash: &str) -> Result<(), StorageError> {
        self.update_user(id, doc! { "password_hash": hash }).await
    }

    async fn set_role(&self, id: UserId, role: Role) -> Result<(), StorageError> {
        let role = to_bson(&role).map_err(StorageError::corrupt)?;
        self.update_user(id, doc! { "role": role }).await
    }

    async fn confirm_email(&self, id: UserId) -> Result<(), StorageError> {
        self.update_user(id, doc! { "email_confirmed": true }).await
    }

    async fn list(&self, after: Option<UserId>, limit: usize) -> Result<UserPage, StorageError> {
        let filter = match after {
            Some(id) => doc! { "_id": { "$gt": id.to_string() } },
            None => doc! {},
        };
        let rows: Vec<StoredUser> = self
            .users()
            .find(filter)
            .sort(doc! { "_id": 1 })
            .limit(i64::try_from(limit + 1).unwrap_or(i64::MAX))
            .await?
            .try_collect()
            .await?;
        Ok(page(rows.into_iter().map(User::from).collect(), limit))
    }
}
