//! Metrics of sign-ins and rate limits.
//!
//! `auth_logins_total{outcome}` counts the `login` and `completeLogin` calls that reached
//! a verdict: `ok`, `wrong_credentials` (unknown email or wrong password, alike here as in
//! the answer), `rate_limited`, `disabled` (an admin disabled the account),
//! `second_factor_required` (the password was right; a code is due),
//! `wrong_second_factor`, and with email `wrong_login_code` (`loginWithCode`) and, with
//! confirmation required, `unconfirmed`. Calls that fail before (malformed email) or on
//! the way (Redis down) show in `graphql_operations_total{operation="login"}` only.
//!
//! `auth_rate_limited_total{action}` counts refusals by each limit: `login`,
//! `change_password` and `reauthenticate` (password checks), `complete_login`,
//! `confirm_totp` and with email `login_with_code` (code checks), `register`, and with email
//! `mail` (mail requests per client) and `mail_recipient` (mails per address).

use crate::error::AppError;

pub(super) fn login(outcome: &'static str) {
    metrics::counter!("auth_logins_total", "outcome" => outcome).increment(1);
}

/// Counts a login the lockout refused, if `error` is that refusal.
pub(super) fn login_refused(error: &AppError) {
    if matches!(error, AppError::RateLimited { .. }) {
        login("rate_limited");
    }
}

/// Counts a refusal by the limit on `action`, if `error` is one.
pub(super) fn limited(action: &'static str, error: &AppError) {
    if matches!(error, AppError::RateLimited { .. }) {
        metrics::counter!("auth_rate_limited_total", "action" => action).increment(1);
    }
}
