//! Background jobs: typed definitions, the queue every request can enqueue on, and the
//! worker process (`{{project-name}} worker`) that runs them.
//!
//! Add a job: a variant on [`Job`], its arm in [`perform`]; enqueue it with
//! `context.state.jobs.enqueue(Job::…)` from any resolver. Handlers run at least once
//! (see [`worker`]), so make them idempotent, keyed by [`JobRun::id`].

pub mod cli;
mod envelope;
mod keys;
mod metrics;
mod queue;
mod scripts;
mod settings;
pub mod worker;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

{% if email %}use crate::mail::{Mailer, Message};
{% endif %}pub use envelope::{JobId, JobRun};
pub use metrics::JobKind;
pub use queue::{DeadJob, JobError, JobQueue, JobStats};
pub use settings::JobSettings;

/// The service's queue of [`Job`]s.
pub type Jobs = JobQueue<Job>;

impl Jobs {
    /// The `jobs` queue under the service's Redis key prefix, on `redis`.
    pub fn on(redis: &crate::redis::Redis, settings: &JobSettings) -> Self {
        JobQueue::new(redis, settings, "jobs")
    }

    /// The `jobs` queue on a connection of its own, its readiness probe registered.
    ///
    /// # Errors
    /// Fails when Redis is unreachable.
    pub async fn connect(
        settings: &crate::config::Settings,
        readiness: &mut crate::health::Readiness,
    ) -> anyhow::Result<Self> {
        let redis = crate::redis::Redis::connect_watched(&settings.redis, readiness).await?;
        Ok(Self::on(&redis, &settings.jobs))
    }
}

/// Every kind of job, stored as JSON tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Job {
{%- if email %}
    /// Delivers one message; retried while the mail server fails.
    SendMail { to: String, message: Message },
{%- endif %}
{%- if auth and email %}
    /// An account mail; its link's token is issued when it is sent, so no job holds one.
    AccountMail(crate::auth::AccountMail),
{%- endif %}
    /// Deletes dead jobs older than `jobs.retention_hours` and forgets departed workers.
    PurgeDeadJobs,
}

impl JobKind for Job {
    /// The variant's name, as in the stored `type` tag.
    fn kind(&self) -> &'static str {
        match self {
{%- if email %}
            Self::SendMail { .. } => "send_mail",
{%- endif %}
{%- if auth and email %}
            Self::AccountMail(_) => "account_mail",
{%- endif %}
            Self::PurgeDeadJobs => "purge_dead_jobs",
        }
    }
}

/// What handlers need, built once per worker process.
pub struct JobContext {
    pub jobs: Jobs,
    pub settings: JobSettings,
{%- if email %}
    pub mailer: Arc<Mailer>,
{%- endif %}
{%- if auth and email %}
    pub account_mails: crate::auth::AccountMailer,
{%- endif %}
}

/// Runs one job; `run` says which job and which attempt.
///
/// # Errors
/// Any error makes the worker retry the job, then bury it in the dead set.
pub async fn perform(job: Job, run: JobRun, context: Arc<JobContext>) -> anyhow::Result<()> {
    match job {
{%- if email %}
        // Sending twice after a crash between delivery and acknowledgement is the
        // accepted cost of never losing a message.
        Job::SendMail { to, message } => context.mailer.send(&to, &message).await?,
{%- endif %}
{%- if auth and email %}
        Job::AccountMail(mail) => context.account_mails.send(&mail).await?,
{%- endif %}
        Job::PurgeDeadJobs => {
            let purged = context.jobs.purge(context.settings.retention()).await?;
            tracing::info!(purged, attempt = run.attempt, "Purged dead jobs");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_kind_is_its_stored_type_tag() {
        let job = Job::PurgeDeadJobs;
        assert_eq!(serde_json::to_value(&job).unwrap()["type"], job.kind());
    }
}
