use std::time::Duration;

use serde::Deserialize;

/// `[jobs]` in the configuration; `config/base.toml` documents each key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSettings {
    pub concurrency: usize,
    pub fetch_batch: usize,
    pub poll_interval_ms: u64,
    pub lease_secs: u64,
    pub max_deliveries: u32,
    pub max_attempts: u32,
    pub backoff_min_ms: u64,
    pub backoff_max_secs: u64,
    pub dead_max: u64,
    pub retention_hours: u64,
    pub purge_interval_secs: u64,
    pub shutdown_timeout_secs: u64,
}

impl JobSettings {
    /// # Errors
    /// Names the first setting no worker can run with.
    pub fn validate(&self) -> anyhow::Result<()> {
        let positive = [
            ("concurrency", self.concurrency as u64),
            ("fetch_batch", self.fetch_batch as u64),
            ("poll_interval_ms", self.poll_interval_ms),
            ("lease_secs", self.lease_secs),
            ("max_deliveries", u64::from(self.max_deliveries)),
            ("max_attempts", u64::from(self.max_attempts)),
            ("dead_max", self.dead_max),
            ("purge_interval_secs", self.purge_interval_secs),
        ];
        for (key, value) in positive {
            anyhow::ensure!(value > 0, "jobs.{key} must be at least 1");
        }
        anyhow::ensure!(
            self.backoff_min_ms <= self.backoff_max_secs.saturating_mul(1000),
            "jobs.backoff_min_ms must not exceed jobs.backoff_max_secs"
        );
        Ok(())
    }

    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }

    /// How long a delivered job stays with its worker without a renewal.
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_secs)
    }

    pub fn retention(&self) -> Duration {
        Duration::from_secs(self.retention_hours * 3600)
    }

    pub fn purge_interval(&self) -> Duration {
        Duration::from_secs(self.purge_interval_secs.max(1))
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }

    /// The wait before the retry that follows the `failures`-th failed run: the minimum
    /// doubled per earlier failure, capped, plus up to a quarter more chosen by `jitter`
    /// (any value; spreads retries of jobs that failed together).
    pub fn retry_delay(&self, failures: u32, jitter: u64) -> Duration {
        let cap = Duration::from_secs(self.backoff_max_secs);
        let doublings = failures.saturating_sub(1).min(31);
        let delay = Duration::from_millis(self.backoff_min_ms)
            .saturating_mul(1 << doublings)
            .min(cap);
        let extra = delay.as_millis() as u64 / 4;
        delay + Duration::from_millis(if extra == 0 { 0 } else { jitter % (extra + 1) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> JobSettings {
        JobSettings {
            concurrency: 16,
            fetch_batch: 32,
            poll_interval_ms: 1000,
            lease_secs: 30,
            max_deliveries: 5,
            max_attempts: 10,
            backoff_min_ms: 10_000,
            backoff_max_secs: 1800,
            dead_max: 10_000,
            retention_hours: 168,
            purge_interval_secs: 3600,
            shutdown_timeout_secs: 30,
        }
    }

    #[test]
    fn retry_delays_double_up_to_the_cap_plus_at_most_a_quarter() {
        let settings = settings();
        let secs = |failures, jitter| settings.retry_delay(failures, jitter).as_secs();
        assert_eq!(secs(1, 0), 10);
        assert_eq!(secs(2, 0), 20);
        assert_eq!(secs(8, 0), 1280);
        assert_eq!(secs(9, 0), 1800, "capped");
        assert_eq!(secs(40, 0), 1800, "no overflow");
        assert_eq!(secs(1, 2500), 12);
        assert_eq!(secs(1, 2501), 10, "the jitter wraps at a quarter");
    }

    #[test]
    fn the_default_retries_ride_out_an_hour_long_outage() {
        let base = config::File::from_str(
            include_str!("../../config/base.toml"),
            config::FileFormat::Toml,
        );
        let settings: JobSettings = config::Config::builder()
            .add_source(base)
            .build()
            .and_then(|config| config.get("jobs"))
            .expect("[jobs] in base.toml");
        let waited: Duration = (1..settings.max_attempts)
            .map(|failures| settings.retry_delay(failures, 0))
            .sum();
        assert!(
            waited >= Duration::from_secs(3600),
            "gives up after {waited:?}"
        );
    }

    #[test]
    fn settings_no_worker_can_run_with_are_named() {
        let error = JobSettings {
            lease_secs: 0,
            ..settings()
        }
        .validate()
        .unwrap_err();
        assert_eq!(error.to_string(), "jobs.lease_secs must be at least 1");
        let error = JobSettings {
            backoff_min_ms: 2_000_000,
            ..settings()
        }
        .validate()
        .unwrap_err();
        assert!(error.to_string().contains("backoff_min_ms"), "{error}");
    }
}
