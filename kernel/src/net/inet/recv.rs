//! Receiving: stream bytes, datagrams (with the family filter of [`super::hears`]), ICMP
//! echo replies and raw ICMP/ICMPv6 packets.

use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use smoltcp::socket::{icmp, raw, tcp, udp};

use super::{InetSock, Kind, hears, ping, sockaddr};
use crate::errno::{Errno, KResult};
use crate::fs::consts::*;

impl InetSock {
    /// Receives into `buf`: (bytes copied, the datagram's full length, the sender).
    pub fn recv(
        &self,
        buf: &mut [u8],
        peek: bool,
        nonblock: bool,
    ) -> KResult<(usize, usize, Option<SocketAddr>)> {
        self.blocking(nonblock, POLLIN, |st, id| {
            let s = st.inet.get(id)?;
            if s.shut_rd {
                return Ok(Some((0, 0, None)));
            }
            let kind = s.kind;
            let remote = s.remote;
            let (v6, v6only) = (s.v6, s.v6only);
            let hears = |a: IpAddr| hears(v6, v6only, a);
            let Some(h) = s.handle else {
                return match kind {
                    Kind::Stream => Err(Errno::ENOTCONN),
                    // An unbound datagram socket never receives: block (as Linux does).
                    _ => Ok(None),
                };
            };
            match kind {
                Kind::Stream => {
                    if !s.connected {
                        if let Some(e) = s.error.take() {
                            return Err(e);
                        }
                        return if s.connecting {
                            Ok(None)
                        } else {
                            Err(Errno::ENOTCONN)
                        };
                    }
                    let t = st.sockets.get_mut::<tcp::Socket>(h);
                    if buf.is_empty() {
                        return Ok(Some((0, 0, None)));
                    }
                    let r = if peek {
                        t.peek_slice(buf)
                    } else {
                        t.recv_slice(buf)
                    };
                    match r {
                        Ok(0) if t.may_recv() => Ok(None),
                        Ok(n) => Ok(Some((n, n, None))),
                        Err(_) => Ok(Some((0, 0, None))),
                    }
                }
                Kind::Dgram => {
                    let u = st.sockets.get_mut::<udp::Socket>(h);
                    loop {
                        let (n, full, from) = {
                            let r = if peek {
                                u.peek().map(|(d, m)| (d, m.endpoint))
                            } else {
                                u.recv().map(|(d, m)| (d, m.endpoint))
                            };
                            let Ok((d, ep)) = r else { return Ok(None) };
                            let n = d.len().min(buf.len());
                            buf[..n].copy_from_slice(&d[..n]);
                            (n, d.len(), sockaddr(ep))
                        };
                        // A connected datagram socket hears only its peer; a socket only
                        // the families it is open to.
                        if (remote.is_some_and(|r| r != from) || !hears(from.ip())) && !peek {
                            continue;
                        }
                        return Ok(Some((n, full, Some(from))));
                    }
                }
                Kind::Icmp => {
                    let i = st.sockets.get_mut::<icmp::Socket>(h);
                    let Ok((d, from)) = i.recv() else {
                        return Ok(None);
                    };
                    let n = d.len().min(buf.len());
                    buf[..n].copy_from_slice(&d[..n]);
                    Ok(Some((
                        n,
                        d.len(),
                        Some(SocketAddr::new(IpAddr::from(from), 0)),
                    )))
                }
                Kind::RawIcmp if v6 => {
                    let filter = s.icmp6_filter;
                    let r = st.sockets.get_mut::<raw::Socket>(h);
                    Ok(ping::recv_raw6(r, &filter, buf, peek))
                }
                Kind::RawIcmp => {
                    let r = st.sockets.get_mut::<raw::Socket>(h);
                    let d = if peek { r.peek() } else { r.recv() };
                    let Ok(d) = d else { return Ok(None) };
                    // smoltcp hands over only packets it parsed as IPv4: 20+ bytes.
                    let from = match d.get(12..16) {
                        Some(a) => Ipv4Addr::new(a[0], a[1], a[2], a[3]),
                        None => Ipv4Addr::UNSPECIFIED,
                    };
                    let n = d.len().min(buf.len());
                    buf[..n].copy_from_slice(&d[..n]);
                    Ok(Some((
                        n,
                        d.len(),
                        Some(SocketAddr::new(IpAddr::V4(from), 0)),
                    )))
                }
            }
        })
    }
}
