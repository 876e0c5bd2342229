//! Spinlocks that keep interrupts off while held, so a lock taken by both a thread and an
//! interrupt handler on the same CPU can never deadlock, and a holder is never preempted.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, Ordering};

use crate::arch::irq;

/// A spinlock whose guard disables interrupts on the local CPU for as long as it lives.
pub struct IrqSpinLock<T: ?Sized> {
    locked: AtomicBool,
    data: UnsafeCell<T>,
}

// SAFETY: the lock serialises every access to `data`.
unsafe impl<T: ?Sized + Send> Sync for IrqSpinLock<T> {}
// SAFETY: moving the lock moves the data; `T: Send` suffices.
unsafe impl<T: ?Sized + Send> Send for IrqSpinLock<T> {}

pub struct IrqSpinGuard<'a, T: ?Sized> {
    lock: &'a IrqSpinLock<T>,
    irq_was_enabled: bool,
}

impl<T> IrqSpinLock<T> {
    pub const fn new(value: T) -> Self {
        Self {
            locked: AtomicBool::new(false),
            data: UnsafeCell::new(value),
        }
    }
}

impl<T: ?Sized> IrqSpinLock<T> {
    pub fn lock(&self) -> IrqSpinGuard<'_, T> {
        let irq_was_enabled = irq::save_and_disable();
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            while self.locked.load(Ordering::Relaxed) {
                core::hint::spin_loop();
                service_ipis();
            }
        }
        IrqSpinGuard {
            lock: self,
            irq_was_enabled,
        }
    }

    pub fn try_lock(&self) -> Option<IrqSpinGuard<'_, T>> {
        let irq_was_enabled = irq::save_and_disable();
        if self
            .locked
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            Some(IrqSpinGuard {
                lock: self,
                irq_was_enabled,
            })
        } else {
            irq::restore(irq_was_enabled);
            None
        }
    }

    pub fn is_locked(&self) -> bool {
        self.locked.load(Ordering::Relaxed)
    }

    /// Releases a lock whose guard was leaked with [`IrqSpinGuard::leak`] (the scheduler does
    /// this to hold its run-queue lock across a context switch).
    ///
    /// # Safety
    /// The lock must be held by this CPU through a leaked guard, and nothing may use that guard.
    pub unsafe fn force_unlock(&self) {
        self.locked.store(false, Ordering::Release);
    }

    /// Raw access for code that holds the lock through a leaked guard.
    pub fn data_ptr(&self) -> *mut T {
        self.data.get()
    }
}

impl<'a, T: ?Sized> IrqSpinGuard<'a, T> {
    /// Forgets the guard without unlocking or re-enabling interrupts; returns whether
    /// interrupts were enabled before the lock was taken.
    pub fn leak(self) -> bool {
        let was = self.irq_was_enabled;
        core::mem::forget(self);
        was
    }
}

impl<T: ?Sized> Deref for IrqSpinGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves we hold the lock.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for IrqSpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves we hold the lock exclusively.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for IrqSpinGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
        irq::restore(self.irq_was_enabled);
    }
}

/// A raw interrupt-disabling spinlock for `lock_api` users (the `talc` heap).
pub struct RawIrqSpin {
    locked: AtomicBool,
    irq_was_enabled: AtomicBool,
}

// SAFETY: `lock` only returns once this CPU set `locked` from false to true (Acquire), and
// `unlock` clears it (Release), so the lock provides mutual exclusion.
unsafe impl talc::lock_api::RawMutex for RawIrqSpin {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Self = Self {
        locked: AtomicBool::new(false),
        irq_was_enabled: AtomicBool::new(false),
    };
    type GuardMarker = talc::lock_api::GuardNoSend;

    fn lock(&self) {
        let was = irq::save_and_disable();
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            core::hint::spin_loop();
            service_ipis();
        }
        self.irq_was_enabled.store(was, Ordering::Relaxed);
    }

    fn try_lock(&self) -> bool {
        let was = irq::save_and_disable();
        if self
            .locked
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            self.irq_was_enabled.store(was, Ordering::Relaxed);
            true
        } else {
            irq::restore(was);
            false
        }
    }

    unsafe fn unlock(&self) {
        let was = self.irq_was_enabled.load(Ordering::Relaxed);
        self.locked.store(false, Ordering::Release);
        irq::restore(was);
    }
}

/// While spinning with interrupts off, keep answering TLB shootdown requests (see
/// `arch::tlb`): the lock holder may be waiting for exactly that.
#[inline]
fn service_ipis() {
    #[cfg(target_os = "none")]
    crate::arch::tlb::service();
}
