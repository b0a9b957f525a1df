use std::{
    num::{NonZeroU32, NonZeroU64, NonZeroUsize},
    time::Duration,
};

use serde::Deserialize;

/// The queue's settings, `[jobs]` in the configuration (`config/base.toml` documents
/// each key), in their valid form: parsed when the configuration loads, so a value no
/// worker can run with stops every process at start-up, naming its key.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "JobsSection")]
pub struct QueueSettings {
    pub concurrency: NonZeroUsize,
    pub fetch_batch: NonZeroUsize,
    pub poll_interval: Duration,
    pub lease: Duration,
    pub max_deliveries: NonZeroU32,
    pub max_attempts: NonZeroU32,
    pub backoff: Backoff,
    pub dead_max: NonZeroU64,
    pub retention: Duration,
    pub purge_interval: Duration,
    pub shutdown_timeout: Duration,
    /// How long an idempotency key holds the id of the job queued under it.
    pub idempotency_window: Duration,
}

/// Waits between the runs of a failing job: `min` doubled per failure, capped at `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub(super) min: Duration,
    pub(super) max: Duration,
}

impl Backoff {
    /// # Errors
    /// Refuses a minimum above the maximum.
    pub fn new(min: Duration, max: Duration) -> Result<Self, String> {
        if min > max {
            return Err("jobs.backoff_min_ms must not exceed jobs.backoff_max_secs".into());
        }
        Ok(Self { min, max })
    }

    /// The wait after the `failures`-th failure in a row: the minimum doubled per
    /// earlier failure, capped, plus up to a quarter more chosen by `jitter` (any value;
    /// spreads retries of jobs that failed together).
    pub fn after(self, failures: u32, jitter: u64) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        let delay = self.min.saturating_mul(1 << doublings).min(self.max);
        let extra = crate::clock::as_ms(delay) / 4;
        delay + Duration::from_millis(if extra == 0 { 0 } else { jitter % (extra + 1) })
    }
}

/// `[jobs]` as written; turned into [`QueueSettings`] by checking every value, each
/// error naming its key.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JobsSection {
    concurrency: usize,
    fetch_batch: usize,
    poll_interval_ms: u64,
    lease_secs: u64,
    max_deliveries: u32,
    max_attempts: u32,
    backoff_min_ms: u64,
    backoff_max_secs: u64,
    dead_max: u64,
    retention_hours: u64,
    purge_interval_secs: u64,
    shutdown_timeout_secs: u64,
    idempotency_window_secs: u64,
}

/// `value` of `key`, which must not be zero.
fn nonzero<T: TryFrom<V>, V>(key: &str, value: V) -> Result<T, String> {
    T::try_from(value).map_err(|_| format!("jobs.{key} must be at least 1"))
}

impl TryFrom<JobsSection> for QueueSettings {
    type Error = String;

    fn try_from(section: JobsSection) -> Result<Self, Self::Error> {
        let secs =
            |key, value| nonzero::<NonZeroU64, _>(key, value).map(|n| Duration::from_secs(n.get()));
        let millis = |key, value| {
            nonzero::<NonZeroU64, _>(key, value).map(|n| Duration::from_millis(n.get()))
        };
        let retention = section
            .retention_hours
            .checked_mul(3600)
            .map(Duration::from_secs)
            .ok_or("jobs.retention_hours is too large")?;
        Ok(Self {
            concurrency: nonzero("concurrency", section.concurrency)?,
            fetch_batch: nonzero("fetch_batch", section.fetch_batch)?,
            poll_interval: millis("poll_interval_ms", section.poll_interval_ms)?,
            lease: secs("lease_secs", section.lease_secs)?,
            max_deliveries: nonzero("max_deliveries", section.max_deliveries)?,
            max_attempts: nonzero("max_attempts", section.max_attempts)?,
            backoff: Backoff::new(
                millis("backoff_min_ms", section.backoff_min_ms)?,
                secs("backoff_max_secs", section.backoff_max_secs)?,
            )?,
            dead_max: nonzero("dead_max", section.dead_max)?,
            retention,
            purge_interval: secs("purge_interval_secs", section.purge_interval_secs)?,
            shutdown_timeout: Duration::from_secs(section.shutdown_timeout_secs),
            idempotency_window: secs("idempotency_window_secs", section.idempotency_window_secs)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `[jobs]` of `base.toml` with `overrides`, loaded as at start-up.
    fn load(overrides: &str) -> Result<QueueSettings, String> {
        config::Config::builder()
            .add_source(config::File::from_str(
                include_str!("../../config/base.toml"),
                config::FileFormat::Toml,
            ))
            .add_source(config::File::from_str(
                &format!("[jobs]\n{overrides}"),
                config::FileFormat::Toml,
            ))
            .build()
            .and_then(|config| config.get("jobs"))
            .map_err(|error| error.to_string())
    }

    #[test]
    fn retry_delays_double_up_to_the_cap_plus_at_most_a_quarter() {
        let backoff = Backoff::new(Duration::from_secs(10), Duration::from_secs(1800)).unwrap();
        let secs = |failures, jitter| backoff.after(failures, jitter).as_secs();
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
        let settings = load("").expect("[jobs] in base.toml");
        let waited: Duration = (1..settings.max_attempts.get())
            .map(|failures| settings.backoff.after(failures, 0))
            .sum();
        assert!(
            waited >= Duration::from_secs(3600),
            "gives up after {waited:?}"
        );
    }

    #[test]
    fn values_no_worker_can_run_with_are_refused_naming_the_key() {
        for key in [
            "lease_secs",
            "concurrency",
            "poll_interval_ms",
            "max_attempts",
            "purge_interval_secs",
        ] {
            let error = load(&format!("{key} = 0")).unwrap_err();
            assert!(error.contains(&format!("jobs.{key}")), "{key}: {error}");
        }
        let error = load("backoff_min_ms = 2000000").unwrap_err();
        assert!(error.contains("backoff_min_ms"), "{error}");
    }
}
