//! Authorization guards for resolvers: `context.require_user().await?` or
//! `context.require_role(Role::Admin).await?`.

use secrecy::SecretString;

use crate::{
    domain::Role,
    error::AppError,
    graphql::Context,
    storage::users::{User, UserRepository},
};

impl Context {
    /// The signed-in user, or `None` for anonymous callers, deleted accounts, and once an
    /// earlier operation of the request ended its session.
    ///
    /// # Errors
    /// `Internal` if storage fails.
    pub async fn current_user(&self) -> Result<Option<&User>, AppError> {
        let Some(session) = self.auth.session() else {
            return Ok(None);
        };
        let user = self
            .auth
            .user
            .get_or_try_init(|| self.state.storage.find_by_id(session.user_id))
            .await?;
        // Disabling revokes the sessions too; this covers a request already under way.
        Ok(user.as_ref().filter(|user| user.disabled.is_none()))
    }

    /// # Errors
    /// `Unauthenticated` without a live session.
    pub async fn require_user(&self) -> Result<&User, AppError> {
        self.current_user()
            .await?
            .ok_or(AppError::Unauthenticated("sign in to continue"))
    }

    /// Checks the signed-in user's `password`, as `action` in the limits' metrics: one
    /// password operation per request, counted against the account and the client like
    /// a login, so a stolen session gets no more guesses than a stranger.
    ///
    /// # Errors
    /// `Unauthenticated` without a live session, `RateLimited` past the limits,
    /// `BadUserInput` when the password is wrong.
    pub async fn prove_password(
        &self,
        password: String,
        action: &'static str,
    ) -> Result<&User, AppError> {
        self.auth.claim_password_work()?;
        let auth = &self.state.auth;
        let user = self.require_user().await?;
        let attempt = auth
            .lockout
            .admit(self.auth.client(), &user.email, action)
            .await?;
        let verified = auth
            .passwords
            .verify(&SecretString::from(password), Some(&user.password_hash))
            .await?;
        if !verified {
            auth.lockout.failed(attempt).await?;
            return Err(AppError::BadUserInput("the password is wrong".into()));
        }
        auth.lockout.succeeded(attempt).await?;
        Ok(user)
    }

    /// The signed-in user, if this session proved its password within
    /// `auth.reauth_window_secs`: the guard of sensitive operations.
    ///
    /// # Errors
    /// `Unauthenticated` without a live session, `ReauthenticationRequired` when the
    /// last proof is older.
    pub async fn require_recent_auth(&self) -> Result<&User, AppError> {
        let user = self.require_user().await?;
        let window = self.state.auth.settings.reauth_window;
        match self.auth.session() {
            Some(session) if session.authenticated_within(window) => Ok(user),
            _ => Err(AppError::ReauthenticationRequired),
        }
    }

    /// # Errors
    /// `Unauthenticated` without a live session, `Forbidden` without the role.
    pub async fn require_role(&self, role: Role) -> Result<&User, AppError> {
        let user = self.require_user().await?;
        if user.role == role {
            Ok(user)
        } else {
            Err(AppError::Forbidden)
        }
    }
}
