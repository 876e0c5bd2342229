//! Loopback for a `smoltcp` Ethernet interface: [`Looped`] wraps the interface's device and
//! keeps every frame addressed to this host off the wire — IPv4 packets to 127.0.0.0/8,
//! IPv6 packets to `::1`, packets to one of the host's own addresses, and ARP for those
//! addresses — handing it back to the interface as a received frame instead, as Linux's
//! `lo` does for the same traffic.
//!
//! smoltcp resolves 127.0.0.1 like any neighbour: its ARP request for it comes straight
//! back, the interface answers itself and learns its own MAC for the address; the packets
//! that follow carry that MAC and come back the same way. So one interface (with
//! 127.0.0.1/8 among its addresses) and one socket set serve both the network and
//! loopback, and a connection to the host's own DHCP address stays inside too. IPv6 is
//! resolved with a Neighbour Solicitation instead, which smoltcp does not answer for `::1`
//! (its solicited-node check leaves `::1` out): [`Looped`] answers a solicitation for any
//! local address itself with a Neighbour Advertisement carrying the asking MAC.
//!
//! [`ndp`] parses router advertisements and builds router solicitations (SLAAC, which
//! smoltcp 0.12 lacks).
//!
//! Frames queue up to [`QUEUE`] deep; beyond that they are dropped and counted, as a full
//! device would, and TCP retransmits.
//!
//! The other way, a frame from the wire that claims 127.0.0.0/8 or `::1` — a packet to or
//! from it, ARP about it — is dropped and counted as a martian, as Linux drops it: otherwise a
//! neighbour could reach services bound to 127.0.0.1.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use smoltcp::phy::{self, ChecksumCapabilities, DeviceCapabilities};
use smoltcp::time::Instant;
use smoltcp::wire::{
    ArpPacket, EthernetFrame, EthernetProtocol, Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv4Packet,
    Ipv6Packet, Ipv6Repr, NdiscNeighborFlags, NdiscRepr,
};

pub mod ndp;
#[cfg(test)]
mod tests;

/// Frames waiting to be received back.
pub const QUEUE: usize = 256;
/// The host's own addresses besides 127.0.0.0/8 and `::1`.
pub const MAX_OWN: usize = 6;

/// Loopback counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoopStats {
    pub packets: u64,
    pub bytes: u64,
    pub dropped: u64,
    /// Frames from the wire that claimed 127.0.0.0/8, dropped.
    pub martians: u64,
}

/// A device with loopback in front of it.
pub struct Looped<D> {
    pub inner: D,
    own: [Option<IpAddr>; MAX_OWN],
    queue: VecDeque<Vec<u8>>,
    stats: LoopStats,
}

impl<D> Looped<D> {
    pub fn new(inner: D) -> Self {
        Looped {
            inner,
            own: [None; MAX_OWN],
            queue: VecDeque::new(),
            stats: LoopStats::default(),
        }
    }

    /// The host's addresses (besides 127.0.0.0/8 and `::1`), e.g. the DHCP lease and the
    /// IPv6 link-local and autoconfigured addresses; extra ones beyond [`MAX_OWN`] are
    /// ignored.
    pub fn set_own(&mut self, addrs: &[IpAddr]) {
        self.own = [None; MAX_OWN];
        for (slot, a) in self.own.iter_mut().zip(addrs) {
            *slot = Some(*a);
        }
    }

    pub fn is_local(&self, a: IpAddr) -> bool {
        a.is_loopback() || self.own.contains(&Some(a))
    }

    /// Frames waiting to be received back.
    pub fn pending(&self) -> bool {
        !self.queue.is_empty()
    }

    pub fn stats(&self) -> LoopStats {
        self.stats
    }

    /// Whether a frame smoltcp built must stay on this host.
    fn stays_here(&self, frame: &[u8]) -> bool {
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return false;
        };
        match eth.ethertype() {
            EthernetProtocol::Ipv4 => Ipv4Packet::new_checked(eth.payload())
                .is_ok_and(|ip| self.is_local(IpAddr::V4(ip.dst_addr()))),
            EthernetProtocol::Ipv6 => Ipv6Packet::new_checked(eth.payload())
                .is_ok_and(|ip| self.is_local(IpAddr::V6(ip.dst_addr()))),
            EthernetProtocol::Arp => ArpPacket::new_checked(eth.payload()).is_ok_and(|arp| {
                <[u8; 4]>::try_from(arp.target_protocol_addr())
                    .is_ok_and(|t| self.is_local(IpAddr::V4(Ipv4Addr::from(t))))
            }),
            _ => false,
        }
    }

    /// A Neighbour Solicitation smoltcp built for one of this host's addresses: the
    /// advertisement that answers it (to the asking MAC, which is ours), else None.
    fn answer_solicitation(&self, frame: &[u8]) -> Option<Vec<u8>> {
        let eth = EthernetFrame::new_checked(frame).ok()?;
        if eth.ethertype() != EthernetProtocol::Ipv6 {
            return None;
        }
        let ip = Ipv6Packet::new_checked(eth.payload()).ok()?;
        if ip.next_header() != IpProtocol::Icmpv6 {
            return None;
        }
        // Type 135, code 0, checksum, reserved, then the 16-byte target.
        let icmp = ip.payload();
        if icmp.len() < 24 || icmp[0] != 135 {
            return None;
        }
        let mut t = [0u8; 16];
        t.copy_from_slice(&icmp[8..24]);
        let target = Ipv6Addr::from(t);
        if !self.is_local(IpAddr::V6(target)) {
            return None;
        }
        let mac = eth.src_addr();
        let asker = ip.src_addr();
        let dst = if asker.is_unspecified() {
            Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1)
        } else {
            asker
        };
        let na = Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
            flags: NdiscNeighborFlags::SOLICITED | NdiscNeighborFlags::OVERRIDE,
            target_addr: target,
            lladdr: Some(mac.into()),
        });
        let ipr = Ipv6Repr {
            src_addr: target,
            dst_addr: dst,
            next_header: IpProtocol::Icmpv6,
            payload_len: na.buffer_len(),
            hop_limit: 255,
        };
        let mut buf = alloc::vec![0u8; 14 + ipr.buffer_len() + na.buffer_len()];
        let mut e = EthernetFrame::new_unchecked(&mut buf[..]);
        e.set_src_addr(mac);
        e.set_dst_addr(mac);
        e.set_ethertype(EthernetProtocol::Ipv6);
        let mut p = Ipv6Packet::new_unchecked(e.payload_mut());
        ipr.emit(&mut p);
        na.emit(
            &target,
            &dst,
            &mut Icmpv6Packet::new_unchecked(p.payload_mut()),
            &ChecksumCapabilities::default(),
        );
        Some(buf)
    }

    /// Whether a frame from the wire claims the loopback network.
    fn martian(frame: &[u8]) -> bool {
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return false;
        };
        match eth.ethertype() {
            EthernetProtocol::Ipv4 => Ipv4Packet::new_checked(eth.payload())
                .is_ok_and(|ip| ip.dst_addr().is_loopback() || ip.src_addr().is_loopback()),
            EthernetProtocol::Ipv6 => Ipv6Packet::new_checked(eth.payload())
                .is_ok_and(|ip| ip.dst_addr().is_loopback() || ip.src_addr().is_loopback()),
            EthernetProtocol::Arp => ArpPacket::new_checked(eth.payload()).is_ok_and(|arp| {
                [arp.source_protocol_addr(), arp.target_protocol_addr()]
                    .iter()
                    .any(|a| <[u8; 4]>::try_from(*a).is_ok_and(|a| a[0] == 127))
            }),
            _ => false,
        }
    }

    fn loop_back(&mut self, frame: Vec<u8>) {
        if self.queue.len() >= QUEUE {
            self.stats.dropped += 1;
            return;
        }
        self.stats.packets += 1;
        self.stats.bytes += frame.len() as u64;
        self.queue.push_back(frame);
    }
}

/// The device under the loopback: whole frames in and out (Ethernet header onwards, no
/// CRC), the way AdrOS's NIC drivers copy them to and from their DMA rings.
pub trait Wire {
    /// The next received frame, if any.
    fn receive_frame(&mut self) -> Option<Vec<u8>>;
    /// Whether a frame can be queued for sending now.
    fn can_send(&mut self) -> bool;
    /// Queues a frame; false when it was refused (counted by the device).
    fn send_frame(&mut self, frame: &[u8]) -> bool;
    fn capabilities(&self) -> DeviceCapabilities;
}

/// A received frame, from the wire or one of ours coming back.
pub struct RxToken(Vec<u8>);

impl phy::RxToken for RxToken {
    fn consume<T, F: FnOnce(&[u8]) -> T>(self, f: F) -> T {
        f(&self.0)
    }
}

/// A frame to send: built in a buffer first, then looked at to pick the way.
pub struct TxToken<'a, W: Wire>(&'a mut Looped<W>);

impl<W: Wire> phy::TxToken for TxToken<'_, W> {
    fn consume<T, F: FnOnce(&mut [u8]) -> T>(self, len: usize, f: F) -> T {
        let mut buf = alloc::vec![0u8; len];
        let r = f(&mut buf);
        if let Some(na) = self.0.answer_solicitation(&buf) {
            self.0.loop_back(na);
        } else if self.0.stays_here(&buf) {
            self.0.loop_back(buf);
        } else {
            // A refused frame is lost, as on a full ring; the device counts it.
            self.0.inner.send_frame(&buf);
        }
        r
    }
}

impl<W: Wire> phy::Device for Looped<W> {
    type RxToken<'a>
        = RxToken
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'a, W>
    where
        Self: 'a;

    fn receive(&mut self, _t: Instant) -> Option<(RxToken, TxToken<'_, W>)> {
        let frame = match self.queue.pop_front() {
            Some(f) => f,
            None => loop {
                let f = self.inner.receive_frame()?;
                if !Self::martian(&f) {
                    break f;
                }
                self.stats.martians += 1;
            },
        };
        Some((RxToken(frame), TxToken(self)))
    }

    fn transmit(&mut self, _t: Instant) -> Option<TxToken<'_, W>> {
        // Where the frame goes is known only once it is built, so every frame waits for a
        // free slot on the wire (smoltcp keeps it and tries again, as it does for a full
        // ring); loopback traffic therefore pauses while the wire's ring is full.
        self.inner.can_send().then_some(TxToken(self))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.inner.capabilities()
    }
}
