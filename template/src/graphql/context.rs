//! Per-request context handed to every resolver.
//!
//! It must stay `Send + Sync`: no actix types in here. Anything that has to reach the
//! HTTP response (cookies, headers) is recorded here by a resolver and applied by the
//! handler after execution.

use crate::state::AppState;

pub struct Context {
    pub state: AppState,
{%- if auth %}
    /// The caller's session, user and pending cookie changes.
    pub auth: crate::auth::RequestAuth,
{%- endif %}
}

impl juniper::Context for Context {}
