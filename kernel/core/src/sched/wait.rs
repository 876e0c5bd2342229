//! Wait queues: the one blocking primitive everything else (mutex, condvar, rwlock, join,
//! timed sleeps) is built on. A waiter marks itself blocked and enqueues itself under the
//! queue lock before it checks its condition, and wakers dequeue and wake under the same
//! lock, so a wake-up can be neither lost nor delivered to a later, unrelated sleep (each
//! sleep has its own generation).

use alloc::collections::VecDeque;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;

use super::thread::{ThreadRef, current};
use crate::sync::spin::IrqSpinLock;

/// Told whenever a queue it watches is woken (an epoll instance or a socket relaying the
/// queues of what it watches to its own). Called with the watched queue's lock held and
/// possibly in interrupt context: it may only touch atomics and wake other queues.
pub trait Notify: Send + Sync {
    fn notify(&self);
}

pub struct WaitQueue {
    waiters: IrqSpinLock<VecDeque<ThreadRef>>,
    /// Watchers told on every wake (dropped watchers are pruned on the next `watch`).
    watchers: IrqSpinLock<Vec<Weak<dyn Notify>>>,
}

impl Default for WaitQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl WaitQueue {
    pub const fn new() -> Self {
        Self {
            waiters: IrqSpinLock::new(VecDeque::new()),
            watchers: IrqSpinLock::new(Vec::new()),
        }
    }

    /// Adds a watcher told on every later `wake_one`/`wake_all` until it is dropped or
    /// [`WaitQueue::unwatch`]ed.
    pub fn watch(&self, w: Weak<dyn Notify>) {
        let mut v = self.watchers.lock();
        v.retain(|x| x.strong_count() > 0);
        v.push(w);
    }

    /// Removes watcher `w` (compared by address).
    pub fn unwatch(&self, w: &Weak<dyn Notify>) {
        self.watchers
            .lock()
            .retain(|x| x.strong_count() > 0 && !Weak::ptr_eq(x, w));
    }

    fn notify_watchers(&self) {
        let v = self.watchers.lock();
        for w in v.iter() {
            if let Some(n) = w.upgrade() {
                n.notify();
            }
        }
    }

    /// Blocks until `cond()` is true or the monotonic clock passes `deadline`. Returns true
    /// if the condition held.
    ///
    /// Before each sleep the thread is marked blocked and queued under the queue lock, and
    /// only then checks `cond` — with no lock held and interrupts as the caller had them, so
    /// a condition may take any lock (a spin lock held by a thread preempted on this CPU
    /// included; under the queue lock, with interrupts off, that spun forever). A waker that
    /// makes the condition true after the check finds the thread queued, and one that only
    /// wakes blocked threads (a signal's `sched::wake`) finds it blocked: no wake-up is lost.
    pub fn wait_until(&self, mut cond: impl FnMut() -> bool, deadline: Option<u64>) -> bool {
        loop {
            if cond() {
                return true;
            }
            if deadline.is_some_and(|d| crate::time::now_ns() >= d) {
                return false;
            }
            let (me, sgen) = self.prepare_wait();
            if cond() {
                me.try_unblock(Some(sgen));
                self.remove(&me);
                return true;
            }
            super::block(deadline, sgen);
            self.remove(&me);
        }
    }

    /// Enqueues the current thread and marks it blocked; the caller then releases whatever
    /// it holds and calls [`super::block`] with the returned generation.
    pub fn prepare_wait(&self) -> (ThreadRef, u64) {
        let me = current();
        let mut q = self.waiters.lock();
        let sgen = me.prepare_block();
        q.push_back(me.clone());
        (me, sgen)
    }

    /// Adds `t` without touching its state (for [`wait_any`]).
    fn add(&self, t: &ThreadRef) {
        self.waiters.lock().push_back(t.clone());
    }

    /// Removes `t` if it is still queued; true if it was.
    pub fn remove(&self, t: &ThreadRef) -> bool {
        let mut q = self.waiters.lock();
        match q.iter().position(|x| Arc::ptr_eq(x, t)) {
            Some(i) => {
                q.remove(i);
                true
            }
            None => false,
        }
    }

    pub fn wake_one(&self) -> bool {
        let woke = {
            let mut q = self.waiters.lock();
            let mut woke = false;
            while let Some(t) = q.pop_front() {
                if super::wake(&t) {
                    woke = true;
                    break;
                }
                // Not blocked any more (it is between waking and removing itself): skip it;
                // it will re-check its condition.
            }
            woke
        };
        self.notify_watchers();
        woke
    }

    pub fn wake_all(&self) -> usize {
        let n = {
            let mut q = self.waiters.lock();
            let mut n = 0;
            while let Some(t) = q.pop_front() {
                if super::wake(&t) {
                    n += 1;
                }
            }
            n
        };
        self.notify_watchers();
        n
    }

    pub fn has_waiters(&self) -> bool {
        !self.waiters.lock().is_empty()
    }

    pub fn len(&self) -> usize {
        self.waiters.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Sleeps until `cond()` holds, waking whenever any of `queues` is signalled (poll/select),
/// or until `deadline`. Returns whether `cond` held.
pub fn wait_any(
    queues: &[&WaitQueue],
    mut cond: impl FnMut() -> bool,
    deadline: Option<u64>,
) -> bool {
    loop {
        if cond() {
            return true;
        }
        if deadline.is_some_and(|d| crate::time::now_ns() >= d) {
            return false;
        }
        let me = current();
        let sgen = me.prepare_block();
        for q in queues {
            q.add(&me);
        }
        // Re-check after enqueueing: a wake-up before this point finds us queued.
        if cond() {
            me.try_unblock(None);
            for q in queues {
                q.remove(&me);
            }
            return true;
        }
        super::block(deadline, sgen);
        for q in queues {
            q.remove(&me);
        }
    }
}
