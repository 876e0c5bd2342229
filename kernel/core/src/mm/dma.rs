//! DMA memory: physically contiguous, naturally aligned blocks below 4 GiB (32-bit devices
//! such as EHCI), reached through the linear map so virtual = physical + PHYS_OFFSET.

use super::frame::FRAME_SIZE;
use super::phys::{self, phys_to_virt};

/// An owned DMA block, freed on drop.
pub struct DmaBuffer {
    phys: u64,
    frames: usize,
}

impl DmaBuffer {
    /// `size` bytes (rounded up to pages), aligned to `align` (rounded up to a power of two,
    /// at least a page), entirely below `limit`.
    pub fn alloc(size: usize, align: usize, limit: u64) -> Option<Self> {
        let frames = (size as u64).div_ceil(FRAME_SIZE).max(1) as usize;
        let align = (align.max(FRAME_SIZE as usize)).next_power_of_two() as u64;
        let phys = phys::alloc_contig(frames, align, limit)?;
        Some(Self { phys, frames })
    }

    /// Below 4 GiB, aligned to its own size rounded to a power of two.
    pub fn alloc32(size: usize) -> Option<Self> {
        Self::alloc(size, size.next_power_of_two(), 1 << 32)
    }

    pub fn phys(&self) -> u64 {
        self.phys
    }

    pub fn virt(&self) -> u64 {
        phys_to_virt(self.phys)
    }

    pub fn len(&self) -> usize {
        self.frames * FRAME_SIZE as usize
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: the frames are ours alone and mapped at `virt()` for `len()` bytes.
        unsafe { core::slice::from_raw_parts_mut(self.virt() as *mut u8, self.len()) }
    }

    /// Gives up ownership (for FFI users that free with [`free_raw`]).
    pub fn into_raw(self) -> (u64, usize) {
        let r = (self.phys, self.frames);
        core::mem::forget(self);
        r
    }
}

/// Frees a block obtained from [`DmaBuffer::into_raw`].
pub fn free_raw(phys: u64, frames: usize) {
    phys::free_contig(phys, frames);
}

impl Drop for DmaBuffer {
    fn drop(&mut self) {
        phys::free_contig(self.phys, self.frames);
    }
}
