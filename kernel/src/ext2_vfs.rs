//! `mount -t ext2`: the VFS adapter over the native `adros-ext2` driver on a block device.
//!
//! Options (`mount -o`): `ro`, `rw`, `driver=native|rump`. Without `driver=`, `fs.ext2=` on
//! the kernel command line decides, else the rump stack (NetBSD's ext2fs, [`crate::rump::vfs`])
//! when it is linked, else this native driver. `driver=rump` without the components answers
//! ENODEV and says "rump ext2 not linked". One sleeping lock serialises the file system; in-memory inode
//! objects are unique per inode number so an unlinked-but-open inode is freed when its
//! last user lets go. Metadata is written back at unmount (when the last reference to the
//! mount goes), by `sync(2)`-style [`sync_all`], and when the metadata cache fills.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::any::Any;
use core::sync::atomic::{AtomicU64, Ordering};

use adros_ext2::{self as e2, Ext2};

use crate::block::{self, BlockDev};
use crate::errno::{Errno, KResult};
use crate::fs::bytename;
use crate::fs::consts::*;
use crate::fs::node::{
    DirEntry, FileSystem, Inode, InodeRef, NodeKind, SetAttr, Stat, StatFs, Timespec,
};
use crate::fs::sync::{SleepLock, SpinLock};

pub const EXT2_SUPER_MAGIC: u64 = 0xEF53;

/// The block device as `adros-ext2` sees it.
pub struct Disk(Arc<dyn BlockDev>);

impl e2::BlockDevice for Disk {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> e2::Result<()> {
        match block::read_bytes(&*self.0, off, buf) {
            Ok(n) if n == buf.len() => Ok(()),
            _ => Err(e2::Error::Io),
        }
    }
    fn write_at(&self, off: u64, buf: &[u8]) -> e2::Result<()> {
        match block::write_bytes(&*self.0, off, buf) {
            Ok(n) if n == buf.len() => Ok(()),
            _ => Err(e2::Error::Io),
        }
    }
    fn flush(&self) -> e2::Result<()> {
        self.0.flush().map_err(|_| e2::Error::Io)
    }
    fn read_many(&self, reqs: &mut [(u64, &mut [u8])]) -> e2::Result<()> {
        block::read_bytes_many(&*self.0, reqs).map_err(|_| e2::Error::Io)
    }
}

fn errno(e: e2::Error) -> Errno {
    use e2::Error::*;
    match e {
        Io => Errno::EIO,
        Corrupt(what) => {
            log::warn!("ext2: {what}");
            Errno::EIO
        }
        Unsupported(_) => Errno::EINVAL,
        NotFound => Errno::ENOENT,
        Exists => Errno::EEXIST,
        NotDir => Errno::ENOTDIR,
        IsDir => Errno::EISDIR,
        NotEmpty => Errno::ENOTEMPTY,
        NoSpace => Errno::ENOSPC,
        ReadOnly => Errno::EROFS,
        NameTooLong => Errno::ENAMETOOLONG,
        TooBig => Errno::EFBIG,
        Invalid => Errno::EINVAL,
        TooManyLinks => Errno::EMLINK,
    }
}

pub struct Ext2Fs {
    inner: SleepLock<Ext2<Disk>>,
    dev: u64,
    /// The file system's block size (fixed at mount; `stat` reads it without the lock).
    block_size: u32,
    rename: SleepLock<()>,
    /// The in-memory nodes, and the unlinked inodes still in use (freed when their node
    /// drops), under one lock: a node dropping and its last link going cannot miss each other.
    nodes: SpinLock<Nodes>,
    /// Attribute generation: bumped, with `inner` held, by every operation that may change
    /// some inode's attributes (see [`Ext2Fs::changed`]). A node's cached [`Stat`] is valid
    /// while the generation it was read at is the current one.
    generation: AtomicU64,
    me: Weak<Ext2Fs>,
}

#[derive(Default)]
struct Nodes {
    live: BTreeMap<u32, Weak<Ext2Node>>,
    orphans: BTreeSet<u32>,
}

static MOUNTED: SpinLock<Vec<Weak<Ext2Fs>>> = SpinLock::new(Vec::new());

fn wall_secs() -> u32 {
    (crate::time::wall_clock_ns() / 1_000_000_000) as u32
}

impl Ext2Fs {
    fn node(&self, ino: u32) -> Arc<Ext2Node> {
        let mut m = self.nodes.lock();
        if let Some(n) = m.live.get(&ino).and_then(Weak::upgrade) {
            return n;
        }
        let fs = self
            .me
            .upgrade()
            .expect("ext2: file system gone while in use");
        let n = Arc::new(Ext2Node {
            fs,
            ino,
            attr: SpinLock::new(None),
            children: SpinLock::new(Children::default()),
        });
        m.live.insert(ino, Arc::downgrade(&n));
        n
    }

    /// Marks every cached [`Stat`] stale. Called with `inner` held, after a change to any
    /// inode (attributes, links, size, a freed or reused inode number), so a reader that
    /// sees the old generation read the attributes before the change completed.
    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// `ino`'s attributes as `stat` reports them (`inner` held), or `None` for an inode that
    /// is not in use.
    fn stat_locked(&self, fs: &mut Ext2<Disk>, ino: u32) -> Option<Stat> {
        let a = fs.attr(ino).ok()?;
        Some(Stat {
            dev: self.dev,
            ino: ino as u64,
            mode: a.mode as u32,
            nlink: a.nlink as u64,
            uid: a.uid,
            gid: a.gid,
            rdev: makedev(a.rdev.0, a.rdev.1),
            size: a.size as i64,
            blksize: self.block_size.max(1024) as i64,
            blocks: a.blocks as i64,
            atime: ts(a.atime),
            mtime: ts(a.mtime),
            ctime: ts(a.ctime),
        })
    }

    /// After the last link of `ino` went: free now if nobody holds it, else when its node
    /// drops. Called with `inner` held (`fs`).
    fn gone(&self, fs: &mut Ext2<Disk>, ino: u32) {
        let live = {
            let mut m = self.nodes.lock();
            let live = m.live.get(&ino).is_some_and(|w| w.strong_count() > 0);
            if live {
                m.orphans.insert(ino);
            }
            live
        };
        if !live && let Err(e) = fs.evict(ino) {
            log::warn!("ext2: freeing inode {ino}: {e}");
        }
    }

    pub fn sync(&self) -> KResult<()> {
        self.inner.lock().sync().map_err(errno)
    }
}

impl Drop for Ext2Fs {
    fn drop(&mut self) {
        if let Err(e) = self.inner.lock().unmount() {
            log::error!("ext2: unmount: {e}");
        }
    }
}

impl FileSystem for Ext2Fs {
    fn name(&self) -> &'static str {
        "ext2"
    }
    fn root(&self) -> InodeRef {
        self.node(e2::ROOT_INO)
    }
    fn dev(&self) -> u64 {
        self.dev
    }
    fn statfs(&self) -> StatFs {
        let s = self.inner.lock().statfs();
        StatFs {
            fs_type: EXT2_SUPER_MAGIC,
            bsize: s.block_size as u64,
            blocks: s.blocks,
            bfree: s.free_blocks,
            bavail: s.avail_blocks,
            files: s.inodes,
            ffree: s.free_inodes,
            fsid: self.dev,
            namelen: 255,
            frsize: s.block_size as u64,
            flags: 0,
        }
    }
    fn rename_lock(&self) -> &SleepLock<()> {
        &self.rename
    }
    fn driver(&self) -> Option<&'static str> {
        Some("native")
    }
}

pub struct Ext2Node {
    fs: Arc<Ext2Fs>,
    ino: u32,
    /// The attributes as last read and the file system's generation then (the in-memory
    /// inode Linux's `stat` reads): `stat` on an unchanged file system takes no sleeping lock
    /// and reads no inode table.
    attr: SpinLock<Option<(u64, Stat)>>,
    /// For a directory: the last few children looked up by name, valid while the file
    /// system's generation is the one they were found at (every change to any directory
    /// bumps it). A hit answers a lookup without the sleeping lock; the nodes are held
    /// weakly, so an unused child still goes (and an unlinked one is freed) as before.
    children: SpinLock<Children>,
}

/// See [`Ext2Node::children`].
#[derive(Default)]
struct Children {
    generation: u64,
    recent: Vec<(String, Weak<Ext2Node>)>,
}

/// How many names [`Children`] holds per directory.
const RECENT_CHILDREN: usize = 4;

impl Drop for Ext2Node {
    fn drop(&mut self) {
        let orphan = {
            let mut m = self.fs.nodes.lock();
            match m.live.get(&self.ino) {
                // A newer node for the inode holds it now: the orphan is that node's.
                Some(w) if w.strong_count() > 0 => false,
                _ => {
                    m.live.remove(&self.ino);
                    m.orphans.remove(&self.ino)
                }
            }
        };
        if orphan {
            let mut fs = self.fs.inner.lock();
            if let Err(e) = fs.evict(self.ino) {
                log::warn!("ext2: freeing inode {}: {e}", self.ino);
            }
            self.fs.changed();
        }
    }
}

fn ts(s: u32) -> Timespec {
    Timespec {
        sec: s as i64,
        nsec: 0,
    }
}

fn dt(ft: u8) -> u8 {
    match ft {
        1 => DT_REG,
        2 => DT_DIR,
        3 => DT_CHR,
        4 => DT_BLK,
        5 => DT_FIFO,
        6 => DT_SOCK,
        7 => DT_LNK,
        _ => DT_UNKNOWN,
    }
}

impl Ext2Node {
    /// Whether the cached attributes were read at generation `g`.
    fn fresh(&self, g: u64) -> bool {
        self.attr.lock().is_some_and(|(old, _)| old == g)
    }

    /// Caches `st`, read at generation `g`, unless a newer reading is cached.
    fn remember(&self, g: u64, st: Stat) {
        let mut a = self.attr.lock();
        if a.is_none_or(|(old, _)| old <= g) {
            *a = Some((g, st));
        }
    }

    /// `name` from [`Ext2Node::children`], if found there at the current generation and
    /// still in memory.
    fn recent_child(&self, name: &str) -> Option<Arc<Ext2Node>> {
        let g = self.fs.generation.load(Ordering::Acquire);
        let c = self.children.lock();
        if c.generation != g {
            return None;
        }
        c.recent
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, w)| w.upgrade())
    }

    /// Records that `name` was `child` at generation `g` (the newest first; a stale set
    /// is dropped).
    fn keep_child(&self, g: u64, name: &str, child: &Arc<Ext2Node>) {
        let mut c = self.children.lock();
        if c.generation != g {
            if c.generation > g {
                return;
            }
            c.generation = g;
            c.recent.clear();
        }
        if let Some(i) = c.recent.iter().position(|(n, _)| n == name) {
            c.recent.remove(i);
        }
        c.recent.truncate(RECENT_CHILDREN - 1);
        c.recent.insert(0, (name.into(), Arc::downgrade(child)));
    }

    fn other<'a>(&self, n: &'a InodeRef) -> KResult<&'a Ext2Node> {
        let o = n.as_any().downcast_ref::<Ext2Node>().ok_or(Errno::EXDEV)?;
        if !Arc::ptr_eq(&o.fs, &self.fs) {
            return Err(Errno::EXDEV);
        }
        Ok(o)
    }
}

impl Inode for Ext2Node {
    fn stat(&self) -> Stat {
        let now = self.fs.generation.load(Ordering::Acquire);
        if let Some((g, st)) = *self.attr.lock()
            && g == now
        {
            return st;
        }
        let mut fs = self.fs.inner.lock();
        match self.fs.stat_locked(&mut fs, self.ino) {
            Some(st) => {
                self.remember(self.fs.generation.load(Ordering::Acquire), st);
                st
            }
            None => Stat {
                dev: self.fs.dev,
                ino: self.ino as u64,
                ..Stat::default()
            },
        }
    }

    fn ident(&self) -> (u64, u64) {
        (self.fs.dev, self.ino as u64)
    }

    fn set_attr(&self, a: &SetAttr) -> KResult<()> {
        let s = e2::SetAttr {
            perm: a.perm.map(|p| (p & 0o7777) as u16),
            uid: a.uid,
            gid: a.gid,
            atime: a.atime.map(|t| t.sec as u32),
            mtime: a.mtime.map(|t| t.sec as u32),
        };
        let mut fs = self.fs.inner.lock();
        let r = fs.set_attr(self.ino, &s).map_err(errno);
        self.fs.changed();
        r
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn fs(&self) -> Arc<dyn FileSystem> {
        self.fs.clone()
    }

    fn child_stat(&self, name: &str) -> Option<KResult<Stat>> {
        let mut fs = self.fs.inner.lock();
        let r = fs.lookup(self.ino, &bytename::to_bytes(name));
        Some(r.map_err(errno).map(|ino| {
            self.fs.stat_locked(&mut fs, ino).unwrap_or(Stat {
                dev: self.fs.dev,
                ino: ino as u64,
                ..Stat::default()
            })
        }))
    }

    fn lookup(&self, name: &str) -> KResult<InodeRef> {
        if let Some(n) = self.recent_child(name) {
            return Ok(n);
        }
        // The attributes come with the name, under the same lock, unless the node holds
        // them already (a path walk stats every node it steps onto; Linux's lookup likewise
        // brings the inode in).
        let mut fs = self.fs.inner.lock();
        let ino = fs
            .lookup(self.ino, &bytename::to_bytes(name))
            .map_err(errno)?;
        let n = self.fs.node(ino);
        let g = self.fs.generation.load(Ordering::Acquire);
        if !n.fresh(g)
            && let Some(st) = self.fs.stat_locked(&mut fs, ino)
        {
            n.remember(g, st);
        }
        drop(fs);
        self.keep_child(g, name, &n);
        Ok(n)
    }

    fn create(
        &self,
        name: &str,
        kind: NodeKind<'_>,
        perm: u32,
        uid: u32,
        gid: u32,
    ) -> KResult<InodeRef> {
        let target = match kind {
            NodeKind::Symlink(t) => bytename::to_bytes(t),
            _ => alloc::borrow::Cow::Borrowed(&[][..]),
        };
        let k = match kind {
            NodeKind::Regular => e2::Kind::Regular,
            NodeKind::Directory => e2::Kind::Directory,
            NodeKind::Symlink(_) => e2::Kind::Symlink(&target),
            NodeKind::CharDev(r) => e2::Kind::CharDev(major(r), minor(r)),
            NodeKind::BlockDev(r) => e2::Kind::BlockDev(major(r), minor(r)),
            NodeKind::Fifo => e2::Kind::Fifo,
            NodeKind::Socket => e2::Kind::Socket,
        };
        let ino = {
            let mut fs = self.fs.inner.lock();
            let r = fs.create(
                self.ino,
                &bytename::to_bytes(name),
                k,
                (perm & 0o7777) as u16,
                uid,
                gid,
            );
            self.fs.changed();
            r.map_err(errno)?
        };
        Ok(self.fs.node(ino))
    }

    fn link(&self, name: &str, target: &InodeRef) -> KResult<()> {
        let t = self.other(target)?;
        let mut fs = self.fs.inner.lock();
        let r = fs.link(self.ino, &bytename::to_bytes(name), t.ino);
        self.fs.changed();
        r.map_err(errno)
    }

    fn unlink(&self, name: &str, dir: bool) -> KResult<()> {
        let mut fs = self.fs.inner.lock();
        let r = fs.unlink(self.ino, &bytename::to_bytes(name), dir);
        self.fs.changed();
        let (ino, last) = r.map_err(errno)?;
        if last {
            self.fs.gone(&mut fs, ino);
        }
        Ok(())
    }

    fn rename(&self, old: &str, new_dir: &InodeRef, new: &str, flags: u32) -> KResult<()> {
        let nd = self.other(new_dir)?;
        if flags & RENAME_EXCHANGE != 0 {
            return Err(Errno::EINVAL);
        }
        let mut fs = self.fs.inner.lock();
        if flags & RENAME_NOREPLACE != 0 && fs.lookup(nd.ino, new.as_bytes()).is_ok() {
            return Err(Errno::EEXIST);
        }
        let r = fs.rename(
            self.ino,
            &bytename::to_bytes(old),
            nd.ino,
            &bytename::to_bytes(new),
        );
        self.fs.changed();
        if let Some(ino) = r.map_err(errno)? {
            self.fs.gone(&mut fs, ino);
        }
        Ok(())
    }

    fn readdir(&self, offset: u64, max: usize) -> KResult<Vec<DirEntry>> {
        let mut fs = self.fs.inner.lock();
        let ents = fs.read_dir(self.ino, offset, max).map_err(errno)?;
        let mut out = Vec::with_capacity(ents.len());
        for e in ents {
            let mut kind = dt(e.file_type);
            if kind == DT_UNKNOWN {
                kind = fs
                    .attr(e.ino)
                    .map(|a| dtype(a.mode as u32))
                    .unwrap_or(DT_UNKNOWN);
            }
            out.push(DirEntry {
                ino: e.ino as u64,
                kind,
                name: bytename::from_bytes(e.name.clone()),
                next_offset: e.next,
            });
        }
        Ok(out)
    }

    fn read_at(&self, off: u64, buf: &mut [u8]) -> KResult<usize> {
        self.fs.inner.lock().read(self.ino, off, buf).map_err(errno)
    }

    fn write_at(&self, off: u64, buf: &[u8]) -> KResult<usize> {
        let mut fs = self.fs.inner.lock();
        let r = fs.write(self.ino, off, buf);
        self.fs.changed();
        r.map_err(errno)
    }

    fn truncate(&self, len: u64) -> KResult<()> {
        let mut fs = self.fs.inner.lock();
        let r = fs.truncate(self.ino, len);
        self.fs.changed();
        r.map_err(errno)
    }

    fn sync(&self) -> KResult<()> {
        // The native driver writes file data through at once; metadata waits in its cache.
        self.fs.sync()
    }

    fn readlink(&self) -> KResult<String> {
        let v = self.fs.inner.lock().readlink(self.ino).map_err(errno)?;
        Ok(bytename::from_bytes(v))
    }
}

use crate::fs::node::dtype;

/// Parsed `mount -o` options.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Options {
    pub read_only: bool,
    /// `driver=`: Some(true) rump, Some(false) native, None: not given.
    pub rump: Option<bool>,
    /// `sync`: every write reaches the disk before the call returns (rump stack).
    pub sync: bool,
}

pub fn parse_options(data: &str) -> KResult<Options> {
    let mut o = Options::default();
    for opt in data.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match opt {
            "ro" => o.read_only = true,
            "rw" => o.read_only = false,
            "driver=native" => o.rump = Some(false),
            "driver=rump" => o.rump = Some(true),
            // Options busybox or users pass that mean nothing here.
            "sync" => o.sync = true,
            "async" => o.sync = false,
            "defaults" | "noatime" | "relatime" | "atime" | "nodiratime" | "exec" | "noexec"
            | "suid" | "nosuid" | "dev" | "nodev" => {}
            _ if opt.starts_with("driver=") => {
                log::warn!("ext2: unknown {opt} (native or rump)");
                return Err(Errno::EINVAL);
            }
            _ => {
                log::warn!("ext2: unknown mount option {opt}");
                return Err(Errno::EINVAL);
            }
        }
    }
    Ok(o)
}

/// The `mount -t ext2` factory.
pub fn mount(source: &str, data: &str) -> KResult<Arc<dyn FileSystem>> {
    let o = parse_options(data)?;
    let want_rump = o.rump.unwrap_or_else(|| default_driver() == "rump");
    if want_rump {
        if !crate::rump::LINKED {
            crate::println!(
                "ext2: rump ext2 not linked (mount -o driver=native, or build with NetBSD sources)"
            );
            return Err(Errno::ENODEV);
        }
        return crate::rump::vfs::mount_ext2(source, o.read_only, o.sync);
    }
    let dev = block::open_source(source)?;
    let rdev = crate::fs::stat(&crate::fs::FsCtx::kernel(), None, source, true)?.rdev;
    let ro = o.read_only || dev.read_only();
    let mut e = Ext2::open(Disk(dev), ro).map_err(|e| {
        crate::println!("ext2: cannot mount {source}: {e}");
        errno(e)
    })?;
    e.clock = wall_secs;
    if e.is_read_only() && !ro {
        crate::println!(
            "ext2: {source} has read-only-compatible features this driver does not know: mounted read-only"
        );
    }
    log::info!(
        "ext2: {source} mounted by the native driver (rev {}, {}-byte blocks{})",
        e.revision(),
        e.block_size(),
        if e.is_read_only() { ", read-only" } else { "" }
    );
    let block_size = e.block_size();
    let fs = Arc::new_cyclic(|me| Ext2Fs {
        inner: SleepLock::new(e),
        dev: rdev,
        block_size,
        rename: SleepLock::new(()),
        nodes: SpinLock::new(Nodes::default()),
        generation: AtomicU64::new(0),
        me: me.clone(),
    });
    MOUNTED.lock().push(Arc::downgrade(&fs));
    Ok(fs)
}

/// The stack `mount -t ext2` uses without `-o driver=`: `fs.ext2=` on the kernel command
/// line, else the rump stack when it was started, else native.
pub fn default_driver() -> &'static str {
    match crate::boot::cmdline().param("fs.ext2") {
        Some("rump") => "rump",
        Some("native") => "native",
        _ if crate::rump::started() => "rump",
        _ => "native",
    }
}

/// Writes back every mounted ext2 file system's metadata (`sync(2)`), on both stacks.
pub fn sync_all() {
    crate::rump::vfs::sync_all();
    sync_native();
}

/// Writes back the native driver's cached metadata of every mount.
fn sync_native() {
    let v: Vec<_> = MOUNTED.lock().iter().filter_map(Weak::upgrade).collect();
    for fs in v {
        if let Err(e) = fs.sync() {
            log::warn!("ext2: sync: {e:?}");
        }
    }
    MOUNTED.lock().retain(|w| w.strong_count() > 0);
}

/// How often the native driver's cached metadata is written back (Linux's default dirty
/// expiry; `ext2.writeback=SECS` on the command line). NetBSD's ext2fs in the rump kernel has
/// its own syncer thread.
const WRITEBACK_SECS: u64 = 30;

pub fn init() {
    crate::fs::register_filesystem_data("ext2", mount);
    let secs = crate::boot::cmdline().number("ext2.writeback", WRITEBACK_SECS, 1..=86_400);
    crate::sched::thread::spawn("ext2-writeback", move || {
        loop {
            crate::sched::thread::sleep_ms(secs * 1000);
            sync_native();
        }
    });
}
