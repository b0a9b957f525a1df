//! The mail module's commands.

use clap::Subcommand;

use super::{Mail, MailSettings, Mailer};
use crate::command::ModuleCommand;

#[derive(Subcommand)]
pub enum Command {
    /// Send a test message to check the mail settings.
    SendTestMail {
        #[arg(long)]
        to: String,
    },
}

impl ModuleCommand for Command {
    type Needs = MailSettings;

    async fn run(self, settings: MailSettings) -> anyhow::Result<()> {
        match self {
            Self::SendTestMail { to } => {
                let mailer = Mailer::from_settings(&settings)?;
                mailer.send(&to, &Mail::SendTest).await?;
                println!(
                    "Sent a test message to {to} ({:?} transport)",
                    settings.transport
                );
                Ok(())
            }
        }
    }
}
