//! Physical memory: the global frame allocator and the physical-to-virtual translation.

use core::sync::atomic::{AtomicU64, Ordering};

use super::frame::{FRAME_SIZE, FrameBitmap};
use super::layout::PHYS_OFFSET;
use crate::bootinfo::{MemRegion, RegionKind};
use crate::sync::spin::IrqSpinLock;

/// Added to a physical address to reach it: 0 under the boot identity map, then
/// [`PHYS_OFFSET`] once the kernel's own page tables are live.
static OFFSET: AtomicU64 = AtomicU64::new(0);

pub fn phys_to_virt(pa: u64) -> u64 {
    pa + OFFSET.load(Ordering::Relaxed)
}

/// Only valid for addresses in the linear map.
pub fn virt_to_phys(va: u64) -> u64 {
    va - OFFSET.load(Ordering::Relaxed)
}

pub(crate) fn switch_to_linear_map() {
    OFFSET.store(PHYS_OFFSET, Ordering::Relaxed);
}

struct Frames {
    bitmap_phys: u64,
    nwords: usize,
    nframes: usize,
    free: usize,
    hint: usize,
}

static FRAMES: IrqSpinLock<Option<Frames>> = IrqSpinLock::new(None);

/// Borrow the bitmap through the current physical offset.
fn with_bitmap<R>(f: impl FnOnce(&mut FrameBitmap<&mut [u64]>) -> R) -> Option<R> {
    let mut guard = FRAMES.lock();
    let st = guard.as_mut()?;
    let ptr = phys_to_virt(st.bitmap_phys) as *mut u64;
    // SAFETY: the bitmap's frames were reserved for it at init and are only reached with
    // FRAMES held; the pointer is valid through the boot identity map or the linear map.
    let words = unsafe { core::slice::from_raw_parts_mut(ptr, st.nwords) };
    let mut bm = FrameBitmap::from_parts(words, st.nframes, st.free, st.hint);
    let r = f(&mut bm);
    (st.free, st.hint) = bm.state();
    Some(r)
}

/// Seeds the allocator from the memory map; `reserved` lists physical ranges already in use
/// (the kernel image, the boot information, modules). Runs on the boot stub's page tables,
/// so the bitmap is placed below [`crate::arch::BOOT_MAPPED_TOP`] (x86_64: the 1 GiB
/// identity map; aarch64: the linear map of the first 4 GiB of physical space).
pub fn init(regions: &[MemRegion], reserved: &[(u64, u64)]) {
    let limit = crate::arch::BOOT_MAPPED_TOP;
    let top = crate::bootinfo::ram_top(regions);
    let nframes = top.div_ceil(FRAME_SIZE) as usize;
    let nwords = FrameBitmap::<&mut [u64]>::words_for(nframes);
    let bytes = (nwords * 8) as u64;
    // First usable spot at or above 1 MiB, below `limit`, clear of every reserved range.
    let mut place = None;
    for r in regions.iter().filter(|r| r.kind == RegionKind::Usable) {
        let mut s = r.start.max(0x10_0000).next_multiple_of(FRAME_SIZE);
        while s + bytes <= r.end && s + bytes <= limit {
            if let Some(&(_, re)) = reserved.iter().find(|&&(rs, re)| s < re && rs < s + bytes) {
                s = re.next_multiple_of(FRAME_SIZE);
                continue;
            }
            place = Some(s);
            break;
        }
        if place.is_some() {
            break;
        }
    }
    let Some(bitmap_phys) = place else {
        panic!("no room below {limit:#x} for the frame bitmap ({bytes} bytes)");
    };
    let ptr = phys_to_virt(bitmap_phys) as *mut u64;
    // SAFETY: the range is usable RAM below `limit` (mapped by the boot stub, at the
    // current physical offset) that no reserved range overlaps; nothing else references it.
    let words = unsafe { core::slice::from_raw_parts_mut(ptr, nwords) };
    let mut bm = FrameBitmap::new_all_used(words, nframes);
    for r in regions.iter().filter(|r| r.kind == RegionKind::Usable) {
        let first = r.start.div_ceil(FRAME_SIZE) as usize;
        let last = (r.end / FRAME_SIZE) as usize;
        if last > first {
            bm.free_range(first, last - first);
        }
    }
    // Frame 0 and the real-mode area stay reserved (BIOS data, AP trampoline later).
    bm.reserve_range(0, 0x100);
    for &(s, e) in reserved
        .iter()
        .chain(core::iter::once(&(bitmap_phys, bitmap_phys + bytes)))
    {
        let first = (s / FRAME_SIZE) as usize;
        let last = e.div_ceil(FRAME_SIZE) as usize;
        bm.reserve_range(first, last.saturating_sub(first));
    }
    let (free, hint) = bm.state();
    *FRAMES.lock() = Some(Frames {
        bitmap_phys,
        nwords,
        nframes,
        free,
        hint,
    });
}

/// One zeroed frame's physical address.
pub fn alloc_frame() -> Option<u64> {
    let pa = alloc_frame_dirty()?;
    zero(pa, 1);
    Some(pa)
}

/// One frame with whatever its last owner left in it: only for kernel code that overwrites
/// it before anything reads it, or whose allocator promises nothing about its contents
/// (rump's `rumpuser_malloc`, like malloc(3)). User-visible memory always takes
/// [`alloc_frame`].
pub fn alloc_frame_dirty() -> Option<u64> {
    Some(with_bitmap(|b| b.alloc()).flatten()? as u64 * FRAME_SIZE)
}

/// `count` physically contiguous zeroed frames, aligned to `align` bytes (a power of two),
/// ending below `limit` (physical bytes).
pub fn alloc_contig(count: usize, align: u64, limit: u64) -> Option<u64> {
    let pa = alloc_contig_dirty(count, align, limit)?;
    zero(pa, count);
    Some(pa)
}

/// [`alloc_contig`] without the zeroing (see [`alloc_frame_dirty`]).
pub fn alloc_contig_dirty(count: usize, align: u64, limit: u64) -> Option<u64> {
    let align_frames = (align / FRAME_SIZE).max(1) as usize;
    let limit_frames = (limit / FRAME_SIZE) as usize;
    let first = with_bitmap(|b| b.alloc_contig(count, align_frames, limit_frames)).flatten()?;
    Some(first as u64 * FRAME_SIZE)
}

pub fn free_frame(pa: u64) {
    let ok = with_bitmap(|b| b.dealloc((pa / FRAME_SIZE) as usize)).unwrap_or(false);
    if !ok {
        log::error!("frame allocator: double or bogus free of {pa:#x}");
    }
}

pub fn free_contig(pa: u64, count: usize) {
    for i in 0..count as u64 {
        free_frame(pa + i * FRAME_SIZE);
    }
}

/// (free frames, total frames tracked)
pub fn stats() -> (usize, usize) {
    with_bitmap(|b| (b.free_frames(), b.total_frames())).unwrap_or((0, 0))
}

fn zero(pa: u64, count: usize) {
    let va = phys_to_virt(pa) as *mut u8;
    // SAFETY: the frames were just allocated to us and are mapped at `va`.
    unsafe { core::ptr::write_bytes(va, 0, count * FRAME_SIZE as usize) };
}
