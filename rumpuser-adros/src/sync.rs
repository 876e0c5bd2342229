//! Blocking locks and condition variables built on [`Host`] parking.
//!
//! These are the host-side primitives behind `rumpuser_mutex_*`, `rumpuser_rw_*` and
//! `rumpuser_cv_*`. They know nothing about rump's virtual CPUs: the hypercall layer
//! (`crate::locks`) wraps them with the schedule/unschedule contract. Every blocking wait
//! goes through a [`Waiter`] queued *before* the lock protecting the condition is dropped, so
//! a wake-up can never be lost.

#![forbid(unsafe_code)]

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use core::task::Waker;

use crate::host::Host;

/// How many times a contended lock is retried before the thread parks.
const SPIN_TRIES: u32 = 64;

/// One parked thread waiting for a notification.
pub struct Waiter {
    notified: AtomicBool,
    waker: Waker,
}

impl Waiter {
    /// A waiter for the calling thread.
    pub fn new(host: &dyn Host) -> Arc<Waiter> {
        Arc::new(Waiter {
            notified: AtomicBool::new(false),
            waker: host.current_waker(),
        })
    }

    pub fn notified(&self) -> bool {
        self.notified.load(Ordering::Acquire)
    }

    /// Marks the waiter notified and wakes its thread.
    pub fn notify(&self) {
        self.notified.store(true, Ordering::Release);
        self.waker.wake_by_ref();
    }

    /// Parks until notified.
    pub fn wait(&self, host: &dyn Host) {
        while !self.notified() {
            host.park();
        }
    }

    /// Parks until notified (true) or until the monotonic clock passes `deadline_ns` (false).
    pub fn wait_until(&self, host: &dyn Host, deadline_ns: u64) -> bool {
        loop {
            if self.notified() {
                return true;
            }
            if host.monotonic_ns() >= deadline_ns {
                return self.notified();
            }
            host.park_until(deadline_ns);
        }
    }
}

/// A non-recursive blocking mutex without guards (lock and unlock are separate calls, as the
/// C interface needs). The uncontended paths are one atomic operation each — the NetBSD
/// kernel takes dozens of mutexes per system call — and only contention touches the waiter
/// queue: `state` is 0 (free), 1 (held) or 2 (held, and someone may be waiting).
pub struct RawMutex {
    state: AtomicU8,
    waiters: spin::Mutex<VecDeque<Arc<Waiter>>>,
}

impl Default for RawMutex {
    fn default() -> Self {
        Self::new()
    }
}

impl RawMutex {
    pub const fn new() -> Self {
        RawMutex {
            state: AtomicU8::new(0),
            waiters: spin::Mutex::new(VecDeque::new()),
        }
    }

    pub fn try_lock(&self) -> bool {
        self.state
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Takes the lock, spinning briefly and then parking.
    pub fn lock(&self, host: &dyn Host) {
        for _ in 0..SPIN_TRIES {
            if self.try_lock() {
                return;
            }
            host.relax();
        }
        loop {
            // Allocated before taking the queue's (spinning) lock.
            let w = Waiter::new(host);
            {
                let mut q = self.waiters.lock();
                // Mark the lock contended; if it was free meanwhile, it is ours (still marked
                // contended: the unlock then looks at the queue, which is harmless).
                if self.state.swap(2, Ordering::Acquire) == 0 {
                    return;
                }
                q.push_back(w.clone());
            }
            w.wait(host);
        }
    }

    pub fn unlock(&self) {
        let was = self.state.swap(0, Ordering::Release);
        debug_assert!(was != 0, "unlock of an unlocked mutex");
        if was == 2 {
            // A waiter queued itself under the queue lock after marking the state 2, so it is
            // in the queue by the time we look (or has not parked yet and will see 0).
            let next = self.waiters.lock().pop_front();
            if let Some(w) = next {
                w.notify();
            }
        }
    }

    pub fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) != 0
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RwMode {
    Read,
    Write,
}

struct RwState {
    readers: u32,
    writer: bool,
    waiters: VecDeque<Arc<Waiter>>,
}

/// A reader/writer lock (readers are admitted whenever no writer holds it, like the
/// glibc default NetBSD's POSIX host uses), with upgrade and downgrade. `owner` records the
/// writer's lwp for `rumpuser_rw_held`.
pub struct RawRwLock {
    state: spin::Mutex<RwState>,
    owner: AtomicUsize,
}

impl Default for RawRwLock {
    fn default() -> Self {
        Self::new()
    }
}

impl RawRwLock {
    pub const fn new() -> Self {
        RawRwLock {
            state: spin::Mutex::new(RwState {
                readers: 0,
                writer: false,
                waiters: VecDeque::new(),
            }),
            owner: AtomicUsize::new(0),
        }
    }

    fn try_take(s: &mut RwState, mode: RwMode) -> bool {
        match mode {
            RwMode::Read if !s.writer => {
                s.readers += 1;
                true
            }
            RwMode::Write if !s.writer && s.readers == 0 => {
                s.writer = true;
                true
            }
            _ => false,
        }
    }

    /// Tries to take the lock; `lwp` is recorded as owner for a writer.
    pub fn try_lock(&self, mode: RwMode, lwp: usize) -> bool {
        let ok = Self::try_take(&mut self.state.lock(), mode);
        if ok && mode == RwMode::Write {
            self.owner.store(lwp, Ordering::Relaxed);
        }
        ok
    }

    pub fn lock(&self, host: &dyn Host, mode: RwMode, lwp: usize) {
        loop {
            let w = Waiter::new(host);
            {
                let mut s = self.state.lock();
                if Self::try_take(&mut s, mode) {
                    break;
                }
                s.waiters.push_back(w.clone());
            }
            w.wait(host);
        }
        if mode == RwMode::Write {
            self.owner.store(lwp, Ordering::Relaxed);
        }
    }

    fn wake_all(waiters: VecDeque<Arc<Waiter>>) {
        for w in waiters {
            w.notify();
        }
    }

    pub fn unlock(&self) {
        let woken = {
            let mut s = self.state.lock();
            if s.writer {
                s.writer = false;
                self.owner.store(0, Ordering::Relaxed);
            } else {
                debug_assert!(s.readers > 0, "rw unlock without holder");
                s.readers = s.readers.saturating_sub(1);
            }
            if s.readers == 0 && !s.waiters.is_empty() {
                core::mem::take(&mut s.waiters)
            } else {
                VecDeque::new()
            }
        };
        Self::wake_all(woken);
    }

    /// Reader → writer if the caller is the only reader.
    pub fn try_upgrade(&self, lwp: usize) -> bool {
        let mut s = self.state.lock();
        if !s.writer && s.readers == 1 {
            s.readers = 0;
            s.writer = true;
            self.owner.store(lwp, Ordering::Relaxed);
            true
        } else {
            false
        }
    }

    /// Writer → reader, atomically (no other writer can get in between).
    pub fn downgrade(&self) {
        let woken = {
            let mut s = self.state.lock();
            debug_assert!(s.writer, "downgrade without write lock");
            s.writer = false;
            s.readers = 1;
            self.owner.store(0, Ordering::Relaxed);
            if s.waiters.is_empty() {
                VecDeque::new()
            } else {
                core::mem::take(&mut s.waiters)
            }
        };
        Self::wake_all(woken);
    }

    pub fn write_owner(&self) -> Option<usize> {
        let s = self.state.lock();
        s.writer.then(|| self.owner.load(Ordering::Relaxed))
    }

    pub fn readers(&self) -> u32 {
        self.state.lock().readers
    }
}

/// A condition variable: waiters are queued before the caller's mutex is released.
#[derive(Default)]
pub struct RawCondvar {
    waiters: spin::Mutex<VecDeque<Arc<Waiter>>>,
}

impl RawCondvar {
    pub const fn new() -> Self {
        RawCondvar {
            waiters: spin::Mutex::new(VecDeque::new()),
        }
    }

    /// Step 1 of a wait: queue the calling thread. Call while holding the interlock.
    pub fn enqueue(&self, host: &dyn Host) -> Arc<Waiter> {
        let w = Waiter::new(host);
        self.waiters.lock().push_back(w.clone());
        w
    }

    /// Step 2 (after the interlock is released): block until signalled, or until
    /// `deadline_ns`. Returns true when signalled, false on timeout.
    pub fn block(&self, host: &dyn Host, w: &Arc<Waiter>, deadline_ns: Option<u64>) -> bool {
        match deadline_ns {
            None => {
                w.wait(host);
                true
            }
            Some(d) => {
                if w.wait_until(host, d) {
                    return true;
                }
                let mut q = self.waiters.lock();
                if let Some(pos) = q.iter().position(|x| Arc::ptr_eq(x, w)) {
                    q.remove(pos);
                    false
                } else {
                    // A signal picked us between the timeout and the removal: it counts.
                    true
                }
            }
        }
    }

    pub fn signal(&self) {
        let w = self.waiters.lock().pop_front();
        if let Some(w) = w {
            w.notify();
        }
    }

    pub fn broadcast(&self) {
        // Wake outside the queue's lock. Taking the whole queue would also take (and later
        // free) its buffer, which the next wait would allocate again: avoid that for the
        // common cases of no waiter and one.
        let mut q = self.waiters.lock();
        match q.len() {
            0 => {}
            1 => {
                let w = q.pop_front();
                drop(q);
                if let Some(w) = w {
                    w.notify();
                }
            }
            _ => {
                let all = core::mem::take(&mut *q);
                drop(q);
                for w in all {
                    w.notify();
                }
            }
        }
    }

    pub fn waiters(&self) -> usize {
        self.waiters.lock().len()
    }
}
