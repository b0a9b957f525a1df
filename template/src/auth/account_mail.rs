//! The mails the service sends about an account, described by what they are about rather
//! than by their text: whatever holds one{% if queue %} (a job in Redis, `jobs dead`){% endif %} holds no live link.
//! The single-use token of a link is issued only when the mail is sent{% if queue %}, by the worker{% endif %}.

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};

use super::{
    AuthSettings,
    erasure::Erasures,
    login_code::{self, CodeSignInId, LoginCodes},
    mails::{self, Mail},
    tokens::{OneTimeTokens, Purpose},
};
use crate::{
    domain::{Email, UserId},
    mail::{Compose as _, Mailer},
    redis::Redis,
};

/// A mail to send about an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountMail {
    pub to: Email,
    pub about: About,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum About {
    /// A confirmation link for the account `user`.
    ConfirmEmail { user: UserId },
    /// A password-reset link for the account `user`.
    ResetPassword { user: UserId },
    /// Someone tried to register the address of an existing account.
    AddressTaken,
    /// The account's password was changed or reset.
    PasswordChanged,
    /// A reset or confirmation link was asked for an address no account uses.
    NoAccount,
    /// A confirmation link was asked for an address already confirmed.
    AlreadyConfirmed,
    /// A link that moves the account `user` to the address the mail goes to.
    ConfirmEmailChange { user: UserId },
    /// The account `user` moved to another address (sent to the old one).
    EmailChanged { user: UserId },
    /// The account `user` signed in from a device it had not used lately.
    NewSignIn {
        user: UserId,
        device: String,
        client: String,
        at: DateTime<Utc>,
    },
    /// One of `user`'s sessions, on `device`, was ended from another device.
    SessionRevoked { user: UserId, device: String },
    /// The account was erased at its owner's request: the goodbye.
    AccountDeleted,
    /// A sign-in code for the account `user`, for the code sign-in `sign_in`.
    LoginCode {
        user: UserId,
        sign_in: CodeSignInId,
    },
    /// The account `user`'s second factor was turned on or off, or got new recovery codes.
    SecondFactorChanged {
        user: UserId,
        change: SecondFactorChange,
    },
}

/// What happened to an account's second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecondFactorChange {
    Enabled,
    Disabled,
    RecoveryCodesRegenerated,
}

impl SecondFactorChange {
    fn sentence(self) -> &'static str {
        match self {
            Self::Enabled => {
                "Two-step sign-in was just turned on for your account: signing in now also takes a code from your authenticator app or a recovery code."
            }
            Self::Disabled => {
                "Two-step sign-in was just turned off for your account: signing in now takes your password alone."
            }
            Self::RecoveryCodesRegenerated => {
                "New recovery codes were just made for your account: the earlier ones no longer work."
            }
        }
    }
}

impl About {
    /// The account the mail is about, if it names one: mails about an account erased
    /// meanwhile are not sent.
    fn user(&self) -> Option<UserId> {
        match self {
            Self::ConfirmEmail { user }
            | Self::ResetPassword { user }
            | Self::ConfirmEmailChange { user }
            | Self::EmailChanged { user }
            | Self::NewSignIn { user, .. }
            | Self::SessionRevoked { user, .. }
            | Self::LoginCode { user, .. }
            | Self::SecondFactorChanged { user, .. } => Some(*user),
            Self::AddressTaken
            | Self::PasswordChanged
            | Self::NoAccount
            | Self::AlreadyConfirmed
            | Self::AccountDeleted => None,
        }
    }
}

/// Where account mails go once a request asked for them: {% if queue %}the job queue, whose
/// worker sends them with an [`AccountMailer`]{% else %}straight to the mailer{% endif %}.
#[derive(Clone)]
pub struct AccountMails(
{%- if queue %}
    crate::queue::Outbox<AccountMail>,
{%- else %}
    Arc<AccountMailer>,
{%- endif %}
);

impl AccountMails {
{%- if queue %}
    /// Account mails as jobs of `jobs`.
    pub fn new<J>(jobs: &crate::queue::JobQueue<J>) -> Self
    where
        J: From<AccountMail>
            + Serialize
            + serde::de::DeserializeOwned
            + crate::queue::JobKind
            + Send
            + 'static,
    {
        Self(jobs.outbox())
    }

    /// Queues `mail` for the worker, which issues its token and retries while the mail
    /// server fails. A call whose outcome is unknown (Redis timed out) is repeated
    /// under the same idempotency key: the mail is queued once, never twice.
    ///
    /// # Errors
    /// Fails when the queue is unavailable.
    pub async fn deliver(&self, mail: AccountMail) -> anyhow::Result<()> {
        const TRIES: u32 = 3;
        let key = format!("account-mail:{}", uuid::Uuid::new_v4().simple());
        let mut tries = 1;
        loop {
            match self.0.enqueue_keyed(mail.clone(), &key).await {
                Ok(_) => return Ok(()),
                Err(error) if error.outcome_unknown() && tries < TRIES => tries += 1,
                Err(error) => return Err(error).context("Failed to queue an account mail"),
            }
        }
    }
{%- else %}
    /// Account mails sent at once through `mailer`.
    pub fn new(redis: &Redis, mailer: &Arc<Mailer>, settings: &AuthSettings) -> Self {
        Self(Arc::new(AccountMailer::new(redis.clone(), mailer.clone(), settings)))
    }

    /// Issues the mail's token and sends it.
    ///
    /// # Errors
    /// Fails when Redis or the mail transport fails.
    pub async fn deliver(&self, mail: AccountMail) -> anyhow::Result<()> {
        self.0.send(&mail).await
    }
{%- endif %}
}

/// Issues the tokens of links and sends account mails.
pub struct AccountMailer {
    tokens: OneTimeTokens,
    login_codes: LoginCodes,
    erasures: Erasures,
    mailer: Arc<Mailer>,
    confirm_ttl: Duration,
    reset_ttl: Duration,
    confirmation_required: bool,
}

impl AccountMailer {
    pub fn new(redis: Redis, mailer: Arc<Mailer>, settings: &AuthSettings) -> Self {
        Self {
            tokens: OneTimeTokens::new(redis.clone()),
            login_codes: LoginCodes::new(redis.clone()),
            erasures: Erasures::new(redis),
            mailer,
            confirm_ttl: settings.confirm_token_ttl,
            reset_ttl: settings.reset_token_ttl,
            confirmation_required: settings.require_confirmed_email,
        }
    }

    /// Issues the token of the mail's link, if it has one, and sends the mail. Sending
    /// again issues a new token, which voids the previous one. A mail about an account
    /// erased since it was asked for is dropped.
    ///
    /// # Errors
    /// Fails when Redis or the mail transport fails.
    pub async fn send(&self, mail: &AccountMail) -> anyhow::Result<()> {
        if let Some(user) = mail.about.user()
            && self.erasures.contains(user).await?
        {
            tracing::info!(user.id = %user, "Dropped a mail about an erased account");
            return Ok(());
        }
        let message = match &mail.about {
            &About::ConfirmEmail { user } => Mail::ConfirmEmail {
                link: self.link(Purpose::ConfirmEmail, user, "").await?,
                expires_in: mails::describe(self.confirm_ttl),
                required_to_sign_in: self.confirmation_required,
            },
            &About::ResetPassword { user } => Mail::ResetPassword {
                link: self.link(Purpose::ResetPassword, user, "").await?,
                expires_in: mails::describe(self.reset_ttl),
            },
            About::AddressTaken => Mail::AddressTaken {
                link: self.mailer.url("/forgot-password"),
            },
            About::PasswordChanged => Mail::PasswordChanged,
            About::NoAccount => Mail::NoAccount {
                link: self.mailer.url("/register"),
            },
            About::AlreadyConfirmed => Mail::AlreadyConfirmed {
                link: self.mailer.url("/forgot-password"),
            },
            // The token carries the new address: the mail's recipient.
            &About::ConfirmEmailChange { user } => Mail::ConfirmEmailChange {
                link: self
                    .link(Purpose::ChangeEmail, user, mail.to.as_ref())
                    .await?,
                expires_in: mails::describe(self.confirm_ttl),
            },
            About::EmailChanged { .. } => Mail::EmailChanged,
            About::NewSignIn {
                device, client, at, ..
            } => Mail::NewSignIn {
                device: device.clone(),
                client: client.clone(),
                at: at.format("%Y-%m-%d %H:%M UTC").to_string(),
                link: self.mailer.url("/forgot-password"),
            },
            About::SessionRevoked { device, .. } => Mail::SessionRevoked {
                device: device.clone(),
                link: self.mailer.url("/forgot-password"),
            },
            About::AccountDeleted => Mail::AccountDeleted,
            About::LoginCode { user, sign_in } => {
                let Some(code) = self.login_codes.issue(sign_in, *user).await? else {
                    tracing::info!(user.id = %user, "A code sign-in ended before its mail went");
                    return Ok(());
                };
                Mail::LoginCode {
                    code: code.expose_secret().to_string(),
                    expires_in: mails::describe(login_code::LIFETIME),
                }
            }
            About::SecondFactorChanged { change, .. } => Mail::SecondFactorChanged {
                change: change.sentence().into(),
                link: self.mailer.url("/forgot-password"),
            },
        }
        .compose()
        .context("Failed to render an account mail")?;
        self.mailer
            .send(mail.to.as_ref(), &message)
            .await
            .with_context(|| format!("Failed to send `{}`", message.subject))
    }

    /// A link with a new token for `user` and `purpose`, carrying `payload` (see
    /// `tokens.rs`).
    async fn link(&self, purpose: Purpose, user: UserId, payload: &str) -> anyhow::Result<String> {
        let (ttl, path) = match purpose {
            Purpose::ConfirmEmail => (self.confirm_ttl, "/confirm-email"),
            Purpose::ResetPassword => (self.reset_ttl, "/reset-password"),
            Purpose::ChangeEmail => (self.confirm_ttl, "/confirm-email-change"),
        };
        let token = self
            .tokens
            .issue(purpose, user, ttl, payload)
            .await
            .context("Failed to issue a link's token")?;
        Ok(self.mailer.link(path, token.expose()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_mail_is_stored_as_its_purpose_without_a_link() {
        let user = UserId::generate();
        let mail = AccountMail {
            to: Email::parse("ada@example.com").unwrap(),
            about: About::ResetPassword { user },
        };

        let stored = serde_json::to_value(&mail).unwrap();

        assert_eq!(
            stored,
            serde_json::json!({
                "to": "ada@example.com",
                "about": { "kind": "reset_password", "user": user.to_string() },
            })
        );
        assert_eq!(serde_json::from_value::<AccountMail>(stored).unwrap(), mail);
    }
}
