//! Handles shared by every request: cheap to clone, safe to send across threads.

use std::time::Duration;

use crate::{config::Settings, storage::Storage};

#[derive(Clone)]
pub struct AppState {
    pub storage: Storage,
    /// Longest wait on a dependency in a health check.
    pub health_timeout: Duration,
}

impl AppState {
    pub fn new(storage: Storage, settings: &Settings) -> Self {
        Self {
            storage,
            health_timeout: settings.database.timeout(),
        }
    }
}
