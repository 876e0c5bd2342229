//! AF_INET and AF_INET6 sockets on the native stack: SOCK_STREAM (TCP), SOCK_DGRAM (UDP)
//! for both families; for AF_INET also ICMP echo
//! through SOCK_DGRAM/IPPROTO_ICMP (Linux's "ping sockets") and SOCK_RAW/IPPROTO_ICMP for
//! root (what busybox 1.35's `ping` opens: it sends ICMP messages and receives whole IPv4
//! packets, the header built here on the way out), each a file whose readiness comes from
//! smoltcp.
//!
//! Every socket's state lives in the stack's [`Table`] (behind the stack lock, keyed by an
//! id); the file holds an [`InetSock`] with the id, a wait queue and the readiness bits the
//! last [`publish`] computed. `publish` runs after every smoltcp poll — by the `net` thread
//! or by a socket call — and wakes exactly the sockets whose bits changed, so blocking
//! calls, `poll`, `select` and `epoll` wait on one queue each and nothing polls in a loop.
//!
//! smoltcp has no accept queue: a listening socket is `backlog` smoltcp sockets listening
//! on the same port; `publish` moves each one that completes its handshake to the accept
//! queue and starts a fresh listener in its place. A closed connection stays in the socket
//! set until its FIN exchange is over ([`Table::orphans`]).
//!
//! An AF_INET6 socket is dual-stack unless IPV6_V6ONLY is set (Linux's default): bound to
//! `::` it hears IPv4 peers too, which the syscall layer shows as `::ffff:a.b.c.d`. smoltcp
//! listens on "any address" for both families at once, so the family a socket may hear
//! is enforced here ([`hears`]): an AF_INET socket ignores IPv6 datagrams and
//! connections, a V6ONLY socket IPv4 ones.
//!
//! Errors are Linux's: ECONNREFUSED for a reset connect, EINPROGRESS/EALREADY/EISCONN for
//! non-blocking connects (SO_ERROR reports the outcome), EPIPE after shutdown, EADDRINUSE,
//! EADDRNOTAVAIL, EDESTADDRREQ, EMSGSIZE, ENETUNREACH without a network.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::any::Any;
use core::net::{IpAddr, SocketAddr};
use core::sync::atomic::{AtomicU32, Ordering};

use smoltcp::iface::SocketHandle;
use smoltcp::socket::{tcp, udp};
use smoltcp::wire::{IpAddress, IpCidr, IpListenEndpoint};

mod addr;
mod ping;
mod ready;
mod recv;
pub use ready::HALF_OPEN_DROPPED;
mod stream;

use addr::{endpoint, hears, is_ours, sockaddr, source_for, unbound};
use ping::{open_icmp, open_raw};
use ready::refill;
pub use ready::{Row, publish, rows};

use super::{Stack, net};
use crate::errno::{Errno, KResult};
use crate::fs::File;
use crate::fs::anon::AnonFile;
use crate::fs::consts::*;
use crate::fs::sync::WaitQueue;
use crate::sync::spin::IrqSpinLock;

const TCP_RX: usize = 128 * 1024;
const TCP_TX: usize = 256 * 1024;
const UDP_PACKETS: usize = 64;
const UDP_BYTES: usize = 64 * 1024;
/// The largest UDP payload one IPv4 datagram carries (no IP fragmentation here; IPv6:
/// 20 bytes less).
pub const UDP_MAX: usize = 1472;
const MAX_BACKLOG: usize = 8;
const EPHEMERAL: core::ops::RangeInclusive<u16> = 49152..=65535;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Stream,
    Dgram,
    Icmp,
    /// SOCK_RAW, IPPROTO_ICMP.
    RawIcmp,
}

impl Kind {
    pub fn sock_type(self) -> i32 {
        match self {
            Kind::Stream => 1,
            Kind::Dgram | Kind::Icmp => 2,
            Kind::RawIcmp => 3,
        }
    }

    pub fn protocol(self) -> i32 {
        match self {
            Kind::Stream => 6,
            Kind::Dgram => 17,
            Kind::Icmp | Kind::RawIcmp => 1,
        }
    }
}

struct Listen {
    backlog: usize,
    /// Listening (or mid-handshake) smoltcp sockets.
    waiting: Vec<SocketHandle>,
    /// Established connections not yet accepted.
    ready: VecDeque<SocketHandle>,
    /// The sockets of `waiting` in SYN-RECEIVED and since when (ns of uptime) — a SYN
    /// flood fills `waiting` with them; see [`ready::publish`].
    half_open: Vec<(SocketHandle, u64)>,
}

struct State {
    kind: Kind,
    /// AF_INET6.
    v6: bool,
    /// IPV6_V6ONLY.
    v6only: bool,
    /// ICMP6_FILTER of a raw ICMPv6 socket (Linux's sense: a set bit blocks the type).
    icmp6_filter: [u32; 8],
    core: Weak<InetSock>,
    handle: Option<SocketHandle>,
    /// The bound address (port 0: not bound).
    local: SocketAddr,
    remote: Option<SocketAddr>,
    listen: Option<Listen>,
    /// A TCP connect in progress.
    connecting: bool,
    /// When the connect began (ns of uptime), to tell its timeout from a refusal.
    connect_since: u64,
    /// A TCP connection that reached ESTABLISHED.
    connected: bool,
    /// A non-blocking connect whose success no connect call has reported yet (Linux
    /// reports it once, then EISCONN).
    connect_unreported: bool,
    /// SO_ERROR: reported once, then cleared.
    error: Option<Errno>,
    shut_rd: bool,
    shut_wr: bool,
    reuseaddr: bool,
    broadcast: bool,
    nodelay: bool,
    keepalive: bool,
}

/// Every AF_INET/AF_INET6 socket of the stack.
#[derive(Default)]
pub struct Table {
    socks: BTreeMap<u64, State>,
    next_id: u64,
    next_port: u16,
    /// Closed TCP connections finishing their FIN exchange.
    orphans: Vec<SocketHandle>,
    /// The identification field of the last IPv4 header built for a raw socket.
    ip_id: u16,
}

/// The file side of a socket.
pub struct InetSock {
    id: u64,
    pub kind: Kind,
    /// AF_INET6.
    pub v6: bool,
    wq: WaitQueue,
    ready: AtomicU32,
}

fn udp_socket() -> udp::Socket<'static> {
    udp::Socket::new(
        udp::PacketBuffer::new(
            alloc::vec![udp::PacketMetadata::EMPTY; UDP_PACKETS],
            alloc::vec![0; UDP_BYTES],
        ),
        udp::PacketBuffer::new(
            alloc::vec![udp::PacketMetadata::EMPTY; UDP_PACKETS],
            alloc::vec![0; UDP_BYTES],
        ),
    )
}

impl Table {
    fn port_used(&self, kind: Kind, port: u16, reuse: bool) -> bool {
        self.socks.values().any(|s| {
            s.kind == kind
                && s.local.port() == port
                && (!reuse || !s.reuseaddr || s.listen.is_some())
        })
    }

    fn ephemeral(&mut self, kind: Kind) -> KResult<u16> {
        let span = (EPHEMERAL.end() - EPHEMERAL.start()) as u32 + 1;
        for _ in 0..span {
            if !EPHEMERAL.contains(&self.next_port) {
                self.next_port = *EPHEMERAL.start();
            }
            let p = self.next_port;
            self.next_port = self.next_port.wrapping_add(1);
            if !self.port_used(kind, p, false) {
                return Ok(p);
            }
        }
        Err(Errno::EADDRINUSE)
    }

    fn get(&mut self, id: u64) -> KResult<&mut State> {
        self.socks.get_mut(&id).ok_or(Errno::EBADF)
    }
}

/// Runs `f` on the socket's state with the stack locked, then polls the stack (so what `f`
/// queued leaves now) and publishes readiness.
fn with<T>(id: u64, f: impl FnOnce(&mut Stack, u64) -> KResult<T>) -> KResult<T> {
    let n = net().ok_or(Errno::ENETUNREACH)?;
    let mut st = n.stack.lock();
    reap_closed(&mut st);
    st.inet.get(id)?;
    let r = f(&mut st, id);
    st.poll(n);
    r
}

impl InetSock {
    /// A new socket (`kind` from socket()'s type and protocol; `v6`: AF_INET6).
    pub fn new(kind: Kind, v6: bool) -> Arc<InetSock> {
        let id = match net() {
            Some(n) => {
                let mut st = n.stack.lock();
                st.inet.next_id += 1;
                st.inet.next_id
            }
            None => 0,
        };
        let s = Arc::new(InetSock {
            id,
            kind,
            v6,
            wq: WaitQueue::new(),
            ready: AtomicU32::new(POLLOUT | POLLHUP),
        });
        if let Some(n) = net() {
            let mut st = n.stack.lock();
            st.inet.socks.insert(
                id,
                State {
                    kind,
                    v6,
                    v6only: false,
                    icmp6_filter: [0; 8],
                    core: Arc::downgrade(&s),
                    handle: None,
                    local: unbound(v6),
                    remote: None,
                    listen: None,
                    connecting: false,
                    connect_since: 0,
                    connected: false,
                    connect_unreported: false,
                    error: None,
                    shut_rd: false,
                    shut_wr: false,
                    reuseaddr: false,
                    broadcast: false,
                    nodelay: false,
                    keepalive: false,
                },
            );
            publish(&mut st);
        }
        s
    }

    /// Blocks until one of `mask` (or an error/hang-up) is ready.
    fn wait(&self, mask: u32) -> KResult<()> {
        crate::ipc::wait_for(&self.wq, || {
            (self.ready.load(Ordering::Acquire) & (mask | POLLERR | POLLHUP) != 0).then_some(())
        })
    }

    /// Blocks until `try_op` gives a value, retrying each time `mask` becomes ready; with
    /// `nonblock`, EAGAIN instead of blocking.
    fn blocking<T>(
        &self,
        nonblock: bool,
        mask: u32,
        mut try_op: impl FnMut(&mut Stack, u64) -> KResult<Option<T>>,
    ) -> KResult<T> {
        loop {
            if let Some(v) = with(self.id, &mut try_op)? {
                return Ok(v);
            }
            if nonblock {
                return Err(Errno::EAGAIN);
            }
            self.wait(mask)?;
        }
    }

    pub fn bind(&self, addr: SocketAddr) -> KResult<()> {
        with(self.id, |st, id| {
            let ours = is_ours(st, addr.ip());
            let s = st.inet.get(id)?;
            if s.local.port() != 0 || s.handle.is_some() {
                return Err(Errno::EINVAL);
            }
            let (kind, reuse) = (s.kind, s.reuseaddr);
            // Any 127.0.0.0/8 address is this host's on `lo`, as on Linux.
            if !ours {
                return Err(Errno::EADDRNOTAVAIL);
            }
            let port = match addr.port() {
                0 => st.inet.ephemeral(kind)?,
                p if st.inet.port_used(kind, p, reuse) => return Err(Errno::EADDRINUSE),
                p => p,
            };
            st.inet.get(id)?.local = SocketAddr::new(addr.ip(), port);
            match kind {
                Kind::Stream => {}
                Kind::Dgram => open_udp(st, id)?,
                Kind::Icmp => open_icmp(st, id)?,
                Kind::RawIcmp => open_raw(st, id)?,
            }
            Ok(())
        })
    }

    pub fn listen(&self, backlog: i32) -> KResult<()> {
        if self.kind != Kind::Stream {
            return Err(Errno::EOPNOTSUPP);
        }
        with(self.id, |st, id| {
            let s = st.inet.get(id)?;
            if s.handle.is_some() {
                return Err(Errno::EINVAL);
            }
            let backlog = (backlog.max(1) as usize).min(MAX_BACKLOG);
            if s.listen.is_some() {
                if let Some(l) = s.listen.as_mut() {
                    l.backlog = backlog;
                }
                return Ok(());
            }
            if s.local.port() == 0 {
                let p = st.inet.ephemeral(Kind::Stream)?;
                st.inet.get(id)?.local.set_port(p);
            }
            st.inet.get(id)?.listen = Some(Listen {
                backlog,
                waiting: Vec::new(),
                ready: VecDeque::new(),
                half_open: Vec::new(),
            });
            refill(st, id);
            Ok(())
        })
    }

    pub fn accept(&self, nonblock: bool) -> KResult<(Arc<InetSock>, SocketAddr)> {
        if self.kind != Kind::Stream {
            return Err(Errno::EOPNOTSUPP);
        }
        let (h, local) = self.blocking(nonblock, POLLIN, |st, id| {
            let s = st.inet.get(id)?;
            let local = s.local;
            let l = s.listen.as_mut().ok_or(Errno::EINVAL)?;
            let h = l.ready.pop_front();
            if h.is_some() {
                refill(st, id);
            }
            Ok(h.map(|h| (h, local)))
        })?;
        let conn = InetSock::new(Kind::Stream, self.v6);
        let peer = with(conn.id, |st, id| {
            let t = st.sockets.get_mut::<tcp::Socket>(h);
            t.set_nagle_enabled(true);
            let peer = t.remote_endpoint().map(sockaddr);
            let me = t.local_endpoint().map(sockaddr).unwrap_or(local);
            let s = st.inet.get(id)?;
            s.handle = Some(h);
            s.local = me;
            s.remote = peer;
            s.connected = true;
            Ok(peer.unwrap_or(unbound(s.v6)))
        });
        match peer {
            Ok(p) => Ok((conn, p)),
            Err(e) => {
                // No network any more: the connection is dropped with the socket set.
                Err(e)
            }
        }
    }

    pub fn connect(&self, addr: SocketAddr, nonblock: bool) -> KResult<()> {
        match self.kind {
            Kind::Stream => self.connect_tcp(addr, nonblock),
            _ => with(self.id, |st, id| {
                // Datagram: sets the default destination (and binds an ephemeral port).
                let s = st.inet.get(id)?;
                if s.handle.is_none() {
                    match s.kind {
                        Kind::Icmp => open_icmp(st, id)?,
                        Kind::RawIcmp => open_raw(st, id)?,
                        _ => open_udp(st, id)?,
                    }
                }
                st.inet.get(id)?.remote = Some(addr);
                Ok(())
            }),
        }
    }

    /// Sends `data` (to `dest` for datagrams); blocks for room unless `nonblock`.
    pub fn send(&self, data: &[u8], dest: Option<SocketAddr>, nonblock: bool) -> KResult<usize> {
        match self.kind {
            Kind::Stream => self.send_tcp(data, nonblock),
            Kind::Dgram => {
                if data.len() > UDP_MAX {
                    return Err(Errno::EMSGSIZE);
                }
                self.blocking(nonblock, POLLOUT, |st, id| {
                    let s = st.inet.get(id)?;
                    if s.shut_wr {
                        return Err(Errno::EPIPE);
                    }
                    let to = dest.or(s.remote).ok_or(Errno::EDESTADDRREQ)?;
                    if to.port() == 0 {
                        return Err(Errno::EINVAL);
                    }
                    // IPv6's header is 20 bytes longer, and there is no fragmentation.
                    if to.is_ipv6() && data.len() > UDP_MAX - 20 {
                        return Err(Errno::EMSGSIZE);
                    }
                    let broadcast =
                        match to.ip() {
                            IpAddr::V4(ip) => ip.is_broadcast()
                                || st.iface.ip_addrs().iter().any(
                                    |c| matches!(c, IpCidr::Ipv4(c) if c.broadcast() == Some(ip)),
                                ),
                            IpAddr::V6(_) => false,
                        };
                    if broadcast && !st.inet.get(id)?.broadcast {
                        return Err(Errno::EACCES);
                    }
                    let source = source_for(st, to.ip());
                    if source.is_none() && !broadcast {
                        return Err(Errno::ENETUNREACH);
                    }
                    if st.inet.get(id)?.handle.is_none() {
                        open_udp(st, id)?;
                    }
                    let s = st.inet.get(id)?;
                    let h = s.handle.ok_or(Errno::EBADF)?;
                    let mut meta = udp::UdpMetadata::from(endpoint(to));
                    // Unbound: the source Linux picks (smoltcp would take its first address
                    // of the family, even towards the loopback).
                    if s.local.ip().is_unspecified() && !broadcast {
                        meta.local_address = source.map(IpAddress::from);
                    }
                    let u = st.sockets.get_mut::<udp::Socket>(h);
                    match u.send_slice(data, meta) {
                        Ok(()) => Ok(Some(data.len())),
                        Err(udp::SendError::BufferFull) => Ok(None),
                        Err(udp::SendError::Unaddressable) => Err(Errno::EINVAL),
                    }
                })
            }
            Kind::Icmp => self.send_icmp(data, dest, nonblock),
            Kind::RawIcmp => self.send_raw(data, dest, nonblock),
        }
    }

    pub fn shutdown(&self, how: u32) -> KResult<()> {
        if how > 2 {
            return Err(Errno::EINVAL);
        }
        with(self.id, |st, id| {
            let s = st.inet.get(id)?;
            if self.kind == Kind::Stream && !s.connected && s.listen.is_none() {
                return Err(Errno::ENOTCONN);
            }
            if how != 1 {
                s.shut_rd = true;
            }
            if how != 0 {
                s.shut_wr = true;
                if let Some(h) = s.handle.filter(|_| self.kind == Kind::Stream) {
                    st.sockets.get_mut::<tcp::Socket>(h).close();
                }
            }
            Ok(())
        })?;
        self.wq.wake_all();
        Ok(())
    }

    pub fn local_name(&self) -> KResult<SocketAddr> {
        with(self.id, |st, id| {
            let remote = st.inet.get(id)?.remote;
            let ours = remote.and_then(|r| source_for(st, r.ip()));
            let s = st.inet.get(id)?;
            let mut a = s.local;
            match (s.kind, s.handle) {
                // A connection: the address and port its packets carry.
                (Kind::Stream, Some(h)) if s.listen.is_none() => {
                    if let Some(e) = st.sockets.get::<tcp::Socket>(h).local_endpoint() {
                        a = sockaddr(e);
                    }
                }
                // A connected datagram socket: the source address its packets get.
                (_, _) if s.remote.is_some() && a.ip().is_unspecified() => {
                    a.set_ip(ours.unwrap_or(a.ip()));
                }
                _ => {}
            }
            Ok(a)
        })
        .or_else(|e| {
            if e == Errno::ENETUNREACH {
                Ok(unbound(self.v6))
            } else {
                Err(e)
            }
        })
    }

    pub fn peer_name(&self) -> KResult<SocketAddr> {
        with(self.id, |st, id| {
            let s = st.inet.get(id)?;
            if s.kind == Kind::Stream && !s.connected {
                return Err(Errno::ENOTCONN);
            }
            s.remote.ok_or(Errno::ENOTCONN)
        })
    }

    /// SO_ERROR: the pending error, cleared.
    pub fn take_error(&self) -> i32 {
        with(self.id, |st, id| Ok(st.inet.get(id)?.error.take()))
            .ok()
            .flatten()
            .map_or(0, |e| e as i32)
    }

    pub fn is_listening(&self) -> bool {
        with(self.id, |st, id| Ok(st.inet.get(id)?.listen.is_some())).unwrap_or(false)
    }

    /// Boolean options: SO_REUSEADDR, SO_KEEPALIVE, TCP_NODELAY.
    pub fn set_flag(&self, opt: Flag, on: bool) -> KResult<()> {
        with(self.id, |st, id| {
            let s = st.inet.get(id)?;
            match opt {
                Flag::ReuseAddr => s.reuseaddr = on,
                Flag::KeepAlive => s.keepalive = on,
                Flag::NoDelay => s.nodelay = on,
                Flag::Broadcast => s.broadcast = on,
                // Linux: only before the socket has a port.
                Flag::V6Only if !s.v6 => return Err(Errno::ENOPROTOOPT),
                Flag::V6Only if s.local.port() != 0 || s.handle.is_some() => {
                    return Err(Errno::EINVAL);
                }
                Flag::V6Only => s.v6only = on,
            }
            if let Some(h) = s.handle.filter(|_| s.kind == Kind::Stream) {
                let (nd, ka) = (s.nodelay, s.keepalive);
                let t = st.sockets.get_mut::<tcp::Socket>(h);
                t.set_nagle_enabled(!nd);
                t.set_keep_alive(ka.then(|| smoltcp::time::Duration::from_secs(75)));
            }
            Ok(())
        })
        .or_else(|e| {
            if e == Errno::ENETUNREACH {
                Ok(())
            } else {
                Err(e)
            }
        })
    }

    pub fn flag(&self, opt: Flag) -> bool {
        with(self.id, |st, id| {
            let s = st.inet.get(id)?;
            Ok(match opt {
                Flag::ReuseAddr => s.reuseaddr,
                Flag::KeepAlive => s.keepalive,
                Flag::NoDelay => s.nodelay,
                Flag::Broadcast => s.broadcast,
                Flag::V6Only => s.v6only,
            })
        })
        .unwrap_or(false)
    }

    /// ICMP6_FILTER (raw ICMPv6 sockets).
    pub fn set_icmp6_filter(&self, f: [u32; 8]) -> KResult<()> {
        if !self.v6 || self.kind != Kind::RawIcmp {
            return Err(Errno::ENOPROTOOPT);
        }
        with(self.id, |st, id| {
            st.inet.get(id)?.icmp6_filter = f;
            Ok(())
        })
    }

    /// Bytes waiting to be read (FIONREAD).
    fn available(&self) -> usize {
        with(self.id, |st, id| {
            let s = st.inet.get(id)?;
            let Some(h) = s.handle else { return Ok(0) };
            Ok(match s.kind {
                Kind::Stream => st.sockets.get::<tcp::Socket>(h).recv_queue(),
                Kind::Dgram => st
                    .sockets
                    .get_mut::<udp::Socket>(h)
                    .peek()
                    .map_or(0, |(d, _)| d.len()),
                Kind::Icmp | Kind::RawIcmp => 0,
            })
        })
        .unwrap_or(0)
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Flag {
    ReuseAddr,
    KeepAlive,
    NoDelay,
    /// SO_BROADCAST: datagrams to a broadcast address are refused (EACCES) without it.
    Broadcast,
    /// IPV6_V6ONLY (AF_INET6 only).
    V6Only,
}

fn open_udp(st: &mut Stack, id: u64) -> KResult<()> {
    if st.inet.get(id)?.local.port() == 0 {
        let p = st.inet.ephemeral(Kind::Dgram)?;
        st.inet.get(id)?.local.set_port(p);
    }
    let s = st.inet.get(id)?;
    let specific = match s.local.ip() {
        IpAddr::V4(a) => !a.is_unspecified() && !a.is_broadcast(),
        IpAddr::V6(a) => !a.is_unspecified(),
    };
    let ep = IpListenEndpoint {
        addr: specific.then_some(IpAddress::from(s.local.ip())),
        port: s.local.port(),
    };
    let mut u = udp_socket();
    u.bind(ep).map_err(|_| Errno::EINVAL)?;
    let h = st.sockets.add(u);
    st.inet.get(id)?.handle = Some(h);
    Ok(())
}

/// Sockets whose file has closed, for the next holder of the stack lock to take apart.
/// `Drop` cannot take the stack lock itself: the last reference may go while the lock is
/// held (publish upgrades a socket's weak reference to wake it).
static CLOSED: IrqSpinLock<Vec<u64>> = IrqSpinLock::new(Vec::new());

/// Takes closed sockets apart: a connection finishes its FIN exchange in the background;
/// listeners, unaccepted connections and datagram sockets go at once.
pub fn reap_closed(st: &mut Stack) {
    let ids = core::mem::take(&mut *CLOSED.lock());
    for id in ids {
        let Some(s) = st.inet.socks.remove(&id) else {
            continue;
        };
        if let Some(l) = s.listen {
            for h in l.waiting.into_iter().chain(l.ready) {
                st.sockets.get_mut::<tcp::Socket>(h).abort();
                // Aborting queues a RST; the handle goes once it is sent.
                st.inet.orphans.push(h);
            }
        }
        if let Some(h) = s.handle {
            match s.kind {
                Kind::Stream => {
                    st.sockets.get_mut::<tcp::Socket>(h).close();
                    st.inet.orphans.push(h);
                }
                Kind::Dgram | Kind::Icmp | Kind::RawIcmp => {
                    st.sockets.remove(h);
                }
            }
        }
    }
}

impl Drop for InetSock {
    fn drop(&mut self) {
        if let Some(n) = net() {
            CLOSED.lock().push(self.id);
            n.kick();
        }
    }
}

impl AnonFile for InetSock {
    fn name(&self) -> &'static str {
        "socket"
    }

    fn link_name(&self, ino: u64) -> alloc::string::String {
        alloc::format!("socket:[{ino}]")
    }

    fn file_type(&self) -> u32 {
        S_IFSOCK
    }

    fn read(&self, file: &File, buf: &mut [u8]) -> KResult<usize> {
        Ok(self.recv(buf, false, file.nonblock())?.0)
    }

    fn write(&self, file: &File, buf: &[u8]) -> KResult<usize> {
        self.send(buf, None, file.nonblock())
    }

    fn poll(&self, _file: &File, events: u32) -> u32 {
        if self.id == 0 {
            return (POLLOUT | POLLHUP) & (events | POLLHUP);
        }
        self.ready.load(Ordering::Acquire) & (events | POLLHUP | POLLERR)
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.wq)
    }

    fn ioctl(&self, _file: &File, cmd: u32, arg: u64) -> KResult<u64> {
        if super::ifreq::is_ifreq(cmd) {
            let root = crate::proc::current_process().is_some_and(|p| p.creds.lock().euid == 0);
            return super::ifreq::ioctl(cmd, arg, root);
        }
        if cmd != FIONREAD {
            return Err(Errno::ENOTTY);
        }
        Ok(self.available() as u64)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
