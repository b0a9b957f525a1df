//! Outgoing mail: SMTP (pooled, TLS) in production, `.eml` files in development and
//! tests, behind the `MailTransport` trait so tests and jobs can plug in their own.

pub mod cli;
mod settings;
pub mod templates;
mod transport;

use std::sync::Arc;

use lettre::message::{Mailbox, MultiPart};

pub use settings::{MailSettings, TransportKind};
pub use templates::{Compose, Mail, Message};
pub use transport::{FileTransport, MailTransport, SmtpTransport};

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid address: {0}")]
    Address(#[from] lettre::address::AddressError),
    #[error("failed to build the message: {0}")]
    Build(#[from] lettre::error::Error),
    #[error("the mail server refused or failed: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error("failed to write the mail file: {0}")]
    File(#[from] lettre::transport::file::Error),
    #[error("the mail server did not accept a connection")]
    Unreachable,
    #[error("failed to render the mail: {0}")]
    Render(#[from] askama::Error),
}

/// Sends mail from the configured sender, with links rooted at `base_url`.
pub struct Mailer {
    transport: Arc<dyn MailTransport>,
    from: Mailbox,
    base_url: String,
}

impl Mailer {
    /// The service's mailer, its readiness probe `mail` registered.
    ///
    /// # Errors
    /// Fails on an invalid sender address or SMTP URL.
    pub fn connect(
        settings: &MailSettings,
        readiness: &mut crate::health::Readiness,
    ) -> anyhow::Result<Arc<Self>> {
        let mailer = Arc::new(Self::from_settings(settings)?);
        readiness.watch("mail", mailer.clone(), |mailer| async move {
            mailer.check().await
        });
        Ok(mailer)
    }

    /// # Errors
    /// Fails on an invalid sender address or SMTP URL.
    pub fn from_settings(settings: &MailSettings) -> anyhow::Result<Self> {
        let transport: Arc<dyn MailTransport> = match settings.transport {
            TransportKind::Smtp => Arc::new(SmtpTransport::new(settings)?),
            TransportKind::File => Arc::new(FileTransport::new(&settings.file_dir)?),
        };
        Self::new(transport, &settings.from, &settings.base_url)
    }

    /// # Errors
    /// Fails on an invalid sender address.
    pub fn new(
        transport: Arc<dyn MailTransport>,
        from: &str,
        base_url: &str,
    ) -> anyhow::Result<Self> {
        let from = from
            .parse()
            .map_err(|e| anyhow::anyhow!("mail.from `{from}` is not a valid address: {e}"))?;
        Ok(Self {
            transport,
            from,
            base_url: base_url.trim_end_matches('/').to_string(),
        })
    }

    /// A page of the front end, e.g. `url("/forgot-password")`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// A single-use link into the front end, e.g. `link("/reset-password", token)`.
    pub fn link(&self, path: &str, token: &str) -> String {
        format!("{}?token={token}", self.url(path))
    }

    /// Sends `mail`: a kind of mail with its data, or a [`Message`] composed earlier.
    ///
    /// # Errors
    /// Fails on an invalid recipient, when the mail fails to render or when the
    /// transport fails.
    #[tracing::instrument(name = "Sending mail", skip_all, fields(subject))]
    pub async fn send(&self, to: &str, mail: &impl Compose) -> Result<(), MailError> {
        let message = mail.compose()?;
        tracing::Span::current().record("subject", &message.subject);
        let message = lettre::Message::builder()
            .from(self.from.clone())
            .to(to.parse()?)
            .subject(&message.subject)
            .multipart(MultiPart::alternative_plain_html(
                message.text.clone(),
                message.html.clone(),
            ))?;
        self.transport.send(message).await
    }

    /// Whether the transport can deliver now (SMTP answers, mail folder writable).
    ///
    /// # Errors
    /// Fails when it cannot.
    pub async fn check(&self) -> Result<(), MailError> {
        self.transport.check().await
    }
}
