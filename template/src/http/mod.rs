//! HTTP routes: health probes, the GraphQL endpoint{% if auth %} (POST, and WebSocket for
//! subscriptions){% endif %} and the files of its IDE.

mod accept;
mod graphiql;
mod graphql;
mod headers;
mod health;
mod metrics;
mod settings;
{%- if auth %}
pub mod websocket;
{%- endif %}

use actix_web::{middleware::from_fn, web};

pub use graphql::GraphqlEndpoint;
pub use metrics::record_metrics;
pub use settings::HttpSettings;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health/live", web::get().to(health::live))
        .route("/health/ready", web::get().to(health::ready))
        .route("/graphiql/{file}", web::get().to(graphiql::asset))
        .service(
            web::resource("/graphql")
                .wrap(from_fn(headers::graphql_headers))
                .route(web::post().to(graphql::post))
{%- if auth %}
                .route(web::get().guard(websocket::is_upgrade).to(websocket::upgrade))
{%- endif %}
                .route(web::get().to(graphql::get))
                .default_service(web::to(graphql::other_method)),
        );
}
