//! Email confirmation, password recovery, email change and security notices: the
//! account flows that need the mailer.
//!
//! Answers never depend on whether an address has an account (OWASP ASVS 5.0 V6.3.8),
//! and neither does their timing: a request only checks its input and its limits, and
//! answers; looking the address up, issuing a link's token and sending happen afterwards,
//! on a task of their own{% if queue %}, which hands the mail to the job queue{% endif %}. A failed delivery is
//! logged rather than reported, for the same reason. Every request for a link sends
//! exactly one mail, whoever owns the address (a link, or a notice that no account uses
//! it or that it is confirmed already){% if queue %}, so that no count of queued jobs tells
//! registered addresses apart{% endif %}. Every mail sent on behalf of an anonymous request counts
//! against its recipient's mailbox (`auth.mails_per_address`) and its client
//! (`auth.mails_per_client`).

use secrecy::SecretString;

use super::{
    account_mail::{About, AccountMail, AccountMails, SecondFactorChange},
    login_code::CodeSignInId,
    devices::KnownDevices,
    events::{AccountEventKind, Ended},
    tokens::{OneTimeTokens, Purpose},
};
use crate::{
    domain::{Email, UserId},
    error::AppError,
    graphql::Context,
    storage::{
        Storage,
        StorageError,
        users::{User, UserRepository},
    },
};

pub const SENT: &str = "If an account uses this address, a message is on its way.";
const CHANGE_SENT: &str =
    "If the new address can be used, a confirmation link is on its way to it: nothing changes until it is followed.";
const INVALID_LINK: &str = "the link is invalid or has expired";

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
    OneTimeTokens::new(context.state.auth.redis.clone())
}

/// Runs `work` once the request has answered (see the module docs), with the storage
/// and where account mails go; failures are logged.
fn after_answer<F>(context: &Context, work: impl FnOnce(Storage, AccountMails) -> F)
where
    F: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let state = &context.state;
    let work = work(state.storage.clone(), state.account_mails.clone());
    state.auth.background.spawn(async move {
        if let Err(error) = work.await {
            tracing::error!(error.cause_chain = ?error, error.message = %error, "Failed to send an account mail");
        }
    });
}

/// Sends `mail` once the request has answered.
fn send_after_answer(context: &Context, mail: AccountMail) {
    after_answer(context, |_, mails| async move { mails.deliver(mail).await });
}

/// After `register`: a confirmation link for a new account, a heads-up for a taken
/// address. The answer to `register` is the same either way, so a mail over the
/// recipient's or the client's limit is skipped silently rather than refused.
///
/// # Errors
/// `Unavailable` when Redis does not answer.
pub async fn after_registration(
    context: &Context,
    user: &User,
    outcome: &Result<(), StorageError>,
) -> Result<(), AppError> {
    let about = match outcome {
        Ok(()) => About::ConfirmEmail { user: user.id },
        Err(StorageError::Conflict) => About::AddressTaken,
        Err(_) => return Ok(()),
    };
    match limit_mail_request(context, &user.email).await {
        Ok(()) => {}
        Err(AppError::RateLimited { .. }) => {
            tracing::warn!("Skipped a registration mail: its address or client had its share");
            return Ok(());
        }
        Err(error) => return Err(error),
    }
    let mail = AccountMail {
        to: user.email.clone(),
        about,
    };
    send_after_answer(context, mail);
    Ok(())
}

/// Whether `user` may sign in: not before the address is confirmed when
/// `auth.require_confirmed_email` is set.
pub fn may_sign_in(context: &Context, user: &User) -> bool {
    user.email_confirmed || !context.state.auth.settings.require_confirmed_email
}

/// After any change of `user`'s password: outstanding reset links stop working, and the
/// owner hears of it.
///
/// # Errors
/// `Unavailable` when Redis does not answer.
pub async fn after_password_change(context: &Context, user: &User) -> Result<(), AppError> {
    tokens(context)
        .revoke(Purpose::ResetPassword, user.id)
        .await?;
    let mail = AccountMail {
        to: user.email.clone(),
        about: About::PasswordChanged,
    };
    send_after_answer(context, mail);
    Ok(())
}

/// After the second factor was turned on or off or got new recovery codes: a notice to
/// the account's address, in case it was not its holder.
pub fn after_second_factor_change(context: &Context, user: &User, change: SecondFactorChange) {
    let about = About::SecondFactorChanged {
        user: user.id,
        change,
    };
    send_after_answer(context, AccountMail { to: user.email.clone(), about });
}

/// After `requestLoginCode`: once the request has answered, the address is looked up,
/// and the code goes to an account that may sign in, the "no account" notice anywhere
/// else. The code itself is made when the mail is sent.
pub fn after_login_code_request(context: &Context, email: Email, sign_in: CodeSignInId) {
    after_answer(context, |storage, mails| async move {
        let user = storage.find_by_email(&email).await?;
        let about = match user.filter(|user| user.disabled.is_none()) {
            Some(user) => About::LoginCode {
                user: user.id,
                sign_in,
            },
            None => About::NoAccount,
        };
        mails.deliver(AccountMail { to: email, about }).await
    });
}

/// Counts a mail an anonymous request asks for against its client's and its
/// recipient's limits.
pub(super) async fn limit_mail_request(context: &Context, email: &Email) -> Result<(), AppError> {
    let auth = &context.state.auth;
    auth.limit_client_mail(context.auth.client()).await?;
    auth.limit_recipient(email).await
}

pub async fn confirm_email(context: &Context, token: &str) -> Result<bool, AppError> {
    let user_id = tokens(context)
        .consume(Purpose::ConfirmEmail, token)
        .await?
        .ok_or_else(|| AppError::BadUserInput(INVALID_LINK.into()))?;
    match context.state.storage.confirm_email(user_id).await {
        Ok(()) | Err(StorageError::NotFound) => Ok(true),
        Err(error) => Err(error.into()),
    }
}

/// Mails a new link if the address has an unconfirmed account, after answering; a
/// notice otherwise.
pub async fn resend_confirmation(context: &Context, email: String) -> Result<String, AppError> {
    mail_about_address(context, email, |user| match user {
        Some(user) if user.email_confirmed => About::AlreadyConfirmed,
        Some(user) => About::ConfirmEmail { user: user.id },
        None => About::NoAccount,
    })
    .await
}

/// Mails a reset link if the address has an account, after answering; a notice
/// otherwise.
pub async fn request_password_reset(context: &Context, email: String) -> Result<String, AppError> {
    mail_about_address(context, email, |user| match user {
        Some(user) => About::ResetPassword { user: user.id },
        None => About::NoAccount,
    })
    .await
}

/// Checks `email` and the limits, answers, then looks the address up and sends the one
/// mail `about` picks for its account (or its absence).
async fn mail_about_address(
    context: &Context,
    email: String,
    about: impl FnOnce(Option<&User>) -> About + Send + 'static,
) -> Result<String, AppError> {
    let email = Email::parse(&email)?;
    limit_mail_request(context, &email).await?;
    after_answer(context, |storage, mails| async move {
        let user = storage.find_by_email(&email).await?;
        let about = about(user.as_ref());
        mails.deliver(AccountMail { to: email, about }).await
    });
    Ok(SENT.into())
}

/// Sets a new password from a reset link, then ends every session of the account.
///
/// The token is read first and spent only once the new password is accepted, so a
/// refused password leaves the link usable.
pub async fn reset_password(
    context: &Context,
    token: &str,
    new_password: String,
) -> Result<bool, AppError> {
    context.auth.claim_password_work()?;
    let invalid = || AppError::BadUserInput(INVALID_LINK.into());
    let tokens = tokens(context);
    let user_id = tokens
        .peek(Purpose::ResetPassword, token)
        .await?
        .ok_or_else(invalid)?;
    let user = context
        .state
        .storage
        .find_by_id(user_id)
        .await?
        .ok_or_else(invalid)?;
    let hash = context
        .state
        .auth
        .passwords
        .hash_new(SecretString::from(new_password), &user.email)
        .await?;
    if tokens.consume(Purpose::ResetPassword, token).await? != Some(user.id) {
        return Err(invalid());
    }
    context
        .state
        .storage
        .update_password_hash(user.id, &hash)
        .await?;
    // The link proved the mailbox is theirs.
    context.state.storage.confirm_email(user.id).await?;
    let auth = &context.state.auth;
    auth.sessions.revoke_all(user.id).await?;
    auth.events.raise(user.id, AccountEventKind::PasswordChanged, Ended::All).await;
    context.auth.end_session();
    after_password_change(context, &user).await?;
    Ok(true)
}

/// After a sign-in: a notice when the device is new to the account (see `devices.rs`).
///
/// # Errors
/// `Unavailable` when Redis does not answer.
pub async fn after_sign_in(context: &Context, user: &User) -> Result<(), AppError> {
    let origin = context.auth.origin();
    let devices = KnownDevices::new(context.state.auth.redis.clone());
    if devices.note(user.id, &origin.device).await? {
        let about = About::NewSignIn {
            user: user.id,
            device: origin.device.clone(),
            client: origin.client.clone(),
            at: chrono::Utc::now(),
        };
        send_after_answer(context, AccountMail { to: user.email.clone(), about });
    }
    Ok(())
}

/// After one of `user`'s sessions, on `device`, was ended from another: a notice.
pub fn after_session_revoked_elsewhere(context: &Context, user: &User, device: String) {
    let about = About::SessionRevoked { user: user.id, device };
    send_after_answer(context, AccountMail { to: user.email.clone(), about });
}

/// While erasing `user`'s account: its outstanding links and known devices go.
///
/// # Errors
/// `Unavailable` when Redis does not answer.
pub async fn forget_links_and_devices(context: &Context, user: UserId) -> Result<(), AppError> {
    tokens(context).revoke_all(user).await?;
    KnownDevices::new(context.state.auth.redis.clone())
        .forget(user)
        .await
}

/// Once `user`'s account is erased: the count of mails to its address goes, then the
/// goodbye is mailed.
///
/// # Errors
/// `Unavailable` when Redis does not answer.
pub async fn after_account_erased(context: &Context, user: &User) -> Result<(), AppError> {
    context.state.auth.forget_recipient(&user.email).await?;
    let mail = AccountMail {
        to: user.email.clone(),
        about: About::AccountDeleted,
    };
    send_after_answer(context, mail);
    Ok(())
}

/// Mails a link that moves the signed-in account to `new_email`, once the session
/// proved its password recently. The answer is the same whether or not another account
/// uses the address; that account's owner gets the "address taken" notice instead.
pub async fn change_email(context: &Context, new_email: String) -> Result<String, AppError> {
    let user = context.require_recent_auth().await?;
    let new_email = Email::parse(&new_email)?;
    if new_email == user.email {
        return Err(AppError::BadUserInput("this is your address already".into()));
    }
    context.state.auth.limit_recipient(&new_email).await?;
    let user = user.id;
    after_answer(context, move |storage, mails| async move {
        let about = match storage.find_by_email(&new_email).await? {
            Some(_) => About::AddressTaken,
            None => About::ConfirmEmailChange { user },
        };
        mails.deliver(AccountMail { to: new_email, about }).await
    });
    Ok(CHANGE_SENT.into())
}

/// Moves the signed-in account to the address a change link was mailed to, ends its
/// other sessions and outstanding links, and tells the old address. Only the account
/// that asked may complete it: another account's link is refused and stays usable.
pub async fn confirm_email_change(context: &Context, token: &str) -> Result<bool, AppError> {
    let invalid = || AppError::BadUserInput(INVALID_LINK.into());
    let user = context.require_user().await?.clone();
    let tokens = tokens(context);
    if tokens.peek(Purpose::ChangeEmail, token).await? != Some(user.id) {
        return Err(invalid());
    }
    let (_, new_email) = tokens
        .consume_carrying(Purpose::ChangeEmail, token)
        .await?
        .ok_or_else(invalid)?;
    let new_email = Email::parse(&new_email).map_err(|_| invalid())?;
    match context.state.storage.update_email(user.id, &new_email).await {
        Ok(()) => {}
        Err(StorageError::Conflict) => {
            return Err(AppError::BadUserInput(
                "another account uses this address now".into(),
            ));
        }
        Err(error) => return Err(error.into()),
    }
    tokens.revoke_all(user.id).await?;
    let mut ended = Ended::All;
    if let Some(session) = context.auth.session() {
        context.state.auth.sessions.revoke_others(session).await?;
        ended = Ended::AllBut(session.id());
    }
    context.state.auth.events.raise(user.id, AccountEventKind::EmailChanged, ended).await;
    let mail = AccountMail {
        to: user.email,
        about: About::EmailChanged { user: user.id },
    };
    send_after_answer(context, mail);
    Ok(true)
}
