//! The AdrOS kernel core: everything the rest of the kernel stands on and nothing it stands
//! on in turn — the CPU layer (`arch`: boot stub, descriptor tables, interrupts, system-call
//! entry, user-copy, per-CPU data, SMP bring-up), memory (`mm`: frames, page tables, kernel
//! heap and stacks, user address spaces), locks (`sync`), clocks and timers (`time`), the
//! scheduler (`sched`), panic and hang reports (`panic`), firmware tables (`acpi`,
//! `firmware`), boot information (`bootinfo`, `cmdline`), the kernel log (`klog`), symbols
//! and the sampling profiler.
//!
//! It never names a process, a file, a socket or a system call: Cargo enforces that (this
//! crate depends on no other AdrOS kernel crate). The layers above reach down; the core
//! calls up only through what they register at boot — the user-mode entry points in
//! [`arch::hooks`] (system calls, faults on user addresses, exceptions in user mode, the
//! return-to-user work) — and the task slot each thread carries
//! ([`sched::Thread::task`]), which the process layer fills with its own type.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(not(target_os = "none"), allow(dead_code, unused_imports))]

extern crate alloc;

pub mod arch;
pub mod bootinfo;
pub mod cmdline;
pub mod devicetree;
pub mod errno;
pub mod firmware;
pub mod klog;
pub mod mm;
pub mod symbols;
pub mod sync;
pub mod time;

// x86_64 only for now: ACPI, the Multiboot2/PVH boot path, the panic and hang reports (NMIs,
// the LAPIC) and the profiler (fed by the LAPIC tick). aarch64 has its own boot path and
// fault report under `arch/aarch64` (see docs/arch.md).
#[cfg(all(target_os = "none", target_arch = "x86_64"))]
pub mod acpi;
#[cfg(all(target_os = "none", target_arch = "x86_64"))]
pub mod boot;
#[cfg(all(target_os = "none", target_arch = "x86_64"))]
pub mod panic;
#[cfg(all(target_os = "none", target_arch = "aarch64"))]
pub use arch::aarch64::panic;
#[cfg(all(target_os = "none", target_arch = "x86_64"))]
pub mod profile;
#[cfg(target_os = "none")]
pub mod sched;
