//! signalfd: reading takes pending signals of the calling thread that are in the file's
//! mask, as `struct signalfd_siginfo` (128 bytes each). Every signal sent wakes one global
//! queue, which all signalfds report as theirs.

use alloc::sync::Arc;
use core::any::Any;
use core::mem::size_of;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::errno::{Errno, KResult};
use crate::fs::File;
use crate::fs::anon::AnonFile;
use crate::fs::consts::*;
use crate::fs::sync::WaitQueue;
use crate::syscall::abi::SignalfdSiginfo;
use zerocopy::{FromZeros, IntoBytes};

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

const SIZE: usize = size_of::<SignalfdSiginfo>();

/// `struct signalfd_siginfo` from the signal's siginfo.
fn siginfo(i: crate::proc::signal::SigInfo) -> SignalfdSiginfo {
    SignalfdSiginfo {
        ssi_signo: i.signo,
        ssi_errno: i.errno,
        ssi_code: i.code,
        ssi_pid: i.pid,
        ssi_uid: i.uid,
        ssi_status: i.status,
        ssi_int: i.value as i32,
        ssi_ptr: i.value,
        ssi_addr: i.addr,
        ..FromZeros::new_zeroed()
    }
}

impl AnonFile for SignalFd {
    fn name(&self) -> &'static str {
        "[signalfd]"
    }

    fn read(&self, file: &File, buf: &mut [u8]) -> KResult<usize> {
        if buf.len() < SIZE {
            return Err(Errno::EINVAL);
        }
        let first = match self.take() {
            Some(s) => s,
            None if file.nonblock() => return Err(Errno::EAGAIN),
            None => super::wait_for(&SIGNALS, || self.take())?,
        };
        buf[..SIZE].copy_from_slice(siginfo(first).as_bytes());
        let mut n = SIZE;
        while buf.len() - n >= SIZE {
            let Some(s) = self.take() else { break };
            buf[n..n + SIZE].copy_from_slice(siginfo(s).as_bytes());
            n += SIZE;
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
