//! ICMP echo: ping sockets (SOCK_DGRAM/IPPROTO_ICMP: the identifier and checksum are the
//! kernel's, as on Linux) and raw ICMP sockets for root (the caller's ICMP message in an
//! IPv4 header built here; replies arrive as whole IPv4 packets).

use alloc::vec::Vec;
use core::net::SocketAddrV4;

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

fn raw_icmp_socket() -> raw::Socket<'static> {
    raw::Socket::new(
        IpVersion::Ipv4,
        IpProtocol::Icmp,
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
        dest: Option<SocketAddrV4>,
        nonblock: bool,
    ) -> KResult<usize> {
        if data.len() < 4 || data.len() > 1480 {
            return Err(Errno::EINVAL);
        }
        self.blocking(nonblock, POLLOUT, |st, id| {
            let s = st.inet.get(id)?;
            let to = dest.or(s.remote).ok_or(Errno::EDESTADDRREQ)?;
            let Some(me) = super::source_for(st, *to.ip()) else {
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
        dest: Option<SocketAddrV4>,
        nonblock: bool,
    ) -> KResult<usize> {
        // An ICMP echo request: type 8, code 0, checksum, identifier, sequence, payload.
        if data.len() < 8 || data.len() > 1472 {
            return Err(Errno::EINVAL);
        }
        if data[0] != 8 || data[1] != 0 {
            return Err(Errno::EINVAL);
        }
        self.blocking(nonblock, POLLOUT, |st, id| {
            let s = st.inet.get(id)?;
            let to = dest.or(s.remote).ok_or(Errno::EDESTADDRREQ)?;
            if super::source_for(st, *to.ip()).is_none() {
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
            let c = checksum(&pkt);
            pkt[2..4].copy_from_slice(&c.to_be_bytes());
            let i = st.sockets.get_mut::<icmp::Socket>(h);
            match i.send_slice(&pkt, IpAddress::Ipv4(*to.ip())) {
                Ok(()) => Ok(Some(data.len())),
                Err(icmp::SendError::BufferFull) => Ok(None),
                Err(icmp::SendError::Unaddressable) => Err(Errno::EINVAL),
            }
        })
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
    let h = st.sockets.add(raw_icmp_socket());
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
