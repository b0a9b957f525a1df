//! The session cookie, and where a request's session token comes from. A sign-in waiting
//! for its second factor has a cookie of the same kind, `pending-login`.
//!
//! Browsers get an `HttpOnly`, `SameSite=Strict`, `Path=/` cookie, `Secure` and named with
//! the `__Host-` prefix in production (OWASP ASVS 5.0 V3.3). `Strict` rather than `Lax`:
//! the cookie then never rides along a navigation from another site, and an API loses
//! nothing by it, since its front end calls it from its own pages. API clients ask
//! `login` for the token itself and send it as `Authorization: Bearer <token>` instead.

use std::time::Duration;

use actix_web::{
    HttpRequest,
    cookie::{Cookie, SameSite, time},
    http::header,
};

#[derive(Debug, Clone)]
pub struct SessionCookie {
    name: &'static str,
    secure: bool,
    max_age: Duration,
}

impl SessionCookie {
    /// The session cookie.
    pub fn new(secure: bool, max_age: Duration) -> Self {
        let name = if secure { "__Host-session" } else { "session" };
        Self {
            name,
            secure,
            max_age,
        }
    }

    /// The cookie of a sign-in waiting for its second factor.
    pub fn pending_login(secure: bool, max_age: Duration) -> Self {
        let name = if secure {
            "__Host-pending-login"
        } else {
            "pending-login"
        };
        Self {
            name,
            secure,
            max_age,
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn set(&self, token: &str) -> Cookie<'static> {
        let max_age =
            time::Duration::seconds(i64::try_from(self.max_age.as_secs()).unwrap_or(i64::MAX));
        self.base(token.to_string()).max_age(max_age).finish()
    }

    pub fn clear(&self) -> Cookie<'static> {
        self.base(String::new())
            .max_age(time::Duration::ZERO)
            .finish()
    }

    fn base(&self, value: String) -> actix_web::cookie::CookieBuilder<'static> {
        Cookie::build(self.name(), value)
            .path("/")
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Strict)
    }

    /// The bearer token if there is one, else the session cookie.
    pub fn token_from(&self, request: &HttpRequest) -> Option<PresentedToken> {
        let bearer = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(|token| PresentedToken {
                value: token.trim().to_string(),
                from_cookie: false,
            });
        bearer.or_else(|| {
            request.cookie(self.name()).map(|cookie| PresentedToken {
                value: cookie.value().to_string(),
                from_cookie: true,
            })
        })
    }
}

/// A session token as the request carried it.
pub struct PresentedToken {
    pub value: String,
    /// Sent by a browser on its own accord, so possibly on behalf of another site.
    pub from_cookie: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_cookie_is_host_prefixed_secure_and_http_only() {
        let cookie = SessionCookie::new(true, Duration::from_secs(60));
        let set = cookie.set(&"a".repeat(64)).to_string();

        assert!(set.starts_with("__Host-session="), "{set}");
        for attribute in [
            "HttpOnly",
            "Secure",
            "SameSite=Strict",
            "Path=/",
            "Max-Age=60",
        ] {
            assert!(set.contains(attribute), "{attribute} missing in {set}");
        }
        assert!(!set.contains("Domain"), "{set}");
    }

    #[test]
    fn the_pending_login_cookie_is_host_prefixed_in_production_too() {
        let cookie = SessionCookie::pending_login(true, Duration::from_secs(300));

        let set = cookie.set("token").to_string();

        assert!(set.starts_with("__Host-pending-login=token"), "{set}");
        assert!(
            set.contains("HttpOnly") && set.contains("Max-Age=300"),
            "{set}"
        );
    }

    #[test]
    fn clearing_expires_the_cookie_at_once() {
        let cookie = SessionCookie::new(false, Duration::from_secs(60));

        let cleared = cookie.clear().to_string();

        assert!(cleared.starts_with("session=;"), "{cleared}");
        assert!(cleared.contains("Max-Age=0"), "{cleared}");
    }
}
