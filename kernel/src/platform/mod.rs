//! The machine around the CPU: firmware tables, interrupt controllers, clocks, PCI, power.
//! x86_64 (`x86_64.rs`): ACPI, I/O APICs, HPET/PIT calibration, the RTC, PCI through ECAM or
//! port I/O, ACPI S5. aarch64 on QEMU `virt` (`aarch64.rs`): the device tree the core
//! parsed, GICv3, the generic timer, PSCI. Selected here, once.

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "aarch64")]
pub use aarch64::*;

#[cfg(not(target_arch = "aarch64"))]
#[path = "x86_64.rs"]
mod x86;
#[cfg(not(target_arch = "aarch64"))]
pub use x86::*;

/// A virtio-mmio transport the firmware describes (the device tree's `virtio,mmio` nodes on
/// aarch64; none on x86_64, whose virtio devices are on PCI).
#[derive(Clone, Debug)]
pub struct MmioDevice {
    pub node: alloc::string::String,
    /// The register window, physical.
    pub base: u64,
    pub size: u64,
    /// Its interrupt line for `irq::attach`.
    pub irq: u32,
}
