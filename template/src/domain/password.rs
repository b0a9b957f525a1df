use secrecy::{ExposeSecret, SecretString};

use super::DomainError;

/// A password acceptable for a new account.
///
/// bcrypt reads at most 72 bytes, so longer passwords are refused rather than silently
/// truncated (OWASP ASVS 5.0, V6.2). Passphrases of 64 characters fit.
#[derive(Debug, Clone)]
pub struct Password(SecretString);

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_BYTES: usize = 72;

    /// # Errors
    /// Refuses passwords under 8 characters or over 72 bytes.
    pub fn parse(input: SecretString) -> Result<Self, DomainError> {
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
        Ok(Self(input))
    }

    pub fn secret(&self) -> &SecretString {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Password, DomainError> {
        Password::parse(SecretString::from(text))
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(parse("1234567").is_err());
        assert!(parse("12345678").is_ok());
    }

    #[test]
    fn a_64_character_passphrase_is_accepted() {
        assert!(parse(&"correct horse ".repeat(5)[..64]).is_ok());
    }

    #[test]
    fn passwords_over_72_bytes_are_refused_not_truncated() {
        assert!(parse(&"a".repeat(72)).is_ok());
        let error = parse(&"a".repeat(73)).unwrap_err();
        assert!(error.0.contains("at most 72 bytes"), "{error}");
        // 36 two-byte characters are 72 bytes; one more is too long.
        assert!(parse(&"é".repeat(37)).is_err());
    }
}
