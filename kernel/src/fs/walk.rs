//! Path walk: from the caller's root or cwd (or a dirfd) through mounts and symlinks to a
//! [`PathRef`], and back from a [`PathRef`] to its path (`getcwd`, `/proc/*/cwd`).

use super::*;

fn start(ctx: &FsCtx, base: Option<&PathRef>, path: &str) -> PathRef {
    if path.starts_with('/') {
        ctx.root.clone()
    } else {
        base.cloned().unwrap_or_else(|| ctx.cwd.clone())
    }
}

fn check_path(path: &str, base: Option<&PathRef>) -> KResult<()> {
    if super::bytename::byte_len(path) >= PATH_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    if path.is_empty() && base.is_none() {
        return Err(Errno::ENOENT);
    }
    Ok(())
}

/// What a walk is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    /// A handle to keep: a non-directory result knows the directory and name it was reached
    /// by (what `path_of` needs).
    Handle,
    /// The attributes only (`stat`, `access`): no handle when the file system can read the
    /// last component's attributes without making a node ([`Inode::child_stat`]).
    Attrs,
}

/// Resolves `path` from `from`, returning the node (always, for [`Want::Handle`]) and its
/// attributes (read once, as the walk stepped onto it). `follow`: follow a symlink in the
/// last component. `links` counts symlinks followed so far (ELOOP past [`MAX_SYMLINKS`]).
fn walk_from(
    ctx: &FsCtx,
    from: PathRef,
    path: &str,
    follow: bool,
    links: &mut u32,
    want: Want,
) -> KResult<(Option<PathRef>, Stat)> {
    let mut cur = if path.starts_with('/') {
        ctx.root.clone()
    } else {
        from
    };
    let trailing = path.ends_with('/');
    let mut comps = path.split('/').filter(|c| !c.is_empty()).peekable();
    // The attributes of `cur` when a previous step already read them (the node just
    // stepped onto): one `stat` per component.
    let mut cur_st = None;
    while let Some(c) = comps.next() {
        let last = comps.peek().is_none();
        let st = match cur_st.take() {
            Some(st) => st,
            None => cur.stat(),
        };
        if !st.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        permission(ctx, &st, X_OK)?;
        if c == "." {
            cur_st = Some(st);
            continue;
        }
        if c == ".." {
            cur = parent_of(&ctx.root, &cur)?;
            continue;
        }
        if super::bytename::byte_len(c) > NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        // The last component's attributes straight from its directory, when nothing can be
        // mounted on it (no mounts below this mount) and no symlink is to be followed.
        if last
            && want == Want::Attrs
            && !trailing
            && cur.mnt.children.load(Ordering::Acquire) == 0
            && let Some(r) = cur.node.child_stat(c)
        {
            let cst = r?;
            if !(cst.is_symlink() && follow) {
                return Ok((None, cst));
            }
        }
        let child = cur.node.lookup(c)?;
        let child = cross_down(PathRef {
            mnt: cur.mnt.clone(),
            node: child,
            up: None,
        });
        let cst = child.stat();
        if cst.is_symlink() && (!last || follow || trailing) {
            *links += 1;
            if *links > MAX_SYMLINKS {
                return Err(Errno::ELOOP);
            }
            let target = child.node.readlink()?;
            if target.is_empty() {
                return Err(Errno::ENOENT);
            }
            // Only the last component's target may come back as attributes alone.
            let inner = if last && !trailing {
                want
            } else {
                Want::Handle
            };
            let (p, pst) = walk_from(ctx, cur, &target, true, links, inner)?;
            match p {
                Some(p) => cur = p,
                None => return Ok((None, pst)),
            }
            cur_st = Some(pst);
        } else if cst.is_dir() || want == Want::Attrs {
            cur = child;
            cur_st = Some(cst);
        } else {
            cur = PathRef {
                up: Some(Arc::new((cur, c.to_string()))),
                ..child
            };
            cur_st = Some(cst);
        }
    }
    let st = match cur_st {
        Some(st) => st,
        None => cur.stat(),
    };
    if trailing && !st.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    Ok((Some(cur), st))
}

/// Resolves a whole path.
pub fn lookup(ctx: &FsCtx, base: Option<&PathRef>, path: &str, follow: bool) -> KResult<PathRef> {
    check_path(path, base)?;
    if path.is_empty() {
        return base.cloned().ok_or(Errno::ENOENT);
    }
    let mut links = 0;
    let (p, _) = walk_from(
        ctx,
        start(ctx, base, path),
        path,
        follow,
        &mut links,
        Want::Handle,
    )?;
    p.ok_or(Errno::EIO)
}

/// The attributes of the node `path` names (`stat`, `access`): the walk's own reading of
/// them, without building what a kept handle needs.
pub fn lookup_stat(ctx: &FsCtx, base: Option<&PathRef>, path: &str, follow: bool) -> KResult<Stat> {
    check_path(path, base)?;
    if path.is_empty() {
        return base.map(PathRef::stat).ok_or(Errno::ENOENT);
    }
    let mut links = 0;
    walk_from(
        ctx,
        start(ctx, base, path),
        path,
        follow,
        &mut links,
        Want::Attrs,
    )
    .map(|(_, st)| st)
}

/// The parent directory of `path`'s last component, that component (`""` for `/`, or
/// `.`/`..` as written) and whether the path ended in `/`.
pub(super) fn walk_parent(
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
    let (d, st) = if dir.is_empty() {
        let d = start(ctx, base, path);
        let st = d.stat();
        (d, st)
    } else {
        match walk_from(
            ctx,
            start(ctx, base, path),
            dir,
            true,
            &mut links,
            Want::Handle,
        )? {
            (Some(d), st) => (d, st),
            (None, _) => return Err(Errno::EIO),
        }
    };
    if !st.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    if super::bytename::byte_len(last) > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok((d, last.to_string(), trailing))
}

pub(super) fn is_mountpoint(p: &PathRef) -> bool {
    let id = ident(&p.node);
    MOUNTS
        .lock()
        .iter()
        .any(|m| m.at == id && m.parent.as_ref().is_some_and(|(pm, _)| pm.id == p.mnt.id))
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
