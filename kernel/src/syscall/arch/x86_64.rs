//! x86_64: the numbers the families register with are x86_64's own, and the calls only
//! x86_64 has (`arch_prctl`).

use core::sync::atomic::Ordering;

use crate::arch::uaccess::write_val;
use crate::errno::{Errno, KResult};
use crate::syscall::{Call, Table};

/// The numbering this architecture's `syscall` instruction uses.
pub const NAME: &str = "x86_64";

/// The x86_64 number of the call registered as `name`: the one it was registered with.
#[inline]
pub fn number(x86_64: usize, _name: &str) -> Option<usize> {
    Some(x86_64)
}

/// Calls that set the whole frame themselves (`dispatch` leaves it alone).
pub const RT_SIGRETURN: usize = 15;
pub const EXECVE: usize = 59;
pub const EXECVEAT: usize = 322;

/// `clone(flags, stack, parent_tid, child_tid, tls)`: the argument positions of the
/// child's TID address and the TLS value.
pub const CLONE_CHILD_TID_ARG: usize = 3;
pub const CLONE_TLS_ARG: usize = 4;

/// The ELF machine `execve` runs (EM_X86_64), the `AT_PLATFORM` string, `AT_HWCAP` (CPUID
/// leaf 1's EDX as Linux reports it for QEMU's CPUs) and `uname`'s machine.
pub const ELF_MACHINE: u16 = 62;
pub const PLATFORM: &[u8] = b"x86_64\0";
pub const HWCAP: u64 = 0x178bfbff;
pub const UNAME_MACHINE: &[u8] = b"x86_64";

/// `struct stat` in x86_64's own layout, which `abi::Stat` is.
#[inline]
pub fn stat(s: &crate::fs::node::Stat) -> crate::syscall::abi::Stat {
    crate::syscall::abi::Stat::from(s)
}

/// `struct epoll_event`: packed (12 bytes) on x86_64, which `abi::EpollEvent` is.
pub use crate::syscall::abi::EpollEvent;

#[inline]
pub fn epoll_event(events: u32, data: u64) -> EpollEvent {
    EpollEvent { events, data }
}

/// Open flags: the kernel numbers them as x86_64 does.
#[inline]
pub fn open_flags_in(f: u32) -> u32 {
    f
}

#[inline]
pub fn open_flags_out(f: u32) -> u32 {
    f
}

const ARCH_SET_GS: u64 = 0x1001;
const ARCH_SET_FS: u64 = 0x1002;
const ARCH_GET_FS: u64 = 0x1003;
const ARCH_GET_GS: u64 = 0x1004;

pub fn register(t: &mut Table) {
    t.add(158, "arch_prctl", arch_prctl);
}

fn arch_prctl(c: &mut Call<'_>) -> KResult<u64> {
    use crate::arch::cpu;
    match c.a0() {
        ARCH_SET_FS => {
            if c.a1() >= crate::mm::uspace::USER_TOP {
                return Err(Errno::EPERM);
            }
            cpu::set_fs_base(c.a1()).map_err(|_| Errno::EPERM)?;
            crate::sched::current()
                .fs_base
                .store(c.a1(), Ordering::Relaxed);
            Ok(0)
        }
        ARCH_GET_FS => {
            write_val(c.a1(), &cpu::fs_base())?;
            Ok(0)
        }
        ARCH_SET_GS => {
            cpu::set_user_gs_base(c.a1()).map_err(|_| Errno::EPERM)?;
            Ok(0)
        }
        ARCH_GET_GS => {
            write_val(c.a1(), &cpu::user_gs_base())?;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}
