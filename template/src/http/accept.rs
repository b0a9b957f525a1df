//! The media type of a `/graphql` answer, chosen from the request's `Accept` header as
//! GraphQL over HTTP says.
//!
//! `application/graphql-response+json` lets the status code tell a document that could
//! not run (400) from one that ran (200). Legacy `application/json` clients read errors
//! from the body only, so a document that could not run still gets 200 there. A request
//! with no `Accept`, or `*/*`, is such a legacy client until the spec's watershed.

use actix_web::{
    HttpRequest, HttpResponse,
    http::{
        StatusCode,
        header::{self, HeaderValue},
    },
};

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
const JSON: &str = "application/json";
/// Ranges answered with legacy JSON: wildcards stand for it until the watershed.
const LEGACY_RANGES: [&str; 3] = [JSON, "application/*", "*/*"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMedia {
    GraphqlResponseJson,
    Json,
}

impl ResponseMedia {
    /// The type the request accepts most, the newer one on a tie; `None` when it
    /// accepts neither (answered with 406).
    pub fn negotiate(request: &HttpRequest) -> Option<Self> {
        let ranges = request
            .headers()
            .get_all(header::ACCEPT)
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','));
        Self::from_ranges(ranges)
    }

    /// From the media ranges of `Accept`, without allocating: this runs on every request.
    fn from_ranges<'a>(ranges: impl Iterator<Item = &'a str>) -> Option<Self> {
        let (mut graphql_response, mut json) = (0.0_f32, 0.0_f32);
        let mut any_range = false;
        for range in ranges.filter(|range| !range.trim().is_empty()) {
            any_range = true;
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or_default().trim();
            let quality = parts
                .filter_map(|parameter| parameter.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0)
                .clamp(0.0, 1.0);
            if media.eq_ignore_ascii_case(GRAPHQL_RESPONSE_JSON) {
                graphql_response = graphql_response.max(quality);
            } else if LEGACY_RANGES
                .iter()
                .any(|legacy| media.eq_ignore_ascii_case(legacy))
            {
                json = json.max(quality);
            }
        }
        if !any_range {
            return Some(Self::Json);
        }
        if graphql_response > 0.0 && graphql_response >= json {
            Some(Self::GraphqlResponseJson)
        } else if json > 0.0 {
            Some(Self::Json)
        } else {
            None
        }
    }

    /// The status of an answer in which no operation could run (a document that does
    /// not parse or validate, variables that do not coerce).
    pub fn status_when_nothing_ran(self) -> StatusCode {
        match self {
            Self::GraphqlResponseJson => StatusCode::BAD_REQUEST,
            Self::Json => StatusCode::OK,
        }
    }

    /// Labels a JSON answer with this type; caches that keep it must key it by `Accept`.
    pub fn label(self, response: &mut HttpResponse) {
        let headers = response.headers_mut();
        if self == Self::GraphqlResponseJson {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/graphql-response+json; charset=utf-8"),
            );
        }
        headers.insert(header::VARY, HeaderValue::from_static("Accept"));
    }
}

#[cfg(test)]
mod tests {
    use super::{ResponseMedia::*, *};

    #[test]
    fn the_newer_type_wins_when_accepted_at_least_as_much() {
        for accept in [
            "application/graphql-response+json",
            "application/graphql-response+json, application/json;q=0.9",
            "application/json, application/graphql-response+json",
            "Application/GraphQL-Response+JSON; charset=utf-8",
        ] {
            assert_eq!(
                ResponseMedia::from_ranges(accept.split(',')),
                Some(GraphqlResponseJson),
                "{accept}"
            );
        }
    }

    #[test]
    fn legacy_json_serves_clients_that_ask_for_it_or_for_anything() {
        for accept in [
            "",
            "application/json",
            "*/*",
            "application/*",
            "text/html, */*;q=0.1",
            "application/graphql-response+json;q=0.5, application/json",
            "application/graphql-response+json;q=0, */*",
        ] {
            assert_eq!(
                ResponseMedia::from_ranges(accept.split(',')),
                Some(Json),
                "{accept}"
            );
        }
    }

    #[test]
    fn neither_type_accepted_is_not_acceptable() {
        for accept in [
            "text/html",
            "application/xml, text/*",
            "application/json;q=0",
            "*/*;q=0",
        ] {
            assert_eq!(
                ResponseMedia::from_ranges(accept.split(',')),
                None,
                "{accept}"
            );
        }
    }
}
