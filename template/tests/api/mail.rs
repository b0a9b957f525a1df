//! The mailer through the file transport, and readers for the mails an app has sent.

use std::sync::Arc;

use secrecy::SecretString;
use serde_json::Value;

use {{crate_name}}::mail::{FileTransport, MailSettings, Mailer, SmtpTransport, TransportKind, templates};

use crate::helpers::{TestApp, spawn_app};

/// A message as the file transport wrote it, quoted-printable decoded (lettre encodes
/// bodies with long lines, such as links, that way).
pub struct SentMail {
    pub raw: String,
}

impl SentMail {
    pub fn subject(&self) -> &str {
        self.raw
            .lines()
            .find_map(|line| line.strip_prefix("Subject: "))
            .unwrap_or_default()
    }
}

impl TestApp {
    /// Every mail sent to `to`, oldest first.
    pub fn mails_to(&self, to: &str) -> Vec<SentMail> {
        let mut files: Vec<_> = std::fs::read_dir(self.mail_dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "eml"))
            .map(|entry| {
                let modified = entry.metadata().unwrap().modified().unwrap();
                (modified, entry.path())
            })
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|(_, path)| SentMail {
                raw: decode_quoted_printable(&std::fs::read_to_string(path).unwrap()),
            })
            .filter(|mail| mail.raw.lines().any(|line| line == format!("To: {to}")))
            .collect()
    }
}

fn decode_quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match hex {
            Some(byte) if bytes[i] == b'=' => {
                out.push(byte);
                i += 3;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn the_file_transport_writes_a_message_with_text_and_html() {
    let app = spawn_app().await;
    let transport = Arc::new(FileTransport::new(app.mail_dir.path()).unwrap());
    let mailer = Mailer::new(transport, "App <no-reply@example.com>", "http://localhost").unwrap();

    mailer
        .send("ada@example.com", &templates::test_message())
        .await
        .unwrap();

    let mails = app.mails_to("ada@example.com");
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].subject(), "Test message");
    assert!(
        mails[0].raw.contains("Content-Type: text/plain"),
        "{}",
        mails[0].raw
    );
    assert!(
        mails[0].raw.contains("Content-Type: text/html"),
        "{}",
        mails[0].raw
    );
}

#[tokio::test]
async fn an_invalid_recipient_is_refused_before_sending() {
    let dir = tempfile::tempdir().unwrap();
    let transport = Arc::new(FileTransport::new(dir.path()).unwrap());
    let mailer = Mailer::new(transport, "no-reply@example.com", "http://localhost").unwrap();

    let sent = mailer
        .send("not an address", &templates::test_message())
        .await;

    assert!(sent.is_err());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn an_unreachable_smtp_server_fails_the_check() {
    let settings = MailSettings {
        transport: TransportKind::Smtp,
        // Nothing listens on port 1.
        smtp_url: SecretString::from("smtp://127.0.0.1:1"),
        file_dir: std::env::temp_dir(),
        from: "no-reply@example.com".into(),
        base_url: "http://localhost".into(),
        timeout_secs: 2,
    };
    let transport = Arc::new(SmtpTransport::new(&settings).unwrap());
    let mailer = Mailer::new(transport, &settings.from, &settings.base_url).unwrap();

    assert!(mailer.check().await.is_err());
}

#[tokio::test]
async fn readiness_includes_the_mail_transport() {
    let app = spawn_app().await;

    let report: Value = app.get("/health/ready").await.json().await.unwrap();

    let mail = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|check| check["name"] == "mail")
        .expect("no mail check");
    assert_eq!(mail["ok"], true);
}
