//! `create-admin`: the first administrator, made by whoever runs the service.
//!
//! Never promote an account whose password the operator did not set: anyone may register
//! any address first, and an operator who meant to create `admin@example.com` would
//! otherwise hand the admin role to whoever did. So `create-admin` creates a new account
//! with the operator's password and refuses an address that has one already. Promoting
//! an existing account is a separate, explicit request (`--promote-existing`) for an
//! account whose owner confirmed the address; it prints when the account was made, so
//! the operator can tell it is the one they mean, and ends its sessions, so that the
//! role applies from its next sign-in only. Both are written to the audit log, with no
//! actor: the command line acted.

use anyhow::{Context as _, bail};
use secrecy::SecretString;

use super::{password::PasswordHasher, sessions::SessionStore};
use crate::{
    domain::{Email, Role},
    storage::{
        Storage, StorageError,
        audit::{AuditAction, AuditEntry, AuditRepository as _},
        users::{User, UserRepository},
    },
};

/// Creates `email` as an admin with `password`.
///
/// # Errors
/// Fails on an invalid email or password, an address that has an account already, or
/// storage errors.
pub async fn create(
    storage: &Storage,
    hasher: &PasswordHasher,
    email: &str,
    password: SecretString,
) -> anyhow::Result<String> {
    let email = Email::parse(email)?;
    if storage.find_by_email(&email).await?.is_some() {
        bail!(taken(&email));
    }
    let hash = hasher.hash_new(password, &email).await?;
    let mut user = User::new(email.clone(), hash);
    user.role = Role::Admin;
    // The operator chose the address: nothing is left to confirm.
    user.email_confirmed = true;
    match storage.insert(&user).await {
        Ok(()) => {}
        Err(StorageError::Conflict) => bail!(taken(&email)),
        Err(error) => return Err(error.into()),
    }
    let entry = AuditEntry::new(
        None,
        AuditAction::CreateAdmin,
        Some(user.id),
        "create-admin",
    );
    storage.record(&entry).await?;
    Ok(format!("Created the admin {email}"))
}

fn taken(email: &Email) -> String {
    format!(
        "{email} already has an account, with a password you did not set: anyone can register \
         any address. Nothing was changed. If that account is the one you mean and its owner \
         confirmed the address, run create-admin --email {email} --promote-existing"
    )
}

/// Makes the existing account `email` an admin, once its owner confirmed the address,
/// and ends its sessions.
///
/// # Errors
/// Fails on an invalid email, an unknown or unconfirmed account, or storage or Redis
/// errors.
pub async fn promote_existing(
    storage: &Storage,
    sessions: &SessionStore,
    email: &str,
) -> anyhow::Result<String> {
    let email = Email::parse(email)?;
    let Some(user) = storage.find_by_email(&email).await? else {
        bail!("{email} has no account: create one with --password-stdin");
    };
    let created = user.created_at.format("%Y-%m-%d %H:%M:%S UTC");
    if !user.email_confirmed {
        bail!(
            "{email} (account created {created}) has not confirmed its address, so its owner \
             may not be whoever registered it. Nothing was changed."
        );
    }
    if user.role == Role::Admin {
        return Ok(format!(
            "{email} (account created {created}) is an admin already"
        ));
    }
    storage.set_role(user.id, Role::Admin).await?;
    let entry = AuditEntry::new(
        None,
        AuditAction::PromoteAdmin,
        Some(user.id),
        "create-admin --promote-existing",
    );
    storage.record(&entry).await?;
    let ended = sessions
        .revoke_all(user.id)
        .await
        .context("Failed to end the account's sessions")?;
    Ok(format!(
        "Promoted {email} (account created {created}) to admin; its {ended} sessions were ended"
    ))
}
