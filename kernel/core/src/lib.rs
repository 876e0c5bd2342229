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
pub mod errno;
pub mod firmware;
pub mod klog;
pub mod mm;
pub mod symbols;
pub mod sync;
pub mod time;

#[cfg(target_os = "none")]
pub mod acpi;
#[cfg(target_os = "none")]
pub mod boot;
#[cfg(target_os = "none")]
pub mod panic;
#[cfg(target_os = "none")]
pub mod profile;
#[cfg(target_os = "none")]
pub mod sched;
