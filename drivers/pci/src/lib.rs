#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
//! PCI enumeration logic, independent of how configuration space is reached.
//!
//! The kernel supplies a [`ConfigSpace`] (ECAM or port I/O); this crate walks the bus
//! hierarchy from a root bus, following PCI-to-PCI bridges, sizes BARs, walks capability
//! lists, resolves INTx routing through bridges (swizzling) and names devices the way
//! `lspci -nn` does. Register layouts and small types come from `pci_types`; its
//! accessors are `unsafe fn`s, so the walk itself is done here, safely.

extern crate alloc;

mod format;
mod names;

use alloc::vec::Vec;

pub use format::{details_line, lspci_line, size_string, slot_name};
pub use names::{
    capability_name, class_name, device_name, prog_if_name, subclass_name, vendor_name,
    virtio_device_type,
};
pub use pci_types::{CommandRegister, HeaderType, PciAddress, StatusRegister};

/// Configuration-space register offsets (dword-aligned) and field positions.
pub mod reg {
    /// Vendor ID (bits 0..16), device ID (16..32).
    pub const ID: u16 = 0x00;
    /// Command (bits 0..16), status (16..32).
    pub const COMMAND: u16 = 0x04;
    /// Revision (0..8), prog-if (8..16), subclass (16..24), class (24..32).
    pub const CLASS_REV: u16 = 0x08;
    /// Cache line (0..8), latency (8..16), header type (16..24, bit 23 = multi-function), BIST.
    pub const HEADER: u16 = 0x0c;
    pub const BAR0: u16 = 0x10;
    /// Type 1: primary (0..8), secondary (8..16), subordinate (16..24) bus numbers.
    pub const BRIDGE_BUSES: u16 = 0x18;
    /// Type 0: subsystem vendor (0..16), subsystem ID (16..32).
    pub const SUBSYSTEM: u16 = 0x2c;
    /// Capabilities pointer (types 0 and 1).
    pub const CAP_PTR: u16 = 0x34;
    /// Capabilities pointer of a CardBus (type 2) header.
    pub const CARDBUS_CAP_PTR: u16 = 0x14;
    /// Interrupt line (0..8), interrupt pin (8..16).
    pub const INTERRUPT: u16 = 0x3c;
    /// Status register bit: a capability list exists.
    pub const STATUS_CAP_LIST: u16 = 1 << 4;
}

/// Capability lists longer than this are malformed (Linux uses the same bound).
pub const MAX_CAPABILITIES: usize = 48;
/// The first offset a capability may live at (the standard header ends at 0x40).
pub const FIRST_CAPABILITY_OFFSET: u8 = 0x40;

/// 32-bit access to PCI configuration space. Offsets are dword-aligned; reads of absent
/// functions return all ones, as the hardware does.
pub trait ConfigSpace {
    fn read(&self, addr: PciAddress, offset: u16) -> u32;
    fn write(&self, addr: PciAddress, offset: u16, value: u32);

    fn read_u16(&self, addr: PciAddress, offset: u16) -> u16 {
        (self.read(addr, offset & !3) >> ((offset & 2) * 8)) as u16
    }

    fn read_u8(&self, addr: PciAddress, offset: u16) -> u8 {
        (self.read(addr, offset & !3) >> ((offset & 3) * 8)) as u8
    }
}

impl<T: ConfigSpace + ?Sized> ConfigSpace for &T {
    fn read(&self, addr: PciAddress, offset: u16) -> u32 {
        (**self).read(addr, offset)
    }
    fn write(&self, addr: PciAddress, offset: u16, value: u32) {
        (**self).write(addr, offset, value)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarKind {
    Io,
    /// 32-bit memory BAR (including the legacy "below 1 MiB" type).
    Memory32,
    /// 64-bit memory BAR; it occupies this slot and the next.
    Memory64,
}

/// A sized base address register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bar {
    /// Slot (0..6); a 64-bit BAR's upper half is slot `index + 1`.
    pub index: u8,
    pub kind: BarKind,
    /// Bus address as programmed by firmware (0 = unassigned).
    pub address: u64,
    /// Size in bytes, a power of two.
    pub size: u64,
    pub prefetchable: bool,
}

impl Bar {
    pub fn is_memory(&self) -> bool {
        self.kind != BarKind::Io
    }

    pub fn is_io(&self) -> bool {
        self.kind == BarKind::Io
    }
}

impl From<Bar> for pci_types::Bar {
    fn from(b: Bar) -> Self {
        match b.kind {
            BarKind::Io => pci_types::Bar::Io {
                port: b.address as u32,
            },
            BarKind::Memory32 => pci_types::Bar::Memory32 {
                address: b.address as u32,
                size: b.size as u32,
                prefetchable: b.prefetchable,
            },
            BarKind::Memory64 => pci_types::Bar::Memory64 {
                address: b.address,
                size: b.size,
                prefetchable: b.prefetchable,
            },
        }
    }
}

/// One entry of a function's capability list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capability {
    pub id: u8,
    /// Offset in configuration space.
    pub offset: u8,
}

/// Bus numbers of a PCI-to-PCI bridge (type 1 header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BridgeBuses {
    pub primary: u8,
    pub secondary: u8,
    pub subordinate: u8,
}

/// Everything enumeration learns about one function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PciDevice {
    pub addr: PciAddress,
    pub vendor_id: u16,
    pub device_id: u16,
    pub revision: u8,
    pub class: u8,
    pub subclass: u8,
    pub prog_if: u8,
    /// Header layout (bits 0..7 of the header type register).
    pub header_type: u8,
    /// Function 0 of a multi-function device has bit 7 set; copied to every function.
    pub multifunction: bool,
    pub subsystem_vendor: u16,
    pub subsystem_id: u16,
    /// By slot; a 64-bit BAR leaves the following slot `None`.
    pub bars: [Option<Bar>; 6],
    pub interrupt_line: u8,
    /// 0 = none, 1..=4 = INTA..INTD.
    pub interrupt_pin: u8,
    pub capabilities: Vec<Capability>,
    /// The capability list was cut short (loop, pointer into the header, too long).
    pub capabilities_malformed: bool,
    /// Set for type 1 headers.
    pub bridge: Option<BridgeBuses>,
    /// The bridge whose secondary bus this function sits on (None on a root bus).
    pub parent_bridge: Option<PciAddress>,
    /// The IOAPIC GSI its INTx pin is routed to; filled in by the platform (see [`route_irq`]).
    pub irq: Option<u32>,
}

impl PciDevice {
    pub fn header_kind(&self) -> HeaderType {
        match self.header_type {
            0 => HeaderType::Endpoint,
            1 => HeaderType::PciPciBridge,
            2 => HeaderType::CardBusBridge,
            t => HeaderType::Unknown(t),
        }
    }

    pub fn bar(&self, index: usize) -> Option<Bar> {
        self.bars.get(index).copied().flatten()
    }

    pub fn capability(&self, id: u8) -> Option<Capability> {
        self.capabilities.iter().copied().find(|c| c.id == id)
    }

    pub fn is_host_bridge(&self) -> bool {
        self.class == 0x06 && self.subclass == 0x00
    }
}

/// Result of walking a hierarchy.
#[derive(Clone, Debug, Default)]
pub struct Enumeration {
    /// Sorted by address (segment, bus, device, function), as `lspci` lists them.
    pub devices: Vec<PciDevice>,
    /// Buses scanned, in scan order.
    pub buses: Vec<u8>,
    /// Bridges whose secondary bus was not followed (unassigned, already seen, or behind).
    pub skipped_bridges: Vec<PciAddress>,
}

fn lowest_set_bit(x: u64) -> u64 {
    x & x.wrapping_neg()
}

/// Reads the function at `addr`, sizing its BARs and walking its capabilities.
/// `None` when nothing answers (vendor 0xFFFF, or an all-zero ID).
pub fn probe_function<C: ConfigSpace + ?Sized>(cfg: &C, addr: PciAddress) -> Option<PciDevice> {
    let id = cfg.read(addr, reg::ID);
    let vendor_id = id as u16;
    if vendor_id == 0xffff || vendor_id == 0 {
        return None;
    }
    let class_rev = cfg.read(addr, reg::CLASS_REV);
    let header = cfg.read(addr, reg::HEADER);
    let header_type = ((header >> 16) & 0x7f) as u8;
    let class = (class_rev >> 24) as u8;
    let subclass = (class_rev >> 16) as u8;
    let host_bridge = class == 0x06 && subclass == 0x00;
    let nbars = match header_type {
        0 => 6,
        1 => 2,
        _ => 0,
    };
    let bars = size_bars(cfg, addr, nbars, host_bridge);
    let (capabilities, capabilities_malformed) = capabilities(cfg, addr, header_type);
    let (subsystem_vendor, subsystem_id) = if header_type == 0 {
        let s = cfg.read(addr, reg::SUBSYSTEM);
        (s as u16, (s >> 16) as u16)
    } else {
        (0, 0)
    };
    let bridge = (header_type == 1).then(|| {
        let b = cfg.read(addr, reg::BRIDGE_BUSES);
        BridgeBuses {
            primary: b as u8,
            secondary: (b >> 8) as u8,
            subordinate: (b >> 16) as u8,
        }
    });
    let int = cfg.read(addr, reg::INTERRUPT);
    Some(PciDevice {
        addr,
        vendor_id,
        device_id: (id >> 16) as u16,
        revision: class_rev as u8,
        class,
        subclass,
        prog_if: (class_rev >> 8) as u8,
        header_type,
        multifunction: header & (1 << 23) != 0,
        subsystem_vendor,
        subsystem_id,
        bars,
        interrupt_line: int as u8,
        interrupt_pin: (int >> 8) as u8,
        capabilities,
        capabilities_malformed,
        bridge,
        parent_bridge: None,
        irq: None,
    })
}

/// Sizes the first `count` BARs of `addr`. Memory and I/O decode are switched off while
/// all-ones are written (so a half-programmed BAR never claims bus addresses), except on
/// host bridges, whose decode must stay on (Linux's `mmio_always_on`). The command
/// register and every BAR are restored afterwards.
pub fn size_bars<C: ConfigSpace + ?Sized>(
    cfg: &C,
    addr: PciAddress,
    count: u8,
    host_bridge: bool,
) -> [Option<Bar>; 6] {
    let mut bars = [None; 6];
    let count = count.min(6);
    if count == 0 {
        return bars;
    }
    let cmd = cfg.read(addr, reg::COMMAND) as u16;
    let decode = cmd & (CommandRegister::IO_ENABLE | CommandRegister::MEMORY_ENABLE).bits();
    let toggle = decode != 0 && !host_bridge;
    if toggle {
        // The status half is written as zero: its error bits are write-one-to-clear.
        cfg.write(addr, reg::COMMAND, u32::from(cmd & !decode));
    }
    let mut i = 0u8;
    while i < count {
        let off = reg::BAR0 + u16::from(i) * 4;
        let orig = cfg.read(addr, off);
        if orig & 1 == 1 {
            cfg.write(addr, off, 0xffff_ffff);
            let rb = cfg.read(addr, off);
            cfg.write(addr, off, orig);
            // I/O decoders may implement only 16 bits: the lowest writable bit is the size.
            let size = lowest_set_bit(u64::from(rb & !0x3));
            if size != 0 {
                bars[usize::from(i)] = Some(Bar {
                    index: i,
                    kind: BarKind::Io,
                    address: u64::from(orig & !0x3),
                    size,
                    prefetchable: false,
                });
            }
            i += 1;
            continue;
        }
        let prefetchable = orig & 0x8 != 0;
        match (orig >> 1) & 0x3 {
            0 | 1 => {
                cfg.write(addr, off, 0xffff_ffff);
                let rb = cfg.read(addr, off);
                cfg.write(addr, off, orig);
                let size = lowest_set_bit(u64::from(rb & !0xf));
                if size != 0 {
                    bars[usize::from(i)] = Some(Bar {
                        index: i,
                        kind: BarKind::Memory32,
                        address: u64::from(orig & !0xf),
                        size,
                        prefetchable,
                    });
                }
                i += 1;
            }
            2 => {
                if i + 1 >= count {
                    // A 64-bit BAR in the last slot is malformed; leave it.
                    break;
                }
                let hi = cfg.read(addr, off + 4);
                cfg.write(addr, off, 0xffff_ffff);
                cfg.write(addr, off + 4, 0xffff_ffff);
                let rb_lo = cfg.read(addr, off);
                let rb_hi = cfg.read(addr, off + 4);
                cfg.write(addr, off, orig);
                cfg.write(addr, off + 4, hi);
                let mask = (u64::from(rb_hi) << 32) | u64::from(rb_lo & !0xf);
                let size = lowest_set_bit(mask);
                if size != 0 {
                    let address = (u64::from(hi) << 32) | u64::from(orig & !0xf);
                    bars[usize::from(i)] = Some(Bar {
                        index: i,
                        kind: BarKind::Memory64,
                        address,
                        size,
                        prefetchable,
                    });
                }
                // The upper half is not a BAR of its own: never size it again.
                i += 2;
            }
            _ => i += 1, // reserved memory type
        }
    }
    if toggle {
        cfg.write(addr, reg::COMMAND, u32::from(cmd));
    }
    bars
}

/// Walks the capability list. Returns the entries and whether the list was malformed:
/// a pointer into the standard header (< 0x40), more than [`MAX_CAPABILITIES`] entries
/// (which is how a loop shows), or an all-ones entry.
pub fn capabilities<C: ConfigSpace + ?Sized>(
    cfg: &C,
    addr: PciAddress,
    header_type: u8,
) -> (Vec<Capability>, bool) {
    let mut caps = Vec::new();
    let status = (cfg.read(addr, reg::COMMAND) >> 16) as u16;
    if status & reg::STATUS_CAP_LIST == 0 || status == 0xffff {
        return (caps, false);
    }
    let ptr_reg = match header_type {
        0 | 1 => reg::CAP_PTR,
        2 => reg::CARDBUS_CAP_PTR,
        _ => return (caps, false),
    };
    let mut ptr = (cfg.read(addr, ptr_reg) as u8) & 0xfc;
    while ptr != 0 {
        if ptr < FIRST_CAPABILITY_OFFSET || caps.len() >= MAX_CAPABILITIES {
            return (caps, true);
        }
        let d = cfg.read(addr, u16::from(ptr));
        if d == 0xffff_ffff {
            return (caps, true);
        }
        caps.push(Capability {
            id: d as u8,
            offset: ptr,
        });
        ptr = ((d >> 8) as u8) & 0xfc;
    }
    (caps, false)
}

/// Every function on one bus, without following bridges.
pub fn scan_bus<C: ConfigSpace + ?Sized>(cfg: &C, segment: u16, bus: u8) -> Vec<PciDevice> {
    let mut out = Vec::new();
    for dev in 0..32u8 {
        let Some(f0) = probe_function(cfg, PciAddress::new(segment, bus, dev, 0)) else {
            continue;
        };
        let multi = f0.multifunction;
        out.push(f0);
        if multi {
            for func in 1..8u8 {
                if let Some(mut f) = probe_function(cfg, PciAddress::new(segment, bus, dev, func)) {
                    f.multifunction = true;
                    out.push(f);
                }
            }
        }
    }
    out
}

/// Every function reachable from `root_bus`, following each bridge's secondary bus number
/// as firmware assigned it (bus numbers are not reassigned here). Each bus is scanned at
/// most once, so a bridge pointing back up the tree cannot loop.
pub fn enumerate<C: ConfigSpace + ?Sized>(cfg: &C, segment: u16, root_bus: u8) -> Enumeration {
    let mut seen = [false; 256];
    let mut result = Enumeration::default();
    let mut work: Vec<(u8, Option<PciAddress>)> = Vec::new();
    work.push((root_bus, None));
    seen[usize::from(root_bus)] = true;
    while let Some((bus, parent)) = work.pop() {
        result.buses.push(bus);
        let mut found = scan_bus(cfg, segment, bus);
        for d in &mut found {
            d.parent_bridge = parent;
            if let Some(b) = d.bridge {
                let sec = b.secondary;
                if sec == 0 || sec <= bus || seen[usize::from(sec)] {
                    result.skipped_bridges.push(d.addr);
                } else {
                    seen[usize::from(sec)] = true;
                    work.push((sec, Some(d.addr)));
                }
            }
        }
        result.devices.extend(found);
    }
    result.devices.sort_by_key(|d| d.addr);
    result
}

/// The pin a function's INTx appears as on the far side of a bridge, given the function's
/// device number (PCI-to-PCI bridge spec, "interrupt swizzling").
pub fn swizzle(pin: u8, device: u8) -> u8 {
    ((pin.wrapping_sub(1) + (device % 4)) % 4) + 1
}

/// Resolves a function's INTx pin to a GSI: asks `route(bus, dev, func, pin)` (the ACPI
/// `_PRT`) for the function itself, then for each bridge up the tree with the pin swizzled,
/// as an OS must when a bridge has no `_PRT` of its own. `None` when nothing routes it or
/// the function has no pin.
pub fn route_irq(
    devices: &[PciDevice],
    dev: &PciDevice,
    mut route: impl FnMut(u8, u8, u8, u8) -> Option<u32>,
) -> Option<u32> {
    if !(1..=4).contains(&dev.interrupt_pin) {
        return None;
    }
    let mut addr = dev.addr;
    let mut pin = dev.interrupt_pin;
    let mut parent = dev.parent_bridge;
    for _ in 0..256 {
        if let Some(gsi) = route(addr.bus(), addr.device(), addr.function(), pin) {
            return Some(gsi);
        }
        let p = parent?;
        pin = swizzle(pin, addr.device());
        let bridge = devices.iter().find(|d| d.addr == p)?;
        addr = p;
        parent = bridge.parent_bridge;
    }
    None
}

/// Read-modify-write of the command register; the status half is written as zero so that
/// its write-one-to-clear error bits survive.
pub fn update_command<C: ConfigSpace + ?Sized>(
    cfg: &C,
    addr: PciAddress,
    f: impl FnOnce(CommandRegister) -> CommandRegister,
) -> CommandRegister {
    let old = CommandRegister::from_bits_retain(cfg.read(addr, reg::COMMAND) as u16);
    let new = f(old);
    if new != old {
        cfg.write(addr, reg::COMMAND, u32::from(new.bits()));
    }
    new
}

#[cfg(test)]
mod tests;
