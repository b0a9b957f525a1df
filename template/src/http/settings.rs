use std::time::Duration;

use serde::Deserialize;

use crate::client_ip::TrustedProxies;

/// `[http]`: where the service listens and what it may believe about its clients.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    pub host: String,
    pub port: u16,
    /// Worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// How long in-flight requests get to finish after SIGTERM or Ctrl-C.
    #[serde(
        rename = "shutdown_timeout_secs",
        deserialize_with = "crate::setting::secs"
    )]
    pub shutdown_timeout: Duration,
    /// Clients reach the service over HTTPS only (a TLS-terminating proxy in front):
    /// responses carry HSTS and cookies are `Secure`.
    pub https: bool,
    /// The reverse proxies whose forwarding headers and trace context are believed (see
    /// `client_ip.rs`); unset means none, and is refused in production.
    #[serde(default)]
    pub trusted_proxies: Option<TrustedProxies>,
}

impl HttpSettings {
    /// The trusted proxies; none when unset (development).
    pub fn proxies(&self) -> TrustedProxies {
        self.trusted_proxies.clone().unwrap_or_default()
    }
}
