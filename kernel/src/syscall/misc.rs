//! getrandom, sysinfo, sethostname, getcpu, umask lives with files.

use super::abi::Sysinfo;
use super::{Call, Table};
use crate::arch::uaccess::{copy_to_user, read_cstr, write_val};
use crate::errno::{Errno, KResult};
use crate::sync::spin::IrqSpinLock;

static HOSTNAME: IrqSpinLock<alloc::string::String> =
    IrqSpinLock::new(alloc::string::String::new());

pub fn hostname() -> alloc::string::String {
    let h = HOSTNAME.lock().clone();
    if h.is_empty() {
        alloc::string::String::from("adros")
    } else {
        h
    }
}

pub fn register(t: &mut Table) {
    t.add(318, "getrandom", getrandom);
    t.add(99, "sysinfo", sysinfo);
    t.add(170, "sethostname", sethostname);
    t.add(309, "getcpu", getcpu);
    t.add(169, "reboot", reboot);
}

const REBOOT_MAGIC1: u64 = 0xfee1_dead;
const REBOOT_MAGIC2: [u64; 4] = [672274793, 85072278, 369367448, 537993216];
const CMD_RESTART: u64 = 0x0123_4567;
const CMD_HALT: u64 = 0xcdef_0123;
const CMD_CAD_ON: u64 = 0x89ab_cdef;
const CMD_CAD_OFF: u64 = 0;
const CMD_POWER_OFF: u64 = 0x4321_fedc;

/// `reboot(2)`: power off, halt or restart the machine (root only).
fn reboot(c: &mut Call<'_>) -> KResult<u64> {
    if c.a0() as u32 as u64 != REBOOT_MAGIC1 || !REBOOT_MAGIC2.contains(&(c.a1() as u32 as u64)) {
        return Err(Errno::EINVAL);
    }
    let p = crate::proc::current_process().ok_or(Errno::ESRCH)?;
    if p.creds.lock().euid != 0 {
        return Err(Errno::EPERM);
    }
    match c.a2() as u32 as u64 {
        CMD_CAD_ON | CMD_CAD_OFF => Ok(0),
        CMD_POWER_OFF | CMD_HALT => {
            crate::println!("reboot: power down");
            crate::power_off()
        }
        CMD_RESTART => {
            crate::println!("reboot: restarting system");
            crate::platform::reset()
        }
        _ => Err(Errno::EINVAL),
    }
}

fn getrandom(c: &mut Call<'_>) -> KResult<u64> {
    // GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE
    if c.a2() & !7 != 0 {
        return Err(Errno::EINVAL);
    }
    let len = (c.a1() as usize).min(1 << 20);
    let mut buf = alloc::vec![0u8; len];
    crate::proc::random_bytes(&mut buf);
    copy_to_user(c.a0(), &buf)?;
    Ok(len as u64)
}

fn sysinfo(c: &mut Call<'_>) -> KResult<u64> {
    let (free, total) = crate::mm::phys::stats();
    let info = Sysinfo {
        uptime: (crate::time::now_ns() / 1_000_000_000) as i64,
        totalram: total as u64 * 4096,
        freeram: free as u64 * 4096,
        procs: crate::proc::all_processes().len() as u16,
        mem_unit: 1,
        ..Default::default()
    };
    write_val(c.a0(), &info)?;
    Ok(0)
}

fn sethostname(c: &mut Call<'_>) -> KResult<u64> {
    if c.a1() > 64 {
        return Err(Errno::EINVAL);
    }
    let p = crate::proc::current_process().ok_or(Errno::ESRCH)?;
    if p.creds.lock().euid != 0 {
        return Err(Errno::EPERM);
    }
    let mut name = read_cstr(c.a0(), 65)?;
    name.truncate(c.a1() as usize);
    *HOSTNAME.lock() = alloc::string::String::from_utf8_lossy(&name).into_owned();
    Ok(0)
}

fn getcpu(c: &mut Call<'_>) -> KResult<u64> {
    let cpu = crate::arch::percpu::cpu_id() as u32;
    if c.a0() != 0 {
        write_val(c.a0(), &cpu)?;
    }
    if c.a1() != 0 {
        write_val(c.a1(), &0u32)?;
    }
    Ok(0)
}
