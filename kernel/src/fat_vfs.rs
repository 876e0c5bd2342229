//! `mount -t vfat|msdos`: the VFS adapter over the native `adros-fat` driver on a block
//! device, and the choice between it and NetBSD's msdosfs in the rump kernel.
//!
//! Options (`mount -o`): `ro`, `rw`, `sync`, `async`, `driver=native|rump` (and the vfat
//! options busybox or users pass that need nothing here: `utf8`, `iocharset=utf8`,
//! `shortname=mixed`, `codepage=437`, `flush`). Without `driver=`, `fs.vfat=` on the kernel
//! command line decides, else the rump stack when it was started, else this native driver.
//!
//! FAT has no owners, modes or links: files are 0644 (0444 with the read-only attribute),
//! directories 0755, all owned by root; chmod to the mode a file already has and chown to
//! root are accepted, anything else is EPERM (Linux vfat without `quiet`); symlinks, hard
//! links and device nodes are EPERM. One sleeping lock serialises the volume; node objects
//! are unique per node id, and an unlinked-but-open file keeps its clusters until its last
//! user lets go. Metadata is written back by `sync(2)`, `fsync`, every 30 s
//! (`vfat.writeback=SECS`) and at unmount, which also clears the volume's dirty flag.

use alloc::collections::BTreeMap;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::any::Any;

use adros_fat::{self as fat, Fat};

use crate::block::{self, BlockDev};
use crate::errno::{Errno, KResult};
use crate::fs::consts::*;
use crate::fs::node::{
    DirEntry, FileSystem, Inode, InodeRef, NodeKind, SetAttr, Stat, StatFs, Timespec,
};
use crate::fs::sync::{SleepLock, SpinLock};

pub const MSDOS_SUPER_MAGIC: u64 = 0x4d44;

/// The block device as `adros-fat` sees it.
pub struct Disk(Arc<dyn BlockDev>);

impl fat::BlockDevice for Disk {
    fn sectors(&self) -> u64 {
        self.0.sectors()
    }
    fn read_sectors(&self, sector: u64, buf: &mut [u8]) -> fat::Result<()> {
        self.0.read_sectors(sector, buf).map_err(|_| fat::Error::Io)
    }
    fn write_sectors(&self, sector: u64, buf: &[u8]) -> fat::Result<()> {
        self.0
            .write_sectors(sector, buf)
            .map_err(|_| fat::Error::Io)
    }
    fn flush(&self) -> fat::Result<()> {
        self.0.flush().map_err(|_| fat::Error::Io)
    }
}

fn errno(e: fat::Error) -> Errno {
    use fat::Error::*;
    match e {
        Io => Errno::EIO,
        Corrupt(what) => {
            log::warn!("vfat: {what}");
            Errno::EIO
        }
        NotFound => Errno::ENOENT,
        Exists => Errno::EEXIST,
        NotDir => Errno::ENOTDIR,
        IsDir => Errno::EISDIR,
        NotEmpty => Errno::ENOTEMPTY,
        NoSpace => Errno::ENOSPC,
        ReadOnly => Errno::EROFS,
        NameTooLong => Errno::ENAMETOOLONG,
        InvalidName => Errno::EINVAL,
        TooBig => Errno::EFBIG,
        Invalid => Errno::EINVAL,
    }
}

pub struct FatFs {
    inner: SleepLock<Fat<Disk>>,
    dev: u64,
    fstype: &'static str,
    rename: SleepLock<()>,
    nodes: SpinLock<BTreeMap<fat::NodeId, Weak<FatNode>>>,
    me: Weak<FatFs>,
}

static MOUNTED: SpinLock<Vec<Weak<FatFs>>> = SpinLock::new(Vec::new());

fn wall_secs() -> u64 {
    crate::time::wall_clock_ns() / 1_000_000_000
}

impl FatFs {
    /// The node object for `id`; called with `inner` held so a node dropping at the same
    /// time cannot release the id in between.
    fn node(&self, id: fat::NodeId) -> Arc<FatNode> {
        let mut m = self.nodes.lock();
        if let Some(n) = m.get(&id).and_then(Weak::upgrade) {
            return n;
        }
        let fs = self
            .me
            .upgrade()
            .expect("vfat: file system gone while in use");
        let n = Arc::new(FatNode { fs, id });
        m.insert(id, Arc::downgrade(&n));
        n
    }

    pub fn sync(&self) -> KResult<()> {
        self.inner.lock().sync().map_err(errno)
    }
}

impl Drop for FatFs {
    fn drop(&mut self) {
        if let Err(e) = self.inner.lock().unmount() {
            log::error!("vfat: unmount: {e}");
        }
    }
}

impl FileSystem for FatFs {
    fn name(&self) -> &'static str {
        self.fstype
    }
    fn root(&self) -> InodeRef {
        let _g = self.inner.lock();
        self.node(fat::ROOT)
    }
    fn dev(&self) -> u64 {
        self.dev
    }
    fn statfs(&self) -> StatFs {
        let s = self.inner.lock().statfs().unwrap_or(fat::StatFs {
            cluster_size: 512,
            clusters: 0,
            free: 0,
        });
        StatFs {
            fs_type: MSDOS_SUPER_MAGIC,
            bsize: s.cluster_size,
            blocks: s.clusters,
            bfree: s.free,
            bavail: s.free,
            files: 0,
            ffree: 0,
            fsid: self.dev,
            namelen: 255,
            frsize: s.cluster_size,
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

pub struct FatNode {
    fs: Arc<FatFs>,
    id: fat::NodeId,
}

impl Drop for FatNode {
    fn drop(&mut self) {
        let mut inner = self.fs.inner.lock();
        let gone = {
            let mut m = self.fs.nodes.lock();
            let gone = m.get(&self.id).is_some_and(|w| w.strong_count() == 0);
            if gone {
                m.remove(&self.id);
            }
            gone
        };
        if gone
            && self.id != fat::ROOT
            && let Err(e) = inner.release(self.id)
        {
            log::warn!("vfat: releasing a node: {e}");
        }
    }
}

fn ts(s: u64) -> Timespec {
    Timespec {
        sec: s as i64,
        nsec: 0,
    }
}

impl FatNode {
    fn other<'a>(&self, n: &'a InodeRef) -> KResult<&'a FatNode> {
        let o = n.as_any().downcast_ref::<FatNode>().ok_or(Errno::EXDEV)?;
        if !Arc::ptr_eq(&o.fs, &self.fs) {
            return Err(Errno::EXDEV);
        }
        Ok(o)
    }

    fn mode(a: &fat::Attr) -> u32 {
        match (a.dir, a.read_only) {
            (true, _) => S_IFDIR | 0o755,
            (false, false) => S_IFREG | 0o644,
            (false, true) => S_IFREG | 0o444,
        }
    }
}

impl Inode for FatNode {
    fn stat(&self) -> Stat {
        let mut fs = self.fs.inner.lock();
        let cs = fs.cluster_size() as i64;
        match fs.attr(self.id) {
            Ok(a) => Stat {
                dev: self.fs.dev,
                ino: self.id,
                mode: Self::mode(&a),
                nlink: if a.dir { 2 } else { 1 },
                uid: 0,
                gid: 0,
                rdev: 0,
                size: a.size as i64,
                blksize: cs,
                blocks: (a.allocated / 512) as i64,
                atime: ts(a.atime),
                mtime: ts(a.mtime),
                ctime: ts(a.mtime),
            },
            Err(e) => {
                log::warn!("vfat: stat: {e}");
                Stat {
                    dev: self.fs.dev,
                    ino: self.id,
                    ..Stat::default()
                }
            }
        }
    }

    fn set_attr(&self, a: &SetAttr) -> KResult<()> {
        let mut fs = self.fs.inner.lock();
        let cur = fs.attr(self.id).map_err(errno)?;
        if let Some(p) = a.perm
            && p & 0o7777 != Self::mode(&cur) & 0o7777
        {
            return Err(Errno::EPERM);
        }
        if a.uid.is_some_and(|u| u != 0) || a.gid.is_some_and(|g| g != 0) {
            return Err(Errno::EPERM);
        }
        if a.atime.is_some() || a.mtime.is_some() {
            fs.set_times(
                self.id,
                a.atime.map(|t| t.sec.max(0) as u64),
                a.mtime.map(|t| t.sec.max(0) as u64),
            )
            .map_err(errno)?;
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
        let mut fs = self.fs.inner.lock();
        let id = fs.lookup(self.id, name).map_err(errno)?;
        Ok(self.fs.node(id))
    }

    fn create(
        &self,
        name: &str,
        kind: NodeKind<'_>,
        _perm: u32,
        _uid: u32,
        _gid: u32,
    ) -> KResult<InodeRef> {
        let dir = match kind {
            NodeKind::Regular => false,
            NodeKind::Directory => true,
            _ => return Err(Errno::EPERM),
        };
        let mut fs = self.fs.inner.lock();
        let id = fs.create(self.id, name, dir).map_err(errno)?;
        Ok(self.fs.node(id))
    }

    fn link(&self, _name: &str, _target: &InodeRef) -> KResult<()> {
        Err(Errno::EPERM)
    }

    fn unlink(&self, name: &str, dir: bool) -> KResult<()> {
        self.fs
            .inner
            .lock()
            .unlink(self.id, name, dir)
            .map_err(errno)
    }

    fn rename(&self, old: &str, new_dir: &InodeRef, new: &str, flags: u32) -> KResult<()> {
        let nd = self.other(new_dir)?;
        if flags & RENAME_EXCHANGE != 0 {
            return Err(Errno::EINVAL);
        }
        let mut fs = self.fs.inner.lock();
        if flags & RENAME_NOREPLACE != 0 {
            match fs.lookup(nd.id, new) {
                Ok(_) => return Err(Errno::EEXIST),
                Err(fat::Error::NotFound) => {}
                Err(e) => return Err(errno(e)),
            }
        }
        fs.rename(self.id, old, nd.id, new).map_err(errno)
    }

    fn readdir(&self, offset: u64, max: usize) -> KResult<Vec<DirEntry>> {
        let ents = self
            .fs
            .inner
            .lock()
            .read_dir(self.id, offset, max)
            .map_err(errno)?;
        Ok(ents
            .into_iter()
            .map(|e| DirEntry {
                ino: e.id,
                kind: if e.dir { DT_DIR } else { DT_REG },
                name: e.name,
                next_offset: e.next,
            })
            .collect())
    }

    fn read_at(&self, off: u64, buf: &mut [u8]) -> KResult<usize> {
        self.fs.inner.lock().read(self.id, off, buf).map_err(errno)
    }

    fn write_at(&self, off: u64, buf: &[u8]) -> KResult<usize> {
        self.fs.inner.lock().write(self.id, off, buf).map_err(errno)
    }

    fn truncate(&self, len: u64) -> KResult<()> {
        self.fs.inner.lock().truncate(self.id, len).map_err(errno)
    }

    fn sync(&self) -> KResult<()> {
        // File data is written through at once; metadata waits in the driver's cache.
        self.fs.sync()
    }
}

/// Parsed `mount -o` options.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Options {
    pub read_only: bool,
    /// `driver=`: Some(true) rump, Some(false) native, None: not given.
    pub rump: Option<bool>,
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
            "sync" => o.sync = true,
            "async" => o.sync = false,
            // What the native driver does anyway (or what means nothing here).
            "defaults" | "noatime" | "relatime" | "atime" | "nodiratime" | "exec" | "noexec"
            | "suid" | "nosuid" | "dev" | "nodev" | "utf8" | "iocharset=utf8"
            | "shortname=mixed" | "codepage=437" | "flush" => {}
            _ if opt.starts_with("driver=") => {
                log::warn!("vfat: unknown {opt} (native or rump)");
                return Err(Errno::EINVAL);
            }
            _ => {
                log::warn!("vfat: unknown mount option {opt}");
                return Err(Errno::EINVAL);
            }
        }
    }
    Ok(o)
}

/// The stack `mount -t vfat` uses without `-o driver=`: `fs.vfat=` on the kernel command
/// line, else the rump stack when it was started, else native.
pub fn default_driver() -> &'static str {
    match crate::boot::cmdline().param("fs.vfat") {
        Some("rump") => "rump",
        Some("native") => "native",
        _ if crate::rump::started() => "rump",
        _ => "native",
    }
}

fn mount_as(fstype: &'static str, source: &str, data: &str) -> KResult<Arc<dyn FileSystem>> {
    let o = parse_options(data)?;
    let want_rump = o.rump.unwrap_or_else(|| default_driver() == "rump");
    if want_rump {
        if !crate::rump::LINKED {
            crate::println!(
                "vfat: rump msdosfs not linked (mount -o driver=native, or build with NetBSD sources)"
            );
            return Err(Errno::ENODEV);
        }
        return crate::rump::vfs::mount_msdos(source, o.read_only, o.sync);
    }
    let dev = block::open_source(source)?;
    let rdev = crate::fs::stat(&crate::fs::FsCtx::kernel(), None, source, true)?.rdev;
    let ro = o.read_only || dev.read_only();
    let mut f = Fat::mount(Disk(dev), ro).map_err(|e| {
        crate::println!("vfat: cannot mount {source}: {e}");
        match e {
            fat::Error::Corrupt(_) => Errno::EINVAL,
            e => errno(e),
        }
    })?;
    f.clock = wall_secs;
    if f.was_dirty() {
        crate::println!(
            "vfat: {source} was not properly unmounted; some data may be corrupt (run fsck.vfat)"
        );
    }
    log::info!(
        "vfat: {source} mounted by the native driver ({:?}, {}-byte clusters{})",
        f.fat_type(),
        f.cluster_size(),
        if ro { ", read-only" } else { "" }
    );
    let fs = Arc::new_cyclic(|me| FatFs {
        inner: SleepLock::new(f),
        dev: rdev,
        fstype,
        rename: SleepLock::new(()),
        nodes: SpinLock::new(BTreeMap::new()),
        me: me.clone(),
    });
    MOUNTED.lock().push(Arc::downgrade(&fs));
    Ok(fs)
}

fn mount_vfat(source: &str, data: &str) -> KResult<Arc<dyn FileSystem>> {
    mount_as("vfat", source, data)
}

fn mount_msdos(source: &str, data: &str) -> KResult<Arc<dyn FileSystem>> {
    mount_as("msdos", source, data)
}

/// Writes back the native driver's cached metadata of every mount (`sync(2)`).
pub fn sync_all() {
    let v: Vec<_> = MOUNTED.lock().iter().filter_map(Weak::upgrade).collect();
    for fs in v {
        if let Err(e) = fs.sync() {
            log::warn!("vfat: sync: {e:?}");
        }
    }
    MOUNTED.lock().retain(|w| w.strong_count() > 0);
}

const WRITEBACK_SECS: u64 = 30;

/// Registers `mount -t vfat` and `mount -t msdos` (both served by either stack) and starts
/// the native driver's write-back thread.
pub fn init() {
    crate::fs::register_filesystem_data("vfat", mount_vfat);
    crate::fs::register_filesystem_data("msdos", mount_msdos);
    let secs = crate::boot::cmdline().number("vfat.writeback", WRITEBACK_SECS, 1..=86_400);
    crate::sched::thread::spawn("vfat-writeback", move || {
        loop {
            crate::sched::thread::sleep_ms(secs * 1000);
            sync_all();
        }
    });
}
