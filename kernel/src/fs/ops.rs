//! The path operations the syscall layer calls besides `open`: stat, mkdir, mknod, symlinks,
//! unlink, rmdir, rename, link, chmod/chown, truncate, utimens, access, statfs.

use super::*;

/// `stat`/`lstat`/`fstatat` (`follow` false = `AT_SYMLINK_NOFOLLOW`).
pub fn stat(ctx: &FsCtx, base: Option<&PathRef>, path: &str, follow: bool) -> KResult<Stat> {
    lookup_stat(ctx, base, path, follow)
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
    if super::bytename::byte_len(target) >= PATH_MAX {
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
    let st = lookup_stat(ctx, base, path, follow)?;
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
