//! The virtual file system: mounts, path walk, permissions and the path operations the
//! Linux syscall layer calls; tmpfs (the root, unpacked from the initrd), devfs at `/dev`,
//! pipes. See `docs/fs.md`.
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
pub mod consts;
pub mod devfs;
pub mod file;
pub mod initrd;
#[cfg(target_os = "none")]
pub mod lock;
pub mod lz4frame;
pub mod node;
pub mod pipe;
pub mod random;
pub mod sync;
pub mod tmpfs;
pub mod ustar;

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

pub use consts::*;
pub use devfs::{DevKind, Device, console_input, register_device};
pub use file::File;
pub use node::{DirEntry, FileSystem, Inode, InodeRef, NodeKind, SetAttr, Stat, StatFs, Timespec};

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
    source: String,
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
            source: source.into(),
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
        let id = ident(&p.node);
        let m = MOUNTS
            .lock()
            .iter()
            .rev()
            .find(|m| {
                m.parent
                    .as_ref()
                    .is_some_and(|(pm, mp)| pm.id == p.mnt.id && ident(mp) == id)
            })
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
// Path walk

fn start(ctx: &FsCtx, base: Option<&PathRef>, path: &str) -> PathRef {
    if path.starts_with('/') {
        ctx.root.clone()
    } else {
        base.cloned().unwrap_or_else(|| ctx.cwd.clone())
    }
}

fn check_path(path: &str, base: Option<&PathRef>) -> KResult<()> {
    if path.len() >= PATH_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    if path.is_empty() && base.is_none() {
        return Err(Errno::ENOENT);
    }
    Ok(())
}

/// Resolves `path` from `from`. `follow`: follow a symlink in the last component.
/// `links` counts symlinks followed so far (ELOOP past [`MAX_SYMLINKS`]).
fn walk_from(
    ctx: &FsCtx,
    from: PathRef,
    path: &str,
    follow: bool,
    links: &mut u32,
) -> KResult<PathRef> {
    let mut cur = if path.starts_with('/') {
        ctx.root.clone()
    } else {
        from
    };
    let trailing = path.ends_with('/');
    let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    for (i, &c) in comps.iter().enumerate() {
        let last = i + 1 == comps.len();
        let st = cur.stat();
        if !st.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        permission(ctx, &st, X_OK)?;
        if c == "." {
            continue;
        }
        if c == ".." {
            cur = parent_of(&ctx.root, &cur)?;
            continue;
        }
        if c.len() > NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let child = cur.node.lookup(c)?;
        let child = cross_down(PathRef {
            mnt: cur.mnt.clone(),
            node: child,
            up: None,
        });
        if child.stat().is_symlink() && (!last || follow || trailing) {
            *links += 1;
            if *links > MAX_SYMLINKS {
                return Err(Errno::ELOOP);
            }
            let target = child.node.readlink()?;
            if target.is_empty() {
                return Err(Errno::ENOENT);
            }
            cur = walk_from(ctx, cur, &target, true, links)?;
        } else if child.stat().is_dir() {
            cur = child;
        } else {
            cur = PathRef {
                up: Some(Arc::new((cur, c.to_string()))),
                ..child
            };
        }
    }
    if trailing && !cur.stat().is_dir() {
        return Err(Errno::ENOTDIR);
    }
    Ok(cur)
}

/// Resolves a whole path.
pub fn lookup(ctx: &FsCtx, base: Option<&PathRef>, path: &str, follow: bool) -> KResult<PathRef> {
    check_path(path, base)?;
    if path.is_empty() {
        return base.cloned().ok_or(Errno::ENOENT);
    }
    let mut links = 0;
    walk_from(ctx, start(ctx, base, path), path, follow, &mut links)
}

/// The parent directory of `path`'s last component, that component (`""` for `/`, or
/// `.`/`..` as written) and whether the path ended in `/`.
fn walk_parent(
    ctx: &FsCtx,
    base: Option<&PathRef>,
    path: &str,
) -> KResult<(PathRef, String, bool)> {
    check_path(path, base)?;
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    let trimmed = path.trim_end_matches('/');
    let trailing = trimmed.len() != path.len();
    let (dir, last) = match trimmed.rfind('/') {
        Some(i) => (&trimmed[..=i], &trimmed[i + 1..]),
        None => ("", trimmed),
    };
    let mut links = 0;
    let d = if dir.is_empty() {
        start(ctx, base, path)
    } else {
        walk_from(ctx, start(ctx, base, path), dir, true, &mut links)?
    };
    let st = d.stat();
    if !st.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    if last.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok((d, last.to_string(), trailing))
}

fn is_mountpoint(p: &PathRef) -> bool {
    let id = ident(&p.node);
    MOUNTS.lock().iter().any(|m| {
        m.parent
            .as_ref()
            .is_some_and(|(pm, mp)| pm.id == p.mnt.id && ident(mp) == id)
    })
}

/// The path of `p` as seen from `root` (`/`-separated, absolute).
pub fn path_of(root: &PathRef, p: &PathRef) -> KResult<String> {
    let mut names: Vec<String> = Vec::new();
    let mut cur = p.clone();
    for _ in 0..4096 {
        if cur.same(root) {
            break;
        }
        if let Some(up) = cur.up.clone() {
            let (dir, name) = (&up.0, &up.1);
            let still = dir
                .node
                .lookup(name)
                .ok()
                .is_some_and(|n| ident(&n) == ident(&cur.node));
            if !still || cur.stat().nlink == 0 {
                return Err(Errno::ENOENT);
            }
            names.push(name.clone());
            cur = dir.clone();
            continue;
        }
        let (parent, child_id) = if cur.is_mount_root() {
            match &cur.mnt.parent {
                Some((pm, mp)) => {
                    let up = PathRef {
                        mnt: pm.clone(),
                        node: mp.clone(),
                        up: None,
                    };
                    let pp = parent_of(root, &up)?;
                    if pp.same(&up) {
                        break;
                    }
                    (pp, ident(mp))
                }
                None => break,
            }
        } else {
            (parent_of(root, &cur)?, ident(&cur.node))
        };
        if cur.stat().nlink == 0 {
            return Err(Errno::ENOENT);
        }
        names.push(name_in(&parent.node, child_id).ok_or(Errno::ENOENT)?);
        cur = parent;
    }
    if names.is_empty() {
        return Ok("/".into());
    }
    let mut s = String::new();
    for n in names.iter().rev() {
        s.push('/');
        s.push_str(n);
    }
    Ok(s)
}

/// The name under which directory `dir` holds the node `id`.
fn name_in(dir: &InodeRef, id: (u64, u64)) -> Option<String> {
    let mut off = 2;
    loop {
        let v = dir.readdir(off, 64).ok()?;
        if v.is_empty() {
            return None;
        }
        for e in &v {
            if e.ino == id.1 && e.name != "." && e.name != ".." {
                return Some(e.name.clone());
            }
        }
        off = v.last()?.next_offset;
    }
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
// Path operations

/// `stat`/`lstat`/`fstatat` (`follow` false = `AT_SYMLINK_NOFOLLOW`).
pub fn stat(ctx: &FsCtx, base: Option<&PathRef>, path: &str, follow: bool) -> KResult<Stat> {
    Ok(lookup(ctx, base, path, follow)?.stat())
}

/// A directory for `chdir`/`chroot`/`fchdir` (needs search permission).
pub fn resolve_dir(ctx: &FsCtx, base: Option<&PathRef>, path: &str) -> KResult<PathRef> {
    let p = lookup(ctx, base, path, true)?;
    let st = p.stat();
    if !st.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    permission(ctx, &st, X_OK)?;
    Ok(p)
}

/// `getcwd`: ENOENT if the working directory was removed.
pub fn getcwd(ctx: &FsCtx) -> KResult<String> {
    path_of(&ctx.root, &ctx.cwd)
}

fn new_node_parent(
    ctx: &FsCtx,
    base: Option<&PathRef>,
    path: &str,
) -> KResult<(PathRef, String, bool, Stat)> {
    let (dir, name, trailing) = walk_parent(ctx, base, path)?;
    if name.is_empty() || name == "." || name == ".." {
        return Err(Errno::EEXIST);
    }
    let dst = dir.stat();
    permission(ctx, &dst, W_OK | X_OK)?;
    if dir.node.lookup(&name).is_ok() {
        return Err(Errno::EEXIST);
    }
    Ok((dir, name, trailing, dst))
}

/// `mkdir` (umask applied; a set-group-ID parent passes on its group and the bit).
pub fn mkdir(ctx: &FsCtx, base: Option<&PathRef>, path: &str, mode: u32) -> KResult<()> {
    let (dir, name, _, dst) = new_node_parent(ctx, base, path)?;
    let mut perm = mode & 0o7777 & !ctx.umask;
    let gid = if dst.mode & S_ISGID != 0 {
        perm |= S_ISGID;
        dst.gid
    } else {
        ctx.gid
    };
    dir.node
        .create(&name, NodeKind::Directory, perm, ctx.uid, gid)
        .map(|_| ())
}

/// `mknod`: `mode` holds the type (`S_IFREG` or 0, `S_IFCHR`, `S_IFBLK`, `S_IFIFO`,
/// `S_IFSOCK`) and permissions; devices need uid 0.
pub fn mknod(ctx: &FsCtx, base: Option<&PathRef>, path: &str, mode: u32, dev: u64) -> KResult<()> {
    let kind = match mode & S_IFMT {
        0 | S_IFREG => NodeKind::Regular,
        S_IFCHR => NodeKind::CharDev(dev),
        S_IFBLK => NodeKind::BlockDev(dev),
        S_IFIFO => NodeKind::Fifo,
        S_IFSOCK => NodeKind::Socket,
        S_IFDIR => return Err(Errno::EPERM),
        _ => return Err(Errno::EINVAL),
    };
    if matches!(kind, NodeKind::CharDev(_) | NodeKind::BlockDev(_)) && ctx.uid != 0 {
        return Err(Errno::EPERM);
    }
    let (dir, name, trailing, dst) = new_node_parent(ctx, base, path)?;
    if trailing {
        return Err(Errno::ENOENT);
    }
    let gid = if dst.mode & S_ISGID != 0 {
        dst.gid
    } else {
        ctx.gid
    };
    dir.node
        .create(&name, kind, mode & 0o7777 & !ctx.umask, ctx.uid, gid)
        .map(|_| ())
}

/// `symlink(target, path)`.
pub fn symlink(ctx: &FsCtx, target: &str, base: Option<&PathRef>, path: &str) -> KResult<()> {
    if target.is_empty() {
        return Err(Errno::ENOENT);
    }
    if target.len() >= PATH_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    let (dir, name, trailing, _) = new_node_parent(ctx, base, path)?;
    if trailing {
        return Err(Errno::ENOENT);
    }
    dir.node
        .create(&name, NodeKind::Symlink(target), 0o777, ctx.uid, ctx.gid)
        .map(|_| ())
}

/// `readlink` (EINVAL if not a symlink).
pub fn readlink(ctx: &FsCtx, base: Option<&PathRef>, path: &str) -> KResult<String> {
    let p = lookup(ctx, base, path, false)?;
    if !p.stat().is_symlink() {
        return Err(Errno::EINVAL);
    }
    p.node.readlink()
}

/// Looks up the victim of unlink/rmdir/rename in `dir` and checks the caller may remove it.
fn victim(ctx: &FsCtx, dir: &PathRef, name: &str) -> KResult<(PathRef, Stat)> {
    let dst = dir.stat();
    permission(ctx, &dst, W_OK | X_OK)?;
    let node = dir.node.lookup(name)?;
    let v = PathRef {
        mnt: dir.mnt.clone(),
        node,
        up: None,
    };
    let st = v.stat();
    sticky_ok(ctx, &dst, &st)?;
    if is_mountpoint(&v) {
        return Err(Errno::EBUSY);
    }
    Ok((v, st))
}

/// `unlink` (EISDIR for a directory).
pub fn unlink(ctx: &FsCtx, base: Option<&PathRef>, path: &str) -> KResult<()> {
    let (dir, name, trailing) = walk_parent(ctx, base, path)?;
    if name.is_empty() || name == "." || name == ".." {
        return Err(Errno::EISDIR);
    }
    let (_, st) = victim(ctx, &dir, &name)?;
    if trailing && !st.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    dir.node.unlink(&name, false)
}

/// `rmdir` (ENOTEMPTY, EBUSY for mount points and `/`, EINVAL for `.`).
pub fn rmdir(ctx: &FsCtx, base: Option<&PathRef>, path: &str) -> KResult<()> {
    let (dir, name, _) = walk_parent(ctx, base, path)?;
    match name.as_str() {
        "" => return Err(Errno::EBUSY),
        "." => return Err(Errno::EINVAL),
        ".." => return Err(Errno::ENOTEMPTY),
        _ => {}
    }
    let (v, st) = victim(ctx, &dir, &name)?;
    if !st.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    if v.same(&ctx.root) {
        return Err(Errno::EBUSY);
    }
    dir.node.unlink(&name, true)
}

/// `renameat2` (`flags`: 0 or `RENAME_NOREPLACE`; `RENAME_EXCHANGE` gives EINVAL).
pub fn rename(
    ctx: &FsCtx,
    obase: Option<&PathRef>,
    opath: &str,
    nbase: Option<&PathRef>,
    npath: &str,
    flags: u32,
) -> KResult<()> {
    if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE) != 0 {
        return Err(Errno::EINVAL);
    }
    let (od, on, otrail) = walk_parent(ctx, obase, opath)?;
    let (nd, nn, ntrail) = walk_parent(ctx, nbase, npath)?;
    for n in [&on, &nn] {
        if n.is_empty() || n == "." || n == ".." {
            return Err(Errno::EBUSY);
        }
    }
    if od.mnt.id != nd.mnt.id {
        return Err(Errno::EXDEV);
    }
    let fs = od.node.fs();
    let _serial = fs.rename_lock().lock();
    let (src, sst) = victim(ctx, &od, &on)?;
    if (otrail || ntrail) && !sst.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    let ndst = nd.stat();
    permission(ctx, &ndst, W_OK | X_OK)?;
    if let Ok(dnode) = nd.node.lookup(&nn) {
        let d = PathRef {
            mnt: nd.mnt.clone(),
            node: dnode,
            up: None,
        };
        let dstat = d.stat();
        if ident(&d.node) != ident(&src.node) {
            sticky_ok(ctx, &ndst, &dstat)?;
            if is_mountpoint(&d) {
                return Err(Errno::EBUSY);
            }
        }
    }
    if sst.is_dir() {
        // Not into itself or a descendant: walk up from the new parent.
        let src_id = ident(&src.node);
        let mut cur = nd.node.clone();
        loop {
            if ident(&cur) == src_id {
                return Err(Errno::EINVAL);
            }
            let up = cur.lookup("..")?;
            if ident(&up) == ident(&cur) {
                break;
            }
            cur = up;
        }
        if ident(&od.node) != ident(&nd.node) && ctx.uid != 0 {
            permission(ctx, &sst, W_OK)?;
        }
    }
    od.node.rename(&on, &nd.node, &nn, flags)
}

/// `linkat` (`follow` = `AT_SYMLINK_FOLLOW`).
pub fn link(
    ctx: &FsCtx,
    obase: Option<&PathRef>,
    opath: &str,
    nbase: Option<&PathRef>,
    npath: &str,
    follow: bool,
) -> KResult<()> {
    let src = lookup(ctx, obase, opath, follow)?;
    if src.stat().is_dir() {
        return Err(Errno::EPERM);
    }
    let (dir, name, trailing, _) = new_node_parent(ctx, nbase, npath)?;
    if trailing {
        return Err(Errno::ENOENT);
    }
    if dir.mnt.id != src.mnt.id {
        return Err(Errno::EXDEV);
    }
    dir.node.link(&name, &src.node)
}

pub(crate) fn chmod_node(ctx: &FsCtx, node: &InodeRef, mode: u32) -> KResult<()> {
    let st = node.stat();
    if !is_owner(ctx, &st) {
        return Err(Errno::EPERM);
    }
    let mut perm = mode & 0o7777;
    if ctx.uid != 0 && !st.is_dir() && !ctx.in_group(st.gid) {
        perm &= !S_ISGID;
    }
    node.set_attr(&SetAttr {
        perm: Some(perm),
        ..SetAttr::default()
    })
}

pub(crate) fn chown_node(
    ctx: &FsCtx,
    node: &InodeRef,
    uid: Option<u32>,
    gid: Option<u32>,
) -> KResult<()> {
    let st = node.stat();
    if ctx.uid != 0 {
        let uid_ok = uid.is_none_or(|u| u == st.uid);
        let gid_ok = gid.is_none_or(|g| g == st.gid || (ctx.uid == st.uid && ctx.in_group(g)));
        if ctx.uid != st.uid || !uid_ok || !gid_ok {
            return Err(Errno::EPERM);
        }
    }
    let mut a = SetAttr {
        uid,
        gid,
        ..SetAttr::default()
    };
    if !st.is_dir() && (uid.is_some() || gid.is_some()) {
        // Changing owners drops set-user-ID (and set-group-ID when group-executable).
        let mut perm = st.mode & 0o7777 & !S_ISUID;
        if st.mode & 0o010 != 0 {
            perm &= !S_ISGID;
        }
        a.perm = Some(perm);
    }
    node.set_attr(&a)
}

/// `chmod`/`fchmodat` (owner or root).
pub fn chmod(
    ctx: &FsCtx,
    base: Option<&PathRef>,
    path: &str,
    mode: u32,
    follow: bool,
) -> KResult<()> {
    chmod_node(ctx, &lookup(ctx, base, path, follow)?.node, mode)
}

/// `chown`/`lchown`/`fchownat` (`None` = -1, unchanged).
pub fn chown(
    ctx: &FsCtx,
    base: Option<&PathRef>,
    path: &str,
    uid: Option<u32>,
    gid: Option<u32>,
    follow: bool,
) -> KResult<()> {
    chown_node(ctx, &lookup(ctx, base, path, follow)?.node, uid, gid)
}

/// `truncate(path, len)`.
pub fn truncate(ctx: &FsCtx, base: Option<&PathRef>, path: &str, len: u64) -> KResult<()> {
    let p = lookup(ctx, base, path, true)?;
    let st = p.stat();
    if st.is_dir() {
        return Err(Errno::EISDIR);
    }
    if !st.is_reg() {
        return Err(Errno::EINVAL);
    }
    permission(ctx, &st, W_OK)?;
    p.node.truncate(len)
}

/// One timestamp argument of `utimensat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeSet {
    /// `UTIME_NOW` (or a NULL `times` pointer).
    Now,
    /// `UTIME_OMIT`.
    Omit,
    At(Timespec),
}

/// `utimensat`: setting explicit times needs ownership; setting both to now needs
/// ownership or write permission.
pub fn utimens(
    ctx: &FsCtx,
    base: Option<&PathRef>,
    path: &str,
    atime: TimeSet,
    mtime: TimeSet,
    follow: bool,
) -> KResult<()> {
    let p = lookup(ctx, base, path, follow)?;
    utimens_node(ctx, &p.node, atime, mtime)
}

pub fn utimens_node(ctx: &FsCtx, node: &InodeRef, atime: TimeSet, mtime: TimeSet) -> KResult<()> {
    let st = node.stat();
    let explicit = matches!(atime, TimeSet::At(_)) || matches!(mtime, TimeSet::At(_));
    if !is_owner(ctx, &st) {
        if explicit {
            return Err(Errno::EPERM);
        }
        permission(ctx, &st, W_OK)?;
    }
    let now = sync::now();
    let pick = |t: TimeSet| match t {
        TimeSet::Now => Some(now),
        TimeSet::Omit => None,
        TimeSet::At(t) => Some(t),
    };
    node.set_attr(&SetAttr {
        atime: pick(atime),
        mtime: pick(mtime),
        ..SetAttr::default()
    })
}

/// `access`/`faccessat` (`mode`: `F_OK` or `R_OK|W_OK|X_OK`).
pub fn access(
    ctx: &FsCtx,
    base: Option<&PathRef>,
    path: &str,
    mode: u32,
    follow: bool,
) -> KResult<()> {
    if mode & !7 != 0 {
        return Err(Errno::EINVAL);
    }
    let st = lookup(ctx, base, path, follow)?.stat();
    if mode == F_OK {
        Ok(())
    } else {
        permission(ctx, &st, mode)
    }
}

/// `statfs` of the file system holding `path`.
pub fn statfs(ctx: &FsCtx, base: Option<&PathRef>, path: &str) -> KResult<StatFs> {
    Ok(lookup(ctx, base, path, true)?.node.fs().statfs())
}

// ---------------------------------------------------------------------------------------
// Mounting

type FsFactory = fn(source: &str) -> KResult<Arc<dyn FileSystem>>;
static FILESYSTEMS: SpinLock<Vec<(&'static str, FsFactory)>> = SpinLock::new(Vec::new());

/// Makes `mount -t name` work (procfs, sysfs, ext2 register themselves here).
pub fn register_filesystem(name: &'static str, make: FsFactory) {
    let mut v = FILESYSTEMS.lock();
    v.retain(|(n, _)| *n != name);
    v.push((name, make));
}

/// A factory that also gets the mount's data string (`mount -o …`).
type FsDataFactory = fn(source: &str, data: &str) -> KResult<Arc<dyn FileSystem>>;
static FILESYSTEMS_DATA: SpinLock<Vec<(&'static str, FsDataFactory)>> = SpinLock::new(Vec::new());

/// Like [`register_filesystem`], for file systems that take mount options (ext2).
pub fn register_filesystem_data(name: &'static str, make: FsDataFactory) {
    let mut v = FILESYSTEMS_DATA.lock();
    v.retain(|(n, _)| *n != name);
    v.push((name, make));
}

/// The file-system types `mount` knows (for `/proc/filesystems`).
pub fn filesystems() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = alloc::vec!["tmpfs", "devtmpfs"];
    v.extend(FILESYSTEMS.lock().iter().map(|(n, _)| *n));
    v.extend(FILESYSTEMS_DATA.lock().iter().map(|(n, _)| *n));
    v
}

fn make_fs(fstype: &str, source: &str, data: &str) -> KResult<Arc<dyn FileSystem>> {
    // Looked up first: an `if let` on the lock would hold it (interrupts off) through the
    // whole mount.
    let with_data = FILESYSTEMS_DATA
        .lock()
        .iter()
        .find(|(n, _)| *n == fstype)
        .map(|(_, f)| *f);
    if let Some(f) = with_data {
        return f(source, data);
    }
    match fstype {
        "tmpfs" | "ramfs" => Ok(TmpFs::new("tmpfs", 0o1777)),
        "devtmpfs" => Ok(devfs::devfs()),
        _ => {
            let f = FILESYSTEMS
                .lock()
                .iter()
                .find(|(n, _)| *n == fstype)
                .map(|(_, f)| *f);
            match f {
                Some(f) => f(source),
                None => Err(Errno::ENODEV),
            }
        }
    }
}

/// Mounts a new instance of `fstype` (`tmpfs`, `devtmpfs`, or a registered type) on the
/// directory `path`. Root only.
pub fn mount(
    ctx: &FsCtx,
    fstype: &str,
    source: &str,
    base: Option<&PathRef>,
    path: &str,
) -> KResult<()> {
    mount_data(ctx, fstype, source, "", base, path)
}

/// [`mount`] with the data string (`mount -o …`, `MS_RDONLY` as `ro`) for file systems
/// registered with [`register_filesystem_data`].
pub fn mount_data(
    ctx: &FsCtx,
    fstype: &str,
    source: &str,
    data: &str,
    base: Option<&PathRef>,
    path: &str,
) -> KResult<()> {
    if ctx.uid != 0 {
        return Err(Errno::EPERM);
    }
    let p = lookup(ctx, base, path, true)?;
    if !p.stat().is_dir() {
        return Err(Errno::ENOTDIR);
    }
    let fs = make_fs(fstype, source, data)?;
    mount_fs(fs, source, &p);
    Ok(())
}

fn mount_fs(fs: Arc<dyn FileSystem>, source: &str, on: &PathRef) {
    let root = fs.root();
    let m = Arc::new(Mount {
        id: NEXT_MOUNT.fetch_add(1, Ordering::Relaxed),
        fs,
        root,
        parent: Some((on.mnt.clone(), on.node.clone())),
        source: source.into(),
    });
    MOUNTS.lock().push(m);
}

/// Unmounts the file system mounted at `path` (EINVAL if none, EBUSY if something is
/// mounted below it or it is the root). Open files keep their file system alive.
pub fn umount(ctx: &FsCtx, base: Option<&PathRef>, path: &str) -> KResult<()> {
    if ctx.uid != 0 {
        return Err(Errno::EPERM);
    }
    let p = lookup(ctx, base, path, true)?;
    if !p.is_mount_root() {
        return Err(Errno::EINVAL);
    }
    if p.mnt.parent.is_none() || p.same(&ctx.root) {
        return Err(Errno::EBUSY);
    }
    let mut v = MOUNTS.lock();
    if v.iter()
        .any(|m| m.parent.as_ref().is_some_and(|(pm, _)| pm.id == p.mnt.id))
    {
        return Err(Errno::EBUSY);
    }
    v.retain(|m| m.id != p.mnt.id);
    drop(v);
    p.mnt.fs.detached();
    Ok(())
}

/// One line of `/proc/mounts`.
#[derive(Clone, Debug)]
pub struct MountInfo {
    pub source: String,
    pub path: String,
    pub fstype: &'static str,
    /// Which driver stack serves it, for file systems that have more than one.
    pub driver: Option<&'static str>,
}

/// The mount table as seen from the initial root.
pub fn mounts() -> Vec<MountInfo> {
    let root = root();
    let mut v = alloc::vec![MountInfo {
        source: root.mnt.source.clone(),
        path: "/".into(),
        fstype: root.mnt.fs.name(),
        driver: root.mnt.fs.driver()
    }];
    let all = MOUNTS.lock().clone();
    for m in all {
        let p = PathRef {
            mnt: m.clone(),
            node: m.root.clone(),
            up: None,
        };
        if let Ok(path) = path_of(&root, &p) {
            v.push(MountInfo {
                source: m.source.clone(),
                path,
                fstype: m.fs.name(),
                driver: m.fs.driver(),
            });
        }
    }
    v
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

/// The bytes of the boot module `name` (GRUB `module2 … name`).
#[cfg(target_os = "none")]
pub fn boot_module(name: &str) -> Option<&'static [u8]> {
    let m = crate::boot::info().module(name)?;
    let len = usize::try_from(m.end.checked_sub(m.start)?).ok()?;
    // SAFETY: GRUB loaded the module into RAM that the frame allocator keeps reserved for
    // ever (the boot loader's ranges) and the linear map covers; nothing ever writes it.
    Some(unsafe { core::slice::from_raw_parts(crate::mm::phys_to_virt(m.start) as *const u8, len) })
}

#[cfg(test)]
mod tests;
