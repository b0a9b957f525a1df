//! The client's address, which keys the per-client rate limits.
//!
//! Behind reverse proxies the TCP peer is the nearest proxy, and each proxy appends the
//! address it received the request from to `X-Forwarded-For`. Whatever stands left of the
//! entries appended by proxies we trust was written by the client and may be forged, so
//! the client is the right-most address that is not a trusted proxy (`auth.trusted_proxies`).
//! Without trusted proxies the header is ignored and the peer is the client.
//!
//! IPv4 addresses are limited one by one, IPv6 addresses per /64: a subscriber usually
//! gets a whole /64, and rotating through it must not buy fresh attempts.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use actix_web::{HttpRequest, http::header::HeaderName};
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, de::Error as _};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The networks of the reverse proxies in front of the service, parsed at start-up.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Each entry is a network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`) or a single
    /// address.
    ///
    /// # Errors
    /// Names the first entry that is neither.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        entries
            .iter()
            .map(|entry| {
                let entry = entry.trim();
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!(
                            "`{entry}` is not an IP network in CIDR notation (such as 10.0.0.0/8 or 2001:db8::/32) nor an IP address"
                        )
                    })
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    fn trusts(&self, address: IpAddr) -> bool {
        self.0.iter().any(|network| network.contains(&address))
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

impl<'de> Deserialize<'de> for TrustedProxies {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let entries = super::settings::string_list(deserializer)?;
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

/// The rate-limit bucket of `address`: itself for IPv4, its /64 for IPv6.
pub fn rate_limit_bucket(address: IpAddr) -> String {
    match address.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let network = Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64));
            format!("{network}/64")
        }
    }
}

/// The rate-limit bucket of the client that sent `request`.
pub fn of(request: &HttpRequest, proxies: &TrustedProxies) -> String {
    let Some(peer) = request.peer_addr() else {
        return "unknown".into();
    };
    let forwarded_for: Vec<&str> = request
        .headers()
        .get_all(X_FORWARDED_FOR)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect();
    rate_limit_bucket(proxies.client_address(peer.ip(), &forwarded_for))
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
        let none = TrustedProxies::default();

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
    fn ipv6_clients_share_a_bucket_per_64() {
        let same_64 = ["2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"];
        let buckets: Vec<String> = same_64.iter().map(|a| rate_limit_bucket(ip(a))).collect();

        assert_eq!(buckets[0], "2001:db8:1:2::/64");
        assert_eq!(buckets[0], buckets[1]);
        assert_ne!(rate_limit_bucket(ip("2001:db8:1:3::1")), buckets[0]);
        assert_eq!(rate_limit_bucket(ip("198.51.100.7")), "198.51.100.7");
        assert_eq!(rate_limit_bucket(ip("::ffff:198.51.100.7")), "198.51.100.7");
    }

    #[test]
    fn networks_and_single_addresses_parse_and_anything_else_is_named() {
        assert!(TrustedProxies::parse(&["10.0.0.0/8".into(), "2001:db8::1".into()]).is_ok());

        let error = TrustedProxies::parse(&["10.0.0.0/8".into(), "10.0.0/8".into()]).unwrap_err();

        assert!(error.contains("`10.0.0/8`"), "{error}");
    }
}
