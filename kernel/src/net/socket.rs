//! The one AF_INET/AF_INET6 socket interface the system calls use, whichever stack serves
//! it: the native stack's [`super::inet::InetSock`] (smoltcp) or the rump bridge's
//! [`crate::rump::net::RumpSock`] (NetBSD's TCP/IP). `syscall/inet.rs` handles user memory,
//! `sockaddr_in`/`sockaddr_in6` and option levels once and calls these methods; each stack
//! translates to its own world behind them.
//!
//! Addresses are `SocketAddr`s. On an AF_INET6 socket a v4-mapped address
//! (`::ffff:a.b.c.d`) arrives as a `SocketAddr::V4` (the syscall layer unmaps it, and maps
//! IPv4 addresses back on the way out), so a stack sees IPv4 peers of a dual-stack socket
//! as IPv4.

use alloc::sync::Arc;
use core::net::SocketAddr;

use super::inet::{Flag, Kind};
use crate::errno::KResult;
use crate::fs::anon::AnonFile;

pub trait InetSocket: AnonFile {
    fn kind(&self) -> Kind;
    /// Whether this is an AF_INET6 socket.
    fn v6(&self) -> bool;
    fn bind(&self, addr: SocketAddr) -> KResult<()>;
    fn listen(&self, backlog: i32) -> KResult<()>;
    /// The next connection (blocking unless `nonblock`) and its peer.
    fn accept(&self, nonblock: bool) -> KResult<(Arc<dyn InetSocket>, SocketAddr)>;
    /// Connects (EINPROGRESS when `nonblock` and the handshake is under way).
    fn connect(&self, addr: SocketAddr, nonblock: bool) -> KResult<()>;
    fn send(&self, data: &[u8], dest: Option<SocketAddr>, nonblock: bool) -> KResult<usize>;
    /// Receives into `buf`: (bytes copied, the datagram's full length, the sender).
    fn recv(
        &self,
        buf: &mut [u8],
        peek: bool,
        nonblock: bool,
    ) -> KResult<(usize, usize, Option<SocketAddr>)>;
    /// `how`: SHUT_RD 0, SHUT_WR 1, SHUT_RDWR 2.
    fn shutdown(&self, how: u32) -> KResult<()>;
    fn local_name(&self) -> KResult<SocketAddr>;
    fn peer_name(&self) -> KResult<SocketAddr>;
    /// SO_ERROR: the pending error as a Linux errno (0: none), cleared.
    fn take_error(&self) -> i32;
    fn is_listening(&self) -> bool;
    fn set_flag(&self, opt: Flag, on: bool) -> KResult<()>;
    fn flag(&self, opt: Flag) -> bool;
    /// SO_SNDBUF / SO_RCVBUF as getsockopt reports them.
    fn buffer_sizes(&self) -> (i32, i32) {
        (64 * 1024, 128 * 1024)
    }
    /// SO_SNDBUF / SO_RCVBUF asked by setsockopt (a stack with fixed buffers ignores it).
    fn set_buffer_size(&self, _send: bool, _bytes: i32) -> KResult<()> {
        Ok(())
    }
    /// ICMP6_FILTER (Linux's sense: a set bit blocks that ICMPv6 type), raw ICMPv6 only.
    fn set_icmp6_filter(&self, _filter: [u32; 8]) -> KResult<()> {
        Err(crate::errno::Errno::ENOPROTOOPT)
    }
    /// SO_LINGER asked by setsockopt.
    fn set_linger(&self, _on: bool, _secs: i32) -> KResult<()> {
        Ok(())
    }
}

impl InetSocket for super::inet::InetSock {
    fn kind(&self) -> Kind {
        self.kind
    }
    fn v6(&self) -> bool {
        self.v6
    }
    fn bind(&self, addr: SocketAddr) -> KResult<()> {
        Self::bind(self, addr)
    }
    fn listen(&self, backlog: i32) -> KResult<()> {
        Self::listen(self, backlog)
    }
    fn accept(&self, nonblock: bool) -> KResult<(Arc<dyn InetSocket>, SocketAddr)> {
        Self::accept(self, nonblock).map(|(s, a)| (s as Arc<dyn InetSocket>, a))
    }
    fn connect(&self, addr: SocketAddr, nonblock: bool) -> KResult<()> {
        Self::connect(self, addr, nonblock)
    }
    fn send(&self, data: &[u8], dest: Option<SocketAddr>, nonblock: bool) -> KResult<usize> {
        Self::send(self, data, dest, nonblock)
    }
    fn recv(
        &self,
        buf: &mut [u8],
        peek: bool,
        nonblock: bool,
    ) -> KResult<(usize, usize, Option<SocketAddr>)> {
        Self::recv(self, buf, peek, nonblock)
    }
    fn shutdown(&self, how: u32) -> KResult<()> {
        Self::shutdown(self, how)
    }
    fn local_name(&self) -> KResult<SocketAddr> {
        Self::local_name(self)
    }
    fn peer_name(&self) -> KResult<SocketAddr> {
        Self::peer_name(self)
    }
    fn take_error(&self) -> i32 {
        Self::take_error(self)
    }
    fn is_listening(&self) -> bool {
        Self::is_listening(self)
    }
    fn set_flag(&self, opt: Flag, on: bool) -> KResult<()> {
        Self::set_flag(self, opt, on)
    }
    fn flag(&self, opt: Flag) -> bool {
        Self::flag(self, opt)
    }
    fn set_icmp6_filter(&self, filter: [u32; 8]) -> KResult<()> {
        Self::set_icmp6_filter(self, filter)
    }
}
