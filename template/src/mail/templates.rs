//! Message templates: every mail has a text and an HTML body built from the same parts,
//! with user data HTML-escaped. Edit the wording here.

/// A message ready to send; serializable so that a job can carry it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// A call to action: a button in HTML, a bare URL in text.
pub struct Action<'a> {
    pub label: &'a str,
    pub url: &'a str,
}

impl Mail {
    /// Lays out `paragraphs` and an optional `action` the same way in both bodies.
    pub fn compose(subject: &str, paragraphs: &[&str], action: Option<Action<'_>>) -> Self {
        let mut text = paragraphs.join("\n\n");
        let mut html: String = paragraphs
            .iter()
            .map(|paragraph| format!("<p>{}</p>\n", escape_html(paragraph)))
            .collect();
        if let Some(action) = action {
            text.push_str(&format!("\n\n{}: {}", action.label, action.url));
            html.push_str(&format!(
                "<p><a href=\"{url}\">{label}</a></p>\n<p>{url_text}</p>\n",
                url = escape_html(action.url),
                label = escape_html(action.label),
                url_text = escape_html(action.url),
            ));
        }
        text.push('\n');
        Self {
            subject: subject.to_string(),
            html: format!(
                "<!doctype html>\n<html><body style=\"font-family: sans-serif\">\n{html}</body></html>\n"
            ),
            text,
        }
    }
}

/// Escapes the five characters with meaning in HTML text and attributes.
pub fn escape_html(input: &str) -> String {
    let mut escaped = String::with_capacity(input.len());
    for c in input.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// Sent by the `send-test-mail` command to prove the SMTP settings work.
pub fn test_message() -> Mail {
    Mail::compose(
        "Test message",
        &["This message proves that the mail settings work. No action is needed."],
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_is_escaped_in_html_only() {
        let mail = Mail::compose(
            "Hi",
            &["Welcome <script>alert('x')</script> & more"],
            Some(Action {
                label: "Open",
                url: "https://example.com/a?b=1&c=\"2\"",
            }),
        );

        assert!(
            mail.html
                .contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more")
        );
        assert!(!mail.html.contains("<script>"));
        assert!(
            mail.html
                .contains("href=\"https://example.com/a?b=1&amp;c=&quot;2&quot;\"")
        );
        assert!(
            mail.text
                .contains("Welcome <script>alert('x')</script> & more")
        );
        assert!(
            mail.text
                .contains("Open: https://example.com/a?b=1&c=\"2\"")
        );
    }
}
