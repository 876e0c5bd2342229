//! Hardware access on behalf of `crate::acpi`: the fixed ACPI registers the FADT names
//! (PM1 control for power off; I/O ports or memory), and PCI configuration reads used to
//! identify the chipset and its interrupt-link registers (ECAM when there is an MCFG,
//! configuration mechanism #1 otherwise).

use x86_64::instructions::port::Port;

use crate::mm::mmio::{self, Cache};
use crate::sync::spin::IrqSpinLock;

const MMIO_WINDOW: u64 = 1 << 44;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Space {
    Io,
    Memory,
}

/// A fixed-hardware register (from an ACPI generic address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Register {
    pub space: Space,
    pub address: u64,
    /// Access width in bits: 8, 16 or 32.
    pub bits: u8,
}

impl Register {
    /// Checks what the FADT said: a width we can access and an address in range.
    pub fn new(space: Space, address: u64, bits: u8) -> Option<Self> {
        let bits = match bits {
            8 | 16 | 32 => bits,
            0 => 16, // PM1 control blocks are 16 bits; some tables leave the width 0
            _ => return None,
        };
        let ok = match space {
            Space::Io => address != 0 && address + u64::from(bits / 8) <= 0x1_0000,
            Space::Memory => {
                address != 0 && address.is_multiple_of(u64::from(bits / 8)) && address < MMIO_WINDOW
            }
        };
        ok.then_some(Self {
            space,
            address,
            bits,
        })
    }
}

fn mem_va(r: &Register) -> Option<u64> {
    mmio::map(r.address, u64::from(r.bits / 8), Cache::Uncached).ok()
}

/// Reads a fixed ACPI register.
///
/// # Safety
/// `r` must be a register the firmware declared for this purpose (FADT): reads of
/// arbitrary ports or device memory can have side effects.
pub unsafe fn read(r: &Register) -> Option<u32> {
    match r.space {
        Space::Io => {
            let port = r.address as u16;
            // SAFETY: the caller guarantees the port is a firmware-declared ACPI register.
            Some(unsafe {
                match r.bits {
                    8 => u32::from(Port::<u8>::new(port).read()),
                    16 => u32::from(Port::<u16>::new(port).read()),
                    _ => Port::<u32>::new(port).read(),
                }
            })
        }
        Space::Memory => {
            let va = mem_va(r)?;
            // SAFETY: `va` maps the register uncached and is aligned to its width (checked in
            // `Register::new`); the caller guarantees it is a firmware-declared register.
            Some(unsafe {
                match r.bits {
                    8 => u32::from(core::ptr::read_volatile(va as *const u8)),
                    16 => u32::from(core::ptr::read_volatile(va as *const u16)),
                    _ => core::ptr::read_volatile(va as *const u32),
                }
            })
        }
    }
}

/// Writes a fixed ACPI register.
///
/// # Safety
/// As for [`read`]; writes to PM1 control can power the machine off, which is the point.
pub unsafe fn write(r: &Register, val: u32) -> bool {
    match r.space {
        Space::Io => {
            let port = r.address as u16;
            // SAFETY: the caller guarantees the port is a firmware-declared ACPI register.
            unsafe {
                match r.bits {
                    8 => Port::<u8>::new(port).write(val as u8),
                    16 => Port::<u16>::new(port).write(val as u16),
                    _ => Port::<u32>::new(port).write(val),
                }
            }
            true
        }
        Space::Memory => {
            let Some(va) = mem_va(r) else { return false };
            // SAFETY: as in `read`.
            unsafe {
                match r.bits {
                    8 => core::ptr::write_volatile(va as *mut u8, val as u8),
                    16 => core::ptr::write_volatile(va as *mut u16, val as u16),
                    _ => core::ptr::write_volatile(va as *mut u32, val),
                }
            }
            true
        }
    }
}

/// Mechanism #1 uses the 0xCF8/0xCFC pair, which must not interleave between CPUs.
static CF8: IrqSpinLock<()> = IrqSpinLock::new(());

/// Reads a 32-bit PCI configuration register. `ecam` is the MCFG window covering `bus`
/// (physical base of its bus `bus_start`), or `None` to use I/O ports 0xCF8/0xCFC.
/// `None` for out-of-range input.
pub fn pci_config_read32(
    ecam: Option<(u64, u8)>,
    bus: u8,
    dev: u8,
    func: u8,
    offset: u16,
) -> Option<u32> {
    if dev > 31 || func > 7 || offset > 0xffc || !offset.is_multiple_of(4) {
        return None;
    }
    match ecam {
        Some((base, bus_start)) => {
            let rel = u64::from(bus.checked_sub(bus_start)?);
            let pa =
                base.checked_add((rel << 20) | (u64::from(dev) << 15) | (u64::from(func) << 12))?;
            if pa.saturating_add(0x1000) > MMIO_WINDOW {
                return None;
            }
            let va = mmio::map(pa, 0x1000, Cache::Uncached).ok()?;
            // SAFETY: `va` maps this function's 4 KiB ECAM page uncached; `offset` is inside it
            // and aligned. Configuration reads have no side effects.
            Some(unsafe { core::ptr::read_volatile((va + u64::from(offset)) as *const u32) })
        }
        None => {
            if offset > 0xfc {
                return None;
            }
            let addr = 0x8000_0000
                | (u32::from(bus) << 16)
                | (u32::from(dev) << 11)
                | (u32::from(func) << 8)
                | u32::from(offset);
            let _g = CF8.lock();
            // SAFETY: 0xCF8/0xCFC are the PCI configuration mechanism #1 ports on every PC
            // chipset; CF8 keeps the address/data pair together.
            Some(unsafe {
                Port::<u32>::new(0xCF8).write(addr);
                Port::<u32>::new(0xCFC).read()
            })
        }
    }
}
