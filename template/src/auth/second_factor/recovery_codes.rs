//! Recovery codes: single-use codes that stand in for the authenticator when the phone is
//! lost. Each is 12 characters of Crockford's base32 (60 random bits; no `i`, `l`, `o` or
//! `u` to misread), shown as `xxxx-xxxx-xxxx`. Storage keeps only a hash of each, salted
//! with the account's id.

use sha2::{Digest as _, Sha256};

use crate::{domain::UserId, error::AppError};

/// Codes per set: a new set replaces the old one whole.
pub const COUNT: usize = 10;
const LENGTH: usize = 12;
const GROUP: usize = 4;
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A new set of codes, as the holder is shown them (once).
///
/// # Errors
/// `Internal` when the system has no randomness to give.
pub fn generate() -> Result<Vec<String>, AppError> {
    let mut random = [0u8; COUNT * LENGTH];
    getrandom::fill(&mut random)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("no randomness available: {e}")))?;
    Ok(random
        .chunks(LENGTH)
        .map(|chunk| {
            // 256 is a multiple of 32: each byte picks a character without bias.
            let code: Vec<u8> = chunk
                .iter()
                .map(|b| ALPHABET[usize::from(b % 32)])
                .collect();
            code.chunks(GROUP)
                .map(|group| String::from_utf8_lossy(group).into_owned())
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect())
}

/// The code as typed, in its canonical form: without dashes or spaces, lower case, with
/// the letters Crockford's base32 reads as digits (`o` as `0`, `i` and `l` as `1`).
/// `None` when it cannot be a recovery code.
pub fn normalise(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| match c.to_ascii_lowercase() {
            'o' => '0',
            'i' | 'l' => '1',
            other => other,
        })
        .collect();
    (code.len() == LENGTH && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

/// What storage keeps of `code` (normalised) for the account `owner`.
pub fn hash(owner: UserId, code: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"recovery-code:")
        .chain_update(owner.to_string().as_bytes())
        .chain_update(b":")
        .chain_update(code.as_bytes())
        .finalize();
    hex::encode(digest)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn a_set_holds_ten_distinct_grouped_codes_that_normalise() {
        let codes = generate().unwrap();

        assert_eq!(codes.len(), COUNT);
        assert_eq!(codes.iter().collect::<HashSet<_>>().len(), COUNT);
        for code in &codes {
            assert_eq!(code.len(), 14, "{code}");
            assert_eq!(code.matches('-').count(), 2, "{code}");
            assert!(normalise(code).is_some(), "{code}");
        }
    }

    #[test]
    fn typing_slips_are_forgiven() {
        assert_eq!(normalise("ABCD-EFGH-JKMN"), Some("abcdefghjkmn".into()));
        assert_eq!(normalise("o1lI 2345 6789"), Some("011123456789".into()));
        assert_eq!(normalise("abcd-efgh-jkm"), None);
        assert_eq!(normalise("abcd-efgh-jkmu"), None);
        assert_eq!(normalise("123456"), None);
    }

    #[test]
    fn the_hash_depends_on_the_account() {
        let code = "abcdefghjkmn";

        assert_ne!(
            hash(UserId::generate(), code),
            hash(UserId::generate(), code)
        );
    }
}
