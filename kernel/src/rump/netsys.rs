//! The rump kernel's socket, poll, kqueue and network-configuration entry points, with the
//! NetBSD (amd64) constants and structures they take — in one place, so the socket bridge
//! ([`super::net`]) speaks Linux on one side and NetBSD only through these wrappers.
//!
//! Linux and NetBSD agree on `AF_INET` (2), the socket types (1–3), the protocol numbers,
//! `SHUT_*` and the low `POLL*` bits; they differ on `SOL_SOCKET` and the `SO_*` numbers,
//! the `MSG_*` flags, `sockaddr` (NetBSD's has a length byte before an 8-bit family),
//! `AF_INET6` (24 vs 10) and errno (translated by [`super::sys::linux_errno`]).
//! NetBSD's `sockaddr_in6` is Linux's with a length byte before an 8-bit family; the
//! v4-mapped addresses of a dual-stack AF_INET6 socket are NetBSD's too, so an IPv4
//! address given for an AF_INET6 socket goes in as `::ffff:a.b.c.d` and comes back out as
//! IPv4 ([`sockaddr`], [`SockaddrStorage::addr`]).

use core::ffi::{c_int, c_void};
use core::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use super::host::call;
use super::sys::{bind, chk, chk_sz, cstr};
use crate::errno::{Errno, KResult};

pub const AF_INET: c_int = 2;
pub const AF_INET6: c_int = 24;
pub const IPPROTO_IPV6: c_int = 41;
pub const IPPROTO_ICMPV6: c_int = 58;
pub const IPV6_MULTICAST_IF: c_int = 9;
pub const IPV6_MULTICAST_HOPS: c_int = 10;
pub const IPV6_V6ONLY: c_int = 27;
pub const SOCK_NONBLOCK: c_int = 0x2000_0000;
pub const SOL_SOCKET: c_int = 0xffff;
pub const SO_REUSEADDR: c_int = 0x4;
pub const SO_KEEPALIVE: c_int = 0x8;
pub const SO_BROADCAST: c_int = 0x20;
pub const SO_LINGER: c_int = 0x80;
pub const SO_SNDBUF: c_int = 0x1001;
pub const SO_RCVBUF: c_int = 0x1002;
pub const SO_ERROR: c_int = 0x1007;
pub const SO_ACCEPTCONN: c_int = 0x2;
pub const IPPROTO_TCP: c_int = 6;
pub const TCP_NODELAY: c_int = 1;
pub const MSG_PEEK: c_int = 0x2;
pub const MSG_NOSIGNAL: c_int = 0x400;
pub const POLLIN: i16 = 0x1;
pub const POLLOUT: i16 = 0x4;
pub const POLLERR: i16 = 0x8;
pub const POLLHUP: i16 = 0x10;
pub const POLLNVAL: i16 = 0x20;
/// `_IOR('f', 127, int)`.
pub const FIONREAD: u64 = 0x4004_667f;
pub const EVFILT_READ: u32 = 0;
pub const EVFILT_WRITE: u32 = 1;
pub const EV_ADD: u32 = 0x1;
pub const EV_DELETE: u32 = 0x2;
pub const EV_CLEAR: u32 = 0x20;
pub const EV_EOF: u32 = 0x8000;

/// NetBSD `struct sockaddr_in`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct SockaddrIn {
    pub sin_len: u8,
    pub sin_family: u8,
    /// Network byte order.
    pub sin_port: [u8; 2],
    pub sin_addr: [u8; 4],
    pub sin_zero: [u8; 8],
}
const _: () = assert!(core::mem::size_of::<SockaddrIn>() == 16);

impl SockaddrIn {
    pub fn from_v4(a: SocketAddrV4) -> SockaddrIn {
        SockaddrIn {
            sin_len: 16,
            sin_family: AF_INET as u8,
            sin_port: a.port().to_be_bytes(),
            sin_addr: a.ip().octets(),
            sin_zero: [0; 8],
        }
    }

    pub fn to_v4(self) -> SocketAddrV4 {
        SocketAddrV4::new(
            Ipv4Addr::from(self.sin_addr),
            u16::from_be_bytes(self.sin_port),
        )
    }
}

/// Room for any `sockaddr` the rump kernel hands back (`sockaddr_storage`: 128 bytes).
#[repr(C, align(8))]
#[derive(Clone, Copy)]
pub struct SockaddrStorage(pub [u8; 128]);

impl SockaddrStorage {
    /// The IPv4 address in it, if it holds one.
    pub fn v4(&self, len: u32) -> Option<SocketAddrV4> {
        if len < 8 || self.0[1] != AF_INET as u8 {
            return None;
        }
        Some(SocketAddrV4::new(
            Ipv4Addr::new(self.0[4], self.0[5], self.0[6], self.0[7]),
            u16::from_be_bytes([self.0[2], self.0[3]]),
        ))
    }

    /// The IPv4 or IPv6 address in it (a v4-mapped one as IPv4), if it holds one.
    pub fn addr(&self, len: u32) -> Option<SocketAddr> {
        if let Some(a) = self.v4(len) {
            return Some(SocketAddr::V4(a));
        }
        if len < 24 || self.0[1] != AF_INET6 as u8 {
            return None;
        }
        let b = &self.0;
        let port = u16::from_be_bytes([b[2], b[3]]);
        let mut a = [0u8; 16];
        a.copy_from_slice(&b[8..24]);
        let ip = Ipv6Addr::from(a);
        if let Some(v4) = ip.to_ipv4_mapped() {
            return Some(SocketAddr::V4(SocketAddrV4::new(v4, port)));
        }
        let scope = if len >= 28 {
            u32::from_le_bytes([b[24], b[25], b[26], b[27]])
        } else {
            0
        };
        Some(SocketAddr::V6(SocketAddrV6::new(
            ip,
            port,
            u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            scope,
        )))
    }
}

/// `a` as the NetBSD `sockaddr` of a socket of the family (`v6`: AF_INET6, where IPv4
/// addresses are v4-mapped): the bytes and their length.
pub fn sockaddr(a: SocketAddr, v6: bool) -> ([u8; 28], u32) {
    let mut b = [0u8; 28];
    b[2..4].copy_from_slice(&a.port().to_be_bytes());
    match (a, v6) {
        (SocketAddr::V4(v), false) => {
            b[0] = 16;
            b[1] = AF_INET as u8;
            b[4..8].copy_from_slice(&v.ip().octets());
            (b, 16)
        }
        (a, _) => {
            let (ip, flow, scope) = match a {
                SocketAddr::V4(v) if v.ip().is_unspecified() => (Ipv6Addr::UNSPECIFIED, 0, 0),
                SocketAddr::V4(v) => (v.ip().to_ipv6_mapped(), 0, 0),
                SocketAddr::V6(v) => (*v.ip(), v.flowinfo(), v.scope_id()),
            };
            b[0] = 28;
            b[1] = AF_INET6 as u8;
            b[4..8].copy_from_slice(&flow.to_be_bytes());
            b[8..24].copy_from_slice(&ip.octets());
            b[24..28].copy_from_slice(&scope.to_le_bytes());
            (b, 28)
        }
    }
}

/// NetBSD `struct pollfd`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct PollFd {
    pub fd: c_int,
    pub events: i16,
    pub revents: i16,
}

/// NetBSD `struct kevent` (amd64: 40 bytes).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct Kevent {
    pub ident: usize,
    pub filter: u32,
    pub flags: u32,
    pub fflags: u32,
    pub data: i64,
    pub udata: isize,
}
const _: () = assert!(core::mem::size_of::<Kevent>() == 40);

#[cfg(rump_linked)]
mod ffi {
    use core::ffi::{c_char, c_int, c_void};

    use super::{Kevent, PollFd};

    unsafe extern "C" {
        #[link_name = "rump___sysimpl_socket30"]
        pub fn socket(domain: c_int, ty: c_int, proto: c_int) -> c_int;
        #[link_name = "rump___sysimpl_bind"]
        pub fn bind(fd: c_int, addr: *const c_void, len: u32) -> c_int;
        #[link_name = "rump___sysimpl_connect"]
        pub fn connect(fd: c_int, addr: *const c_void, len: u32) -> c_int;
        #[link_name = "rump___sysimpl_listen"]
        pub fn listen(fd: c_int, backlog: c_int) -> c_int;
        #[link_name = "rump___sysimpl_paccept"]
        pub fn paccept(
            fd: c_int,
            addr: *mut c_void,
            len: *mut u32,
            sigmask: *const c_void,
            flags: c_int,
        ) -> c_int;
        #[link_name = "rump___sysimpl_sendto"]
        pub fn sendto(
            fd: c_int,
            buf: *const c_void,
            n: usize,
            flags: c_int,
            to: *const c_void,
            tolen: u32,
        ) -> isize;
        #[link_name = "rump___sysimpl_recvfrom"]
        pub fn recvfrom(
            fd: c_int,
            buf: *mut c_void,
            n: usize,
            flags: c_int,
            from: *mut c_void,
            fromlen: *mut u32,
        ) -> isize;
        #[link_name = "rump___sysimpl_shutdown"]
        pub fn shutdown(fd: c_int, how: c_int) -> c_int;
        #[link_name = "rump___sysimpl_getsockname"]
        pub fn getsockname(fd: c_int, addr: *mut c_void, len: *mut u32) -> c_int;
        #[link_name = "rump___sysimpl_getpeername"]
        pub fn getpeername(fd: c_int, addr: *mut c_void, len: *mut u32) -> c_int;
        #[link_name = "rump___sysimpl_setsockopt"]
        pub fn setsockopt(
            fd: c_int,
            level: c_int,
            name: c_int,
            val: *const c_void,
            len: u32,
        ) -> c_int;
        #[link_name = "rump___sysimpl_getsockopt"]
        pub fn getsockopt(
            fd: c_int,
            level: c_int,
            name: c_int,
            val: *mut c_void,
            len: *mut u32,
        ) -> c_int;
        #[link_name = "rump___sysimpl_poll"]
        pub fn poll(fds: *mut PollFd, n: u32, timeout_ms: c_int) -> c_int;
        #[link_name = "rump___sysimpl_kqueue"]
        pub fn kqueue() -> c_int;
        #[link_name = "rump___sysimpl_kevent50"]
        pub fn kevent(
            kq: c_int,
            changes: *const Kevent,
            nchanges: usize,
            events: *mut Kevent,
            nevents: usize,
            timeout: *const c_void,
        ) -> c_int;
        #[link_name = "rump___sysimpl___sysctl"]
        pub fn sysctl(
            name: *const c_int,
            namelen: u32,
            old: *mut c_void,
            oldlen: *mut usize,
            new: *const c_void,
            newlen: usize,
        ) -> c_int;
        pub fn rump_pub_netconfig_ifup(ifname: *const c_char) -> c_int;
        pub fn rump_pub_netconfig_dhcp_ipv4_oneshot(ifname: *const c_char) -> c_int;
    }
}

/// Stand-ins when the components are not linked: nothing reaches them (the rump stack is
/// never chosen then); they fail rather than pretend.
#[cfg(not(rump_linked))]
#[allow(clippy::missing_safety_doc)]
mod ffi {
    use core::ffi::{c_char, c_int, c_void};

    use super::{Kevent, PollFd};

    macro_rules! nosys {
        ($($name:ident($($a:ty),*) -> $r:ty;)*) => {$(
            pub unsafe fn $name($(_: $a),*) -> $r { (-1i32) as $r }
        )*};
    }
    nosys! {
        socket(c_int, c_int, c_int) -> c_int;
        bind(c_int, *const c_void, u32) -> c_int;
        connect(c_int, *const c_void, u32) -> c_int;
        listen(c_int, c_int) -> c_int;
        paccept(c_int, *mut c_void, *mut u32, *const c_void, c_int) -> c_int;
        sendto(c_int, *const c_void, usize, c_int, *const c_void, u32) -> isize;
        recvfrom(c_int, *mut c_void, usize, c_int, *mut c_void, *mut u32) -> isize;
        shutdown(c_int, c_int) -> c_int;
        getsockname(c_int, *mut c_void, *mut u32) -> c_int;
        getpeername(c_int, *mut c_void, *mut u32) -> c_int;
        setsockopt(c_int, c_int, c_int, *const c_void, u32) -> c_int;
        getsockopt(c_int, c_int, c_int, *mut c_void, *mut u32) -> c_int;
        poll(*mut PollFd, u32, c_int) -> c_int;
        kqueue() -> c_int;
        kevent(c_int, *const Kevent, usize, *mut Kevent, usize, *const c_void) -> c_int;
        sysctl(*const c_int, u32, *mut c_void, *mut usize, *const c_void, usize) -> c_int;
        rump_pub_netconfig_ifup(*const c_char) -> c_int;
        rump_pub_netconfig_dhcp_ipv4_oneshot(*const c_char) -> c_int;
    }
}

// Safe wrappers: every pointer is a Rust reference or buffer valid for the call; the rump
// kernel copies in and out with its own copyin/copyout (memcpy for its local client).

pub fn socket(domain: c_int, ty: c_int, proto: c_int) -> KResult<c_int> {
    bind();
    // SAFETY: plain integer arguments.
    chk(call(|| unsafe { ffi::socket(domain, ty, proto) })?)
}

pub fn bind_in(fd: c_int, a: SocketAddrV4) -> KResult<()> {
    bind();
    let sa = SockaddrIn::from_v4(a);
    // SAFETY: `sa` is a valid 16-byte sockaddr_in for the call.
    chk(call(|| unsafe {
        ffi::bind(fd, (&raw const sa).cast(), 16)
    })?)
    .map(drop)
}

/// bind(2) on a socket of the family `v6`.
pub fn bind_sa(fd: c_int, a: SocketAddr, v6: bool) -> KResult<()> {
    bind();
    let (sa, len) = sockaddr(a, v6);
    // SAFETY: `sa` holds a valid sockaddr of `len` bytes.
    chk(call(|| unsafe { ffi::bind(fd, sa.as_ptr().cast(), len) })?).map(drop)
}

pub fn connect_sa(fd: c_int, a: SocketAddr, v6: bool) -> KResult<()> {
    bind();
    let (sa, len) = sockaddr(a, v6);
    // SAFETY: as for `bind_sa`.
    chk(call(|| unsafe {
        ffi::connect(fd, sa.as_ptr().cast(), len)
    })?)
    .map(drop)
}

pub fn listen(fd: c_int, backlog: c_int) -> KResult<()> {
    bind();
    // SAFETY: plain integer arguments.
    chk(call(|| unsafe { ffi::listen(fd, backlog) })?).map(drop)
}

/// `paccept(fd, …, SOCK_NONBLOCK)`: the new descriptor and the peer's address.
pub fn accept_nb(fd: c_int) -> KResult<(c_int, Option<SocketAddr>)> {
    bind();
    let mut ss = SockaddrStorage([0; 128]);
    let mut len = 128u32;
    // SAFETY: `ss` has room for `len` bytes; no signal mask.
    let nfd = chk(call(|| unsafe {
        ffi::paccept(
            fd,
            (&raw mut ss).cast(),
            &mut len,
            core::ptr::null(),
            SOCK_NONBLOCK,
        )
    })?)?;
    Ok((nfd, ss.addr(len)))
}

pub fn sendto(
    fd: c_int,
    data: &[u8],
    flags: c_int,
    to: Option<SocketAddr>,
    v6: bool,
) -> KResult<usize> {
    bind();
    let sa = to.map(|a| sockaddr(a, v6));
    let (p, l) = match &sa {
        Some((b, len)) => (b.as_ptr().cast::<c_void>(), *len),
        None => (core::ptr::null(), 0),
    };
    // SAFETY: `data` is readable for its length; `p` is null or a valid sockaddr of `l`
    // bytes.
    chk_sz(call(|| unsafe {
        ffi::sendto(fd, data.as_ptr().cast(), data.len(), flags, p, l)
    })?)
}

pub fn recvfrom(fd: c_int, buf: &mut [u8], flags: c_int) -> KResult<(usize, Option<SocketAddr>)> {
    bind();
    let mut ss = SockaddrStorage([0; 128]);
    let mut len = 128u32;
    // SAFETY: `buf` is writable for its length, `ss` for `len` bytes.
    let n = chk_sz(call(|| unsafe {
        ffi::recvfrom(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            flags,
            (&raw mut ss).cast(),
            &mut len,
        )
    })?)?;
    Ok((n, ss.addr(len)))
}

pub fn shutdown(fd: c_int, how: c_int) -> KResult<()> {
    bind();
    // SAFETY: plain integer arguments.
    chk(call(|| unsafe { ffi::shutdown(fd, how) })?).map(drop)
}

fn name(fd: c_int, peer: bool) -> KResult<SocketAddr> {
    bind();
    let mut ss = SockaddrStorage([0; 128]);
    let mut len = 128u32;
    // SAFETY: `ss` has room for `len` bytes.
    chk(call(|| unsafe {
        if peer {
            ffi::getpeername(fd, (&raw mut ss).cast(), &mut len)
        } else {
            ffi::getsockname(fd, (&raw mut ss).cast(), &mut len)
        }
    })?)?;
    ss.addr(len).ok_or(Errno::EAFNOSUPPORT)
}

pub fn sockname(fd: c_int) -> KResult<SocketAddr> {
    name(fd, false)
}

pub fn peername(fd: c_int) -> KResult<SocketAddr> {
    name(fd, true)
}

pub fn setsockopt_int(fd: c_int, level: c_int, opt: c_int, v: c_int) -> KResult<()> {
    bind();
    // SAFETY: `v` is a valid int for the call.
    chk(call(|| unsafe {
        ffi::setsockopt(fd, level, opt, (&raw const v).cast(), 4)
    })?)
    .map(drop)
}

pub fn getsockopt_int(fd: c_int, level: c_int, opt: c_int) -> KResult<c_int> {
    bind();
    let mut v: c_int = 0;
    let mut len = 4u32;
    // SAFETY: `v` has room for `len` bytes.
    chk(call(|| unsafe {
        ffi::getsockopt(fd, level, opt, (&raw mut v).cast(), &mut len)
    })?)?;
    Ok(v)
}

/// `ICMP6_FILTER` (NetBSD: level IPPROTO_ICMPV6, option 18; a set bit passes the type).
pub fn set_icmp6_filter(fd: c_int, filter: [u32; 8]) -> KResult<()> {
    bind();
    // SAFETY: `filter` is a valid 32-byte `struct icmp6_filter` for the call.
    chk(call(|| unsafe {
        ffi::setsockopt(fd, IPPROTO_ICMPV6, 18, (&raw const filter).cast(), 32)
    })?)
    .map(drop)
}

/// `SO_LINGER`: (on, seconds).
pub fn set_linger(fd: c_int, on: bool, secs: c_int) -> KResult<()> {
    bind();
    let v: [c_int; 2] = [on as c_int, secs];
    // SAFETY: `v` is a valid `struct linger` (two ints) for the call.
    chk(call(|| unsafe {
        ffi::setsockopt(fd, SOL_SOCKET, SO_LINGER, (&raw const v).cast(), 8)
    })?)
    .map(drop)
}

/// The poll events ready on `fd` now (never blocks).
pub fn poll_now(fd: c_int, events: i16) -> KResult<i16> {
    bind();
    let mut p = PollFd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    chk(call(|| unsafe { ffi::poll(&mut p, 1, 0) })?)?;
    Ok(p.revents)
}

pub fn kqueue() -> KResult<c_int> {
    bind();
    // SAFETY: no arguments.
    chk(call(|| unsafe { ffi::kqueue() })?)
}

/// `kevent(kq, changes, events, no timeout)`: blocks until an event when `events` is not
/// empty.
pub fn kevent(kq: c_int, changes: &[Kevent], events: &mut [Kevent]) -> KResult<usize> {
    bind();
    // SAFETY: the slices are valid for their lengths; a null timeout waits indefinitely.
    chk(call(|| unsafe {
        ffi::kevent(
            kq,
            changes.as_ptr(),
            changes.len(),
            events.as_mut_ptr(),
            events.len(),
            core::ptr::null(),
        )
    })?)
    .map(|n| n as usize)
}

/// An int-valued ioctl (`FIONREAD`).
pub fn ioctl_int(fd: c_int, cmd: u64) -> KResult<c_int> {
    let mut v: c_int = 0;
    super::sys::ioctl(fd, cmd, &mut v)?;
    Ok(v)
}

/// NetBSD `struct ifreq` (amd64): the name, then a union whose largest member is a
/// `sockaddr_storage`.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
pub struct IfReq {
    pub name: [u8; 16],
    pub data: [u8; 128],
}
const _: () = assert!(core::mem::size_of::<IfReq>() == 144);
/// `_IOWR('i', 33, struct ifreq)`.
pub const SIOCGIFADDR: u64 = 0xc090_6921;
/// `_IOWR('i', 37, struct ifreq)`.
pub const SIOCGIFNETMASK: u64 = 0xc090_6925;

/// An interface's IPv4 address-valued attribute (`SIOCGIFADDR`, `SIOCGIFNETMASK`), asked
/// through the AF_INET socket `fd`.
pub fn if_sockaddr(fd: c_int, ifname: &str, cmd: u64) -> KResult<Ipv4Addr> {
    let mut r = IfReq {
        name: [0; 16],
        data: [0; 128],
    };
    let n = ifname.as_bytes();
    if n.len() >= 16 {
        return Err(Errno::EINVAL);
    }
    r.name[..n.len()].copy_from_slice(n);
    super::sys::ioctl(fd, cmd, &mut r)?;
    Ok(Ipv4Addr::new(r.data[4], r.data[5], r.data[6], r.data[7]))
}

/// `_IOWR('i', 38, struct ifconf)`, `_IOWR('i', 140, struct ifreq)`.
pub const SIOCGIFCONF: u64 = 0xc010_6926;
pub const SIOCGIFINDEX: u64 = 0xc090_698c;

/// NetBSD `struct ifconf` (amd64).
#[repr(C)]
#[derive(Clone, Copy)]
struct IfConf {
    len: c_int,
    buf: *mut IfReq,
}

/// Every interface's IPv6 addresses (SIOCGIFCONF through the socket `fd`): (interface
/// name, address).
pub fn if_inet6_addrs(fd: c_int) -> KResult<alloc::vec::Vec<(alloc::string::String, Ipv6Addr)>> {
    let mut reqs = alloc::vec![
        IfReq {
            name: [0; 16],
            data: [0; 128],
        };
        32
    ];
    let mut c = IfConf {
        len: (reqs.len() * core::mem::size_of::<IfReq>()) as c_int,
        buf: reqs.as_mut_ptr(),
    };
    super::sys::ioctl(fd, SIOCGIFCONF, &mut c)?;
    let n = (c.len.max(0) as usize / core::mem::size_of::<IfReq>()).min(reqs.len());
    let mut v = alloc::vec::Vec::new();
    for r in &reqs[..n] {
        if r.data[1] != AF_INET6 as u8 {
            continue;
        }
        let mut a = [0u8; 16];
        a.copy_from_slice(&r.data[8..24]);
        let mut ip = Ipv6Addr::from(a);
        // NetBSD keeps a link-local address's scope (the interface index) in its second
        // 16-bit word inside the kernel.
        if ip.is_unicast_link_local() {
            let mut seg = ip.segments();
            seg[1] = 0;
            ip = Ipv6Addr::from(seg);
        }
        let name_len = r.name.iter().position(|&c| c == 0).unwrap_or(16);
        let name = core::str::from_utf8(&r.name[..name_len]).unwrap_or("?");
        v.push((alloc::string::String::from(name), ip));
    }
    Ok(v)
}

/// The interface index of `ifname`.
pub fn if_index(fd: c_int, ifname: &str) -> KResult<u32> {
    let mut r = IfReq {
        name: [0; 16],
        data: [0; 128],
    };
    let n = ifname.as_bytes();
    if n.len() >= 16 {
        return Err(Errno::EINVAL);
    }
    r.name[..n.len()].copy_from_slice(n);
    super::sys::ioctl(fd, SIOCGIFINDEX, &mut r)?;
    Ok(u32::from_le_bytes([
        r.data[0], r.data[1], r.data[2], r.data[3],
    ]))
}

/// Sets the integer sysctl `mib` to `v`.
pub fn sysctl_set_int(mib: &[c_int], v: c_int) -> KResult<()> {
    bind();
    // SAFETY: `mib` holds `mib.len()` names; no old value asked; `v` is a valid int.
    chk(call(|| unsafe {
        ffi::sysctl(
            mib.as_ptr(),
            mib.len() as u32,
            core::ptr::null_mut(),
            core::ptr::null_mut(),
            (&raw const v).cast(),
            4,
        )
    })?)
    .map(drop)
}

/// `NET_RT_DUMP`: the routing table; `NET_RT_IFLIST`: the interfaces (`sys/socket.h`).
pub const NET_RT_DUMP: c_int = 1;
pub const NET_RT_IFLIST: c_int = 5;
/// `RTM_VERSION`, `RTM_GET` (a dumped route), `RTM_IFINFO` (`net/route.h`).
pub const RTM_VERSION: u8 = 4;
pub const RTM_GET: u8 = 0x4;
pub const RTM_IFINFO: u8 = 0x14;
/// `sizeof(struct rt_msghdr)`, `sizeof(struct if_msghdr)` on amd64 (the sockaddrs follow).
pub const RT_MSGHDR_LEN: usize = 120;
pub const IF_MSGHDR_LEN: usize = 152;
pub const RTF_GATEWAY: i32 = 0x2;
pub const RTA_DST: i32 = 0x1;
pub const RTA_GATEWAY: i32 = 0x2;
pub const AF_LINK: u8 = 18;

/// The routing sysctl `net.route.0.0.<what>.0` (`what`: [`NET_RT_DUMP`], [`NET_RT_IFLIST`]):
/// a sequence of routing messages.
pub fn route_sysctl(what: c_int) -> KResult<alloc::vec::Vec<u8>> {
    bind();
    let mib: [c_int; 6] = [4 /* CTL_NET */, 34 /* PF_ROUTE */, 0, 0, what, 0];
    for _ in 0..4 {
        let mut len = 0usize;
        // SAFETY: `mib` holds 6 names; a null buffer asks for the size.
        chk(call(|| unsafe {
            ffi::sysctl(
                mib.as_ptr(),
                6,
                core::ptr::null_mut(),
                &mut len,
                core::ptr::null(),
                0,
            )
        })?)?;
        let mut buf = alloc::vec![0u8; len + 1024];
        let mut got = buf.len();
        // SAFETY: `buf` has room for `got` bytes.
        match chk(call(|| unsafe {
            ffi::sysctl(
                mib.as_ptr(),
                6,
                buf.as_mut_ptr().cast(),
                &mut got,
                core::ptr::null(),
                0,
            )
        })?) {
            Ok(_) => {
                buf.truncate(got.min(buf.len()));
                return Ok(buf);
            }
            // Grew between the two calls: ask again.
            Err(Errno::ENOMEM) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Errno::ENOMEM)
}

/// Brings `ifname` up (`rump_pub_netconfig_ifup`): NetBSD's errno on failure.
pub fn netconfig_ifup(ifname: &str) -> KResult<()> {
    bind();
    let n = cstr(ifname)?;
    // SAFETY: a valid NUL-terminated name.
    match call(|| unsafe { ffi::rump_pub_netconfig_ifup(n.as_ptr()) })? {
        0 => Ok(()),
        e => Err(super::sys::linux_errno(e)),
    }
}

/// One DHCP exchange on `ifname` (NetBSD's dhcpcd-derived client in `net_config`, over
/// bpf): configures the address, netmask and default route it is given.
pub fn netconfig_dhcp(ifname: &str) -> KResult<()> {
    bind();
    let n = cstr(ifname)?;
    // SAFETY: a valid NUL-terminated name.
    match call(|| unsafe { ffi::rump_pub_netconfig_dhcp_ipv4_oneshot(n.as_ptr()) })? {
        0 => Ok(()),
        e => Err(super::sys::linux_errno(e)),
    }
}
