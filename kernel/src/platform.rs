//! Platform discovery after the core is up: ACPI tables, interrupt controllers, timers, PCI.
//! `platform_init` runs once on the boot CPU with the scheduler running;
//! `describe_platform` produces the boot banner's hardware lines.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

pub fn platform_init() {
    crate::acpi::init();
    crate::pci::init();
}

pub fn describe_platform(lines: &mut Vec<String>) {
    lines.push(format!("cpus: 1 (boot CPU; ACPI MADT not parsed yet)"));
    crate::pci::describe(lines);
}

/// Powers the machine off (ACPI S5 when available), else exits QEMU.
pub fn power_off() -> ! {
    crate::arch::qemu_exit(crate::panic::EXIT_SUCCESS)
}
