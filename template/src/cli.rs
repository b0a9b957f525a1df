//! The command line: `serve` (the default), `schema` (and `schema diff`), `healthcheck`,
//! and the commands
//! each module adds. A module's commands are a `clap::Subcommand` enum implementing
//! [`ModuleCommand`]; `state.rs` registers them.

use std::{path::PathBuf, pin::Pin};

use anyhow::Context as _;
use clap::{ArgMatches, CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

use crate::{
    command::ModuleCommand,
    config::Settings,
    graphql::{schema, schema_diff},
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
    Schema {
        #[command(subcommand)]
        action: Option<SchemaAction>,
    },
    /// Exit 0 if the server on this host is ready: the container health check.
    Healthcheck,
}

#[derive(Subcommand)]
enum SchemaAction {
    /// List the changes from OLD to NEW (this build's schema when omitted), each
    /// breaking or safe; exit 1 if one is breaking.
    Diff { old: PathBuf, new: Option<PathBuf> },
}

type Running = Pin<Box<dyn Future<Output = anyhow::Result<()>>>>;
/// Runs a module's parsed command with the settings.
type Runner = Box<dyn Fn(&ArgMatches, Settings) -> Running>;

/// One module's place on the command line.
pub struct Module {
    augment: fn(clap::Command) -> clap::Command,
    has: fn(&str) -> bool,
    run: Runner,
}

impl Module {
    /// The subcommands of `C`, run with what `needs` takes from the configuration.
    pub fn of<C: ModuleCommand>(needs: fn(Settings) -> C::Needs) -> Self {
        Self {
            augment: C::augment_subcommands,
            has: C::has_subcommand,
            run: Box::new(move |matches, settings| {
                let command = C::from_arg_matches(matches);
                let needs = needs(settings);
                Box::pin(async move { command?.run(needs).await })
            }),
        }
    }
}

/// Parses the command line, with every module's subcommands, and runs the command.
///
/// # Errors
/// Whatever the command fails with.
pub async fn run() -> anyhow::Result<()> {
    let modules = crate::state::commands();
    let cli = modules
        .iter()
        .fold(Cli::command(), |cli, module| (module.augment)(cli));
    let matches = cli.get_matches();
    if let Some(name) = matches.subcommand_name()
        && let Some(module) = modules.iter().find(|module| (module.has)(name))
    {
        return (module.run)(&matches, load_settings()?).await;
    }
    match Cli::from_arg_matches(&matches)?.command.unwrap_or_default() {
        Command::Serve => serve().await,
        Command::Schema { action: None } => {
            print!("{}", schema::sdl());
            Ok(())
        }
        Command::Schema {
            action: Some(SchemaAction::Diff { old, new }),
        } => diff_schemas(&old, new.as_deref()),
        Command::Healthcheck => crate::health::probe(load_settings()?.http.port, "/health/ready"),
    }
}

fn diff_schemas(old: &std::path::Path, new: Option<&std::path::Path>) -> anyhow::Result<()> {
    let read = |path: &std::path::Path| {
        std::fs::read_to_string(path).with_context(|| format!("Failed to read {}", path.display()))
    };
    let new = match new {
        Some(path) => read(path)?,
        None => schema::sdl(),
    };
    let changes = schema_diff::diff(&read(old)?, &new)?;
    for change in &changes {
        println!("{change}");
    }
    let breaking = changes.iter().filter(|change| change.breaking).count();
    if breaking > 0 {
        anyhow::bail!("{breaking} breaking schema change(s)");
    }
    Ok(())
}

/// The settings, with the error that names a bad key.
///
/// # Errors
/// Fails when the configuration does not load.
pub fn load_settings() -> anyhow::Result<Settings> {
    Settings::load().context("Failed to load the configuration")
}

async fn serve() -> anyhow::Result<()> {
    let settings = load_settings()?;
    // Held until the server stops: dropping it sends the last spans.
    let (subscriber, _traces) = get_subscriber(&settings.telemetry, std::io::stdout)?;
    init_subscriber(subscriber)?;
    let application = Application::build(settings).await?;
    tracing::info!(port = application.port(), "Listening");
    application.run_until_stopped().await?;
    Ok(())
}
