//! The queue module's commands: `worker` and `jobs …`.

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use clap::Subcommand;
use tokio::sync::watch;

use super::{Job, JobContext, Jobs, perform, worker};
use crate::{
    cli::ModuleCommand,
    config::Settings,
    monitoring::{self, MetricsServer},
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
    async fn run(self, settings: Settings) -> anyhow::Result<()> {
        match self {
            Self::Worker => {
                // Held until the worker stops: dropping it sends the last spans.
                let (subscriber, _traces) = get_subscriber(&settings.telemetry, std::io::stdout)?;
                init_subscriber(subscriber)?;
                run_worker(settings).await
            }
            Self::Jobs { command } => match command {
                JobsCommand::Stats => print_stats(&settings).await,
                JobsCommand::Dead => print_dead(&settings).await,
                JobsCommand::Retry { ids, all } => retry(&settings, ids, all).await,
            },
        }
    }
}

async fn connect(settings: &Settings) -> anyhow::Result<Jobs> {
    let redis = Redis::connect(&settings.redis)
        .await
        .context("Failed to connect to Redis")?;
    Ok(Jobs::on(&redis, &settings.jobs))
}

/// `worker`: runs jobs until SIGTERM or Ctrl-C, then drains (see [`worker::run`]);
/// serves its metrics meanwhile when they are on.
async fn run_worker(settings: Settings) -> anyhow::Result<()> {
    let metrics = MetricsServer::bind(&settings.metrics)?;
    let (stop, shutdown) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
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
/// Fails on bad settings or when Redis is unreachable at start-up.
pub async fn work(settings: Settings, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let jobs = connect(&settings).await?;
    let context = Arc::new(JobContext {
        jobs: jobs.clone(),
        settings: settings.jobs.clone(),
{%- if email %}
        mailer: Arc::new(
            crate::mail::Mailer::from_settings(&settings.mail).context("Invalid mail settings")?,
        ),
{%- endif %}
{%- if auth and email %}
        account_mails: crate::auth::AccountMailer::connect(&settings).await?,
{%- endif %}
    });
    let purges = tokio::spawn(schedule_purges(
        jobs.clone(),
        settings.jobs.purge_interval(),
    ));
    let depth = settings.metrics.enabled.then(|| {
        tokio::spawn(super::metrics::report_depth(
            jobs.clone(),
            settings.jobs.poll_interval(),
        ))
    });
    tracing::info!(concurrency = settings.jobs.concurrency, "Worker started");
    let handler = move |job, run| perform(job, run, context.clone());
    let result = worker::run(jobs, handler, shutdown).await;
    purges.abort();
    if let Some(depth) = depth {
        depth.abort();
    }
    result
}

/// Enqueues one purge per period, however many workers run.
async fn schedule_purges(jobs: Jobs, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let key = format!("purge-dead-jobs:{}", now.as_secs() / every.as_secs());
        if let Err(error) = jobs.enqueue_once(Job::PurgeDeadJobs, &key).await {
            tracing::warn!(error = %error, "Failed to schedule the purge of dead jobs");
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut terminate) = signal(SignalKind::terminate()) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = terminate.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// `jobs stats`: counts per state, as JSON.
async fn print_stats(settings: &Settings) -> anyhow::Result<()> {
    let stats = connect(settings).await?.stats().await?;
    println!("{}", serde_json::to_string_pretty(&stats)?);
    Ok(())
}

/// `jobs dead`: the dead set, one JSON object per line.
async fn print_dead(settings: &Settings) -> anyhow::Result<()> {
    for job in connect(settings).await?.dead().await? {
        println!("{}", serde_json::to_string(&job)?);
    }
    Ok(())
}

/// `jobs retry`: queues the given dead jobs again, or all of them; fails on an id that
/// names no dead job.
async fn retry(settings: &Settings, ids: Vec<String>, all: bool) -> anyhow::Result<()> {
    let jobs = connect(settings).await?;
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
