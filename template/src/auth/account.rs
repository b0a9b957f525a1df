//! Self-service for the signed-in user: the sessions of the account, ending one of
//! them, proving the password again for sensitive operations, deleting the account.

use chrono::{DateTime, Utc};
use juniper::{GraphQLObject, ID};

use super::{
    events::{AccountEventKind, Ended},
    sessions::SessionInfo,
};
use crate::{
    domain::UserId, error::AppError, graphql::Context, storage::users::UserRepository as _,
};

/// One live session of the signed-in user.
#[derive(GraphQLObject)]
pub struct Session {
    /// Names the session for `revokeSession`; no way into it.
    pub id: ID,
    pub created_at: DateTime<Utc>,
    /// Updated at most once a minute.
    pub last_seen_at: DateTime<Utc>,
    /// The device the session signed in from, as its browser describes itself.
    pub device: String,
    /// The address it signed in from: an IPv4 address or an IPv6 /64.
    pub client: String,
    /// The session this request uses.
    pub current: bool,
}

impl From<SessionInfo> for Session {
    fn from(info: SessionInfo) -> Self {
        Self {
            id: ID::new(info.id),
            created_at: info.created_at,
            last_seen_at: info.last_seen_at,
            device: info.origin.device,
            client: info.origin.client,
            current: info.current,
        }
    }
}

pub async fn sessions(context: &Context) -> Result<Vec<Session>, AppError> {
    let user = context.require_user().await?;
    let sessions = context
        .state
        .auth
        .sessions
        .list(user.id, context.auth.session())
        .await?;
    Ok(sessions.into_iter().map(Session::from).collect())
}

/// Ends one of the user's sessions, this one or another device's. An unknown id is
/// refused rather than ignored: the client's list is out of date.
pub async fn revoke_session(context: &Context, id: &ID) -> Result<bool, AppError> {
    let user = context.require_user().await?;
    let current = context
        .auth
        .session()
        .is_some_and(|session| session.id() == id.to_string());
    let Some(origin) = context
        .state
        .auth
        .sessions
        .revoke_by_id(user.id, id)
        .await?
    else {
        return Err(AppError::BadUserInput("no session of yours has this id".into()));
    };
    let ended = Ended::Only(id.to_string());
    context.state.auth.events.raise(user.id, AccountEventKind::SessionRevoked, ended).await;
    if current {
        context.auth.end_session();
        context.auth.clear_session_cookie();
    } else {
        tracing::info!(device = %origin.device, "A session was ended from another device");
{%- if email %}
        super::email_flows::after_session_revoked_elsewhere(context, user, origin.device);
{%- endif %}
    }
    Ok(true)
}

/// Proves the password again, so that this session may run sensitive operations for
/// the next `auth.reauth_window_secs`. A password check like `login`: one per request,
/// counted against the account and the client.
pub async fn reauthenticate(context: &Context, password: String) -> Result<bool, AppError> {
    context.prove_password(password, "reauthenticate").await?;
    let auth = &context.state.auth;
    if let Some(session) = context.auth.session() {
        auth.sessions.mark_authenticated(session).await?;
    }
    Ok(true)
}

/// Erases the signed-in account once its session proved the password recently: the
/// user record, every session and outstanding link, the counts kept on its address{% if email %},
/// then says goodbye by mail{% endif %}. A retry of a request that erased the account (its
/// session is gone by then) answers `true` again, finishing what a failure left.
pub async fn delete_account(context: &Context) -> Result<bool, AppError> {
    let auth = &context.state.auth;
    let Some(user) = context.current_user().await? else {
        return match context.auth.presented_user() {
            Some(user) if auth.erasures.contains(user).await? => {
                erase_keys_of(context, user).await?;
                Ok(true)
            }
            _ => Err(AppError::Unauthenticated("sign in to continue")),
        };
    };
    let user = user.clone();
    context.require_recent_auth().await?;
    // Marked first: a retry after a failure half-way still knows what it asked for.
    auth.erasures.mark(user.id).await?;
    context.state.storage.delete(user.id).await?;
    erase_keys_of(context, user.id).await?;
    // Counts kept on the address; a retry no longer knows it, and they lapse anyway.
    auth.lockout.forget(&user.email).await?;
{%- if email %}
    super::email_flows::after_account_erased(context, &user).await?;
{%- endif %}
    context.auth.end_session();
    context.auth.clear_session_cookie();
    tracing::info!(user.id = %user.id, "Account erased at its owner's request");
    Ok(true)
}

/// Deletes the Redis keys named after `user`: its sessions{% if email %}, links and known devices{% endif %}.
async fn erase_keys_of(context: &Context, user: UserId) -> Result<(), AppError> {
    let auth = &context.state.auth;
    auth.sessions.revoke_all(user).await?;
    auth.events.raise(user, AccountEventKind::AccountDeleted, Ended::All).await;
    auth.second_factors.forget(user).await?;
{%- if email %}
    super::email_flows::forget_links_and_devices(context, user).await?;
{%- endif %}
    Ok(())
}
