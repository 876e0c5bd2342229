//! Open files: what a file descriptor refers to. The offset and status flags are shared by
//! every descriptor `dup`ed from the same open (as in Linux); `O_CLOEXEC` belongs to the
//! descriptor table, not here.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use super::anon::AnonFile;
use super::consts::*;
use super::devfs::Device;
use super::node::{DirEntry, InodeRef, Stat, StatFs};
use super::pipe::{End, Pipe};
use super::sync::{SleepLock, WaitQueue};
use super::{FsCtx, PathRef};
use crate::errno::{Errno, KResult};

pub(super) enum Kind {
    /// Regular files and directories.
    Node,
    Device(Arc<dyn Device>),
    Pipe(Arc<Pipe>, End),
    /// `O_PATH`: a handle for `*at` calls and `fstat` only.
    Path,
    /// epoll, eventfd, timerfd, signalfd, sockets ([`super::anon`]).
    Anon(Arc<dyn AnonFile>),
}

pub struct File {
    pub(super) kind: Kind,
    /// The node (absent for anonymous pipes).
    pub(super) inode: Option<InodeRef>,
    /// Where it was opened (absent for anonymous pipes).
    pub(super) path: Option<PathRef>,
    flags: AtomicU32,
    pos: SleepLock<u64>,
}

/// The device number `fstat` reports for anonymous pipes ("pipefs").
const PIPEFS_DEV: u64 = makedev(0, 0xFFF);

impl File {
    pub(super) fn new(
        kind: Kind,
        inode: Option<InodeRef>,
        path: Option<PathRef>,
        flags: u32,
    ) -> Arc<File> {
        Arc::new(File {
            kind,
            inode,
            path,
            flags: AtomicU32::new(flags & !(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_CLOEXEC)),
            pos: SleepLock::new(0),
        })
    }

    /// A file with no node: `flags` holds the access mode and `O_NONBLOCK`.
    pub fn new_anon(obj: Arc<dyn AnonFile>, flags: u32) -> Arc<File> {
        File::new(Kind::Anon(obj), None, None, flags)
    }

    /// The object behind an anonymous file.
    pub fn anon(&self) -> Option<&Arc<dyn AnonFile>> {
        match &self.kind {
            Kind::Anon(a) => Some(a),
            _ => None,
        }
    }

    /// The open flags: access mode (`O_ACCMODE`) plus status flags (`O_APPEND`,
    /// `O_NONBLOCK`, `O_DIRECTORY`, `O_PATH`, …), as `fcntl(F_GETFL)` reports them.
    pub fn flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    /// `fcntl(F_SETFL)`: changes only `O_APPEND`, `O_NONBLOCK`, `O_ASYNC`, `O_DIRECT`,
    /// `O_NOATIME`; other bits of `flags` are ignored.
    pub fn set_flags(&self, flags: u32) {
        let _ = self
            .flags
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                Some((old & !SETFL_MASK) | (flags & SETFL_MASK))
            });
    }

    pub fn nonblock(&self) -> bool {
        self.flags() & O_NONBLOCK != 0
    }

    fn readable(&self) -> KResult<()> {
        let f = self.flags();
        if f & O_PATH != 0 || f & O_ACCMODE == O_WRONLY {
            return Err(Errno::EBADF);
        }
        Ok(())
    }

    fn writable(&self) -> KResult<()> {
        let f = self.flags();
        if f & O_PATH != 0 || f & O_ACCMODE == O_RDONLY {
            return Err(Errno::EBADF);
        }
        Ok(())
    }

    /// The file's inode (EINVAL for pipes, devices and the like).
    pub fn node(&self) -> KResult<&InodeRef> {
        self.inode.as_ref().ok_or(Errno::EINVAL)
    }

    /// Reads at the file offset and advances it.
    pub fn read(&self, buf: &mut [u8]) -> KResult<usize> {
        self.readable()?;
        match &self.kind {
            Kind::Node => {
                let node = self.node()?;
                super::filemap::flush_file(node);
                let mut pos = self.pos.lock();
                let n = node.read_at(*pos, buf)?;
                *pos += n as u64;
                Ok(n)
            }
            Kind::Device(d) => {
                let off = *self.pos.lock();
                let n = d.read(self, buf, off)?;
                *self.pos.lock() = off + n as u64;
                Ok(n)
            }
            Kind::Pipe(p, _) => p.read(buf, self.nonblock()),
            Kind::Anon(a) => a.read(self, buf),
            Kind::Path => Err(Errno::EBADF),
        }
    }

    /// Writes at the file offset (at the end with `O_APPEND`) and advances it.
    pub fn write(&self, buf: &[u8]) -> KResult<usize> {
        self.writable()?;
        match &self.kind {
            Kind::Node => {
                let node = self.node()?;
                let mut pos = self.pos.lock();
                let (off, n) = if self.flags() & O_APPEND != 0 {
                    node.append(buf)?
                } else {
                    (*pos, node.write_at(*pos, buf)?)
                };
                super::filemap::written(node, off, &buf[..n.min(buf.len())]);
                *pos = off + n as u64;
                Ok(n)
            }
            Kind::Device(d) => {
                let off = *self.pos.lock();
                let n = d.write(self, buf, off)?;
                *self.pos.lock() = off + n as u64;
                Ok(n)
            }
            Kind::Pipe(p, _) => p.write(buf, self.nonblock()),
            Kind::Anon(a) => a.write(self, buf),
            Kind::Path => Err(Errno::EBADF),
        }
    }

    /// Reads at `off` without moving the file offset (ESPIPE on pipes).
    pub fn pread(&self, buf: &mut [u8], off: u64) -> KResult<usize> {
        self.readable()?;
        match &self.kind {
            Kind::Node => {
                let node = self.node()?;
                super::filemap::flush_file(node);
                node.read_at(off, buf)
            }
            Kind::Device(d) => d.read(self, buf, off),
            Kind::Pipe(..) | Kind::Anon(_) => Err(Errno::ESPIPE),
            Kind::Path => Err(Errno::EBADF),
        }
    }

    /// Writes at `off` without moving the file offset (ESPIPE on pipes).
    pub fn pwrite(&self, buf: &[u8], off: u64) -> KResult<usize> {
        self.writable()?;
        match &self.kind {
            Kind::Node => {
                let node = self.node()?;
                let n = node.write_at(off, buf)?;
                super::filemap::written(node, off, &buf[..n.min(buf.len())]);
                Ok(n)
            }
            Kind::Device(d) => d.write(self, buf, off),
            Kind::Pipe(..) | Kind::Anon(_) => Err(Errno::ESPIPE),
            Kind::Path => Err(Errno::EBADF),
        }
    }

    /// `lseek`: returns the new offset.
    pub fn seek(&self, off: i64, whence: u32) -> KResult<u64> {
        match &self.kind {
            Kind::Pipe(..) | Kind::Anon(_) => return Err(Errno::ESPIPE),
            Kind::Path => return Err(Errno::EBADF),
            _ => {}
        }
        let mut pos = self.pos.lock();
        let size = self.inode.as_ref().map_or(0, |i| i.stat().size);
        let is_dir = self.is_dir();
        let base: i64 = match whence {
            SEEK_SET => 0,
            SEEK_CUR => *pos as i64,
            SEEK_END if !is_dir => size,
            SEEK_DATA | SEEK_HOLE if matches!(self.kind, Kind::Node) && !is_dir => {
                if off < 0 || off >= size {
                    return Err(Errno::ENXIO);
                }
                let new = if whence == SEEK_DATA { off } else { size };
                *pos = new as u64;
                return Ok(new as u64);
            }
            _ => return Err(Errno::EINVAL),
        };
        let new = base.checked_add(off).ok_or(Errno::EOVERFLOW)?;
        if new < 0 {
            return Err(Errno::EINVAL);
        }
        *pos = new as u64;
        Ok(new as u64)
    }

    /// The current file offset.
    pub fn offset(&self) -> u64 {
        *self.pos.lock()
    }

    pub fn stat(&self) -> KResult<Stat> {
        match (&self.inode, &self.kind) {
            (Some(i), _) => Ok(i.stat()),
            (None, Kind::Pipe(p, _)) => Ok(Stat {
                dev: PIPEFS_DEV,
                ino: Arc::as_ptr(p) as u64 >> 4,
                mode: S_IFIFO | 0o600,
                nlink: 1,
                blksize: PIPE_BUF as i64,
                ..Stat::default()
            }),
            (None, Kind::Anon(a)) => Ok(super::anon::stat_of(a.as_ref(), self.anon_ino())),
            _ => Err(Errno::EBADF),
        }
    }

    /// The inode number `fstat` reports for an anonymous file.
    fn anon_ino(&self) -> u64 {
        match &self.kind {
            Kind::Anon(a) => Arc::as_ptr(a) as *const u8 as u64 >> 4,
            _ => 0,
        }
    }

    pub fn statfs(&self) -> KResult<StatFs> {
        Ok(self.node()?.fs().statfs())
    }

    /// `fsync`/`fdatasync`: the file's data on stable storage (no-op for pipes and devices).
    pub fn sync(&self) -> KResult<()> {
        match self.node() {
            Ok(n) => {
                super::filemap::write_back_file(n)?;
                n.sync()
            }
            Err(_) => Ok(()),
        }
    }

    /// `getdents64`: up to `max_entries` entries from the file offset, which moves past them.
    pub fn getdents(&self, max_entries: usize) -> KResult<Vec<DirEntry>> {
        if self.flags() & O_PATH != 0 {
            return Err(Errno::EBADF);
        }
        let node = self.node().map_err(|_| Errno::ENOTDIR)?;
        if !self.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        let mut pos = self.pos.lock();
        let v = node.readdir(*pos, max_entries)?;
        if let Some(last) = v.last() {
            *pos = last.next_offset;
        }
        Ok(v)
    }

    /// `ftruncate` (EINVAL unless a regular file open for writing).
    pub fn truncate(&self, len: u64) -> KResult<()> {
        self.writable().map_err(|_| Errno::EINVAL)?;
        let node = self.node()?;
        if !matches!(self.kind, Kind::Node) || !node.stat().is_reg() {
            return Err(Errno::EINVAL);
        }
        node.truncate(len)
    }

    /// `ioctl`: `FIONREAD` (written to the returned value) for pipes and regular files;
    /// devices get everything else; ENOTTY otherwise.
    pub fn ioctl(&self, cmd: u32, arg: u64) -> KResult<u64> {
        match (&self.kind, cmd) {
            (Kind::Pipe(p, _), FIONREAD) => Ok(p.available() as u64),
            (Kind::Node, FIONREAD) if !self.is_dir() => {
                let size = self.node()?.stat().size as u64;
                Ok(size.saturating_sub(self.offset()))
            }
            (Kind::Device(d), _) => d.ioctl(self, cmd, arg),
            (Kind::Anon(a), _) => a.ioctl(self, cmd, arg),
            _ => Err(Errno::ENOTTY),
        }
    }

    /// Ready bits among `events` (`POLL*`), plus `POLLHUP`/`POLLERR` which are always
    /// reported.
    pub fn poll(&self, events: u32) -> u32 {
        match &self.kind {
            Kind::Pipe(p, end) => p.poll(*end, events),
            Kind::Device(d) => d.poll(self, events),
            Kind::Anon(a) => a.poll(self, events),
            Kind::Node => events & (POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM),
            Kind::Path => POLLNVAL,
        }
    }

    /// The queue woken when [`File::poll`]'s answer may change; `None` for files that are
    /// always ready. Wait with `wq.wait_until(|| f.poll(ev) != 0 || …, deadline)`.
    pub fn wait_queue(&self) -> Option<&WaitQueue> {
        match &self.kind {
            Kind::Pipe(p, _) => Some(p.wait_queue()),
            Kind::Device(d) => d.wait_queue(),
            Kind::Anon(a) => a.wait_queue(),
            _ => None,
        }
    }

    pub fn is_dir(&self) -> bool {
        self.inode.as_ref().is_some_and(|i| i.stat().is_dir())
    }

    /// The inode (regular files: what `mmap` and the ELF loader read through).
    pub fn inode(&self) -> Option<&InodeRef> {
        self.inode.as_ref()
    }

    /// Where this file was opened, as a base for `*at` calls and `fchdir` (None for pipes).
    pub fn path_ref(&self) -> Option<&PathRef> {
        self.path.as_ref()
    }

    /// The absolute path (from the top of its namespace) for `/proc/PID/fd`, `pipe:[ino]`
    /// for pipes, `(deleted)` once unlinked.
    pub fn path(&self) -> String {
        match &self.path {
            Some(p) => super::path_of(&super::namespace_root(p), p)
                .unwrap_or_else(|_| String::from("(deleted)")),
            None => match &self.kind {
                Kind::Anon(a) => a.link_name(self.anon_ino()),
                _ => alloc::format!("pipe:[{}]", self.stat().map_or(0, |s| s.ino)),
            },
        }
    }

    /// `fchmod`.
    pub fn chmod(&self, ctx: &FsCtx, mode: u32) -> KResult<()> {
        super::chmod_node(ctx, self.node().map_err(|_| Errno::EBADF)?, mode)
    }

    /// `fchown` (`None` leaves an id unchanged).
    pub fn chown(&self, ctx: &FsCtx, uid: Option<u32>, gid: Option<u32>) -> KResult<()> {
        super::chown_node(ctx, self.node().map_err(|_| Errno::EBADF)?, uid, gid)
    }
}

/// What the kernel proper does around file I/O (locks); nothing in host builds of the
/// file-system code.
#[cfg(target_os = "none")]
mod hooks {
    pub use super::super::lock::file_dropped;
}
#[cfg(not(target_os = "none"))]
mod hooks {
    use super::File;
    pub fn file_dropped(_: &File) {}
}

impl Drop for File {
    fn drop(&mut self) {
        hooks::file_dropped(self);
        if let Kind::Pipe(p, end) = &self.kind {
            p.close_end(*end);
        }
    }
}
