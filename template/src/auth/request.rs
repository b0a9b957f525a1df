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
    device, origin,
    sessions::{ActiveSession, SessionOrigin, SessionToken},
};
use crate::{domain::UserId, error::AppError, storage::users::User};

enum CookieChange {
    /// Sets the cookie to this token.
    Set(String),
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
    /// The device and address a session started by this request records.
    origin: SessionOrigin,
    /// The user a well-formed token names, whether or not its session lives: lets a
    /// repeated `deleteAccount` see that its account is already gone.
    presented_user: Option<UserId>,
    /// Whether an operation that costs a bcrypt hash already ran in this request.
    password_work_claimed: AtomicBool,
    /// The token of a sign-in waiting for its second factor, from its cookie.
    pending_login: Option<String>,
    cookie_change: Mutex<Option<CookieChange>>,
    pending_cookie_change: Mutex<Option<CookieChange>>,
}

impl RequestAuth {
    /// A caller with no session: where `from_request` starts from.
    pub(crate) fn anonymous() -> Self {
        Self {
            session: None,
            session_ended: AtomicBool::new(false),
            user: OnceCell::new(),
            client: ClientBuckets::unknown(),
            origin: SessionOrigin {
                device: device::label(None),
                client: ClientBuckets::unknown().finest().to_string(),
            },
            presented_user: None,
            password_work_claimed: AtomicBool::new(false),
            pending_login: None,
            cookie_change: Mutex::new(None),
            pending_cookie_change: Mutex::new(None),
        }
    }

    /// Resolves the request's session token, if any, against Redis.
    ///
    /// # Errors
    /// `Forbidden` for a request carrying the session cookie from a page of another
    /// origin (see `origin.rs`); `Unavailable` when a token was sent and Redis does not
    /// answer.
    pub async fn from_request(request: &HttpRequest, auth: &Auth) -> Result<Self, AppError> {
        let token = auth.cookie.token_from(request);
        let presented_user = token
            .as_ref()
            .and_then(|token| SessionToken::parse(&token.value))
            .map(|(user, _)| user);
        let session = match token {
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
        let client = crate::client_ip::of_request(request)
            .map_or_else(ClientBuckets::unknown, |address| {
                ClientBuckets::of(address, auth.settings.ipv6_factors())
            });
        let user_agent = request
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|value| value.to_str().ok());
        // Like the session cookie, the pending sign-in's only counts from allowed pages.
        let pending_login = request
            .cookie(auth.pending_cookie.name())
            .filter(|_| origin::may_use_cookie(request, &auth.settings.allowed_origins))
            .map(|cookie| cookie.value().to_string());
        Ok(Self {
            session,
            pending_login,
            origin: SessionOrigin {
                device: device::label(user_agent),
                client: client.finest().to_string(),
            },
            client,
            presented_user,
            ..Self::anonymous()
        })
    }

    /// Takes the session of the bearer `token` when the caller came without one: a
    /// WebSocket client sends its token in `connection_init`, as browsers cannot set
    /// headers on a WebSocket.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn or_bearer(mut self, token: &str, auth: &Auth) -> Result<Self, AppError> {
        if self.session.is_none() {
            self.session = auth.sessions.resolve(token).await?;
            self.presented_user = SessionToken::parse(token).map(|(user, _)| user);
        }
        Ok(self)
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

    /// Where a session this request starts comes from.
    pub fn origin(&self) -> &SessionOrigin {
        &self.origin
    }

    /// The user named by the token the request presented, live or not.
    pub fn presented_user(&self) -> Option<UserId> {
        self.presented_user
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

    /// The token of the sign-in waiting for its second factor, from its cookie.
    pub fn pending_login(&self) -> Option<&str> {
        self.pending_login.as_deref()
    }

    pub fn set_session_cookie(&self, token: SessionToken) {
        record(
            &self.cookie_change,
            CookieChange::Set(token.expose().to_string()),
        );
    }

    pub fn clear_session_cookie(&self) {
        record(&self.cookie_change, CookieChange::Clear);
    }

    /// Hands a pending sign-in's token to its client: in the answer for a `bearer`
    /// client, in the pending-login cookie alone for a browser (the answer's token is
    /// then `None`).
    pub fn hand_over_pending_login(&self, token: &str, bearer: bool) -> Option<String> {
        if bearer {
            return Some(token.to_string());
        }
        record(
            &self.pending_cookie_change,
            CookieChange::Set(token.to_string()),
        );
        None
    }

    pub fn clear_pending_login_cookie(&self) {
        record(&self.pending_cookie_change, CookieChange::Clear);
    }

    /// Adds the `Set-Cookie` headers resolvers asked for, if any.
    pub fn write_cookies(&self, response: &mut HttpResponseBuilder, auth: &Auth) {
        write(response, &self.cookie_change, &auth.cookie);
        write(response, &self.pending_cookie_change, &auth.pending_cookie);
    }
}

fn record(slot: &Mutex<Option<CookieChange>>, change: CookieChange) {
    *slot
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(change);
}

fn write(
    response: &mut HttpResponseBuilder,
    slot: &Mutex<Option<CookieChange>>,
    cookie: &SessionCookie,
) {
    let change = slot
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    match change {
        Some(CookieChange::Set(token)) => response.cookie(cookie.set(&token)),
        Some(CookieChange::Clear) => response.cookie(cookie.clear()),
        None => response,
    };
}
