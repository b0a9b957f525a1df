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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command.unwrap_or_default() {
        Command::Serve => serve().await,
        Command::Schema => {
            print!("{}", schema::sdl());
            Ok(())
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
    }
}

async fn serve() -> anyhow::Result<()> {
    let settings = Settings::load().context("Failed to load the configuration")?;
    init_subscriber(get_subscriber(&settings.telemetry, std::io::stdout))?;
    let application = Application::build(settings).await?;
    tracing::info!(port = application.port(), "Listening");
    application.run_until_stopped().await?;
    Ok(())
}
