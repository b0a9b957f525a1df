//! A second factor: TOTP codes from an authenticator app, with single-use recovery codes
//! for when the phone is lost (OWASP ASVS 5.0 V6.5, V6.6).
//!
//! `setUpTotp` shows a new secret, `confirmTotp` turns it on with a first code and hands
//! out the recovery codes; from then on `login` ends in a pending sign-in that
//! `completeLogin` finishes with a code. Code checks are password checks: one per
//! request, counted by the same per-account and per-client limits (`lockout.rs`).

mod pending;
mod recovery_codes;
pub mod resolvers;
mod sealing;
mod totp;
mod totp_state;

pub use pending::LIFETIME as PENDING_LOGIN_LIFETIME;
pub use sealing::{DEVELOPMENT_KEY, KeyMaterial, key_list};

use pending::PendingLogins;
use sealing::Sealer;
use totp_state::TotpState;

use super::AuthSettings;
use crate::{domain::UserId, error::AppError, redis::Redis};

/// The second-factor services shared by all requests.
pub struct SecondFactors {
    sealer: Sealer,
    pending: PendingLogins,
    totp: TotpState,
    issuer: String,
}

impl SecondFactors {
    pub fn new(settings: &AuthSettings, redis: &Redis) -> Self {
        Self {
            sealer: Sealer::new(
                settings.totp_encryption_key.clone(),
                settings.totp_decryption_keys.clone(),
            ),
            pending: PendingLogins::new(redis.clone()),
            totp: TotpState::new(redis.clone()),
            issuer: settings.totp_issuer.clone(),
        }
    }

    /// Forgets what Redis holds on `user`'s second factor: pending sign-ins, an
    /// enrolment under way, the last code used. The account is being erased.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn forget(&self, user: UserId) -> Result<(), AppError> {
        self.pending.forget(user).await?;
        self.totp.forget(user).await
    }
}
