//! The interface ioctls busybox's `ifconfig` issues on a socket (SIOCGIFCONF and the
//! SIOCGIF* queries, SIOCSIFFLAGS accepted for root as long as it keeps the interface up).
//! `eth0` when there is a network, and `lo` when its stack has one AdrOS reports (the
//! native stack's loopback).

use core::net::Ipv4Addr;

use crate::arch::uaccess::{copy_from_user, copy_to_user, read_val, write_val};
use crate::errno::{Errno, KResult};

const SIOCGIFCONF: u32 = 0x8912;
const SIOCGIFFLAGS: u32 = 0x8913;
const SIOCSIFFLAGS: u32 = 0x8914;
const SIOCGIFADDR: u32 = 0x8915;
const SIOCGIFDSTADDR: u32 = 0x8917;
const SIOCGIFBRDADDR: u32 = 0x8919;
const SIOCGIFNETMASK: u32 = 0x891b;
const SIOCGIFMETRIC: u32 = 0x891d;
const SIOCGIFMTU: u32 = 0x8921;
const SIOCGIFHWADDR: u32 = 0x8927;
const SIOCGIFINDEX: u32 = 0x8933;
const SIOCGIFTXQLEN: u32 = 0x8942;

const IFF_UP: u16 = 0x1;
const IFF_BROADCAST: u16 = 0x2;
const IFF_LOOPBACK: u16 = 0x8;
const IFF_RUNNING: u16 = 0x40;
const IFF_MULTICAST: u16 = 0x1000;
const ARPHRD_ETHER: u16 = 1;
const ARPHRD_LOOPBACK: u16 = 772;
const IFREQ: usize = 40;

pub fn is_ifreq(cmd: u32) -> bool {
    (0x8910..=0x8970).contains(&cmd)
}

fn sin(a: Ipv4Addr) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[0..2].copy_from_slice(&2u16.to_le_bytes());
    b[4..8].copy_from_slice(&a.octets());
    b
}

/// An `ifreq` for `name` with `data` (at most 24 bytes) after the name.
fn ifreq_for(name: &[u8], data: &[u8]) -> [u8; IFREQ] {
    let mut r = [0u8; IFREQ];
    r[..name.len()].copy_from_slice(name);
    let n = data.len().min(IFREQ - 16);
    r[16..16 + n].copy_from_slice(&data[..n]);
    r
}

fn ifreq(data: &[u8]) -> [u8; IFREQ] {
    ifreq_for(b"eth0", data)
}

/// `lo`'s answers (its address is fixed: 127.0.0.1/8).
fn lo_ioctl(cmd: u32, req: &[u8; IFREQ], root: bool) -> KResult<[u8; IFREQ]> {
    let lo = |d: &[u8]| ifreq_for(b"lo", d);
    Ok(match cmd {
        SIOCGIFFLAGS => lo(&(IFF_UP | IFF_LOOPBACK | IFF_RUNNING).to_le_bytes()),
        SIOCGIFMETRIC => lo(&0i32.to_le_bytes()),
        // Looped frames are the Ethernet interface's frames.
        SIOCGIFMTU => lo(&1500i32.to_le_bytes()),
        SIOCGIFTXQLEN => lo(&(adros_netloop::QUEUE as i32).to_le_bytes()),
        SIOCGIFINDEX => lo(&1i32.to_le_bytes()),
        SIOCGIFHWADDR => lo(&ARPHRD_LOOPBACK.to_le_bytes()),
        SIOCGIFADDR | SIOCGIFDSTADDR => lo(&sin(Ipv4Addr::LOCALHOST)),
        SIOCGIFNETMASK => lo(&sin(Ipv4Addr::new(255, 0, 0, 0))),
        SIOCGIFBRDADDR => return Err(Errno::EADDRNOTAVAIL),
        SIOCSIFFLAGS => {
            if !root {
                return Err(Errno::EPERM);
            }
            let want = u16::from_le_bytes([req[16], req[17]]);
            // `lo` stays up; asking for that succeeds (nothing to write back).
            return if want & IFF_UP != 0 {
                Ok(lo(&[]))
            } else {
                Err(Errno::EOPNOTSUPP)
            };
        }
        _ => return Err(Errno::EINVAL),
    })
}

pub fn ioctl(cmd: u32, arg: u64, root: bool) -> KResult<u64> {
    let has_lo = super::loopback().is_some();
    let i = super::interface();
    if i.is_none() && !has_lo {
        return Err(Errno::ENODEV);
    }
    if cmd == SIOCGIFCONF {
        // struct ifconf { int ifc_len; void *ifc_buf; }
        let len: i32 = read_val(arg)?;
        let buf: u64 = read_val(arg + 8)?;
        let mut out = alloc::vec::Vec::new();
        if has_lo {
            out.extend_from_slice(&ifreq_for(b"lo", &sin(Ipv4Addr::LOCALHOST)));
        }
        if let Some(a) = i.and_then(|i| i.addr) {
            out.extend_from_slice(&ifreq(&sin(a.address())));
        }
        if buf == 0 {
            write_val(arg, &(out.len() as i32))?;
            return Ok(0);
        }
        let fit = (len.max(0) as usize / IFREQ * IFREQ).min(out.len());
        copy_to_user(buf, &out[..fit])?;
        write_val(arg, &(fit as i32))?;
        return Ok(0);
    }
    let mut req = [0u8; IFREQ];
    copy_from_user(&mut req, arg)?;
    let name_len = req[..16].iter().position(|&c| c == 0).unwrap_or(16);
    if &req[..name_len] == b"lo" && has_lo {
        let out = lo_ioctl(cmd, &req, root)?;
        if cmd != SIOCSIFFLAGS {
            copy_to_user(arg, &out)?;
        }
        return Ok(0);
    }
    let Some(i) = i.filter(|_| &req[..name_len] == b"eth0") else {
        return Err(Errno::ENODEV);
    };
    let flags = IFF_UP | IFF_BROADCAST | IFF_MULTICAST | if i.link_up { IFF_RUNNING } else { 0 };
    let out = match cmd {
        SIOCGIFFLAGS => ifreq(&flags.to_le_bytes()),
        SIOCGIFMETRIC => ifreq(&0i32.to_le_bytes()),
        SIOCGIFMTU => ifreq(&(i.mtu as i32).to_le_bytes()),
        SIOCGIFTXQLEN => ifreq(&(i.txqlen as i32).to_le_bytes()),
        SIOCGIFINDEX => ifreq(&2i32.to_le_bytes()),
        SIOCGIFHWADDR => {
            let mut d = [0u8; 16];
            d[0..2].copy_from_slice(&ARPHRD_ETHER.to_le_bytes());
            d[2..8].copy_from_slice(&i.mac);
            ifreq(&d)
        }
        SIOCGIFADDR | SIOCGIFDSTADDR | SIOCGIFBRDADDR | SIOCGIFNETMASK => {
            let a = i.addr.ok_or(Errno::EADDRNOTAVAIL)?;
            let v = match cmd {
                SIOCGIFADDR | SIOCGIFDSTADDR => a.address(),
                SIOCGIFBRDADDR => a.broadcast().unwrap_or(Ipv4Addr::BROADCAST),
                _ => a.netmask(),
            };
            ifreq(&sin(v))
        }
        SIOCSIFFLAGS => {
            if !root {
                return Err(Errno::EPERM);
            }
            let want = u16::from_le_bytes([req[16], req[17]]);
            // The interface cannot be taken down yet; asking for what it is succeeds.
            return if want & IFF_UP != 0 {
                Ok(0)
            } else {
                Err(Errno::EOPNOTSUPP)
            };
        }
        _ => return Err(Errno::EINVAL),
    };
    copy_to_user(arg, &out)?;
    Ok(0)
}
