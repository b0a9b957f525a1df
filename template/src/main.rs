use anyhow::Context as _;
use clap::{Parser, Subcommand};

use {{crate_name}}::{
    config::Settings,
    graphql::schema,
    startup::Application,
    telemetry::{get_subscriber, init_subscriber},
};

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Default)]
enum Command {
    /// Serve the HTTP API (the default).
    #[default]
    Serve,
    /// Print the GraphQL schema in SDL.
    Schema,
    /// Exit 0 if the server on this host is ready: the container health check.
    Healthcheck,
{%- if auth %}
    /// Make an account an admin, creating it if it does not exist.
    CreateAdmin {
        #[arg(long)]
        email: String,
        /// Read the password of a new account from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
{%- endif %}
{%- if email %}
    /// Send a test message to check the mail settings.
    SendTestMail {
        #[arg(long)]
        to: String,
    },
{%- endif %}
{%- if queue %}
    /// Run background jobs until SIGTERM or Ctrl-C.
    Worker,
    /// Inspect the job queue.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
{%- endif %}
}
{%- if queue %}

#[derive(Subcommand)]
enum JobsCommand {
    /// Count jobs per state.
    Stats,
    /// List jobs that ran out of attempts.
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
{%- endif %}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command.unwrap_or_default() {
        Command::Serve => serve().await,
        Command::Schema => {
            print!("{}", schema::sdl());
            Ok(())
        }
        Command::Healthcheck => {
            {{crate_name}}::health::probe(load_settings()?.http.port, "/health/ready")
        }
{%- if auth %}
        Command::CreateAdmin {
            email,
            password_stdin,
        } => {{crate_name}}::auth::admin::run(&email, password_stdin).await,
{%- endif %}
{%- if email %}
        Command::SendTestMail { to } => {{crate_name}}::mail::send_test_mail(&to).await,
{%- endif %}
{%- if queue %}
        Command::Worker => {
            let settings = load_settings()?;
            init_subscriber(get_subscriber(&settings.telemetry, std::io::stdout))?;
            {{crate_name}}::jobs::cli::run_worker(settings).await
        }
        Command::Jobs { command } => {
            use {{crate_name}}::jobs::cli;
            let settings = load_settings()?;
            match command {
                JobsCommand::Stats => cli::print_stats(&settings).await,
                JobsCommand::Dead => cli::print_dead(&settings).await,
                JobsCommand::Retry { ids, all } => cli::retry(&settings, ids, all).await,
            }
        }
{%- endif %}
    }
}

fn load_settings() -> anyhow::Result<Settings> {
    Settings::load().context("Failed to load the configuration")
}

async fn serve() -> anyhow::Result<()> {
    let settings = load_settings()?;
    init_subscriber(get_subscriber(&settings.telemetry, std::io::stdout))?;
    let application = Application::build(settings).await?;
    tracing::info!(port = application.port(), "Listening");
    application.run_until_stopped().await?;
    Ok(())
}
