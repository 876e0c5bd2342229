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
