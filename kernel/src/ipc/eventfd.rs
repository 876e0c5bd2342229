//! eventfd: a 64-bit counter. `write` adds (blocking while it would pass `u64::MAX - 1`),
//! `read` takes the whole count (or 1 with `EFD_SEMAPHORE`), blocking while it is 0.

use alloc::sync::Arc;
use core::any::Any;

use crate::errno::{Errno, KResult};
use crate::fs::File;
use crate::fs::anon::AnonFile;
use crate::fs::consts::*;
use crate::fs::sync::{SpinLock, WaitQueue};

pub const EFD_SEMAPHORE: u32 = 1;
const MAX: u64 = u64::MAX - 1;

pub struct EventFd {
    count: SpinLock<u64>,
    semaphore: bool,
    wq: WaitQueue,
}

impl EventFd {
    pub fn new(init: u64, semaphore: bool) -> Arc<EventFd> {
        Arc::new(EventFd {
            count: SpinLock::new(init),
            semaphore,
            wq: WaitQueue::new(),
        })
    }

    fn try_read(&self) -> Option<u64> {
        let mut c = self.count.lock();
        if *c == 0 {
            return None;
        }
        let v = if self.semaphore { 1 } else { *c };
        *c -= v;
        Some(v)
    }

    fn try_add(&self, v: u64) -> bool {
        let mut c = self.count.lock();
        if MAX - *c < v {
            return false;
        }
        *c += v;
        true
    }
}

impl AnonFile for EventFd {
    fn name(&self) -> &'static str {
        "[eventfd]"
    }

    fn read(&self, file: &File, buf: &mut [u8]) -> KResult<usize> {
        if buf.len() < 8 {
            return Err(Errno::EINVAL);
        }
        let v = match self.try_read() {
            Some(v) => v,
            None if file.nonblock() => return Err(Errno::EAGAIN),
            None => super::wait_for(&self.wq, || self.try_read())?,
        };
        buf[..8].copy_from_slice(&v.to_le_bytes());
        self.wq.wake_all();
        Ok(8)
    }

    fn write(&self, file: &File, buf: &[u8]) -> KResult<usize> {
        let b: [u8; 8] = buf
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or(Errno::EINVAL)?;
        let v = u64::from_le_bytes(b);
        if v == u64::MAX {
            return Err(Errno::EINVAL);
        }
        if !self.try_add(v) {
            if file.nonblock() {
                return Err(Errno::EAGAIN);
            }
            super::wait_for(&self.wq, || self.try_add(v).then_some(()))?;
        }
        self.wq.wake_all();
        Ok(8)
    }

    fn poll(&self, _file: &File, events: u32) -> u32 {
        let c = *self.count.lock();
        let mut r = 0;
        if c > 0 {
            r |= POLLIN | POLLRDNORM;
        }
        if c < MAX {
            r |= POLLOUT | POLLWRNORM;
        }
        r & events
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.wq)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
