//! PCI: configuration access (ECAM when ACPI has an MCFG, port I/O 0xCF8/0xCFC otherwise),
//! one enumeration at boot (`adros_pci` does the walk), and the API drivers use.
//!
//! `pci.ecam=off` on the command line forces port I/O even when there is an MCFG.
//!
//! The device list is built once by [`init`] and never changes, so drivers hold
//! `&'static PciDevice`s. ECAM windows are mapped lazily, one bus (1 MiB) at a time, the
//! first time a bus is touched: a whole 256-bus window would be 64 Ki page mappings for the
//! handful of buses a machine really has. No `unsafe` here: port I/O is the core's
//! `arch::pci_cfg`, memory-mapped registers its bounds-checked `mm::mmio::Regs`.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

pub use adros_pci::{
    Bar, BarKind, Capability, CommandRegister, ConfigSpace, PciAddress, PciDevice,
};

use crate::firmware::McfgRegion;
use crate::mm::mmio;
use crate::mm::paging::MapError;
use crate::sync::spin::IrqSpinLock;

/// What the firmware and the CPU give PCI: on x86_64 ACPI's MCFG (ECAM windows) and INTx
/// routing, and configuration mechanism #1 (ports 0xCF8/0xCFC). aarch64 has neither port
/// I/O nor ACPI here, and its PCIe host bridge (ECAM from the device tree) is not read yet:
/// [`init`] enumerates nothing there and says so.
#[cfg(target_arch = "x86_64")]
mod firmware {
    pub use crate::acpi::{mcfg_regions, pci_route_irq};
    pub use crate::arch::pci_cfg;
    pub const HAS_PCI: bool = true;
}
#[cfg(not(target_arch = "x86_64"))]
mod firmware {
    pub const HAS_PCI: bool = false;
    pub fn mcfg_regions() -> alloc::vec::Vec<super::McfgRegion> {
        alloc::vec::Vec::new()
    }
    pub fn pci_route_irq(_bus: u8, _dev: u8, _func: u8, _pin: u8) -> Option<u32> {
        None
    }
    /// Never reached (`init` stops first): an empty bus reads all ones.
    pub mod pci_cfg {
        pub fn read(_addr: u32) -> u32 {
            u32::MAX
        }
        pub fn write(_addr: u32, _value: u32) {}
    }
}

/// Configuration mechanism #1 (ports 0xCF8/0xCFC): segment 0, offsets below 256 only.
pub struct PortIo {
    /// Keeps the address/data port pair atomic across CPUs and interrupt handlers.
    lock: IrqSpinLock<()>,
}

/// The one port-I/O accessor (there is one pair of ports per machine).
pub static PORT_IO: PortIo = PortIo {
    lock: IrqSpinLock::new(()),
};

impl PortIo {
    fn address(a: PciAddress, offset: u16) -> Option<u32> {
        if a.segment() != 0 || offset >= 256 || offset & 3 != 0 {
            return None;
        }
        Some(
            0x8000_0000
                | (u32::from(a.bus()) << 16)
                | (u32::from(a.device()) << 11)
                | (u32::from(a.function()) << 8)
                | u32::from(offset),
        )
    }
}

impl ConfigSpace for PortIo {
    fn read(&self, a: PciAddress, offset: u16) -> u32 {
        let Some(addr) = Self::address(a, offset) else {
            return 0xffff_ffff;
        };
        // The lock makes the address and data accesses one transaction.
        let _g = self.lock.lock();
        firmware::pci_cfg::read(addr)
    }

    fn write(&self, a: PciAddress, offset: u16, value: u32) {
        let Some(addr) = Self::address(a, offset) else {
            return;
        };
        let _g = self.lock.lock();
        firmware::pci_cfg::write(addr, value);
    }
}

/// One ECAM window (bus `n` of the segment lives at `base + n << 20`, as in the MCFG).
struct Window {
    region: McfgRegion,
    /// Each bus's 1 MiB, mapped on first use.
    bus_regs: Box<[spin::Once<mmio::Regs>]>,
}

/// Enhanced configuration access through memory-mapped windows.
pub struct Ecam {
    windows: Vec<Window>,
}

impl Ecam {
    pub fn new(regions: &[McfgRegion]) -> Self {
        let windows = regions
            .iter()
            .filter(|r| r.bus_start <= r.bus_end && r.base != 0)
            .map(|r| Window {
                region: *r,
                bus_regs: (0..256).map(|_| spin::Once::new()).collect(),
            })
            .collect();
        Self { windows }
    }

    pub fn regions(&self) -> impl Iterator<Item = McfgRegion> + '_ {
        self.windows.iter().map(|w| w.region)
    }

    /// The registers of a bus and the offset of a dword of configuration space in them,
    /// mapping the bus on first use.
    fn locate(&self, a: PciAddress, offset: u16) -> Option<(&mmio::Regs, u64)> {
        if offset >= 4096 || offset & 3 != 0 {
            return None;
        }
        let bus = a.bus();
        let w = self.windows.iter().find(|w| {
            w.region.segment == a.segment()
                && (w.region.bus_start..=w.region.bus_end).contains(&bus)
        })?;
        let regs = w.bus_regs[usize::from(bus)]
            .try_call_once(|| {
                let pa = w.region.base + (u64::from(bus) << 20);
                mmio::Regs::map(pa, 1 << 20).inspect_err(|e| {
                    log::warn!("pci: cannot map ECAM for bus {bus:02x} at {pa:#x}: {e:?}");
                })
            })
            .ok()?;
        Some((
            regs,
            (u64::from(a.device()) << 15) + (u64::from(a.function()) << 12) + u64::from(offset),
        ))
    }

    /// Whether this window set covers `a` (else reads return all ones).
    pub fn covers(&self, a: PciAddress) -> bool {
        self.windows.iter().any(|w| {
            w.region.segment == a.segment()
                && (w.region.bus_start..=w.region.bus_end).contains(&a.bus())
        })
    }
}

impl ConfigSpace for Ecam {
    fn read(&self, a: PciAddress, offset: u16) -> u32 {
        match self.locate(a, offset) {
            Some((regs, at)) => regs.read32(at),
            None => 0xffff_ffff,
        }
    }

    fn write(&self, a: PciAddress, offset: u16, value: u32) {
        if let Some((regs, at)) = self.locate(a, offset) {
            regs.write32(at, value);
        }
    }
}

/// The platform's accessor: ECAM where a window covers the function, port I/O otherwise
/// (segment 0 only).
pub struct Platform {
    ecam: Option<Ecam>,
}

impl ConfigSpace for Platform {
    fn read(&self, a: PciAddress, offset: u16) -> u32 {
        match &self.ecam {
            Some(e) if e.covers(a) => e.read(a, offset),
            _ => PORT_IO.read(a, offset),
        }
    }

    fn write(&self, a: PciAddress, offset: u16, value: u32) {
        match &self.ecam {
            Some(e) if e.covers(a) => e.write(a, offset, value),
            _ => PORT_IO.write(a, offset, value),
        }
    }
}

static PLATFORM: spin::Once<Platform> = spin::Once::new();
static DEVICES: spin::Once<Vec<PciDevice>> = spin::Once::new();
static NO_PLATFORM: Platform = Platform { ecam: None };

/// The configuration accessor; port I/O until [`init`] has looked for an MCFG.
pub fn config() -> &'static Platform {
    PLATFORM.get().unwrap_or(&NO_PLATFORM)
}

/// The ECAM accessor, when the MCFG gave one.
pub fn ecam() -> Option<&'static Ecam> {
    config().ecam.as_ref()
}

/// Enumerates every segment/root bus once and caches the result. Call after `acpi::init`.
pub fn init() {
    DEVICES.call_once(|| {
        if !firmware::HAS_PCI {
            log::info!("pci: no PCI bus on this architecture yet; PCI drivers find nothing");
            return Vec::new();
        }
        // `pci.ecam=off` forces port I/O (Linux's `pci=nommconf`), so both paths can be tested.
        let ecam_off = crate::boot::cmdline().param("pci.ecam") == Some("off");
        let regions = if ecam_off {
            Vec::new()
        } else {
            firmware::mcfg_regions()
        };
        let platform = PLATFORM.call_once(|| Platform {
            ecam: (!regions.is_empty()).then(|| Ecam::new(&regions)),
        });
        let roots: Vec<(u16, u8)> = match &platform.ecam {
            Some(e) => {
                let mut r: Vec<(u16, u8)> = e.regions().map(|w| (w.segment, w.bus_start)).collect();
                if !r.iter().any(|&(s, _)| s == 0) {
                    r.insert(0, (0, 0));
                }
                r
            }
            None => alloc::vec![(0, 0)],
        };
        let mut devices = Vec::new();
        for (seg, bus) in roots {
            let e = adros_pci::enumerate(platform, seg, bus);
            for b in &e.skipped_bridges {
                log::debug!(
                    "pci: bridge {} has no new secondary bus; not followed",
                    adros_pci::slot_name(*b)
                );
            }
            devices.extend(e.devices);
        }
        let snapshot = devices.clone();
        for d in &mut devices {
            if d.addr.segment() == 0 {
                d.irq = adros_pci::route_irq(&snapshot, d, firmware::pci_route_irq);
            }
            if d.capabilities_malformed {
                log::warn!(
                    "pci: {}: malformed capability list, cut short after {} entries",
                    adros_pci::slot_name(d.addr),
                    d.capabilities.len()
                );
            }
        }
        log::info!("pci: {} functions via {}", devices.len(), access_name());
        devices
    });
}

fn access_name() -> String {
    match ecam() {
        Some(e) => {
            let ws: Vec<String> = e
                .regions()
                .map(|r| {
                    format!(
                        "segment {} buses {:02x}-{:02x} at {:#x}",
                        r.segment, r.bus_start, r.bus_end, r.base
                    )
                })
                .collect();
            format!("ECAM ({})", ws.join(", "))
        }
        None if crate::boot::cmdline().param("pci.ecam") == Some("off") => {
            String::from("port I/O 0xcf8 (pci.ecam=off)")
        }
        None => String::from("port I/O 0xcf8 (no MCFG)"),
    }
}

/// Every function found at boot, in `lspci` order (empty before [`init`]).
pub fn devices() -> &'static [PciDevice] {
    DEVICES.get().map_or(&[], |v| v.as_slice())
}

/// The first function with this vendor and device ID.
pub fn find(vendor: u16, device: u16) -> Option<&'static PciDevice> {
    devices()
        .iter()
        .find(|d| d.vendor_id == vendor && d.device_id == device)
}

/// Every function with this vendor and device ID.
pub fn find_all(vendor: u16, device: u16) -> impl Iterator<Item = &'static PciDevice> {
    devices()
        .iter()
        .filter(move |d| d.vendor_id == vendor && d.device_id == device)
}

/// Every function of this class and subclass.
pub fn find_class(class: u8, subclass: u8) -> impl Iterator<Item = &'static PciDevice> {
    devices()
        .iter()
        .filter(move |d| d.class == class && d.subclass == subclass)
}

/// A dword of configuration space (`offset` dword-aligned).
pub fn read_config(addr: PciAddress, offset: u16) -> u32 {
    config().read(addr, offset)
}

pub fn write_config(addr: PciAddress, offset: u16, value: u32) {
    config().write(addr, offset, value)
}

/// Changes the command register without disturbing the status register's sticky bits.
pub fn update_command(
    dev: &PciDevice,
    f: impl FnOnce(CommandRegister) -> CommandRegister,
) -> CommandRegister {
    adros_pci::update_command(config(), dev.addr, f)
}

pub fn enable_bus_master(dev: &PciDevice) {
    update_command(dev, |c| c | CommandRegister::BUS_MASTER_ENABLE);
}

pub fn enable_memory(dev: &PciDevice) {
    update_command(dev, |c| c | CommandRegister::MEMORY_ENABLE);
}

pub fn enable_io(dev: &PciDevice) {
    update_command(dev, |c| c | CommandRegister::IO_ENABLE);
}

/// BAR `index` as sized at boot.
pub fn bar(dev: &PciDevice, index: usize) -> Option<Bar> {
    dev.bar(index)
}

/// The routed GSI of the function's INTx pin; `None` when it has no pin or ACPI does not
/// route it.
pub fn irq(dev: &PciDevice) -> Option<u32> {
    dev.irq
}

#[derive(Debug, PartialEq, Eq)]
pub enum BarError {
    NoSuchBar,
    NotMemory,
    /// Firmware left the BAR at address 0.
    Unassigned,
    Map(MapError),
}

/// Maps memory BAR `index` uncached and returns the virtual address of its start. Mapping
/// twice is harmless. Memory decode is not switched on here: see [`enable_memory`].
pub fn map_bar(dev: &PciDevice, index: usize) -> Result<u64, BarError> {
    map_bar_regs(dev, index).map(|r| r.base())
}

/// A memory BAR mapped for good, with bounds-checked register access (the core's
/// [`mmio::Regs`]), for drivers that must stay free of `unsafe`.
pub type BarRegs = mmio::Regs;

pub fn map_bar_regs(dev: &PciDevice, index: usize) -> Result<BarRegs, BarError> {
    let b = dev.bar(index).ok_or(BarError::NoSuchBar)?;
    if !b.is_memory() {
        return Err(BarError::NotMemory);
    }
    if b.address == 0 {
        return Err(BarError::Unassigned);
    }
    mmio::Regs::map(b.address, b.size).map_err(BarError::Map)
}

/// One `lspci`-style line per function for the boot banner, each followed by an indented
/// line with its BARs and routed IRQ (with `loglevel=7` also prog-if, subsystem and
/// capabilities).
pub fn describe(lines: &mut Vec<String>) {
    if !firmware::HAS_PCI {
        lines.push(String::from("pci: none on this architecture yet"));
        return;
    }
    let devs = devices();
    lines.push(format!(
        "pci: {} functions via {}",
        devs.len(),
        access_name()
    ));
    let verbose = log::max_level() >= log::LevelFilter::Debug;
    for d in devs {
        lines.push(format!("  {}", adros_pci::lspci_line(d)));
        if let Some(more) = adros_pci::details_line(d, verbose) {
            lines.push(format!("          {more}"));
        }
    }
}

/// Which stack drives a PCI function: the one place that records it (`/proc/drivers`
/// prints it as `pci SLOT stack driver`). A function has at most one owner at a time: a
/// native driver and the rump kernel never drive the same device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    /// `native` or `rump`.
    pub stack: &'static str,
    /// What drives it (`virtio-blk`, `usb host controller`, …).
    pub driver: &'static str,
}

static OWNERS: IrqSpinLock<alloc::collections::BTreeMap<(u16, u8, u8, u8), Owner>> =
    IrqSpinLock::new(alloc::collections::BTreeMap::new());

fn owner_key(a: PciAddress) -> (u16, u8, u8, u8) {
    (a.segment(), a.bus(), a.device(), a.function())
}

/// Records `owner` as the function's driver; fails with the current owner if another stack
/// has it (claiming again for the same stack replaces the driver name).
pub fn claim(addr: PciAddress, owner: Owner) -> Result<(), Owner> {
    let mut o = OWNERS.lock();
    match o.get(&owner_key(addr)) {
        Some(cur) if cur.stack != owner.stack => Err(*cur),
        _ => {
            o.insert(owner_key(addr), owner);
            Ok(())
        }
    }
}

/// The function's owner, if any.
pub fn owner(addr: PciAddress) -> Option<Owner> {
    OWNERS.lock().get(&owner_key(addr)).copied()
}

/// Every claimed function with its owner, in slot order.
pub fn owners() -> Vec<(String, Owner)> {
    let o = OWNERS.lock();
    devices()
        .iter()
        .filter_map(|d| {
            o.get(&owner_key(d.addr))
                .map(|w| (adros_pci::slot_name(d.addr), *w))
        })
        .collect()
}
