//! `create-admin`: makes an account an administrator, creating it if needed.

use anyhow::{Context as _, bail};
use secrecy::SecretString;

use super::password::PasswordHasher;
use crate::{
    config::Settings,
    domain::{Email, Role},
    storage::{
        Storage,
        users::{User, UserRepository},
    },
};

/// Promotes `email` to admin; a new account needs `password`. Returns what was done.
///
/// # Errors
/// Fails on an invalid email or password, a new account without a password, or storage
/// errors.
pub async fn create_admin(
    settings: &Settings,
    email: &str,
    password: Option<SecretString>,
) -> anyhow::Result<String> {
    let storage = Storage::connect(&settings.database)
        .await
        .context("Failed to connect to the database")?;
    let hasher = PasswordHasher::new(settings.auth.bcrypt_cost);
    promote_or_create(&storage, &hasher, email, password).await
}

/// The work of [`create_admin`] on an open storage.
///
/// # Errors
/// As [`create_admin`].
pub async fn promote_or_create(
    storage: &Storage,
    hasher: &PasswordHasher,
    email: &str,
    password: Option<SecretString>,
) -> anyhow::Result<String> {
    let email = Email::parse(email)?;
    if let Some(user) = storage.find_by_email(&email).await? {
        storage.set_role(user.id, Role::Admin).await?;
        return Ok(format!("{email} is now an admin"));
    }
    let Some(password) = password else {
        bail!("{email} has no account yet: pass its password with --password-stdin");
    };
    let hash = hasher.hash_new(password, &email).await?;
    let mut user = User::new(email.clone(), hash);
    user.role = Role::Admin;
    storage.insert(&user).await?;
    Ok(format!("created admin {email}"))
}
