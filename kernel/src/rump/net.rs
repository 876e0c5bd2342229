//! NetBSD's TCP/IP in the rump kernel as AdrOS's network stack (`net.stack=rump`).
//!
//! * **The interface.** Before `rump_init`, [`assign`] hands the e1000 (82540EM) to the rump
//!   kernel, whose PCI bus attaches NetBSD's wm(4) driver (with its MII PHY) to it as `wm0`,
//!   on the same PCI/DMA/interrupt hypercalls as the USB controllers. After `rump_init`,
//!   [`start`] brings `wm0` up and runs NetBSD's DHCP client (`net_config`, over bpf) in a
//!   thread of its own, so the boot does not wait for the lease; `lo0` is 127.0.0.1 as
//!   NetBSD's `netinet` component configures it.
//! * **IPv6.** NetBSD configures `wm0`'s link-local address itself when it comes up; with
//!   `net.inet6.ip6.accept_rtadv=1` (set by [`start`]) it also forms an address from a
//!   router advertisement's prefix (QEMU's slirp: `fec0::/64`). NetBSD's kernel does not
//!   solicit one (its `rtsold` daemon would), so [`start`] sends router solicitations
//!   from a raw ICMPv6 socket until the address appears.
//! * **Sockets.** A user's AF_INET or AF_INET6 socket is a [`RumpSock`]: a descriptor in the rump
//!   kernel's process 1 (where every bridge descriptor lives), always non-blocking there. A
//!   call that would block waits on the socket's AdrOS wait queue — interruptible by
//!   signals, honouring `O_NONBLOCK`/`MSG_DONTWAIT` — and retries when the socket's state
//!   changes. Constants, `sockaddr` and errno are translated in [`super::netsys`].
//! * **Readiness without polling.** One kqueue in the rump kernel holds an edge-triggered
//!   (`EV_CLEAR`) read and write filter for every socket; the `rump-netev` thread sleeps in
//!   `kevent` and, for each socket NetBSD reports, asks `poll` for its state, caches it and
//!   wakes the socket's wait queue (and notes EV_EOF, Linux's POLLRDHUP). `poll`,
//!   `select` and `epoll` read the cache (they run
//!   with the wait queue's lock held, where the rump kernel must not be entered); the
//!   calling thread refreshes it after each of its own operations.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::any::Any;
use core::ffi::c_int;
use core::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};

use super::netif::default_gateway;
pub use super::netif::{interface, loopback};
use super::netsys::{self as ns, Kevent};
use crate::errno::{Errno, KResult};
use crate::fs::File;
use crate::fs::anon::AnonFile;
use crate::fs::consts::{POLLERR, POLLHUP, POLLIN, POLLOUT, S_IFSOCK};
use crate::ipc::epoll::EPOLLRDHUP as POLLRDHUP;

use crate::net::inet::{Flag, Kind};
use crate::net::socket::InetSocket;
use crate::sched::wait::WaitQueue;

/// The interface NetBSD's wm(4) attaches as.
pub(super) const IFNAME: &str = "wm0";
/// Linux `FIONREAD`.
const LINUX_FIONREAD: u32 = 0x541b;
/// Linux's poll bits for "readable normal data" and "writable normal data".
const POLLRDNORM: u32 = 0x40;
const POLLWRNORM: u32 = 0x100;

/// Whether `net.stack=rump` was asked for (the default is the native stack: see
/// `crate::net::init`).
pub fn wanted() -> bool {
    crate::boot::cmdline().param("net.stack") == Some("rump")
}

/// The e1000 functions given to the rump kernel, for `/proc/drivers`.
static GIVEN: spin::Mutex<Vec<String>> = spin::Mutex::new(Vec::new());
/// Where DHCP stands: "waiting", "10.0.2.15/24", or the error.
static LEASE: spin::Mutex<String> = spin::Mutex::new(String::new());
pub(super) static UP: AtomicBool = AtomicBool::new(false);
/// The default route's gateway once DHCP has set it ("none" before).
static GATEWAY: spin::Mutex<String> = spin::Mutex::new(String::new());

/// Hands every e1000 to the rump kernel when `net.stack=rump` (called before `rump_init`).
pub fn assign() {
    if !wanted() {
        return;
    }
    for d in crate::pci::find_all(adros_e1000::VENDOR_ID, adros_e1000::DEVICE_ID) {
        match super::pci::give(d, "wm (NetBSD wm, TCP/IP)") {
            Ok(()) => GIVEN.lock().push(adros_pci::slot_name(d.addr)),
            Err(o) => log::warn!(
                "net: {}: owned by the {} stack ({}); not given to rump",
                adros_pci::slot_name(d.addr),
                o.stack,
                o.driver
            ),
        }
    }
}

/// Whether the rump kernel has an interface to serve (`crate::net::init` then leaves the
/// native stack down).
pub fn assigned() -> bool {
    !GIVEN.lock().is_empty()
}

/// After `rump_init`: brings `wm0` up, leases an address and starts the event thread.
pub fn start() {
    if !assigned() {
        return;
    }
    *LEASE.lock() = String::from("waiting");
    crate::sched::thread::spawn("rump-net", || {
        super::net6::accept_adverts();
        if let Err(e) = ns::netconfig_ifup(IFNAME) {
            log::error!(
                "net: rump: cannot bring {IFNAME} up: {e:?} (did wm(4) attach? see the boot log)"
            );
            *LEASE.lock() = alloc::format!("{IFNAME} down: {e:?}");
            return;
        }
        moderate_interrupts();
        match ns::kqueue() {
            Ok(kq) => {
                KQ.store(kq, Ordering::Release);
                crate::sched::thread::spawn("rump-netev", move || events(kq));
            }
            Err(e) => log::error!("net: rump: kqueue: {e:?}: sockets will not wake waiters"),
        }
        UP.store(true, Ordering::Release);
        let t0 = crate::time::now_ns();
        let r = ns::netconfig_dhcp(IFNAME);
        let ms = (crate::time::now_ns() - t0) / 1_000_000;
        let lease = match r {
            Ok(()) => {
                let a = if_addr(IFNAME);
                let ready_ms = wait_usable(&a);
                log::info!(
                    "net: rump: {IFNAME}: DHCP lease {a} in {ms} ms, usable {ready_ms} ms later (NetBSD TCP/IP)"
                );
                a
            }
            Err(e) => {
                log::warn!("net: rump: {IFNAME}: DHCP failed after {ms} ms: {e:?}");
                alloc::format!("dhcp failed: {e:?}")
            }
        };
        *GATEWAY.lock() = ns::route_sysctl(ns::NET_RT_DUMP)
            .ok()
            .and_then(|b| default_gateway(&b))
            .map_or(String::from("none"), |g| alloc::format!("{g}"));
        *LEASE.lock() = lease;
        let mac = interface().map_or([0; 6], |i| i.mac);
        super::net6::solicit(IFNAME, mac);
    });
}

/// The IPv6 addresses (`/proc/net/if_inet6`).
pub fn inet6_addrs() -> Vec<crate::net::Inet6Addr> {
    if !UP.load(Ordering::Acquire) {
        return Vec::new();
    }
    super::net6::inet6_addrs()
}

/// e1000 interrupt-moderation registers (82540EM manual, 13.4): the interrupt throttling
/// interval (256 ns units), and the receive/transmit delay and absolute delay timers
/// (1.024 µs units).
const WM_ITR: u64 = 0xc4;
const WM_RDTR: u64 = 0x2820;
const WM_RADV: u64 = 0x282c;
const WM_TIDV: u64 = 0x3820;
const WM_TADV: u64 = 0x382c;
/// Sets the interrupt moderation of the e1000s NetBSD's wm(4) drives, after `wm_init`, when
/// `rump.wm_itr=N` (0–65535) is on the command line; without it NetBSD's setting stays.
///
/// wm(4) of this NetBSD (2016) throttles to 2,604 interrupts/s: ITR 1500 (384 µs) and the
/// delay timers at ITR/4 (the same 384 µs). QEMU models that: after raising an interrupt it
/// holds back the next for the whole window (and raises anything below 500, 128 µs, to 500,
/// which is what the native driver, writing 0, gets). On a quiet host a 1-byte TCP exchange
/// then waits for the window about twice (the transmit-done interrupt opens it, the reply
/// arrives inside it). On a loaded host the window batches work and a shorter one measured
/// slower (docs/net.md), so the default is left alone. This writes the registers with
/// NetBSD's own formula (timers = ITR/4). Only `wm_init` writes them (our `ifup`, or its
/// transmit watchdog resetting the chip); `/proc/drivers` reads ITR back (`itr=`).
fn moderate_interrupts() {
    let Some(itr) = crate::boot::cmdline()
        .param("rump.wm_itr")
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|v| *v <= 0xffff)
    else {
        return;
    };
    for d in rump_e1000s() {
        match crate::pci::map_bar_regs(d, 0) {
            Ok(r) => {
                for (reg, v) in [
                    (WM_ITR, itr),
                    (WM_RDTR, itr / 4),
                    (WM_RADV, itr / 4),
                    (WM_TIDV, itr / 4),
                    (WM_TADV, itr / 4),
                ] {
                    r.write32(reg, v);
                }
                log::info!(
                    "net: rump: {}: interrupt throttling {itr} x 256 ns (NetBSD's wm: 1500)",
                    adros_pci::slot_name(d.addr)
                );
            }
            Err(e) => log::warn!(
                "net: rump: {}: BAR 0: {e:?}; interrupt moderation left as NetBSD set it",
                adros_pci::slot_name(d.addr)
            ),
        }
    }
}

/// The e1000s the rump kernel owns.
fn rump_e1000s() -> impl Iterator<Item = &'static adros_pci::PciDevice> {
    crate::pci::find_all(adros_e1000::VENDOR_ID, adros_e1000::DEVICE_ID)
        .filter(|d| crate::pci::owner(d.addr).is_some_and(|o| o.stack == "rump"))
}

/// The throttling interval the first rump e1000 has now (ITR, 256 ns units).
fn current_itr() -> Option<u32> {
    let d = rump_e1000s().next()?;
    crate::pci::map_bar_regs(d, 0)
        .ok()
        .map(|r| r.read32(WM_ITR))
}

/// Waits (at most 10 s) until the address `a` ("ADDR/PREFIX") can be bound: NetBSD probes a
/// new IPv4 address for duplicates first (RFC 5227) and sends nothing from it meanwhile, so
/// the lease is published only once sockets can use it. Returns the milliseconds waited.
fn wait_usable(a: &str) -> u64 {
    let t0 = crate::time::now_ns();
    let Some(ip) = a.split('/').next().and_then(|s| s.parse::<Ipv4Addr>().ok()) else {
        return 0;
    };
    let Ok(fd) = ns::socket(ns::AF_INET, 2, 0) else {
        return 0;
    };
    while crate::time::now_ns() - t0 < 10_000_000_000 {
        match ns::bind_in(fd, SocketAddrV4::new(ip, 0)) {
            Err(Errno::EADDRNOTAVAIL) => crate::sched::sleep_ms(20),
            _ => break,
        }
    }
    let _ = super::sys::close(fd);
    (crate::time::now_ns() - t0) / 1_000_000
}

/// `ADDR/PREFIX` of `ifname` as the rump kernel has it (SIOCGIFADDR, SIOCGIFNETMASK).
fn if_addr(ifname: &str) -> String {
    let Ok(fd) = ns::socket(ns::AF_INET, 2, 0) else {
        return String::from("unknown");
    };
    let addr = ns::if_sockaddr(fd, ifname, ns::SIOCGIFADDR);
    let mask = ns::if_sockaddr(fd, ifname, ns::SIOCGIFNETMASK);
    let _ = super::sys::close(fd);
    match (addr, mask) {
        (Ok(a), Ok(m)) => alloc::format!("{a}/{}", u32::from(m).count_ones()),
        (Ok(a), Err(_)) => alloc::format!("{a}"),
        (Err(e), _) => alloc::format!("none ({e:?})"),
    }
}

/// `/proc/drivers` lines for the rump stack.
pub fn report() -> Vec<String> {
    let given = GIVEN.lock().clone();
    given
        .iter()
        .map(|slot| {
            alloc::format!(
                "net {IFNAME} wm (NetBSD wm) {slot} stack=rump up={} addr={} gateway={} sockets={} itr={} ipv6={}",
                UP.load(Ordering::Acquire),
                LEASE.lock().clone(),
                GATEWAY.lock().clone(),
                SOCKS.lock().len(),
                current_itr().map_or(String::from("?"), |v| alloc::format!("{v}")),
                super::net6::STATE.lock().clone()
            )
        })
        .collect()
}

/// The kqueue every socket's filters are in (-1 before `start`).
static KQ: AtomicI32 = AtomicI32::new(-1);
/// Every open rump socket by id (the kevent `udata`).
static SOCKS: spin::Mutex<BTreeMap<u64, Weak<RumpSock>>> = spin::Mutex::new(BTreeMap::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The `rump-netev` thread: NetBSD's socket events → cached readiness and wake-ups.
fn events(kq: c_int) {
    let mut evs = [Kevent::default(); 32];
    loop {
        let n = match ns::kevent(kq, &[], &mut evs) {
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(e) => {
                log::error!("net: rump: kevent: {e:?}; socket wake-ups stop");
                return;
            }
        };
        let mut seen: Vec<u64> = evs[..n].iter().map(|e| e.udata as u64).collect();
        seen.sort_unstable();
        seen.dedup();
        for id in seen {
            let s = SOCKS.lock().get(&id).and_then(Weak::upgrade);
            if let Some(s) = s {
                let eof = evs[..n].iter().any(|e| {
                    e.udata as u64 == id && e.filter == ns::EVFILT_READ && e.flags & ns::EV_EOF != 0
                });
                if eof {
                    s.eof.store(true, Ordering::Release);
                }
                s.refresh();
            }
        }
    }
}

/// An AF_INET or AF_INET6 socket in the rump kernel.
pub struct RumpSock {
    id: u64,
    fd: c_int,
    kind: Kind,
    /// AF_INET6.
    v6: bool,
    wq: WaitQueue,
    /// Linux poll bits as last seen ([`RumpSock::refresh`]).
    ready: AtomicU32,
    /// Bumped by every refresh: a blocked call retries when it moves.
    seq: AtomicU64,
    /// Held across a refresh's poll and store, so that a refresh that read the rump
    /// kernel earlier never stores after one that read it later: a calling thread's
    /// refresh (no data yet) overwriting `rump-netev`'s (the echo just arrived) lost the
    /// wake-up for good — the read filter is edge-triggered, and NetBSD says nothing more
    /// while the datagram waits (s12's `udp_epoll_in_on_echo` timed out that way).
    refreshing: crate::sync::Mutex<()>,
    /// A non-blocking connect is under way (its result is reported by the next connect or
    /// SO_ERROR).
    connecting: AtomicBool,
    /// NetBSD reported end-of-file on the read side (EV_EOF on the read filter): the
    /// peer's FIN, which Linux reports as POLLRDHUP.
    eof: AtomicBool,
}

impl RumpSock {
    /// A new socket of `kind`; fails with the rump kernel's answer (e.g. EPROTONOSUPPORT
    /// for ICMP datagram sockets, which NetBSD does not have).
    pub fn new(kind: Kind, v6: bool) -> KResult<Arc<RumpSock>> {
        super::ready().map_err(|_| Errno::ENETDOWN)?;
        let (domain, proto) = match (v6, kind) {
            (true, Kind::Icmp | Kind::RawIcmp) => (ns::AF_INET6, ns::IPPROTO_ICMPV6),
            (true, _) => (ns::AF_INET6, kind.protocol()),
            (false, _) => (ns::AF_INET, kind.protocol()),
        };
        let fd = ns::socket(domain, kind.sock_type() | ns::SOCK_NONBLOCK, proto)?;
        if v6 {
            // Linux's sockets are dual-stack by default (net.ipv6.bindv6only=0); NetBSD's
            // are V6ONLY by default (net.inet6.ip6.v6only=1).
            if let Err(e) = ns::setsockopt_int(fd, ns::IPPROTO_IPV6, ns::IPV6_V6ONLY, 0) {
                let _ = super::sys::close(fd);
                return Err(e);
            }
        }
        Ok(Self::wrap(fd, kind, v6))
    }

    fn wrap(fd: c_int, kind: Kind, v6: bool) -> Arc<RumpSock> {
        let s = Arc::new(RumpSock {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            fd,
            kind,
            v6,
            wq: WaitQueue::new(),
            ready: AtomicU32::new(0),
            seq: AtomicU64::new(0),
            refreshing: crate::sync::Mutex::new(()),
            connecting: AtomicBool::new(false),
            eof: AtomicBool::new(false),
        });
        SOCKS.lock().insert(s.id, Arc::downgrade(&s));
        s.watch(
            &[ns::EVFILT_READ, ns::EVFILT_WRITE],
            ns::EV_ADD | ns::EV_CLEAR,
        );
        s.refresh();
        s
    }

    /// Adds (or deletes) the socket's filters in the event kqueue.
    fn watch(&self, filters: &[u32], flags: u32) {
        let kq = KQ.load(Ordering::Acquire);
        if kq < 0 {
            return;
        }
        let evs: Vec<Kevent> = filters
            .iter()
            .map(|&filter| Kevent {
                ident: self.fd as usize,
                filter,
                flags,
                udata: self.id as isize,
                ..Kevent::default()
            })
            .collect();
        if let Err(e) = ns::kevent(kq, &evs, &mut []) {
            log::warn!("net: rump: socket {}: kevent {flags:#x}: {e:?}", self.id);
        }
    }

    /// Re-reads the socket's readiness from the rump kernel and wakes its waiters.
    fn refresh(&self) {
        let _order = self.refreshing.lock();
        let r = ns::poll_now(self.fd, ns::POLLIN | ns::POLLOUT).unwrap_or(ns::POLLERR);
        let mut v = 0;
        if r & ns::POLLIN != 0 {
            v |= POLLIN | POLLRDNORM;
        }
        if r & ns::POLLOUT != 0 {
            v |= POLLOUT | POLLWRNORM;
        }
        if r & (ns::POLLERR | ns::POLLNVAL) != 0 {
            v |= POLLERR;
        }
        if r & ns::POLLHUP != 0 {
            v |= POLLHUP;
        }
        // NetBSD's poll has no POLLRDHUP: the read filter's EV_EOF (see `events`) is the
        // peer's FIN.
        if self.kind == Kind::Stream && self.eof.load(Ordering::Acquire) {
            v |= POLLRDHUP;
        }
        self.ready.store(v, Ordering::Release);
        self.seq.fetch_add(1, Ordering::AcqRel);
        self.wq.wake_all();
    }

    /// Runs `op` until it does not fail with EAGAIN, sleeping between tries until the
    /// socket's state changes; with `nonblock`, EAGAIN is the answer. Refreshes the cached
    /// readiness afterwards (the operation may have changed it).
    fn blocking<T>(&self, nonblock: bool, mut op: impl FnMut() -> KResult<T>) -> KResult<T> {
        loop {
            let seen = self.seq.load(Ordering::Acquire);
            let r = op();
            self.refresh();
            match r {
                Err(Errno::EAGAIN) if !nonblock => {}
                r => return r,
            }
            crate::ipc::wait_for(&self.wq, || {
                (self.seq.load(Ordering::Acquire) != seen.wrapping_add(1)).then_some(())
            })?;
        }
    }

    /// The pending error (SO_ERROR) as a Linux errno.
    fn so_error(&self) -> Option<Errno> {
        match ns::getsockopt_int(self.fd, ns::SOL_SOCKET, ns::SO_ERROR) {
            Ok(0) => None,
            Ok(e) => Some(super::sys::linux_errno(e)),
            Err(e) => Some(e),
        }
    }

    fn opt(flag: Flag) -> (c_int, c_int) {
        match flag {
            Flag::ReuseAddr => (ns::SOL_SOCKET, ns::SO_REUSEADDR),
            Flag::KeepAlive => (ns::SOL_SOCKET, ns::SO_KEEPALIVE),
            Flag::NoDelay => (ns::IPPROTO_TCP, ns::TCP_NODELAY),
            Flag::Broadcast => (ns::SOL_SOCKET, ns::SO_BROADCAST),
            Flag::V6Only => (ns::IPPROTO_IPV6, ns::IPV6_V6ONLY),
        }
    }
}

impl Drop for RumpSock {
    fn drop(&mut self) {
        SOCKS.lock().remove(&self.id);
        // Closing the descriptor also removes its kqueue filters.
        let _ = super::sys::close(self.fd);
    }
}

impl InetSocket for RumpSock {
    fn kind(&self) -> Kind {
        self.kind
    }

    fn v6(&self) -> bool {
        self.v6
    }

    fn bind(&self, addr: SocketAddr) -> KResult<()> {
        ns::bind_sa(self.fd, addr, self.v6)
    }

    fn listen(&self, backlog: i32) -> KResult<()> {
        let r = ns::listen(self.fd, backlog.clamp(0, 4096));
        if r.is_ok() {
            // NetBSD picks a socket's read filter when it is attached: the one attached at
            // creation watches received data, which a listening socket never has; the
            // listen filter (pending connections) needs a fresh attach.
            self.watch(&[ns::EVFILT_READ], ns::EV_DELETE);
            self.watch(&[ns::EVFILT_READ], ns::EV_ADD | ns::EV_CLEAR);
        }
        self.refresh();
        r
    }

    fn accept(&self, nonblock: bool) -> KResult<(Arc<dyn InetSocket>, SocketAddr)> {
        let (fd, peer) = self.blocking(nonblock, || ns::accept_nb(self.fd))?;
        let s = Self::wrap(fd, self.kind, self.v6);
        let peer = match peer {
            Some(p) => p,
            None => ns::peername(fd)
                .unwrap_or(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))),
        };
        Ok((s as Arc<dyn InetSocket>, peer))
    }

    fn connect(&self, addr: SocketAddr, nonblock: bool) -> KResult<()> {
        // NetBSD says EOPNOTSUPP for a listening socket; Linux EISCONN.
        if self.kind == Kind::Stream && self.is_listening() {
            return Err(Errno::EISCONN);
        }
        let seen = self.seq.load(Ordering::Acquire);
        let r = ns::connect_sa(self.fd, addr, self.v6);
        self.refresh();
        match r {
            Err(Errno::EINPROGRESS) if self.kind == Kind::Stream => {}
            Err(Errno::EISCONN) if self.connecting.swap(false, Ordering::AcqRel) => {
                return Ok(());
            }
            Err(Errno::EALREADY) if !nonblock => {}
            r => return r,
        }
        self.connecting.store(true, Ordering::Release);
        if nonblock {
            return Err(Errno::EINPROGRESS);
        }
        // Connected when writable, failed when an error is pending.
        let mut last = seen;
        loop {
            if self.ready.load(Ordering::Acquire) & (POLLOUT | POLLERR | POLLHUP) != 0 {
                break;
            }
            crate::ipc::wait_for(&self.wq, || {
                (self.seq.load(Ordering::Acquire) != last).then_some(())
            })?;
            last = self.seq.load(Ordering::Acquire);
        }
        self.connecting.store(false, Ordering::Release);
        match self.so_error() {
            Some(e) => Err(e),
            None => ns::peername(self.fd).map(drop),
        }
    }

    fn send(&self, data: &[u8], dest: Option<SocketAddr>, nonblock: bool) -> KResult<usize> {
        // A blocking send on a stream returns when all of `data` is in the socket, as on
        // Linux (the rump descriptor is non-blocking and takes what fits each time); an
        // error or a signal after part of it went returns that part.
        let mut sent = 0;
        loop {
            let r = self.blocking(nonblock, || {
                ns::sendto(self.fd, &data[sent..], ns::MSG_NOSIGNAL, dest, self.v6)
            });
            match r {
                Ok(n) if self.kind == Kind::Stream && !nonblock && n > 0 => {
                    sent += n;
                    if sent == data.len() {
                        return Ok(sent);
                    }
                }
                Ok(n) => return Ok(sent + n),
                Err(_) if sent > 0 => return Ok(sent),
                // NetBSD: ENOTCONN for a stream that is not connected; Linux: a broken pipe.
                Err(Errno::ENOTCONN) if self.kind == Kind::Stream => return Err(Errno::EPIPE),
                Err(e) => return Err(e),
            }
        }
    }

    fn recv(
        &self,
        buf: &mut [u8],
        peek: bool,
        nonblock: bool,
    ) -> KResult<(usize, usize, Option<SocketAddr>)> {
        let flags = if peek { ns::MSG_PEEK } else { 0 };
        if self.kind == Kind::Stream {
            let (n, _) = self.blocking(nonblock, || ns::recvfrom(self.fd, buf, flags))?;
            return Ok((n, n, None));
        }
        // A datagram's full length (MSG_TRUNC) needs room for all of it.
        let mut big = alloc::vec![0u8; 65536];
        let (n, from) = self.blocking(nonblock, || ns::recvfrom(self.fd, &mut big, flags))?;
        let k = n.min(buf.len());
        buf[..k].copy_from_slice(&big[..k]);
        Ok((k, n, from))
    }

    fn shutdown(&self, how: u32) -> KResult<()> {
        if how > 2 {
            return Err(Errno::EINVAL);
        }
        // NetBSD shuts an unconnected stream down quietly; Linux says ENOTCONN (after
        // marking it, as here).
        let unconnected = self.kind == Kind::Stream
            && !self.is_listening()
            && ns::peername(self.fd) == Err(Errno::ENOTCONN);
        let r = ns::shutdown(self.fd, how as c_int);
        self.refresh();
        if unconnected {
            return Err(Errno::ENOTCONN);
        }
        r
    }

    fn local_name(&self) -> KResult<SocketAddr> {
        ns::sockname(self.fd)
    }

    fn peer_name(&self) -> KResult<SocketAddr> {
        ns::peername(self.fd)
    }

    fn take_error(&self) -> i32 {
        self.so_error().map_or(0, |e| e.as_i32())
    }

    fn is_listening(&self) -> bool {
        ns::getsockopt_int(self.fd, ns::SOL_SOCKET, ns::SO_ACCEPTCONN).is_ok_and(|v| v != 0)
    }

    fn set_flag(&self, opt: Flag, on: bool) -> KResult<()> {
        let (level, name) = Self::opt(opt);
        ns::setsockopt_int(self.fd, level, name, on as c_int)
    }

    fn flag(&self, opt: Flag) -> bool {
        let (level, name) = Self::opt(opt);
        ns::getsockopt_int(self.fd, level, name).is_ok_and(|v| v != 0)
    }

    fn buffer_sizes(&self) -> (i32, i32) {
        (
            ns::getsockopt_int(self.fd, ns::SOL_SOCKET, ns::SO_SNDBUF).unwrap_or(0),
            ns::getsockopt_int(self.fd, ns::SOL_SOCKET, ns::SO_RCVBUF).unwrap_or(0),
        )
    }

    fn set_buffer_size(&self, send: bool, bytes: i32) -> KResult<()> {
        let opt = if send { ns::SO_SNDBUF } else { ns::SO_RCVBUF };
        // Linux clamps a size it cannot give; NetBSD says ENOBUFS past its `sb_max`: halve
        // until NetBSD takes it.
        let mut b = bytes.clamp(1024, 4 << 20);
        loop {
            match ns::setsockopt_int(self.fd, ns::SOL_SOCKET, opt, b) {
                Err(Errno::ENOBUFS) if b > 1024 => b = (b / 2).max(1024),
                r => return r,
            }
        }
    }

    fn set_icmp6_filter(&self, filter: [u32; 8]) -> KResult<()> {
        if !self.v6 || self.kind != Kind::RawIcmp {
            return Err(Errno::ENOPROTOOPT);
        }
        // NetBSD's bits mean the opposite of Linux's: set = pass.
        ns::set_icmp6_filter(self.fd, filter.map(|w| !w))
    }

    fn set_linger(&self, on: bool, secs: i32) -> KResult<()> {
        ns::set_linger(self.fd, on, secs.max(0))
    }
}

impl AnonFile for RumpSock {
    fn name(&self) -> &'static str {
        "socket"
    }

    fn link_name(&self, ino: u64) -> String {
        alloc::format!("socket:[{ino}]")
    }

    fn file_type(&self) -> u32 {
        S_IFSOCK
    }

    fn read(&self, file: &File, buf: &mut [u8]) -> KResult<usize> {
        Ok(InetSocket::recv(self, buf, false, file.nonblock())?.0)
    }

    fn write(&self, file: &File, buf: &[u8]) -> KResult<usize> {
        InetSocket::send(self, buf, None, file.nonblock())
    }

    fn poll(&self, _file: &File, events: u32) -> u32 {
        self.ready.load(Ordering::Acquire) & (events | POLLHUP | POLLERR)
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.wq)
    }

    fn ioctl(&self, _file: &File, cmd: u32, arg: u64) -> KResult<u64> {
        if crate::net::ifreq::is_ifreq(cmd) {
            let root = crate::proc::current_process().is_some_and(|p| p.creds.lock().euid == 0);
            return crate::net::ifreq::ioctl(cmd, arg, root);
        }
        if cmd != LINUX_FIONREAD {
            return Err(Errno::ENOTTY);
        }
        let _ = arg;
        Ok(ns::ioctl_int(self.fd, ns::FIONREAD)?.max(0) as u64)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
