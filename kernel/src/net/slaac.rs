//! IPv6 addresses of the native stack: `::1/128` (on `lo`), the link-local `fe80::/64`
//! address built from the MAC (modified EUI-64), and one address per advertised prefix by
//! stateless autoconfiguration (RFC 4862), which smoltcp 0.12 does not do.
//!
//! A raw smoltcp socket (IPv6, ICMPv6) sends router solicitations — when the interface
//! comes up and twice more 4 s apart until an advertisement arrives (RFC 4861 §6.3.7) —
//! and hears every ICMPv6 packet; router advertisements among them are parsed by
//! [`adros_netloop::ndp`], which refuses malformed ones with a reason (logged here, and
//! counted in `/proc/drivers`), never a panic. A usable prefix (QEMU's slirp advertises
//! `fec0::/64`) becomes an address; a router lifetime above 0 makes the sender the
//! default IPv6 router. There is no duplicate address detection (smoltcp has none).

use alloc::vec::Vec;
use core::net::Ipv6Addr;
use core::sync::atomic::{AtomicU64, Ordering};

use adros_netloop::ndp;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::raw;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{IpCidr, IpProtocol, IpVersion, Ipv6Cidr};

/// How many router solicitations, and how far apart (RFC 4861's MAX_RTR_SOLICITATIONS,
/// RTR_SOLICITATION_INTERVAL).
const SOLICITS: u8 = 3;
const SOLICIT_INTERVAL: Duration = Duration::from_secs(4);

/// Router advertisements refused as malformed, for `/proc/drivers`.
pub static BAD_ADVERTS: AtomicU64 = AtomicU64::new(0);

pub struct Slaac {
    pub raw: SocketHandle,
    mac: [u8; 6],
    pub link_local: Ipv6Addr,
    /// Autoconfigured addresses (prefix length 64).
    pub global: Vec<Ipv6Addr>,
    pub router: Option<Ipv6Addr>,
    solicits: u8,
    next_solicit: Instant,
    pub adverts: u64,
}

impl Slaac {
    pub fn new(sockets: &mut smoltcp::iface::SocketSet<'static>, mac: [u8; 6]) -> Slaac {
        let raw = sockets.add(raw::Socket::new(
            IpVersion::Ipv6,
            IpProtocol::Icmpv6,
            raw::PacketBuffer::new(
                alloc::vec![raw::PacketMetadata::EMPTY; 16],
                alloc::vec![0; 16 * 1024],
            ),
            raw::PacketBuffer::new(
                alloc::vec![raw::PacketMetadata::EMPTY; 4],
                alloc::vec![0; 1024],
            ),
        ));
        Slaac {
            raw,
            mac,
            link_local: ndp::link_local(mac),
            global: Vec::new(),
            router: None,
            solicits: 0,
            next_solicit: Instant::ZERO,
            adverts: 0,
        }
    }

    /// The interface's IPv6 addresses: `::1`, link-local, autoconfigured.
    pub fn cidrs(&self) -> Vec<IpCidr> {
        let mut v = alloc::vec![
            IpCidr::Ipv6(Ipv6Cidr::new(Ipv6Addr::LOCALHOST, 128)),
            IpCidr::Ipv6(Ipv6Cidr::new(self.link_local, 64)),
        ];
        v.extend(
            self.global
                .iter()
                .map(|a| IpCidr::Ipv6(Ipv6Cidr::new(*a, 64))),
        );
        v
    }

    /// Sends a router solicitation when one is due; true when one was queued.
    pub fn solicit(
        &mut self,
        sockets: &mut smoltcp::iface::SocketSet<'static>,
        now: Instant,
    ) -> bool {
        if self.adverts > 0 || self.solicits >= SOLICITS || now < self.next_solicit {
            return false;
        }
        let rs = ndp::solicitation(self.link_local, self.mac);
        if sockets
            .get_mut::<raw::Socket>(self.raw)
            .send_slice(&rs)
            .is_err()
        {
            return false;
        }
        self.solicits += 1;
        self.next_solicit = now + SOLICIT_INTERVAL;
        true
    }

    /// Reads what the raw socket heard; returns true when an advertisement changed the
    /// addresses or the router.
    pub fn receive(&mut self, sockets: &mut smoltcp::iface::SocketSet<'static>) -> bool {
        let mut changed = false;
        let mut pkts = Vec::new();
        {
            let r = sockets.get_mut::<raw::Socket>(self.raw);
            while let Ok(p) = r.recv() {
                // ICMPv6 type at offset 40 (smoltcp hands over packets without extension
                // headers here); only router advertisements matter.
                if p.get(40) == Some(&ndp::ROUTER_ADVERT) {
                    pkts.push(p.to_vec());
                }
            }
        }
        for p in pkts {
            match ndp::parse_advert(&p) {
                Ok(ra) => {
                    self.adverts += 1;
                    for pre in ra.prefixes.iter().filter(|p| ndp::usable(p)) {
                        let a = ndp::address(pre.prefix, self.mac);
                        if !self.global.contains(&a) && self.global.len() < 3 {
                            log::info!(
                                "net: IPv6: address {a}/64 from {}'s advertisement of {}/{}",
                                ra.router,
                                pre.prefix,
                                pre.len
                            );
                            self.global.push(a);
                            changed = true;
                        }
                    }
                    let router = (ra.router_lifetime > 0).then_some(ra.router);
                    if router != self.router {
                        self.router = router;
                        changed = true;
                    }
                }
                Err(why) => {
                    let n = BAD_ADVERTS.fetch_add(1, Ordering::Relaxed);
                    if n < 10 || n.is_multiple_of(1000) {
                        log::warn!(
                            "net: IPv6: router advertisement ignored: {why} ({} so far)",
                            n + 1
                        );
                    }
                }
            }
        }
        changed
    }
}
