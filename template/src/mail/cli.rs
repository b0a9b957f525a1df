//! The mail module's commands.

use clap::Subcommand;

use super::{Mail, Mailer};
use crate::{cli::ModuleCommand, config::Settings};

#[derive(Subcommand)]
pub enum Command {
    /// Send a test message to check the mail settings.
    SendTestMail {
        #[arg(long)]
        to: String,
    },
}

impl ModuleCommand for Command {
    async fn run(self, settings: Settings) -> anyhow::Result<()> {
        match self {
            Self::SendTestMail { to } => {
                let mailer = Mailer::from_settings(&settings.mail)?;
                mailer.send(&to, &Mail::SendTest).await?;
                println!(
                    "Sent a test message to {to} ({:?} transport)",
                    settings.mail.transport
                );
                Ok(())
            }
        }
    }
}
