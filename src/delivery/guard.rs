//! Address guard: which IP addresses an outbound delivery may connect to.
//!
//! The guard is consulted twice: at registration for IP-literal hosts ([`super::url`]) and at
//! connect time, inside the HTTP client's connector, on every resolved address of every attempt
//! ([`super::client`]). Only the connect-time check is a security boundary — DNS answers change
//! (rebinding) — the registration check gives the user an early 422.
//!
//! Blocked: everything that is not globally reachable unicast, following the IANA IPv4 and IPv6
//! Special-Purpose Address Registries (RFC 6890 and its updates):
//!
//! - IPv4: `0.0.0.0/8` (RFC 791 "this network", includes the unspecified address), loopback
//!   `127/8`, RFC 1918 `10/8`, `172.16/12`, `192.168/16`, CGNAT `100.64/10` (RFC 6598), link-local
//!   `169.254/16` (RFC 3927; `169.254.169.254` is reported as cloud metadata), IETF protocol
//!   assignments `192.0.0/24`, documentation `192.0.2/24`, `198.51.100/24`, `203.0.113/24`
//!   (RFC 5737), benchmarking `198.18/15` (RFC 2544), 6to4 relay anycast `192.88.99/24`
//!   (RFC 7526), multicast `224/4`, reserved `240/4` and the limited broadcast
//!   `255.255.255.255`.
//! - IPv6: unspecified `::`, loopback `::1`, IPv4-mapped `::ffff:0:0/96` and IPv4-compatible
//!   `::/96` (blocked whatever they embed: a dual-stack socket would reach the IPv4 address behind
//!   them), discard-only `100::/64`, IETF protocol assignments `2001::/23` (includes
//!   benchmarking `2001:2::/48`, ORCHID and Teredo), documentation `2001:db8::/32` and
//!   `3fff::/20` (RFC 9637), ULA `fc00::/7` (includes AWS's `fd00:ec2::254` metadata address,
//!   reported as cloud metadata), link-local `fe80::/10`, multicast `ff00::/8`, local-use NAT64
//!   `64:ff9b:1::/48` (RFC 8215: the embedding depends on a local prefix length, so the whole
//!   prefix is refused), and everything outside global unicast `2000::/3`.
//! - Embedded IPv4 is checked for the well-known NAT64 prefix `64:ff9b::/96` (RFC 6052, the last
//!   32 bits) and 6to4 `2002::/16` (RFC 3056, bits 16–47): the address is blocked when the IPv4
//!   address it stands for is.
//! - Teredo `2001::/32` (RFC 4380) is blocked outright rather than decoded: its server and
//!   obfuscated client addresses both name IPv4 hosts, no webhook receiver needs a Teredo
//!   address, and refusing the prefix removes a decoding path an attacker could exploit.
//!
//! An operator (or a test) may allow exact addresses ([`AddressGuard::allow`]); nothing else
//! bypasses the table, and an allowed address is exact (allowing `127.0.0.1` does not allow
//! `::ffff:127.0.0.1`).

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The special-purpose range an address falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockedRange {
    /// `0.0.0.0`, `::`.
    Unspecified,
    /// `0.0.0.0/8` other than `0.0.0.0`.
    ThisNetwork,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918 `10/8`, `172.16/12`, `192.168/16`.
    Private,
    /// RFC 6598 shared address space `100.64/10`.
    SharedCgnat,
    /// `169.254/16`, `fe80::/10`.
    LinkLocal,
    /// `169.254.169.254`, `fd00:ec2::254`: cloud instance metadata services.
    CloudMetadata,
    /// `192.0.0.0/24`, `2001::/23` (IETF protocol assignments).
    IetfProtocol,
    /// RFC 5737 and RFC 3849 / RFC 9637 documentation ranges.
    Documentation,
    /// RFC 2544 `198.18/15`, RFC 5180 `2001:2::/48`.
    Benchmarking,
    /// `224/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `240/4`, `192.88.99/24`, `100::/64` and IPv6 outside `2000::/3`.
    Reserved,
    /// `fc00::/7` unique local addresses.
    UniqueLocal,
    /// `::ffff:0:0/96`.
    Ipv4Mapped,
    /// `::/96` (deprecated IPv4-compatible addresses).
    Ipv4Compatible,
    /// `64:ff9b:1::/48` local-use NAT64 (RFC 8215).
    LocalUseNat64,
    /// `2001::/32`.
    Teredo,
}

impl BlockedRange {
    /// Stable machine name (`loopback`, `private`, `cloud_metadata`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::ThisNetwork => "this_network",
            Self::Loopback => "loopback",
            Self::Private => "private",
            Self::SharedCgnat => "shared_cgnat",
            Self::LinkLocal => "link_local",
            Self::CloudMetadata => "cloud_metadata",
            Self::IetfProtocol => "ietf_protocol",
            Self::Documentation => "documentation",
            Self::Benchmarking => "benchmarking",
            Self::Multicast => "multicast",
            Self::Broadcast => "broadcast",
            Self::Reserved => "reserved",
            Self::UniqueLocal => "unique_local",
            Self::Ipv4Mapped => "ipv4_mapped",
            Self::Ipv4Compatible => "ipv4_compatible",
            Self::LocalUseNat64 => "local_use_nat64",
            Self::Teredo => "teredo",
        }
    }
}

/// How an IPv6 address carried the IPv4 address that was blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Embedding {
    /// NAT64 well-known prefix `64:ff9b::/96`.
    Nat64,
    /// 6to4 `2002::/16`.
    SixToFour,
}

/// Why an address was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub struct Blocked {
    /// The address that was refused.
    pub address: IpAddr,
    /// The range that refused it (for embedded forms: the range of the embedded IPv4).
    pub range: BlockedRange,
    /// For NAT64 / 6to4 forms: the translation and the IPv4 address it leads to.
    pub embedded: Option<(Embedding, Ipv4Addr)>,
}

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.embedded {
            Some((how, v4)) => write!(
                f,
                "address {} is refused: it embeds {v4} ({}) via {}",
                self.address,
                self.range.as_str(),
                match how {
                    Embedding::Nat64 => "NAT64",
                    Embedding::SixToFour => "6to4",
                }
            ),
            None => write!(
                f,
                "address {} is refused: {}",
                self.address,
                self.range.as_str()
            ),
        }
    }
}

/// Classifies an IPv4 address; `None` when it is globally reachable unicast.
pub fn classify_v4(ip: Ipv4Addr) -> Option<BlockedRange> {
    let o = ip.octets();
    let n = u32::from(ip);
    let within = |base: u32, len: u32| (n ^ base) >> (32 - len) == 0;
    Some(if n == 0 {
        BlockedRange::Unspecified
    } else if o[0] == 0 {
        BlockedRange::ThisNetwork
    } else if o[0] == 127 {
        BlockedRange::Loopback
    } else if o[0] == 10 || within(0xac10_0000, 12) || within(0xc0a8_0000, 16) {
        BlockedRange::Private
    } else if within(0x6440_0000, 10) {
        BlockedRange::SharedCgnat
    } else if n == 0xa9fe_a9fe {
        BlockedRange::CloudMetadata
    } else if within(0xa9fe_0000, 16) {
        BlockedRange::LinkLocal
    } else if within(0xc000_0000, 24) {
        BlockedRange::IetfProtocol
    } else if within(0xc000_0200, 24) || within(0xc633_6400, 24) || within(0xcb00_7100, 24) {
        BlockedRange::Documentation
    } else if within(0xc612_0000, 15) {
        BlockedRange::Benchmarking
    } else if within(0xc058_6300, 24) {
        BlockedRange::Reserved
    } else if within(0xe000_0000, 4) {
        BlockedRange::Multicast
    } else if n == u32::MAX {
        BlockedRange::Broadcast
    } else if within(0xf000_0000, 4) {
        BlockedRange::Reserved
    } else {
        return None;
    })
}

/// Classifies an IPv6 address (see the module docs); `Err` carries the full reason.
fn classify_v6(ip: Ipv6Addr) -> Result<(), (BlockedRange, Option<(Embedding, Ipv4Addr)>)> {
    let n = u128::from(ip);
    let within = |base: u128, len: u32| (n ^ base) >> (128 - len) == 0;
    let plain = |r: BlockedRange| Err((r, None));
    if n == 0 {
        return plain(BlockedRange::Unspecified);
    }
    if n == 1 {
        return plain(BlockedRange::Loopback);
    }
    if within(0xffff_0000_0000, 96) {
        return plain(BlockedRange::Ipv4Mapped);
    }
    if within(0, 96) {
        return plain(BlockedRange::Ipv4Compatible);
    }
    if within(0x0064_ff9b_0000_0000_0000_0000_0000_0000, 96) {
        let v4 = Ipv4Addr::from((n & 0xffff_ffff) as u32);
        return match classify_v4(v4) {
            Some(r) => Err((r, Some((Embedding::Nat64, v4)))),
            None => Ok(()),
        };
    }
    if within(0x0064_ff9b_0001 << 80, 48) {
        return plain(BlockedRange::LocalUseNat64);
    }
    if within(0x2002 << 112, 16) {
        let v4 = Ipv4Addr::from(((n >> 80) & 0xffff_ffff) as u32);
        return match classify_v4(v4) {
            Some(r) => Err((r, Some((Embedding::SixToFour, v4)))),
            None => Ok(()),
        };
    }
    if within(0x2001_0000 << 96, 32) {
        return plain(BlockedRange::Teredo);
    }
    if within(0x2001_0002 << 96, 48) {
        return plain(BlockedRange::Benchmarking);
    }
    if within(0x2001 << 112, 23) {
        return plain(BlockedRange::IetfProtocol);
    }
    if within(0x2001_0db8 << 96, 32) || within(0x3fff << 112, 20) {
        return plain(BlockedRange::Documentation);
    }
    if n == 0xfd00_0ec2_0000_0000_0000_0000_0000_0254 {
        return plain(BlockedRange::CloudMetadata);
    }
    if within(0xfc00 << 112, 7) {
        return plain(BlockedRange::UniqueLocal);
    }
    if within(0xfe80 << 112, 10) {
        return plain(BlockedRange::LinkLocal);
    }
    if within(0xff00 << 112, 8) {
        return plain(BlockedRange::Multicast);
    }
    if within(0x2000 << 112, 3) {
        return Ok(());
    }
    plain(BlockedRange::Reserved)
}

/// The address policy for outbound connections: the special-purpose table plus an exact
/// allow-list.
#[derive(Debug, Clone, Default)]
pub struct AddressGuard {
    allowed: BTreeSet<IpAddr>,
}

impl AddressGuard {
    /// The production guard: the table only, nothing allowed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also allows these exact addresses (an operator's lab hosts, a test's `127.0.0.1`).
    pub fn allow(mut self, addresses: impl IntoIterator<Item = IpAddr>) -> Self {
        self.allowed.extend(addresses);
        self
    }

    /// Whether `ip` is on the exact allow-list.
    pub fn is_allowed(&self, ip: IpAddr) -> bool {
        self.allowed.contains(&ip)
    }

    /// Checks one address.
    ///
    /// # Errors
    /// [`Blocked`] with the range (and, for NAT64 / 6to4, the embedded IPv4) that refused it.
    pub fn check(&self, ip: IpAddr) -> Result<(), Blocked> {
        if self.allowed.contains(&ip) {
            return Ok(());
        }
        let blocked = |range, embedded| Blocked {
            address: ip,
            range,
            embedded,
        };
        match ip {
            IpAddr::V4(v4) => match classify_v4(v4) {
                Some(range) => Err(blocked(range, None)),
                None => Ok(()),
            },
            IpAddr::V6(v6) => classify_v6(v6).map_err(|(range, emb)| blocked(range, emb)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(s: &str) -> Option<BlockedRange> {
        AddressGuard::new()
            .check(s.parse().unwrap())
            .err()
            .map(|b| b.range)
    }

    #[test]
    fn table() {
        use BlockedRange::*;
        let cases: &[(&str, Option<BlockedRange>)] = &[
            ("0.0.0.0", Some(Unspecified)),
            ("0.1.2.3", Some(ThisNetwork)),
            ("127.0.0.1", Some(Loopback)),
            ("127.255.255.254", Some(Loopback)),
            ("10.0.0.1", Some(Private)),
            ("172.16.0.1", Some(Private)),
            ("172.31.255.255", Some(Private)),
            ("172.32.0.1", None),
            ("192.168.1.1", Some(Private)),
            ("100.64.0.1", Some(SharedCgnat)),
            ("100.127.255.255", Some(SharedCgnat)),
            ("100.128.0.1", None),
            ("169.254.169.254", Some(CloudMetadata)),
            ("169.254.1.1", Some(LinkLocal)),
            ("192.0.0.8", Some(IetfProtocol)),
            ("192.0.2.1", Some(Documentation)),
            ("198.51.100.7", Some(Documentation)),
            ("203.0.113.9", Some(Documentation)),
            ("198.18.0.1", Some(Benchmarking)),
            ("198.19.255.255", Some(Benchmarking)),
            ("198.20.0.1", None),
            ("224.0.0.1", Some(Multicast)),
            ("239.255.255.250", Some(Multicast)),
            ("240.0.0.1", Some(Reserved)),
            ("255.255.255.255", Some(Broadcast)),
            ("8.8.8.8", None),
            ("93.184.215.14", None),
            ("::", Some(Unspecified)),
            ("::1", Some(Loopback)),
            ("::ffff:127.0.0.1", Some(Ipv4Mapped)),
            ("::ffff:8.8.8.8", Some(Ipv4Mapped)),
            ("::127.0.0.1", Some(Ipv4Compatible)),
            ("64:ff9b::7f00:1", Some(Loopback)),
            ("64:ff9b::a9fe:a9fe", Some(CloudMetadata)),
            ("64:ff9b::808:808", None),
            ("64:ff9b:1::808:808", Some(LocalUseNat64)),
            ("2002:7f00:1::", Some(Loopback)),
            ("2002:a00:1::1", Some(Private)),
            ("2002:808:808::1", None),
            ("2001::1", Some(Teredo)),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", Some(Teredo)),
            ("2001:2::1", Some(Benchmarking)),
            ("2001:10::1", Some(IetfProtocol)),
            ("2001:db8::1", Some(Documentation)),
            ("3fff::1", Some(Documentation)),
            ("fd00:ec2::254", Some(CloudMetadata)),
            ("fd12:3456::1", Some(UniqueLocal)),
            ("fc00::1", Some(UniqueLocal)),
            ("fe80::1", Some(LinkLocal)),
            ("febf::1", Some(LinkLocal)),
            ("ff02::1", Some(Multicast)),
            ("100::1", Some(Reserved)),
            ("fec0::1", Some(Reserved)),
            ("2606:4700:4700::1111", None),
            ("2a00:1450:4001::1", None),
        ];
        for (ip, want) in cases {
            assert_eq!(range(ip), *want, "{ip}");
        }
    }

    #[test]
    fn embedded_forms_name_the_ipv4() {
        let b = AddressGuard::new()
            .check("64:ff9b::a00:1".parse().unwrap())
            .unwrap_err();
        assert_eq!(
            b.embedded,
            Some((Embedding::Nat64, Ipv4Addr::new(10, 0, 0, 1)))
        );
        assert!(b.to_string().contains("10.0.0.1"));
    }

    #[test]
    fn allow_list_is_exact() {
        let g = AddressGuard::new().allow(["127.0.0.1".parse().unwrap()]);
        assert!(g.check("127.0.0.1".parse().unwrap()).is_ok());
        assert!(g.check("127.0.0.2".parse().unwrap()).is_err());
        assert!(g.check("::ffff:127.0.0.1".parse().unwrap()).is_err());
    }
}
