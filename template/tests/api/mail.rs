//! The mailer through the file transport, and readers for the mails an app has sent.

use std::{sync::Arc, time::Duration};

use secrecy::SecretString;
use serde_json::Value;

{% if queue %}use {{crate_name}}::{jobs::Job, mail::Compose as _};
{% endif %}use {{crate_name}}::mail::{FileTransport, Mail, MailSettings, Mailer, TransportKind};

use crate::helpers::{TestApp, spawn_app{% if queue %}, free_port, spawn_app_with{% endif %}};

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
    /// Every mail sent to `to`, oldest first, once every pending mail has gone out.
    pub async fn mails_to(&self, to: &str) -> Vec<SentMail> {
{%- if auth %}
        self.state.auth.background.idle().await;
{%- endif %}
{%- if queue %}
        self.wait_for_jobs().await;
{%- endif %}
        let mut files: Vec<_> = std::fs::read_dir(&self.settings.mail.file_dir)
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
    let transport = Arc::new(FileTransport::new(&app.settings.mail.file_dir).unwrap());
    let mailer = Mailer::new(transport, "App <no-reply@example.com>", "http://localhost").unwrap();

    mailer
        .send("ada@example.com", &Mail::SendTest)
        .await
        .unwrap();

    let mails = app.mails_to("ada@example.com").await;
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

    let sent = mailer.send("not an address", &Mail::SendTest).await;

    assert!(sent.is_err());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// A mailer delivering over SMTP to `smtp_url`, built from settings as at start-up.
fn smtp_mailer(smtp_url: &str, timeout: Duration) -> Mailer {
    Mailer::from_settings(&MailSettings {
        transport: TransportKind::Smtp,
        smtp_url: SecretString::from(smtp_url),
        file_dir: std::env::temp_dir(),
        from: "App <no-reply@example.com>".into(),
        base_url: "http://localhost".into(),
        timeout,
    })
    .unwrap()
}

#[tokio::test]
async fn an_unreachable_smtp_server_fails_the_check() {
    // Nothing listens on port 1.
    let mailer = smtp_mailer("smtp://127.0.0.1:1", Duration::from_secs(2));

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

/// A minimal SMTP server: accepts one message, hands back its DATA section and hangs up.
async fn receive_one_message(listener: tokio::net::TcpListener) -> String {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    let (stream, _) = listener.accept().await.unwrap();
    let (reader, mut writer) = stream.into_split();
    let mut lines = BufReader::new(reader).lines();
    writer.write_all(b"220 test ESMTP\r\n").await.unwrap();
    let mut data = String::new();
    let mut in_data = false;
    while let Some(line) = lines.next_line().await.unwrap() {
        if in_data {
            if line == "." {
                writer.write_all(b"250 queued\r\n").await.unwrap();
                break;
            } else {
                data.push_str(&line);
                data.push('\n');
            }
            continue;
        }
        let command = line.to_ascii_uppercase();
        let reply: &[u8] = if command.starts_with("EHLO") || command.starts_with("HELO") {
            b"250 test\r\n"
        } else if command.starts_with("DATA") {
            in_data = true;
            b"354 go ahead\r\n"
        } else if command.starts_with("QUIT") {
            writer.write_all(b"221 bye\r\n").await.unwrap();
            break;
        } else {
            b"250 ok\r\n"
        };
        writer.write_all(reply).await.unwrap();
    }
    data
}

#[tokio::test]
async fn the_smtp_transport_delivers_text_and_html_to_an_smtp_server() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(receive_one_message(listener));
    let mailer = smtp_mailer(&format!("smtp://127.0.0.1:{port}"), Duration::from_secs(5));

    mailer
        .send("ada@example.com", &Mail::SendTest)
        .await
        .unwrap();
    drop(mailer); // closes the pooled connection, so the server sees QUIT or EOF

    let received = tokio::time::timeout(std::time::Duration::from_secs(5), server)
        .await
        .expect("the SMTP session did not end");
    let data = decode_quoted_printable(&received.unwrap());
    assert!(data.contains("To: ada@example.com"), "{data}");
    assert!(data.contains("Subject: Test message"), "{data}");
    assert!(data.contains("Content-Type: text/plain"), "{data}");
    assert!(data.contains("Content-Type: text/html"), "{data}");
    assert!(data.contains("This message proves that the mail settings work."), "{data}");
}
{%- if queue %}

#[tokio::test]
async fn queued_mail_is_retried_until_the_smtp_server_answers() {
    // A free port that nothing listens on until the "server comes back".
    let port = free_port();
    let app = spawn_app_with(|settings| {
        settings.mail.transport = TransportKind::Smtp;
        settings.mail.smtp_url = SecretString::from(format!("smtp://127.0.0.1:{port}"));
        settings.mail.timeout = Duration::from_secs(1);
        settings.jobs.max_attempts = std::num::NonZeroU32::new(100).unwrap();
    })
    .await;
    let job = Job::SendMail {
        to: "ada@example.com".into(),
        message: Mail::SendTest.compose().unwrap(),
    };

    app.state.jobs.enqueue(job).await.unwrap();

    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let stats = app.state.jobs.stats().await.unwrap();
    let waiting = stats.queued + stats.scheduled + stats.running;
    assert_eq!((waiting, stats.dead), (1, 0), "still retrying: {stats:?}");
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let received = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        receive_one_message(listener),
    )
    .await
    .expect("the mail was not retried");
    assert!(decode_quoted_printable(&received).contains("Subject: Test message"));
}
{%- endif %}
