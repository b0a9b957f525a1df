//! Schema roots. Each module adds its fields here with one delegating resolver per field,
//! so the public API is readable in one file.

use juniper::{EmptyMutation, EmptySubscription, RootNode, graphql_object};

use super::Context;
use crate::{
    config::GraphqlSettings,
    health::{self, HealthReport},
};

pub struct Query;

#[graphql_object]
#[graphql(context = Context)]
impl Query {
    /// Version of this API (the crate version).
    fn api_version() -> &'static str {
        env!("CARGO_PKG_VERSION")
    }

    /// Readiness of the service and of each dependency it needs.
    async fn health(context: &Context) -> HealthReport {
        health::readiness(&context.state).await
    }
}

pub type Schema = RootNode<Query, EmptyMutation<Context>, EmptySubscription<Context>>;

fn roots() -> Schema {
    Schema::new(Query, EmptyMutation::new(), EmptySubscription::new())
}

/// The schema with the configured depth and field limits, which juniper enforces while
/// parsing, before validation or execution.
pub fn build(settings: &GraphqlSettings) -> Schema {
    let schema = roots()
        .limit_depth(settings.max_depth)
        .limit_fields(settings.max_fields);
    if settings.introspection {
        schema
    } else {
        schema.disable_introspection()
    }
}

/// The schema in SDL, as printed by the `schema` subcommand.
pub fn sdl() -> String {
    roots().as_sdl()
}
