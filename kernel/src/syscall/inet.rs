//! The AF_INET/AF_INET6 half of the socket calls (`socket.rs` hands a call here when the
//! domain is AF_INET or AF_INET6 or the descriptor is such a socket): `sockaddr_in` and
//! `sockaddr_in6` in and out — the one place either is translated, for both stacks —
//! option levels, and the call shapes; the sockets themselves are `crate::net::inet` and
//! `crate::rump::net`.
//!
//! An AF_INET6 socket is dual-stack unless IPV6_V6ONLY is set (Linux's default): a
//! v4-mapped address (`::ffff:a.b.c.d`) given to it becomes an IPv4 address for the stack,
//! and IPv4 addresses the stack reports come back v4-mapped. With V6ONLY set a mapped
//! address is refused as Linux refuses it (bind: EINVAL, connect and sendto: ENETUNREACH).

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use super::Call;
use crate::arch::uaccess::{copy_from_user, copy_to_user, read_val, write_val};
use crate::errno::{Errno, KResult};
use crate::fs::File;
use crate::fs::consts::{O_CLOEXEC, O_NONBLOCK, O_RDWR};
use crate::net::inet::{Flag, InetSock, Kind, UDP_MAX};
use crate::net::socket::InetSocket;
use crate::proc::current_process;

pub const AF_INET: u64 = 2;
pub const AF_INET6: u64 = 10;
const SOCK_STREAM: u32 = 1;
const SOCK_DGRAM: u32 = 2;
const SOCK_RAW: u32 = 3;
const IPPROTO_ICMP: u64 = 1;
const IPPROTO_TCP: u64 = 6;
const IPPROTO_UDP: u64 = 17;
const IPPROTO_ICMPV6: u64 = 58;

const SOL_SOCKET: u64 = 1;
const SO_REUSEADDR: u64 = 2;
const SO_TYPE: u64 = 3;
const SO_ERROR: u64 = 4;
const SO_BROADCAST: u64 = 6;
const SO_SNDBUF: u64 = 7;
const SO_RCVBUF: u64 = 8;
const SO_KEEPALIVE: u64 = 9;
const SO_LINGER: u64 = 13;
const SO_RCVTIMEO: u64 = 20;
const SO_SNDTIMEO: u64 = 21;
const SO_ACCEPTCONN: u64 = 30;
const SO_PROTOCOL: u64 = 38;
const SO_DOMAIN: u64 = 39;
const SOL_IP: u64 = 0;
const SOL_TCP: u64 = 6;
const TCP_NODELAY: u64 = 1;
const IP_TOS: u64 = 1;
const IP_TTL: u64 = 2;
const SOL_IPV6: u64 = 41;
const IPV6_V6ONLY: u64 = 26;
const ICMP6_FILTER: u64 = 1;
const SOL_RAW: u64 = 255;
const IPV6_CHECKSUM: u64 = 7;
/// `sizeof(struct sockaddr_in6)`, and the RFC 2133 size without `sin6_scope_id` that Linux
/// still accepts.
const SIN6_LEN: usize = 28;
const SIN6_LEN_RFC2133: u64 = 24;

pub const MSG_PEEK: u32 = 2;
pub const MSG_TRUNC: u32 = 0x20;
pub const MSG_DONTWAIT: u32 = 0x40;

/// socket(AF_INET or AF_INET6, type, protocol).
pub fn socket(domain: u64, ty: u64, proto: u64) -> KResult<u64> {
    let v6 = domain == AF_INET6;
    let ty = ty as u32;
    if ty & !(0xf | O_NONBLOCK | O_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    // Linux: a protocol number outside 0..IPPROTO_MAX (263) is EINVAL, before any lookup.
    if proto as u32 as i32 >= 263 || (proto as u32 as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    let kind = match (ty & 0xf, proto) {
        (SOCK_STREAM, 0 | IPPROTO_TCP) => Kind::Stream,
        (SOCK_DGRAM, 0 | IPPROTO_UDP) => Kind::Dgram,
        (SOCK_DGRAM, IPPROTO_ICMP) if !v6 => Kind::Icmp,
        (SOCK_DGRAM, IPPROTO_ICMPV6) if v6 => Kind::Icmp,
        // Raw ICMPv6 for root (busybox's `ping6`); no other raw IPv6 protocol.
        (SOCK_RAW, IPPROTO_ICMPV6) if v6 && is_root() => Kind::RawIcmp,
        (SOCK_RAW, _) if v6 && !is_root() => return Err(Errno::EPERM),
        (SOCK_RAW, _) if v6 => return Err(Errno::EPROTONOSUPPORT),
        // Raw ICMP for root (busybox's ping); no other raw protocol.
        (SOCK_RAW, IPPROTO_ICMP) if is_root() => Kind::RawIcmp,
        (SOCK_RAW, IPPROTO_ICMP) => return Err(Errno::EPERM),
        (SOCK_RAW, _) => return Err(Errno::EPROTONOSUPPORT),
        (SOCK_STREAM | SOCK_DGRAM, _) => return Err(Errno::EPROTONOSUPPORT),
        _ => return Err(Errno::ESOCKTNOSUPPORT),
    };
    let s: Arc<dyn InetSocket> = if crate::net::stack_name() == "rump" {
        crate::rump::net::RumpSock::new(kind, v6)?
    } else {
        InetSock::new(kind, v6)
    };
    let f = new_file(s, ty & O_NONBLOCK != 0);
    super::events::install(f, ty & O_CLOEXEC != 0)
}

fn is_root() -> bool {
    current_process().is_some_and(|p| p.creds.lock().euid == 0)
}

fn new_file(s: Arc<dyn InetSocket>, nonblock: bool) -> Arc<File> {
    File::new_anon(s, O_RDWR | if nonblock { O_NONBLOCK } else { 0 })
}

/// The AF_INET/AF_INET6 socket behind `f`, if it is one.
pub fn of(f: &File) -> Option<&dyn InetSocket> {
    let a = f.anon()?.as_any();
    if let Some(s) = a.downcast_ref::<InetSock>() {
        return Some(s);
    }
    a.downcast_ref::<crate::rump::net::RumpSock>()
        .map(|s| s as &dyn InetSocket)
}

/// A `sockaddr_in` of `len` bytes at `addr`.
fn read_sin(addr: u64, len: u64) -> KResult<SocketAddrV4> {
    if !(16..=128).contains(&len) {
        return Err(Errno::EINVAL);
    }
    let b: [u8; 16] = read_val(addr)?;
    let family = u16::from_le_bytes([b[0], b[1]]) as u64;
    if family != AF_INET {
        return Err(Errno::EAFNOSUPPORT);
    }
    Ok(SocketAddrV4::new(
        Ipv4Addr::new(b[4], b[5], b[6], b[7]),
        u16::from_be_bytes([b[2], b[3]]),
    ))
}

/// A `sockaddr_in6` of `len` bytes at `addr`, for an AF_INET6 socket: a v4-mapped address
/// as IPv4 — or `mapped_err` when the socket is V6ONLY.
fn read_sin6(s: &dyn InetSocket, addr: u64, len: u64, mapped_err: Errno) -> KResult<SocketAddr> {
    if !(SIN6_LEN_RFC2133..=128).contains(&len) {
        return Err(Errno::EINVAL);
    }
    let mut b = [0u8; SIN6_LEN];
    copy_from_user(&mut b[..(len as usize).min(SIN6_LEN)], addr)?;
    if u64::from(u16::from_le_bytes([b[0], b[1]])) != AF_INET6 {
        return Err(Errno::EAFNOSUPPORT);
    }
    let port = u16::from_be_bytes([b[2], b[3]]);
    let flow = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[8..24]);
    let ip = Ipv6Addr::from(a);
    let scope = u32::from_le_bytes([b[24], b[25], b[26], b[27]]);
    if let Some(v4) = ip.to_ipv4_mapped() {
        if s.flag(Flag::V6Only) {
            return Err(mapped_err);
        }
        return Ok(SocketAddr::V4(SocketAddrV4::new(v4, port)));
    }
    Ok(SocketAddr::V6(SocketAddrV6::new(ip, port, flow, scope)))
}

/// The address of `len` bytes at `addr` in the socket's family; `mapped_err` is what a
/// V6ONLY socket says to a v4-mapped one.
fn read_addr(s: &dyn InetSocket, addr: u64, len: u64, mapped_err: Errno) -> KResult<SocketAddr> {
    if s.v6() {
        read_sin6(s, addr, len, mapped_err)
    } else {
        read_sin(addr, len).map(SocketAddr::V4)
    }
}

/// A destination for sendto/sendmsg. An AF_INET6 datagram socket takes a `sockaddr_in`
/// too (Linux's udpv6_sendmsg hands it to IPv4 unless V6ONLY) and says EINVAL to another
/// family (AF_UNSPEC, which Linux takes for "no address", included).
pub fn read_dest(s: &dyn InetSocket, addr: u64, len: u64) -> KResult<SocketAddr> {
    if s.v6() && s.kind() == Kind::Dgram {
        if !(2..=128).contains(&len) {
            return Err(Errno::EINVAL);
        }
        let family: u16 = read_val(addr)?;
        return match u64::from(family) {
            AF_INET6 => read_sin6(s, addr, len, Errno::ENETUNREACH),
            // (Linux 6.18 says EINVAL here, not udpv6's ENETUNREACH.)
            AF_INET if s.flag(Flag::V6Only) => Err(Errno::EINVAL),
            AF_INET => read_sin(addr, len).map(SocketAddr::V4),
            _ => Err(Errno::EINVAL),
        };
    }
    read_addr(s, addr, len, Errno::ENETUNREACH)
}

/// `a` as the socket's family has it in user memory: `sockaddr_in`, or `sockaddr_in6` with
/// IPv4 addresses v4-mapped.
pub fn name_bytes(s: &dyn InetSocket, a: SocketAddr) -> Vec<u8> {
    if !s.v6() {
        let mut b = alloc::vec![0u8; 16];
        b[0..2].copy_from_slice(&(AF_INET as u16).to_le_bytes());
        b[2..4].copy_from_slice(&a.port().to_be_bytes());
        let ip = match a.ip() {
            IpAddr::V4(ip) => ip,
            IpAddr::V6(ip) => ip.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED),
        };
        b[4..8].copy_from_slice(&ip.octets());
        return b;
    }
    let mut b = alloc::vec![0u8; SIN6_LEN];
    b[0..2].copy_from_slice(&(AF_INET6 as u16).to_le_bytes());
    b[2..4].copy_from_slice(&a.port().to_be_bytes());
    let (ip, flow, scope) = match a {
        SocketAddr::V4(v) if v.ip().is_unspecified() => (Ipv6Addr::UNSPECIFIED, 0, 0),
        SocketAddr::V4(v) => (v.ip().to_ipv6_mapped(), 0, 0),
        SocketAddr::V6(v) => (*v.ip(), v.flowinfo(), v.scope_id()),
    };
    b[4..8].copy_from_slice(&flow.to_be_bytes());
    b[8..24].copy_from_slice(&ip.octets());
    b[24..28].copy_from_slice(&scope.to_le_bytes());
    b
}

/// Writes `a` to `addr`, truncated to `*lenp`, and its full length to `lenp`.
pub fn write_addr(s: &dyn InetSocket, addr: u64, lenp: u64, a: SocketAddr) -> KResult<()> {
    if addr == 0 || lenp == 0 {
        return Ok(());
    }
    let cap: i32 = read_val(lenp)?;
    if cap < 0 {
        return Err(Errno::EINVAL);
    }
    let b = name_bytes(s, a);
    copy_to_user(addr, &b[..b.len().min(cap as usize)])?;
    write_val(lenp, &(b.len() as u32))
}

pub fn bind(s: &dyn InetSocket, c: &Call<'_>) -> KResult<u64> {
    s.bind(read_addr(s, c.a1(), c.a2(), Errno::EINVAL)?)?;
    Ok(0)
}

pub fn listen(s: &dyn InetSocket, c: &Call<'_>) -> KResult<u64> {
    s.listen(c.i32(1))?;
    Ok(0)
}

pub fn connect(f: &File, s: &dyn InetSocket, c: &Call<'_>) -> KResult<u64> {
    // AF_UNSPEC on a datagram socket dissolves the association (Linux); not supported.
    s.connect(
        read_addr(s, c.a1(), c.a2(), Errno::ENETUNREACH)?,
        f.nonblock(),
    )?;
    Ok(0)
}

pub fn accept(f: &File, s: &dyn InetSocket, addr: u64, lenp: u64, flags: u32) -> KResult<u64> {
    if flags & !(O_NONBLOCK | O_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let (conn, peer) = s.accept(f.nonblock())?;
    let nfd = super::events::install(
        new_file(conn, flags & O_NONBLOCK != 0),
        flags & O_CLOEXEC != 0,
    )?;
    if let Err(e) = write_addr(s, addr, lenp, peer) {
        if let Some(p) = current_process() {
            let _ = p.files.lock().remove(nfd as i32);
        }
        return Err(e);
    }
    Ok(nfd)
}

pub fn shutdown(s: &dyn InetSocket, how: u64) -> KResult<u64> {
    s.shutdown(how as u32)?;
    Ok(0)
}

/// [`write_addr`] for getsockname/getpeername, where (unlike accept and recvfrom) the
/// length pointer is required and a NULL address with room is EFAULT (Linux).
fn write_addr_required(s: &dyn InetSocket, addr: u64, lenp: u64, a: SocketAddr) -> KResult<()> {
    if lenp == 0 {
        return Err(Errno::EFAULT);
    }
    let cap: i32 = read_val(lenp)?;
    if cap < 0 {
        return Err(Errno::EINVAL);
    }
    let b = name_bytes(s, a);
    let n = b.len().min(cap as usize);
    if n > 0 {
        if addr == 0 {
            return Err(Errno::EFAULT);
        }
        copy_to_user(addr, &b[..n])?;
    }
    write_val(lenp, &(b.len() as u32))
}

pub fn getsockname(s: &dyn InetSocket, c: &Call<'_>) -> KResult<u64> {
    write_addr_required(s, c.a1(), c.a2(), s.local_name()?)?;
    Ok(0)
}

pub fn getpeername(s: &dyn InetSocket, c: &Call<'_>) -> KResult<u64> {
    write_addr_required(s, c.a1(), c.a2(), s.peer_name()?)?;
    Ok(0)
}

fn int_opt(addr: u64, len: u64) -> KResult<i32> {
    if len < 4 {
        return Err(Errno::EINVAL);
    }
    read_val::<i32>(addr)
}

pub fn setsockopt(s: &dyn InetSocket, c: &Call<'_>) -> KResult<u64> {
    let (level, name, val) = (c.a1(), c.a2(), c.a3());
    // socklen_t is 32 bits; Linux refuses a negative one before looking at anything else.
    let len = c.a4() as u32;
    if (len as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    let len = u64::from(len);
    match (level, name) {
        (SOL_SOCKET, SO_REUSEADDR) => s.set_flag(Flag::ReuseAddr, int_opt(val, len)? != 0)?,
        (SOL_SOCKET, SO_KEEPALIVE) => s.set_flag(Flag::KeepAlive, int_opt(val, len)? != 0)?,
        (SOL_TCP, TCP_NODELAY) if s.kind() == Kind::Stream => {
            s.set_flag(Flag::NoDelay, int_opt(val, len)? != 0)?
        }
        (SOL_SOCKET, SO_SNDBUF | SO_RCVBUF) => {
            s.set_buffer_size(name == SO_SNDBUF, int_opt(val, len)?)?
        }
        (SOL_SOCKET, SO_BROADCAST) => s.set_flag(Flag::Broadcast, int_opt(val, len)? != 0)?,
        (SOL_SOCKET, SO_LINGER) => {
            if len < 8 {
                return Err(Errno::EINVAL);
            }
            let [on, secs] = read_val::<[i32; 2]>(val)?;
            s.set_linger(on != 0, secs)?;
        }
        (SOL_SOCKET, SO_RCVTIMEO | SO_SNDTIMEO) if len >= 16 => {
            read_val::<[i64; 2]>(val)?;
        }
        // IP_TOS, IP_TTL: checked as Linux checks them, not acted on.
        (SOL_IP, IP_TOS) => {
            int_opt(val, len.max(4))?;
        }
        (SOL_IPV6, IPV6_V6ONLY) if s.v6() => s.set_flag(Flag::V6Only, int_opt(val, len)? != 0)?,
        // The other IPv6 options Linux defines: accepted, not acted on.
        (SOL_IPV6, 1..=80) if s.v6() => {
            if len > 0 {
                let mut b = alloc::vec![0u8; (len as usize).min(64)];
                copy_from_user(&mut b, val)?;
            }
        }
        (IPPROTO_ICMPV6, ICMP6_FILTER) if s.v6() && s.kind() == Kind::RawIcmp => {
            // Linux takes at most the structure's 32 bytes; fewer leave the rest blocking
            // nothing.
            let mut b = [0u8; 32];
            let n = (len as usize).min(32);
            copy_from_user(&mut b[..n], val)?;
            let mut f = [0u32; 8];
            for (w, c) in f.iter_mut().zip(b.chunks(4)) {
                *w = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
            s.set_icmp6_filter(f)?;
        }
        // ICMPv6's checksum is always the kernel's; Linux accepts this at SOL_RAW.
        (SOL_RAW, IPV6_CHECKSUM) if s.v6() && s.kind() == Kind::RawIcmp => {
            let v = int_opt(val, len)?;
            if v > 0 && v & 1 != 0 {
                return Err(Errno::EINVAL);
            }
        }
        (SOL_IP, IP_TTL) => {
            let ttl = int_opt(val, len)?;
            if ttl != -1 && !(1..=255).contains(&ttl) {
                return Err(Errno::EINVAL);
            }
        }
        // The other options Linux defines at this level: accepted, not acted on.
        (SOL_IP, 3..=52) => {
            if len > 0 {
                let mut b = alloc::vec![0u8; (len as usize).min(64)];
                copy_from_user(&mut b, val)?;
            }
        }
        (SOL_SOCKET | SOL_TCP | SOL_IP, _) => return Err(Errno::ENOPROTOOPT),
        _ => return Err(Errno::ENOPROTOOPT),
    }
    Ok(0)
}

pub fn getsockopt(s: &dyn InetSocket, c: &Call<'_>) -> KResult<u64> {
    let (level, name) = (c.a1(), c.a2());
    let v: Vec<u8> = match (level, name) {
        (SOL_SOCKET, SO_TYPE) => Vec::from(s.kind().sock_type().to_le_bytes()),
        (SOL_SOCKET, SO_ERROR) => Vec::from(s.take_error().to_le_bytes()),
        (SOL_SOCKET, SO_REUSEADDR) => Vec::from((s.flag(Flag::ReuseAddr) as i32).to_le_bytes()),
        (SOL_SOCKET, SO_KEEPALIVE) => Vec::from((s.flag(Flag::KeepAlive) as i32).to_le_bytes()),
        (SOL_SOCKET, SO_SNDBUF) => Vec::from(s.buffer_sizes().0.to_le_bytes()),
        (SOL_SOCKET, SO_RCVBUF) => Vec::from(s.buffer_sizes().1.to_le_bytes()),
        (SOL_SOCKET, SO_ACCEPTCONN) => Vec::from((s.is_listening() as i32).to_le_bytes()),
        (SOL_SOCKET, SO_DOMAIN) => {
            Vec::from((if s.v6() { AF_INET6 } else { AF_INET } as i32).to_le_bytes())
        }
        (SOL_SOCKET, SO_PROTOCOL) if s.v6() && matches!(s.kind(), Kind::Icmp | Kind::RawIcmp) => {
            Vec::from((IPPROTO_ICMPV6 as i32).to_le_bytes())
        }
        (SOL_SOCKET, SO_PROTOCOL) => Vec::from(s.kind().protocol().to_le_bytes()),
        (SOL_IPV6, IPV6_V6ONLY) if s.v6() => Vec::from((s.flag(Flag::V6Only) as i32).to_le_bytes()),
        (SOL_IPV6, _) if s.v6() => return Err(Errno::ENOPROTOOPT),
        (SOL_SOCKET, SO_LINGER) => alloc::vec![0u8; 8],
        (SOL_SOCKET, SO_BROADCAST) => Vec::from((s.flag(Flag::Broadcast) as i32).to_le_bytes()),
        (SOL_TCP, TCP_NODELAY) if s.kind() == Kind::Stream => {
            Vec::from((s.flag(Flag::NoDelay) as i32).to_le_bytes())
        }
        (SOL_SOCKET, _) => return Err(Errno::ENOPROTOOPT),
        (SOL_TCP, _) if s.kind() == Kind::Stream => return Err(Errno::ENOPROTOOPT),
        (SOL_IP, _) => return Err(Errno::ENOPROTOOPT),
        // Linux's getsockopt: a level the protocol does not know is EOPNOTSUPP.
        _ => return Err(Errno::EOPNOTSUPP),
    };
    let cap: i32 = read_val(c.a4())?;
    if cap < 0 {
        return Err(Errno::EINVAL);
    }
    let n = v.len().min(cap as usize);
    copy_to_user(c.a3(), &v[..n])?;
    write_val(c.a4(), &(n as u32))?;
    Ok(0)
}

/// send/sendto/sendmsg's common part: `data` already copied in.
pub fn send(
    f: &File,
    s: &dyn InetSocket,
    data: &[u8],
    flags: u32,
    dest: Option<SocketAddr>,
) -> KResult<usize> {
    let nb = f.nonblock() || flags & MSG_DONTWAIT != 0;
    s.send(data, dest, nb)
}

/// How much of a `len`-byte send to copy in: a stream send takes at most `stream_chunk`
/// (the caller sends the rest later), a datagram that cannot go in one packet fails with
/// EMSGSIZE before anything is read.
pub fn send_len(s: &dyn InetSocket, len: usize, stream_chunk: usize) -> KResult<usize> {
    match s.kind() {
        Kind::Stream => Ok(len.min(stream_chunk)),
        _ if len > UDP_MAX => Err(Errno::EMSGSIZE),
        _ => Ok(len),
    }
}

/// recv/recvfrom/recvmsg's common part: (copied, full length, sender).
pub fn recv(
    f: &File,
    s: &dyn InetSocket,
    buf: &mut [u8],
    flags: u32,
) -> KResult<(usize, usize, Option<SocketAddr>)> {
    let nb = f.nonblock() || flags & MSG_DONTWAIT != 0;
    s.recv(buf, flags & MSG_PEEK != 0, nb)
}

/// Copies `data` from user memory for a send of at most `cap` bytes.
pub fn copy_in(addr: u64, len: usize) -> KResult<Vec<u8>> {
    let mut b = alloc::vec![0u8; len];
    copy_from_user(&mut b, addr)?;
    Ok(b)
}
