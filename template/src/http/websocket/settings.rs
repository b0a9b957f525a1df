use std::{num::NonZeroUsize, time::Duration};

use serde::Deserialize;

/// `[subscriptions]`: the limits of GraphQL subscriptions over WebSocket.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionSettings {
    /// Open connections per client address (an IPv6 client counts per /64).
    pub max_connections_per_client: NonZeroUsize,
    /// Open connections on one instance, all clients together.
    pub max_connections: NonZeroUsize,
    /// Subscriptions one connection may run at once.
    pub max_per_connection: NonZeroUsize,
    /// Largest message a client may send.
    pub max_message_bytes: NonZeroUsize,
    /// Time a new connection has to send `connection_init`.
    #[serde(
        rename = "init_timeout_secs",
        deserialize_with = "crate::setting::positive_secs"
    )]
    pub init_timeout: Duration,
    /// Time between pings; a client silent for two of them is gone.
    #[serde(
        rename = "keep_alive_secs",
        deserialize_with = "crate::setting::positive_secs"
    )]
    pub keep_alive: Duration,
    /// Time between re-checks of a connection's session.
    #[serde(
        rename = "session_check_secs",
        deserialize_with = "crate::setting::positive_secs"
    )]
    pub session_check: Duration,
}
