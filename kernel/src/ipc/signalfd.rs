//! signalfd: reading takes pending signals of the calling thread that are in the file's
//! mask, as `struct signalfd_siginfo` (128 bytes each). Every signal sent wakes one global
//! queue, which all signalfds report as theirs.

use alloc::sync::Arc;
use core::any::Any;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::errno::{Errno, KResult};
use crate::fs::File;
use crate::fs::anon::AnonFile;
use crate::fs::consts::*;
use crate::fs::sync::WaitQueue;

static SIGNALS: WaitQueue = WaitQueue::new();

/// Called whenever a signal becomes pending on some thread.
pub fn notify() {
    SIGNALS.wake_all();
}

const UNBLOCKABLE: u64 =
    (1 << (crate::proc::signal::SIGKILL - 1)) | (1 << (crate::proc::signal::SIGSTOP - 1));

pub struct SignalFd {
    mask: AtomicU64,
}

impl SignalFd {
    pub fn new(mask: u64) -> Arc<SignalFd> {
        Arc::new(SignalFd {
            mask: AtomicU64::new(mask & !UNBLOCKABLE),
        })
    }

    pub fn set_mask(&self, mask: u64) {
        self.mask.store(mask & !UNBLOCKABLE, Ordering::Relaxed);
        SIGNALS.wake_all();
    }

    fn pending(&self) -> u64 {
        let m = self.mask.load(Ordering::Relaxed);
        crate::proc::current_task().map_or(0, |t| t.sig.lock().pending & m)
    }

    /// Dequeues the lowest pending signal in the mask (one queued instance of it).
    fn take(&self) -> Option<crate::proc::signal::SigInfo> {
        let t = crate::proc::current_task()?;
        let mut s = t.sig.lock();
        let p = s.pending & self.mask.load(Ordering::Relaxed);
        if p == 0 {
            return None;
        }
        let sig = p.trailing_zeros() + 1;
        Some(s.take(sig))
    }
}

/// `struct signalfd_siginfo` from the signal's siginfo.
fn siginfo(i: crate::proc::signal::SigInfo) -> [u8; 128] {
    let mut b = [0u8; 128];
    b[0..4].copy_from_slice(&i.signo.to_le_bytes());
    b[4..8].copy_from_slice(&i.errno.to_le_bytes());
    b[8..12].copy_from_slice(&i.code.to_le_bytes());
    b[12..16].copy_from_slice(&i.pid.to_le_bytes());
    b[16..20].copy_from_slice(&i.uid.to_le_bytes());
    b[40..44].copy_from_slice(&i.status.to_le_bytes());
    b[44..48].copy_from_slice(&(i.value as u32).to_le_bytes()); // ssi_int
    b[48..56].copy_from_slice(&i.value.to_le_bytes()); // ssi_ptr
    b[72..80].copy_from_slice(&i.addr.to_le_bytes());
    b
}

impl AnonFile for SignalFd {
    fn name(&self) -> &'static str {
        "[signalfd]"
    }

    fn read(&self, file: &File, buf: &mut [u8]) -> KResult<usize> {
        if buf.len() < 128 {
            return Err(Errno::EINVAL);
        }
        let first = match self.take() {
            Some(s) => s,
            None if file.nonblock() => return Err(Errno::EAGAIN),
            None => super::wait_for(&SIGNALS, || self.take())?,
        };
        buf[..128].copy_from_slice(&siginfo(first));
        let mut n = 128;
        while buf.len() - n >= 128 {
            let Some(s) = self.take() else { break };
            buf[n..n + 128].copy_from_slice(&siginfo(s));
            n += 128;
        }
        Ok(n)
    }

    fn poll(&self, _file: &File, events: u32) -> u32 {
        if self.pending() != 0 {
            events & (POLLIN | POLLRDNORM)
        } else {
            0
        }
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&SIGNALS)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
