//! ACPI: MADT (CPUs, IOAPICs, interrupt overrides), HPET, MCFG, FADT (power off), and PCI
//! interrupt routing. (Being filled in; the signatures below are the contract `pci.rs` and
//! `platform.rs` use.)

use alloc::vec::Vec;

/// One ECAM window from the MCFG table.
#[derive(Clone, Copy, Debug)]
pub struct McfgRegion {
    pub base: u64,
    pub segment: u16,
    pub bus_start: u8,
    pub bus_end: u8,
}

/// Parses the tables (RSDP from the boot information). Safe to call once, at boot.
pub fn init() {}

/// ECAM windows, empty when there is no MCFG (PCI then uses port I/O).
pub fn mcfg_regions() -> Vec<McfgRegion> {
    Vec::new()
}

/// The IOAPIC GSI a PCI function's INTx pin (1 = INTA … 4 = INTD) is wired to.
pub fn pci_route_irq(_bus: u8, _dev: u8, _func: u8, _pin: u8) -> Option<u32> {
    None
}

/// A processor from the MADT.
#[derive(Clone, Copy, Debug)]
pub struct AcpiCpu {
    pub apic_id: u32,
    pub uid: u32,
    pub enabled: bool,
    pub online_capable: bool,
}

/// Every processor the MADT lists (the boot CPU included).
pub fn cpus() -> Vec<AcpiCpu> {
    Vec::new()
}
