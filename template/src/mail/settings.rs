use std::{path::PathBuf, time::Duration};

use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailSettings {
    pub transport: TransportKind,
    /// `smtp://user:password@host:587?tls=required` (STARTTLS), `smtps://…:465` (TLS) or
    /// `smtp://localhost:1025` (plain, for Mailpit).
    pub smtp_url: SecretString,
    /// Where the file transport writes one `.eml` per message.
    pub file_dir: PathBuf,
    /// Sender, e.g. `Example <no-reply@example.com>`.
    pub from: String,
    /// Root of the links in mails: the front end's address.
    pub base_url: String,
    /// How long to wait for the SMTP server.
    #[serde(
        rename = "timeout_secs",
        deserialize_with = "crate::setting::positive_secs"
    )]
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    Smtp,
    File,
}
