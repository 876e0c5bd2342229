//! The kernel heap: `talc` over a virtual range that grows on demand, page by page, from the
//! frame allocator.

use core::alloc::Layout;
use core::ptr::NonNull;

use talc::base::Talc;
use talc::base::binning::Binning;
use talc::source::Source;

use super::layout::{HEAP_BASE, HEAP_MAX};
use super::paging::{self, Flags};
use super::phys;
use crate::sync::spin::RawIrqSpin;

/// Grows the heap by mapping fresh frames at its end.
#[derive(Debug)]
pub struct GrowingHeap {
    /// Mapped bytes from HEAP_BASE.
    mapped: u64,
    /// Talc's current heap end, once claimed.
    end: Option<NonNull<u8>>,
}

// SAFETY: the heap's state is only touched under the TalcLock.
unsafe impl Send for GrowingHeap {}

const GROW_MIN: u64 = 1 << 20;

fn map_more(from: u64, bytes: u64) -> bool {
    let mut va = from;
    while va < from + bytes {
        let Some(pa) = phys::alloc_frame() else {
            return false;
        };
        let flags = Flags::PRESENT | Flags::WRITABLE | Flags::NO_EXECUTE | Flags::GLOBAL;
        if paging::map(HEAP_BASE + va, pa, flags).is_err() {
            phys::free_frame(pa);
            return false;
        }
        va += 4096;
    }
    true
}

// SAFETY: `acquire` only maps pages and calls claim/extend on the Talc it is given; it never
// allocates from the heap (paging and the frame allocator do not allocate).
unsafe impl Source for GrowingHeap {
    fn acquire<B: Binning>(talc: &mut Talc<Self, B>, layout: Layout) -> Result<(), ()> {
        let want = ((layout.size() + layout.align()) as u64 * 2 + 4096)
            .max(GROW_MIN)
            .next_multiple_of(4096);
        let old = talc.source.mapped;
        if old + want > HEAP_MAX || !map_more(old, want) {
            return Err(());
        }
        talc.source.mapped = old + want;
        let base = HEAP_BASE as *mut u8;
        let new_end = (HEAP_BASE + old + want) as *mut u8;
        // SAFETY: HEAP_BASE..HEAP_BASE+mapped is mapped, writable and owned by this heap only.
        unsafe {
            talc.source.end = match talc.source.end {
                None => talc.claim(base, want as usize),
                Some(end) => Some(talc.extend(end, new_end)),
            };
        }
        if talc.source.end.is_some() {
            Ok(())
        } else {
            Err(())
        }
    }
}

#[global_allocator]
static HEAP: talc::TalcLock<RawIrqSpin, GrowingHeap> = talc::TalcLock::new(GrowingHeap {
    mapped: 0,
    end: None,
});

/// Bytes mapped for the heap and bytes currently allocated from it.
pub fn stats() -> (u64, usize) {
    let t = HEAP.lock();
    (t.source.mapped, t.counters().allocated_bytes)
}

/// Number of live allocations.
pub fn live_allocations() -> usize {
    HEAP.lock().counters().allocation_count
}
