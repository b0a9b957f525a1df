//! `ci render` scaffolds projects from the examples; `ci check` runs every check of the
//! test suite on the variants named (all by default).

use std::path::PathBuf;

use anyhow::{Result, bail};
use ci::{check, examples, lint::Linters, mongodb::MongoServer, render};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Render and check the template's example variants")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Render one example (or `all`) into a folder.
    Render {
        /// Example name from examples/, or `all`.
        example: String,
        /// Folder that receives the project (all: one sub-folder per example).
        #[arg(long, default_value = "rendered")]
        into: PathBuf,
        /// Project name (single example only); defaults to the example's name.
        #[arg(long)]
        name: Option<String>,
    },
    /// Every check the test suite runs, per example: render, leftover tags, hardening
    /// rules, snapshots (compared, not updated), linters, fmt, clippy and tests (the API
    /// tests of some variants again on MongoDB: `CI_MONGODB_URI`, or else SecantusDB).
    Check {
        /// Examples to check; all of them when omitted.
        examples: Vec<String>,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Render {
            example,
            into,
            name,
        } => render_examples(&example, &into, name),
        Command::Check { examples } => check_examples(&examples),
    }
}

fn render_examples(example: &str, into: &std::path::Path, name: Option<String>) -> Result<()> {
    let selected = if example == "all" {
        if name.is_some() {
            bail!("--name applies to a single example, not `all`");
        }
        examples::all()?
    } else {
        examples::select(&[example.to_string()])?
    };
    for example in &selected {
        let project_name = name.clone().unwrap_or_else(|| example.name.clone());
        let path = render::render(&render::Request::example(example, &project_name), into)?;
        println!("{}: {}", example.name, path.display());
    }
    Ok(())
}

fn check_examples(names: &[String]) -> Result<()> {
    let selected = examples::select(names)?;
    let linters = Linters::ensure()?;
    let target_dir = check::shared_target_dir();
    let reports: Vec<_> = selected
        .iter()
        .map(|example| check::everything(&example.name, &linters, &target_dir))
        .collect();
    println!("{}", check::table(&reports));
    if reports.iter().any(|report| report.mongodb.is_some()) {
        println!("MongoDB: {}", MongoServer::shared()?.description());
    }
    if reports.iter().any(|report| report.failure.is_some()) {
        bail!("some variants failed");
    }
    Ok(())
}
