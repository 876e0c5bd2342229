//! Stateless address autoconfiguration (RFC 4862) pieces smoltcp 0.12 lacks: the
//! router solicitation a host sends when its interface comes up, and the router
//! advertisement (RFC 4861 §4.2) it gets back, parsed into the prefixes to build addresses
//! from. Both work on whole IPv6 packets, the way smoltcp's raw sockets send and receive
//! them. The interface identifier is the modified EUI-64 of the MAC (RFC 4291 appendix A).
//!
//! An advertisement is untrusted input from the link: every length is checked before it is
//! read, and anything RFC 4861 §6.1.2 says to drop (hop limit other than 255, a source that
//! is not link-local, a bad checksum, code other than 0, an option of length 0, an option
//! running past the end) is an [`Err`] naming the reason, never a panic.

use alloc::vec::Vec;
use core::net::Ipv6Addr;

use smoltcp::wire::{Icmpv6Packet, IpProtocol, Ipv6Packet};

/// ICMPv6 types.
pub const ROUTER_SOLICIT: u8 = 133;
pub const ROUTER_ADVERT: u8 = 134;
/// ff02::2, all routers.
pub const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

/// One prefix information option (type 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    pub prefix: Ipv6Addr,
    pub len: u8,
    /// L: the prefix is on-link.
    pub on_link: bool,
    /// A: addresses may be formed from it.
    pub autonomous: bool,
    /// Seconds (0xffff_ffff: forever).
    pub valid: u32,
    pub preferred: u32,
}

/// A router advertisement that passed the checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advert {
    /// The router's link-local address (the packet's source).
    pub router: Ipv6Addr,
    /// Seconds the router may be the default router (0: it may not).
    pub router_lifetime: u16,
    pub hop_limit: u8,
    pub prefixes: Vec<Prefix>,
    pub mtu: Option<u32>,
    pub router_mac: Option<[u8; 6]>,
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Parses the whole IPv6 packet `packet` as a router advertisement.
pub fn parse_advert(packet: &[u8]) -> Result<Advert, &'static str> {
    let ip = Ipv6Packet::new_checked(packet).map_err(|_| "truncated IPv6 header")?;
    if ip.version() != 6 {
        return Err("not IPv6");
    }
    if ip.next_header() != IpProtocol::Icmpv6 {
        return Err("not ICMPv6 (or behind extension headers)");
    }
    let body = ip.payload();
    if body.len() < 16 {
        return Err("shorter than a router advertisement");
    }
    if body[0] != ROUTER_ADVERT {
        return Err("not a router advertisement");
    }
    if body[1] != 0 {
        return Err("code not 0");
    }
    if ip.hop_limit() != 255 {
        return Err("hop limit not 255 (not from this link)");
    }
    let src = ip.src_addr();
    if !src.is_unicast_link_local() {
        return Err("source not link-local");
    }
    if !Icmpv6Packet::new_unchecked(body).verify_checksum(&src, &ip.dst_addr()) {
        return Err("bad checksum");
    }
    let mut ra = Advert {
        router: src,
        hop_limit: body[4],
        router_lifetime: u16::from_be_bytes([body[6], body[7]]),
        prefixes: Vec::new(),
        mtu: None,
        router_mac: None,
    };
    let mut opts = &body[16..];
    while !opts.is_empty() {
        if opts.len() < 2 {
            return Err("option header truncated");
        }
        let len = usize::from(opts[1]) * 8;
        if len == 0 {
            return Err("option of length 0");
        }
        if len > opts.len() {
            return Err("option past the end");
        }
        let o = &opts[..len];
        match o[0] {
            1 if len == 8 => {
                let mut m = [0u8; 6];
                m.copy_from_slice(&o[2..8]);
                ra.router_mac = Some(m);
            }
            3 => {
                if len != 32 {
                    return Err("prefix option not 32 bytes");
                }
                let mut p = [0u8; 16];
                p.copy_from_slice(&o[16..32]);
                if o[2] > 128 {
                    return Err("prefix length over 128");
                }
                ra.prefixes.push(Prefix {
                    prefix: Ipv6Addr::from(p),
                    len: o[2],
                    on_link: o[3] & 0x80 != 0,
                    autonomous: o[3] & 0x40 != 0,
                    valid: be32(&o[4..8]),
                    preferred: be32(&o[8..12]),
                });
            }
            5 if len == 8 => ra.mtu = Some(be32(&o[4..8])),
            // Options we do not use (and unknown ones) are skipped, as RFC 4861 says.
            _ => {}
        }
        opts = &opts[len..];
    }
    Ok(ra)
}

/// The modified EUI-64 interface identifier of `mac` (the universal/local bit flipped,
/// ff:fe in the middle).
pub fn interface_id(mac: [u8; 6]) -> [u8; 8] {
    [
        mac[0] ^ 0x02,
        mac[1],
        mac[2],
        0xff,
        0xfe,
        mac[3],
        mac[4],
        mac[5],
    ]
}

/// `prefix` (its first 64 bits) with `mac`'s interface identifier.
pub fn address(prefix: Ipv6Addr, mac: [u8; 6]) -> Ipv6Addr {
    let mut b = prefix.octets();
    b[8..].copy_from_slice(&interface_id(mac));
    Ipv6Addr::from(b)
}

/// fe80::/64 with `mac`'s interface identifier.
pub fn link_local(mac: [u8; 6]) -> Ipv6Addr {
    address(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), mac)
}

/// Whether SLAAC may form an address from `p` (RFC 4862 §5.5.3: A set, a /64 for
/// Ethernet's 64-bit identifiers, not link-local, preferred ≤ valid, valid > 0).
pub fn usable(p: &Prefix) -> bool {
    p.autonomous
        && p.len == 64
        && !p.prefix.is_unicast_link_local()
        && p.preferred <= p.valid
        && p.valid > 0
}

/// A router solicitation from `src` (our link-local address) with `mac` as its source
/// link-layer option, to all routers: a whole IPv6 packet, checksum filled in.
pub fn solicitation(src: Ipv6Addr, mac: [u8; 6]) -> Vec<u8> {
    let icmp_len = 8 + 8;
    let mut b = alloc::vec![0u8; 40 + icmp_len];
    b[0] = 0x60;
    b[4..6].copy_from_slice(&(icmp_len as u16).to_be_bytes());
    b[6] = 58;
    b[7] = 255;
    b[8..24].copy_from_slice(&src.octets());
    b[24..40].copy_from_slice(&ALL_ROUTERS.octets());
    let icmp = &mut b[40..];
    icmp[0] = ROUTER_SOLICIT;
    icmp[8] = 1;
    icmp[9] = 1;
    icmp[10..16].copy_from_slice(&mac);
    Icmpv6Packet::new_unchecked(icmp).fill_checksum(&src, &ALL_ROUTERS);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
    const ROUTER: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);
    const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

    /// What QEMU's slirp sends: fec0::/64, on-link and autonomous, source link-layer
    /// address, MTU... (built here field by field).
    fn slirp_ra(opts: &[u8]) -> Vec<u8> {
        let mut icmp = alloc::vec![
            ROUTER_ADVERT,
            0,
            0,
            0,
            64,
            0,
            0x0e,
            0x10,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0
        ];
        icmp.extend_from_slice(opts);
        let mut b = alloc::vec![0u8; 40];
        b[0] = 0x60;
        b[4..6].copy_from_slice(&(icmp.len() as u16).to_be_bytes());
        b[6] = 58;
        b[7] = 255;
        b[8..24].copy_from_slice(&ROUTER.octets());
        b[24..40].copy_from_slice(&ALL_NODES.octets());
        b.extend_from_slice(&icmp);
        let (_, body) = b.split_at_mut(40);
        Icmpv6Packet::new_unchecked(body).fill_checksum(&ROUTER, &ALL_NODES);
        b
    }

    fn prefix_opt(prefix: Ipv6Addr, len: u8, flags: u8) -> Vec<u8> {
        let mut o = alloc::vec![3, 4, len, flags];
        o.extend_from_slice(&86400u32.to_be_bytes());
        o.extend_from_slice(&14400u32.to_be_bytes());
        o.extend_from_slice(&[0; 4]);
        o.extend_from_slice(&prefix.octets());
        o
    }

    fn good() -> Vec<u8> {
        let mut opts = alloc::vec![1, 1, 0x52, 0x55, 10, 0, 2, 2];
        opts.extend(prefix_opt(
            Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0),
            64,
            0xc0,
        ));
        opts.extend_from_slice(&[5, 1, 0, 0, 0, 0, 0x05, 0xdc]);
        opts.extend_from_slice(&[
            25, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ]);
        slirp_ra(&opts)
    }

    #[test]
    fn slirps_advertisement_gives_fec0_and_the_router() {
        let ra = parse_advert(&good()).unwrap();
        assert_eq!(ra.router, ROUTER);
        assert_eq!(ra.router_lifetime, 3600);
        assert_eq!(ra.mtu, Some(1500));
        assert_eq!(ra.router_mac, Some([0x52, 0x55, 10, 0, 2, 2]));
        assert_eq!(ra.prefixes.len(), 1);
        let p = ra.prefixes[0];
        assert!(usable(&p));
        assert_eq!(
            address(p.prefix, MAC),
            "fec0::5054:ff:fe12:3456".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            link_local(MAC),
            "fe80::5054:ff:fe12:3456".parse::<Ipv6Addr>().unwrap()
        );
    }

    #[test]
    fn unusable_prefixes_are_parsed_but_not_used() {
        for (prefix, len, flags) in [
            ("fec0::", 64, 0x80),
            ("fec0::", 48, 0xc0),
            ("fe80::", 64, 0xc0),
        ] {
            let ra =
                parse_advert(&slirp_ra(&prefix_opt(prefix.parse().unwrap(), len, flags))).unwrap();
            assert!(!usable(&ra.prefixes[0]), "{prefix}/{len} {flags:#x}");
        }
    }

    #[test]
    fn malformed_advertisements_are_refused_with_a_reason() {
        let g = good();
        let mut cases: Vec<(Vec<u8>, &str)> = Vec::new();
        // Every truncation.
        for n in 0..g.len() {
            let mut t = g[..n].to_vec();
            if t.len() >= 6 {
                // Payload length left as it was: lies past the end.
                cases.push((t.clone(), "truncated"));
                // Payload length made to match: options cut short.
                let pl = (n.saturating_sub(40)) as u16;
                t[4..6].copy_from_slice(&pl.to_be_bytes());
            }
            cases.push((t, "truncated, length fixed"));
        }
        let with = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut b = g.clone();
            f(&mut b);
            b
        };
        cases.push((with(&|b| b[7] = 64), "hop limit"));
        cases.push((with(&|b| b[8] = 0x20), "global source"));
        cases.push((with(&|b| b[41] = 1), "code"));
        cases.push((with(&|b| b[42] ^= 1), "checksum"));
        cases.push((with(&|b| b[6] = 17), "UDP"));
        cases.push((with(&|b| b[40] = 128), "echo request"));
        // An option of length 0 (a parser trusting it would never end), past the end.
        cases.push((slirp_ra(&[1, 0, 0, 0, 0, 0, 0, 0]), "option length 0"));
        cases.push((
            slirp_ra(&[3, 9, 64, 0xc0, 0, 0, 0, 0]),
            "option past the end",
        ));
        cases.push((
            slirp_ra(&[3, 1, 64, 0xc0, 0, 0, 0, 0]),
            "short prefix option",
        ));
        cases.push((slirp_ra(&[1]), "one byte of option"));
        let mut p = prefix_opt(Ipv6Addr::UNSPECIFIED, 200, 0xc0);
        p[1] = 4;
        cases.push((slirp_ra(&p), "prefix length 200"));
        let mut refused = 0;
        for (c, what) in &cases {
            match parse_advert(c) {
                Err(_) => refused += 1,
                // A truncation that ends exactly between options is still a valid RA.
                Ok(ra) => assert!(what.starts_with("truncated"), "{what}: {ra:?}"),
            }
        }
        assert!(refused > g.len(), "{refused} of {}", cases.len());
        // Random bytes: never a panic.
        let mut x = 0x1234_5678u32;
        for len in 0..400 {
            let mut b = g.clone();
            b.resize(len.max(41), 0);
            for v in b.iter_mut().skip(40) {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *v = x as u8;
            }
            b[40] = ROUTER_ADVERT;
            let _ = parse_advert(&b);
        }
    }

    #[test]
    fn the_solicitation_is_a_valid_icmpv6_message() {
        let ll = link_local(MAC);
        let rs = solicitation(ll, MAC);
        let ip = Ipv6Packet::new_checked(&rs[..]).unwrap();
        assert_eq!(ip.hop_limit(), 255);
        assert_eq!(ip.dst_addr(), ALL_ROUTERS);
        let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum(&ll, &ALL_ROUTERS));
        assert_eq!(ip.payload()[0], ROUTER_SOLICIT);
        assert_eq!(&ip.payload()[10..16], &MAC);
    }
}
