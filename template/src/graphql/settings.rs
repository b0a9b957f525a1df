use std::num::NonZeroUsize;

use serde::Deserialize;

/// `[graphql]`: request limits and developer tooling.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphqlSettings {
    pub max_body_bytes: NonZeroUsize,
    pub max_depth: NonZeroUsize,
    pub max_fields: NonZeroUsize,
    pub max_aliases: usize,
    pub max_batch: NonZeroUsize,
    pub introspection: bool,
    pub graphiql: bool,
}
