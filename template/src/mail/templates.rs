//! Mail wording lives in `templates/mail/`: each mail has `<name>.subject.txt`,
//! `<name>.txt` and `<name>.html`, the bodies extending `base.txt` and `base.html`.
//! askama compiles them into the binary and checks them against the mail's fields at
//! build time; what an HTML template shows is HTML-escaped, what a text one shows is not.
//!
//! Add a mail: its three files, and a variant on [`Mail`] (or on a module's own
//! [`mails!`] enum, such as the account mails) naming them; snapshot it with
//! `assert_snapshot` into `src/mail/snapshots/`.

/// A mail ready to send; serializable so that a job can carry it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Message {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// A kind of mail that renders into a [`Message`]; [`mails!`] implements it.
pub trait Compose {
    /// # Errors
    /// Fails when a value a template shows fails to format.
    fn compose(&self) -> Result<Message, askama::Error>;
}

/// A message composes to itself, so that [`super::Mailer::send`] takes either.
impl Compose for Message {
    fn compose(&self) -> Result<Message, askama::Error> {
        Ok(self.clone())
    }
}

/// Who the layouts sign mails with: the crate's name.
pub const SIGNATURE: &str = env!("CARGO_PKG_NAME");

/// Declares an enum of mails and implements [`Compose`] for it, as [`Mail`] below shows:
/// each variant names its three templates with `#[templates(subject, text, html)]`, and
/// their expressions see its fields by name, plus `signature`. askama derives one
/// template per type, so every variant gets three small template structs of its own.
macro_rules! mails {
    (
        $(#[$enum_attr:meta])*
        $vis:vis enum $enum:ident {
            $(
                $(#[doc = $doc:literal])*
                #[templates($subject:literal, $text:literal, $html:literal)]
                $variant:ident $({ $($field:ident: $type:ty),* $(,)? })?
            ),+ $(,)?
        }
    ) => {
        $(#[$enum_attr])*
        $vis enum $enum {
            $( $(#[doc = $doc])* $variant $({ $($field: $type),* })?, )+
        }

        impl $crate::mail::Compose for $enum {
            fn compose(&self) -> Result<$crate::mail::Message, ::askama::Error> {
                use ::askama::Template as _;

                let signature = $crate::mail::templates::SIGNATURE;
                let (subject, text, html) = match self {
                    $( Self::$variant $({ $($field),* })? => {
                        // A template need not show every field.
                        #[allow(dead_code)]
                        #[derive(::askama::Template)]
                        #[template(path = $subject)]
                        struct Subject<'a> { signature: &'a str, $($($field: &'a $type),*)? }
                        #[allow(dead_code)]
                        #[derive(::askama::Template)]
                        #[template(path = $text)]
                        struct Text<'a> { signature: &'a str, $($($field: &'a $type),*)? }
                        #[allow(dead_code)]
                        #[derive(::askama::Template)]
                        #[template(path = $html)]
                        struct Html<'a> { signature: &'a str, $($($field: &'a $type),*)? }
                        (
                            Subject { signature, $($($field),*)? }.render()?,
                            Text { signature, $($($field),*)? }.render()?,
                            Html { signature, $($($field),*)? }.render()?,
                        )
                    } )+
                };
                Ok($crate::mail::Message {
                    subject: subject.trim().to_string(),
                    text,
                    html,
                })
            }
        }
    };
}
pub(crate) use mails;

crate::mail::templates::mails! {
    /// The mail module's own mails.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Mail {
        /// Sent by the `send-test-mail` command to prove that the mail settings work.
        #[templates("mail/send_test.subject.txt", "mail/send_test.txt", "mail/send_test.html")]
        SendTest,
    }
}

/// Snapshots `mail` as it is sent, subject, text and HTML, in
/// `src/mail/snapshots/<name>.snap`: every mail's wording in one folder for review.
#[cfg(test)]
pub fn assert_snapshot(name: &str, mail: &impl Compose) {
    let message = mail.compose().unwrap();
    let shown = format!(
        "Subject: {}\n\n--- text ---\n{}\n--- html ---\n{}",
        message.subject, message.text, message.html
    );
    insta::with_settings!({ prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!(name, shown);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_mail_as_sent() {
        assert_snapshot("mail_send_test", &Mail::SendTest);
    }
}
