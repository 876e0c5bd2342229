//! epoll: an interest list of (fd, file) pairs. Each entry registers a [`Watch`] with the
//! watched file's wait queue; a wake-up there marks the entry (for `EPOLLET`) and wakes the
//! instance's own queue, on which `epoll_wait` sleeps and which `poll`/another epoll watch.
//! Readiness is the file's own `poll` answer, the one poll/select use.

use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::any::Any;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::errno::{Errno, KResult};
use crate::fs::File;
use crate::fs::anon::AnonFile;
use crate::fs::consts::*;
use crate::fs::sync::{SleepLock, WaitQueue};
use crate::sched::wait::Notify;

pub const EPOLLRDHUP: u32 = 0x2000;
pub const EPOLLEXCLUSIVE: u32 = 1 << 28;
pub const EPOLLWAKEUP: u32 = 1 << 29;
pub const EPOLLONESHOT: u32 = 1 << 30;
pub const EPOLLET: u32 = 1 << 31;
const FLAG_BITS: u32 = EPOLLEXCLUSIVE | EPOLLWAKEUP | EPOLLONESHOT | EPOLLET;

pub const EPOLL_CTL_ADD: u32 = 1;
pub const EPOLL_CTL_DEL: u32 = 2;
pub const EPOLL_CTL_MOD: u32 = 3;

/// Registered with a watched file's queue.
struct Watch {
    wq: Arc<WaitQueue>,
    /// Set on every wake-up of the watched file (and at ADD/MOD): an edge-triggered entry
    /// is reported only after one.
    fired: AtomicBool,
}

impl Notify for Watch {
    fn notify(&self) {
        self.fired.store(true, Ordering::Release);
        self.wq.wake_all();
    }
}

struct Item {
    fd: i32,
    file: Weak<File>,
    events: u32,
    data: u64,
    watch: Arc<Watch>,
    /// `EPOLLONESHOT` entry already reported (until `EPOLL_CTL_MOD`).
    disabled: bool,
}

impl Item {
    fn as_notify(&self) -> Weak<dyn Notify> {
        let n: Arc<dyn Notify> = self.watch.clone();
        Arc::downgrade(&n)
    }
}

pub struct Epoll {
    wq: Arc<WaitQueue>,
    items: SleepLock<Vec<Item>>,
}

impl Epoll {
    pub fn new() -> Arc<Epoll> {
        Arc::new(Epoll {
            wq: Arc::new(WaitQueue::new()),
            items: SleepLock::new(Vec::new()),
        })
    }

    /// `epoll_ctl`; `me` is the epoll file itself (adding it to itself is EINVAL).
    pub fn ctl(
        &self,
        me: &Arc<File>,
        op: u32,
        fd: i32,
        file: &Arc<File>,
        events: u32,
        data: u64,
    ) -> KResult<()> {
        if Arc::ptr_eq(me, file) {
            return Err(Errno::EINVAL);
        }
        // Regular files and directories cannot be watched (Linux: EPERM).
        if file.anon().is_none() && file.wait_queue().is_none() && file.inode().is_some() {
            return Err(Errno::EPERM);
        }
        let mut items = self.items.lock();
        items.retain(|i| i.file.strong_count() > 0);
        let pos = items
            .iter()
            .position(|i| i.fd == fd && core::ptr::eq(i.file.as_ptr(), Arc::as_ptr(file)));
        match op {
            EPOLL_CTL_ADD => {
                if pos.is_some() {
                    return Err(Errno::EEXIST);
                }
                let watch = Arc::new(Watch {
                    wq: self.wq.clone(),
                    fired: AtomicBool::new(true),
                });
                let item = Item {
                    fd,
                    file: Arc::downgrade(file),
                    events,
                    data,
                    watch,
                    disabled: false,
                };
                if let Some(q) = file.wait_queue() {
                    q.watch(item.as_notify());
                }
                items.push(item);
            }
            EPOLL_CTL_MOD => {
                let it = items
                    .get_mut(pos.ok_or(Errno::ENOENT)?)
                    .ok_or(Errno::ENOENT)?;
                if events & EPOLLEXCLUSIVE != 0 || it.events & EPOLLEXCLUSIVE != 0 {
                    return Err(Errno::EINVAL);
                }
                it.events = events;
                it.data = data;
                it.disabled = false;
                it.watch.fired.store(true, Ordering::Release);
            }
            EPOLL_CTL_DEL => {
                let it = items.remove(pos.ok_or(Errno::ENOENT)?);
                if let Some(q) = file.wait_queue() {
                    q.unwatch(&it.as_notify());
                }
            }
            _ => return Err(Errno::EINVAL),
        }
        drop(items);
        // A waiter may now have something to report.
        self.wq.wake_all();
        Ok(())
    }

    /// Ready entries, at most `max`, as (events, data). `consume` is `epoll_wait`:
    /// edge-triggered entries are reported once per wake-up of their file, one-shot entries
    /// once until re-armed.
    pub fn scan(&self, consume: bool, max: usize) -> Vec<(u32, u64)> {
        let mut out = Vec::new();
        let mut items = self.items.lock();
        items.retain(|i| i.file.strong_count() > 0);
        for it in items.iter_mut() {
            if out.len() >= max {
                break;
            }
            if it.disabled {
                continue;
            }
            let Some(f) = it.file.upgrade() else { continue };
            let et = it.events & EPOLLET != 0;
            if et {
                let fired = if consume {
                    it.watch.fired.swap(false, Ordering::AcqRel)
                } else {
                    it.watch.fired.load(Ordering::Acquire)
                };
                if !fired {
                    continue;
                }
            }
            let want = (it.events & !FLAG_BITS) | POLLHUP | POLLERR;
            let r = f.poll(want) & want;
            if r == 0 {
                continue;
            }
            out.push((r, it.data));
            if consume && it.events & EPOLLONESHOT != 0 {
                it.disabled = true;
            }
        }
        out
    }

    pub fn queue(&self) -> &WaitQueue {
        &self.wq
    }
}

impl AnonFile for Epoll {
    fn name(&self) -> &'static str {
        "[eventpoll]"
    }

    fn poll(&self, _file: &File, events: u32) -> u32 {
        if self.scan(false, 1).is_empty() {
            0
        } else {
            events & (POLLIN | POLLRDNORM)
        }
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.wq)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
