//! The VFS bridge: a file system whose every operation is a `rump_sys_*` call into the NetBSD
//! kernel, so busybox and bash work on a rump-mounted ext2 exactly as on tmpfs.
//!
//! A mount registers the AdrOS block device with etfs under `/adros/diskN` and has NetBSD's
//! ext2fs mount it on `/adros/mntN` inside the rump kernel. Every inode object here knows its
//! current location (parent directory node + name; renames and unlinks made through this
//! bridge keep it current), so most operations are one `*at` call relative to the parent
//! directory's rump descriptor. Descriptors are opened when first needed — a directory
//! looked into, a file read or written — and kept while the node lives; the most recently
//! used directories are kept alive (a small dentry cache), so a path walk costs one call per
//! component. A regular file about to lose its last name while in use is opened first, so its
//! data stays reachable as an open vnode's does. Inode objects are
//! unique per inode number while alive. NetBSD structures, flags and errno values are
//! translated in [`super::sys`].

use alloc::collections::{BTreeMap, VecDeque};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::any::Any;
use core::ffi::c_int;
use core::sync::atomic::{AtomicU32, Ordering};

use super::sys::{self, NbStat, NbTimespec};
use crate::errno::{Errno, KResult};
use crate::fs::consts::*;
use crate::fs::node::{
    DirEntry, FileSystem, Inode, InodeRef, NodeKind, SetAttr, Stat, StatFs, Timespec,
};
use crate::fs::sync::{SleepLock, SpinLock};

const EXT2_SUPER_MAGIC: u64 = 0xEF53;
static NEXT: AtomicU32 = AtomicU32::new(0);

pub struct RumpFs {
    /// Where NetBSD mounted it, in the rump kernel's namespace.
    mnt: String,
    /// The etfs key of the block device.
    key: String,
    fstype: &'static str,
    dev: u64,
    read_only: bool,
    root_ino: u64,
    rename: SleepLock<()>,
    nodes: SpinLock<BTreeMap<u64, Weak<RumpNode>>>,
    /// Recently used directories, kept open (most recent at the back).
    recent: SpinLock<alloc::collections::VecDeque<Arc<RumpNode>>>,
    me: Weak<RumpFs>,
}

/// How many directories each mount keeps open beyond their users.
const RECENT_DIRS: usize = 64;

static MOUNTED: SpinLock<Vec<Weak<RumpFs>>> = SpinLock::new(Vec::new());

fn check_alive() -> KResult<()> {
    if super::is_dead() {
        Err(Errno::EIO)
    } else {
        Ok(())
    }
}

/// NetBSD's `dev_t` encoding → Linux's.
fn nb_dev_to_linux(d: u64) -> u64 {
    let major = ((d & 0x000f_ff00) >> 8) as u32;
    let minor = ((d & 0xff) | ((d & 0xfff0_0000) >> 12)) as u32;
    makedev(major, minor)
}

fn linux_dev_to_nb(d: u64) -> u64 {
    let (ma, mi) = (major(d) as u64, minor(d) as u64);
    ((ma << 8) & 0x000f_ff00) | (mi & 0xff) | ((mi << 12) & 0xfff0_0000)
}

fn ts(t: NbTimespec) -> Timespec {
    Timespec {
        sec: t.tv_sec,
        nsec: t.tv_nsec,
    }
}

impl RumpFs {
    fn stat_of(&self, st: &NbStat) -> Stat {
        Stat {
            dev: self.dev,
            ino: st.st_ino,
            mode: st.st_mode,
            nlink: st.st_nlink as u64,
            uid: st.st_uid,
            gid: st.st_gid,
            rdev: nb_dev_to_linux(st.st_rdev),
            size: st.st_size,
            blksize: st.st_blksize as i64,
            blocks: st.st_blocks,
            atime: ts(st.st_atim),
            mtime: ts(st.st_mtim),
            ctime: ts(st.st_ctim),
        }
    }

    /// The node for the object `name` in `parent` (or the root when `parent` is None) with
    /// stat `st`: the live one for that inode number, or a new one (holding `fd`, a
    /// descriptor the caller opened for it, if any — else it is closed).
    fn node(
        &self,
        parent: Option<&Arc<RumpNode>>,
        name: &str,
        st: &NbStat,
        fd: Option<c_int>,
    ) -> KResult<Arc<RumpNode>> {
        let existing = self.nodes.lock().get(&st.st_ino).and_then(Weak::upgrade);
        if let Some(n) = existing {
            if let Some(fd) = fd {
                let mut slot = n.fd.lock();
                if slot.is_none() {
                    *slot = Some(fd);
                } else {
                    drop(slot);
                    let _ = sys::close(fd);
                }
            }
            return Ok(n);
        }
        let fs = self.me.upgrade().ok_or(Errno::EIO)?;
        let n = Arc::new(RumpNode {
            fs,
            ino: st.st_ino,
            mode: st.st_mode,
            fd: SpinLock::new(fd),
            loc: SpinLock::new(parent.map(|p| (p.clone(), String::from(name)))),
            cursor: SleepLock::new(Cursor::default()),
        });
        let mut m = self.nodes.lock();
        // Another thread may have made the same node meanwhile: keep the first.
        if let Some(other) = m.get(&st.st_ino).and_then(Weak::upgrade) {
            return Ok(other);
        }
        m.insert(st.st_ino, Arc::downgrade(&n));
        Ok(n)
    }

    fn live(&self, ino: u64) -> Option<Arc<RumpNode>> {
        self.nodes.lock().get(&ino).and_then(Weak::upgrade)
    }
}

impl Drop for RumpFs {
    fn drop(&mut self) {
        if super::is_dead() {
            return;
        }
        sys::sync();
        match sys::unmount(&self.mnt, 0) {
            Ok(()) => log::info!("rump: {} unmounted", self.mnt),
            Err(e) => {
                log::error!("rump: unmounting {}: {e:?}; forcing", self.mnt);
                let _ = sys::unmount(&self.mnt, sys::MNT_FORCE);
            }
        }
        let _ = sys::unlinkat(sys::AT_FDCWD, &self.mnt, sys::AT_REMOVEDIR);
        let _ = sys::etfs_remove(&self.key);
    }
}

impl FileSystem for RumpFs {
    fn name(&self) -> &'static str {
        self.fstype
    }
    fn root(&self) -> InodeRef {
        if let Some(n) = self.live(self.root_ino) {
            return n;
        }
        let mut st = sys::fstatat(sys::AT_FDCWD, &self.mnt, 0).unwrap_or_default();
        st.st_ino = self.root_ino;
        match self.node(None, "", &st, None) {
            Ok(n) => n,
            Err(e) => {
                // Only when the rump kernel died under us: a root that answers EIO.
                log::error!("rump: {}: cannot open the root: {e:?}", self.mnt);
                Arc::new(RumpNode {
                    fs: self.me.upgrade().expect("rump fs in use"),
                    ino: self.root_ino,
                    mode: S_IFDIR | 0o755,
                    fd: SpinLock::new(None),
                    loc: SpinLock::new(None),
                    cursor: SleepLock::new(Cursor::default()),
                })
            }
        }
    }
    fn dev(&self) -> u64 {
        self.dev
    }
    fn statfs(&self) -> StatFs {
        let root = self.root();
        let fd = root
            .as_any()
            .downcast_ref::<RumpNode>()
            .and_then(|n| n.fd().ok());
        match fd.map(sys::fstatvfs) {
            Some(Ok(s)) => StatFs {
                fs_type: EXT2_SUPER_MAGIC,
                bsize: s.f_bsize,
                blocks: s.f_blocks,
                bfree: s.f_bfree,
                bavail: s.f_bavail,
                files: s.f_files,
                ffree: s.f_ffree,
                fsid: self.dev,
                namelen: s.f_namemax,
                frsize: s.f_frsize,
                flags: u64::from(self.read_only),
            },
            _ => StatFs {
                fs_type: EXT2_SUPER_MAGIC,
                fsid: self.dev,
                namelen: 255,
                ..StatFs::default()
            },
        }
    }
    fn rename_lock(&self) -> &SleepLock<()> {
        &self.rename
    }
    fn driver(&self) -> Option<&'static str> {
        Some("rump")
    }
    fn detached(&self) {
        // The kept directories hold the file system; once users let go, it unmounts.
        let kept: alloc::vec::Vec<_> = self.recent.lock().drain(..).collect();
        drop(kept);
    }
}

/// Where a sequential `readdir` left off: NetBSD's `struct dirent` has no per-entry offset,
/// so offsets here count entries, and the descriptor's position after the last batch plus
/// that batch's unread entries let the next call continue without rescanning.
#[derive(Default)]
struct Cursor {
    /// Entry index of `pending[0]`.
    index: u64,
    /// Entries read and not yet passed by a caller's offset. Entries handed out stay
    /// until a later call starts past them: `getdents` asks for more entries than fit
    /// in the user's buffer and moves its offset back to the first one that did not fit.
    pending: VecDeque<DirEntry>,
    /// The descriptor's offset after the batch `pending` came from (-1: not started).
    pos: i64,
    at_end: bool,
}

pub struct RumpNode {
    fs: Arc<RumpFs>,
    ino: u64,
    mode: u32,
    /// Rump descriptor (directories, regular files), opened on first need.
    fd: SpinLock<Option<c_int>>,
    /// Current location: parent directory and name (None for the root or once unlinked).
    loc: SpinLock<Option<(Arc<RumpNode>, String)>>,
    cursor: SleepLock<Cursor>,
}

impl Drop for RumpNode {
    fn drop(&mut self) {
        {
            let mut m = self.fs.nodes.lock();
            if m.get(&self.ino).is_some_and(|w| w.strong_count() == 0) {
                m.remove(&self.ino);
            }
        }
        // Copied out first: an `if let` on the guard would keep the lock (interrupts off)
        // through the close.
        let fd = *self.fd.lock();
        if let Some(fd) = fd
            && !super::is_dead()
        {
            let _ = sys::close(fd);
        }
    }
}

impl RumpNode {
    fn is_root(&self) -> bool {
        self.ino == self.fs.root_ino
    }

    /// Where this node is, for the `*at` calls: (parent directory descriptor, name), or the
    /// mount point's path for the root.
    fn at(&self) -> KResult<(c_int, String)> {
        check_alive()?;
        if self.is_root() {
            return Ok((sys::AT_FDCWD, self.fs.mnt.clone()));
        }
        let (p, name) = self.loc.lock().clone().ok_or(Errno::ENOENT)?;
        Ok((p.fd()?, name))
    }

    /// Keeps this directory open for a while (the mount's small dentry cache).
    fn touch(self: &Arc<Self>) {
        let mut r = self.fs.recent.lock();
        if r.back().is_some_and(|n| Arc::ptr_eq(n, self)) {
            return;
        }
        r.retain(|n| !Arc::ptr_eq(n, self));
        r.push_back(self.clone());
        let old = (r.len() > RECENT_DIRS).then(|| r.pop_front()).flatten();
        drop(r);
        drop(old);
    }

    /// The node's rump descriptor, opened now (relative to its parent's) if it has none:
    /// directories and regular files only; a regular file read-write unless the file system
    /// or the file says no.
    fn fd(&self) -> KResult<c_int> {
        check_alive()?;
        if let Some(fd) = *self.fd.lock() {
            return Ok(fd);
        }
        let (dfd, name) = self.at()?;
        let fd = match self.mode & S_IFMT {
            S_IFDIR => sys::openat(
                dfd,
                &name,
                sys::O_RDONLY | sys::O_DIRECTORY | sys::O_NOFOLLOW,
                0,
            )?,
            S_IFREG if self.fs.read_only => {
                sys::openat(dfd, &name, sys::O_RDONLY | sys::O_NOFOLLOW, 0)?
            }
            S_IFREG => match sys::openat(dfd, &name, sys::O_RDWR | sys::O_NOFOLLOW, 0) {
                Err(Errno::EROFS | Errno::EACCES | Errno::ETXTBSY) => {
                    sys::openat(dfd, &name, sys::O_RDONLY | sys::O_NOFOLLOW, 0)?
                }
                r => r?,
            },
            _ => return Err(Errno::EINVAL),
        };
        let mut slot = self.fd.lock();
        match *slot {
            Some(other) => {
                drop(slot);
                let _ = sys::close(fd);
                Ok(other)
            }
            None => {
                *slot = Some(fd);
                Ok(fd)
            }
        }
    }

    fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }

    fn other<'a>(&self, n: &'a InodeRef) -> KResult<&'a RumpNode> {
        let o = n.as_any().downcast_ref::<RumpNode>().ok_or(Errno::EXDEV)?;
        if !Arc::ptr_eq(&o.fs, &self.fs) {
            return Err(Errno::EXDEV);
        }
        Ok(o)
    }

    fn me(&self) -> KResult<Arc<RumpNode>> {
        self.fs.live(self.ino).ok_or(Errno::EIO)
    }

    fn nb_stat(&self) -> KResult<NbStat> {
        check_alive()?;
        let fd = *self.fd.lock();
        match fd {
            Some(fd) => sys::fstat(fd),
            None => {
                let (dfd, name) = self.at()?;
                sys::fstatat(dfd, &name, sys::AT_SYMLINK_NOFOLLOW)
            }
        }
    }

    /// Before `name` in this directory (inode `ino`) stops naming it: a live regular file
    /// gets its descriptor now, while the name still leads to it.
    fn keep_open(&self, ino: u64) {
        if let Some(n) = self.fs.live(ino)
            && n.mode & S_IFMT == S_IFREG
        {
            let _ = n.fd();
        }
    }

    /// After `name` in this directory stopped naming the inode it named.
    fn forget(&self, ino: u64, name: &str) {
        if let Some(n) = self.fs.live(ino) {
            let mut l = n.loc.lock();
            if l.as_ref()
                .is_some_and(|(p, nm)| p.ino == self.ino && nm == name)
            {
                *l = None;
            }
        }
    }

    fn read_batch(&self, c: &mut Cursor) -> KResult<()> {
        let fd = self.fd()?;
        if c.pos < 0 {
            c.pos = 0;
        }
        sys::lseek(fd, c.pos, 0)?;
        let mut buf = alloc::vec![0u8; 8192];
        let n = sys::getdents(fd, &mut buf)?;
        c.pos = sys::lseek(fd, 0, 1)?;
        if n == 0 {
            c.at_end = true;
            return Ok(());
        }
        let mut off = 0usize;
        while off + 13 <= n {
            let ino = u64::from_ne_bytes(buf[off..off + 8].try_into().map_err(|_| Errno::EIO)?);
            let reclen = u16::from_ne_bytes([buf[off + 8], buf[off + 9]]) as usize;
            let namlen = u16::from_ne_bytes([buf[off + 10], buf[off + 11]]) as usize;
            let mut kind = buf[off + 12];
            if reclen == 0 || off + 13 + namlen > n {
                break;
            }
            let name = String::from_utf8_lossy(&buf[off + 13..off + 13 + namlen]).into_owned();
            if kind == DT_UNKNOWN {
                // NetBSD's ext2fs does not fill d_type; user space (ls, find) relies on it.
                kind = sys::fstatat(fd, &name, sys::AT_SYMLINK_NOFOLLOW)
                    .map(|s| crate::fs::node::dtype(s.st_mode))
                    .unwrap_or(DT_UNKNOWN);
            }
            let index = c.index + c.pending.len() as u64;
            c.pending.push_back(DirEntry {
                ino,
                kind,
                name,
                next_offset: index + 1,
            });
            off += reclen;
        }
        Ok(())
    }
}

impl Inode for RumpNode {
    fn stat(&self) -> Stat {
        match self.nb_stat() {
            // The node's own number: the root's may be remapped (see `mount_rump`).
            Ok(st) => Stat {
                ino: self.ino,
                ..self.fs.stat_of(&st)
            },
            Err(_) => Stat {
                dev: self.fs.dev,
                ino: self.ino,
                mode: self.mode,
                ..Stat::default()
            },
        }
    }

    fn set_attr(&self, a: &SetAttr) -> KResult<()> {
        let omit = NbTimespec {
            tv_sec: 0,
            tv_nsec: sys::UTIME_OMIT,
        };
        let times = (a.atime.is_some() || a.mtime.is_some()).then(|| {
            let conv = |t: Option<Timespec>| {
                t.map(|t| NbTimespec {
                    tv_sec: t.sec,
                    tv_nsec: t.nsec,
                })
                .unwrap_or(omit)
            };
            [conv(a.atime), conv(a.mtime)]
        });
        check_alive()?;
        let fd = *self.fd.lock();
        match fd {
            Some(fd) => {
                if let Some(p) = a.perm {
                    sys::fchmod(fd, p & 0o7777)?;
                }
                if a.uid.is_some() || a.gid.is_some() {
                    sys::fchown(fd, a.uid.unwrap_or(u32::MAX), a.gid.unwrap_or(u32::MAX))?;
                }
                if let Some(t) = &times {
                    sys::futimens(fd, t)?;
                }
            }
            None => {
                let (dfd, name) = self.at()?;
                if let Some(p) = a.perm {
                    sys::fchmodat(dfd, &name, p & 0o7777, sys::AT_SYMLINK_NOFOLLOW)?;
                }
                if a.uid.is_some() || a.gid.is_some() {
                    sys::fchownat(
                        dfd,
                        &name,
                        a.uid.unwrap_or(u32::MAX),
                        a.gid.unwrap_or(u32::MAX),
                        sys::AT_SYMLINK_NOFOLLOW,
                    )?;
                }
                if let Some(t) = &times {
                    sys::utimensat(dfd, &name, t, sys::AT_SYMLINK_NOFOLLOW)?;
                }
            }
        }
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn fs(&self) -> Arc<dyn FileSystem> {
        self.fs.clone()
    }

    fn lookup(&self, name: &str) -> KResult<InodeRef> {
        check_alive()?;
        if !self.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        if name == "." {
            return Ok(self.me()?);
        }
        if name == ".." {
            if self.is_root() {
                return Ok(self.me()?);
            }
            return self
                .loc
                .lock()
                .clone()
                .map(|(p, _)| p as InodeRef)
                .ok_or(Errno::ENOENT);
        }
        let me = self.me()?;
        let st = sys::fstatat(self.fd()?, name, sys::AT_SYMLINK_NOFOLLOW)?;
        me.touch();
        Ok(self.fs.node(Some(&me), name, &st, None)?)
    }

    fn create(
        &self,
        name: &str,
        kind: NodeKind<'_>,
        perm: u32,
        uid: u32,
        gid: u32,
    ) -> KResult<InodeRef> {
        let dfd = self.fd()?;
        let path = name;
        let perm = perm & 0o7777;
        let mut fd = None;
        match kind {
            NodeKind::Regular => {
                fd = Some(sys::openat(
                    dfd,
                    path,
                    sys::O_RDWR | sys::O_CREAT | sys::O_EXCL | sys::O_NOFOLLOW,
                    perm,
                )?)
            }
            NodeKind::Directory => sys::mkdirat(dfd, path, perm)?,
            NodeKind::Symlink(t) => sys::symlinkat(t, dfd, path)?,
            NodeKind::CharDev(r) => sys::mknodat(dfd, path, S_IFCHR | perm, linux_dev_to_nb(r))?,
            NodeKind::BlockDev(r) => sys::mknodat(dfd, path, S_IFBLK | perm, linux_dev_to_nb(r))?,
            NodeKind::Fifo => sys::mkfifoat(dfd, path, perm)?,
            NodeKind::Socket => return Err(Errno::EOPNOTSUPP),
        }
        let mut st = match fd {
            Some(f) => sys::fstat(f)?,
            None => sys::fstatat(dfd, path, sys::AT_SYMLINK_NOFOLLOW)?,
        };
        // Ownership as the caller's (the rump kernel acts as root, and gives new nodes the
        // directory's group, BSD style), and the exact mode (rump's umask is 0, but the
        // set-group-ID rules may differ).
        if st.st_uid != uid || st.st_gid != gid {
            sys::fchownat(dfd, path, uid, gid, sys::AT_SYMLINK_NOFOLLOW)?;
            st.st_uid = uid;
            st.st_gid = gid;
        }
        if !matches!(kind, NodeKind::Symlink(_)) && st.st_mode & 0o7777 != perm {
            sys::fchmodat(dfd, path, perm, 0)?;
        }
        Ok(self.fs.node(Some(&self.me()?), name, &st, fd)?)
    }

    fn link(&self, name: &str, target: &InodeRef) -> KResult<()> {
        let t = self.other(target)?;
        let (tfd, tname) = t.at()?;
        sys::linkat(tfd, &tname, self.fd()?, name)
    }

    fn unlink(&self, name: &str, dir: bool) -> KResult<()> {
        let dfd = self.fd()?;
        let st = sys::fstatat(dfd, name, sys::AT_SYMLINK_NOFOLLOW)?;
        let is_dir = st.st_mode & S_IFMT == S_IFDIR;
        match (dir, is_dir) {
            (false, true) => return Err(Errno::EISDIR),
            (true, false) => return Err(Errno::ENOTDIR),
            _ => {}
        }
        self.keep_open(st.st_ino);
        sys::unlinkat(dfd, name, if dir { sys::AT_REMOVEDIR } else { 0 })?;
        self.forget(st.st_ino, name);
        Ok(())
    }

    fn rename(&self, old: &str, new_dir: &InodeRef, new: &str, flags: u32) -> KResult<()> {
        let nd = self.other(new_dir)?;
        if flags & RENAME_EXCHANGE != 0 {
            return Err(Errno::EINVAL);
        }
        let (ffd, tfd) = (self.fd()?, nd.fd()?);
        let moving = sys::fstatat(ffd, old, sys::AT_SYMLINK_NOFOLLOW)?;
        let replaced = sys::fstatat(tfd, new, sys::AT_SYMLINK_NOFOLLOW).ok();
        if flags & RENAME_NOREPLACE != 0 && replaced.is_some() {
            return Err(Errno::EEXIST);
        }
        if let Some(r) = &replaced
            && r.st_ino != moving.st_ino
        {
            nd.keep_open(r.st_ino);
        }
        sys::renameat(ffd, old, tfd, new)?;
        if let Some(r) = replaced
            && r.st_ino != moving.st_ino
        {
            nd.forget(r.st_ino, new);
        }
        if let Some(n) = self.fs.live(moving.st_ino) {
            let mut l = n.loc.lock();
            if l.as_ref()
                .is_none_or(|(p, nm)| p.ino == self.ino && nm == old)
            {
                *l = Some((nd.me()?, new.to_string()));
            }
        }
        Ok(())
    }

    fn readdir(&self, offset: u64, max: usize) -> KResult<Vec<DirEntry>> {
        if !self.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        check_alive()?;
        let mut c = self.cursor.lock();
        if offset < c.index || offset > c.index + c.pending.len() as u64 && c.at_end || offset == 0
        {
            *c = Cursor {
                pos: -1,
                ..Cursor::default()
            };
        }
        // Drop what the caller has passed (reading on when it seeks ahead).
        loop {
            while c.pending.front().is_some_and(|e| e.next_offset <= offset) {
                c.pending.pop_front();
                c.index += 1;
            }
            if !c.pending.is_empty() || c.at_end {
                break;
            }
            self.read_batch(&mut c)?;
        }
        let mut out = Vec::new();
        let mut i = 0;
        while out.len() < max.max(1) {
            if i == c.pending.len() {
                if c.at_end {
                    break;
                }
                self.read_batch(&mut c)?;
                continue;
            }
            out.push(c.pending[i].clone());
            i += 1;
        }
        Ok(out)
    }

    fn read_at(&self, off: u64, buf: &mut [u8]) -> KResult<usize> {
        if self.is_dir() {
            return Err(Errno::EISDIR);
        }
        sys::pread(self.fd()?, buf, off)
    }

    fn write_at(&self, off: u64, buf: &[u8]) -> KResult<usize> {
        if self.is_dir() {
            return Err(Errno::EISDIR);
        }
        sys::pwrite(self.fd()?, buf, off)
            .map_err(|e| if e == Errno::EBADF { Errno::EROFS } else { e })
    }

    fn truncate(&self, len: u64) -> KResult<()> {
        sys::ftruncate(self.fd()?, len)
            .map_err(|e| if e == Errno::EBADF { Errno::EROFS } else { e })
    }

    fn sync(&self) -> KResult<()> {
        // Only a node with a descriptor can have been written through this bridge.
        let fd = *self.fd.lock();
        match fd {
            Some(fd) => {
                check_alive()?;
                sys::fsync(fd)
            }
            None => Ok(()),
        }
    }

    fn readlink(&self) -> KResult<String> {
        let (dfd, name) = self.at()?;
        let v = sys::readlinkat(dfd, &name)?;
        String::from_utf8(v).map_err(|_| Errno::EINVAL)
    }
}

/// `mount -t ext2 -o driver=rump SOURCE`: NetBSD's ext2fs, inside the rump kernel, on the
/// AdrOS block device `source`.
///
/// Like Linux's ext2 (and unlike NetBSD's default), metadata is written back asynchronously
/// (`MNT_ASYNC`) unless `-o sync` asks otherwise, and access times follow `relatime`.
pub fn mount_ext2(source: &str, read_only: bool, sync: bool) -> KResult<Arc<dyn FileSystem>> {
    mount_rump(source, read_only, sync, RumpFsKind::Ext2)
}

/// `mount -t vfat|msdos SOURCE`: NetBSD's msdosfs in the rump kernel (FAT12/16/32), with
/// long names (`MSDOSFSMNT_LONGNAME`, as NetBSD's `-o longnames`), files and directories
/// owned by root, mode 0755 (0777 & ~022, like Linux's default `umask=022`).
pub fn mount_msdos(source: &str, read_only: bool, sync: bool) -> KResult<Arc<dyn FileSystem>> {
    mount_rump(source, read_only, sync, RumpFsKind::Msdos)
}

/// The NetBSD file systems the bridge mounts.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RumpFsKind {
    Ext2,
    Msdos,
}

impl RumpFsKind {
    /// (AdrOS type name, NetBSD type name, what the log calls it).
    fn names(self) -> (&'static str, &'static str, &'static str) {
        match self {
            RumpFsKind::Ext2 => ("ext2", "ext2fs", "NetBSD ext2fs"),
            RumpFsKind::Msdos => ("vfat", "msdos", "NetBSD msdosfs"),
        }
    }
}

fn mount_rump(
    source: &str,
    read_only: bool,
    sync: bool,
    kind: RumpFsKind,
) -> KResult<Arc<dyn FileSystem>> {
    let (ty, nbty, what) = kind.names();
    super::ready()
        .inspect_err(|_| crate::println!("{ty}: the rump stack is {}", super::state_name()))?;
    let st = crate::fs::stat(&crate::fs::FsCtx::kernel(), None, source, true)?;
    if st.file_type() != S_IFBLK {
        return Err(Errno::ENOTBLK);
    }
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let (key, mnt) = (format!("/adros/disk{n}"), format!("/adros/mnt{n}"));
    if n == 0 {
        // Our VFS has applied the caller's umask already.
        sys::umask(0);
    }
    match sys::mkdirat(sys::AT_FDCWD, "/adros", 0o755) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(e),
    }
    sys::etfs_register_blk(&key, source)?;
    if let Err(e) = sys::mkdirat(sys::AT_FDCWD, &mnt, 0o755) {
        let _ = sys::etfs_remove(&key);
        return Err(e);
    }
    let flags = sys::MNT_RELATIME
        | if read_only { sys::MNT_RDONLY } else { 0 }
        | if sync {
            sys::MNT_SYNCHRONOUS
        } else {
            sys::MNT_ASYNC
        };
    let r = match kind {
        RumpFsKind::Ext2 => sys::mount_ufs(nbty, &mnt, flags, &key),
        RumpFsKind::Msdos => sys::mount_msdos(&mnt, flags, &key),
    };
    if let Err(e) = r {
        crate::println!("{ty}: {what} cannot mount {source}: {e:?}");
        let _ = sys::unlinkat(sys::AT_FDCWD, &mnt, sys::AT_REMOVEDIR);
        let _ = sys::etfs_remove(&key);
        return Err(e);
    }
    let root = sys::fstatat(sys::AT_FDCWD, &mnt, 0)?;
    log::info!(
        "{ty}: {source} mounted by {what} (rump, {mnt}{})",
        if read_only { ", read-only" } else { "" }
    );
    let fs = Arc::new_cyclic(|me| RumpFs {
        mnt,
        key,
        fstype: ty,
        dev: st.rdev,
        read_only,
        // NetBSD's msdosfs numbers a FAT32 root directory like the first entry in it
        // (both: its cluster's first block × entries per block), so a file there would
        // share the root's number; the root gets 1, which msdosfs gives only to a FAT12/16
        // root.
        root_ino: match kind {
            RumpFsKind::Ext2 => root.st_ino,
            RumpFsKind::Msdos => 1,
        },
        rename: SleepLock::new(()),
        nodes: SpinLock::new(BTreeMap::new()),
        recent: SpinLock::new(alloc::collections::VecDeque::new()),
        me: me.clone(),
    });
    MOUNTED.lock().push(Arc::downgrade(&fs));
    Ok(fs)
}

/// Writes back everything the rump kernel holds (`sync(2)`).
pub fn sync_all() {
    if super::is_dead() || MOUNTED.lock().iter().all(|w| w.strong_count() == 0) {
        return;
    }
    sys::sync();
    if let Err(e) = super::host::HOST.flush_all() {
        log::error!("rump: sync: flushing a device's write cache failed: {e:?}");
    }
    MOUNTED.lock().retain(|w| w.strong_count() > 0);
}
