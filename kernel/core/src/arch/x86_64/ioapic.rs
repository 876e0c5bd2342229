//! I/O APICs: every redirection entry masked at init, then programmed per GSI by drivers.
//! Also hands out device interrupt vectors (from `idt::VECTOR_DEVICE_FIRST` up to just
//! below the system vectors). A driver does:
//! `let v = alloc_vector()?; idt::register(v, handler); route(gsi, v, apic::id(), level, active_low)?; unmask(gsi);`
//! The IDT dispatcher sends the local APIC EOI after the handler, which (by EOI broadcast)
//! also completes level-triggered interrupts at the I/O APIC.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU8, Ordering};

use super::idt::{VECTOR_DEVICE_FIRST, VECTOR_TIMER};
use crate::mm::mmio::{self, Cache};
use crate::sync::spin::IrqSpinLock;

const REG_ID: u32 = 0x00;
const REG_VER: u32 = 0x01;
const REG_REDTBL: u32 = 0x10;

const MASKED: u32 = 1 << 16;
const LEVEL: u32 = 1 << 15;
const ACTIVE_LOW: u32 = 1 << 13;

/// Highest physical address the MMIO window can map (see `mm::layout`).
const MMIO_WINDOW: u64 = 1 << 44;

/// One I/O APIC as found and mapped.
#[derive(Clone, Copy, Debug)]
pub struct IoApic {
    pub id: u8,
    pub phys: u64,
    pub gsi_base: u32,
    pub pins: u32,
    pub version: u8,
    va: u64,
}

impl IoApic {
    pub fn handles(&self, gsi: u32) -> bool {
        gsi >= self.gsi_base && gsi - self.gsi_base < self.pins
    }

    /// Selects and reads a register. The caller holds `LOCK` (the select/window pair is not atomic).
    fn read(&self, reg: u32) -> u32 {
        // SAFETY: `va` maps this I/O APIC's 32-byte register window uncached (done in
        // `init`); IOREGSEL is at +0 and IOWIN at +0x10.
        unsafe {
            core::ptr::write_volatile(self.va as *mut u32, reg);
            core::ptr::read_volatile((self.va + 0x10) as *const u32)
        }
    }

    fn write(&self, reg: u32, val: u32) {
        // SAFETY: as in `read`.
        unsafe {
            core::ptr::write_volatile(self.va as *mut u32, reg);
            core::ptr::write_volatile((self.va + 0x10) as *mut u32, val);
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoApicError {
    /// No I/O APIC handles this GSI.
    NoSuchGsi(u32),
    /// Physical destination mode reaches APIC ids 0-254 only (no interrupt remapping).
    DestinationTooLarge(u32),
    /// Vectors below 0x20 are exceptions.
    BadVector(u8),
}

impl core::fmt::Display for IoApicError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            IoApicError::NoSuchGsi(g) => write!(f, "no I/O APIC handles GSI {g}"),
            IoApicError::DestinationTooLarge(d) => {
                write!(f, "APIC id {d} cannot be an I/O APIC destination")
            }
            IoApicError::BadVector(v) => write!(f, "vector {v:#x} is reserved for exceptions"),
        }
    }
}

static IOAPICS: spin::Once<Vec<IoApic>> = spin::Once::new();
/// Serialises every IOREGSEL/IOWIN pair, across CPUs and against interrupt handlers.
static LOCK: IrqSpinLock<()> = IrqSpinLock::new(());
static NEXT_VECTOR: AtomicU8 = AtomicU8::new(VECTOR_DEVICE_FIRST);

/// Maps each I/O APIC (`(id, physical address, GSI base)` from the MADT), reads its pin
/// count and masks every redirection entry. Runs once; later calls return the first result.
pub fn init(found: &[(u8, u64, u32)]) -> &'static [IoApic] {
    IOAPICS.call_once(|| {
        let mut v = Vec::new();
        for &(id, phys, gsi_base) in found {
            if phys == 0 || phys.saturating_add(0x20) > MMIO_WINDOW {
                log::warn!("ioapic: id {id} at {phys:#x} is outside the MMIO window; ignored");
                continue;
            }
            let va = match mmio::map(phys, 0x20, Cache::Uncached) {
                Ok(va) => va,
                Err(e) => {
                    log::warn!("ioapic: cannot map id {id} at {phys:#x}: {e:?}; ignored");
                    continue;
                }
            };
            let mut io = IoApic {
                id,
                phys,
                gsi_base,
                pins: 0,
                version: 0,
                va,
            };
            let _g = LOCK.lock();
            let ver = io.read(REG_VER);
            if ver == u32::MAX {
                log::warn!("ioapic: id {id} at {phys:#x} reads all-ones (absent); ignored");
                continue;
            }
            io.version = ver as u8;
            io.pins = ((ver >> 16) & 0xff) + 1;
            let hw_id = (io.read(REG_ID) >> 24) & 0xf;
            if hw_id != u32::from(id) & 0xf {
                log::debug!("ioapic: MADT id {id} but the register says {hw_id}");
            }
            for pin in 0..io.pins {
                io.write(REG_REDTBL + 2 * pin, MASKED);
                io.write(REG_REDTBL + 2 * pin + 1, 0);
            }
            v.push(io);
        }
        v
    })
}

/// Every I/O APIC in use (empty before `init` or when the MADT lists none).
pub fn all() -> &'static [IoApic] {
    IOAPICS.get().map(|v| v.as_slice()).unwrap_or(&[])
}

fn find(gsi: u32) -> Result<(&'static IoApic, u32), IoApicError> {
    all()
        .iter()
        .find(|io| io.handles(gsi))
        .map(|io| (io, gsi - io.gsi_base))
        .ok_or(IoApicError::NoSuchGsi(gsi))
}

/// Programs `gsi` to deliver `vector` to the CPU with local APIC id `dest_apic_id` (fixed
/// delivery, physical destination). The entry is left MASKED: register the handler, then
/// call [`unmask`].
pub fn route(
    gsi: u32,
    vector: u8,
    dest_apic_id: u32,
    level: bool,
    active_low: bool,
) -> Result<(), IoApicError> {
    if vector < 0x20 {
        return Err(IoApicError::BadVector(vector));
    }
    if dest_apic_id > 0xfe {
        return Err(IoApicError::DestinationTooLarge(dest_apic_id));
    }
    let (io, pin) = find(gsi)?;
    let mut low = MASKED | u32::from(vector);
    if level {
        low |= LEVEL;
    }
    if active_low {
        low |= ACTIVE_LOW;
    }
    let _g = LOCK.lock();
    io.write(REG_REDTBL + 2 * pin, MASKED);
    io.write(REG_REDTBL + 2 * pin + 1, dest_apic_id << 24);
    io.write(REG_REDTBL + 2 * pin, low);
    Ok(())
}

fn set_mask(gsi: u32, masked: bool) -> Result<(), IoApicError> {
    let (io, pin) = find(gsi)?;
    let _g = LOCK.lock();
    let low = io.read(REG_REDTBL + 2 * pin);
    io.write(
        REG_REDTBL + 2 * pin,
        if masked { low | MASKED } else { low & !MASKED },
    );
    Ok(())
}

pub fn mask(gsi: u32) -> Result<(), IoApicError> {
    set_mask(gsi, true)
}

pub fn unmask(gsi: u32) -> Result<(), IoApicError> {
    set_mask(gsi, false)
}

/// The raw redirection entry of `gsi` (for tests and diagnostics).
pub fn entry(gsi: u32) -> Option<u64> {
    let (io, pin) = find(gsi).ok()?;
    let _g = LOCK.lock();
    let low = io.read(REG_REDTBL + 2 * pin);
    let high = io.read(REG_REDTBL + 2 * pin + 1);
    Some((u64::from(high) << 32) | u64::from(low))
}

/// A fresh device vector, or `None` once the device range (up to the system vectors at
/// 0xF0) is used up. Vectors are never returned; a driver allocates one per interrupt source.
pub fn alloc_vector() -> Option<u8> {
    NEXT_VECTOR
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
            (v < VECTOR_TIMER).then_some(v + 1)
        })
        .ok()
}
