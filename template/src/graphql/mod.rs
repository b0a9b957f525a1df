//! The GraphQL API: schema roots, the per-request context and request limits.

pub mod context;
pub mod limits;
pub mod metrics;
pub mod schema;

pub use context::Context;
pub use schema::Schema;
