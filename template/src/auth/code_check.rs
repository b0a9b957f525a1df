//! What a sign-in waiting for a code does with each code it is given, for the second
//! factor (`completeLogin`) and the mailed code (`loginWithCode`) alike. A check counts
//! like a password check against the account and the client (`lockout.rs`); a wrong code
//! also counts against the waiting sign-in's own allowance, and the last one allowed
//! ends it; a right code ends it in one Redis step, so that of two requests with right
//! codes only one goes on.

use std::sync::LazyLock;

use redis::{AsyncCommands as _, Script};

use crate::{domain::Email, error::AppError, graphql::Context, redis::unavailable};

/// Records a wrong code on the waiting sign-in `KEYS[1]`, ending it at `ARGV[1]` wrong
/// codes: returns the codes left, or -1 when it was gone already.
static WRONG_CODE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local wrong = redis.call('HINCRBY', KEYS[1], 'wrong', 1)
local left = tonumber(ARGV[1]) - wrong
if left <= 0 then redis.call('DEL', KEYS[1]) end
return math.max(left, 0)
",
    )
});

/// A sign-in waiting for a code, as the check needs it.
pub struct Waiting<'a> {
    /// Its Redis hash, which counts its wrong codes in the field `wrong`.
    pub key: &'a str,
    pub wrong_codes_allowed: u32,
    /// The account the lockout counts the check against.
    pub account: &'a Email,
    /// The check's name in the limits' metrics.
    pub action: &'static str,
    /// The `auth_logins_total` outcome of a wrong code.
    pub wrong_outcome: &'static str,
    /// The answer once it is gone: expired, used, or never there.
    pub gone: &'static str,
}

const WRONG_CODE_ANSWER: &str = "the code is wrong";
const LAST_WRONG_CODE_ANSWER: &str =
    "the code is wrong, and that was the last try: start signing in again";

/// Runs `check` on a code for `waiting`, within the limits, and ends `waiting` when the
/// code is right: `Ok` then, and the caller signs in.
///
/// # Errors
/// `RateLimited` past the lockout's limits; `Unauthenticated` for a wrong code, or when
/// `waiting` is gone; `Unavailable` without Redis.
pub async fn pass(
    context: &Context,
    waiting: &Waiting<'_>,
    check: impl AsyncFnOnce() -> Result<bool, AppError>,
) -> Result<(), AppError> {
    let auth = &context.state.auth;
    let attempt = auth
        .lockout
        .admit(context.auth.client(), waiting.account, waiting.action)
        .await
        .inspect_err(super::metrics::login_refused)?;
    if !check().await? {
        auth.lockout.failed(attempt).await?;
        super::metrics::login(waiting.wrong_outcome);
        let left: i64 = WRONG_CODE
            .key(waiting.key)
            .arg(waiting.wrong_codes_allowed)
            .invoke_async(&mut auth.redis.connection())
            .await
            .map_err(unavailable)?;
        if left > 0 {
            return Err(AppError::Unauthenticated(WRONG_CODE_ANSWER));
        }
        context.auth.clear_pending_login_cookie();
        return Err(AppError::Unauthenticated(LAST_WRONG_CODE_ANSWER));
    }
    auth.lockout.succeeded(attempt).await?;
    let ended: u32 = auth
        .redis
        .connection()
        .del(waiting.key)
        .await
        .map_err(unavailable)?;
    if ended != 1 {
        return Err(AppError::Unauthenticated(waiting.gone));
    }
    context.auth.clear_pending_login_cookie();
    Ok(())
}
