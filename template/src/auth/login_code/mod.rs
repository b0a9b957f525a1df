//! Sign-in by a code mailed to the address, in place of the password.
//!
//! `requestLoginCode` starts a code sign-in bound to its client (the `pending-login`
//! cookie, or a token for `bearer` clients) and answers at once, the same for every
//! address: the address is looked up only after the answer. For an account that may sign
//! in, the mail carries an 8-character code, made when the mail is sent{% if queue %} (by the
//! worker: no job payload holds a code){% endif %}; any other address gets the "no account"
//! notice. `loginWithCode` checks the code: it lives 3 minutes, allows 3 tries, and works
//! once. Redis keeps only a hash of the code, beside the code sign-in it belongs to,
//! under a key tagged with a hash of the address.

pub mod resolvers;

use std::{sync::LazyLock, time::Duration};

use redis::{AsyncCommands as _, Script};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest as _, Sha256};

use super::sessions::hash;
use crate::{
    domain::{Email, UserId},
    error::AppError,
    redis::{Redis, unavailable},
};

/// How long a code sign-in, and its code, lasts.
pub const LIFETIME: Duration = Duration::from_secs(180);
/// Tries one code allows; the last wrong one ends the code sign-in.
pub const TRIES: u32 = 3;
const CODE_LENGTH: usize = 8;
/// No `0`/`O`, `1`/`I`/`L`: a code read off a phone is typed right. 31 symbols, so a
/// code holds about 39.6 random bits.
const ALPHABET: &[u8; 31] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

/// Gives the code sign-in `KEYS[1]`, if it still lives, the code hashed `ARGV[1]` for the
/// account `ARGV[2]`: returns 1, or 0 when it ended meanwhile.
static ISSUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'code', ARGV[1], 'user', ARGV[2])
return 1
",
    )
});

/// The client's token for a code sign-in: 32 hex digits from the address's hash (which
/// place its key in the address's Redis Cluster slot), then 256 random bits.
pub struct CodeToken(SecretString);

impl CodeToken {
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

/// A code sign-in as a request or the mailer finds it.
pub struct CodeSignIn {
    id: CodeSignInId,
    /// Its Redis hash.
    pub key: String,
    /// The address the code was asked for.
    pub email: Email,
    /// The account the mail went to, once it went; `None` for an address without one.
    pub user: Option<UserId>,
    /// The session it ends in goes to the answer rather than a cookie.
    pub bearer: bool,
    code_hash: Option<String>,
}

/// Names a code sign-in without being a way into it: what a mail job carries.
pub type CodeSignInId = String;

#[derive(Clone)]
pub struct LoginCodes {
    redis: Redis,
}

impl LoginCodes {
    pub fn new(redis: Redis) -> Self {
        Self { redis }
    }

    /// The key of the code sign-in whose id (`<tag>:<hash of the secret>`) is `id`.
    fn key(&self, id: &str) -> Option<String> {
        let (tag, secret_hash) = id.split_once(':')?;
        let well_formed = tag.len() == 32 && secret_hash.len() == 64;
        let hex = id.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
        (well_formed && hex).then(|| self.redis.key(&["login-code:{", tag, "}:", secret_hash].concat()))
    }

    /// Starts a code sign-in for `email`; returns the client's token and the id the mail
    /// job names it by.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn start(
        &self,
        email: &Email,
        bearer: bool,
    ) -> Result<(CodeToken, CodeSignInId), AppError> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("no randomness available: {e}")))?;
        let tag = hex::encode(Sha256::digest(email.as_ref().as_bytes()))[..32].to_string();
        let secret = hex::encode(secret);
        let id = [tag.as_str(), ":", &hash(&secret)].concat();
        let key = self.key(&id).expect("an id just made");
        redis::pipe()
            .atomic()
            .hset_multiple(
                &key,
                &[
                    ("email", email.as_ref()),
                    ("wrong", "0"),
                    ("bearer", if bearer { "1" } else { "0" }),
                ],
            )
            .ignore()
            .expire(&key, LIFETIME.as_secs().cast_signed())
            .ignore()
            .query_async::<()>(&mut self.redis.connection())
            .await
            .map_err(unavailable)?;
        let token = CodeToken(SecretString::from([tag, secret].concat()));
        Ok((token, id))
    }

    /// The id of the code sign-in `token` names, if it could name one.
    fn id_of(token: &str) -> Option<CodeSignInId> {
        let well_formed = token.len() == 96 && token.bytes().all(|b| b.is_ascii_hexdigit());
        well_formed.then(|| {
            let (tag, secret) = token.split_at(32);
            [tag, ":", &hash(secret)].concat()
        })
    }

    /// The live code sign-in `token` names, if any.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn find(&self, token: &str) -> Result<Option<CodeSignIn>, AppError> {
        let Some((id, key)) = Self::id_of(token).and_then(|id| Some((id.clone(), self.key(&id)?)))
        else {
            return Ok(None);
        };
        type Fields = (Option<String>, Option<String>, Option<String>, Option<String>);
        let (email, user, code_hash, bearer): Fields = self
            .redis
            .connection()
            .hmget(&key, &["email", "user", "code", "bearer"])
            .await
            .map_err(unavailable)?;
        let Some(email) = email.and_then(|email| Email::parse(&email).ok()) else {
            return Ok(None);
        };
        Ok(Some(CodeSignIn {
            id,
            key,
            email,
            user: user.and_then(|user| UserId::parse(&user).ok()),
            bearer: bearer.as_deref() == Some("1"),
            code_hash,
        }))
    }

    /// Makes the code of the code sign-in `id` for the account `user`: the code to mail,
    /// or `None` when the code sign-in ended before the mail went.
    ///
    /// # Errors
    /// Fails when Redis does not answer or the system has no randomness.
    pub async fn issue(&self, id: &str, user: UserId) -> anyhow::Result<Option<SecretString>> {
        let Some(key) = self.key(id) else {
            anyhow::bail!("a malformed code sign-in id");
        };
        let code = generate_code()?;
        let issued: u8 = ISSUE
            .key(&key)
            .arg(code_hash(id, &code))
            .arg(user.to_string())
            .invoke_async(&mut self.redis.connection())
            .await?;
        Ok((issued == 1).then(|| SecretString::from(shown(&code))))
    }

    /// Whether `typed` is the code of `sign_in`, compared in constant time.
    pub fn code_matches(sign_in: &CodeSignIn, typed: &str) -> bool {
        let (Some(expected), Some(code)) = (&sign_in.code_hash, normalise(typed)) else {
            return false;
        };
        let actual = code_hash(&sign_in.id, &code);
        expected.len() == actual.len()
            && expected
                .bytes()
                .zip(actual.bytes())
                .fold(0, |diff, (a, b)| diff | (a ^ b))
                == 0
    }
}

fn generate_code() -> anyhow::Result<String> {
    let mut code = String::with_capacity(CODE_LENGTH);
    while code.len() < CODE_LENGTH {
        let mut random = [0u8; CODE_LENGTH];
        getrandom::fill(&mut random).map_err(|e| anyhow::anyhow!("no randomness available: {e}"))?;
        // Bytes past the last whole multiple of the 31 symbols are dropped: no bias.
        let symbols = random
            .iter()
            .filter(|b| usize::from(**b) < 256 - 256 % ALPHABET.len())
            .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]));
        code.extend(symbols.take(CODE_LENGTH - code.len()));
    }
    Ok(code)
}

/// The code as mailed: `XXXX-XXXX`.
fn shown(code: &str) -> String {
    [&code[..CODE_LENGTH / 2], "-", &code[CODE_LENGTH / 2..]].concat()
}

/// The code as typed, canonical: without dashes or spaces, upper case; `None` when it
/// cannot be a code.
fn normalise(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let valid = code.len() == CODE_LENGTH
        && code.bytes().all(|b| ALPHABET.contains(&b));
    valid.then_some(code)
}

/// What Redis keeps of `code`: its hash, salted with the code sign-in's id.
fn code_hash(id: &str, code: &str) -> String {
    hex::encode(Sha256::digest([id, ":", code].concat().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_eight_unambiguous_symbols_shown_in_two_groups() {
        for _ in 0..100 {
            let code = generate_code().unwrap();
            assert_eq!(code.len(), CODE_LENGTH);
            assert!(!code.contains(['0', 'O', '1', 'I', 'L']), "{code}");
            let mailed = shown(&code);
            assert_eq!(mailed.len(), 9);
            assert_eq!(normalise(&mailed.to_lowercase()), Some(code));
        }
    }

    #[test]
    fn only_well_formed_codes_normalise() {
        assert_eq!(normalise("abcd efgh"), Some("ABCDEFGH".into()));
        assert_eq!(normalise("ABCD-EFG"), None);
        assert_eq!(normalise("ABCD-EFG0"), None);
    }
}
