//! Addresses: which family a socket hears, which addresses are this host's, the source
//! Linux would pick, and the conversions between `core::net` and smoltcp.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use smoltcp::wire::{IpCidr, IpEndpoint};

use super::Stack;

/// Whether a socket (`v6`: AF_INET6, `v6only`: IPV6_V6ONLY) hears a peer at `a`: an
/// AF_INET socket only IPv4 ones, an AF_INET6 socket IPv6 ones and, unless V6ONLY, IPv4
/// ones (v4-mapped).
pub(super) fn hears(v6: bool, v6only: bool, a: IpAddr) -> bool {
    match a {
        IpAddr::V4(_) => !v6 || !v6only,
        IpAddr::V6(_) => v6,
    }
}

/// The unbound address of a socket of the family (`0.0.0.0:0` or `[::]:0`).
pub(super) fn unbound(v6: bool) -> SocketAddr {
    if v6 {
        SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0)
    } else {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)
    }
}

/// The host's IPv6 addresses on the network (link-local, autoconfigured), not `::1`.
pub(super) fn own_v6(st: &Stack) -> impl Iterator<Item = Ipv6Addr> + '_ {
    st.iface.ip_addrs().iter().filter_map(|c| match c {
        IpCidr::Ipv6(c) if !c.address().is_loopback() => Some(c.address()),
        _ => None,
    })
}

/// Whether `a` is one of this host's addresses (bind accepts it).
pub(super) fn is_ours(st: &Stack, a: IpAddr) -> bool {
    match a {
        IpAddr::V4(a) => {
            a.is_unspecified() || a.is_loopback() || Some(a) == lease_addr(st) || a.is_broadcast()
        }
        IpAddr::V6(a) => a.is_unspecified() || a.is_loopback() || own_v6(st).any(|o| o == a),
    }
}

/// The host's address on the network (the DHCP lease), never 127.0.0.1.
fn lease_addr(st: &Stack) -> Option<Ipv4Addr> {
    st.iface.ip_addrs().iter().find_map(|c| match c {
        IpCidr::Ipv4(c) if !c.address().is_loopback() => Some(c.address()),
        #[allow(unreachable_patterns)]
        _ => None,
    })
}

/// The source address of packets to `to`, as Linux picks it: 127.0.0.1 for 127.0.0.0/8
/// (the loopback), the lease for everything else; for IPv6 `::1` for `::1`, the link-local
/// address for link-local destinations, else the autoconfigured (global) one; None without
/// one.
pub(super) fn source_for(st: &Stack, to: IpAddr) -> Option<IpAddr> {
    match to {
        IpAddr::V4(to) if to.is_loopback() => Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        IpAddr::V4(_) => lease_addr(st).map(IpAddr::V4),
        IpAddr::V6(to) if to.is_loopback() || to.is_unspecified() => {
            Some(IpAddr::V6(Ipv6Addr::LOCALHOST))
        }
        IpAddr::V6(to) if own_v6(st).any(|a| a == to) => Some(IpAddr::V6(to)),
        IpAddr::V6(to) if to.is_unicast_link_local() || to.is_multicast() => own_v6(st)
            .find(|a| a.is_unicast_link_local())
            .map(IpAddr::V6),
        IpAddr::V6(_) => own_v6(st)
            .find(|a| !a.is_unicast_link_local())
            .map(IpAddr::V6),
    }
}

pub(super) fn endpoint(a: SocketAddr) -> IpEndpoint {
    IpEndpoint::from(a)
}

pub(super) fn sockaddr(e: IpEndpoint) -> SocketAddr {
    SocketAddr::new(IpAddr::from(e.addr), e.port)
}
