//! Where messages go. SMTP pools its connections; the file transport writes `.eml` files
//! that a developer can open and tests can read back.

use std::path::Path;

use futures_util::future::BoxFuture;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use super::{MailError, MailSettings};

/// Delivers finished messages. Object-safe, so a `Mailer` can hold any transport.
pub trait MailTransport: Send + Sync {
    fn send(&self, message: Message) -> BoxFuture<'_, Result<(), MailError>>;

    fn check(&self) -> BoxFuture<'_, Result<(), MailError>>;
}

pub struct SmtpTransport(AsyncSmtpTransport<Tokio1Executor>);

impl SmtpTransport {
    /// # Errors
    /// Fails on a malformed `mail.smtp_url`.
    pub fn new(settings: &MailSettings) -> anyhow::Result<Self> {
        let transport =
            AsyncSmtpTransport::<Tokio1Executor>::from_url(settings.smtp_url.expose_secret())
                .map_err(|e| anyhow::anyhow!("mail.smtp_url is invalid: {e}"))?
                .timeout(Some(settings.timeout))
                .build();
        Ok(Self(transport))
    }
}

impl MailTransport for SmtpTransport {
    fn send(&self, message: Message) -> BoxFuture<'_, Result<(), MailError>> {
        Box::pin(async move {
            self.0.send(message).await?;
            Ok(())
        })
    }

    fn check(&self) -> BoxFuture<'_, Result<(), MailError>> {
        Box::pin(async move {
            if self.0.test_connection().await? {
                Ok(())
            } else {
                Err(MailError::Unreachable)
            }
        })
    }
}

pub struct FileTransport(AsyncFileTransport<Tokio1Executor>, std::path::PathBuf);

impl FileTransport {
    /// # Errors
    /// Fails if the folder cannot be created.
    pub fn new(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("mail.file_dir `{}`: {e}", dir.display()))?;
        Ok(Self(AsyncFileTransport::new(dir), dir.to_path_buf()))
    }
}

impl MailTransport for FileTransport {
    fn send(&self, message: Message) -> BoxFuture<'_, Result<(), MailError>> {
        Box::pin(async move {
            let id = self.0.send(message).await?;
            tracing::info!(file = %self.1.join(format!("{id}.eml")).display(), "Mail written");
            Ok(())
        })
    }

    fn check(&self) -> BoxFuture<'_, Result<(), MailError>> {
        Box::pin(async move {
            let writable = tokio::fs::metadata(&self.1)
                .await
                .is_ok_and(|meta| meta.is_dir() && !meta.permissions().readonly());
            if writable {
                Ok(())
            } else {
                Err(MailError::Unreachable)
            }
        })
    }
}
