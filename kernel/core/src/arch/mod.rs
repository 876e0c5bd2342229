//! Everything CPU-specific. Only this layer (with `mm`'s page-table and DMA code) holds
//! `unsafe`. On the host (for `cargo test`) only the interrupt-flag shims exist.
//!
//! Each architecture exports the same names where they make sense (see docs/arch.md):
//! `irq` (save/restore/enable/halt), `serial` (the early console), `percpu`, `switch`
//! (context switch), `cpu`, `tlb`, `smp`, [`TrapFrame`] (what an interrupt saved, with
//! `pc()` and `from_user()`), `clock_counter` (the monotonic clock's counter),
//! `send_resched_ipi`, `qemu_exit` and `halt_forever`.

#[cfg(all(target_os = "none", target_arch = "x86_64"))]
pub mod x86_64;
#[cfg(all(target_os = "none", target_arch = "x86_64"))]
pub use self::x86_64::*;

#[cfg(all(target_os = "none", target_arch = "aarch64"))]
pub mod aarch64;
#[cfg(all(target_os = "none", target_arch = "aarch64"))]
pub use self::aarch64::*;

/// Leaving deep foreign frames back to a resume point (`setjmp`/`longjmp`), both architectures.
#[cfg(target_os = "none")]
pub mod escape;
/// The entry points of user mode the layers above register (both architectures).
#[cfg(target_os = "none")]
pub mod hooks;
#[cfg(target_os = "none")]
mod uaccess_common;

/// The aarch64 exception-syndrome decoder is plain logic: tested on the host too.
#[cfg(all(test, not(target_os = "none")))]
#[path = "aarch64/esr.rs"]
pub mod aarch64_esr;

#[cfg(not(target_os = "none"))]
pub mod irq {
    pub fn save_and_disable() -> bool {
        false
    }
    pub fn restore(_was_enabled: bool) {}
    pub fn enabled() -> bool {
        false
    }
}

/// What a CPU exception taken in user mode was (`TrapFrame::user_trap`, on each
/// architecture), for the layer above that turns it into a signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserTrap {
    /// An access to `addr` the address space could not resolve.
    PageFault { addr: u64 },
    /// An undefined or illegal instruction.
    IllegalInstruction,
    /// A breakpoint instruction.
    Breakpoint,
    /// A divide error or a floating-point exception.
    Arithmetic,
    /// A misaligned access the CPU refused.
    Alignment,
    /// A protection fault or anything else.
    Protection,
}
