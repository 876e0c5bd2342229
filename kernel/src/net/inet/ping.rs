//! ICMP echo: ping sockets (SOCK_DGRAM/IPPROTO_ICMP, and SOCK_DGRAM/IPPROTO_ICMPV6 on
//! AF_INET6: the identifier and checksum are the kernel's, as on Linux) and raw ICMP
//! sockets for root: IPv4 (the caller's ICMP message in an IPv4 header built here; replies
//! arrive as whole IPv4 packets) and ICMPv6 (as on Linux: messages without the IPv6
//! header both ways, the checksum always the kernel's, ICMP6_FILTER applied).

use alloc::vec::Vec;
use core::net::{IpAddr, SocketAddr, SocketAddrV4};

use smoltcp::socket::{icmp, raw};
use smoltcp::wire::{IpAddress, IpProtocol, IpVersion};

use super::{InetSock, Kind, Stack};
use crate::errno::{Errno, KResult};
use crate::fs::consts::*;

fn icmp_socket() -> icmp::Socket<'static> {
    icmp::Socket::new(
        icmp::PacketBuffer::new(
            alloc::vec![icmp::PacketMetadata::EMPTY; 16],
            alloc::vec![0; 16 * 1024],
        ),
        icmp::PacketBuffer::new(
            alloc::vec![icmp::PacketMetadata::EMPTY; 16],
            alloc::vec![0; 16 * 1024],
        ),
    )
}

fn raw_icmp_socket(v6: bool) -> raw::Socket<'static> {
    raw::Socket::new(
        if v6 { IpVersion::Ipv6 } else { IpVersion::Ipv4 },
        if v6 {
            IpProtocol::Icmpv6
        } else {
            IpProtocol::Icmp
        },
        raw::PacketBuffer::new(
            alloc::vec![raw::PacketMetadata::EMPTY; 32],
            alloc::vec![0; 32 * 1024],
        ),
        raw::PacketBuffer::new(
            alloc::vec![raw::PacketMetadata::EMPTY; 16],
            alloc::vec![0; 16 * 1024],
        ),
    )
}

impl InetSock {
    /// A raw ICMP send: the caller's ICMP message (its checksum is the caller's, as on
    /// Linux) in an IPv4 header built here.
    pub(super) fn send_raw(
        &self,
        data: &[u8],
        dest: Option<SocketAddr>,
        nonblock: bool,
    ) -> KResult<usize> {
        if self.v6 {
            return self.send_raw6(data, dest, nonblock);
        }
        if data.len() < 4 || data.len() > 1480 {
            return Err(Errno::EINVAL);
        }
        self.blocking(nonblock, POLLOUT, |st, id| {
            let s = st.inet.get(id)?;
            let to: SocketAddrV4 = match dest.or(s.remote) {
                Some(SocketAddr::V4(a)) => a,
                Some(SocketAddr::V6(_)) => return Err(Errno::EAFNOSUPPORT),
                None => return Err(Errno::EDESTADDRREQ),
            };
            let Some(IpAddr::V4(me)) = super::source_for(st, IpAddr::V4(*to.ip())) else {
                return Err(Errno::ENETUNREACH);
            };
            if st.inet.get(id)?.handle.is_none() {
                open_raw(st, id)?;
            }
            st.inet.ip_id = st.inet.ip_id.wrapping_add(1);
            let ip_id = st.inet.ip_id;
            let h = st.inet.get(id)?.handle.ok_or(Errno::EBADF)?;
            let total = 20 + data.len();
            let mut pkt = Vec::with_capacity(total);
            pkt.extend_from_slice(&[0x45, 0]);
            pkt.extend_from_slice(&(total as u16).to_be_bytes());
            pkt.extend_from_slice(&ip_id.to_be_bytes());
            pkt.extend_from_slice(&[0x40, 0, 64, 1, 0, 0]);
            pkt.extend_from_slice(&me.octets());
            pkt.extend_from_slice(&to.ip().octets());
            let c = checksum(&pkt);
            pkt[10..12].copy_from_slice(&c.to_be_bytes());
            pkt.extend_from_slice(data);
            match st.sockets.get_mut::<raw::Socket>(h).send_slice(&pkt) {
                Ok(()) => Ok(Some(data.len())),
                Err(_) => Ok(None),
            }
        })
    }

    pub(super) fn send_icmp(
        &self,
        data: &[u8],
        dest: Option<SocketAddr>,
        nonblock: bool,
    ) -> KResult<usize> {
        // An ICMP echo request: type 8 (ICMPv6: 128), code 0, checksum, identifier,
        // sequence, payload.
        let echo = if self.v6 { 128 } else { 8 };
        if data.len() < 8 || data.len() > 1472 {
            return Err(Errno::EINVAL);
        }
        if data[0] != echo || data[1] != 0 {
            return Err(Errno::EINVAL);
        }
        self.blocking(nonblock, POLLOUT, |st, id| {
            let s = st.inet.get(id)?;
            let to = dest.or(s.remote).ok_or(Errno::EDESTADDRREQ)?;
            // Linux: an ICMPv6 socket pings IPv6 addresses only, an ICMP one IPv4 ones.
            if to.is_ipv6() != self.v6 {
                return Err(Errno::EINVAL);
            }
            if super::source_for(st, to.ip()).is_none() {
                return Err(Errno::ENETUNREACH);
            }
            if st.inet.get(id)?.handle.is_none() {
                open_icmp(st, id)?;
            }
            let s = st.inet.get(id)?;
            let ident = s.local.port();
            let h = s.handle.ok_or(Errno::EBADF)?;
            let mut pkt = data.to_vec();
            // Like Linux: the identifier is the socket's, the checksum ours.
            pkt[4..6].copy_from_slice(&ident.to_be_bytes());
            pkt[2..4].copy_from_slice(&[0, 0]);
            // ICMPv6's checksum covers the pseudo-header: smoltcp fills it in on the way out.
            let c = checksum(&pkt);
            pkt[2..4].copy_from_slice(&c.to_be_bytes());
            let i = st.sockets.get_mut::<icmp::Socket>(h);
            match i.send_slice(&pkt, IpAddress::from(to.ip())) {
                Ok(()) => Ok(Some(data.len())),
                Err(icmp::SendError::BufferFull) => Ok(None),
                Err(icmp::SendError::Unaddressable) => Err(Errno::EINVAL),
            }
        })
    }
}

impl InetSock {
    /// A raw ICMPv6 send: the caller's message in an IPv6 header built here, its checksum
    /// computed over the pseudo-header (Linux always does it for ICMPv6).
    fn send_raw6(&self, data: &[u8], dest: Option<SocketAddr>, nonblock: bool) -> KResult<usize> {
        if data.len() < 4 || data.len() > 1452 {
            return Err(Errno::EINVAL);
        }
        self.blocking(nonblock, POLLOUT, |st, id| {
            let s = st.inet.get(id)?;
            let to = match dest.or(s.remote) {
                Some(SocketAddr::V6(a)) => *a.ip(),
                Some(SocketAddr::V4(_)) => return Err(Errno::EAFNOSUPPORT),
                None => return Err(Errno::EDESTADDRREQ),
            };
            let me = match s.local.ip() {
                IpAddr::V6(a) if !a.is_unspecified() => a,
                _ => match super::source_for(st, IpAddr::V6(to)) {
                    Some(IpAddr::V6(a)) => a,
                    _ => return Err(Errno::ENETUNREACH),
                },
            };
            if st.inet.get(id)?.handle.is_none() {
                open_raw(st, id)?;
            }
            let h = st.inet.get(id)?.handle.ok_or(Errno::EBADF)?;
            let mut pkt = Vec::with_capacity(40 + data.len());
            pkt.extend_from_slice(&[0x60, 0, 0, 0]);
            pkt.extend_from_slice(&(data.len() as u16).to_be_bytes());
            let hops = if to.is_multicast() { 1 } else { 64 };
            pkt.extend_from_slice(&[58, hops]);
            pkt.extend_from_slice(&me.octets());
            pkt.extend_from_slice(&to.octets());
            pkt.extend_from_slice(data);
            smoltcp::wire::Icmpv6Packet::new_unchecked(&mut pkt[40..]).fill_checksum(&me, &to);
            match st.sockets.get_mut::<raw::Socket>(h).send_slice(&pkt) {
                Ok(()) => Ok(Some(data.len())),
                Err(_) => Ok(None),
            }
        })
    }
}

/// The next ICMPv6 message a raw socket heard that `filter` lets through, without its
/// IPv6 header, into `buf`: (copied, full length, sender).
pub(super) fn recv_raw6(
    r: &mut raw::Socket<'static>,
    filter: &[u32; 8],
    buf: &mut [u8],
    peek: bool,
) -> Option<(usize, usize, Option<SocketAddr>)> {
    loop {
        let d = r.peek().ok()?;
        // smoltcp hands over IPv6 packets whose next header is ICMPv6: 40+ bytes.
        let msg = d.get(40..).unwrap_or(&[]);
        let ty = msg.first().copied();
        let blocked = ty.is_none_or(|t| filter[usize::from(t >> 5)] & (1 << (t & 31)) != 0);
        if blocked {
            let _ = r.recv();
            continue;
        }
        let mut a = [0u8; 16];
        a.copy_from_slice(d.get(8..24)?);
        let from = SocketAddr::new(IpAddr::V6(core::net::Ipv6Addr::from(a)), 0);
        let n = msg.len().min(buf.len());
        buf[..n].copy_from_slice(&msg[..n]);
        let full = msg.len();
        if !peek {
            let _ = r.recv();
        }
        return Some((n, full, Some(from)));
    }
}

/// The Internet checksum (RFC 1071).
fn checksum(b: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in b.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from(c[0]) << 8
        };
        sum += u32::from(w);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

pub(super) fn open_raw(st: &mut Stack, id: u64) -> KResult<()> {
    let v6 = st.inet.get(id)?.v6;
    let h = st.sockets.add(raw_icmp_socket(v6));
    st.inet.get(id)?.handle = Some(h);
    Ok(())
}

pub(super) fn open_icmp(st: &mut Stack, id: u64) -> KResult<()> {
    if st.inet.get(id)?.local.port() == 0 {
        let p = st.inet.ephemeral(Kind::Icmp)?;
        st.inet.get(id)?.local.set_port(p);
    }
    let ident = st.inet.get(id)?.local.port();
    let mut i = icmp_socket();
    i.bind(icmp::Endpoint::Ident(ident))
        .map_err(|_| Errno::EINVAL)?;
    let h = st.sockets.add(i);
    st.inet.get(id)?.handle = Some(h);
    Ok(())
}
