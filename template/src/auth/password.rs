//! bcrypt hashing, always on the blocking pool: at cost 12 a hash takes about a quarter
//! of a second, which would otherwise stall every request sharing the worker thread.
//!
//! At most one hash per CPU core but one runs at a time; further logins queue for a slot.
//! Without that cap a burst of logins takes every core and the cheapest unrelated
//! request waits behind them (measured: p99 of `{ apiVersion }` 6x its idle value during
//! 16 concurrent logins on 2 cores, see the template's README). Rating a new password
//! (`zxcvbn`, up to 100 ms) shares the hash's slot for the same reason.
//!
//! bcrypt reads only the first 72 bytes of a password. New passwords longer than that are
//! refused ([`Password`]), and a longer candidate never verifies: otherwise a 73-byte guess
//! would match the account whose password is its first 72 bytes. bcrypt 0.19's
//! `non_truncating_verify` cannot serve here: it refuses 72-byte passwords as well (it
//! counts C's terminating NUL), which would lock out accounts at the documented limit.

use std::sync::Arc;

use anyhow::Context as _;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{OnceCell, Semaphore};

use crate::{
    domain::{DomainError, Email, Password},
    error::AppError,
};

#[derive(Clone)]
pub struct PasswordHasher {
    cost: u32,
    /// Hash of a random password, verified when a login names an unknown account so that
    /// the answer takes as long as for a real one (no account enumeration by timing).
    dummy_hash: Arc<OnceCell<String>>,
    /// Hashes allowed to run at once: all cores but one, so requests keep a core.
    slots: Arc<Semaphore>,
}

impl PasswordHasher {
    pub fn new(cost: u32) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self {
            cost,
            dummy_hash: Arc::new(OnceCell::new()),
            slots: Arc::new(Semaphore::new(cores.saturating_sub(1).max(1))),
        }
    }

    /// Parses `input` as a new password of `owner` (see [`Password::parse`]) and hashes it,
    /// in one blocking task.
    ///
    /// # Errors
    /// `BadUserInput` for a password [`Password::parse`] refuses; `Internal` if bcrypt
    /// refuses the cost or the blocking task dies.
    pub async fn hash_new(&self, input: SecretString, owner: &Email) -> Result<String, AppError> {
        let owner = owner.clone();
        let cost = self.cost;
        let hashed = self
            .run(move || match Password::parse(input, &owner) {
                Ok(password) => bcrypt::hash(password.secret().expose_secret(), cost).map(Ok),
                Err(refused) => Ok(Err(refused)),
            })
            .await
            .context("Failed to hash a password")?;
        hashed.map_err(|DomainError(reason)| AppError::BadUserInput(reason))
    }

    /// Checks `candidate` against `hash`; `None` (unknown account) checks against a dummy
    /// hash and always fails, at the same cost.
    ///
    /// # Errors
    /// Fails if a stored hash is malformed or the blocking task dies.
    pub async fn verify(
        &self,
        candidate: &SecretString,
        hash: Option<&str>,
    ) -> anyhow::Result<bool> {
        // Never a password of ours (see the module docs); refusing it costs no hash, and
        // reveals nothing about the account.
        if candidate.expose_secret().len() > Password::MAX_BYTES {
            return Ok(false);
        }
        let (hash, known) = match hash {
            Some(hash) => (hash.to_string(), true),
            None => (self.dummy_hash().await?, false),
        };
        let candidate = candidate.clone();
        let matches = self
            .run(move || bcrypt::verify(candidate.expose_secret(), &hash))
            .await
            .context("Failed to verify a password")?;
        Ok(known && matches)
    }

    async fn dummy_hash(&self) -> anyhow::Result<String> {
        let cost = self.cost;
        self.dummy_hash
            .get_or_try_init(|| async move {
                let random = uuid::Uuid::new_v4().to_string();
                self.run(move || bcrypt::hash(random, cost))
                    .await
                    .context("Failed to prepare the dummy hash")
            })
            .await
            .cloned()
    }

    /// Runs `work` on the blocking pool once a hashing slot is free, keeping the
    /// caller's tracing span.
    async fn run<T, E>(
        &self,
        work: impl FnOnce() -> Result<T, E> + Send + 'static,
    ) -> anyhow::Result<T>
    where
        T: Send + 'static,
        E: std::error::Error + Send + Sync + 'static,
    {
        let _slot = self.slots.acquire().await?;
        let span = tracing::Span::current();
        Ok(tokio::task::spawn_blocking(move || span.in_scope(work)).await??)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSPHRASE: &str = "correct horse battery staple";

    fn owner() -> Email {
        Email::parse("ada@example.com").unwrap()
    }

    #[tokio::test]
    async fn a_hash_verifies_only_its_own_password() {
        let hasher = PasswordHasher::new(4);
        let hash = hasher
            .hash_new(SecretString::from(PASSPHRASE), &owner())
            .await
            .unwrap();

        assert!(
            hasher
                .verify(&SecretString::from(PASSPHRASE), Some(&hash))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify(&SecretString::from("wrong horse!"), Some(&hash))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn a_guess_longer_than_72_bytes_never_matches_its_first_72() {
        let hasher = PasswordHasher::new(4);
        let longest = format!("{PASSPHRASE} and a tail of words, {}", "q".repeat(72));
        let longest = &longest[..Password::MAX_BYTES];
        let hash = hasher
            .hash_new(SecretString::from(longest), &owner())
            .await
            .unwrap();
        let guess = format!("{longest}!");

        assert!(
            bcrypt::verify(&guess, &hash).unwrap(),
            "bcrypt alone truncates"
        );
        assert!(
            !hasher
                .verify(&SecretString::from(guess), Some(&hash))
                .await
                .unwrap()
        );
        assert!(
            hasher
                .verify(&SecretString::from(longest), Some(&hash))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn a_refused_new_password_says_why() {
        let hasher = PasswordHasher::new(4);

        let refused = hasher
            .hash_new(SecretString::from("password1234"), &owner())
            .await
            .unwrap_err();

        assert!(
            matches!(&refused, AppError::BadUserInput(reason) if reason.contains("common password")),
            "{refused:?}"
        );
    }

    #[tokio::test]
    async fn unknown_accounts_never_verify_but_still_pay_for_a_hash() {
        let hasher = PasswordHasher::new(4);

        let verified = hasher
            .verify(&SecretString::from("anything"), None)
            .await
            .unwrap();

        assert!(!verified);
        assert!(hasher.dummy_hash.get().is_some(), "no hash was computed");
    }
}
