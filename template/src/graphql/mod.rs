//! The GraphQL API: schema roots, the per-request context, request limits and the
//! operation names traces carry.

pub mod context;
pub mod limits;
pub mod metrics;
pub mod operation;
pub mod schema;
mod settings;

pub use context::Context;
pub use schema::Schema;
pub use settings::GraphqlSettings;
