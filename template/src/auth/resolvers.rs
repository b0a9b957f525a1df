//! Account resolvers, wired into the schema roots in `graphql/schema.rs`.

use chrono::{DateTime, Utc};
use juniper::{GraphQLObject, ID, graphql_object};
use secrecy::SecretString;

use super::events::{AccountEventKind, Ended};
use crate::{
    domain::{Email, Role, UserId},
    error::AppError,
    graphql::Context,
    storage::{
        StorageError,
        users::{User, UserFilter, UserRepository},
    },
};

#[graphql_object]
#[graphql(context = Context)]
impl User {
    fn id(&self) -> ID {
        ID::new(self.id.to_string())
    }

    fn email(&self) -> &str {
        self.email.as_ref()
    }

    fn role(&self) -> Role {
        self.role
    }

    fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }

    /// Why and when an admin disabled the account; null while it may sign in.
    fn disabled(&self) -> Option<super::administration::AccountDisabled> {
        self.disabled.as_ref().map(Into::into)
    }

    /// Whether signing in needs a code from an authenticator app.
    fn second_factor(&self) -> super::second_factor::resolvers::SecondFactorStatus {
        super::second_factor::resolvers::SecondFactorStatus::of(self)
    }
{%- if email %}

    /// Whether the owner followed a confirmation (or password reset) link.
    fn email_confirmed(&self) -> bool {
        self.email_confirmed
    }
{%- endif %}
}

/// The same answer whether or not the address was already registered.
#[derive(GraphQLObject)]
pub struct RegisterPayload {
    pub message: String,
}

#[derive(GraphQLObject)]
#[graphql(context = Context)]
pub struct LoginPayload {
    /// The signed-in user; null while a second factor is required.
    pub user: Option<User>,
    /// The session token, only when `login` was called with `bearer: true`; send it as
    /// `Authorization: Bearer <token>`. Otherwise it travels only in an HttpOnly cookie,
    /// out of reach of the page's scripts.
    pub session_token: Option<String>,
    /// The password was right, and the account asks for a second factor: no session yet.
    /// Call `completeLogin` with a code within 5 minutes.
    pub second_factor_required: bool,
    /// For `bearer: true` clients when a second factor is required: pass it to
    /// `completeLogin`. Browsers get it as an HttpOnly cookie instead.
    pub second_factor_token: Option<String>,
}

#[derive(GraphQLObject)]
#[graphql(context = Context)]
pub struct UserPage {
    pub users: Vec<User>,
    /// Pass as `after` to get the next page; null on the last page.
    pub next_cursor: Option<ID>,
}

const REGISTERED: &str =
    "If this address was not registered yet, the account now exists: sign in to continue.";
const BAD_CREDENTIALS: &str = "invalid email or password";

pub async fn me(context: &Context) -> Result<User, AppError> {
    context.require_user().await.cloned()
}

pub async fn users(
    context: &Context,
    first: i32,
    after: Option<ID>,
    filter: UserFilter,
) -> Result<UserPage, AppError> {
    context.require_role(Role::Admin).await?;
    let limit = page_size(first)?;
    let after = after.map(|id| UserId::parse(&id)).transpose()?;
    let page = context.state.storage.list(&filter, after, limit).await?;
    Ok(UserPage {
        users: page.users,
        next_cursor: page.next.map(|id| ID::new(id.to_string())),
    })
}

/// The page size `first` asks for, 1 to 100.
///
/// # Errors
/// `BadUserInput` outside that range.
pub fn page_size(first: i32) -> Result<usize, AppError> {
    usize::try_from(first)
        .ok()
        .filter(|n| (1..=100).contains(n))
        .ok_or_else(|| AppError::BadUserInput("`first` must be between 1 and 100".into()))
}

/// Never reveals whether `email` is taken: the answer and the work (one bcrypt hash) are
/// the same either way (OWASP ASVS 5.0 V6.3.8).
pub async fn register(
    context: &Context,
    email: String,
    password: String,
) -> Result<RegisterPayload, AppError> {
    context.auth.claim_password_work()?;
    let auth = &context.state.auth;
    let email = Email::parse(&email)?;
    // Each registration costs a bcrypt hash: cap them per client like logins.
    auth.limit_client("register", context.auth.client()).await?;
    let hash = auth
        .passwords
        .hash_new(SecretString::from(password), &email)
        .await?;
    let user = User::new(email, hash);
    let outcome = context.state.storage.insert(&user).await;
{%- if email %}
    super::email_flows::after_registration(context, &user, &outcome).await?;
{%- endif %}
    match outcome {
        Ok(()) | Err(StorageError::Conflict) => Ok(RegisterPayload {
            message: REGISTERED.into(),
        }),
        Err(error) => Err(error.into()),
    }
}

/// Starts a session. Browsers get it as a cookie; with `bearer`, API clients get the
/// token in the answer instead.
pub async fn login(
    context: &Context,
    email: String,
    password: String,
    bearer: bool,
) -> Result<LoginPayload, AppError> {
    context.auth.claim_password_work()?;
    let auth = &context.state.auth;
    let email = Email::parse(&email)?;
    let attempt = auth
        .lockout
        .admit(context.auth.client(), &email, "login")
        .await
        .inspect_err(super::metrics::login_refused)?;

    let user = context.state.storage.find_by_email(&email).await?;
    let hash = user.as_ref().map(|user| user.password_hash.as_str());
    let verified = auth
        .passwords
        .verify(&SecretString::from(password), hash)
        .await?;
    let user = user.filter(|_| verified);
    // A disabled account gets the wrong password's answer: another would confirm it.
    if user.as_ref().is_some_and(|user| user.disabled.is_some()) {
        auth.lockout.failed(attempt).await?;
        super::metrics::login("disabled");
        return Err(AppError::Unauthenticated(BAD_CREDENTIALS));
    }
{%- if email %}
    // Until the address is confirmed, the right password gets the wrong one's answer,
    // and counts like it: another answer would confirm a guess (OWASP ASVS 5.0 V6.3.8).
    if user
        .as_ref()
        .is_some_and(|user| !super::email_flows::may_sign_in(context, user))
    {
        auth.lockout.failed(attempt).await?;
        super::metrics::login("unconfirmed");
        return Err(AppError::Unauthenticated(BAD_CREDENTIALS));
    }
{%- endif %}
    let Some(user) = user else {
        auth.lockout.failed(attempt).await?;
        super::metrics::login("wrong_credentials");
        return Err(AppError::Unauthenticated(BAD_CREDENTIALS));
    };
    auth.lockout.succeeded(attempt).await?;
    if user.second_factor.is_some() {
        return super::second_factor::resolvers::await_second_factor(context, &user, bearer).await;
    }
    start_session(context, user, bearer).await
}

/// Signs `user` in: a session for this client, as a cookie or (`bearer`) in the answer.
pub(super) async fn start_session(
    context: &Context,
    user: User,
    bearer: bool,
) -> Result<LoginPayload, AppError> {
    let auth = &context.state.auth;
    // A session the client arrived with is dropped: the signed-in session is always new.
    let mut ended = Ended::None;
    if let Some(previous) = context.auth.session() {
        auth.sessions.revoke(previous).await?;
        ended = Ended::Only(previous.id());
    }
    context.auth.end_session();
    let token = auth.sessions.create(user.id, context.auth.origin()).await?;
    auth.events.raise(user.id, AccountEventKind::SignedIn, ended).await;
    let session_token = if bearer {
        Some(token.expose().to_string())
    } else {
        context.auth.set_session_cookie(token);
        None
    };
{%- if email %}
    super::email_flows::after_sign_in(context, &user).await?;
{%- endif %}
    super::metrics::login("ok");
    Ok(LoginPayload {
        user: Some(user),
        session_token,
        second_factor_required: false,
        second_factor_token: None,
    })
}

pub async fn logout(context: &Context) -> Result<bool, AppError> {
    context.require_user().await?;
    if let Some(session) = context.auth.session() {
        let auth = &context.state.auth;
        auth.sessions.revoke(session).await?;
        let ended = Ended::Only(session.id());
        auth.events.raise(session.user_id, AccountEventKind::SessionRevoked, ended).await;
    }
    context.auth.end_session();
    context.auth.clear_session_cookie();
    Ok(true)
}

/// Ends every session of the user, this one included.
pub async fn logout_everywhere(context: &Context) -> Result<bool, AppError> {
    let user = context.require_user().await?;
    let auth = &context.state.auth;
    auth.sessions.revoke_all(user.id).await?;
    auth.events.raise(user.id, AccountEventKind::SessionRevoked, Ended::All).await;
    context.auth.end_session();
    context.auth.clear_session_cookie();
    Ok(true)
}

/// Revokes every session (a thief's included), then signs this client in afresh. Wrong
/// current passwords count like failed logins: a stolen session gets no more guesses
/// than a stranger.
pub async fn change_password(
    context: &Context,
    current_password: String,
    new_password: String,
) -> Result<bool, AppError> {
    let user = context
        .prove_password(current_password, "change_password")
        .await?;
    let auth = &context.state.auth;
    let hash = auth
        .passwords
        .hash_new(SecretString::from(new_password), &user.email)
        .await?;
    context
        .state
        .storage
        .update_password_hash(user.id, &hash)
        .await?;
    auth.sessions.revoke_all(user.id).await?;
    auth.events.raise(user.id, AccountEventKind::PasswordChanged, Ended::All).await;
    context.auth.end_session();
    context
        .auth
        .set_session_cookie(auth.sessions.create(user.id, context.auth.origin()).await?);
{%- if email %}
    super::email_flows::after_password_change(context, user).await?;
{%- endif %}
    Ok(true)
}
