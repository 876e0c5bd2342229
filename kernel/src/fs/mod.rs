//! The virtual file system: mounts, path walk, permissions and the path operations the
//! Linux syscall layer calls; tmpfs (the root, unpacked from the initrd), devfs at `/dev`,
//! pipes. See `docs/fs.md`. This file holds mounts, path handles, credentials and `open`; the
//! path walk is in `walk`, the other path operations in `ops`, mounting in `mount`.
//!
//! Conventions for every path operation:
//! - `ctx` carries the caller's credentials, root, cwd and umask. Permission checks use
//!   `ctx.uid`/`ctx.gid`/`ctx.groups` (pass the *effective* ids; for `access(2)` without
//!   `AT_EACCESS` pass a context holding the real ids). uid 0 bypasses read/write checks,
//!   and execute checks on anything with at least one `x` bit.
//! - `base` is the directory a relative `path` starts from (a `*at` call's dirfd);
//!   `None` means `ctx.cwd`. An **empty `path` with `Some(base)` means `base` itself**
//!   (`AT_EMPTY_PATH`); the syscall layer must return ENOENT for an empty path without
//!   that flag. An empty path without a base is ENOENT.
//! - The umask is applied here (`mode & !ctx.umask`) by `open(O_CREAT)`, `mkdir` and
//!   `mknod`.
//! - Blocking operations (pipe and console reads and writes, FIFO opens) return
//!   `ERESTARTSYS` when the hook installed with [`set_interrupt_check`] says a signal is
//!   pending; the syscall layer turns it into EINTR or a restart.
//!
//! Locking: inode metadata and directories use interrupt-safe spinlocks, file contents a
//! sleeping lock; renames within a file system are serialised by its rename lock.

pub mod anon;
pub mod bytename;
pub mod consts;
pub mod devfs;
pub mod file;
#[cfg(target_os = "none")]
pub mod filemap;
/// Unit tests on the host have no address spaces, hence no mapped files: nothing to write
/// back or keep in step.
#[cfg(not(target_os = "none"))]
pub mod filemap {
    use crate::errno::KResult;
    use crate::fs::node::InodeRef;
    pub fn flush_file(_: &InodeRef) {}
    pub fn write_back_file(_: &InodeRef) -> KResult<()> {
        Ok(())
    }
    pub fn written(_: &InodeRef, _: u64, _: &[u8]) {}
    pub fn write_back_all() {}
}
pub mod initrd;
#[cfg(target_os = "none")]
pub mod lock;
pub mod lz4frame;
mod mount;
pub mod node;
mod ops;
pub mod pipe;
pub mod random;
pub mod sync;
pub mod tmpfs;
pub mod ustar;
mod walk;

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

pub use consts::*;
pub use devfs::{DevKind, Device, console_input, register_device};
pub use file::File;
pub use node::{DirEntry, FileSystem, Inode, InodeRef, NodeKind, SetAttr, Stat, StatFs, Timespec};

pub use mount::*;
pub use ops::*;
pub use walk::*;

use crate::errno::{Errno, KResult};
use node::ident;
use sync::SpinLock;
use tmpfs::TmpFs;

// ---------------------------------------------------------------------------------------
// Mounts and path handles

/// A mounted file system: its root, and where it is mounted (none for the root mount).
pub struct Mount {
    id: u64,
    fs: Arc<dyn FileSystem>,
    root: InodeRef,
    parent: Option<(Arc<Mount>, InodeRef)>,
    /// `ident` of the mount point (fixed while mounted), so crossing into a mount compares
    /// without a `stat` of every mount point.
    at: (u64, u64),
    source: String,
    /// Mounts whose parent is this one (changed under the `MOUNTS` lock): a path walk
    /// through a mount with none skips the mount table.
    children: AtomicUsize,
}

static NEXT_MOUNT: AtomicU64 = AtomicU64::new(1);
/// Every mount below some root mount, in mount order (later mounts hide earlier ones).
static MOUNTS: SpinLock<Vec<Arc<Mount>>> = SpinLock::new(Vec::new());
static ROOT: spin::Once<PathRef> = spin::Once::new();

/// A handle on a node as reached through the mount tree: what a cwd, a root, an `*at`
/// dirfd or an open file's location is. Cheap to clone.
#[derive(Clone)]
pub struct PathRef {
    mnt: Arc<Mount>,
    node: InodeRef,
    /// For a non-directory: the directory and name it was reached by (directories find
    /// their names through `..`).
    up: Option<Arc<(PathRef, String)>>,
}

impl PathRef {
    /// A new, detached namespace whose root is `fs`'s root (tests; `pivot_root` later).
    pub fn new_root(fs: Arc<dyn FileSystem>, source: &str) -> PathRef {
        let root = fs.root();
        let mnt = Arc::new(Mount {
            id: NEXT_MOUNT.fetch_add(1, Ordering::Relaxed),
            fs,
            root: root.clone(),
            parent: None,
            at: (0, 0),
            source: source.into(),
            children: AtomicUsize::new(0),
        });
        PathRef {
            mnt,
            node: root,
            up: None,
        }
    }

    pub fn inode(&self) -> &InodeRef {
        &self.node
    }

    pub fn stat(&self) -> Stat {
        self.node.stat()
    }

    pub fn is_dir(&self) -> bool {
        self.stat().is_dir()
    }

    /// Same node reached through the same mount.
    pub fn same(&self, o: &PathRef) -> bool {
        self.mnt.id == o.mnt.id && ident(&self.node) == ident(&o.node)
    }

    fn is_mount_root(&self) -> bool {
        ident(&self.node) == ident(&self.mnt.root)
    }
}

/// The initial root directory (after [`init`]).
pub fn root() -> PathRef {
    ROOT.get().cloned().expect("fs::init has not run")
}

/// The root of the namespace `p` lives in (the top of its mount tree).
pub fn namespace_root(p: &PathRef) -> PathRef {
    let mut m = p.mnt.clone();
    while let Some((pm, _)) = &m.parent {
        m = pm.clone();
    }
    PathRef {
        node: m.root.clone(),
        mnt: m,
        up: None,
    }
}

/// If a file system is mounted on `p`, its root (repeatedly, for stacked mounts).
fn cross_down(mut p: PathRef) -> PathRef {
    loop {
        // Only mounts on `p`'s own mount can cover it, and most mounts have none. `ident`
        // is taken before the lock (a file system without a cheap one answers by `stat`).
        if p.mnt.children.load(Ordering::Acquire) == 0 {
            return p;
        }
        let id = ident(&p.node);
        let m = MOUNTS
            .lock()
            .iter()
            .rev()
            .find(|m| m.at == id && m.parent.as_ref().is_some_and(|(pm, _)| pm.id == p.mnt.id))
            .cloned();
        match m {
            Some(m) => {
                p = PathRef {
                    node: m.root.clone(),
                    mnt: m,
                    up: None,
                }
            }
            None => return p,
        }
    }
}

/// `..` of `p`, not above `ctx_root`, crossing mount points upwards.
fn parent_of(ctx_root: &PathRef, p: &PathRef) -> KResult<PathRef> {
    let mut p = p.clone();
    loop {
        if p.same(ctx_root) {
            return Ok(p);
        }
        if p.is_mount_root() {
            match &p.mnt.parent {
                Some((pm, mp)) => {
                    p = PathRef {
                        mnt: pm.clone(),
                        node: mp.clone(),
                        up: None,
                    };
                    continue;
                }
                None => return Ok(p),
            }
        }
        let up = p.node.lookup("..")?;
        return Ok(PathRef {
            mnt: p.mnt,
            node: up,
            up: None,
        });
    }
}

// ---------------------------------------------------------------------------------------
// Credentials and permissions

/// The file-system view of a process (or thread): root, working directory, umask and the
/// credentials permission checks use.
#[derive(Clone)]
pub struct FsCtx {
    pub cwd: PathRef,
    pub root: PathRef,
    pub umask: u32,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
}

impl FsCtx {
    /// root:root at `/`, umask 022 (what PID 1 starts with).
    pub fn kernel() -> FsCtx {
        Self::with_root(root())
    }

    /// root:root with `root` as both root and cwd.
    pub fn with_root(root: PathRef) -> FsCtx {
        FsCtx {
            cwd: root.clone(),
            root,
            umask: 0o022,
            uid: 0,
            gid: 0,
            groups: Vec::new(),
        }
    }

    pub fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }
}

/// Checks `want` (`R_OK|W_OK|X_OK` bits) against a node's mode and owner.
pub fn permission(ctx: &FsCtx, st: &Stat, want: u32) -> KResult<()> {
    if ctx.uid == 0 {
        if want & X_OK != 0 && !st.is_dir() && st.mode & 0o111 == 0 {
            return Err(Errno::EACCES);
        }
        return Ok(());
    }
    let bits = if st.uid == ctx.uid {
        st.mode >> 6
    } else if ctx.in_group(st.gid) {
        st.mode >> 3
    } else {
        st.mode
    } & 7;
    if bits & want == want {
        Ok(())
    } else {
        Err(Errno::EACCES)
    }
}

/// May `ctx` delete or rename `victim` from directory `dir` (sticky-bit rule)?
fn sticky_ok(ctx: &FsCtx, dir: &Stat, victim: &Stat) -> KResult<()> {
    if dir.mode & S_ISVTX != 0 && ctx.uid != 0 && ctx.uid != dir.uid && ctx.uid != victim.uid {
        return Err(Errno::EPERM);
    }
    Ok(())
}

fn is_owner(ctx: &FsCtx, st: &Stat) -> bool {
    ctx.uid == 0 || ctx.uid == st.uid
}

// ---------------------------------------------------------------------------------------
// Open

/// Opens (and with `O_CREAT` creates) `path`. `flags` are Linux `O_*` bits; `mode` is used
/// with `O_CREAT` (the umask applied here). `O_CLOEXEC` is the caller's business and
/// ignored. Supported: `O_CREAT O_EXCL O_TRUNC O_APPEND O_DIRECTORY O_NOFOLLOW O_NONBLOCK
/// O_PATH`; `O_TMPFILE` gives EOPNOTSUPP.
pub fn open(
    ctx: &FsCtx,
    base: Option<&PathRef>,
    path: &str,
    flags: u32,
    mode: u32,
) -> KResult<Arc<File>> {
    if flags & O_TMPFILE == O_TMPFILE {
        return Err(Errno::EOPNOTSUPP);
    }
    let acc = flags & O_ACCMODE;
    if acc == O_ACCMODE && flags & O_PATH == 0 {
        return Err(Errno::EINVAL);
    }
    let follow = flags & O_NOFOLLOW == 0;
    let mut created = false;
    let p = if flags & O_CREAT != 0 && flags & O_PATH == 0 {
        if flags & O_DIRECTORY != 0 {
            return Err(Errno::EINVAL);
        }
        let (mut dir, mut name, mut trailing) = walk_parent(ctx, base, path)?;
        let mut links = 0;
        loop {
            if name.is_empty() || name == "." || name == ".." {
                return Err(Errno::EISDIR);
            }
            permission(ctx, &dir.stat(), X_OK)?;
            match dir.node.lookup(&name) {
                Ok(child) => {
                    if flags & O_EXCL != 0 {
                        return Err(Errno::EEXIST);
                    }
                    let child = cross_down(PathRef {
                        mnt: dir.mnt.clone(),
                        node: child,
                        up: None,
                    });
                    if child.stat().is_symlink() {
                        if !follow {
                            return Err(Errno::ELOOP);
                        }
                        // Follow it; a dangling link's target is created (as on Linux).
                        links += 1;
                        if links > MAX_SYMLINKS {
                            return Err(Errno::ELOOP);
                        }
                        let target = child.node.readlink()?;
                        if target.is_empty() {
                            return Err(Errno::ENOENT);
                        }
                        (dir, name, trailing) = walk_parent(ctx, Some(&dir), &target)?;
                        continue;
                    }
                    if trailing && !child.stat().is_dir() {
                        return Err(Errno::ENOTDIR);
                    }
                    break if child.stat().is_dir() {
                        child
                    } else {
                        PathRef {
                            up: Some(Arc::new((dir, name))),
                            ..child
                        }
                    };
                }
                Err(Errno::ENOENT) => {
                    if trailing {
                        return Err(Errno::EISDIR);
                    }
                    let dst = dir.stat();
                    permission(ctx, &dst, W_OK | X_OK)?;
                    let gid = if dst.mode & S_ISGID != 0 {
                        dst.gid
                    } else {
                        ctx.gid
                    };
                    let node = dir.node.create(
                        &name,
                        NodeKind::Regular,
                        mode & 0o7777 & !ctx.umask,
                        ctx.uid,
                        gid,
                    )?;
                    created = true;
                    break PathRef {
                        mnt: dir.mnt.clone(),
                        node,
                        up: Some(Arc::new((dir, name))),
                    };
                }
                Err(e) => return Err(e),
            }
        }
    } else {
        lookup(ctx, base, path, follow)?
    };
    let st = p.stat();
    if flags & O_DIRECTORY != 0 && !st.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    if flags & O_PATH != 0 {
        let node = p.node.clone();
        return Ok(File::new(
            file::Kind::Path,
            Some(node),
            Some(p),
            (flags & (O_PATH | O_DIRECTORY | O_NOFOLLOW)) | O_PATH,
        ));
    }
    if st.is_symlink() {
        return Err(Errno::ELOOP);
    }
    if st.is_dir() && (acc != O_RDONLY || flags & O_CREAT != 0) {
        return Err(Errno::EISDIR);
    }
    if !created {
        let want = match acc {
            O_RDONLY => R_OK,
            O_WRONLY => W_OK,
            _ => R_OK | W_OK,
        } | if flags & O_TRUNC != 0 { W_OK } else { 0 };
        permission(ctx, &st, want)?;
    }
    let node = p.node.clone();
    let kind = match st.file_type() {
        S_IFREG => {
            if flags & O_TRUNC != 0 && acc != O_RDONLY && !created {
                node.truncate(0)?;
            }
            file::Kind::Node
        }
        S_IFDIR => file::Kind::Node,
        S_IFCHR | S_IFBLK => {
            let kind = if st.file_type() == S_IFCHR {
                DevKind::Char
            } else {
                DevKind::Block
            };
            let dev = devfs::device(kind, st.rdev).ok_or(Errno::ENXIO)?;
            file::Kind::Device(dev.open(flags)?)
        }
        S_IFIFO => {
            let pipe = node.fifo().ok_or(Errno::ENXIO)?;
            let end = match acc {
                O_RDONLY => pipe::End::Read,
                O_WRONLY => pipe::End::Write,
                _ => pipe::End::Both,
            };
            pipe.open_fifo(end, flags & O_NONBLOCK != 0)?;
            file::Kind::Pipe(pipe, end)
        }
        // No file type at all: the file system could not read the inode (`Inode::stat`
        // cannot fail, and answers mode 0 then — e.g. its disk was pulled out).
        0 => return Err(Errno::EIO),
        _ => return Err(Errno::ENXIO),
    };
    Ok(File::new(kind, Some(node), Some(p), flags))
}

/// A new pipe: (read end, write end). `flags` may hold `O_NONBLOCK` (and `O_CLOEXEC`,
/// which is the caller's).
pub fn pipe(flags: u32) -> KResult<(Arc<File>, Arc<File>)> {
    let p = pipe::Pipe::new();
    p.open_end(pipe::End::Read);
    p.open_end(pipe::End::Write);
    let nb = flags & O_NONBLOCK;
    let r = File::new(
        file::Kind::Pipe(p.clone(), pipe::End::Read),
        None,
        None,
        O_RDONLY | nb,
    );
    let w = File::new(
        file::Kind::Pipe(p, pipe::End::Write),
        None,
        None,
        O_WRONLY | nb,
    );
    Ok((r, w))
}

static INTERRUPT_CHECK: spin::Once<fn() -> bool> = spin::Once::new();

/// Installs the "is a signal pending for the current thread?" check that blocking file
/// operations poll when woken. The signal sender must also wake the thread
/// (`sched::wake`), which makes `WaitQueue::wait_until` re-check.
pub fn set_interrupt_check(f: fn() -> bool) {
    INTERRUPT_CHECK.call_once(|| f);
}

pub(crate) fn interrupted() -> bool {
    INTERRUPT_CHECK.get().is_some_and(|f| f())
}

// ---------------------------------------------------------------------------------------
// Boot

/// Sets up the root: a tmpfs holding the initrd (the `initrd` boot module), devfs on
/// `/dev`. A missing or corrupt initrd is reported on the console and leaves an empty root
/// with `/dev`; it never panics.
#[cfg(target_os = "none")]
pub fn init() {
    let t0 = crate::time::now_ns();
    let fs = TmpFs::new("tmpfs", 0o755);
    let root = PathRef::new_root(fs, "tmpfs");
    ROOT.call_once(|| root.clone());
    let ctx = FsCtx::with_root(root);
    match boot_module("initrd") {
        None => log::warn!("fs: no initrd module: the root file system is empty"),
        Some(image) => match initrd::unpack(image, &ctx) {
            Ok(s) => log::info!(
                "fs: initrd {} KiB → {} KiB: {} files, {} dirs, {} symlinks, {} hard links, {} devices in {} ms (inflate {} ms)",
                s.compressed >> 10,
                s.archive >> 10,
                s.files,
                s.dirs,
                s.symlinks,
                s.hardlinks,
                s.devices,
                (crate::time::now_ns() - t0) / 1_000_000,
                s.inflate_ns / 1_000_000
            ),
            Err(e) => crate::println!(
                "fs: BOOT ERROR: the initrd is unusable: {e}; continuing with an empty root"
            ),
        },
    }
    let _ = mkdir(&ctx, None, "/dev", 0o755);
    let _ = mount(&ctx, "devtmpfs", "devtmpfs", None, "/dev");
}

/// The bytes of the boot module `name` (GRUB `module2 … name`, or the PVH bundle's part).
#[cfg(target_os = "none")]
pub use crate::bootinfo::module_bytes as boot_module;

#[cfg(test)]
mod tests;
