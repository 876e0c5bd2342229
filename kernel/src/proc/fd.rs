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

#[derive(Default)]
pub struct FdTable {
    fds: Vec<Option<FdEntry>>,
}

impl FdTable {
    pub fn new() -> Self {
        Self { fds: Vec::new() }
    }

    pub fn clone_table(&self) -> Self {
        Self { fds: self.fds.clone() }
    }

    pub fn get(&self, fd: i32) -> KResult<Arc<File>> {
        usize::try_from(fd).ok().and_then(|i| self.fds.get(i)).and_then(|e| e.as_ref()).map(|e| e.file.clone()).ok_or(Errno::EBADF)
    }

    pub fn entry(&self, fd: i32) -> KResult<&FdEntry> {
        usize::try_from(fd).ok().and_then(|i| self.fds.get(i)).and_then(|e| e.as_ref()).ok_or(Errno::EBADF)
    }

    pub fn set_cloexec(&mut self, fd: i32, on: bool) -> KResult<()> {
        let e = usize::try_from(fd).ok().and_then(|i| self.fds.get_mut(i)).and_then(|e| e.as_mut()).ok_or(Errno::EBADF)?;
        e.cloexec = on;
        Ok(())
    }

    /// Lowest free descriptor >= `min`.
    pub fn insert_from(&mut self, min: usize, file: Arc<File>, cloexec: bool) -> KResult<i32> {
        let mut i = min;
        while i < self.fds.len() && self.fds[i].is_some() {
            i += 1;
        }
        if i >= MAX_FDS {
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
        let i = usize::try_from(fd).ok().filter(|&i| i < MAX_FDS).ok_or(Errno::EBADF)?;
        if i >= self.fds.len() {
            self.fds.resize(i + 1, None);
        }
        Ok(self.fds[i].replace(FdEntry { file, cloexec }))
    }

    pub fn remove(&mut self, fd: i32) -> KResult<FdEntry> {
        usize::try_from(fd).ok().and_then(|i| self.fds.get_mut(i)).and_then(|e| e.take()).ok_or(Errno::EBADF)
    }

    pub fn close_on_exec(&mut self) {
        for e in self.fds.iter_mut() {
            if e.as_ref().is_some_and(|x| x.cloexec) {
                *e = None;
            }
        }
    }

    pub fn close_all(&mut self) {
        self.fds.clear();
    }

    /// (fd, file) pairs, for /proc/PID/fd.
    pub fn list(&self) -> Vec<(i32, Arc<File>)> {
        self.fds.iter().enumerate().filter_map(|(i, e)| e.as_ref().map(|e| (i as i32, e.file.clone()))).collect()
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
