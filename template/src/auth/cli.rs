//! The auth module's commands.

use anyhow::Context as _;
use clap::Subcommand;
use secrecy::SecretString;

use crate::{cli::ModuleCommand, config::Settings};

#[derive(Subcommand)]
pub enum Command {
    /// Make an account an admin, creating it if it does not exist.
    CreateAdmin {
        #[arg(long)]
        email: String,
        /// Read the password of a new account from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
}

impl ModuleCommand for Command {
    async fn run(self, settings: Settings) -> anyhow::Result<()> {
        match self {
            Self::CreateAdmin {
                email,
                password_stdin,
            } => {
                let password = password_stdin.then(read_password).transpose()?;
                let done = super::admin::create_admin(&settings, &email, password).await?;
                println!("{done}");
                Ok(())
            }
        }
    }
}

fn read_password() -> anyhow::Result<SecretString> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("Failed to read the password from stdin")?;
    Ok(SecretString::from(line.trim_end_matches(['\r', '\n'])))
}
