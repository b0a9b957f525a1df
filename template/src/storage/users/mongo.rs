//! Users in MongoDB: one document per user, a unique index on the normalised email.

use futures_util::TryStreamExt;
use mongodb::{
    Collection, IndexModel,
    bson::{doc, to_bson},
    options::IndexOptions,
};

use super::{
    Disabled, SecondFactor, StoredDisabled, StoredSecondFactor, StoredUser, User, UserFilter,
    UserPage, UserRepository, page,
};
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
            .await
            .map_err(write_error)?;
        if result.matched_count == 0 {
            return Err(StorageError::NotFound);
        }
        Ok(())
    }
}

/// A write the unique email index refused is a `Conflict`; other errors stay as they are.
fn write_error(error: mongodb::error::Error) -> StorageError {
    if server_code(&error) == Some(DUPLICATE_KEY) {
        StorageError::Conflict
    } else {
        error.into()
    }
}

/// A regex matching the addresses that start with `prefix`, each character of it taken
/// literally (the characters `regex::escape` escapes). Anchored and case-sensitive, so
/// MongoDB can use the email index for it; stored addresses are lower-case already.
fn starts_with(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() * 2 + 1);
    pattern.push('^');
    for c in prefix.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern
}

/// The query for `filter`'s users created after `after`.
fn list_query(
    filter: &UserFilter,
    after: Option<UserId>,
) -> Result<mongodb::bson::Document, StorageError> {
    let mut query = doc! {};
    if let Some(id) = after {
        query.insert("_id", doc! { "$gt": id.to_string() });
    }
    if let Some(prefix) = filter.normalised_prefix() {
        query.insert("email", doc! { "$regex": starts_with(&prefix) });
    }
    if let Some(role) = filter.role {
        query.insert("role", to_bson(&role).map_err(StorageError::corrupt)?);
    }
    Ok(query)
}

impl UserRepository for MongoStore {
    async fn insert(&self, user: &User) -> Result<(), StorageError> {
        self.users()
            .insert_one(StoredUser::from(user))
            .await
            .map_err(write_error)?;
        Ok(())
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

    async fn list(
        &self,
        filter: &UserFilter,
        after: Option<UserId>,
        limit: usize,
    ) -> Result<UserPage, StorageError> {
        let rows: Vec<StoredUser> = self
            .users()
            .find(list_query(filter, after)?)
            .sort(doc! { "_id": 1 })
            .limit(i64::try_from(limit + 1).unwrap_or(i64::MAX))
            .await?
            .try_collect()
            .await?;
        Ok(page(rows.into_iter().map(User::from).collect(), limit))
    }

    async fn delete(&self, id: UserId) -> Result<bool, StorageError> {
        let result = self
            .users()
            .delete_one(doc! { "_id": id.to_string() })
            .await?;
        Ok(result.deleted_count > 0)
    }

    async fn set_disabled(
        &self,
        id: UserId,
        disabled: Option<&Disabled>,
    ) -> Result<(), StorageError> {
        let disabled = disabled.map(StoredDisabled::from);
        let disabled = to_bson(&disabled).map_err(StorageError::corrupt)?;
        self.update_user(id, doc! { "disabled": disabled }).await
    }

    async fn update_email(&self, id: UserId, email: &Email) -> Result<(), StorageError> {
        self.update_user(
            id,
            doc! { "email": email.as_ref(), "email_confirmed": true },
        )
        .await
    }

    async fn count_admins(&self) -> Result<u64, StorageError> {
        let admin = to_bson(&Role::Admin).map_err(StorageError::corrupt)?;
        // `null` also matches documents from before accounts could be disabled.
        let enabled_admins = doc! { "role": admin, "disabled": null };
        Ok(self.users().count_documents(enabled_admins).await?)
    }

    async fn set_second_factor(
        &self,
        id: UserId,
        factor: Option<&SecondFactor>,
    ) -> Result<(), StorageError> {
        let factor = factor.map(StoredSecondFactor::from);
        let factor = to_bson(&factor).map_err(StorageError::corrupt)?;
        self.update_user(id, doc! { "second_factor": factor }).await
    }

    async fn use_recovery_code(&self, id: UserId, code_hash: &str) -> Result<bool, StorageError> {
        // The filter and the update are one document operation: of two concurrent uses
        // of a code, only one finds it still there.
        let result = self
            .users()
            .update_one(
                doc! { "_id": id.to_string(), "second_factor.recovery_codes": code_hash },
                doc! { "$pull": { "second_factor.recovery_codes": code_hash } },
            )
            .await?;
        Ok(result.modified_count == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_is_anchored_and_taken_literally() {
        assert_eq!(starts_with("ada"), "^ada");
        assert_eq!(starts_with("a.b+c"), r"^a\.b\+c");
        assert_eq!(starts_with(r"(x)|[y]\"), r"^\(x\)\|\[y\]\\");
    }
}
