//! The code sign-in resolvers, wired into the schema roots in `graphql/schema.rs`.

use juniper::GraphQLObject;

use super::LoginCodes;
use crate::{
    auth::{
        code_check::{self, Waiting},
        email_flows, login_code,
        resolvers::{LoginPayload, start_session},
        second_factor::resolvers::await_second_factor,
    },
    domain::Email,
    error::AppError,
    graphql::Context,
    storage::users::UserRepository,
};

/// The answer to `requestLoginCode`, the same for every address.
#[derive(GraphQLObject)]
pub struct LoginCodeRequest {
    pub message: String,
    /// For `bearer: true` clients: pass it to `loginWithCode`. Browsers get it as an
    /// HttpOnly cookie instead.
    pub login_code_token: Option<String>,
}

const REQUESTED: &str = "If an account uses this address, a sign-in code is on its way: it works once, for 3 minutes, on this device only.";
const TURNED_OFF: &str = "sign-in by code is turned off: sign in with your password";
const NO_CODE_SIGN_IN: &str = "no code sign-in is waiting here: ask for a new code";

fn ensure_turned_on(context: &Context) -> Result<(), AppError> {
    if context.state.auth.settings.login_by_code {
        Ok(())
    } else {
        Err(AppError::BadUserInput(TURNED_OFF.into()))
    }
}

/// Starts a code sign-in for `email` and answers at once, the same whatever the address;
/// the code (or the "no account" notice) is mailed after the answer.
pub async fn request_login_code(
    context: &Context,
    email: String,
    bearer: bool,
) -> Result<LoginCodeRequest, AppError> {
    ensure_turned_on(context)?;
    let email = Email::parse(&email)?;
    email_flows::limit_mail_request(context, &email).await?;
    let (token, sign_in) = context.state.auth.login_codes.start(&email, bearer).await?;
    email_flows::after_login_code_request(context, email, sign_in);
    let login_code_token = context.auth.hand_over_pending_login(token.expose(), bearer);
    Ok(LoginCodeRequest {
        message: REQUESTED.into(),
        login_code_token,
    })
}

/// Signs in with the code from the mail, on the client that asked for it. An account
/// with a second factor then waits for `completeLogin`: the code stands in for the
/// password, not for the second factor.
pub async fn login_with_code(
    context: &Context,
    code: String,
    login_code_token: Option<String>,
) -> Result<LoginPayload, AppError> {
    ensure_turned_on(context)?;
    context.auth.claim_password_work()?;
    let auth = &context.state.auth;
    let token = login_code_token.or_else(|| context.auth.pending_login().map(String::from));
    let sign_in = match token {
        Some(token) => auth.login_codes.find(&token).await?,
        None => None,
    };
    let Some(sign_in) = sign_in else {
        return Err(AppError::Unauthenticated(NO_CODE_SIGN_IN));
    };
    let waiting = Waiting {
        key: &sign_in.key,
        wrong_codes_allowed: login_code::TRIES,
        account: &sign_in.email,
        action: "login_with_code",
        wrong_outcome: "wrong_login_code",
        gone: NO_CODE_SIGN_IN,
    };
    code_check::pass(context, &waiting, async || {
        Ok(LoginCodes::code_matches(&sign_in, &code))
    })
    .await?;
    let storage = &context.state.storage;
    let user = match sign_in.user {
        Some(user) => storage.find_by_id(user).await?,
        None => None,
    };
    // Erased, disabled or moved to another address since the code went: no sign-in.
    let Some(mut user) = user.filter(|user| user.disabled.is_none() && user.email == sign_in.email)
    else {
        return Err(AppError::Unauthenticated(NO_CODE_SIGN_IN));
    };
    // The code came through the address: that proves it is the holder's.
    if !user.email_confirmed {
        storage.confirm_email(user.id).await?;
        user.email_confirmed = true;
    }
    if user.second_factor.is_some() {
        return await_second_factor(context, &user, sign_in.bearer).await;
    }
    start_session(context, user, sign_in.bearer).await
}
