//! Parsers for setting values, so that every settings slice holds its valid form from
//! the moment the configuration loads: `#[serde(deserialize_with = "…")]` on a field.
//! The configuration names the key in any error they report (`must be at least 1 for
//! key `jobs.lease_secs``).

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A list: a TOML array, or one comma-separated string, which is how an environment
/// variable carries a list (`APP_HTTP__TRUSTED_PROXIES=10.0.0.0/8,fd00::/8`). Entries are
/// trimmed and empty ones dropped.
///
/// # Errors
/// Fails when the value is neither an array of strings nor a string.
pub fn list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
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

/// A duration given in whole seconds.
///
/// # Errors
/// Fails on anything but a whole number.
pub fn secs<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    u64::deserialize(deserializer).map(Duration::from_secs)
}

/// A duration given in whole seconds, at least one.
///
/// # Errors
/// Fails on anything but a whole number above zero.
pub fn positive_secs<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    positive(u64::deserialize(deserializer)?).map(Duration::from_secs)
}

/// A duration given in whole milliseconds, at least one.
///
/// # Errors
/// Fails on anything but a whole number above zero.
pub fn positive_millis<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    positive(u64::deserialize(deserializer)?).map(Duration::from_millis)
}

fn positive<E: serde::de::Error>(value: u64) -> Result<u64, E> {
    if value == 0 {
        return Err(E::custom("must be at least 1"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Holder {
        #[serde(default, deserialize_with = "super::list")]
        list: Vec<String>,
        #[serde(
            default,
            rename = "wait_secs",
            deserialize_with = "super::positive_secs"
        )]
        wait: Duration,
    }

    fn parse(toml: &str) -> Result<Holder, String> {
        config::Config::builder()
            .add_source(config::File::from_str(toml, config::FileFormat::Toml))
            .build()
            .and_then(config::Config::try_deserialize::<Holder>)
            .map_err(|error| error.to_string())
    }

    #[test]
    fn lists_come_as_arrays_or_comma_separated_text() {
        assert_eq!(parse(r#"list = ["a", " b "]"#).unwrap().list, ["a", "b"]);
        assert_eq!(parse(r#"list = "a, b,,""#).unwrap().list, ["a", "b"]);
        assert!(parse(r#"list = """#).unwrap().list.is_empty());
    }

    #[test]
    fn a_zero_duration_is_refused_naming_its_key() {
        assert_eq!(parse("wait_secs = 3").unwrap().wait, Duration::from_secs(3));

        let error = parse("wait_secs = 0").unwrap_err();

        assert!(error.contains("at least 1"), "{error}");
        assert!(error.contains("wait_secs"), "{error}");
    }
}
