//! Email confirmation and password recovery: the account flows that need the mailer.
//!
//! Answers never depend on whether an address has an account (OWASP ASVS 5.0 V6.3.8), and
//! a failed delivery is logged rather than reported, for the same reason.{% if queue %} Mail goes
//! out through the job queue: requests never wait for the mail server.{% endif %}

use std::time::Duration;

use secrecy::SecretString;

use super::{
    mails,
    tokens::{OneTimeTokens, Purpose},
};
use crate::{
    domain::{Email, Password},
    error::AppError,
    graphql::Context,
{%- if queue %}
    jobs::Job,
{%- endif %}
    mail::Mail,
    storage::{
        StorageError,
        users::{User, UserRepository},
    },
};

pub const SENT: &str = "If an account uses this address, a message is on its way.";

impl Context {
    /// # Errors
    /// `Unauthenticated` without a session, `Forbidden` until the email is confirmed.
    pub async fn require_confirmed(&self) -> Result<&User, AppError> {
        let user = self.require_user().await?;
        if user.email_confirmed {
            Ok(user)
        } else {
            Err(AppError::Forbidden)
        }
    }
}

fn tokens(context: &Context) -> OneTimeTokens {
    OneTimeTokens::new(context.state.redis.clone())
}

{%- if queue %}
/// Queues `mail` for the worker, which retries while the mail server fails; a failure to
/// queue is logged rather than returned (see the module docs).
async fn deliver(context: &Context, to: &Email, mail: Mail) {
    let subject = mail.subject.clone();
    let job = Job::SendMail {
        to: to.as_ref().to_string(),
        mail,
    };
    if let Err(error) = context.state.jobs.enqueue(job).await {
        tracing::error!(error = %error, %subject, "Failed to queue an account mail");
    }
}
{%- else %}
/// Sends `mail`, logging rather than returning a failure (see the module docs).
async fn deliver(context: &Context, to: &Email, mail: Mail) {
    if let Err(error) = context.state.mailer.send(to.as_ref(), &mail).await {
        tracing::error!(error = %error, subject = %mail.subject, "Failed to send an account mail");
    }
}
{%- endif %}

/// Issues a token for `purpose` and mails its link, made with `template(link, expiry)`.
async fn send_link(
    context: &Context,
    user: &User,
    purpose: Purpose,
    path: &str,
    template: fn(&str, &str) -> Mail,
) -> Result<(), AppError> {
    let settings = &context.state.auth.settings;
    let ttl = Duration::from_secs(match purpose {
        Purpose::ConfirmEmail => settings.confirm_token_ttl_secs,
        Purpose::ResetPassword => settings.reset_token_ttl_secs,
    });
    let token = tokens(context).issue(purpose, user.id, ttl).await?;
    let link = context.state.mailer.link(path, token.expose());
    deliver(context, &user.email, template(&link, &mails::describe(ttl))).await;
    Ok(())
}

async fn send_confirmation(context: &Context, user: &User) -> Result<(), AppError> {
    let template = mails::confirm_email;
    send_link(context, user, Purpose::ConfirmEmail, "/confirm-email", template).await
}

/// After `register`: a confirmation link for a new account, a heads-up for a taken address.
///
/// # Errors
/// `Unavailable` when Redis does not answer.
pub async fn after_registration(
    context: &Context,
    user: &User,
    outcome: &Result<(), StorageError>,
) -> Result<(), AppError> {
    match outcome {
        Ok(()) => send_confirmation(context, user).await,
        Err(StorageError::Conflict) => {
            let link = context.state.mailer.url("/forgot-password");
            deliver(context, &user.email, mails::already_registered(&link)).await;
            Ok(())
        }
        Err(_) => Ok(()),
    }
}

/// Refuses unconfirmed accounts when `auth.require_confirmed_email` is set.
///
/// # Errors
/// `Unauthenticated` for an unconfirmed account under that setting.
pub fn ensure_may_sign_in(context: &Context, user: &User) -> Result<(), AppError> {
    if context.state.auth.settings.require_confirmed_email && !user.email_confirmed {
        return Err(AppError::Unauthenticated(
            "confirm your email address before signing in",
        ));
    }
    Ok(())
}

pub async fn notify_password_changed(context: &Context, to: &Email) {
    deliver(context, to, mails::password_changed()).await;
}

async fn limit_mail_requests(context: &Context, email: &Email) -> Result<(), AppError> {
    let client_ip = context.auth.client_ip();
    context
        .state
        .auth
        .limit_attempts("mail", client_ip, email)
        .await
        .map(drop)
}

pub async fn confirm_email(context: &Context, token: &str) -> Result<bool, AppError> {
    let user_id = tokens(context)
        .consume(Purpose::ConfirmEmail, token)
        .await?
        .ok_or_else(|| AppError::BadUserInput("the link is invalid or has expired".into()))?;
    match context.state.storage.confirm_email(user_id).await {
        Ok(()) | Err(StorageError::NotFound) => Ok(true),
        Err(error) => Err(error.into()),
    }
}

pub async fn resend_confirmation(context: &Context, email: String) -> Result<String, AppError> {
    let email = Email::parse(&email)?;
    limit_mail_requests(context, &email).await?;
    let unconfirmed = context
        .state
        .storage
        .find_by_email(&email)
        .await?
        .filter(|user| !user.email_confirmed);
    if let Some(user) = unconfirmed {
        send_confirmation(context, &user).await?;
    }
    Ok(SENT.into())
}

pub async fn request_password_reset(context: &Context, email: String) -> Result<String, AppError> {
    let email = Email::parse(&email)?;
    limit_mail_requests(context, &email).await?;
    if let Some(user) = context.state.storage.find_by_email(&email).await? {
        let template = mails::reset_password;
        send_link(context, &user, Purpose::ResetPassword, "/reset-password", template).await?;
    }
    Ok(SENT.into())
}

/// Sets a new password from a reset link, then ends every session of the account.
pub async fn reset_password(
    context: &Context,
    token: &str,
    new_password: String,
) -> Result<bool, AppError> {
    let password = Password::parse(SecretString::from(new_password))?;
    let user_id = tokens(context)
        .consume(Purpose::ResetPassword, token)
        .await?
        .ok_or_else(|| AppError::BadUserInput("the link is invalid or has expired".into()))?;
    let Some(user) = context.state.storage.find_by_id(user_id).await? else {
        return Err(AppError::BadUserInput(
            "the link is invalid or has expired".into(),
        ));
    };
    let hash = context.state.auth.passwords.hash(&password).await?;
    context
        .state
        .storage
        .update_password_hash(user.id, &hash)
        .await?;
    // The link proved the mailbox is theirs.
    context.state.storage.confirm_email(user.id).await?;
    context.state.auth.sessions.revoke_all(user.id).await?;
    notify_password_changed(context, &user.email).await;
    Ok(true)
}
