//! HTTP routes: health probes, the GraphQL endpoint and the files of its IDE.

mod accept;
mod graphiql;
mod graphql;
mod headers;
mod health;
mod metrics;
mod settings;

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
                .route(web::get().to(graphql::get))
                .default_service(web::to(graphql::other_method)),
        );
}
