//! Advisory file locks: `flock(2)` locks, owned by an open file description, and POSIX
//! byte-range locks (`fcntl` F_SETLK/F_SETLKW/F_GETLK), owned by a process, or by an open
//! file description for the F_OFD_* variants. flock locks and range locks never conflict
//! with each other (as on Linux); POSIX and OFD range locks share one space.
//!
//! The table is global, keyed by the inode's address (a locked file's inode is kept alive
//! by the `File` that holds or last held the lock). Releases:
//! - flock and OFD locks: `LOCK_UN`/`F_UNLCK`, or the last reference to the open file
//!   description going away ([`file_dropped`], from `File`'s destructor);
//! - POSIX locks: `F_UNLCK`, or the owning process closing *any* descriptor of the file
//!   ([`fd_closed`], from the descriptor table: close, dup2 over it, exec's close-on-exec,
//!   exit).
//!
//! Blocking requests sleep on one wait queue, woken whenever a lock is released; a pending
//! signal ends the wait with `ERESTARTSYS`. Deadlock detection (EDEADLK) is not done.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::File;
use crate::errno::{Errno, KResult};
use crate::sched::wait::WaitQueue;
use crate::sync::spin::IrqSpinLock;

/// Who owns a range lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// A process (classic POSIX locks).
    Process(u32),
    /// An open file description (F_OFD_*), by its address.
    File(usize),
}

#[derive(Clone, Copy, Debug)]
struct Range {
    owner: Owner,
    /// The pid F_GETLK reports (-1 for OFD locks).
    pid: i32,
    write: bool,
    start: u64,
    /// Exclusive; u64::MAX means "to the end of the file, however far it grows".
    end: u64,
}

#[derive(Default)]
struct InodeLocks {
    /// flock locks: (open file description address, exclusive).
    flocks: Vec<(usize, bool)>,
    ranges: Vec<Range>,
}

impl InodeLocks {
    fn is_empty(&self) -> bool {
        self.flocks.is_empty() && self.ranges.is_empty()
    }

    fn range_conflict(&self, owner: Owner, write: bool, start: u64, end: u64) -> Option<Range> {
        self.ranges
            .iter()
            .find(|r| r.owner != owner && r.start < end && start < r.end && (write || r.write))
            .copied()
    }

    /// Removes `owner`'s locks over `[start, end)`, splitting the ones that stick out.
    fn unlock_range(&mut self, owner: Owner, start: u64, end: u64) {
        let mut keep = Vec::with_capacity(self.ranges.len());
        for r in self.ranges.drain(..) {
            if r.owner != owner || r.end <= start || end <= r.start {
                keep.push(r);
                continue;
            }
            if r.start < start {
                keep.push(Range { end: start, ..r });
            }
            if end < r.end {
                keep.push(Range { start: end, ..r });
            }
        }
        self.ranges = keep;
    }
}

static LOCKS: IrqSpinLock<BTreeMap<usize, InodeLocks>> = IrqSpinLock::new(BTreeMap::new());
/// Everyone waiting for a lock sleeps here; every release wakes them all to retry.
static WAITERS: WaitQueue = WaitQueue::new();

fn inode_key(f: &File) -> KResult<usize> {
    let i = f.inode().ok_or(Errno::EBADF)?;
    Ok(Arc::as_ptr(i) as *const u8 as usize)
}

fn file_key(f: &File) -> usize {
    f as *const File as usize
}

/// Waits until `attempt` stops returning EAGAIN (or a signal arrives: ERESTARTSYS).
fn blocking(mut attempt: impl FnMut() -> KResult<()>) -> KResult<()> {
    let mut result = Ok(());
    WAITERS.wait_until(
        || {
            match attempt() {
                Err(Errno::EAGAIN) => {}
                r => {
                    result = r;
                    return true;
                }
            }
            if crate::proc::signal::pending_for_current() {
                result = Err(Errno::ERESTARTSYS);
                return true;
            }
            false
        },
        None,
    );
    result
}

pub const LOCK_SH: u32 = 1;
pub const LOCK_EX: u32 = 2;
pub const LOCK_NB: u32 = 4;
pub const LOCK_UN: u32 = 8;

/// `flock(2)` on the open file description `f`.
pub fn flock(f: &Arc<File>, op: u32) -> KResult<()> {
    let ino = inode_key(f)?;
    let me = file_key(f);
    let nb = op & LOCK_NB != 0;
    let excl = match op & !LOCK_NB {
        LOCK_SH => false,
        LOCK_EX => true,
        LOCK_UN => {
            release(ino, |l| l.flocks.retain(|&(o, _)| o != me));
            return Ok(());
        }
        _ => return Err(Errno::EINVAL),
    };
    // A conversion first gives up the old lock (as Linux does), so waiters may get in.
    let held = LOCKS
        .lock()
        .get(&ino)
        .and_then(|l| l.flocks.iter().find(|(o, _)| *o == me).map(|&(_, x)| x));
    if held.is_some_and(|x| x != excl) {
        release(ino, |l| l.flocks.retain(|&(o, _)| o != me));
    }
    let attempt = || {
        let mut g = LOCKS.lock();
        let l = g.entry(ino).or_default();
        if l.flocks.iter().any(|&(o, x)| o != me && (x || excl)) {
            return Err(Errno::EAGAIN);
        }
        if !l.flocks.iter().any(|&(o, _)| o == me) {
            l.flocks.push((me, excl));
        }
        Ok(())
    };
    if nb {
        return attempt();
    }
    blocking(attempt)
}

/// Runs `f` on the inode's locks, drops the entry when empty and wakes the waiters.
fn release(ino: usize, f: impl FnOnce(&mut InodeLocks)) {
    {
        let mut g = LOCKS.lock();
        if let Some(l) = g.get_mut(&ino) {
            f(l);
            if l.is_empty() {
                g.remove(&ino);
            }
        }
    }
    WAITERS.wake_all();
}

/// A byte-range request, already resolved to absolute offsets.
#[derive(Clone, Copy, Debug)]
pub struct RangeReq {
    /// 0 F_RDLCK, 1 F_WRLCK, 2 F_UNLCK.
    pub kind: i16,
    pub start: u64,
    pub end: u64,
}

pub const F_RDLCK: i16 = 0;
pub const F_WRLCK: i16 = 1;
pub const F_UNLCK: i16 = 2;

/// F_SETLK/F_SETLKW (and the OFD forms): sets or clears a range lock for `owner`.
pub fn set_range(f: &Arc<File>, owner: Owner, pid: i32, req: RangeReq, wait: bool) -> KResult<()> {
    let ino = inode_key(f)?;
    if req.kind == F_UNLCK {
        release(ino, |l| l.unlock_range(owner, req.start, req.end));
        return Ok(());
    }
    let write = req.kind == F_WRLCK;
    let attempt = || {
        let mut g = LOCKS.lock();
        let l = g.entry(ino).or_default();
        if l.range_conflict(owner, write, req.start, req.end).is_some() {
            return Err(Errno::EAGAIN);
        }
        l.unlock_range(owner, req.start, req.end);
        l.ranges.push(Range {
            owner,
            pid,
            write,
            start: req.start,
            end: req.end,
        });
        Ok(())
    };
    if !wait {
        return attempt();
    }
    blocking(attempt)
}

/// F_GETLK: the first lock that would block `req`, as (type, start, end, pid); None if the
/// request could be granted.
pub fn get_range(
    f: &Arc<File>,
    owner: Owner,
    req: RangeReq,
) -> KResult<Option<(i16, u64, u64, i32)>> {
    let ino = inode_key(f)?;
    let g = LOCKS.lock();
    let hit = g
        .get(&ino)
        .and_then(|l| l.range_conflict(owner, req.kind == F_WRLCK, req.start, req.end));
    Ok(hit.map(|r| {
        (
            if r.write { F_WRLCK } else { F_RDLCK },
            r.start,
            r.end,
            r.pid,
        )
    }))
}

/// A descriptor of `f` was closed by the calling process: its POSIX locks on the file go.
pub fn fd_closed(f: &File) {
    let Ok(ino) = inode_key(f) else { return };
    let Some(p) = crate::proc::current_process() else {
        return;
    };
    let owner = Owner::Process(p.pid);
    let has = LOCKS
        .lock()
        .get(&ino)
        .is_some_and(|l| l.ranges.iter().any(|r| r.owner == owner));
    if has {
        release(ino, |l| l.ranges.retain(|r| r.owner != owner));
    }
}

/// The open file description `f` is going away: its flock and OFD locks go.
pub fn file_dropped(f: &File) {
    let Ok(ino) = inode_key(f) else { return };
    let me = file_key(f);
    let has = LOCKS.lock().get(&ino).is_some_and(|l| {
        l.flocks.iter().any(|&(o, _)| o == me)
            || l.ranges.iter().any(|r| r.owner == Owner::File(me))
    });
    if has {
        release(ino, |l| {
            l.flocks.retain(|&(o, _)| o != me);
            l.ranges.retain(|r| r.owner != Owner::File(me));
        });
    }
}

pub const F_GETLK: u64 = 5;
pub const F_SETLK: u64 = 6;
pub const F_SETLKW: u64 = 7;
pub const F_OFD_GETLK: u64 = 36;
pub const F_OFD_SETLK: u64 = 37;
pub const F_OFD_SETLKW: u64 = 38;

/// `fcntl(fd, cmd, struct flock *arg)` for the lock commands above.
pub fn fcntl(f: &Arc<File>, cmd: u64, arg: u64) -> KResult<u64> {
    use crate::arch::uaccess::{read_val, write_val};
    use crate::syscall::abi::Flock;
    let fl: Flock = read_val(arg)?;
    let (kind, whence, start, len, l_pid) =
        (fl.l_type, fl.l_whence, fl.l_start, fl.l_len, fl.l_pid);
    let ofd = matches!(cmd, F_OFD_GETLK | F_OFD_SETLK | F_OFD_SETLKW);
    if ofd && l_pid != 0 {
        return Err(Errno::EINVAL);
    }
    if !matches!(kind, F_RDLCK | F_WRLCK | F_UNLCK) {
        return Err(Errno::EINVAL);
    }
    let base: i64 = match whence {
        0 => 0,
        1 => i64::try_from(f.offset()).map_err(|_| Errno::EOVERFLOW)?,
        2 => f.stat()?.size,
        _ => return Err(Errno::EINVAL),
    };
    let from = base.checked_add(start).ok_or(Errno::EOVERFLOW)?;
    let (s, e) = match len {
        0 => (from, i64::MAX),
        l if l > 0 => (from, from.checked_add(l).ok_or(Errno::EOVERFLOW)?),
        l => (from.checked_add(l).ok_or(Errno::EINVAL)?, from),
    };
    if s < 0 {
        return Err(Errno::EINVAL);
    }
    let req = RangeReq {
        kind,
        start: s as u64,
        end: if len == 0 { u64::MAX } else { e as u64 },
    };
    let pid = crate::proc::current_process().map(|p| p.pid).unwrap_or(0);
    let owner = if ofd {
        Owner::File(file_key(f))
    } else {
        Owner::Process(pid)
    };
    match cmd {
        F_GETLK | F_OFD_GETLK => {
            if kind == F_UNLCK {
                return Err(Errno::EINVAL);
            }
            match get_range(f, owner, req)? {
                // No conflict: only l_type changes, as on Linux.
                None => write_val(arg + core::mem::offset_of!(Flock, l_type) as u64, &F_UNLCK)?,
                Some((t, ls, le, lp)) => {
                    let conflict = Flock {
                        l_type: t,
                        l_whence: 0, // SEEK_SET
                        l_start: ls as i64,
                        l_len: if le == u64::MAX { 0 } else { (le - ls) as i64 },
                        l_pid: lp,
                        ..Default::default()
                    };
                    write_val(arg, &conflict)?;
                }
            }
            Ok(0)
        }
        _ => {
            // A read lock needs the file open for reading, a write lock for writing.
            let acc = f.flags() & super::consts::O_ACCMODE;
            if (kind == F_RDLCK && acc == super::consts::O_WRONLY)
                || (kind == F_WRLCK && acc == super::consts::O_RDONLY)
            {
                return Err(Errno::EBADF);
            }
            let wait = matches!(cmd, F_SETLKW | F_OFD_SETLKW);
            set_range(f, owner, if ofd { -1 } else { pid as i32 }, req, wait)?;
            Ok(0)
        }
    }
}
