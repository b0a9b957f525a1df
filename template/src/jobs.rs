//! The service's background jobs: the [`Job`] list and what running each one means
//! ([`perform`]), beside the modules whose work they carry. The queue engine that
//! stores, delivers and retries them is generic and knows none of them (`queue/`).
//!
//! Add a job: a variant on [`Job`], its arm in [`perform`]; enqueue it with
//! `context.state.jobs.enqueue(Job::…)` from any resolver. Handlers run at least once,
//! so make them idempotent, keyed by [`JobRun::id`].

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::queue::{JobKind, JobQueue, JobRun, QueueSettings};

/// The service's queue of [`Job`]s.
pub type Jobs = JobQueue<Job>;

/// The `jobs` queue under the service's Redis key prefix, on `redis`.
pub fn queue(redis: &crate::redis::Redis, settings: &QueueSettings) -> Jobs {
    JobQueue::new(redis, settings, "jobs")
}

/// Every kind of job, stored as JSON tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Job {
{%- if email %}
    /// Delivers one message; retried while the mail server fails.
    SendMail {
        to: String,
        message: crate::mail::Message,
    },
{%- endif %}
{%- if auth and email %}
    /// An account mail; its link's token is issued when it is sent, so no job holds one.
    AccountMail(crate::auth::AccountMail),
{%- endif %}
    /// Deletes dead jobs older than `jobs.retention_hours` and forgets departed workers.
    PurgeDeadJobs,
}
{%- if auth and email %}

/// Lets the auth module queue its mails without naming this list.
impl From<crate::auth::AccountMail> for Job {
    fn from(mail: crate::auth::AccountMail) -> Self {
        Self::AccountMail(mail)
    }
}
{%- endif %}

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

/// What handlers need, built once per worker process (see `worker.rs`).
pub struct JobContext {
    pub jobs: Jobs,
{%- if email %}
    pub mailer: Arc<crate::mail::Mailer>,
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
            let retention = context.jobs.settings().retention;
            let purged = context.jobs.purge(retention).await?;
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
