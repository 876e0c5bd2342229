//! IPv6 on the rump stack: NetBSD's own autoconfiguration, switched on and nudged.
//!
//! NetBSD gives `wm0` its link-local address when the interface comes up and, with the
//! sysctl `net.inet6.ip6.accept_rtadv=1` ([`accept_adverts`], set before `ifup`), forms an
//! address from each prefix a router advertises and takes the router as its default —
//! all in the kernel. What NetBSD leaves to a daemon (`rtsold`) is asking: QEMU's slirp
//! advertises on its own only every few minutes, so [`solicit`] sends router
//! solicitations (built by [`adros_netloop::ndp`]) from a raw ICMPv6 socket, hop limit 255,
//! out of `wm0`, until an autoconfigured address is there (NetBSD fills in the checksum).

use alloc::string::String;
use alloc::vec::Vec;
use core::net::{Ipv6Addr, SocketAddr, SocketAddrV6};

use super::netsys as ns;
use crate::net::Inet6Addr;

/// What autoconfiguration came to, for `/proc/drivers`.
pub static STATE: spin::Mutex<String> = spin::Mutex::new(String::new());

/// `net.inet6.ip6.accept_rtadv=1`.
pub fn accept_adverts() {
    // CTL_NET, PF_INET6, IPPROTO_IPV6, IPV6CTL_ACCEPT_RTADV.
    if let Err(e) = ns::sysctl_set_int(&[4, ns::AF_INET6, ns::IPPROTO_IPV6, 12], 1) {
        log::warn!("net: rump: net.inet6.ip6.accept_rtadv=1: {e:?}: no IPv6 autoconfiguration");
    }
}

/// Every IPv6 address the rump kernel has, as (interface, address).
fn addrs() -> Vec<(String, Ipv6Addr)> {
    let Ok(fd) = ns::socket(ns::AF_INET6, 2, 0) else {
        return Vec::new();
    };
    let v = ns::if_inet6_addrs(fd).unwrap_or_default();
    let _ = super::sys::close(fd);
    v
}

/// The IPv6 addresses for `/proc/net/if_inet6` (`::1` on `lo0`, `wm0`'s). Prefix lengths
/// are not asked from NetBSD: `::1` is /128, the others /64 (a link-local prefix, and the
/// only length SLAAC forms addresses from on Ethernet).
pub fn inet6_addrs() -> Vec<Inet6Addr> {
    addrs()
        .into_iter()
        .filter(|(name, a)| name == super::net::IFNAME || a.is_loopback())
        .map(|(_, addr)| Inet6Addr {
            addr,
            prefix: if addr.is_loopback() { 128 } else { 64 },
        })
        .collect()
}

fn autoconfigured(ifname: &str) -> Option<Ipv6Addr> {
    addrs()
        .into_iter()
        .find(|(n, a)| n == ifname && !a.is_loopback() && !a.is_unicast_link_local())
        .map(|(_, a)| a)
}

fn link_local(ifname: &str) -> Option<Ipv6Addr> {
    addrs()
        .into_iter()
        .find(|(n, a)| n == ifname && a.is_unicast_link_local())
        .map(|(_, a)| a)
}

/// Solicits router advertisements on `ifname` (three times, 4 s apart, RFC 4861 §6.3.7)
/// until NetBSD has an autoconfigured address, then waits for it to pass duplicate
/// address detection (sockets cannot use a tentative address). Blocks up to ~20 s.
pub fn solicit(ifname: &str, mac: [u8; 6]) {
    let t0 = crate::time::now_ns();
    let ms = || (crate::time::now_ns() - t0) / 1_000_000;
    *STATE.lock() = String::from("soliciting");
    let Ok(fd) = ns::socket(ns::AF_INET6, 3, ns::IPPROTO_ICMPV6) else {
        *STATE.lock() = String::from("no raw ICMPv6 socket");
        return;
    };
    let idx = ns::if_index(fd, ifname).unwrap_or(0);
    let _ = ns::setsockopt_int(fd, ns::IPPROTO_IPV6, ns::IPV6_MULTICAST_HOPS, 255);
    let _ = ns::setsockopt_int(fd, ns::IPPROTO_IPV6, ns::IPV6_MULTICAST_IF, idx as i32);
    let mut found = None;
    'outer: for _ in 0..3 {
        let src = link_local(ifname).unwrap_or(Ipv6Addr::UNSPECIFIED);
        let rs = adros_netloop::ndp::solicitation(src, mac);
        let to = SocketAddr::V6(SocketAddrV6::new(
            adros_netloop::ndp::ALL_ROUTERS,
            0,
            0,
            idx,
        ));
        if let Err(e) = ns::sendto(fd, &rs[40..], 0, Some(to), true) {
            log::warn!("net: rump: router solicitation on {ifname}: {e:?}");
        }
        for _ in 0..40 {
            crate::sched::sleep_ms(100);
            if let Some(a) = autoconfigured(ifname) {
                found = Some(a);
                break 'outer;
            }
        }
    }
    let _ = super::sys::close(fd);
    let Some(a) = found else {
        log::warn!(
            "net: rump: {ifname}: no IPv6 router advertisement in {} ms",
            ms()
        );
        *STATE.lock() = String::from("no router advertisement");
        return;
    };
    // Usable once bind(2) takes it (NetBSD refuses a tentative address: EADDRNOTAVAIL).
    if let Ok(fd) = ns::socket(ns::AF_INET6, 2, 0) {
        while ms() < 20_000 {
            match ns::bind_sa(fd, SocketAddr::V6(SocketAddrV6::new(a, 0, 0, 0)), true) {
                Err(crate::errno::Errno::EADDRNOTAVAIL) => crate::sched::sleep_ms(50),
                _ => break,
            }
        }
        let _ = super::sys::close(fd);
    }
    log::info!(
        "net: rump: {ifname}: IPv6 address {a}/64 autoconfigured in {} ms",
        ms()
    );
    *STATE.lock() = alloc::format!("{a}/64");
}
