use std::path::PathBuf;

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
    /// Seconds to wait for the SMTP server.
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    Smtp,
    File,
}
