//! TOTP secrets at rest: sealed with XChaCha20-Poly1305 under a key from the settings
//! (`auth.totp_encryption_key`), so a copy of the database or of Redis alone cannot
//! compute anyone's codes.
//!
//! A sealed secret is `v1:<key id>:<nonce and ciphertext, hex>`, and its account's id is
//! the associated data: a secret copied into another account's record does not open.
//! Keys rotate by setting a new encryption key and listing the old one in
//! `auth.totp_decryption_keys`: secrets sealed under it still open, and each is sealed
//! afresh under the new key the next time the holder enrols.

use std::sync::Arc;

use chacha20poly1305::{
    KeyInit as _, XChaCha20Poly1305, XNonce,
    aead::{Aead as _, Payload},
};
use secrecy::{ExposeSecret, SecretBox, SecretSlice};
use serde::{Deserialize, Deserializer};
use sha2::{Digest as _, Sha256};

use crate::{domain::UserId, error::AppError};

const FORMAT: &str = "v1";
const NONCE_BYTES: usize = 24;

/// The key base.toml ships for development. Production refuses to start with it.
pub const DEVELOPMENT_KEY: &str =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// A 256-bit key as the settings give it: 64 hex digits.
#[derive(Clone)]
pub struct KeyMaterial(Arc<SecretBox<[u8; 32]>>);

impl KeyMaterial {
    fn parse(hex_digits: &str) -> Result<Self, String> {
        let mut key = [0u8; 32];
        hex::decode_to_slice(hex_digits.trim(), &mut key).map_err(|_| {
            "must be 64 hex digits (32 random bytes, e.g. from `openssl rand -hex 32`)".to_string()
        })?;
        Ok(Self(Arc::new(SecretBox::new(Box::new(key)))))
    }

    /// Whether this is the development key, which everyone who has the template knows.
    pub fn is_development_key(&self) -> bool {
        Self::parse(DEVELOPMENT_KEY).is_ok_and(|development| development.id() == self.id())
    }

    /// A short name of the key, stored beside what it sealed: it reveals nothing of the
    /// key but picks the right one among several.
    fn id(&self) -> String {
        let digest = Sha256::new()
            .chain_update(b"totp-key-id:")
            .chain_update(self.0.expose_secret())
            .finalize();
        hex::encode(&digest[..4])
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.0.expose_secret().into())
    }
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyMaterial(id {}, redacted)", self.id())
    }
}

impl<'de> Deserialize<'de> for KeyMaterial {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A list of keys: a TOML array, or one comma-separated string from the environment.
///
/// # Errors
/// Fails when an entry is not 64 hex digits.
pub fn key_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<KeyMaterial>, D::Error> {
    crate::setting::list(deserializer)?
        .iter()
        .map(|entry| KeyMaterial::parse(entry).map_err(serde::de::Error::custom))
        .collect()
}

/// Seals under the current key; opens under it or any older key still listed.
#[derive(Clone, Debug)]
pub struct Sealer {
    current: KeyMaterial,
    older: Vec<KeyMaterial>,
}

impl Sealer {
    pub fn new(current: KeyMaterial, older: Vec<KeyMaterial>) -> Self {
        Self { current, older }
    }

    /// `secret`, sealed for the account `owner`.
    ///
    /// # Errors
    /// `Internal` when the system has no randomness to give.
    pub fn seal(&self, secret: &SecretSlice<u8>, owner: UserId) -> Result<String, AppError> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("no randomness available: {e}")))?;
        let owner = owner.to_string();
        let payload = Payload {
            msg: secret.expose_secret(),
            aad: owner.as_bytes(),
        };
        let sealed = self
            .current
            .cipher()
            .encrypt(XNonce::from_slice(&nonce), payload)
            .map_err(|_| AppError::Internal(anyhow::anyhow!("cannot seal a TOTP secret")))?;
        let body = [nonce.as_slice(), &sealed].concat();
        Ok([FORMAT, ":", &self.current.id(), ":", &hex::encode(body)].concat())
    }

    /// The secret `sealed` holds for the account `owner`.
    ///
    /// # Errors
    /// `Internal` when no listed key opens it (a key was dropped too early, or the
    /// record was tampered with).
    pub fn open(&self, sealed: &str, owner: UserId) -> Result<SecretSlice<u8>, AppError> {
        let unreadable =
            |why: &str| AppError::Internal(anyhow::anyhow!("cannot open a TOTP secret: {why}"));
        let mut parts = sealed.splitn(3, ':');
        let (Some(FORMAT), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(unreadable("unknown format"));
        };
        let key = std::iter::once(&self.current)
            .chain(&self.older)
            .find(|key| key.id() == key_id)
            .ok_or_else(|| {
                unreadable(
                    "its key is not in auth.totp_encryption_key or auth.totp_decryption_keys",
                )
            })?;
        let body = hex::decode(body).map_err(|_| unreadable("not hex"))?;
        if body.len() < NONCE_BYTES {
            return Err(unreadable("too short"));
        }
        let (nonce, ciphertext) = body.split_at(NONCE_BYTES);
        let owner = owner.to_string();
        let payload = Payload {
            msg: ciphertext,
            aad: owner.as_bytes(),
        };
        key.cipher()
            .decrypt(XNonce::from_slice(nonce), payload)
            .map(SecretSlice::from)
            .map_err(|_| unreadable("it does not authenticate"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> KeyMaterial {
        KeyMaterial::parse(&hex::encode([byte; 32])).unwrap()
    }

    fn secret() -> SecretSlice<u8> {
        b"12345678901234567890".to_vec().into()
    }

    #[test]
    fn a_sealed_secret_opens_for_its_owner_and_hides_the_secret() {
        let sealer = Sealer::new(key(1), Vec::new());
        let owner = UserId::generate();

        let sealed = sealer.seal(&secret(), owner).unwrap();

        assert!(
            !sealed.contains(&hex::encode(b"12345678901234567890")),
            "{sealed}"
        );
        let opened = sealer.open(&sealed, owner).unwrap();
        assert_eq!(opened.expose_secret(), secret().expose_secret());
    }

    #[test]
    fn a_secret_moved_to_another_account_does_not_open() {
        let sealer = Sealer::new(key(1), Vec::new());

        let sealed = sealer.seal(&secret(), UserId::generate()).unwrap();

        assert!(sealer.open(&sealed, UserId::generate()).is_err());
    }

    #[test]
    fn after_a_rotation_old_secrets_open_while_the_old_key_is_listed() {
        let owner = UserId::generate();
        let sealed = Sealer::new(key(1), Vec::new())
            .seal(&secret(), owner)
            .unwrap();

        let rotated = Sealer::new(key(2), vec![key(1)]);
        let dropped = Sealer::new(key(2), Vec::new());

        assert!(rotated.open(&sealed, owner).is_ok());
        let error = dropped.open(&sealed, owner).unwrap_err().to_string();
        assert!(error.contains("auth.totp_decryption_keys"), "{error}");
    }

    #[test]
    fn a_tampered_secret_does_not_open() {
        let sealer = Sealer::new(key(1), Vec::new());
        let owner = UserId::generate();
        let mut sealed = sealer.seal(&secret(), owner).unwrap();

        let last = sealed.pop().unwrap();
        sealed.push(if last == '0' { '1' } else { '0' });

        assert!(sealer.open(&sealed, owner).is_err());
    }

    #[test]
    fn keys_must_be_64_hex_digits_and_debug_hides_them() {
        assert!(KeyMaterial::parse("abc").is_err());
        assert!(KeyMaterial::parse(&"g".repeat(64)).is_err());
        let debug = format!("{:?}", key(7));
        assert!(!debug.contains("0707"), "{debug}");
    }

    #[test]
    fn base_toml_ships_the_development_key() {
        let base = include_str!("../../../config/base.toml");
        assert!(base.contains(DEVELOPMENT_KEY));
        assert!(
            KeyMaterial::parse(DEVELOPMENT_KEY)
                .unwrap()
                .is_development_key()
        );
        assert!(!key(9).is_development_key());
    }
}
