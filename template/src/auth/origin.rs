//! Cross-site request forgery in depth (OWASP ASVS 5.0 V3.5).
//!
//! A browser attaches the session cookie to any request for this site, whichever page
//! sends it. Operations run only on POST with `Content-Type: application/json`, which a
//! page of another origin cannot send without a CORS preflight this service never grants,
//! and the cookie is `SameSite=Strict`. On top of that, a request that authenticates with
//! the cookie must come from this origin or one listed in `auth.allowed_origins`, judged
//! by what the browser says (the check of Go's `http.CrossOriginProtection`):
//! `Sec-Fetch-Site` in current browsers, `Origin` against `Host` in older ones. Clients
//! that are not browsers send neither header and pass; Bearer tokens are not affected.

use actix_web::{HttpRequest, http::header};
use serde::{Deserialize, Deserializer, de::Error as _};

const SEC_FETCH_SITE: header::HeaderName = header::HeaderName::from_static("sec-fetch-site");

/// Origins (`https://app.example.com`) of front ends whose pages may send
/// cookie-authenticated requests from another origin; parsed at start-up.
#[derive(Debug, Clone, Default)]
pub struct AllowedOrigins(Vec<String>);

impl AllowedOrigins {
    /// # Errors
    /// Names the first entry that is not `http(s)://host[:port]`.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        entries
            .iter()
            .map(|entry| {
                let origin = entry.trim().trim_end_matches('/').to_ascii_lowercase();
                let host = origin
                    .strip_prefix("https://")
                    .or_else(|| origin.strip_prefix("http://"));
                match host {
                    Some(host) if is_host_and_port(host) => Ok(origin),
                    _ => Err(format!(
                        "`{entry}` is not an origin such as https://app.example.com or http://localhost:3000"
                    )),
                }
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    fn allows(&self, origin: &str) -> bool {
        self.0
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(origin))
    }
}

impl<'de> Deserialize<'de> for AllowedOrigins {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let entries = crate::setting::list(deserializer)?;
        Self::parse(&entries).map_err(D::Error::custom)
    }
}

fn is_host_and_port(text: &str) -> bool {
    !text.is_empty()
        && !text
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '/' | '?' | '#' | '@'))
}

/// Whether a request carrying the session cookie comes from a page allowed to use it.
pub fn may_use_cookie(request: &HttpRequest, allowed: &AllowedOrigins) -> bool {
    let headers = request.headers();
    let text = |name: &header::HeaderName| headers.get(name).and_then(|value| value.to_str().ok());
    let origin = text(&header::ORIGIN);
    let listed = || origin.is_some_and(|origin| allowed.allows(origin));
    match text(&SEC_FETCH_SITE) {
        // Typed into the address bar, or sent by a page of this very origin.
        Some("same-origin" | "none") => true,
        Some(_) => listed(),
        None => match origin {
            None => true,
            Some(origin) => {
                let host = origin.split_once("://").map(|(_, host)| host);
                host.is_some_and(|host| {
                    text(&header::HOST).is_some_and(|own| own.eq_ignore_ascii_case(host))
                }) || listed()
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn allowed() -> AllowedOrigins {
        AllowedOrigins::parse(&["https://app.example.com/".into()]).unwrap()
    }

    fn request(headers: &[(&'static str, &'static str)]) -> HttpRequest {
        headers
            .iter()
            .fold(
                TestRequest::post().insert_header(("Host", "api.example.com")),
                |r, h| r.insert_header(*h),
            )
            .to_http_request()
    }

    #[test]
    fn same_origin_and_listed_origins_pass() {
        for headers in [
            vec![("Sec-Fetch-Site", "same-origin")],
            vec![
                ("Sec-Fetch-Site", "same-site"),
                ("Origin", "https://app.example.com"),
            ],
            vec![("Origin", "https://api.example.com")],
            vec![("Origin", "https://APP.example.com")],
            vec![],
        ] {
            assert!(
                may_use_cookie(&request(&headers), &allowed()),
                "{headers:?}"
            );
        }
    }

    #[test]
    fn other_origins_are_refused() {
        for headers in [
            vec![
                ("Sec-Fetch-Site", "cross-site"),
                ("Origin", "https://evil.example"),
            ],
            vec![
                ("Sec-Fetch-Site", "same-site"),
                ("Origin", "https://api.example.com"),
            ],
            vec![("Sec-Fetch-Site", "cross-site")],
            vec![("Origin", "https://evil.example")],
            vec![("Origin", "null")],
        ] {
            assert!(
                !may_use_cookie(&request(&headers), &allowed()),
                "{headers:?}"
            );
        }
    }

    #[test]
    fn origins_parse_and_anything_else_is_named() {
        let error = AllowedOrigins::parse(&["https://app.example.com/login".into()]).unwrap_err();

        assert!(error.contains("`https://app.example.com/login`"), "{error}");
        assert!(AllowedOrigins::parse(&["app.example.com".into()]).is_err());
        assert!(AllowedOrigins::parse(&["http://localhost:3000".into()]).is_ok());
    }
}
