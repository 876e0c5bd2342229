//! `/proc/net/{dev,route,tcp,udp,tcp6,udp6,if_inet6}` in Linux's formats (what busybox
//! `ifconfig`, `route` and `netstat` parse), registered with procfs by [`super::init`].

use alloc::format;
use alloc::string::String;
use core::fmt::Write;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::net;

/// An IPv4 address as Linux prints it in /proc/net: the network-order bytes as a
/// little-endian word.
fn hex(a: Ipv4Addr) -> String {
    format!("{:08X}", u32::from_le_bytes(a.octets()))
}

/// An IPv6 address as Linux prints it in /proc/net/tcp6: four 32-bit words, each the
/// network-order bytes as a little-endian word.
fn hex6(a: Ipv6Addr) -> String {
    let o = a.octets();
    o.chunks(4)
        .map(|c| format!("{:08X}", u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
        .collect()
}

/// `a` as a /proc/net/tcp6 address: IPv4 ones v4-mapped (the unspecified one all zeros).
fn hex_any6(a: IpAddr) -> String {
    match a {
        IpAddr::V6(a) => hex6(a),
        IpAddr::V4(a) if a.is_unspecified() => hex6(Ipv6Addr::UNSPECIFIED),
        IpAddr::V4(a) => hex6(a.to_ipv6_mapped()),
    }
}

pub fn register() {
    crate::procfs::register_net_file("dev", dev);
    crate::procfs::register_net_file("route", route);
    crate::procfs::register_net_file("tcp", tcp);
    crate::procfs::register_net_file("udp", udp);
    crate::procfs::register_net_file("tcp6", tcp6);
    crate::procfs::register_net_file("udp6", udp6);
    crate::procfs::register_net_file("if_inet6", if_inet6);
}

/// One line per IPv6 address: address, interface index, prefix length, scope (Linux's
/// `IFA_*` scope bits: 0x10 host, 0x20 link, 0x40 site, 0 global), flags (0x80
/// permanent), interface name — what busybox `ifconfig` prints as `inet6 addr:`.
fn if_inet6() -> String {
    let mut s = String::new();
    for a in super::inet6_addrs() {
        let scope = if a.addr.is_loopback() {
            0x10
        } else if a.addr.is_unicast_link_local() {
            0x20
        } else if a.addr.segments()[0] & 0xffc0 == 0xfec0 {
            0x40
        } else {
            0
        };
        let (idx, name) = if a.addr.is_loopback() {
            (1, "lo")
        } else {
            (2, "eth0")
        };
        let _ = writeln!(
            s,
            "{} {idx:02x} {:02x} {scope:02x} 80 {name:>8}",
            a.addr
                .octets()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
            a.prefix
        );
    }
    s
}

fn table_header() -> String {
    String::from(
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n",
    )
}

fn dev() -> String {
    let mut s = String::from(
        "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n",
    );
    if let Some(lo) = super::loopback() {
        // What goes out on lo comes back in: both directions count every frame.
        let _ = writeln!(
            s,
            "    lo: {} {} 0 {} 0 0 0 0 {} {} 0 {} 0 0 0 0",
            lo.bytes, lo.packets, lo.martians, lo.bytes, lo.packets, lo.dropped
        );
    }
    if let Some(i) = super::interface() {
        let _ = writeln!(
            s,
            "  eth0: {} {} {} {} {} 0 0 0 {} {} {} {} 0 0 0 0",
            i.rx_bytes,
            i.rx_packets,
            i.rx_errors,
            i.rx_dropped,
            i.rx_fifo,
            i.tx_bytes,
            i.tx_packets,
            i.tx_errors,
            i.tx_dropped
        );
    }
    s
}

fn route() -> String {
    let mut s = String::from(
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n",
    );
    let Some(l) = super::interface() else {
        return s;
    };
    if let Some(gw) = l.gateway {
        let _ = writeln!(
            s,
            "eth0\t00000000\t{}\t0003\t0\t0\t0\t00000000\t0\t0\t0",
            hex(gw)
        );
    }
    if let Some(a) = l.addr {
        let net = a.network();
        let _ = writeln!(
            s,
            "eth0\t{}\t00000000\t0001\t0\t0\t0\t{}\t0\t0\t0",
            hex(net.address()),
            hex(net.netmask())
        );
    }
    s
}

fn table(tcp: bool, v6: bool) -> String {
    let mut s = table_header();
    let Some(n) = net() else { return s };
    let rows = super::inet::rows(&n.stack.lock(), tcp);
    let addr = |a: SocketAddr| match (v6, a.ip()) {
        (false, IpAddr::V4(ip)) => hex(ip),
        (_, ip) => hex_any6(ip),
    };
    for (i, r) in rows.iter().filter(|r| r.v6 == v6).enumerate() {
        let _ = writeln!(
            s,
            "{i:4}: {}:{:04X} {}:{:04X} {:02X} {:08X}:{:08X} 00:00000000 00000000     0        0 0",
            addr(r.local),
            r.local.port(),
            addr(r.remote),
            r.remote.port(),
            r.state,
            r.tx_queue,
            r.rx_queue
        );
    }
    s
}

fn tcp() -> String {
    table(true, false)
}

fn udp() -> String {
    table(false, false)
}

fn tcp6() -> String {
    table(true, true)
}

fn udp6() -> String {
    table(false, true)
}
