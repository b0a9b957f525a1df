//! Who sent a request: the TCP peer, or behind trusted reverse proxies the address they
//! say they received it from.
//!
//! Each proxy appends the address it received the request from to `X-Forwarded-For`.
//! Whatever stands left of the entries appended by proxies we trust was written by the
//! client and may be forged, so the client is the right-most address that is not a
//! trusted proxy (`http.trusted_proxies`). Without trusted proxies the header is ignored
//! and the peer is the client; so is a caller's trace context (see `telemetry.rs`).
//!
//! Behind a proxy that nobody listed, every request seems to come from the proxy: all
//! clients share one rate-limit bucket. A request from an untrusted peer that carries
//! forwarding headers is the sign of that mistake, so it is logged once and counted in
//! `http_untrusted_forwarded_total`.

use std::{
    net::{IpAddr, SocketAddr},
    sync::atomic::{AtomicBool, Ordering},
};

use actix_web::{
    HttpRequest,
    http::header::{self, HeaderMap, HeaderName},
    web,
};
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, de::Error as _};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// The word that says, explicitly, that clients connect directly.
const NONE: &str = "none";
/// Networks wider than these are rarely all proxies: they are accepted with a warning.
const WIDEST_V4_PREFIX: u8 = 16;
const WIDEST_V6_PREFIX: u8 = 48;

/// The networks of the reverse proxies in front of the service, parsed at start-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Each entry is a network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`) or a single
    /// address; `none` alone says that clients connect directly.
    ///
    /// # Errors
    /// Names the first entry that is neither, a network that trusts every address
    /// (`/0`), or an empty list, which is no decision at all.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        match entries {
            [] => Err(format!(
                "list the networks of the reverse proxies in front of the service, or `{NONE}` when clients connect directly"
            )),
            [only] if only.trim().eq_ignore_ascii_case(NONE) => Ok(Self::default()),
            _ => entries
                .iter()
                .map(|entry| network(entry.trim()))
                .collect::<Result<_, _>>()
                .map(Self),
        }
    }

    pub fn trusts(&self, address: IpAddr) -> bool {
        self.0
            .iter()
            .any(|network| network.contains(&address.to_canonical()))
    }

    /// The listed networks wider than a /16 (IPv4) or a /48 (IPv6): worth a warning at
    /// start-up, since a proxy fleet rarely spans more.
    pub fn too_wide(&self) -> impl Iterator<Item = &IpNet> {
        self.0.iter().filter(|network| match network {
            IpNet::V4(v4) => v4.prefix_len() < WIDEST_V4_PREFIX,
            IpNet::V6(v6) => v6.prefix_len() < WIDEST_V6_PREFIX,
        })
    }

    /// The right-most address of `forwarded_for` (entries in order of appearance) and
    /// then `peer` that is not a trusted proxy. An entry that is not an address stops the
    /// walk at the proxy that wrote it.
    pub fn client_address(&self, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
        let mut client = peer.to_canonical();
        for entry in forwarded_for.iter().rev() {
            if !self.trusts(client) {
                break;
            }
            match parse_hop(entry) {
                Some(address) => client = address,
                None => break,
            }
        }
        client
    }
}

fn network(entry: &str) -> Result<IpNet, String> {
    let network = entry
        .parse::<IpNet>()
        .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| {
            format!(
                "`{entry}` is not an IP network in CIDR notation (such as 10.0.0.0/8 or 2001:db8::/32) nor an IP address"
            )
        })?;
    if network.prefix_len() == 0 {
        return Err(format!(
            "`{entry}` trusts every address, so any client could forge its own: list only the networks of your proxies"
        ));
    }
    Ok(network)
}

impl<'de> Deserialize<'de> for TrustedProxies {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let entries = crate::setting::list(deserializer)?;
        Self::parse(&entries).map_err(D::Error::custom)
    }
}

/// An `X-Forwarded-For` entry: an address, possibly with a port (`[2001:db8::1]:443`).
fn parse_hop(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim().trim_matches('"');
    entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|socket| socket.ip()))
        .ok()
        .map(|address| address.to_canonical())
}

/// The address of the client that sent a request from `peer` with `headers`.
pub fn client_of(peer: IpAddr, headers: &HeaderMap, proxies: &TrustedProxies) -> IpAddr {
    let forwarded_for: Vec<&str> = headers
        .get_all(X_FORWARDED_FOR)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect();
    proxies.client_address(peer, &forwarded_for)
}

/// The address of the client that sent `request`, behind the trusted proxies the app
/// was given (`web::Data<TrustedProxies>`); `None` without a TCP peer.
pub fn of_request(request: &HttpRequest) -> Option<IpAddr> {
    let peer = request.peer_addr()?.ip();
    let proxies = request.app_data::<web::Data<TrustedProxies>>();
    Some(match proxies {
        Some(proxies) => client_of(peer, request.headers(), proxies),
        None => peer.to_canonical(),
    })
}

/// Whether the request from `peer` may be believed about what happened before it
/// arrived (forwarding headers, trace context): only a trusted proxy may.
pub fn peer_is_trusted(peer: Option<SocketAddr>, proxies: &TrustedProxies) -> bool {
    peer.is_some_and(|peer| proxies.trusts(peer.ip()))
}

/// Logged once per process, the first time forwarding headers arrive from an untrusted
/// peer; every such request is counted.
static WARNED: AtomicBool = AtomicBool::new(false);

/// Counts (and the first time, logs) a request from an untrusted `peer` that carries
/// `X-Forwarded-For` or `Forwarded`: a proxy in front of the service that
/// `http.trusted_proxies` does not list, or a client forging them.
pub fn watch_forwarding(peer: Option<SocketAddr>, headers: &HeaderMap, proxies: &TrustedProxies) {
    let forwarded =
        headers.contains_key(X_FORWARDED_FOR) || headers.contains_key(header::FORWARDED);
    if !forwarded || peer_is_trusted(peer, proxies) {
        return;
    }
    metrics::counter!("http_untrusted_forwarded_total").increment(1);
    if !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            peer = ?peer.map(|peer| peer.ip()),
            "A request carried X-Forwarded-For or Forwarded from a peer that is no trusted proxy: \
             if a proxy stands in front of the service, list its network in http.trusted_proxies, \
             or every client shares its rate limits (logged once; counted in http_untrusted_forwarded_total)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(networks: &[&str]) -> TrustedProxies {
        let entries: Vec<String> = networks.iter().map(|n| (*n).to_string()).collect();
        TrustedProxies::parse(&entries).unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let none = proxies(&["none"]);

        let client = none.client_address(ip("198.51.100.7"), &["203.0.113.1"]);

        assert_eq!(client, ip("198.51.100.7"));
    }

    #[test]
    fn the_right_most_untrusted_address_is_the_client_whatever_stands_left_of_it() {
        let lan = proxies(&["10.0.0.0/8"]);

        for spoofed in ["1.2.3.4", "5.6.7.8, 9.9.9.9", "garbage"] {
            let header: Vec<&str> = spoofed
                .split(',')
                .chain(["198.51.100.7", "10.0.0.2"])
                .collect();
            let client = lan.client_address(ip("10.0.0.1"), &header);
            assert_eq!(client, ip("198.51.100.7"), "with {spoofed:?} in front");
        }
    }

    #[test]
    fn a_request_from_an_untrusted_peer_is_that_peer() {
        let lan = proxies(&["10.0.0.0/8"]);

        let client = lan.client_address(ip("198.51.100.7"), &["10.0.0.5"]);

        assert_eq!(client, ip("198.51.100.7"));
    }

    #[test]
    fn a_malformed_entry_stops_at_the_proxy_that_wrote_it() {
        let lan = proxies(&["10.0.0.0/8"]);

        let client = lan.client_address(ip("10.0.0.1"), &["198.51.100.7", "unknown"]);

        assert_eq!(client, ip("10.0.0.1"));
    }

    #[test]
    fn entries_with_ports_and_mapped_addresses_are_understood() {
        let lan = proxies(&["10.0.0.0/8", "fd00::/8"]);

        assert_eq!(
            lan.client_address(ip("fd00::1"), &["[2001:db8::9]:443"]),
            ip("2001:db8::9")
        );
        assert_eq!(
            lan.client_address(ip("::ffff:10.0.0.1"), &["198.51.100.7:5000"]),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn networks_and_single_addresses_parse_and_anything_else_is_named() {
        assert!(TrustedProxies::parse(&["10.0.0.0/8".into(), "2001:db8::1".into()]).is_ok());

        let error = TrustedProxies::parse(&["10.0.0.0/8".into(), "10.0.0/8".into()]).unwrap_err();

        assert!(error.contains("`10.0.0/8`"), "{error}");
    }

    #[test]
    fn none_is_an_explicit_empty_list_and_no_entry_at_all_is_refused() {
        assert_eq!(proxies(&["none"]), TrustedProxies::default());
        assert_eq!(proxies(&[" NONE "]), TrustedProxies::default());

        let error = TrustedProxies::parse(&[]).unwrap_err();

        assert!(error.contains("`none`"), "{error}");
    }

    #[test]
    fn a_network_trusting_every_address_is_refused() {
        for everything in ["0.0.0.0/0", "::/0"] {
            let error =
                TrustedProxies::parse(&["10.0.0.0/8".into(), everything.into()]).unwrap_err();
            assert!(error.contains(everything), "{error}");
        }
    }

    #[test]
    fn networks_wider_than_a_16_or_a_48_are_flagged() {
        let listed = proxies(&[
            "10.0.0.0/8",
            "10.1.0.0/16",
            "2001:db8::/32",
            "2001:db8:1::/48",
        ]);

        let wide: Vec<String> = listed.too_wide().map(ToString::to_string).collect();

        assert_eq!(wide, ["10.0.0.0/8", "2001:db8::/32"]);
    }

    #[test]
    fn only_a_trusted_peer_is_believed() {
        let lan = proxies(&["10.0.0.0/8"]);
        let peer = |text: &str| Some(SocketAddr::new(ip(text), 443));

        assert!(peer_is_trusted(peer("10.1.2.3"), &lan));
        assert!(peer_is_trusted(peer("::ffff:10.1.2.3"), &lan));
        assert!(!peer_is_trusted(peer("198.51.100.7"), &lan));
        assert!(!peer_is_trusted(None, &lan));
    }
}
