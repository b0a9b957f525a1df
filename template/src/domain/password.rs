use secrecy::{ExposeSecret, SecretString};
use zxcvbn::Score;

use super::{DomainError, Email};

/// A password acceptable for a new account.
///
/// bcrypt reads at most 72 bytes, so longer passwords are refused rather than silently
/// truncated (OWASP ASVS 5.0, V6.2). Passphrases of 64 characters fit. Common and
/// easily guessed passwords are refused too (V6.2.4): `zxcvbn` rates each one against its
/// frequency lists of common passwords, words and names, and against the account's own
/// email address.
///
/// # Implementation Notes
/// Rating a 72-byte password full of look-alike characters takes `zxcvbn` up to 100 ms,
/// so parse on the blocking pool (`PasswordHasher::hash_new` does), not on a request
/// thread.
#[derive(Debug, Clone)]
pub struct Password(SecretString);

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_BYTES: usize = 72;
    /// `zxcvbn`'s "somewhat guessable" rating: more than 10^6 guesses needed, which no
    /// entry of its lists nor a simple variation of one meets. The next rating needs more
    /// than 10^8, which no 8-character password can reach, and throttled online guessing
    /// against bcrypt gets nowhere near 10^6.
    pub const MIN_SCORE: Score = Score::Two;

    /// # Errors
    /// Refuses passwords under 8 characters, over 72 bytes, or guessable, the latter
    /// with `zxcvbn`'s feedback as the reason.
    pub fn parse(input: SecretString, owner: &Email) -> Result<Self, DomainError> {
        let text = input.expose_secret();
        if text.chars().count() < Self::MIN_CHARS {
            return Err(DomainError(format!(
                "the password must have at least {} characters",
                Self::MIN_CHARS
            )));
        }
        if text.len() > Self::MAX_BYTES {
            return Err(DomainError(format!(
                "the password must be at most {} bytes long (it is {}); use a shorter passphrase",
                Self::MAX_BYTES,
                text.len()
            )));
        }
        let strength = zxcvbn::zxcvbn(text, &owner.guessable_parts());
        if strength.score() < Self::MIN_SCORE {
            let feedback = strength
                .feedback()
                .map(ToString::to_string)
                .filter(|text| !text.trim().is_empty())
                .unwrap_or_else(|| "This password is easy to guess.".into());
            return Err(DomainError(feedback.trim().to_string()));
        }
        Ok(Self(input))
    }

    pub fn secret(&self) -> &SecretString {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> Email {
        Email::parse("ada.lovelace@example.com").unwrap()
    }

    fn parse(text: &str) -> Result<Password, DomainError> {
        Password::parse(SecretString::from(text), &owner())
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(parse("vX9#qL2").is_err());
        assert!(parse("vX9#qL2m").is_ok());
    }

    #[test]
    fn a_64_character_passphrase_is_accepted() {
        assert!(parse(&"correct horse battery staple ".repeat(3)[..64]).is_ok());
    }

    #[test]
    fn passwords_over_72_bytes_are_refused_not_truncated() {
        let longest = "correct horse battery staple, then some more words to fill it up.";
        let longest = format!("{longest}{}", "x".repeat(72 - longest.len()));
        assert!(parse(&longest).is_ok());
        let error = parse(&format!("{longest}y")).unwrap_err();
        assert!(error.0.contains("at most 72 bytes"), "{error}");
        // 36 two-byte characters are 72 bytes; one more is too long.
        assert!(parse(&"é".repeat(37)).unwrap_err().0.contains("72 bytes"));
    }

    #[test]
    fn common_passwords_are_refused_with_the_rating_feedback() {
        for common in ["password1234", "12345678", "qwertyuiop"] {
            let error = parse(common).unwrap_err();
            assert!(error.0.contains("common password"), "{common}: {error}");
        }
    }

    #[test]
    fn the_owners_address_is_no_password() {
        let error = parse("ada.lovelace@example.com").unwrap_err();
        assert!(!error.0.is_empty());
        assert!(parse("ada.lovelace@example.com").is_err());
        assert!(
            Password::parse(
                SecretString::from("ada.lovelace@example.com"),
                &Email::parse("someone.else@example.org").unwrap()
            )
            .is_ok(),
            "refused for its own sake, not for being the owner's address"
        );
    }
}
