use serde::{Deserialize, Serialize};

use super::DomainError;

/// An email address, trimmed and lower-cased so that one mailbox maps to one account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// # Errors
    /// Refuses anything that is not `local@domain.tld` within 254 characters.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let email = input.trim().to_lowercase();
        let invalid = || DomainError(format!("`{}` is not a valid email address", input.trim()));
        if email.len() > 254 || email.chars().any(char::is_whitespace) {
            return Err(invalid());
        }
        let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
        let domain_ok = domain.contains('.')
            && !domain.contains('@')
            && !domain.starts_with('.')
            && !domain.ends_with('.');
        if local.is_empty() || local.len() > 64 || !domain_ok {
            return Err(invalid());
        }
        Ok(Self(email))
    }

    /// The mailbox this address delivers to, as far as limits go: without a `+tag` in the
    /// local part, which most providers ignore (`ada+1@example.com` reaches
    /// `ada@example.com`). Limits per recipient key on it, so tags cannot multiply them.
    pub fn mailbox(&self) -> std::borrow::Cow<'_, str> {
        let (local, domain) = self.0.split_once('@').unwrap_or((&self.0, ""));
        match local.split_once('+') {
            Some((base, _)) if !base.is_empty() => format!("{base}@{domain}").into(),
            _ => self.0.as_str().into(),
        }
    }

    /// The address and its parts (local part, domain labels): words a guesser who knows
    /// the address tries first, so a password must not be made of them.
    pub fn guessable_parts(&self) -> Vec<&str> {
        let (local, domain) = self.0.split_once('@').unwrap_or((&self.0, ""));
        let mut parts = vec![self.0.as_str(), local];
        parts.extend(domain.split('.').filter(|label| !label.is_empty()));
        parts
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Email {
    type Error = DomainError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Email> for String {
    fn from(email: Email) -> Self {
        email.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_normalised() {
        let email = Email::parse("  Ada.Lovelace@Example.COM ").unwrap();
        assert_eq!(email.as_ref(), "ada.lovelace@example.com");
    }

    #[test]
    fn the_mailbox_drops_a_tag_but_keeps_the_rest() {
        let mailbox = |text: &str| Email::parse(text).unwrap().mailbox().into_owned();

        assert_eq!(mailbox("victim+1@example.com"), "victim@example.com");
        assert_eq!(mailbox("victim+a+b@example.com"), "victim@example.com");
        assert_eq!(mailbox("victim@example.com"), "victim@example.com");
        assert_eq!(mailbox("+only@example.com"), "+only@example.com");
    }

    #[test]
    fn the_guessable_parts_are_the_address_its_local_part_and_domain_labels() {
        let email = Email::parse("ada.lovelace@mail.example.com").unwrap();
        assert_eq!(
            email.guessable_parts(),
            [
                "ada.lovelace@mail.example.com",
                "ada.lovelace",
                "mail",
                "example",
                "com"
            ]
        );
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for input in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "ada@example",
            "ada@@example.com",
            "ada lovelace@example.com",
            "ada@.example.com",
            &format!("{}@example.com", "a".repeat(65)),
        ] {
            assert!(Email::parse(input).is_err(), "accepted {input:?}");
        }
    }
}
