//! Per-request context handed to every resolver.
//!
//! It must stay `Send + Sync`: no actix types in here. Anything that has to reach the
//! HTTP response (cookies, headers) is recorded here by a resolver and applied by the
//! handler after execution.
//!
//! A clone shares the caller: every operation of a WebSocket connection runs with the
//! one context its `connection_init` made.

use crate::state::AppState;

#[derive(Clone)]
pub struct Context {
    pub state: AppState,
{%- if auth %}
    /// The caller's session, user and pending cookie changes.
    pub auth: std::sync::Arc<crate::auth::RequestAuth>,
{%- endif %}
}

impl juniper::Context for Context {}
