//! What the WebSocket side reports: `graphql_ws_connections_open` and
//! `graphql_ws_subscriptions_open` (gauges), `graphql_ws_messages_sent_total{type}`,
//! `graphql_ws_closed_total{code}` and `graphql_ws_refused_total{reason}`.

/// An upgrade refused before it became a connection, and why.
pub fn refused(reason: &'static str) {
    metrics::counter!("graphql_ws_refused_total", "reason" => reason).increment(1);
}

pub fn sent(kind: &'static str) {
    metrics::counter!("graphql_ws_messages_sent_total", "type" => kind).increment(1);
}

pub fn closed(code: u16) {
    metrics::counter!("graphql_ws_closed_total", "code" => code.to_string()).increment(1);
}

/// Counts one open thing in a gauge for as long as it lives.
pub struct Open(&'static str);

impl Open {
    pub fn connection() -> Self {
        Self::count("graphql_ws_connections_open")
    }

    pub fn subscription() -> Self {
        Self::count("graphql_ws_subscriptions_open")
    }

    fn count(gauge: &'static str) -> Self {
        metrics::gauge!(gauge).increment(1.0);
        Self(gauge)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        metrics::gauge!(self.0).decrement(1.0);
    }
}
