//! The auth module's commands.

use anyhow::Context as _;
use clap::{ArgGroup, Subcommand};
use secrecy::SecretString;

use super::AuthSettings;
use crate::{
    command::ModuleCommand,
    redis::RedisSettings,
    storage::{DatabaseSettings, Storage},
};

/// What the commands connect to and run with.
pub struct Needs {
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub auth: AuthSettings,
}

#[derive(Subcommand)]
pub enum Command {
    /// Create an admin account, or make an existing, confirmed account an admin.
    #[command(group(ArgGroup::new("how").required(true).args(["password_stdin", "promote_existing"])))]
    CreateAdmin {
        #[arg(long)]
        email: String,
        /// Create the account, reading its password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
        /// Promote the account that already uses this address; its owner must have
        /// confirmed it. Its sessions end.
        #[arg(long)]
        promote_existing: bool,
    },
}

impl ModuleCommand for Command {
    type Needs = Needs;

    async fn run(self, needs: Needs) -> anyhow::Result<()> {
        match self {
            Self::CreateAdmin {
                email,
                password_stdin: _,
                promote_existing,
            } => {
                let storage = Storage::connect(&needs.database)
                    .await
                    .context("Failed to connect to the database")?;
                let done = if promote_existing {
                    let redis = crate::redis::Redis::connect(&needs.redis)
                        .await
                        .context("Failed to connect to Redis")?;
                    let sessions = super::sessions::SessionStore::new(
                        redis,
                        needs.auth.session_idle_timeout,
                        needs.auth.session_absolute_timeout,
                    );
                    super::admin::promote_existing(&storage, &sessions, &email).await?
                } else {
                    let hasher = super::PasswordHasher::new(needs.auth.bcrypt_cost);
                    super::admin::create(&storage, &hasher, &email, read_password()?).await?
                };
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
