//! Device memory and firmware tables, mapped on demand at MMIO_OFFSET + physical.

use super::layout::MMIO_OFFSET;
use super::paging::{self, Flags, MapError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cache {
    /// Device registers: uncached, no speculation.
    Uncached,
    /// Firmware tables in non-RAM regions: ordinary write-back.
    WriteBack,
}

/// Maps `[pa, pa + len)` and returns the virtual address of `pa`. Pages already mapped
/// (by an earlier call) are reused, so mapping the same registers twice is harmless.
pub fn map(pa: u64, len: u64, cache: Cache) -> Result<u64, MapError> {
    let first = pa & !0xfff;
    let end = (pa + len.max(1) + 0xfff) & !0xfff;
    let mut flags = Flags::PRESENT | Flags::WRITABLE | Flags::NO_EXECUTE | Flags::GLOBAL;
    if cache == Cache::Uncached {
        flags |= Flags::NO_CACHE | Flags::WRITE_THROUGH;
    }
    let mut p = first;
    while p < end {
        match paging::map(MMIO_OFFSET + p, p, flags) {
            Ok(()) | Err(MapError::AlreadyMapped) => {}
            Err(e) => return Err(e),
        }
        p += 4096;
    }
    Ok(MMIO_OFFSET + pa)
}

/// A window of device registers mapped for good, with bounds-checked volatile access: what
/// the layers above the core use instead of raw pointers (PCI BARs, ECAM configuration space).
#[derive(Clone, Copy, Debug)]
pub struct Regs {
    base: u64,
    len: u64,
}

impl Regs {
    /// Maps `[pa, pa + len)` uncached (mapping the same registers twice is harmless).
    pub fn map(pa: u64, len: u64) -> Result<Self, MapError> {
        Ok(Self {
            base: map(pa, len, Cache::Uncached)?,
            len,
        })
    }

    /// Virtual address of the first register (for logs and for DMA engines that are handed
    /// the address by a driver crate's own `Hal`).
    pub fn base(&self) -> u64 {
        self.base
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The address of an aligned access of `width` bytes at `offset`, inside the window; a
    /// driver bug (an access outside) panics with what was asked, rather than touching
    /// whatever lies beyond.
    fn check(&self, offset: u64, width: u64) -> u64 {
        assert!(
            offset.is_multiple_of(width)
                && offset.checked_add(width).is_some_and(|e| e <= self.len),
            "register access at {offset:#x} (+{width}) outside {:#x} bytes",
            self.len
        );
        self.base + offset
    }
}

macro_rules! regs_access {
    ($($read:ident $write:ident $t:ty),*) => {$(
        impl Regs {
            pub fn $read(&self, offset: u64) -> $t {
                let va = self.check(offset, core::mem::size_of::<$t>() as u64);
                // SAFETY: `check` keeps the aligned access inside the window, which `map`
                // mapped uncached and which is never unmapped; it is device memory, not
                // memory the Rust program uses.
                unsafe { core::ptr::read_volatile(va as *const $t) }
            }

            pub fn $write(&self, offset: u64, value: $t) {
                let va = self.check(offset, core::mem::size_of::<$t>() as u64);
                // SAFETY: as for the read; the write reaches only the device.
                unsafe { core::ptr::write_volatile(va as *mut $t, value) }
            }
        }
    )*};
}

regs_access!(read8 write8 u8, read16 write16 u16, read32 write32 u32, read64 write64 u64);
