//! The rate-limit buckets of a client address.
//!
//! An IPv4 address is one bucket. IPv6 addresses come in blocks: a subscriber usually
//! holds a /64, a site a /56 or a /48, so one client could otherwise rotate through
//! 2^16 /64s of its /48 for fresh allowances. An IPv6 client therefore counts in its /64,
//! its /56 and its /48, the coarser ones with allowances `auth.ipv6_56_factor` and
//! `auth.ipv6_48_factor` times larger. Tunnelled addresses count as the IPv4 address
//! they carry: 6to4 (`2002::/16`) and Teredo (`2001::/32`) give every IPv4 address
//! 2^16 /64s of its own.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One counter a client's requests count in: its key, and how many times the base
/// allowance it may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    pub key: String,
    pub factor: u64,
}

/// The buckets of one client, finest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientBuckets(Vec<Bucket>);

/// How much more the coarser IPv6 blocks may send than one /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Factors {
    pub per_56: u64,
    pub per_48: u64,
}

impl ClientBuckets {
    /// The buckets of `address`.
    pub fn of(address: IpAddr, factors: Ipv6Factors) -> Self {
        match effective(address) {
            IpAddr::V4(v4) => Self(vec![Bucket {
                key: v4.to_string(),
                factor: 1,
            }]),
            IpAddr::V6(v6) => {
                let block = |prefix: u32, factor| Bucket {
                    key: format!(
                        "{}/{prefix}",
                        Ipv6Addr::from(u128::from(v6) & (u128::MAX << (128 - prefix)))
                    ),
                    factor,
                };
                Self(vec![
                    block(64, 1),
                    block(56, factors.per_56),
                    block(48, factors.per_48),
                ])
            }
        }
    }

    /// A client whose address is unknown (no TCP peer): one shared bucket.
    pub fn unknown() -> Self {
        Self(vec![Bucket {
            key: "unknown".into(),
            factor: 1,
        }])
    }

    /// The finest bucket: the client itself, as far as limits can tell.
    pub fn finest(&self) -> &str {
        &self.0[0].key
    }

    /// The coarsest bucket: the IPv4 address, or the IPv6 /48 that holds the others.
    pub fn coarsest(&self) -> &str {
        &self.0[self.0.len() - 1].key
    }

    pub fn all(&self) -> &[Bucket] {
        &self.0
    }
}

/// The address `address` stands for: the IPv4 address of an IPv4-mapped address or of
/// the client of a 6to4 or Teredo tunnel, else itself.
fn effective(address: IpAddr) -> IpAddr {
    let v6 = match address.to_canonical() {
        IpAddr::V4(v4) => return IpAddr::V4(v4),
        IpAddr::V6(v6) => v6,
    };
    let bits = u128::from(v6);
    let segments = v6.segments();
    if segments[0] == 0x2002 {
        // 6to4: 2002:AABB:CCDD::/48 carries AA.BB.CC.DD.
        return IpAddr::V4(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32));
    }
    if segments[0] == 0x2001 && segments[1] == 0 {
        // Teredo: the client's address is the last 32 bits, inverted (RFC 4380).
        return IpAddr::V4(Ipv4Addr::from(!((bits & 0xffff_ffff) as u32)));
    }
    IpAddr::V6(v6)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FACTORS: Ipv6Factors = Ipv6Factors {
        per_56: 4,
        per_48: 16,
    };

    fn keys(address: &str) -> Vec<(String, u64)> {
        ClientBuckets::of(address.parse().unwrap(), FACTORS)
            .all()
            .iter()
            .map(|bucket| (bucket.key.clone(), bucket.factor))
            .collect()
    }

    #[test]
    fn an_ipv4_client_is_one_bucket() {
        assert_eq!(keys("198.51.100.7"), [("198.51.100.7".into(), 1)]);
        assert_eq!(keys("::ffff:198.51.100.7"), [("198.51.100.7".into(), 1)]);
    }

    #[test]
    fn an_ipv6_client_counts_in_its_64_56_and_48() {
        assert_eq!(
            keys("2001:db8:1:2:3:4:5:6"),
            [
                ("2001:db8:1:2::/64".into(), 1),
                ("2001:db8:1::/56".into(), 4),
                ("2001:db8:1::/48".into(), 16),
            ]
        );
    }

    #[test]
    fn every_64_of_a_48_shares_the_48_bucket() {
        let first = keys("2001:db8:1:2::1");
        let other = keys("2001:db8:1:ff02::1");

        assert_ne!(first[0], other[0]);
        assert_ne!(first[1], other[1]);
        assert_eq!(first[2], other[2]);
    }

    #[test]
    fn tunnelled_addresses_count_as_the_ipv4_address_they_carry() {
        // 6to4 of 192.0.2.1, from two different /64s of its /48.
        assert_eq!(keys("2002:c000:201:1::1"), [("192.0.2.1".into(), 1)]);
        assert_eq!(keys("2002:c000:201:ffff::9"), [("192.0.2.1".into(), 1)]);
        // Teredo, RFC 4380's example: the client 192.0.2.45 behind its NAT.
        assert_eq!(
            keys("2001:0000:4136:e378:8000:63bf:3fff:fdd2"),
            [("192.0.2.45".into(), 1)]
        );
    }
}
