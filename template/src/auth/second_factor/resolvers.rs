//! The second-factor resolvers, wired into the schema roots in `graphql/schema.rs`.

use chrono::Utc;
use juniper::GraphQLObject;
use secrecy::SecretSlice;

use super::{pending, recovery_codes, totp};
use crate::{
    auth::{
        code_check::{self, Waiting},
        events::{AccountEventKind, Ended},
        resolvers::{LoginPayload, start_session},
    },
    domain::UserId,
    error::AppError,
    graphql::Context,
    storage::users::{SecondFactor, User, UserRepository},
};

/// What an authenticator app needs to add the account. Nothing is on until
/// `confirmTotp` receives a code from it.
#[derive(GraphQLObject)]
pub struct TotpSetup {
    /// The secret in base32, for typing into the app.
    pub secret: String,
    /// The `otpauth://` URI, for links on phones.
    pub uri: String,
    /// The URI as an SVG QR code, for scanning.
    pub qr_code_svg: String,
}

/// Whether sign-in needs a second factor, and how many recovery codes are left.
#[derive(GraphQLObject)]
pub struct SecondFactorStatus {
    pub enabled: bool,
    pub recovery_codes_left: i32,
}

impl SecondFactorStatus {
    pub fn of(user: &User) -> Self {
        let left = user
            .second_factor
            .as_ref()
            .map_or(0, |factor| factor.recovery_codes.len());
        Self {
            enabled: user.second_factor.is_some(),
            recovery_codes_left: i32::try_from(left).unwrap_or(i32::MAX),
        }
    }
}

const ALREADY_ON: &str =
    "a second factor is on already: disableTotp first, or regenerateRecoveryCodes for new codes";
const WRONG_CODE: &str = "the code is wrong";
const NO_PENDING_LOGIN: &str =
    "no sign-in is waiting for a second factor here: sign in with your password again";

/// Shows a new TOTP secret to the signed-in user, who proved the password recently.
pub async fn set_up_totp(context: &Context) -> Result<TotpSetup, AppError> {
    let user = context.require_recent_auth().await?;
    if user.second_factor.is_some() {
        return Err(AppError::BadUserInput(ALREADY_ON.into()));
    }
    let factors = &context.state.auth.second_factors;
    let secret = totp::generate_secret()?;
    let sealed = factors.sealer.seal(&secret, user.id)?;
    factors.totp.save_setup(user.id, &sealed).await?;
    let enrolment = totp::enrolment(&secret, &factors.issuer, user.email.as_ref())?;
    Ok(TotpSetup {
        secret: enrolment.secret,
        uri: enrolment.uri,
        qr_code_svg: enrolment.qr_code_svg,
    })
}

/// Turns TOTP on with a first code from the app, and returns the recovery codes: the
/// only time anyone sees them.
pub async fn confirm_totp(context: &Context, code: String) -> Result<Vec<String>, AppError> {
    context.auth.claim_password_work()?;
    let user = context.require_user().await?;
    if user.second_factor.is_some() {
        return Err(AppError::BadUserInput(ALREADY_ON.into()));
    }
    let factors = &context.state.auth.second_factors;
    let sealed = factors.totp.setup(user.id).await?.ok_or_else(|| {
        AppError::BadUserInput("no TOTP set-up is waiting: call setUpTotp first (it lasts 10 minutes)".into())
    })?;
    let lockout = &context.state.auth.lockout;
    let attempt = lockout
        .admit(context.auth.client(), &user.email, "confirm_totp")
        .await?;
    let secret = factors.sealer.open(&sealed, user.id)?;
    if !totp_code_passes(context, user, &secret, &code).await? {
        lockout.failed(attempt).await?;
        return Err(AppError::BadUserInput(WRONG_CODE.into()));
    }
    lockout.succeeded(attempt).await?;
    let codes = recovery_codes::generate()?;
    let factor = SecondFactor {
        totp_secret: sealed,
        recovery_codes: hashes(user, &codes),
        enabled_at: Utc::now(),
    };
    context
        .state
        .storage
        .set_second_factor(user.id, Some(&factor))
        .await?;
    factors.totp.clear_setup(user.id).await?;
    raise_changed(context, user.id).await;
{%- if email %}
    crate::auth::email_flows::after_second_factor_change(context, user, crate::auth::SecondFactorChange::Enabled);
{%- endif %}
    Ok(codes)
}

/// Turns the second factor off; `true` whether or not it was on, so a retry is harmless.
pub async fn disable_totp(context: &Context) -> Result<bool, AppError> {
    let user = context.require_recent_auth().await?;
    if user.second_factor.is_none() {
        return Ok(true);
    }
    context.state.storage.set_second_factor(user.id, None).await?;
    raise_changed(context, user.id).await;
{%- if email %}
    crate::auth::email_flows::after_second_factor_change(context, user, crate::auth::SecondFactorChange::Disabled);
{%- endif %}
    Ok(true)
}

/// Replaces every recovery code with a new set, shown this once.
pub async fn regenerate_recovery_codes(context: &Context) -> Result<Vec<String>, AppError> {
    let user = context.require_recent_auth().await?;
    let Some(factor) = &user.second_factor else {
        return Err(AppError::BadUserInput(
            "no second factor is on: setUpTotp first".into(),
        ));
    };
    let codes = recovery_codes::generate()?;
    let factor = SecondFactor {
        recovery_codes: hashes(user, &codes),
        ..factor.clone()
    };
    context
        .state
        .storage
        .set_second_factor(user.id, Some(&factor))
        .await?;
    raise_changed(context, user.id).await;
{%- if email %}
    crate::auth::email_flows::after_second_factor_change(context, user, crate::auth::SecondFactorChange::RecoveryCodesRegenerated);
{%- endif %}
    Ok(codes)
}

/// Tells the account's live subscriptions that its second factor changed.
async fn raise_changed(context: &Context, user: UserId) {
    let events = &context.state.auth.events;
    events.raise(user, AccountEventKind::SecondFactorChanged, Ended::None).await;
}

/// Finishes the pending sign-in of this client (its cookie, or `second_factor_token` for
/// `bearer` clients) with a TOTP code or an unused recovery code.
pub async fn complete_login(
    context: &Context,
    code: String,
    second_factor_token: Option<String>,
) -> Result<LoginPayload, AppError> {
    context.auth.claim_password_work()?;
    let auth = &context.state.auth;
    let factors = &auth.second_factors;
    let token = second_factor_token.or_else(|| context.auth.pending_login().map(String::from));
    let pending = match token {
        Some(token) => factors.pending.find(&token).await?,
        None => None,
    };
    let Some(pending) = pending else {
        return Err(AppError::Unauthenticated(NO_PENDING_LOGIN));
    };
    let user = context.state.storage.find_by_id(pending.user).await?;
    // An account disabled, erased or without a second factor since: nothing to finish.
    let Some(user) = user.filter(|user| user.disabled.is_none() && user.second_factor.is_some())
    else {
        factors.pending.end(&pending).await?;
        return Err(AppError::Unauthenticated(NO_PENDING_LOGIN));
    };
    let waiting = Waiting {
        key: &pending.key,
        wrong_codes_allowed: pending::WRONG_CODES_ALLOWED,
        account: &user.email,
        action: "complete_login",
        wrong_outcome: "wrong_second_factor",
        gone: NO_PENDING_LOGIN,
    };
    code_check::pass(context, &waiting, async || code_passes(context, &user, &code).await).await?;
    start_session(context, user, pending.bearer).await
}

/// Whether `code` is a current TOTP code of `user`'s, or one of the recovery codes
/// (which it then uses up).
async fn code_passes(context: &Context, user: &User, code: &str) -> Result<bool, AppError> {
    let Some(factor) = &user.second_factor else {
        return Ok(false);
    };
    if totp::looks_like_code(code) {
        let sealer = &context.state.auth.second_factors.sealer;
        let secret = sealer.open(&factor.totp_secret, user.id)?;
        return totp_code_passes(context, user, &secret, code).await;
    }
    let Some(code) = recovery_codes::normalise(code) else {
        return Ok(false);
    };
    let code_hash = recovery_codes::hash(user.id, &code);
    Ok(context
        .state
        .storage
        .use_recovery_code(user.id, &code_hash)
        .await?)
}

/// Whether `code` is `secret`'s code for now (or a period beside it), used for the
/// first time: each period's code signs in once.
async fn totp_code_passes(
    context: &Context,
    user: &User,
    secret: &SecretSlice<u8>,
    code: &str,
) -> Result<bool, AppError> {
    let Some(period) = totp::matching_period(secret, code, crate::clock::unix_secs()) else {
        return Ok(false);
    };
    let totp = &context.state.auth.second_factors.totp;
    totp.use_period(user.id, period).await
}

fn hashes(user: &User, codes: &[String]) -> Vec<String> {
    codes
        .iter()
        .filter_map(|code| recovery_codes::normalise(code))
        .map(|code| recovery_codes::hash(user.id, &code))
        .collect()
}

/// Leaves `user`, who proved the password, waiting for the second factor: the pending
/// sign-in's token goes to a cookie, or to the answer for `bearer` clients.
pub async fn await_second_factor(
    context: &Context,
    user: &User,
    bearer: bool,
) -> Result<LoginPayload, AppError> {
    let token = context
        .state
        .auth
        .second_factors
        .pending
        .start(user.id, bearer)
        .await?;
    crate::auth::metrics::login("second_factor_required");
    let second_factor_token = context.auth.hand_over_pending_login(token.expose(), bearer);
    Ok(LoginPayload {
        user: None,
        session_token: None,
        second_factor_required: true,
        second_factor_token,
    })
}
