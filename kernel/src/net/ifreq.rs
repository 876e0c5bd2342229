//! The interface ioctls busybox's `ifconfig` issues on a socket (SIOCGIFCONF and the
//! SIOCGIF* queries, SIOCSIFFLAGS accepted for root as long as it keeps the interface up).
//! One interface, `eth0`, when there is a network.

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
const IFF_RUNNING: u16 = 0x40;
const IFF_MULTICAST: u16 = 0x1000;
const ARPHRD_ETHER: u16 = 1;
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

/// An `ifreq` for `eth0` with `data` (at most 24 bytes) after the name.
fn ifreq(data: &[u8]) -> [u8; IFREQ] {
    let mut r = [0u8; IFREQ];
    r[..4].copy_from_slice(b"eth0");
    let n = data.len().min(IFREQ - 16);
    r[16..16 + n].copy_from_slice(&data[..n]);
    r
}

pub fn ioctl(cmd: u32, arg: u64, root: bool) -> KResult<u64> {
    let i = super::interface().ok_or(Errno::ENODEV)?;
    if cmd == SIOCGIFCONF {
        // struct ifconf { int ifc_len; void *ifc_buf; }
        let len: i32 = read_val(arg)?;
        let buf: u64 = read_val(arg + 8)?;
        let mut out = alloc::vec::Vec::new();
        if let Some(a) = i.addr {
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
    if &req[..name_len] != b"eth0" {
        return Err(Errno::ENODEV);
    }
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
