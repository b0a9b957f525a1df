//! The account mails. Each says what happened and what to do if it was not you; the
//! wording is in `templates/mail/` (see [`crate::mail::templates`]).

crate::mail::templates::mails! {
    /// An account mail with what its templates show.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Mail {
        /// A new account's confirmation link, which expires in `expires_in`; says how
        /// signing in answers until then when `required_to_sign_in`.
        #[templates("mail/confirm_email.subject.txt", "mail/confirm_email.txt", "mail/confirm_email.html")]
        ConfirmEmail { link: String, expires_in: String, required_to_sign_in: bool },
        /// Someone tried to register the address of an existing account; `link` leads
        /// to the password-reset form.
        #[templates("mail/address_taken.subject.txt", "mail/address_taken.txt", "mail/address_taken.html")]
        AddressTaken { link: String },
        /// A password-reset link, which expires in `expires_in`.
        #[templates("mail/reset_password.subject.txt", "mail/reset_password.txt", "mail/reset_password.html")]
        ResetPassword { link: String, expires_in: String },
        /// The account's password was changed or reset.
        #[templates("mail/password_changed.subject.txt", "mail/password_changed.txt", "mail/password_changed.html")]
        PasswordChanged,
        /// A reset or confirmation link was asked for an address no account uses; `link`
        /// leads to registration.
        #[templates("mail/no_account.subject.txt", "mail/no_account.txt", "mail/no_account.html")]
        NoAccount { link: String },
        /// A confirmation link was asked for an address already confirmed; `link` leads
        /// to the password-reset form.
        #[templates("mail/already_confirmed.subject.txt", "mail/already_confirmed.txt", "mail/already_confirmed.html")]
        AlreadyConfirmed { link: String },
        /// Sent to the new address when the holder asks to sign in with it; the change
        /// waits for `link`, which expires in `expires_in`.
        #[templates("mail/confirm_email_change.subject.txt", "mail/confirm_email_change.txt", "mail/confirm_email_change.html")]
        ConfirmEmailChange { link: String, expires_in: String },
        /// Sent to the old address once a change of address is confirmed.
        #[templates("mail/email_changed.subject.txt", "mail/email_changed.txt", "mail/email_changed.html")]
        EmailChanged,
        /// A sign-in from a device not seen on the account in the last 30 days; `link`
        /// leads to the password-reset form.
        #[templates("mail/new_sign_in.subject.txt", "mail/new_sign_in.txt", "mail/new_sign_in.html")]
        NewSignIn { device: String, client: String, at: String, link: String },
        /// A session on `device` was signed out from another one; `link` leads to the
        /// password-reset form.
        #[templates("mail/session_revoked.subject.txt", "mail/session_revoked.txt", "mail/session_revoked.html")]
        SessionRevoked { device: String, link: String },
        /// The account and its data were deleted at the holder's request.
        #[templates("mail/account_deleted.subject.txt", "mail/account_deleted.txt", "mail/account_deleted.html")]
        AccountDeleted,
        /// A code that signs in on the device that asked for it, for `expires_in`.
        #[templates("mail/login_code.subject.txt", "mail/login_code.txt", "mail/login_code.html")]
        LoginCode { code: String, expires_in: String },
        /// The second factor changed as `change` says; `link` leads to the password-reset
        /// form.
        #[templates("mail/second_factor_changed.subject.txt", "mail/second_factor_changed.txt", "mail/second_factor_changed.html")]
        SecondFactorChanged { change: String, link: String },
    }
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
    use crate::mail::{Compose as _, templates::assert_snapshot};

    /// A link whose query needs escaping in HTML: the base URL comes from the settings.
    const LINK: &str = r#"https://example.com/a?b=<script>alert('x')</script>&c="d"&token=abc"#;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(describe(Duration::from_secs(86_400)), "24 hours");
        assert_eq!(describe(Duration::from_secs(3600)), "1 hour");
        assert_eq!(describe(Duration::from_secs(900)), "15 minutes");
        assert_eq!(describe(Duration::from_secs(90)), "90 seconds");
    }

    #[test]
    fn links_are_escaped_in_html_and_kept_as_they_are_in_text() {
        let message = Mail::AddressTaken { link: LINK.into() }.compose().unwrap();

        let escaped = "href=\"https://example.com/a?b=&#60;script&#62;alert(&#39;x&#39;)";
        assert!(message.text.contains(LINK), "{}", message.text);
        assert!(!message.html.contains("<script>"), "{}", message.html);
        assert!(message.html.contains(escaped), "{}", message.html);
    }

    #[test]
    fn the_confirmation_mail_as_sent() {
        let mail = Mail::ConfirmEmail {
            link: LINK.into(),
            expires_in: "24 hours".into(),
            required_to_sign_in: false,
        };
        assert_snapshot("account_confirm_email", &mail);
    }

    #[test]
    fn the_confirmation_mail_says_how_sign_in_answers_until_confirmed_when_required() {
        let mail = Mail::ConfirmEmail {
            link: LINK.into(),
            expires_in: "24 hours".into(),
            required_to_sign_in: true,
        };
        assert_snapshot("account_confirm_email_required", &mail);
    }

    #[test]
    fn the_no_account_mail_as_sent() {
        assert_snapshot("account_no_account", &Mail::NoAccount { link: LINK.into() });
    }

    #[test]
    fn the_already_confirmed_mail_as_sent() {
        assert_snapshot(
            "account_already_confirmed",
            &Mail::AlreadyConfirmed { link: LINK.into() },
        );
    }

    #[test]
    fn the_address_taken_mail_as_sent() {
        let mail = Mail::AddressTaken { link: LINK.into() };
        assert_snapshot("account_address_taken", &mail);
    }

    #[test]
    fn the_reset_mail_as_sent() {
        let mail = Mail::ResetPassword {
            link: LINK.into(),
            expires_in: "1 hour".into(),
        };
        assert_snapshot("account_reset_password", &mail);
    }

    #[test]
    fn the_password_changed_mail_as_sent() {
        assert_snapshot("account_password_changed", &Mail::PasswordChanged);
    }

    #[test]
    fn the_email_change_confirmation_mail_as_sent() {
        let mail = Mail::ConfirmEmailChange {
            link: LINK.into(),
            expires_in: "24 hours".into(),
        };
        assert_snapshot("account_confirm_email_change", &mail);
    }

    #[test]
    fn the_email_changed_mail_as_sent() {
        assert_snapshot("account_email_changed", &Mail::EmailChanged);
    }

    #[test]
    fn the_new_sign_in_mail_as_sent() {
        let mail = Mail::NewSignIn {
            device: "Firefox on Linux".into(),
            client: "2001:db8:85a3:8d3::/64".into(),
            at: "2025-01-31 14:05 UTC".into(),
            link: LINK.into(),
        };
        assert_snapshot("account_new_sign_in", &mail);
    }

    #[test]
    fn the_session_revoked_mail_as_sent() {
        let mail = Mail::SessionRevoked {
            device: "Firefox on Linux".into(),
            link: LINK.into(),
        };
        assert_snapshot("account_session_revoked", &mail);
    }

    #[test]
    fn the_login_code_mail_as_sent() {
        let mail = Mail::LoginCode {
            code: "ABCD-EFGH".into(),
            expires_in: "3 minutes".into(),
        };
        assert_snapshot("account_login_code", &mail);
    }

    #[test]
    fn the_second_factor_changed_mail_as_sent() {
        let mail = Mail::SecondFactorChanged {
            change: "Two-step sign-in was just turned off for your account.".into(),
            link: LINK.into(),
        };
        assert_snapshot("account_second_factor_changed", &mail);
    }

    #[test]
    fn the_account_deleted_mail_as_sent() {
        assert_snapshot("account_account_deleted", &Mail::AccountDeleted);
    }
}
