//! Handles shared by every request: cheap to clone, safe to send across threads.
//!
//! Each module adds its handle in one block; `startup::connect` builds them.

use std::sync::Arc;

use crate::{health::Readiness, storage::Storage};

#[derive(Clone)]
pub struct AppState {
    pub storage: Storage,
    /// The dependencies' probes and their latest report, shared by every request.
    pub readiness: Arc<Readiness>,
{%- if auth %}
    /// Accounts, sessions and their rate limits.
    pub auth: Arc<crate::auth::Auth>,
{%- endif %}
{%- if email %}
    /// Sends mail over the configured transport.
    pub mailer: Arc<crate::mail::Mailer>,
{%- endif %}
{%- if queue %}
    /// Enqueues background jobs for the worker process.
    pub jobs: crate::jobs::Jobs,
{%- endif %}
}
