//! The GraphQL API: schema roots, the per-request context, request limits, the
//! operation names traces carry, and how two versions of the schema differ.

pub mod context;
pub mod limits;
pub mod metrics;
pub mod operation;
pub mod schema;
pub mod schema_diff;
mod settings;

pub use context::Context;
pub use schema::Schema;
pub use settings::GraphqlSettings;
