//! The account mails. Each says what happened and what to do if it was not you.

use crate::mail::{Mail, templates::Action};

pub fn confirm_email(link: &str, expires_in: &str) -> Mail {
    let instructions = format!(
        "Thanks for signing up. Confirm that this address is yours with the link below; it works once and expires in {expires_in}."
    );
    Mail::compose(
        "Confirm your email address",
        &[
            &instructions,
            "If you did not sign up, ignore this message: no account is confirmed without the link.",
        ],
        Some(Action {
            label: "Confirm your email",
            url: link,
        }),
    )
}

pub fn already_registered(link: &str) -> Mail {
    Mail::compose(
        "Someone tried to sign up with your address",
        &[
            "Someone tried to create an account with this email address, but you already have one.",
            "If it was you, sign in instead, or reset your password with the link below. If it was not you, ignore this message: your account is unchanged.",
        ],
        Some(Action {
            label: "Reset your password",
            url: link,
        }),
    )
}

pub fn reset_password(link: &str, expires_in: &str) -> Mail {
    let instructions = format!(
        "We received a request to reset your password. Choose a new one with the link below; it works once and expires in {expires_in}."
    );
    Mail::compose(
        "Reset your password",
        &[
            &instructions,
            "If you did not ask for this, ignore this message: your password stays as it is.",
        ],
        Some(Action {
            label: "Choose a new password",
            url: link,
        }),
    )
}

pub fn password_changed() -> Mail {
    Mail::compose(
        "Your password was changed",
        &[
            "The password of your account was just changed, and every session was signed out.",
            "If you did not do this, reset your password at once and tell us: someone else may have access to your email.",
        ],
        None,
    )
}

/// "24 hours", "1 hour", "15 minutes", "30 seconds".
pub fn describe(duration: std::time::Duration) -> String {
    let secs = duration.as_secs();
    let (amount, unit) = if secs >= 3600 && secs.is_multiple_of(3600) {
        (secs / 3600, "hour")
    } else if secs >= 60 && secs.is_multiple_of(60) {
        (secs / 60, "minute")
    } else {
        (secs, "second")
    };
    let plural = if amount == 1 { "" } else { "s" };
    format!("{amount} {unit}{plural}")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(describe(Duration::from_secs(86_400)), "24 hours");
        assert_eq!(describe(Duration::from_secs(3600)), "1 hour");
        assert_eq!(describe(Duration::from_secs(900)), "15 minutes");
        assert_eq!(describe(Duration::from_secs(90)), "90 seconds");
    }

    #[test]
    fn every_account_mail_says_what_to_do_if_it_was_not_you() {
        let link = "https://example.com/x?token=abc";
        for mail in [
            confirm_email(link, "1 hour"),
            already_registered(link),
            reset_password(link, "1 hour"),
            password_changed(),
        ] {
            assert!(mail.text.contains("not"), "{}", mail.subject);
            assert!(mail.html.contains("<p>"), "{}", mail.subject);
        }
    }
}
