//! AdrOS on aarch64 (QEMU `virt`), first milestone: the kernel core (`adros-core`) booted
//! by its aarch64 boot stub. `kmain` prints the banner (CPU, CPU count and RAM from the
//! device tree), exercises the frame allocator and the heap, starts the scheduler on the
//! generic timer's tick, runs two kernel threads that never yield — so they only take turns
//! if timer preemption and the context switch work — checks user address spaces
//! (`mm::uspace` on TTBR0) and user mode (a program at EL0 with system calls, a demand-zero
//! fault and interrupts: `el0.rs`), reports what it saw, then ends the QEMU run with the
//! success status. The full kernel (`adros-kernel`) does not build for
//! aarch64 yet; see docs/arch.md.
//!
//! `adros.fault=data|exec|brk` on the command line (QEMU `-append`) provokes that exception
//! after the banner, to show the exception vectors' report.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(all(target_os = "none", target_arch = "aarch64"))]
mod el0;
#[cfg(all(target_os = "none", target_arch = "aarch64"))]
mod kmain;

#[cfg(not(all(target_os = "none", target_arch = "aarch64")))]
fn main() {}
