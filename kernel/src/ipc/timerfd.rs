//! timerfd: expirations counted against the monotonic clock. One kernel thread ("timerfd")
//! sleeps until the earliest armed expiry, accounts the expirations of every timer due and
//! wakes their queues; reads and polls account lazily too, so they never depend on the
//! thread's latency for the count.

use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::any::Any;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::errno::{Errno, KResult};
use crate::fs::File;
use crate::fs::anon::AnonFile;
use crate::fs::consts::*;
use crate::fs::sync::{SpinLock, WaitQueue};

pub const CLOCK_REALTIME: u32 = 0;
pub const CLOCK_MONOTONIC: u32 = 1;
pub const CLOCK_BOOTTIME: u32 = 7;
pub const CLOCK_REALTIME_ALARM: u32 = 8;
pub const CLOCK_BOOTTIME_ALARM: u32 = 9;
pub const TFD_TIMER_ABSTIME: u32 = 1;
pub const TFD_TIMER_CANCEL_ON_SET: u32 = 2;

#[derive(Default)]
struct State {
    /// Next expiry, monotonic ns; 0 = disarmed.
    next: u64,
    interval: u64,
    /// Expirations not read yet.
    ticks: u64,
}

impl State {
    fn account(&mut self, now: u64) -> bool {
        if self.next == 0 || now < self.next {
            return false;
        }
        match (now - self.next).checked_div(self.interval) {
            None => {
                self.ticks += 1;
                self.next = 0;
            }
            Some(q) => {
                let n = 1 + q;
                self.ticks += n;
                self.next += n * self.interval;
            }
        }
        true
    }
}

pub struct TimerFd {
    clock: u32,
    st: SpinLock<State>,
    wq: WaitQueue,
}

static TIMERS: SpinLock<Vec<Weak<TimerFd>>> = SpinLock::new(Vec::new());
static THREAD_WQ: WaitQueue = WaitQueue::new();
static CHANGED: AtomicBool = AtomicBool::new(false);
static STARTED: spin::Once<()> = spin::Once::new();

fn timer_thread() {
    loop {
        let now = crate::time::now_ns();
        let timers: Vec<Arc<TimerFd>> = {
            let mut l = TIMERS.lock();
            l.retain(|t| t.strong_count() > 0);
            l.iter().filter_map(Weak::upgrade).collect()
        };
        let mut earliest: Option<u64> = None;
        for t in &timers {
            let (fired, next) = {
                let mut s = t.st.lock();
                (s.account(now), s.next)
            };
            if fired {
                t.wq.wake_all();
            }
            if next != 0 {
                earliest = Some(earliest.map_or(next, |e: u64| e.min(next)));
            }
        }
        drop(timers);
        THREAD_WQ.wait_until(|| CHANGED.swap(false, Ordering::AcqRel), earliest);
    }
}

impl TimerFd {
    pub fn new(clock: u32) -> KResult<Arc<TimerFd>> {
        if !matches!(
            clock,
            CLOCK_REALTIME
                | CLOCK_MONOTONIC
                | CLOCK_BOOTTIME
                | CLOCK_REALTIME_ALARM
                | CLOCK_BOOTTIME_ALARM
        ) {
            return Err(Errno::EINVAL);
        }
        STARTED.call_once(|| {
            crate::sched::thread::spawn("timerfd", timer_thread);
        });
        let t = Arc::new(TimerFd {
            clock,
            st: SpinLock::new(State::default()),
            wq: WaitQueue::new(),
        });
        TIMERS.lock().push(Arc::downgrade(&t));
        Ok(t)
    }

    fn realtime(&self) -> bool {
        matches!(self.clock, CLOCK_REALTIME | CLOCK_REALTIME_ALARM)
    }

    /// `timerfd_gettime`: (remaining ns until the next expiry, interval ns).
    pub fn get(&self) -> (u64, u64) {
        let now = crate::time::now_ns();
        let mut s = self.st.lock();
        s.account(now);
        let left = if s.next == 0 {
            0
        } else {
            (s.next - now).max(1)
        };
        (left, s.interval)
    }

    /// `timerfd_settime`: arms (value ≠ 0) or disarms; returns the old setting.
    pub fn set(&self, flags: u32, value: u64, interval: u64) -> (u64, u64) {
        let old = self.get();
        let now = crate::time::now_ns();
        let next = if value == 0 {
            0
        } else if flags & TFD_TIMER_ABSTIME != 0 {
            let mono = if self.realtime() {
                let offset = crate::time::wall_clock_ns().saturating_sub(now);
                value.saturating_sub(offset)
            } else {
                value
            };
            mono.max(1)
        } else {
            now.saturating_add(value)
        };
        {
            let mut s = self.st.lock();
            *s = State {
                next,
                interval: if next == 0 { 0 } else { interval },
                ticks: 0,
            };
        }
        CHANGED.store(true, Ordering::Release);
        THREAD_WQ.wake_all();
        self.wq.wake_all();
        old
    }

    fn take(&self) -> Option<u64> {
        let mut s = self.st.lock();
        s.account(crate::time::now_ns());
        (s.ticks > 0).then(|| core::mem::take(&mut s.ticks))
    }
}

impl AnonFile for TimerFd {
    fn name(&self) -> &'static str {
        "[timerfd]"
    }

    fn read(&self, file: &File, buf: &mut [u8]) -> KResult<usize> {
        if buf.len() < 8 {
            return Err(Errno::EINVAL);
        }
        let n = match self.take() {
            Some(n) => n,
            None if file.nonblock() => return Err(Errno::EAGAIN),
            None => super::wait_for(&self.wq, || self.take())?,
        };
        buf[..8].copy_from_slice(&n.to_le_bytes());
        Ok(8)
    }

    fn poll(&self, _file: &File, events: u32) -> u32 {
        let mut s = self.st.lock();
        s.account(crate::time::now_ns());
        if s.ticks > 0 {
            events & (POLLIN | POLLRDNORM)
        } else {
            0
        }
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.wq)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
