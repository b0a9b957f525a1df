//! List settings: a TOML array, or one comma-separated string, which is how an
//! environment variable carries a list (`APP_HTTP__TRUSTED_PROXIES=10.0.0.0/8,fd00::/8`).

use serde::{Deserialize, Deserializer};

/// The entries of a list setting, trimmed, empty ones dropped.
///
/// # Errors
/// Fails when the value is neither an array of strings nor a string.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum List {
        Items(Vec<String>),
        Text(String),
    }
    let items = match List::deserialize(deserializer)? {
        List::Items(items) => items,
        List::Text(text) => text.split(',').map(String::from).collect(),
    };
    Ok(items
        .iter()
        .map(|item| item.trim())
        .filter(|item| !item.is_empty())
        .map(String::from)
        .collect())
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Holder {
        #[serde(deserialize_with = "super::deserialize")]
        list: Vec<String>,
    }

    fn parse(toml: &str) -> Vec<String> {
        config::Config::builder()
            .add_source(config::File::from_str(toml, config::FileFormat::Toml))
            .build()
            .and_then(config::Config::try_deserialize::<Holder>)
            .unwrap()
            .list
    }

    #[test]
    fn lists_come_as_arrays_or_comma_separated_text() {
        assert_eq!(parse(r#"list = ["a", " b "]"#), ["a", "b"]);
        assert_eq!(parse(r#"list = "a, b,,""#), ["a", "b"]);
        assert!(parse(r#"list = """#).is_empty());
    }
}
