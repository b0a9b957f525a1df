//! What one GraphQL request knows about its caller.
//!
//! Resolvers cannot set headers (juniper has no access to the HTTP response), so they
//! record cookie changes here and the handler applies them after execution.

use std::sync::Mutex;

use actix_web::{HttpRequest, HttpResponseBuilder};
use tokio::sync::OnceCell;

use super::{
    Auth,
    cookie::SessionCookie,
    sessions::{ActiveSession, SessionToken},
};
use crate::storage::users::User;

enum CookieChange {
    Set(SessionToken),
    Clear,
}

pub struct RequestAuth {
    session: Option<ActiveSession>,
    /// The session's user, loaded on first use.
    pub(super) user: OnceCell<Option<User>>,
    client_ip: String,
    cookie_change: Mutex<Option<CookieChange>>,
}

impl RequestAuth {
    /// A caller with no session (the `schema` command, tests of resolvers).
    pub fn anonymous() -> Self {
        Self {
            session: None,
            user: OnceCell::new(),
            client_ip: "unknown".into(),
            cookie_change: Mutex::new(None),
        }
    }

    /// Resolves the request's session token, if any, against Redis.
    ///
    /// # Errors
    /// `Unavailable` when a token was sent and Redis does not answer.
    pub async fn from_request(
        request: &HttpRequest,
        auth: &Auth,
    ) -> Result<Self, crate::error::AppError> {
        let session = match auth.cookie.token_from(request) {
            Some(token) => auth.sessions.resolve(&token).await?,
            None => None,
        };
        let connection = request.connection_info();
        let client_ip = if auth.settings.trust_forwarded_headers {
            connection.realip_remote_addr()
        } else {
            connection.peer_addr()
        }
        .unwrap_or("unknown")
        .to_string();
        Ok(Self {
            session,
            client_ip,
            ..Self::anonymous()
        })
    }

    pub fn session(&self) -> Option<&ActiveSession> {
        self.session.as_ref()
    }

    pub fn client_ip(&self) -> &str {
        &self.client_ip
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
