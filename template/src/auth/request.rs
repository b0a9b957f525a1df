//! What one HTTP request knows about its caller. A batch shares it across operations.
//!
//! Resolvers cannot set headers (juniper has no access to the HTTP response), so they
//! record cookie changes here and the handler applies them after execution.

use std::sync::{
    Mutex,
    atomic::{AtomicBool, Ordering},
};

use actix_web::{HttpRequest, HttpResponseBuilder};
use tokio::sync::OnceCell;

use super::{
    Auth,
    client::ClientBuckets,
    cookie::SessionCookie,
    origin,
    sessions::{ActiveSession, SessionToken},
};
use crate::{error::AppError, storage::users::User};

enum CookieChange {
    Set(SessionToken),
    Clear,
}

pub struct RequestAuth {
    session: Option<ActiveSession>,
    /// Set by a mutation that ended the session (`logout`, a password change…): the
    /// operations after it in the same request run as an anonymous caller.
    session_ended: AtomicBool,
    /// The session's user, loaded on first use.
    pub(super) user: OnceCell<Option<User>>,
    client: ClientBuckets,
    /// Whether an operation that costs a bcrypt hash already ran in this request.
    password_work_claimed: AtomicBool,
    cookie_change: Mutex<Option<CookieChange>>,
}

impl RequestAuth {
    /// A caller with no session: where `from_request` starts from.
    fn anonymous() -> Self {
        Self {
            session: None,
            session_ended: AtomicBool::new(false),
            user: OnceCell::new(),
            client: ClientBuckets::unknown(),
            password_work_claimed: AtomicBool::new(false),
            cookie_change: Mutex::new(None),
        }
    }

    /// Resolves the request's session token, if any, against Redis.
    ///
    /// # Errors
    /// `Forbidden` for a request carrying the session cookie from a page of another
    /// origin (see `origin.rs`); `Unavailable` when a token was sent and Redis does not
    /// answer.
    pub async fn from_request(request: &HttpRequest, auth: &Auth) -> Result<Self, AppError> {
        let session = match auth.cookie.token_from(request) {
            Some(token)
                if token.from_cookie
                    && !origin::may_use_cookie(request, &auth.settings.allowed_origins) =>
            {
                let origin = request.headers().get(actix_web::http::header::ORIGIN);
                tracing::warn!(
                    ?origin,
                    "Refused a cookie-authenticated request from another origin"
                );
                return Err(AppError::Forbidden);
            }
            Some(token) => auth.sessions.resolve(&token.value).await?,
            None => None,
        };
        Ok(Self {
            session,
            client: crate::client_ip::of_request(request)
                .map_or_else(ClientBuckets::unknown, |address| {
                    ClientBuckets::of(address, auth.settings.ipv6_factors())
                }),
            ..Self::anonymous()
        })
    }

    /// The session the request came with, unless an operation before ended it.
    pub fn session(&self) -> Option<&ActiveSession> {
        self.session
            .as_ref()
            .filter(|_| !self.session_ended.load(Ordering::Acquire))
    }

    /// The client's rate-limit buckets (see `client.rs`).
    pub fn client(&self) -> &ClientBuckets {
        &self.client
    }

    /// Makes the rest of the request anonymous, after its session was ended or replaced.
    pub fn end_session(&self) {
        self.session_ended.store(true, Ordering::Release);
    }

    /// Claims the request's one operation that costs a bcrypt hash (`login`, `register`,
    /// `changePassword`, `resetPassword`): without this cap one request could queue any
    /// number of hashes through a batch or aliases, starving everyone's logins.
    ///
    /// # Errors
    /// `BadUserInput` for every claim after the first, before any work is done.
    pub fn claim_password_work(&self) -> Result<(), AppError> {
        if self.password_work_claimed.swap(true, Ordering::AcqRel) {
            return Err(AppError::BadUserInput(
                "one login, registration or password change per request: send the others in requests of their own".into(),
            ));
        }
        Ok(())
    }

    pub fn set_session_cookie(&self, token: SessionToken) {
        self.record(CookieChange::Set(token));
    }

    pub fn clear_session_cookie(&self) {
        self.record(CookieChange::Clear);
    }

    fn record(&self, change: CookieChange) {
        *self
            .cookie_change
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(change);
    }

    /// Adds the `Set-Cookie` a resolver asked for, if any.
    pub fn write_cookie(&self, response: &mut HttpResponseBuilder, cookie: &SessionCookie) {
        let change = self
            .cookie_change
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        match change {
            Some(CookieChange::Set(token)) => response.cookie(cookie.set(&token)),
            Some(CookieChange::Clear) => response.cookie(cookie.clear()),
            None => response,
        };
    }
}
