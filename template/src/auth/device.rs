//! A short, human label for the device a request came from, read from its
//! `User-Agent`: "Firefox on Linux", "Safari on iPhone", "curl". Shown in the list of
//! sessions and in sign-in notices, so its owner can tell their sessions apart; never
//! used to decide anything, since any client may send any `User-Agent`.

/// Browsers and tools, most specific first: Edge and Opera also say "Chrome", Chrome
/// also says "Safari".
const CLIENTS: [(&str, &str); 9] = [
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
    ("curl/", "curl"),
    ("Wget/", "Wget"),
    ("python-requests/", "Python"),
    ("okhttp/", "an Android app"),
];

/// Systems, most specific first: Android also says "Linux", iOS also says "Mac OS X".
const SYSTEMS: [(&str, &str); 7] = [
    ("Android", "Android"),
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
];

/// The longest label kept, in characters: the header is the client's to fill.
const MAX_LEN: usize = 64;

/// The label of `user_agent`, or "an unknown device".
pub fn label(user_agent: Option<&str>) -> String {
    let Some(agent) = user_agent.map(str::trim).filter(|agent| !agent.is_empty()) else {
        return "an unknown device".into();
    };
    let find = |table: &[(&str, &'static str)]| {
        table
            .iter()
            .find(|(marker, _)| agent.contains(marker))
            .map(|(_, name)| *name)
    };
    let label = match (find(&CLIENTS), find(&SYSTEMS)) {
        (Some(client), Some(system)) => format!("{client} on {system}"),
        (Some(client), None) => client.to_string(),
        (None, Some(system)) => format!("a browser on {system}"),
        (None, None) => agent
            .split(['/', ' '])
            .next()
            .unwrap_or("an unknown device")
            .to_string(),
    };
    label
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_LEN)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_and_systems_are_named() {
        let cases = [
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0",
                "Firefox on Linux",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0",
                "Edge on Windows",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
                "Safari on iPhone",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36",
                "Chrome on Android",
            ),
            ("curl/8.5.0", "curl"),
        ];
        for (agent, expected) in cases {
            assert_eq!(label(Some(agent)), expected, "{agent}");
        }
    }

    #[test]
    fn anything_else_keeps_its_first_word_and_no_more_than_the_limit() {
        assert_eq!(label(None), "an unknown device");
        assert_eq!(label(Some("  ")), "an unknown device");
        assert_eq!(label(Some("MyApp/2.1 (build 7)")), "MyApp");
        assert_eq!(label(Some(&"x".repeat(500))).chars().count(), MAX_LEN);
        assert_eq!(label(Some("evil\u{7}bell")), "evilbell");
    }
}
