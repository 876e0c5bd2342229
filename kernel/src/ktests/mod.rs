//! The in-kernel test cases, one module per subsystem.

use crate::ktest::TestFn;

mod block;
mod fs;
mod memory;
mod sched;
mod userland;
// x86_64's: faults caught by the exception-fixup probes, ACPI/APIC/HPET/RTC, PCI (which
// aarch64 does not enumerate yet).
#[cfg(target_arch = "x86_64")]
mod faults;
#[cfg(target_arch = "x86_64")]
mod pci;
#[cfg(target_arch = "x86_64")]
mod platform;

pub fn register(v: &mut alloc::vec::Vec<(&'static str, TestFn)>) {
    memory::register(v);
    #[cfg(target_arch = "x86_64")]
    faults::register(v);
    sched::register(v);
    #[cfg(target_arch = "x86_64")]
    {
        platform::register(v);
        pci::register(v);
    }
    fs::register(v);
    block::register(v);
    userland::register(v);
}
