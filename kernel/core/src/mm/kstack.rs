//! Kernel stacks: each lives in its own 256 KiB slot of the stack region, with the pages
//! below it left unmapped, so an overflow faults (and the double-fault handler, on its own
//! IST stack, reports it) instead of corrupting a neighbour.

use alloc::vec::Vec;

use super::layout::{KSTACK_BASE, KSTACK_SLOT, KSTACK_SLOTS};
use super::paging::{self, Flags};
use super::phys;
use crate::sync::spin::IrqSpinLock;

struct Slots {
    next: u64,
    /// Freed stacks, still mapped: (slot, pages). Reusing them needs no page-table change,
    /// so freeing a stack never requires a TLB shootdown (it often happens with interrupts
    /// off, in the scheduler, right after switching away from a dead thread).
    cached: Vec<(u64, usize)>,
}

static SLOTS: IrqSpinLock<Slots> = IrqSpinLock::new(Slots {
    next: 0,
    cached: Vec::new(),
});

pub const DEFAULT_STACK: usize = 64 << 10;

pub struct KernelStack {
    slot: u64,
    pages: usize,
}

impl KernelStack {
    /// `size` bytes of stack (at most a slot minus its guard page).
    pub fn new(size: usize) -> Option<Self> {
        let pages = size
            .div_ceil(4096)
            .clamp(1, (KSTACK_SLOT / 4096 - 1) as usize);
        let slot = {
            let mut s = SLOTS.lock();
            if let Some(i) = s.cached.iter().position(|&(_, p)| p == pages) {
                let (slot, pages) = s.cached.swap_remove(i);
                return Some(Self { slot, pages });
            }
            if s.next >= KSTACK_SLOTS {
                return None;
            }
            s.next += 1;
            s.next - 1
        };
        let stack = Self { slot, pages: 0 };
        let mut stack = stack;
        let top = stack.top();
        for i in 0..pages as u64 {
            let va = top - (i + 1) * 4096;
            let pa = phys::alloc_frame()?;
            if paging::map(
                va,
                pa,
                Flags::PRESENT | Flags::WRITABLE | Flags::NO_EXECUTE | Flags::GLOBAL,
            )
            .is_err()
            {
                phys::free_frame(pa);
                return None;
            }
            stack.pages += 1;
        }
        Some(stack)
    }

    /// The address just above the stack (initial stack pointer).
    pub fn top(&self) -> u64 {
        KSTACK_BASE + (self.slot + 1) * KSTACK_SLOT
    }

    /// Lowest mapped address; the page below it is the guard.
    pub fn bottom(&self) -> u64 {
        self.top() - self.pages as u64 * 4096
    }

    pub fn guard_page(&self) -> u64 {
        self.bottom() - 4096
    }
}

impl Drop for KernelStack {
    fn drop(&mut self) {
        SLOTS.lock().cached.push((self.slot, self.pages));
    }
}

/// (stacks handed out ever, stacks cached for reuse)
pub fn stats() -> (u64, usize) {
    let s = SLOTS.lock();
    (s.next, s.cached.len())
}
