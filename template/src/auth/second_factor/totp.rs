//! Time-based one-time passwords (RFC 6238) as authenticator apps compute them: 6 digits,
//! a 30-second period and HMAC-SHA-1, the only parameters every app honours.

use secrecy::{ExposeSecret, SecretSlice};
use totp_rs::{Algorithm, TOTP};

use crate::error::AppError;

const DIGITS: usize = 6;
const PERIOD_SECS: u64 = 30;
/// Codes of the period before and after the current one pass too: a phone's clock may
/// be a little off, and a code typed at the end of its period arrives in the next.
const SKEW: u64 = 1;
/// 160 bits, the size RFC 4226 recommends for HMAC-SHA-1 keys.
const SECRET_BYTES: usize = 20;

/// A fresh random secret.
///
/// # Errors
/// `Internal` when the system has no randomness to give.
pub fn generate_secret() -> Result<SecretSlice<u8>, AppError> {
    let mut secret = vec![0u8; SECRET_BYTES];
    getrandom::fill(&mut secret)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("no randomness available: {e}")))?;
    Ok(secret.into())
}

/// What an authenticator app needs to add the account: the secret in base32 (to type
/// in), the `otpauth://` URI, and that URI as an SVG QR code (to scan).
pub struct Enrolment {
    pub secret: String,
    pub uri: String,
    pub qr_code_svg: String,
}

/// The enrolment of `secret` for `account` (the email address), labelled with `issuer`.
///
/// # Errors
/// `Internal` if the issuer or the account holds a `:`, which the URI format reserves.
pub fn enrolment(
    secret: &SecretSlice<u8>,
    issuer: &str,
    account: &str,
) -> Result<Enrolment, AppError> {
    let totp = TOTP::new(
        Algorithm::SHA1,
        DIGITS,
        1,
        PERIOD_SECS,
        secret.expose_secret().to_vec(),
        Some(issuer.to_string()),
        account.to_string(),
    )
    .map_err(|e| AppError::Internal(anyhow::anyhow!("cannot label a TOTP secret: {e}")))?;
    let uri = totp.get_url();
    let qr_code_svg = qrcode::QrCode::new(uri.as_bytes())
        .map_err(|e| AppError::Internal(anyhow::anyhow!("cannot draw the QR code: {e}")))?
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    Ok(Enrolment {
        secret: totp.get_secret_base32(),
        uri,
        qr_code_svg,
    })
}

/// The period `code` belongs to, if it is the code of `secret` for the period of
/// `now_secs` or one beside it. Every candidate is computed and compared in constant
/// time, so the answer's timing tells nothing about how close a guess came.
pub fn matching_period(secret: &SecretSlice<u8>, code: &str, now_secs: u64) -> Option<u64> {
    let now = now_secs / PERIOD_SECS;
    let mut matched = None;
    for period in now.saturating_sub(SKEW)..=now + SKEW {
        let expected = code_at(secret, period);
        if constant_time_eq(expected.as_bytes(), code.as_bytes()) {
            matched = Some(period);
        }
    }
    matched
}

/// The code of `secret` for `period` (the Unix time divided by 30).
pub fn code_at(secret: &SecretSlice<u8>, period: u64) -> String {
    TOTP::new_unchecked(
        Algorithm::SHA1,
        DIGITS,
        0,
        PERIOD_SECS,
        secret.expose_secret().to_vec(),
        None,
        String::new(),
    )
    .generate(period * PERIOD_SECS)
}

/// Whether `code` could be a TOTP code at all: six digits.
pub fn looks_like_code(code: &str) -> bool {
    code.len() == DIGITS && code.bytes().all(|b| b.is_ascii_digit())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B's SHA-1 secret, with its 8-digit codes cut to our 6 digits.
    fn rfc_secret() -> SecretSlice<u8> {
        b"12345678901234567890".to_vec().into()
    }

    #[test]
    fn codes_match_the_rfc_test_vectors() {
        for (time, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(
                code_at(&rfc_secret(), time / PERIOD_SECS),
                code,
                "at {time}"
            );
        }
    }

    #[test]
    fn a_code_of_the_neighbouring_periods_passes_and_names_its_period() {
        let now = 1_111_111_109;
        let period = now / PERIOD_SECS;

        for offset in [period - 1, period, period + 1] {
            let code = code_at(&rfc_secret(), offset);
            assert_eq!(matching_period(&rfc_secret(), &code, now), Some(offset));
        }
        let stale = code_at(&rfc_secret(), period - 2);
        assert_eq!(matching_period(&rfc_secret(), &stale, now), None);
    }

    #[test]
    fn the_uri_names_the_issuer_and_the_account_and_the_qr_code_is_svg() {
        let enrolment = enrolment(&rfc_secret(), "My App", "ada@example.com").unwrap();

        assert_eq!(enrolment.secret, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert!(
            enrolment.uri.starts_with(
                "otpauth://totp/My%20App:ada%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
            ),
            "{}",
            enrolment.uri
        );
        assert!(
            enrolment.uri.contains("issuer=My%20App"),
            "{}",
            enrolment.uri
        );
        assert!(
            enrolment.qr_code_svg.contains("<svg"),
            "{}",
            enrolment.qr_code_svg
        );
    }

    #[test]
    fn only_six_digits_look_like_a_code() {
        assert!(looks_like_code("012345"));
        assert!(!looks_like_code("01234"));
        assert!(!looks_like_code("01234a"));
        assert!(!looks_like_code("abcd-efgh-jkmn"));
    }
}
