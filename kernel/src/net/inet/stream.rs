//! TCP: the smoltcp socket a connection gets, connect (blocking, or non-blocking with
//! EINPROGRESS and the outcome in SO_ERROR) and stream sends.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use smoltcp::socket::tcp;
use smoltcp::wire::{IpAddress, IpListenEndpoint};

use super::{InetSock, Kind, TCP_RX, TCP_TX, endpoint, with};
use crate::errno::{Errno, KResult};
use crate::fs::consts::*;

pub(super) fn tcp_socket() -> tcp::Socket<'static> {
    tcp::Socket::new(
        tcp::SocketBuffer::new(alloc::vec![0; TCP_RX]),
        tcp::SocketBuffer::new(alloc::vec![0; TCP_TX]),
    )
}

impl InetSock {
    pub(super) fn connect_tcp(&self, addr: SocketAddr, nonblock: bool) -> KResult<()> {
        // Linux connects to 0.0.0.0 as to 127.0.0.1 (and to :: as to ::1); the loopback
        // and the host's own addresses stay inside (the stack's loopback).
        let addr = match addr.ip() {
            IpAddr::V4(a) if a.is_unspecified() => {
                SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
            }
            IpAddr::V6(a) if a.is_unspecified() => {
                SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
            }
            _ => addr,
        };
        let refused = addr.port() == 0;
        let r = with(self.id, |st, id| {
            let s = st.inet.get(id)?;
            if s.listen.is_some() {
                return Err(Errno::EISCONN);
            }
            if refused && !s.connecting && !s.connected {
                return Err(Errno::ECONNREFUSED);
            }
            if s.connecting {
                return Err(Errno::EALREADY);
            }
            if s.connected && s.connect_unreported {
                s.connect_unreported = false;
                return Ok(true);
            }
            if s.connected {
                return Err(Errno::EISCONN);
            }
            if let Some(e) = s.error.take() {
                return Err(e);
            }
            let Some(source) = super::source_for(st, addr.ip()) else {
                return Err(Errno::ENETUNREACH);
            };
            let s = st.inet.get(id)?;
            let (nodelay, keepalive, mut local) = (s.nodelay, s.keepalive, s.local);
            if local.port() == 0 {
                local.set_port(st.inet.ephemeral(Kind::Stream)?);
            }
            let mut t = tcp_socket();
            t.set_nagle_enabled(!nodelay);
            t.set_timeout(Some(super::ready::CONNECT_TIMEOUT));
            if keepalive {
                t.set_keep_alive(Some(smoltcp::time::Duration::from_secs(75)));
            }
            // Unbound: the source Linux would pick (smoltcp would take the lease even
            // towards 127.0.0.1).
            let ip = if local.ip().is_unspecified() {
                source
            } else {
                local.ip()
            };
            // A socket bound to one family's address cannot reach the other's.
            if ip.is_ipv4() != addr.is_ipv4() {
                return Err(Errno::ENETUNREACH);
            }
            let ep = IpListenEndpoint {
                addr: Some(IpAddress::from(ip)),
                port: local.port(),
            };
            t.connect(st.iface.context(), endpoint(addr), ep)
                .map_err(|_| Errno::EADDRNOTAVAIL)?;
            let h = st.sockets.add(t);
            let s = st.inet.get(id)?;
            s.handle = Some(h);
            s.local = local;
            s.remote = Some(addr);
            s.connecting = true;
            s.connect_since = crate::time::now_ns();
            s.connect_unreported = nonblock;
            Ok(false)
        })
        .map_err(|e| {
            // Without a native stack at all (no NIC) there is no loopback either: 127/8
            // is refused, as by a host whose `lo` has no listener.
            if (refused || addr.ip().is_loopback()) && e == Errno::ENETUNREACH {
                Errno::ECONNREFUSED
            } else {
                e
            }
        })?;
        if r {
            // The success of an earlier non-blocking connect, reported now.
            return Ok(());
        }
        if nonblock {
            return Err(Errno::EINPROGRESS);
        }
        self.wait(POLLOUT)?;
        with(self.id, |st, id| {
            let s = st.inet.get(id)?;
            if let Some(e) = s.error.take() {
                return Err(e);
            }
            if s.connected {
                Ok(())
            } else {
                Err(Errno::ECONNREFUSED)
            }
        })
    }

    pub(super) fn send_tcp(&self, data: &[u8], nonblock: bool) -> KResult<usize> {
        let mut sent = 0;
        loop {
            let r = with(self.id, |st, id| {
                let s = st.inet.get(id)?;
                if s.shut_wr {
                    return Err(Errno::EPIPE);
                }
                if let Some(e) = s.error.take() {
                    return Err(e);
                }
                let Some(h) = s.handle.filter(|_| s.connected) else {
                    // Linux: a stream that is not connected (nor connecting) is a broken pipe.
                    return Err(if s.connecting {
                        Errno::ENOTCONN
                    } else {
                        Errno::EPIPE
                    });
                };
                let t = st.sockets.get_mut::<tcp::Socket>(h);
                if !t.may_send() {
                    return Err(Errno::EPIPE);
                }
                Ok(t.send_slice(&data[sent..]).unwrap_or(0))
            });
            match r {
                Ok(n) => sent += n,
                // Linux (tcp_sendmsg) returns what went, even when a signal interrupted
                // the wait: restarting the call would send that part twice.
                Err(_) if sent > 0 => return Ok(sent),
                Err(e) => return Err(e),
            }
            if sent == data.len() {
                return Ok(sent);
            }
            if nonblock {
                return if sent > 0 {
                    Ok(sent)
                } else {
                    Err(Errno::EAGAIN)
                };
            }
            if let Err(e) = self.wait(POLLOUT) {
                return if sent > 0 { Ok(sent) } else { Err(e) };
            }
        }
    }
}
