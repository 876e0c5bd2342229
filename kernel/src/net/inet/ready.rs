//! Readiness: after every smoltcp poll, [`publish`] moves finished handshakes to accept
//! queues, settles connects, drops finished orphans and recomputes each socket's poll bits,
//! waking only the sockets whose bits changed. Also the rows of `/proc/net/tcp` and `udp`.

use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use core::sync::atomic::Ordering;

use smoltcp::socket::{icmp, raw, tcp, udp};
use smoltcp::wire::{IpAddress, IpListenEndpoint};

use super::stream::tcp_socket;
use super::{Kind, Stack, sockaddr};
use crate::errno::Errno;
use crate::fs::consts::*;
use crate::ipc::epoll::EPOLLRDHUP;

/// Tops a listening socket up to `backlog` listeners (fewer while accepted connections
/// wait).
pub(super) fn refill(st: &mut Stack, id: u64) {
    let Ok(s) = st.inet.get(id) else { return };
    let local = s.local;
    let (nodelay, keepalive) = (s.nodelay, s.keepalive);
    let Some(l) = s.listen.as_ref() else { return };
    let want = l
        .backlog
        .saturating_sub(l.ready.len())
        .max(usize::from(l.ready.len() < l.backlog));
    let mut new = Vec::new();
    for _ in l.waiting.len()..want {
        let mut t = tcp_socket();
        t.set_nagle_enabled(!nodelay);
        // A SYN-RECEIVED socket gives up as Linux's does after its SYN-ACK retries; once
        // established the timeout is lifted (below, when it moves to the accept queue).
        t.set_timeout(Some(HALF_OPEN_TIMEOUT));
        if keepalive {
            t.set_keep_alive(Some(smoltcp::time::Duration::from_secs(75)));
        }
        let ep = IpListenEndpoint {
            addr: (!local.ip().is_unspecified()).then_some(IpAddress::from(local.ip())),
            port: local.port(),
        };
        if t.listen(ep).is_err() {
            break;
        }
        new.push(st.sockets.add(t));
    }
    if let Ok(s) = st.inet.get(id)
        && let Some(l) = s.listen.as_mut()
    {
        l.waiting.extend(new);
    }
}

/// How long a connection may stay half-open (SYN received, our SYN-ACK unanswered) while
/// it keeps a new SYN from finding a listener.
const HALF_OPEN_GRACE_NS: u64 = 1_000_000_000;

/// How long a half-open connection lives at most: Linux's budget of 5 SYN-ACK
/// retransmissions (1 + 2 + 4 + 8 + 16 + 32 s). Without it a SYN from a peer that never
/// answers ARP keeps its socket asking for that neighbour forever — and smoltcp sends one
/// neighbour request per second for the whole interface, so such sockets, asking in
/// lockstep, could starve every other socket's ARP (a connect to the gateway after a
/// spoofed SYN flood then never left).
const HALF_OPEN_TIMEOUT: smoltcp::time::Duration = smoltcp::time::Duration::from_secs(63);

/// How long a blocking or non-blocking TCP connect waits for its handshake before it fails
/// with ETIMEDOUT: Linux's budget of 6 SYN retransmissions (`tcp_syn_retries`), 127 s.
pub(super) const CONNECT_TIMEOUT: smoltcp::time::Duration = smoltcp::time::Duration::from_secs(127);

/// Half-open connections dropped to make room for new ones (SYN floods), for `/proc/drivers`.
pub static HALF_OPEN_DROPPED: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// SYN-flood defence. smoltcp has no SYN queue: each of a listener's `backlog` sockets
/// takes one SYN and stays in SYN-RECEIVED, retransmitting its SYN-ACK, until the ACK comes
/// — which a spoofed SYN never sends, so `backlog` of them would leave the port deaf for
/// good. When no socket of `l` is listening any more, the oldest half-open one that has
/// waited over [`HALF_OPEN_GRACE_NS`] is forgotten (as Linux drops from a full SYN queue;
/// no RST to a peer that may be forged), and [`refill`] puts a listener in its place.
fn evict_half_open(l: &mut super::Listen, sockets: &mut smoltcp::iface::SocketSet<'static>) {
    let now = crate::time::now_ns();
    let state =
        |sockets: &smoltcp::iface::SocketSet<'static>, h| sockets.get::<tcp::Socket>(h).state();
    l.half_open
        .retain(|&(h, _)| l.waiting.contains(&h) && state(sockets, h) == tcp::State::SynReceived);
    for &h in &l.waiting {
        if state(sockets, h) == tcp::State::SynReceived && !l.half_open.iter().any(|&(x, _)| x == h)
        {
            l.half_open.push((h, now));
        }
    }
    if l.waiting
        .iter()
        .any(|&h| state(sockets, h) == tcp::State::Listen)
    {
        return;
    }
    let Some(i) = (0..l.half_open.len()).min_by_key(|&i| l.half_open[i].1) else {
        return;
    };
    let (h, since) = l.half_open[i];
    if now.saturating_sub(since) < HALF_OPEN_GRACE_NS {
        return;
    }
    l.half_open.swap_remove(i);
    l.waiting.retain(|&x| x != h);
    sockets.remove(h);
    HALF_OPEN_DROPPED.fetch_add(1, Ordering::Relaxed);
}

/// After a poll: finished handshakes to accept queues, connect outcomes, finished
/// orphans out of the socket set, and every socket's readiness, waking those that changed.
pub fn publish(st: &mut Stack) {
    let Stack { inet, sockets, .. } = st;
    inet.orphans.retain(|&h| {
        let done = matches!(
            sockets.get::<tcp::Socket>(h).state(),
            tcp::State::Closed | tcp::State::TimeWait
        );
        if done {
            sockets.remove(h);
        }
        !done
    });
    let mut refills = Vec::new();
    for (&id, s) in inet.socks.iter_mut() {
        let mut bits = 0;
        let (v6, v6only) = (s.v6, s.v6only);
        match (s.kind, s.handle) {
            (Kind::Stream, _) if s.listen.is_some() => {
                let Some(l) = s.listen.as_mut() else { continue };
                let mut still = Vec::new();
                for h in l.waiting.drain(..) {
                    let t = sockets.get_mut::<tcp::Socket>(h);
                    match t.state() {
                        tcp::State::Listen | tcp::State::SynReceived => still.push(h),
                        tcp::State::Closed | tcp::State::TimeWait => {
                            sockets.remove(h);
                        }
                        // smoltcp listens on both families at once: a peer of a family
                        // the socket does not hear (IPv6 on AF_INET, IPv4 on V6ONLY) is
                        // dropped, as if nobody listened.
                        _ if t
                            .remote_endpoint()
                            .is_some_and(|e| !super::hears(v6, v6only, IpAddr::from(e.addr))) =>
                        {
                            t.abort();
                            sockets.remove(h);
                        }
                        _ => {
                            t.set_timeout(None);
                            l.ready.push_back(h);
                        }
                    }
                }
                l.waiting = still;
                evict_half_open(l, sockets);
                if l.waiting.len() + l.ready.len() < l.backlog || l.waiting.is_empty() {
                    refills.push(id);
                }
                if !l.ready.is_empty() {
                    bits |= POLLIN | POLLRDNORM;
                }
            }
            (Kind::Stream, None) => bits |= POLLOUT | POLLHUP,
            (Kind::Stream, Some(h)) => {
                let t = sockets.get::<tcp::Socket>(h);
                let state = t.state();
                let mut established = false;
                if s.connecting {
                    match state {
                        tcp::State::SynSent | tcp::State::SynReceived => {}
                        tcp::State::Closed | tcp::State::TimeWait => {
                            s.connecting = false;
                            // smoltcp closes for a RST and for the connect timeout alike;
                            // the time taken tells them apart.
                            let waited = crate::time::now_ns().saturating_sub(s.connect_since);
                            s.error = Some(if waited >= CONNECT_TIMEOUT.total_micros() * 1000 {
                                Errno::ETIMEDOUT
                            } else {
                                Errno::ECONNREFUSED
                            });
                        }
                        _ => {
                            s.connecting = false;
                            s.connected = true;
                            established = true;
                        }
                    }
                }
                if s.connecting {
                    // Nothing ready while the handshake runs.
                } else if !s.connected {
                    bits |= POLLOUT | POLLERR | POLLHUP;
                } else {
                    if t.can_recv() || !t.may_recv() || s.shut_rd {
                        bits |= POLLIN | POLLRDNORM;
                    }
                    if !t.may_recv() {
                        bits |= EPOLLRDHUP;
                    }
                    if t.can_send() || !t.may_send() {
                        bits |= POLLOUT | POLLWRNORM;
                    }
                    if matches!(state, tcp::State::Closed | tcp::State::TimeWait)
                        || (!t.may_recv() && !t.may_send())
                    {
                        bits |= POLLHUP;
                    }
                }
                if s.error.is_some() {
                    bits |= POLLERR;
                }
                if established {
                    // The connect timeout is over (Linux has none on an open connection).
                    sockets.get_mut::<tcp::Socket>(h).set_timeout(None);
                }
            }
            (Kind::Dgram | Kind::Icmp | Kind::RawIcmp, None) => bits |= POLLOUT | POLLWRNORM,
            (Kind::Dgram, Some(h)) => {
                let u = sockets.get::<udp::Socket>(h);
                if u.can_recv() || s.shut_rd {
                    bits |= POLLIN | POLLRDNORM;
                }
                if u.can_send() {
                    bits |= POLLOUT | POLLWRNORM;
                }
            }
            (Kind::RawIcmp, Some(h)) => {
                let r = sockets.get::<raw::Socket>(h);
                if r.can_recv() {
                    bits |= POLLIN | POLLRDNORM;
                }
                if r.can_send() {
                    bits |= POLLOUT | POLLWRNORM;
                }
            }
            (Kind::Icmp, Some(h)) => {
                let i = sockets.get::<icmp::Socket>(h);
                if i.can_recv() {
                    bits |= POLLIN | POLLRDNORM;
                }
                if i.can_send() {
                    bits |= POLLOUT | POLLWRNORM;
                }
            }
        }
        if let Some(c) = s.core.upgrade()
            && c.ready.swap(bits, Ordering::AcqRel) != bits
        {
            c.wq.wake_all();
        }
    }
    for id in refills {
        refill(st, id);
    }
}

/// One `/proc/net/tcp` or `udp` row.
pub struct Row {
    /// An AF_INET6 socket's (`/proc/net/tcp6`, `udp6`).
    pub v6: bool,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// Linux's TCP state number (UDP: 7, "close").
    pub state: u8,
    pub tx_queue: usize,
    pub rx_queue: usize,
}

/// The sockets for `/proc/net/tcp` (`tcp`) or `/proc/net/udp`.
pub fn rows(st: &Stack, tcp: bool) -> Vec<Row> {
    let none = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
    let mut v = Vec::new();
    for s in st.inet.socks.values() {
        match (tcp, s.kind) {
            (true, Kind::Stream) => {
                if s.listen.is_some() {
                    v.push(Row {
                        v6: s.v6,
                        local: s.local,
                        remote: none,
                        state: 0x0a,
                        tx_queue: 0,
                        rx_queue: 0,
                    });
                }
                if let Some(h) = s.handle {
                    let t = st.sockets.get::<tcp::Socket>(h);
                    let state = match t.state() {
                        tcp::State::Established => 1,
                        tcp::State::SynSent => 2,
                        tcp::State::SynReceived => 3,
                        tcp::State::FinWait1 => 4,
                        tcp::State::FinWait2 => 5,
                        tcp::State::TimeWait => 6,
                        tcp::State::Closed => 7,
                        tcp::State::CloseWait => 8,
                        tcp::State::LastAck => 9,
                        tcp::State::Listen => 0x0a,
                        tcp::State::Closing => 0x0b,
                    };
                    v.push(Row {
                        v6: s.v6,
                        local: t.local_endpoint().map_or(s.local, sockaddr),
                        remote: t.remote_endpoint().map_or(none, sockaddr),
                        state,
                        tx_queue: t.send_queue(),
                        rx_queue: t.recv_queue(),
                    });
                }
            }
            (false, Kind::Dgram) if s.handle.is_some() => {
                let mut local = s.local;
                if let Some(r) = s.remote
                    && local.ip().is_unspecified()
                    && let Some(ours) = super::source_for(st, r.ip())
                {
                    local.set_ip(ours);
                }
                v.push(Row {
                    v6: s.v6,
                    local,
                    remote: s.remote.unwrap_or(none),
                    state: 7,
                    tx_queue: 0,
                    rx_queue: 0,
                });
            }
            _ => {}
        }
    }
    v
}
