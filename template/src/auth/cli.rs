//! The auth module's commands.

use anyhow::Context as _;
use clap::{ArgGroup, Subcommand};
use secrecy::SecretString;

use crate::{cli::ModuleCommand, config::Settings, storage::Storage};

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
    async fn run(self, settings: Settings) -> anyhow::Result<()> {
        match self {
            Self::CreateAdmin {
                email,
                password_stdin: _,
                promote_existing,
            } => {
                let storage = Storage::connect(&settings.database)
                    .await
                    .context("Failed to connect to the database")?;
                let done = if promote_existing {
                    let redis = crate::redis::Redis::connect(&settings.redis)
                        .await
                        .context("Failed to connect to Redis")?;
                    let auth = super::Auth::new(&settings.auth, settings.http.https, redis);
                    super::admin::promote_existing(&storage, &auth.sessions, &email).await?
                } else {
                    let hasher = super::PasswordHasher::new(settings.auth.bcrypt_cost);
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
