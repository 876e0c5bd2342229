//! aarch64 (QEMU `virt`): what the core found in the device tree at boot: the GICv3 (its
//! shared peripheral interrupts are the `irq` lines), the virtio-mmio transports the block
//! layer probes, PSCI. There is no PCI here yet (PCIe through ECAM from the device tree is
//! a next step): `pci::init` finds no bus and says so.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

pub fn platform_init() {
    crate::time::init_wall_clock();
    crate::pci::init();
}

/// The device tree's usable `virtio,mmio` nodes (the malformed ones were named and skipped
/// when the core read the tree).
pub fn virtio_mmio() -> Vec<super::MmioDevice> {
    let Some(m) = adros_core::arch::aarch64::boot::machine() else {
        return Vec::new();
    };
    m.virtio_mmio()
        .iter()
        .filter_map(|s| {
            let d = s.dev.ok()?;
            Some(super::MmioDevice {
                node: String::from(s.node),
                base: d.base,
                size: d.size,
                irq: d.irq.intid,
            })
        })
        .collect()
}

pub fn describe_platform(lines: &mut Vec<String>) {
    let online = crate::arch::percpu::online_cpus().count();
    lines.push(format!(
        "cpus: {online} online ({}), MPIDRs {}",
        crate::arch::cpu::brand(),
        crate::arch::percpu::online_cpus()
            .map(|c| format!("{:#x}", c.mpidr))
            .collect::<Vec<_>>()
            .join(" ")
    ));
    lines.push(format!(
        "clock: generic timer at {} Hz (CNTFRQ_EL0), tick {} Hz",
        crate::time::tsc_hz(),
        crate::time::TICK_HZ
    ));
    let (spurious, unhandled) = crate::arch::gic::stats();
    lines.push(format!(
        "gic: GICv3, {spurious} spurious and {unhandled} unhandled interrupts so far"
    ));
    lines.push(format!(
        "psci: {}",
        if crate::arch::psci::available() {
            "available (CPU_ON, SYSTEM_OFF, SYSTEM_RESET)"
        } else {
            "none (no secondary CPUs, power off by semihosting)"
        }
    ));
    match crate::time::boot_unix_time() {
        Some(_) => {
            let now = crate::time::wall_clock_ns() / 1_000_000_000;
            let d = crate::firmware::civil_from_unix(now);
            lines.push(format!(
                "rtc: PL031, {:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC (unix {now})",
                d.year, d.month, d.day, d.hour, d.min, d.sec
            ));
        }
        None => lines.push(String::from(
            "rtc: none (the wall clock starts at the epoch)",
        )),
    }
    crate::pci::describe(lines);
}

/// Powers the machine off: PSCI `SYSTEM_OFF`; without PSCI, QEMU's semihosting exit
/// (status 0 as x86_64's fallback).
pub fn power_off() -> ! {
    crate::arch::irq::save_and_disable();
    crate::arch::psci::system_off();
    log::warn!("power off: PSCI SYSTEM_OFF unavailable; falling back to QEMU's semihosting exit");
    crate::arch::qemu_exit(crate::panic::EXIT_SUCCESS)
}

/// Restarts the machine: PSCI `SYSTEM_RESET`.
pub fn reset() -> ! {
    crate::arch::irq::save_and_disable();
    crate::arch::reset_machine()
}
