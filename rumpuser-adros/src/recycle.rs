//! Reuse of the lock objects `rumpuser_{mutex,rw,cv}_init` hand out.
//!
//! NetBSD creates and destroys them at a high rate — every vnode it loads or recycles has
//! several — and each is a cache-line-aligned allocation (`RUMPUSER_LOCKALIGN`), for which
//! a general-purpose allocator takes its slow aligned path (measured on the std host:
//! `posix_memalign` + `free` of lock objects were ~10 % of the CPU time of a rump `stat`
//! loop over 10,000 files). Destroyed objects are kept, up to `KEEP` per type, and the
//! next `init` reuses one.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::alloc::Layout;

/// The most free objects kept per type (at 64–128 bytes each: a few hundred KiB at most).
const KEEP: usize = 4096;

/// Freed objects of one type, for reuse.
pub struct Recycler<T> {
    /// Addresses of dropped, still allocated `T`s (from `Box<T>`).
    free: spin::Mutex<Vec<usize>>,
    _t: core::marker::PhantomData<fn(T) -> T>,
}

impl<T> Default for Recycler<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Recycler<T> {
    pub const fn new() -> Self {
        Recycler {
            free: spin::Mutex::new(Vec::new()),
            _t: core::marker::PhantomData,
        }
    }

    /// A heap object holding `v`: a recycled one if there is one. Free it with
    /// [`Recycler::destroy`] (or as a `Box<T>`).
    pub fn make(&self, v: T) -> *mut T {
        let reuse = self.free.lock().pop();
        match reuse {
            Some(a) => {
                let p = a as *mut T;
                // SAFETY: `a` is the address of a `Box<T>` allocation whose value was dropped
                // in `destroy` and which nobody else references; writing initializes it.
                unsafe { p.write(v) };
                p
            }
            None => Box::into_raw(Box::new(v)),
        }
    }

    /// Drops the object and keeps its memory for [`Recycler::make`] (or frees it).
    ///
    /// # Safety
    /// `p` came from `make` (or `Box::into_raw`) of this `T`, is not used afterwards, and is
    /// destroyed once.
    pub unsafe fn destroy(&self, p: *mut T) {
        // SAFETY: the caller's contract: `p` is a live, exclusively owned `T`.
        unsafe { core::ptr::drop_in_place(p) };
        {
            let mut free = self.free.lock();
            if free.len() < KEEP {
                free.push(p as usize);
                return;
            }
        }
        if core::mem::size_of::<T>() != 0 {
            // SAFETY: `p` is a `Box<T>` allocation (layout of `T`) whose value was dropped.
            unsafe { alloc::alloc::dealloc(p.cast(), Layout::new::<T>()) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::sync::Arc;

    #[test]
    fn reuses_and_drops() {
        let r: Recycler<Arc<u32>> = Recycler::new();
        let a = Arc::new(7);
        let p = r.make(a.clone());
        assert_eq!(Arc::strong_count(&a), 2);
        // SAFETY: p came from make and is destroyed once.
        unsafe { r.destroy(p) };
        assert_eq!(Arc::strong_count(&a), 1, "destroy drops the value");
        let q = r.make(Arc::new(8));
        assert_eq!(p, q, "the freed object is reused");
        // SAFETY: q is live and was made by r.
        assert_eq!(**unsafe { &*q }, 8);
        // SAFETY: as above.
        unsafe { r.destroy(q) };
    }
}
