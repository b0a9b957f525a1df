use std::time::Duration;

use serde::Deserialize;

/// `[jobs]` in the configuration; `config/base.toml` documents each key.
#[derive(Debug, Clone, Deserialize)]
pub struct JobSettings {
    pub concurrency: usize,
    pub fetch_batch: usize,
    pub heartbeat_secs: u64,
    pub lease_secs: u64,
    pub max_attempts: usize,
    pub backoff_min_ms: u64,
    pub backoff_max_secs: u64,
    pub retention_hours: u64,
    pub purge_interval_secs: u64,
}

impl JobSettings {
    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs(self.heartbeat_secs.max(1))
    }

    /// Heartbeats a worker may miss before it is presumed dead; at least one.
    pub fn missed_heartbeats(&self) -> usize {
        usize::try_from(self.lease_secs.div_ceil(self.heartbeat().as_secs()))
            .unwrap_or(usize::MAX)
            .max(1)
    }

    pub fn retention(&self) -> Duration {
        Duration::from_secs(self.retention_hours * 3600)
    }

    pub fn purge_interval(&self) -> Duration {
        Duration::from_secs(self.purge_interval_secs.max(1))
    }
}
