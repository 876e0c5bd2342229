//! Files with no node behind them ("anonymous inodes" in Linux): epoll instances, eventfds,
//! timerfds, signalfds and sockets. Each kind implements [`AnonFile`]; the system-call layer
//! finds its own kind again through [`AnonFile::as_any`].

use alloc::format;
use alloc::string::String;
use core::any::Any;

use super::consts::*;
use super::file::File;
use super::node::Stat;
use super::sync::WaitQueue;
use crate::errno::{Errno, KResult};

/// The device number `fstat` reports for anonymous files ("anon_inodefs").
pub const ANON_DEV: u64 = makedev(0, 0xFFE);

pub trait AnonFile: Send + Sync + Any {
    /// `[eventfd]`, `[timerfd]`…: shown as `anon_inode:NAME` in `/proc/PID/fd`.
    fn name(&self) -> &'static str;
    fn read(&self, _file: &File, _buf: &mut [u8]) -> KResult<usize> {
        Err(Errno::EINVAL)
    }
    fn write(&self, _file: &File, _buf: &[u8]) -> KResult<usize> {
        Err(Errno::EINVAL)
    }
    /// Ready bits among `events` (plus POLLHUP/POLLERR, always reported).
    fn poll(&self, file: &File, events: u32) -> u32;
    /// The queue woken whenever `poll`'s answer may change.
    fn wait_queue(&self) -> Option<&WaitQueue>;
    fn ioctl(&self, _file: &File, _cmd: u32, _arg: u64) -> KResult<u64> {
        Err(Errno::ENOTTY)
    }
    /// The file type bits `fstat` reports (sockets: `S_IFSOCK`).
    fn file_type(&self) -> u32 {
        0
    }
    /// What `/proc/PID/fd/N` points to.
    fn link_name(&self, ino: u64) -> String {
        let _ = ino;
        format!("anon_inode:{}", self.name())
    }
    fn as_any(&self) -> &dyn Any;
}

/// The `fstat` answer for an anonymous file (inode number from its address).
pub fn stat_of(a: &dyn AnonFile, ino: u64) -> Stat {
    Stat {
        dev: ANON_DEV,
        ino,
        mode: a.file_type() | 0o600,
        nlink: 1,
        blksize: 4096,
        ..Stat::default()
    }
}
