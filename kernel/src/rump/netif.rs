//! The rump stack's interface as user space sees it (`eth0`): asked from the rump kernel
//! each time — its address and netmask by ioctl, MAC, link and counters from the
//! `NET_RT_IFLIST` sysctl, the default gateway from `NET_RT_DUMP`.

use core::net::Ipv4Addr;
use core::sync::atomic::Ordering;

use super::net::{IFNAME, UP};
use super::netsys as ns;

/// The interface as user space sees it (`eth0`): address and netmask (SIOCGIFADDR,
/// SIOCGIFNETMASK), MAC, link and counters (`NET_RT_IFLIST`), the default route's gateway
/// (`NET_RT_DUMP`) — asked from the rump kernel each time.
pub fn interface() -> Option<crate::net::IfInfo> {
    if !UP.load(Ordering::Acquire) {
        return None;
    }
    let mut i = crate::net::IfInfo {
        mtu: 1500,
        txqlen: 256,
        ..Default::default()
    };
    if let Ok(fd) = ns::socket(ns::AF_INET, 2, 0) {
        if let (Ok(a), Ok(m)) = (
            ns::if_sockaddr(fd, IFNAME, ns::SIOCGIFADDR),
            ns::if_sockaddr(fd, IFNAME, ns::SIOCGIFNETMASK),
        ) && !a.is_unspecified()
        {
            i.addr = Some(smoltcp::wire::Ipv4Cidr::new(
                a,
                u32::from(m).count_ones() as u8,
            ));
        }
        let _ = super::sys::close(fd);
    }
    if let Ok(b) = ns::route_sysctl(ns::NET_RT_IFLIST) {
        parse_iflist(&b, IFNAME, &mut i);
    }
    if let Ok(b) = ns::route_sysctl(ns::NET_RT_DUMP) {
        i.gateway = default_gateway(&b);
    }
    Some(i)
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    b.get(o..o + 2)
        .map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}

fn i32_at(b: &[u8], o: usize) -> i32 {
    b.get(o..o + 4)
        .map_or(0, |s| i32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    b.get(o..o + 8).map_or(0, |s| {
        let mut w = [0u8; 8];
        w.copy_from_slice(s);
        u64::from_le_bytes(w)
    })
}

/// The routing messages in a sysctl dump: (type, bytes of the message), for messages of
/// the version we know; a length that runs past the buffer ends the walk.
fn messages(b: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    let mut off = 0usize;
    core::iter::from_fn(move || {
        loop {
            let len = usize::from(u16_at(b, off));
            if len < 4 || off + len > b.len() {
                return None;
            }
            let m = &b[off..off + len];
            off += len;
            if m[2] == ns::RTM_VERSION {
                return Some((m[3], m));
            }
        }
    })
}

/// The sockaddrs after a routing message's header, in `RTA_*` bit order: (bit, bytes).
fn sockaddrs(m: &[u8], hdr: usize, addrs: i32) -> impl Iterator<Item = (i32, &[u8])> {
    let mut off = hdr;
    (0..8).filter_map(move |bit| {
        if addrs & (1 << bit) == 0 {
            return None;
        }
        let len = usize::from(*m.get(off)?);
        let sa = m.get(off..off + len.max(1))?;
        off += if len == 0 { 8 } else { len.div_ceil(8) * 8 };
        Some((1 << bit, sa))
    })
}

/// NetBSD's `lo0` (127.0.0.1 and ::1, configured by the netinet components), as `lo`:
/// its counters from `NET_RT_IFLIST`, asked from the rump kernel each time. What goes out
/// on a loopback comes back in, so its input counters are its traffic.
pub fn loopback() -> Option<adros_netloop::LoopStats> {
    if !UP.load(Ordering::Acquire) {
        return None;
    }
    let b = ns::route_sysctl(ns::NET_RT_IFLIST).ok()?;
    let mut i = crate::net::IfInfo::default();
    parse_iflist(&b, "lo0", &mut i).then_some(adros_netloop::LoopStats {
        packets: i.rx_packets,
        bytes: i.rx_bytes,
        dropped: i.rx_dropped,
        martians: 0,
    })
}

/// Fills MAC (an Ethernet interface's), link and counters of `ifname` from an
/// `NET_RT_IFLIST` dump; false if the dump has no such interface.
fn parse_iflist(b: &[u8], ifname: &str, i: &mut crate::net::IfInfo) -> bool {
    for (ty, m) in messages(b) {
        if ty != ns::RTM_IFINFO || m.len() < ns::IF_MSGHDR_LEN {
            continue;
        }
        // sockaddr_dl: len, family, index(2), type, nlen, alen, slen, name then address.
        let Some((_, dl)) = sockaddrs(m, ns::IF_MSGHDR_LEN, i32_at(m, 4))
            .find(|(_, sa)| sa.len() >= 8 && sa[1] == ns::AF_LINK)
        else {
            continue;
        };
        let (nlen, alen) = (usize::from(dl[5]), usize::from(dl[6]));
        if dl.get(8..8 + nlen) != Some(ifname.as_bytes()) {
            continue;
        }
        if alen == 6
            && let Some(mac) = dl.get(8 + nlen..8 + nlen + 6)
        {
            i.mac.copy_from_slice(mac);
        }
        // if_data at 16: link_state at +4, then 64-bit mtu, metric, baudrate, ipackets,
        // ierrors, opackets, oerrors, collisions, ibytes, obytes, imcasts, omcasts,
        // iqdrops.
        let d = 16;
        i.link_up = i32_at(m, d + 4) == 2 || i32_at(m, 8) & 0x40 != 0;
        i.mtu = u64_at(m, d + 8) as u32;
        i.rx_packets = u64_at(m, d + 32);
        i.rx_errors = u64_at(m, d + 40);
        i.tx_packets = u64_at(m, d + 48);
        i.tx_errors = u64_at(m, d + 56);
        i.rx_bytes = u64_at(m, d + 72);
        i.tx_bytes = u64_at(m, d + 80);
        i.rx_dropped = u64_at(m, d + 104);
        return true;
    }
    false
}

/// The gateway of the IPv4 default route in an `NET_RT_DUMP` dump.
pub(super) fn default_gateway(b: &[u8]) -> Option<Ipv4Addr> {
    for (ty, m) in messages(b) {
        if ty != ns::RTM_GET || m.len() < ns::RT_MSGHDR_LEN {
            continue;
        }
        if i32_at(m, 8) & ns::RTF_GATEWAY == 0 {
            continue;
        }
        let mut dst_default = false;
        let mut gw = None;
        for (bit, sa) in sockaddrs(m, ns::RT_MSGHDR_LEN, i32_at(m, 12)) {
            let v4 = (sa.len() >= 8 && sa[1] == ns::AF_INET as u8)
                .then(|| Ipv4Addr::new(sa[4], sa[5], sa[6], sa[7]));
            match bit {
                ns::RTA_DST => dst_default = v4.is_some_and(|a| a.is_unspecified()),
                ns::RTA_GATEWAY => gw = v4,
                _ => {}
            }
        }
        if dst_default && gw.is_some() {
            return gw;
        }
    }
    None
}
