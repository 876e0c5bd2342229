//! tmpfs: every node in memory. Regular files are sparse (a map of 4 KiB pages; holes read
//! as zeros), directories keep a stable per-entry offset for `getdents`, and the usual
//! Linux semantics hold for links, unlink-while-open, rename and timestamps. devfs is a
//! tmpfs instance too (device nodes resolve through the char-device registry).

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::any::Any;
use core::sync::atomic::{AtomicU64, Ordering};

use super::consts::*;
use super::node::*;
use super::pipe::Pipe;
use super::sync::{SleepLock, SpinLock, now};
use crate::errno::{Errno, KResult};

const PAGE: usize = 4096;
static NEXT_DEV: AtomicU64 = AtomicU64::new(1);

pub struct TmpFs {
    name: &'static str,
    dev: u64,
    next_ino: AtomicU64,
    root: SpinLock<Option<Arc<TmpInode>>>,
    rename: SleepLock<()>,
    pages: AtomicU64,
    inodes: AtomicU64,
}

struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u64,
    rdev: u64,
    atime: Timespec,
    mtime: Timespec,
    ctime: Timespec,
}

struct Dir {
    /// name → (offset cookie, node)
    entries: BTreeMap<String, (u64, Arc<TmpInode>)>,
    /// cookie → name, for `readdir` from an offset that survives inserts and removals.
    order: BTreeMap<u64, String>,
    next_cookie: u64,
    parent: Weak<TmpInode>,
}

struct Data {
    pages: BTreeMap<u64, Box<[u8]>>,
    size: u64,
}

enum Body {
    Dir(SpinLock<Dir>),
    File(SleepLock<Data>),
    Symlink(String),
    Fifo(Arc<Pipe>),
    Special,
}

pub struct TmpInode {
    ino: u64,
    fs: Arc<TmpFs>,
    me: Weak<TmpInode>,
    meta: SpinLock<Meta>,
    body: Body,
}

impl TmpFs {
    /// A new, empty instance whose root directory has permissions `root_perm`.
    pub fn new(name: &'static str, root_perm: u32) -> Arc<TmpFs> {
        let fs = Arc::new(TmpFs {
            name,
            dev: makedev(0, NEXT_DEV.fetch_add(1, Ordering::Relaxed) as u32),
            next_ino: AtomicU64::new(1),
            root: SpinLock::new(None),
            rename: SleepLock::new(()),
            pages: AtomicU64::new(0),
            inodes: AtomicU64::new(0),
        });
        let root = TmpInode::new(
            &fs,
            NodeKind::Directory,
            root_perm & 0o7777,
            0,
            0,
            Weak::new(),
        );
        *fs.root.lock() = Some(root);
        fs
    }

    /// Drops the root so an unmounted instance's tree can be freed (files still open stay
    /// alive until closed).
    pub fn release(&self) {
        self.root.lock().take();
    }
}

impl FileSystem for TmpFs {
    fn name(&self) -> &'static str {
        self.name
    }
    fn root(&self) -> InodeRef {
        let r = self.root.lock().clone();
        match r {
            Some(r) => r,
            None => TmpInode::new_detached(),
        }
    }
    fn dev(&self) -> u64 {
        self.dev
    }
    fn statfs(&self) -> StatFs {
        let used = self.pages.load(Ordering::Relaxed);
        let free = free_pages();
        StatFs {
            fs_type: TMPFS_MAGIC,
            bsize: PAGE as u64,
            blocks: used + free,
            bfree: free,
            bavail: free,
            files: self.inodes.load(Ordering::Relaxed) + free,
            ffree: free,
            fsid: self.dev,
            namelen: NAME_MAX as u64,
            frsize: PAGE as u64,
            flags: 0,
        }
    }
    fn rename_lock(&self) -> &SleepLock<()> {
        &self.rename
    }
}

#[cfg(target_os = "none")]
fn free_pages() -> u64 {
    crate::mm::phys::stats().0 as u64
}
#[cfg(not(target_os = "none"))]
fn free_pages() -> u64 {
    1 << 18
}

fn alloc_page() -> KResult<Box<[u8]>> {
    let mut v: Vec<u8> = Vec::new();
    v.try_reserve_exact(PAGE).map_err(|_| Errno::ENOSPC)?;
    v.resize(PAGE, 0);
    Ok(v.into_boxed_slice())
}

fn check_name(name: &str) -> KResult<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(Errno::EINVAL);
    }
    if super::bytename::byte_len(name) > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(())
}

impl TmpInode {
    fn new(
        fs: &Arc<TmpFs>,
        kind: NodeKind<'_>,
        perm: u32,
        uid: u32,
        gid: u32,
        parent: Weak<TmpInode>,
    ) -> Arc<TmpInode> {
        let t = now();
        let (body, nlink, rdev) = match kind {
            NodeKind::Directory => (
                Body::Dir(SpinLock::new(Dir {
                    entries: BTreeMap::new(),
                    order: BTreeMap::new(),
                    next_cookie: 2,
                    parent,
                })),
                2,
                0,
            ),
            NodeKind::Regular => (
                Body::File(SleepLock::new(Data {
                    pages: BTreeMap::new(),
                    size: 0,
                })),
                1,
                0,
            ),
            NodeKind::Symlink(target) => (Body::Symlink(target.to_string()), 1, 0),
            NodeKind::Fifo => (Body::Fifo(Pipe::new()), 1, 0),
            NodeKind::CharDev(d) | NodeKind::BlockDev(d) => (Body::Special, 1, d),
            NodeKind::Socket => (Body::Special, 1, 0),
        };
        fs.inodes.fetch_add(1, Ordering::Relaxed);
        Arc::new_cyclic(|me| TmpInode {
            ino: fs.next_ino.fetch_add(1, Ordering::Relaxed),
            fs: fs.clone(),
            me: me.clone(),
            meta: SpinLock::new(Meta {
                mode: kind.type_bits() | (perm & 0o7777),
                uid,
                gid,
                nlink,
                rdev,
                atime: t,
                mtime: t,
                ctime: t,
            }),
            body,
        })
    }

    /// An empty, deleted directory (the root of a released instance).
    fn new_detached() -> Arc<TmpInode> {
        let fs = TmpFs::new("tmpfs", 0o755);
        let r = fs.root.lock().take();
        r.unwrap_or_else(|| TmpInode::new(&fs, NodeKind::Directory, 0o755, 0, 0, Weak::new()))
    }

    fn arc(&self) -> Arc<TmpInode> {
        self.me
            .upgrade()
            .expect("a tmpfs inode is only used through its Arc")
    }

    fn dir(&self) -> KResult<&SpinLock<Dir>> {
        match &self.body {
            Body::Dir(d) => Ok(d),
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn is_dir(&self) -> bool {
        matches!(self.body, Body::Dir(_))
    }

    fn touch(&self, m: bool, c: bool) {
        let t = now();
        let mut meta = self.meta.lock();
        if m {
            meta.mtime = t;
        }
        if c {
            meta.ctime = t;
        }
    }

    fn add_nlink(&self, d: i64) {
        let mut m = self.meta.lock();
        m.nlink = (m.nlink as i64 + d).max(0) as u64;
        m.ctime = now();
    }

    fn insert(d: &mut Dir, name: &str, node: Arc<TmpInode>) {
        let c = d.next_cookie;
        d.next_cookie += 1;
        d.order.insert(c, name.to_string());
        d.entries.insert(name.to_string(), (c, node));
    }

    fn remove(d: &mut Dir, name: &str) -> Option<Arc<TmpInode>> {
        let (c, n) = d.entries.remove(name)?;
        d.order.remove(&c);
        Some(n)
    }

    fn dir_is_empty(&self) -> bool {
        match &self.body {
            Body::Dir(d) => d.lock().entries.is_empty(),
            _ => false,
        }
    }

    fn deleted(&self) -> bool {
        self.meta.lock().nlink == 0
    }
}

impl Drop for TmpInode {
    fn drop(&mut self) {
        self.fs.inodes.fetch_sub(1, Ordering::Relaxed);
        if let Body::File(d) = &self.body {
            self.fs
                .pages
                .fetch_sub(d.lock().pages.len() as u64, Ordering::Relaxed);
        }
    }
}

impl Inode for TmpInode {
    fn ident(&self) -> (u64, u64) {
        (self.fs.dev, self.ino)
    }

    fn stat(&self) -> Stat {
        let (size, blocks) = match &self.body {
            Body::File(d) => {
                let d = d.lock();
                (d.size as i64, (d.pages.len() * PAGE / 512) as i64)
            }
            Body::Dir(d) => ((d.lock().entries.len() as i64 + 2) * 20, 0),
            Body::Symlink(t) => (t.len() as i64, 0),
            _ => (0, 0),
        };
        let m = self.meta.lock();
        Stat {
            dev: self.fs.dev,
            ino: self.ino,
            mode: m.mode,
            nlink: m.nlink,
            uid: m.uid,
            gid: m.gid,
            rdev: m.rdev,
            size,
            blksize: PAGE as i64,
            blocks,
            atime: m.atime,
            mtime: m.mtime,
            ctime: m.ctime,
        }
    }

    fn set_attr(&self, a: &SetAttr) -> KResult<()> {
        let mut m = self.meta.lock();
        if let Some(p) = a.perm {
            m.mode = (m.mode & S_IFMT) | (p & 0o7777);
        }
        if let Some(u) = a.uid {
            m.uid = u;
        }
        if let Some(g) = a.gid {
            m.gid = g;
        }
        if let Some(t) = a.atime {
            m.atime = t;
        }
        if let Some(t) = a.mtime {
            m.mtime = t;
        }
        m.ctime = now();
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn fs(&self) -> Arc<dyn FileSystem> {
        self.fs.clone()
    }

    fn lookup(&self, name: &str) -> KResult<InodeRef> {
        let d = self.dir()?.lock();
        if name == "." {
            return Ok(self.arc());
        }
        if name == ".." {
            return match d.parent.upgrade() {
                Some(p) => Ok(p),
                None if Arc::ptr_eq(
                    &self.fs.root.lock().clone().unwrap_or_else(|| self.arc()),
                    &self.arc(),
                ) =>
                {
                    Ok(self.arc())
                }
                None => Err(Errno::ENOENT),
            };
        }
        d.entries
            .get(name)
            .map(|(_, n)| n.clone() as InodeRef)
            .ok_or(Errno::ENOENT)
    }

    fn create(
        &self,
        name: &str,
        kind: NodeKind<'_>,
        perm: u32,
        uid: u32,
        gid: u32,
    ) -> KResult<InodeRef> {
        check_name(name)?;
        let node;
        {
            let mut d = self.dir()?.lock();
            if self.deleted() {
                return Err(Errno::ENOENT);
            }
            if d.entries.contains_key(name) {
                return Err(Errno::EEXIST);
            }
            node = TmpInode::new(&self.fs, kind, perm, uid, gid, self.me.clone());
            Self::insert(&mut d, name, node.clone());
        }
        if matches!(kind, NodeKind::Directory) {
            self.add_nlink(1);
        }
        self.touch(true, true);
        Ok(node)
    }

    fn link(&self, name: &str, target: &InodeRef) -> KResult<()> {
        check_name(name)?;
        let t = target
            .as_any()
            .downcast_ref::<TmpInode>()
            .ok_or(Errno::EXDEV)?;
        if !Arc::ptr_eq(&t.fs, &self.fs) {
            return Err(Errno::EXDEV);
        }
        if t.is_dir() {
            return Err(Errno::EPERM);
        }
        {
            let mut d = self.dir()?.lock();
            if self.deleted() {
                return Err(Errno::ENOENT);
            }
            if d.entries.contains_key(name) {
                return Err(Errno::EEXIST);
            }
            if t.deleted() {
                return Err(Errno::ENOENT);
            }
            Self::insert(&mut d, name, t.arc());
        }
        t.add_nlink(1);
        self.touch(true, true);
        Ok(())
    }

    fn unlink(&self, name: &str, dir: bool) -> KResult<()> {
        check_name(name)?;
        let child = {
            let mut d = self.dir()?.lock();
            let child = d
                .entries
                .get(name)
                .map(|(_, n)| n.clone())
                .ok_or(Errno::ENOENT)?;
            match (dir, child.is_dir()) {
                (false, true) => return Err(Errno::EISDIR),
                (true, false) => return Err(Errno::ENOTDIR),
                (true, true) if !child.dir_is_empty() => return Err(Errno::ENOTEMPTY),
                _ => {}
            }
            Self::remove(&mut d, name);
            child
        };
        if dir {
            child.meta.lock().nlink = 0;
            self.add_nlink(-1);
        } else {
            child.add_nlink(-1);
        }
        self.touch(true, true);
        Ok(())
    }

    fn rename(&self, old: &str, new_dir: &InodeRef, new: &str, flags: u32) -> KResult<()> {
        check_name(old)?;
        check_name(new)?;
        if flags & RENAME_EXCHANGE != 0 {
            return Err(Errno::EINVAL);
        }
        let nd = new_dir
            .as_any()
            .downcast_ref::<TmpInode>()
            .ok_or(Errno::EXDEV)?;
        if !Arc::ptr_eq(&nd.fs, &self.fs) {
            return Err(Errno::EXDEV);
        }
        if self.ino == nd.ino {
            let mut g = self.dir()?.lock();
            return Self::rename_same(&mut g, old, new, flags, self);
        }
        // Two directory locks: lower inode number first.
        let (sl, dl) = (self.dir()?, nd.dir()?);
        let (mut a, mut b) = if self.ino < nd.ino {
            let a = sl.lock();
            (a, dl.lock())
        } else {
            let b = dl.lock();
            (sl.lock(), b)
        };
        let (src_dir, dst_dir): (&mut Dir, &mut Dir) = (&mut a, &mut b);
        if nd.deleted() {
            return Err(Errno::ENOENT);
        }
        let src = src_dir
            .entries
            .get(old)
            .map(|(_, n)| n.clone())
            .ok_or(Errno::ENOENT)?;
        let dst = dst_dir.entries.get(new).map(|(_, n)| n.clone());
        if let Some(dst) = &dst {
            if flags & RENAME_NOREPLACE != 0 {
                return Err(Errno::EEXIST);
            }
            if Arc::ptr_eq(dst, &src) {
                return Ok(());
            }
            if dst.ino == self.ino {
                // Replacing the source's own parent, which is not empty (its lock is held).
                return Err(Errno::ENOTEMPTY);
            }
            check_replace(&src, dst)?;
        }
        Self::remove(src_dir, old);
        if dst.is_some() {
            Self::remove(dst_dir, new);
        }
        Self::insert(dst_dir, new, src.clone());
        drop(a);
        drop(b);
        if let Some(dst) = dst {
            finish_replaced(&dst, nd);
        }
        if let Body::Dir(sd) = &src.body {
            sd.lock().parent = nd.me.clone();
            self.add_nlink(-1);
            nd.add_nlink(1);
        }
        src.touch(false, true);
        self.touch(true, true);
        nd.touch(true, true);
        Ok(())
    }

    fn readdir(&self, offset: u64, max: usize) -> KResult<Vec<DirEntry>> {
        let d = self.dir()?.lock();
        let mut v = Vec::new();
        if offset == 0 && v.len() < max {
            v.push(DirEntry {
                ino: self.ino,
                kind: DT_DIR,
                name: ".".into(),
                next_offset: 1,
            });
        }
        if offset <= 1 && v.len() < max {
            let pino = d.parent.upgrade().map_or(self.ino, |p| p.ino);
            v.push(DirEntry {
                ino: pino,
                kind: DT_DIR,
                name: "..".into(),
                next_offset: 2,
            });
        }
        for (&c, name) in d.order.range(offset.max(2)..) {
            if v.len() >= max {
                break;
            }
            if let Some((_, n)) = d.entries.get(name) {
                let mode = n.meta.lock().mode;
                v.push(DirEntry {
                    ino: n.ino,
                    kind: dtype(mode),
                    name: name.clone(),
                    next_offset: c + 1,
                });
            }
        }
        Ok(v)
    }

    fn read_at(&self, off: u64, buf: &mut [u8]) -> KResult<usize> {
        let data = match &self.body {
            Body::File(d) => d.lock(),
            Body::Dir(_) => return Err(Errno::EISDIR),
            _ => return Err(Errno::EINVAL),
        };
        if off >= data.size {
            return Ok(0);
        }
        let n = buf.len().min((data.size - off) as usize);
        let mut done = 0;
        while done < n {
            let pos = off + done as u64;
            let (pg, po) = (pos / PAGE as u64, (pos % PAGE as u64) as usize);
            let chunk = (PAGE - po).min(n - done);
            match data.pages.get(&pg) {
                Some(p) => buf[done..done + chunk].copy_from_slice(&p[po..po + chunk]),
                None => buf[done..done + chunk].fill(0),
            }
            done += chunk;
        }
        drop(data);
        self.meta.lock().atime = now();
        Ok(n)
    }

    fn write_at(&self, off: u64, buf: &[u8]) -> KResult<usize> {
        self.write_locked(Some(off), buf).map(|(_, n)| n)
    }

    fn append(&self, buf: &[u8]) -> KResult<(u64, usize)> {
        self.write_locked(None, buf)
    }

    fn truncate(&self, len: u64) -> KResult<()> {
        let mut data = match &self.body {
            Body::File(d) => d.lock(),
            Body::Dir(_) => return Err(Errno::EISDIR),
            _ => return Err(Errno::EINVAL),
        };
        if len > i64::MAX as u64 {
            return Err(Errno::EFBIG);
        }
        if len < data.size {
            let first_gone = len.div_ceil(PAGE as u64);
            let gone: Vec<u64> = data.pages.range(first_gone..).map(|(&k, _)| k).collect();
            for k in &gone {
                data.pages.remove(k);
            }
            self.fs
                .pages
                .fetch_sub(gone.len() as u64, Ordering::Relaxed);
            let po = (len % PAGE as u64) as usize;
            if po != 0
                && let Some(p) = data.pages.get_mut(&(len / PAGE as u64))
            {
                p[po..].fill(0);
            }
        }
        data.size = len;
        drop(data);
        self.touch(true, true);
        Ok(())
    }

    fn readlink(&self) -> KResult<String> {
        match &self.body {
            Body::Symlink(t) => Ok(t.clone()),
            _ => Err(Errno::EINVAL),
        }
    }

    fn fifo(&self) -> Option<Arc<Pipe>> {
        match &self.body {
            Body::Fifo(p) => Some(p.clone()),
            _ => None,
        }
    }
}

impl TmpInode {
    /// Writes at `off` (None: at the end, under the same lock that finds the end).
    fn write_locked(&self, off: Option<u64>, buf: &[u8]) -> KResult<(u64, usize)> {
        let mut data = match &self.body {
            Body::File(d) => d.lock(),
            Body::Dir(_) => return Err(Errno::EISDIR),
            _ => return Err(Errno::EINVAL),
        };
        let off = off.unwrap_or(data.size);
        off.checked_add(buf.len() as u64)
            .filter(|&e| e <= i64::MAX as u64)
            .ok_or(Errno::EFBIG)?;
        let mut done = 0;
        while done < buf.len() {
            let pos = off + done as u64;
            let (pg, po) = (pos / PAGE as u64, (pos % PAGE as u64) as usize);
            let chunk = (PAGE - po).min(buf.len() - done);
            if let alloc::collections::btree_map::Entry::Vacant(slot) = data.pages.entry(pg) {
                match alloc_page() {
                    Ok(p) => {
                        slot.insert(p);
                        self.fs.pages.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) if done == 0 => return Err(e),
                    Err(_) => break,
                }
            }
            if let Some(p) = data.pages.get_mut(&pg) {
                p[po..po + chunk].copy_from_slice(&buf[done..done + chunk]);
            }
            done += chunk;
        }
        data.size = data.size.max(off + done as u64);
        drop(data);
        self.touch(true, true);
        Ok((off, done))
    }
}

/// May `src` replace `dst` in a rename?
fn check_replace(src: &Arc<TmpInode>, dst: &Arc<TmpInode>) -> KResult<()> {
    match (src.is_dir(), dst.is_dir()) {
        (true, false) => Err(Errno::ENOTDIR),
        (false, true) => Err(Errno::EISDIR),
        (true, true) if !dst.dir_is_empty() => Err(Errno::ENOTEMPTY),
        _ => Ok(()),
    }
}

/// Link-count bookkeeping for a node a rename replaced in `dir`.
fn finish_replaced(dst: &Arc<TmpInode>, dir: &TmpInode) {
    if dst.is_dir() {
        dst.meta.lock().nlink = 0;
        dir.add_nlink(-1);
    } else {
        dst.add_nlink(-1);
    }
}

impl TmpInode {
    fn rename_same(d: &mut Dir, old: &str, new: &str, flags: u32, dir: &TmpInode) -> KResult<()> {
        let src = d
            .entries
            .get(old)
            .map(|(_, n)| n.clone())
            .ok_or(Errno::ENOENT)?;
        if old == new {
            return Ok(());
        }
        let dst = d.entries.get(new).map(|(_, n)| n.clone());
        if let Some(dst) = &dst {
            if flags & RENAME_NOREPLACE != 0 {
                return Err(Errno::EEXIST);
            }
            if Arc::ptr_eq(dst, &src) {
                return Ok(());
            }
            check_replace(&src, dst)?;
        }
        Self::remove(d, old);
        if dst.is_some() {
            Self::remove(d, new);
        }
        Self::insert(d, new, src.clone());
        // The caller's guard on `d` is still held: only touch other locks below.
        if let Some(dst) = dst {
            if dst.is_dir() {
                dst.meta.lock().nlink = 0;
                let mut m = dir.meta.lock();
                m.nlink = m.nlink.saturating_sub(1);
            } else {
                dst.add_nlink(-1);
            }
        }
        src.touch(false, true);
        dir.touch(true, true);
        Ok(())
    }
}
