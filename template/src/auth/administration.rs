//! Admin tools over GraphQL: changing roles, disabling and enabling accounts, and the
//! audit log that records each of these (and `create-admin`). Every change needs the
//! ADMIN role and a recent password proof; reading the log needs the role.
//!
//! The service always keeps one enabled admin: changes that could remove the last one
//! run one at a time under a Redis lock, so two admins demoting each other at once
//! cannot both succeed.

use std::{sync::LazyLock, time::Duration};

use chrono::{DateTime, Utc};
use juniper::{GraphQLObject, ID};
use redis::Script;

use super::events::{AccountEventKind, Ended};
use crate::{
    domain::{Role, UserId},
    error::AppError,
    graphql::Context,
    redis::{Redis, unavailable},
    storage::{
        StorageError,
        audit::{AuditAction, AuditEntry, AuditId, AuditRepository},
        users::{Disabled, User, UserRepository as _},
    },
};

/// Why and when an admin disabled an account.
#[derive(GraphQLObject)]
pub struct AccountDisabled {
    pub reason: String,
    pub at: DateTime<Utc>,
}

impl From<&Disabled> for AccountDisabled {
    fn from(disabled: &Disabled) -> Self {
        Self {
            reason: disabled.reason.clone(),
            at: disabled.at,
        }
    }
}

/// One admin action as the audit log keeps it.
#[derive(GraphQLObject)]
pub struct AuditRecord {
    pub id: ID,
    /// The admin who acted; null for the `create-admin` command.
    pub actor: Option<ID>,
    pub action: AuditAction,
    /// The account acted upon.
    pub target: Option<ID>,
    pub detail: String,
    pub at: DateTime<Utc>,
}

impl From<AuditEntry> for AuditRecord {
    fn from(entry: AuditEntry) -> Self {
        let id = |user: UserId| ID::new(user.to_string());
        Self {
            id: ID::new(entry.id.to_string()),
            actor: entry.actor.map(id),
            action: entry.action,
            target: entry.target.map(id),
            detail: entry.detail,
            at: entry.at,
        }
    }
}

/// A page of the audit log, newest first.
#[derive(GraphQLObject)]
pub struct AuditPage {
    pub entries: Vec<AuditRecord>,
    /// Pass as `after` to get older entries; null on the last page.
    pub next_cursor: Option<ID>,
}

pub async fn audit_log(
    context: &Context,
    first: i32,
    after: Option<ID>,
) -> Result<AuditPage, AppError> {
    context.require_role(Role::Admin).await?;
    let limit = super::resolvers::page_size(first)?;
    let before = after
        .map(|id| {
            id.parse::<AuditId>()
                .map_err(|_| AppError::BadUserInput("`after` is not a cursor of this log".into()))
        })
        .transpose()?;
    let page = AuditRepository::list(&context.state.storage, before, limit).await?;
    Ok(AuditPage {
        entries: page.entries.into_iter().map(AuditRecord::from).collect(),
        next_cursor: page.next.map(|id| ID::new(id.to_string())),
    })
}

/// Gives the account `id` the role `role`; the last enabled admin keeps theirs.
pub async fn set_user_role(context: &Context, id: &ID, role: Role) -> Result<User, AppError> {
    let admin = require_admin(context).await?;
    let target = UserId::parse(id)?;
    let lock = AdminsLock::acquire(&context.state.auth.redis).await?;
    let result = async {
        let user = find(context, target).await?;
        if user.role == Role::Admin && role != Role::Admin {
            ensure_another_admin(context).await?;
        }
        context.state.storage.set_role(target, role).await?;
        let detail = format!("{:?} to {:?}", user.role, role).to_lowercase();
        audit(context, admin, AuditAction::SetRole, target, detail).await?;
        find(context, target).await
    }
    .await;
    lock.release().await;
    result
}

/// Disables the account `id` for `reason`: it cannot sign in, and its sessions end at
/// once. Admins cannot disable themselves, nor the last enabled admin.
pub async fn disable_user(context: &Context, id: &ID, reason: String) -> Result<User, AppError> {
    let admin = require_admin(context).await?;
    let target = UserId::parse(id)?;
    if target == admin {
        return Err(AppError::BadUserInput(
            "admins cannot disable their own account".into(),
        ));
    }
    let reason = reason.trim().to_string();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(AppError::BadUserInput(
            "give a reason of 1 to 500 characters".into(),
        ));
    }
    let lock = AdminsLock::acquire(&context.state.auth.redis).await?;
    let result = async {
        let user = find(context, target).await?;
        if user.role == Role::Admin && user.disabled.is_none() {
            ensure_another_admin(context).await?;
        }
        let disabled = Disabled {
            reason: reason.clone(),
            at: Utc::now(),
        };
        context
            .state
            .storage
            .set_disabled(target, Some(&disabled))
            .await?;
        let auth = &context.state.auth;
        auth.sessions.revoke_all(target).await?;
        auth.events
            .raise(target, AccountEventKind::AccountDisabled, Ended::All)
            .await;
        audit(context, admin, AuditAction::DisableUser, target, reason).await?;
        find(context, target).await
    }
    .await;
    lock.release().await;
    result
}

/// Lets the account `id` sign in again.
pub async fn enable_user(context: &Context, id: &ID) -> Result<User, AppError> {
    let admin = require_admin(context).await?;
    let target = UserId::parse(id)?;
    find(context, target).await?;
    context.state.storage.set_disabled(target, None).await?;
    audit(
        context,
        admin,
        AuditAction::EnableUser,
        target,
        String::new(),
    )
    .await?;
    find(context, target).await
}

/// The acting admin, who must have proved their password recently.
async fn require_admin(context: &Context) -> Result<UserId, AppError> {
    context.require_role(Role::Admin).await?;
    Ok(context.require_recent_auth().await?.id)
}

async fn find(context: &Context, id: UserId) -> Result<User, AppError> {
    context
        .state
        .storage
        .find_by_id(id)
        .await?
        .ok_or_else(|| AppError::BadUserInput("no account has this id".into()))
}

/// Refuses a change that would leave no enabled admin.
async fn ensure_another_admin(context: &Context) -> Result<(), AppError> {
    if context.state.storage.count_admins().await? <= 1 {
        return Err(AppError::BadUserInput(
            "this is the last admin: make another admin first".into(),
        ));
    }
    Ok(())
}

async fn audit(
    context: &Context,
    actor: UserId,
    action: AuditAction,
    target: UserId,
    detail: String,
) -> Result<(), StorageError> {
    let entry = AuditEntry::new(Some(actor), action, Some(target), detail);
    context.state.storage.record(&entry).await
}

/// Longest a role change may hold the lock: a process that dies holding it frees it
/// after this long.
const LOCK_LIFETIME: Duration = Duration::from_secs(10);
/// How long a change waits for another to finish before giving up.
const LOCK_PATIENCE: Duration = Duration::from_secs(5);

/// Deletes the lock `KEYS[1]` if it still holds this holder's `ARGV[1]`.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
",
    )
});

/// The lock that serialises changes to who is an admin.
struct AdminsLock {
    redis: Redis,
    key: String,
    holder: String,
}

impl AdminsLock {
    async fn acquire(redis: &Redis) -> Result<Self, AppError> {
        let key = redis.key("admins:lock");
        let holder = uuid::Uuid::new_v4().simple().to_string();
        let deadline = tokio::time::Instant::now() + LOCK_PATIENCE;
        loop {
            let taken: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(&holder)
                .arg("NX")
                .arg("PX")
                .arg(crate::clock::as_ms(LOCK_LIFETIME))
                .query_async(&mut redis.connection())
                .await
                .map_err(unavailable)?;
            if taken.is_some() {
                return Ok(Self {
                    redis: redis.clone(),
                    key,
                    holder,
                });
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(AppError::Unavailable(anyhow::anyhow!(
                    "another admin change is under way: retry"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Frees the lock; a failure only delays the next change until the lock lapses.
    async fn release(self) {
        let released: redis::RedisResult<u8> = RELEASE
            .key(&self.key)
            .arg(&self.holder)
            .invoke_async(&mut self.redis.connection())
            .await;
        if let Err(error) = released {
            tracing::warn!(error = %error, "Failed to release the admins lock");
        }
    }
}
