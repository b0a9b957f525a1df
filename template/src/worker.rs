//! The worker process and the queue's commands: `worker` runs the service's jobs
//! (`jobs.rs`) on the queue engine (`queue/`), with what their handlers need; `jobs
//! stats | dead | retry` inspect the queue. It composes several modules' settings, so
//! it sits at the top, beside `startup.rs`.

use std::sync::Arc;

use anyhow::Context as _;
use clap::Subcommand;
use tokio::sync::watch;

use crate::{
    command::ModuleCommand,
    config::Settings,
    jobs::{self, Job, JobContext, Jobs},
    monitoring::{self, MetricsServer},
    queue::{self, QueueSettings},
    redis::Redis,
    telemetry::{get_subscriber, init_subscriber},
};

#[derive(Subcommand)]
pub enum Command {
    /// Run background jobs until SIGTERM or Ctrl-C.
    Worker,
    /// Inspect the job queue.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
}

#[derive(Subcommand)]
pub enum JobsCommand {
    /// Count jobs per state.
    Stats,
    /// List jobs that ran out of attempts or deliveries.
    Dead,
    /// Queue dead jobs again with fresh attempts.
    Retry {
        /// Ids printed by `jobs dead`.
        ids: Vec<String>,
        /// Every dead job.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
    },
}

impl ModuleCommand for Command {
    /// The worker's handlers need several modules' settings.
    type Needs = Settings;

    async fn run(self, settings: Settings) -> anyhow::Result<()> {
        match self {
            Self::Worker => {
                // Held until the worker stops: dropping it sends the last spans.
                let (subscriber, _traces) = get_subscriber(&settings.telemetry, std::io::stdout)?;
                init_subscriber(subscriber)?;
                run_worker(settings).await
            }
            Self::Jobs { command } => {
                let jobs = connect(&settings.redis, &settings.jobs).await?;
                match command {
                    JobsCommand::Stats => print_stats(&jobs).await,
                    JobsCommand::Dead => print_dead(&jobs).await,
                    JobsCommand::Retry { ids, all } => retry(&jobs, ids, all).await,
                }
            }
        }
    }
}

async fn connect(redis: &crate::redis::RedisSettings, settings: &QueueSettings) -> anyhow::Result<Jobs> {
    let redis = Redis::connect(redis)
        .await
        .context("Failed to connect to Redis")?;
    Ok(jobs::queue(&redis, settings))
}

/// `worker`: runs jobs until SIGTERM or Ctrl-C, then drains (see [`queue::worker::run`]);
/// serves its metrics meanwhile when they are on.
async fn run_worker(settings: Settings) -> anyhow::Result<()> {
    let metrics = MetricsServer::bind(&settings.metrics)?;
    let (stop, shutdown) = watch::channel(false);
    tokio::spawn(async move {
        crate::shutdown::requested().await;
        tracing::info!("Stopping: finishing running jobs");
        let _ = stop.send(true);
    });
    monitoring::serve_beside(metrics, work(settings, shutdown)).await??;
    tracing::info!("Worker stopped");
    Ok(())
}

/// Runs the service's jobs until `shutdown` turns true or its sender is dropped; the
/// worker process and the API tests share it.
///
/// # Errors
/// Fails on bad mail settings or when Redis is unreachable at start-up.
pub async fn work(settings: Settings, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let redis = Redis::connect(&settings.redis)
        .await
        .context("Failed to connect to Redis")?;
    let jobs = jobs::queue(&redis, &settings.jobs);
{%- if email %}
    let mailer = Arc::new(
        crate::mail::Mailer::from_settings(&settings.mail).context("Invalid mail settings")?,
    );
{%- endif %}
    let context = Arc::new(JobContext {
        jobs: jobs.clone(),
{%- if auth and email %}
        account_mails: crate::auth::AccountMailer::new(redis, mailer.clone(), &settings.auth),
{%- endif %}
{%- if email %}
        mailer,
{%- endif %}
    });
    let purges = tokio::spawn(schedule_purges(jobs.clone()));
    let depth = settings.metrics.enabled.then(|| {
        tokio::spawn(queue::report_depth(jobs.clone(), settings.jobs.poll_interval))
    });
    tracing::info!(concurrency = settings.jobs.concurrency, "Worker started");
    let handler = move |job, run| jobs::perform(job, run, context.clone());
    let result = queue::worker::run(jobs, handler, shutdown).await;
    purges.abort();
    if let Some(depth) = depth {
        depth.abort();
    }
    result
}

/// Enqueues one purge per purge interval, however many workers run.
async fn schedule_purges(jobs: Jobs) {
    let every = jobs.settings().purge_interval;
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        let period = crate::clock::unix_secs() / every.as_secs();
        let key = format!("purge-dead-jobs:{period}");
        if let Err(error) = jobs.enqueue_keyed(Job::PurgeDeadJobs, &key).await {
            tracing::warn!(error = %error, "Failed to schedule the purge of dead jobs");
        }
    }
}

/// `jobs stats`: counts per state, as JSON.
async fn print_stats(jobs: &Jobs) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(&jobs.stats().await?)?);
    Ok(())
}

/// `jobs dead`: the dead set, one JSON object per line.
async fn print_dead(jobs: &Jobs) -> anyhow::Result<()> {
    for job in jobs.dead().await? {
        println!("{}", serde_json::to_string(&job)?);
    }
    Ok(())
}

/// `jobs retry`: queues the given dead jobs again, or all of them; fails on an id that
/// names no dead job.
async fn retry(jobs: &Jobs, ids: Vec<String>, all: bool) -> anyhow::Result<()> {
    let ids = if all {
        jobs.dead().await?.into_iter().map(|job| job.id).collect()
    } else {
        ids
    };
    for id in &ids {
        anyhow::ensure!(jobs.retry_dead(id).await?, "No dead job has the id {id}");
        println!("Queued {id} again");
    }
    Ok(())
}
