//! `/proc/net/{dev,route,tcp,udp}` in Linux's formats (what busybox `ifconfig`, `route` and
//! `netstat` parse), registered with procfs by [`super::init`].

use alloc::format;
use alloc::string::String;
use core::fmt::Write;
use core::net::Ipv4Addr;

use super::net;

/// An IPv4 address as Linux prints it in /proc/net: the network-order bytes as a
/// little-endian word.
fn hex(a: Ipv4Addr) -> String {
    format!("{:08X}", u32::from_le_bytes(a.octets()))
}

pub fn register() {
    crate::procfs::register_net_file("dev", dev);
    crate::procfs::register_net_file("route", route);
    crate::procfs::register_net_file("tcp", tcp);
    crate::procfs::register_net_file("udp", udp);
    // No AF_INET6 sockets yet: the tables exist (netstat reads them) and are empty.
    crate::procfs::register_net_file("tcp6", no_sockets);
    crate::procfs::register_net_file("udp6", no_sockets);
}

fn no_sockets() -> String {
    table_header()
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

fn table(tcp: bool) -> String {
    let mut s = table_header();
    let Some(n) = net() else { return s };
    let rows = super::inet::rows(&n.stack.lock(), tcp);
    for (i, r) in rows.iter().enumerate() {
        let _ = writeln!(
            s,
            "{i:4}: {}:{:04X} {}:{:04X} {:02X} {:08X}:{:08X} 00:00000000 00000000     0        0 0",
            hex(*r.local.ip()),
            r.local.port(),
            hex(*r.remote.ip()),
            r.remote.port(),
            r.state,
            r.tx_queue,
            r.rx_queue
        );
    }
    s
}

fn tcp() -> String {
    table(true)
}

fn udp() -> String {
    table(false)
}
