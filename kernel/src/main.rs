//! AdrOS kernel entry. The boot stub (`arch/x86_64/boot.S`) reaches `kmain` in long mode on
//! the boot stack with the Multiboot2 magic and information pointer.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![cfg_attr(not(target_os = "none"), allow(dead_code, unused_imports))]
// Above the core, `unsafe` only where a module says why (FFI, the driver `Hal`).
#![deny(unsafe_code)]

extern crate alloc;

// The core (CPU, memory, locks, time, scheduling, reports) is its own crate, which names
// nothing above it; its modules keep their paths here (`crate::arch`, `crate::sched`, …).
#[cfg(target_os = "none")]
pub use adros_core::{panic, sched};
// ACPI and the sampling profiler (NMI-driven) are x86_64's.
#[cfg(all(target_os = "none", target_arch = "x86_64"))]
pub use adros_core::{acpi, profile};
pub use adros_core::{arch, bootinfo, cmdline, errno, firmware, klog, mm, symbols, sync, time};
pub use adros_core::{print, println};

pub mod block;
pub mod fs;

#[cfg(target_os = "none")]
pub mod boot;
#[cfg(target_os = "none")]
pub mod ext2_vfs;
#[cfg(target_os = "none")]
pub mod fat_vfs;
/// The kernel's implementation of `adros_hal` for native driver crates (`drivers/*`).
#[cfg(target_os = "none")]
#[allow(unsafe_code)] // the one driver `Hal` implementation: DMA memory and MMIO for drivers/*
pub mod hal;
#[cfg(target_os = "none")]
pub mod ipc;
#[cfg(target_os = "none")]
pub mod irq;
#[cfg(target_os = "none")]
pub mod ktest;
#[cfg(target_os = "none")]
#[allow(unsafe_code)] // tests that fault and poke memory on purpose
pub mod ktests;
#[cfg(target_os = "none")]
pub mod net;
#[cfg(target_os = "none")]
pub mod pci;
#[cfg(target_os = "none")]
pub mod platform;
#[cfg(target_os = "none")]
pub mod proc;
#[cfg(target_os = "none")]
pub mod procfs;
#[cfg(target_os = "none")]
#[allow(unsafe_code)] // the FFI to the NetBSD rump kernel (C) and its hypercall host
pub mod rump;
#[cfg(target_os = "none")]
pub mod sound;
#[cfg(target_os = "none")]
pub mod syscall;
#[cfg(target_os = "none")]
pub mod sysfs;
#[cfg(target_os = "none")]
pub mod tty;
#[cfg(target_os = "none")]
pub mod usb;
#[cfg(target_os = "none")]
pub use platform::{describe_platform, platform_init, power_off};

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "adros-kernel is built for x86_64-unknown-none; on the host only its unit tests run (cargo test -p adros-kernel)"
    );
}
