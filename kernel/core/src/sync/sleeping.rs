//! Sleeping locks. A contended `lock` blocks the thread (the CPU runs others) instead of
//! spinning; all are safe under preemption and across CPUs.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use super::spin::IrqSpinLock;
use crate::sched::wait::WaitQueue;
use crate::sched::{self, current};

pub struct Mutex<T: ?Sized> {
    locked: AtomicBool,
    owner: AtomicU64,
    /// Threads in [`Mutex::lock`]'s slow path. An unlock wakes the queue only when this is
    /// non-zero, so an uncontended unlock takes no spin lock. The locker counts itself
    /// before it tries the lock again, the unlocker frees the lock before it reads the
    /// count (all SeqCst): one of them sees the other.
    contenders: AtomicUsize,
    waiters: WaitQueue,
    data: UnsafeCell<T>,
}

// SAFETY: the lock serialises access to `data`.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}
// SAFETY: moving the mutex moves its data.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}

pub struct MutexGuard<'a, T: ?Sized> {
    m: &'a Mutex<T>,
}

impl<T> Mutex<T> {
    pub const fn new(v: T) -> Self {
        Self {
            locked: AtomicBool::new(false),
            owner: AtomicU64::new(0),
            contenders: AtomicUsize::new(0),
            waiters: WaitQueue::new(),
            data: UnsafeCell::new(v),
        }
    }
}

impl<T: ?Sized> Mutex<T> {
    fn try_acquire(&self) -> bool {
        if self
            .locked
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            self.owner.store(current().id, Ordering::Relaxed);
            true
        } else {
            false
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, T> {
        if !self.try_acquire() {
            self.contenders.fetch_add(1, Ordering::SeqCst);
            self.waiters.wait_until(|| self.try_acquire(), None);
            self.contenders.fetch_sub(1, Ordering::SeqCst);
        }
        MutexGuard { m: self }
    }

    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.try_acquire().then_some(MutexGuard { m: self })
    }

    /// Id of the owning thread, 0 when free.
    pub fn owner(&self) -> u64 {
        if self.locked.load(Ordering::Relaxed) {
            self.owner.load(Ordering::Relaxed)
        } else {
            0
        }
    }

    pub fn is_locked(&self) -> bool {
        self.locked.load(Ordering::Relaxed)
    }

    fn release(&self) {
        self.owner.store(0, Ordering::Relaxed);
        self.locked.store(false, Ordering::SeqCst);
        if self.contenders.load(Ordering::SeqCst) != 0 {
            self.waiters.wake_one();
        }
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves ownership.
        unsafe { &*self.m.data.get() }
    }
}
impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves exclusive ownership.
        unsafe { &mut *self.m.data.get() }
    }
}
impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.m.release();
    }
}

/// A condition variable for [`Mutex`].
pub struct Condvar {
    waiters: WaitQueue,
}

impl Default for Condvar {
    fn default() -> Self {
        Self::new()
    }
}

impl Condvar {
    pub const fn new() -> Self {
        Self {
            waiters: WaitQueue::new(),
        }
    }

    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.wait_deadline(guard, None).0
    }

    /// Waits for a signal or until `deadline` (monotonic ns). The bool is true on timeout.
    pub fn wait_deadline<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Option<u64>,
    ) -> (MutexGuard<'a, T>, bool) {
        let m = guard.m;
        // Enqueue before releasing the mutex: a signaller must take the mutex to change the
        // predicate, so it cannot signal between our release and our sleep unseen.
        let (me, sgen) = self.waiters.prepare_wait();
        drop(guard);
        sched::block(deadline, sgen);
        let signalled = !self.waiters.remove(&me);
        let timed_out = !signalled && deadline.is_some_and(|d| crate::time::now_ns() >= d);
        (m.lock(), timed_out)
    }

    /// Relative timeout in nanoseconds.
    pub fn wait_timeout<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        ns: u64,
    ) -> (MutexGuard<'a, T>, bool) {
        self.wait_deadline(guard, Some(crate::time::now_ns() + ns))
    }

    pub fn notify_one(&self) -> bool {
        self.waiters.wake_one()
    }

    pub fn notify_all(&self) -> usize {
        self.waiters.wake_all()
    }

    pub fn has_waiters(&self) -> bool {
        self.waiters.has_waiters()
    }
}

/// A writer-preferring reader-writer lock.
pub struct RwLock<T: ?Sized> {
    state: IrqSpinLock<RwState>,
    waiters: WaitQueue,
    data: UnsafeCell<T>,
}

#[derive(Default)]
struct RwState {
    readers: usize,
    writer: bool,
    writers_waiting: usize,
}

// SAFETY: the lock state serialises writers against everyone.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}
// SAFETY: moving the lock moves its data.
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}

pub struct RwLockReadGuard<'a, T: ?Sized> {
    l: &'a RwLock<T>,
}
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    l: &'a RwLock<T>,
}

impl<T> RwLock<T> {
    pub const fn new(v: T) -> Self {
        Self {
            state: IrqSpinLock::new(RwState {
                readers: 0,
                writer: false,
                writers_waiting: 0,
            }),
            waiters: WaitQueue::new(),
            data: UnsafeCell::new(v),
        }
    }
}

impl<T: ?Sized> RwLock<T> {
    fn try_read_inner(&self) -> bool {
        let mut s = self.state.lock();
        if !s.writer && s.writers_waiting == 0 {
            s.readers += 1;
            true
        } else {
            false
        }
    }

    fn try_write_inner(&self) -> bool {
        let mut s = self.state.lock();
        if !s.writer && s.readers == 0 {
            s.writer = true;
            true
        } else {
            false
        }
    }

    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        if !self.try_read_inner() {
            self.waiters.wait_until(|| self.try_read_inner(), None);
        }
        RwLockReadGuard { l: self }
    }

    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        if !self.try_write_inner() {
            self.state.lock().writers_waiting += 1;
            self.waiters.wait_until(|| self.try_write_inner(), None);
            self.state.lock().writers_waiting -= 1;
        }
        RwLockWriteGuard { l: self }
    }

    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        self.try_read_inner().then_some(RwLockReadGuard { l: self })
    }

    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        self.try_write_inner()
            .then_some(RwLockWriteGuard { l: self })
    }

    /// (readers, writer held)
    pub fn held(&self) -> (usize, bool) {
        let s = self.state.lock();
        (s.readers, s.writer)
    }
}

impl<'a, T: ?Sized> RwLockReadGuard<'a, T> {
    /// Upgrades if this is the only reader; otherwise gives the read guard back.
    pub fn try_upgrade(self) -> Result<RwLockWriteGuard<'a, T>, Self> {
        let l = self.l;
        let mut s = l.state.lock();
        if s.readers == 1 && !s.writer {
            s.readers = 0;
            s.writer = true;
            drop(s);
            core::mem::forget(self);
            Ok(RwLockWriteGuard { l })
        } else {
            drop(s);
            Err(self)
        }
    }
}

impl<'a, T: ?Sized> RwLockWriteGuard<'a, T> {
    pub fn downgrade(self) -> RwLockReadGuard<'a, T> {
        let l = self.l;
        {
            let mut s = l.state.lock();
            s.writer = false;
            s.readers += 1;
        }
        core::mem::forget(self);
        l.waiters.wake_all();
        RwLockReadGuard { l }
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: readers exclude writers.
        unsafe { &*self.l.data.get() }
    }
}
impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the writer is exclusive.
        unsafe { &*self.l.data.get() }
    }
}
impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the writer is exclusive.
        unsafe { &mut *self.l.data.get() }
    }
}
impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        let last = {
            let mut s = self.l.state.lock();
            s.readers -= 1;
            s.readers == 0
        };
        if last {
            self.l.waiters.wake_all();
        }
    }
}
impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.l.state.lock().writer = false;
        self.l.waiters.wake_all();
    }
}
