//! Per-process file-descriptor tables.

use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::errno::{Errno, KResult};
use crate::fs::File;

pub const MAX_FDS: usize = 1024;

#[derive(Clone)]
pub struct FdEntry {
    pub file: Arc<File>,
    pub cloexec: bool,
}

/// The default RLIMIT_NOFILE (soft, hard), as Linux sets it.
pub const NOFILE_DEFAULT: (u64, u64) = (1024, 4096);

/// A process's descriptors and its RLIMIT_NOFILE (inherited through fork and exec).
///
/// Closing a descriptor (close, dup2 over it, close-on-exec, exit) releases the calling
/// process's POSIX locks on that file (`fs::lock::fd_closed`); descriptor tables are only
/// ever changed by their own process.
pub struct FdTable {
    fds: Vec<Option<FdEntry>>,
    /// RLIMIT_NOFILE: (soft, hard). No descriptor at or above the soft limit is handed out.
    pub nofile: (u64, u64),
}

impl Default for FdTable {
    fn default() -> Self {
        Self::new()
    }
}

impl FdTable {
    pub fn new() -> Self {
        Self {
            fds: Vec::new(),
            nofile: NOFILE_DEFAULT,
        }
    }

    pub fn clone_table(&self) -> Self {
        Self {
            fds: self.fds.clone(),
            nofile: self.nofile,
        }
    }

    fn limit(&self) -> usize {
        usize::try_from(self.nofile.0)
            .unwrap_or(MAX_FDS)
            .min(MAX_FDS)
    }

    pub fn get(&self, fd: i32) -> KResult<Arc<File>> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.fds.get(i))
            .and_then(|e| e.as_ref())
            .map(|e| e.file.clone())
            .ok_or(Errno::EBADF)
    }

    pub fn entry(&self, fd: i32) -> KResult<&FdEntry> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.fds.get(i))
            .and_then(|e| e.as_ref())
            .ok_or(Errno::EBADF)
    }

    pub fn set_cloexec(&mut self, fd: i32, on: bool) -> KResult<()> {
        let e = usize::try_from(fd)
            .ok()
            .and_then(|i| self.fds.get_mut(i))
            .and_then(|e| e.as_mut())
            .ok_or(Errno::EBADF)?;
        e.cloexec = on;
        Ok(())
    }

    /// Lowest free descriptor >= `min`.
    pub fn insert_from(&mut self, min: usize, file: Arc<File>, cloexec: bool) -> KResult<i32> {
        let mut i = min;
        while i < self.fds.len() && self.fds[i].is_some() {
            i += 1;
        }
        if i >= self.limit() {
            return Err(Errno::EMFILE);
        }
        if i >= self.fds.len() {
            self.fds.resize(i + 1, None);
        }
        self.fds[i] = Some(FdEntry { file, cloexec });
        Ok(i as i32)
    }

    pub fn insert(&mut self, file: Arc<File>, cloexec: bool) -> KResult<i32> {
        self.insert_from(0, file, cloexec)
    }

    /// Puts `file` at exactly `fd` (dup2), returning what was there.
    pub fn install(&mut self, fd: i32, file: Arc<File>, cloexec: bool) -> KResult<Option<FdEntry>> {
        let i = usize::try_from(fd)
            .ok()
            .filter(|&i| i < self.limit())
            .ok_or(Errno::EBADF)?;
        if i >= self.fds.len() {
            self.fds.resize(i + 1, None);
        }
        let prev = self.fds[i].replace(FdEntry { file, cloexec });
        if let Some(p) = &prev {
            crate::fs::lock::fd_closed(&p.file);
        }
        Ok(prev)
    }

    pub fn remove(&mut self, fd: i32) -> KResult<FdEntry> {
        let e = usize::try_from(fd)
            .ok()
            .and_then(|i| self.fds.get_mut(i))
            .and_then(|e| e.take())
            .ok_or(Errno::EBADF)?;
        crate::fs::lock::fd_closed(&e.file);
        Ok(e)
    }

    /// Removes the close-on-exec descriptors and returns their files: the caller drops them
    /// after releasing the table's lock (closing may call into the rump kernel).
    pub fn close_on_exec(&mut self) -> Vec<Arc<File>> {
        let mut closed = Vec::new();
        for e in self.fds.iter_mut() {
            if let Some(x) = e.take_if(|x| x.cloexec) {
                crate::fs::lock::fd_closed(&x.file);
                closed.push(x.file);
            }
        }
        closed
    }

    pub fn close_all(&mut self) {
        for e in self.fds.drain(..).flatten() {
            crate::fs::lock::fd_closed(&e.file);
        }
    }

    /// (fd, file) pairs, for /proc/PID/fd.
    pub fn list(&self) -> Vec<(i32, Arc<File>)> {
        self.fds
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.as_ref().map(|e| (i as i32, e.file.clone())))
            .collect()
    }
}

/// Opens /dev/console as fds 0, 1 and 2 of a new process.
pub fn open_console_stdio(p: &super::Process) -> KResult<()> {
    let ctx = p.fs_ctx();
    let f = crate::fs::open(&ctx, None, "/dev/console", 2 /* O_RDWR */, 0)?;
    let mut t = p.files.lock();
    for _ in 0..3 {
        t.insert(f.clone(), false)?;
    }
    Ok(())
}
