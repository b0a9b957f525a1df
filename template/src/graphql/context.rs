//! Per-request context handed to every resolver.
//!
//! It must stay `Send + Sync`: no actix types in here. Anything that has to reach the
//! HTTP response (cookies, headers) is returned by a resolver and applied by the handler.

use crate::state::AppState;

pub struct Context {
    pub state: AppState,
}

impl Context {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

impl juniper::Context for Context {}
