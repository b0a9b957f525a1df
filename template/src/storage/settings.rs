use std::time::Duration;

use serde::{Deserialize, Deserializer, de::Error as _};

use super::StorageUrl;

/// `[database]`: which backend, and how long to wait for it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// The backend, parsed from `url`; a MongoDB URL may carry credentials, so it stays
    /// secret inside.
    #[serde(deserialize_with = "storage_url")]
    pub url: StorageUrl,
    pub mongodb_database: String,
    /// Wait for the database at start-up and in readiness checks.
    #[serde(
        rename = "timeout_secs",
        deserialize_with = "crate::setting::positive_secs"
    )]
    pub timeout: Duration,
}

fn storage_url<'de, D: Deserializer<'de>>(deserializer: D) -> Result<StorageUrl, D::Error> {
    let url = String::deserialize(deserializer)?;
    StorageUrl::parse(&url).map_err(D::Error::custom)
}
