//! GraphiQL, served by the app itself from `static/graphiql/`: the npm builds vendored
//! there (pinned, with their checksums in `SHA256SUMS`) and a page of our own. The IDE
//! works with no network, and its Content-Security-Policy lets the page load nothing
//! from another host. Served only while `graphql.graphiql` is on (development).

use actix_web::{HttpResponse, http::header, web};

use super::GraphqlEndpoint;

/// One file of the IDE, compiled into the binary.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $content_type:literal) => {
        Asset {
            name: $name,
            content_type: $content_type,
            bytes: include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/static/graphiql/",
                $name
            )),
        }
    };
}

const ASSETS: [Asset; 6] = [
    asset!("graphiql.min.js", "text/javascript; charset=utf-8"),
    asset!("graphiql.min.css", "text/css; charset=utf-8"),
    asset!("react.production.min.js", "text/javascript; charset=utf-8"),
    asset!(
        "react-dom.production.min.js",
        "text/javascript; charset=utf-8"
    ),
    asset!("start.js", "text/javascript; charset=utf-8"),
    asset!("page.css", "text/css; charset=utf-8"),
];

const PAGE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/static/graphiql/index.html"
));

/// Scripts and styles from this origin only (no inline code), fonts and images from
/// this origin or `data:` (the stylesheet embeds its fonts), requests to this origin.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; font-src 'self' data:; img-src 'self' data:; connect-src 'self'; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The IDE's page, for `GET /graphql`.
pub fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .body(PAGE)
}

/// `GET /graphiql/{file}`: a file of the IDE, or 404.
pub async fn asset(file: web::Path<String>, endpoint: web::Data<GraphqlEndpoint>) -> HttpResponse {
    let found = ASSETS.iter().find(|asset| asset.name == file.as_str());
    match found {
        Some(asset) if endpoint.graphiql() => HttpResponse::Ok()
            .content_type(asset.content_type)
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            // Development only: a reload picks up a new build without stale copies.
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .body(asset.bytes),
        _ => HttpResponse::NotFound().finish(),
    }
}
