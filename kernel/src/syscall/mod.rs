//! The Linux system-call layer: numbers → handlers through a table that each family
//! module fills in (`process`, `memory`, `signal`, `time`, `futex`, `file`, `misc`,
//! `events`, `socket`). Families register with x86_64 numbers and names; on aarch64
//! `arch` gives each name its asm-generic (arm64) number (`arch/aarch64.rs`).
//! Handlers get typed access to the arguments and return `KResult<u64>`; errors become
//! `-errno` in rax. `implemented()` is the machine-readable list a test checks.

pub mod abi;
pub mod arch;
pub mod events;
pub mod file;
pub mod futex;
pub mod inet;
pub mod memory;
pub mod misc;
pub mod process;
pub mod sched_time;
pub mod signal;
pub mod socket;
pub mod time;

use alloc::vec::Vec;

use crate::arch::TrapFrame;
use crate::errno::{Errno, KResult};

pub const MAX_NR: usize = 460;

/// The arguments and the trap frame of one system call.
pub struct Call<'a> {
    pub frame: &'a mut TrapFrame,
}

impl Call<'_> {
    pub fn nr(&self) -> u64 {
        self.frame.kept_syscall_nr()
    }
    /// Argument `i` (0–5) in this architecture's registers.
    #[inline]
    pub fn arg(&self, i: usize) -> u64 {
        self.frame.syscall_arg(i)
    }
    pub fn a0(&self) -> u64 {
        self.frame.syscall_arg(0)
    }
    pub fn a1(&self) -> u64 {
        self.frame.syscall_arg(1)
    }
    pub fn a2(&self) -> u64 {
        self.frame.syscall_arg(2)
    }
    pub fn a3(&self) -> u64 {
        self.frame.syscall_arg(3)
    }
    pub fn a4(&self) -> u64 {
        self.frame.syscall_arg(4)
    }
    pub fn a5(&self) -> u64 {
        self.frame.syscall_arg(5)
    }
    /// Argument `i` as a signed int (fds, pids).
    pub fn i32(&self, i: usize) -> i32 {
        [
            self.a0(),
            self.a1(),
            self.a2(),
            self.a3(),
            self.a4(),
            self.a5(),
        ][i] as i32
    }
}

pub type Handler = fn(&mut Call<'_>) -> KResult<u64>;

#[derive(Clone, Copy)]
pub struct Entry {
    pub name: &'static str,
    pub handler: Handler,
}

pub struct Table([Option<Entry>; MAX_NR]);

impl Table {
    /// Registers `name` as system call `nr`. A number past the table or one registered twice
    /// is a bug in the table (two handlers for one call, or a typo in a number): it stops the
    /// kernel at the first system call, naming both, rather than one silently winning.
    /// `nr` is the x86_64 number; on another architecture the call gets that one's number
    /// for `name` (`arch::number`), and a call it does not have is left out.
    pub fn add(&mut self, nr: usize, name: &'static str, handler: Handler) {
        let Some(nr) = arch::number(nr, name) else {
            return;
        };
        let Some(slot) = self.0.get_mut(nr) else {
            panic!("syscall table: {name} has number {nr}, past the table's {MAX_NR}");
        };
        if let Some(old) = slot {
            panic!(
                "syscall table: {name} and {} both registered as number {nr}",
                old.name
            );
        }
        *slot = Some(Entry { name, handler });
    }
}

static TABLE: spin::Once<Table> = spin::Once::new();

fn table() -> &'static Table {
    TABLE.call_once(|| {
        let mut t = Table([None; MAX_NR]);
        process::register(&mut t);
        memory::register(&mut t);
        signal::register(&mut t);
        time::register(&mut t);
        futex::register(&mut t);
        file::register(&mut t);
        misc::register(&mut t);
        sched_time::register(&mut t);
        events::register(&mut t);
        socket::register(&mut t);
        arch::register(&mut t);
        t
    })
}

/// (number, name) of every implemented system call.
pub fn implemented() -> Vec<(usize, &'static str)> {
    table()
        .0
        .iter()
        .enumerate()
        .filter_map(|(i, e)| e.map(|e| (i, e.name)))
        .collect()
}

/// Entry from `arch::user`: the number and arguments in the architecture's registers
/// (rax and rdi.. on x86_64, x8 and x0.. on aarch64); the result goes back in rax / x0.
pub fn dispatch(frame: &mut TrapFrame) {
    let nr = frame.syscall_nr() as usize;
    frame.keep_for_restart(); // for SA_RESTART
    let entry = table().0.get(nr).copied().flatten();
    let r = match entry {
        Some(e) => {
            let mut c = Call { frame };
            let r = (e.handler)(&mut c);
            if log::log_enabled!(log::Level::Trace) {
                log::trace!(
                    "syscall {}({:#x}, {:#x}, {:#x}) = {:?}",
                    e.name,
                    c.a0(),
                    c.a1(),
                    c.a2(),
                    r
                );
            }
            r
        }
        None => {
            log::debug!("unimplemented syscall {nr}");
            Err(Errno::ENOSYS)
        }
    };
    // rt_sigreturn and execve set the whole frame themselves.
    if nr == arch::RT_SIGRETURN
        || (nr == arch::EXECVE && r.is_ok())
        || (nr == arch::EXECVEAT && r.is_ok())
    {
        return;
    }
    frame.set_ret(match r {
        Ok(v) => v,
        Err(e) => e.to_ret(),
    });
}
