//! The path calls: working and root directory, creating, renaming, linking and removing
//! names, permissions and owners, times, statfs, mount and umount.

use super::*;

pub(super) fn getcwd(c: &mut Call<'_>) -> KResult<u64> {
    let s = fs::getcwd(&ctx()?)?;
    let mut b = fs::bytename::to_bytes(&s).into_owned();
    b.push(0);
    if b.len() > c.a1() as usize {
        return Err(Errno::ERANGE);
    }
    copy_to_user(c.a0(), &b)?;
    Ok(b.len() as u64)
}

fn set_cwd(p: &Process, dir: PathRef) {
    if let Some(ctx) = p.fs.lock().as_mut() {
        ctx.cwd = dir;
    }
}

pub(super) fn chdir(c: &mut Call<'_>) -> KResult<u64> {
    let p = me()?;
    let path = path_arg(c.a0())?;
    let d = fs::resolve_dir(&p.fs_ctx(), None, &path)?;
    set_cwd(&p, d);
    Ok(0)
}
pub(super) fn fchdir(c: &mut Call<'_>) -> KResult<u64> {
    let p = me()?;
    let f = file(c.i32(0))?;
    let d = f.path_ref().ok_or(Errno::ENOTDIR)?.clone();
    if !d.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    fs::access(&p.fs_ctx(), Some(&d), ".", 1, true)?;
    set_cwd(&p, d);
    Ok(0)
}
pub(super) fn chroot(c: &mut Call<'_>) -> KResult<u64> {
    let p = me()?;
    let ctx = p.fs_ctx();
    if ctx.uid != 0 {
        return Err(Errno::EPERM);
    }
    let path = path_arg(c.a0())?;
    let d = fs::resolve_dir(&ctx, None, &path)?;
    if let Some(x) = p.fs.lock().as_mut() {
        x.root = d;
    }
    Ok(0)
}

pub(super) fn rename(c: &mut Call<'_>) -> KResult<u64> {
    let (o, n) = (path_arg(c.a0())?, path_arg(c.a1())?);
    fs::rename(&ctx()?, None, &o, None, &n, 0)?;
    Ok(0)
}
pub(super) fn renameat(c: &mut Call<'_>) -> KResult<u64> {
    renameat_common(c.i32(0), c.a1(), c.i32(2), c.a3(), 0)
}
pub(super) fn renameat2(c: &mut Call<'_>) -> KResult<u64> {
    renameat_common(c.i32(0), c.a1(), c.i32(2), c.a3(), c.a4() as u32)
}
fn renameat_common(ofd: i32, op: u64, nfd: i32, np: u64, flags: u32) -> KResult<u64> {
    let (o, n) = (path_arg(op)?, path_arg(np)?);
    let (ob, nb) = (base(ofd, &o)?, base(nfd, &n)?);
    fs::rename(&ctx()?, ob.as_ref(), &o, nb.as_ref(), &n, flags)?;
    Ok(0)
}

pub(super) fn mkdir(c: &mut Call<'_>) -> KResult<u64> {
    let path = path_arg(c.a0())?;
    let ctx = ctx()?;
    fs::mkdir(&ctx, None, &path, c.a1() as u32 & !ctx.umask & 0o7777)?;
    Ok(0)
}
pub(super) fn mkdirat(c: &mut Call<'_>) -> KResult<u64> {
    let path = path_arg(c.a1())?;
    let ctx = ctx()?;
    let b = base(c.i32(0), &path)?;
    fs::mkdir(&ctx, b.as_ref(), &path, c.a2() as u32 & !ctx.umask & 0o7777)?;
    Ok(0)
}
pub(super) fn mknod(c: &mut Call<'_>) -> KResult<u64> {
    let path = path_arg(c.a0())?;
    let ctx = ctx()?;
    let mode = c.a1() as u32;
    fs::mknod(
        &ctx,
        None,
        &path,
        (mode & S_IFMT) | (mode & !ctx.umask & 0o7777),
        c.a2(),
    )?;
    Ok(0)
}
pub(super) fn mknodat(c: &mut Call<'_>) -> KResult<u64> {
    let path = path_arg(c.a1())?;
    let ctx = ctx()?;
    let b = base(c.i32(0), &path)?;
    let mode = c.a2() as u32;
    fs::mknod(
        &ctx,
        b.as_ref(),
        &path,
        (mode & S_IFMT) | (mode & !ctx.umask & 0o7777),
        c.a3(),
    )?;
    Ok(0)
}
pub(super) fn rmdir(c: &mut Call<'_>) -> KResult<u64> {
    let path = path_arg(c.a0())?;
    fs::rmdir(&ctx()?, None, &path)?;
    Ok(0)
}
pub(super) fn unlink(c: &mut Call<'_>) -> KResult<u64> {
    let path = path_arg(c.a0())?;
    fs::unlink(&ctx()?, None, &path)?;
    Ok(0)
}
pub(super) fn unlinkat(c: &mut Call<'_>) -> KResult<u64> {
    let path = path_arg(c.a1())?;
    let b = base(c.i32(0), &path)?;
    if c.a2() & AT_REMOVEDIR != 0 {
        fs::rmdir(&ctx()?, b.as_ref(), &path)?;
    } else {
        fs::unlink(&ctx()?, b.as_ref(), &path)?;
    }
    Ok(0)
}
pub(super) fn link(c: &mut Call<'_>) -> KResult<u64> {
    let (o, n) = (path_arg(c.a0())?, path_arg(c.a1())?);
    fs::link(&ctx()?, None, &o, None, &n, false)?;
    Ok(0)
}
pub(super) fn linkat(c: &mut Call<'_>) -> KResult<u64> {
    let (o, n) = (path_arg(c.a1())?, path_arg(c.a3())?);
    let (ob, nb) = (base(c.i32(0), &o)?, base(c.i32(2), &n)?);
    fs::link(
        &ctx()?,
        ob.as_ref(),
        &o,
        nb.as_ref(),
        &n,
        c.a4() & AT_SYMLINK_FOLLOW != 0,
    )?;
    Ok(0)
}
pub(super) fn symlink(c: &mut Call<'_>) -> KResult<u64> {
    let (t, n) = (path_arg(c.a0())?, path_arg(c.a1())?);
    fs::symlink(&ctx()?, &t, None, &n)?;
    Ok(0)
}
pub(super) fn symlinkat(c: &mut Call<'_>) -> KResult<u64> {
    let (t, n) = (path_arg(c.a0())?, path_arg(c.a2())?);
    let b = base(c.i32(1), &n)?;
    fs::symlink(&ctx()?, &t, b.as_ref(), &n)?;
    Ok(0)
}
fn readlink_common(dirfd: i32, p: u64, buf: u64, len: u64) -> KResult<u64> {
    let path = path_arg(p)?;
    let b = base(dirfd, &path)?;
    let target = fs::readlink(&ctx()?, b.as_ref(), &path)?;
    let target = fs::bytename::to_bytes(&target);
    let n = target.len().min(len as usize);
    copy_to_user(buf, &target[..n])?;
    Ok(n as u64)
}
pub(super) fn readlink(c: &mut Call<'_>) -> KResult<u64> {
    readlink_common(AT_FDCWD, c.a0(), c.a1(), c.a2())
}
pub(super) fn readlinkat(c: &mut Call<'_>) -> KResult<u64> {
    readlink_common(c.i32(0), c.a1(), c.a2(), c.a3())
}

pub(super) fn chmod(c: &mut Call<'_>) -> KResult<u64> {
    let path = path_arg(c.a0())?;
    fs::chmod(&ctx()?, None, &path, c.a1() as u32 & 0o7777, true)?;
    Ok(0)
}
pub(super) fn fchmod(c: &mut Call<'_>) -> KResult<u64> {
    file(c.i32(0))?.chmod(&ctx()?, c.a1() as u32 & 0o7777)?;
    Ok(0)
}
pub(super) fn fchmodat(c: &mut Call<'_>) -> KResult<u64> {
    let path = path_arg(c.a1())?;
    let b = base(c.i32(0), &path)?;
    fs::chmod(&ctx()?, b.as_ref(), &path, c.a2() as u32 & 0o7777, true)?;
    Ok(0)
}
fn ids(uid: u64, gid: u64) -> (Option<u32>, Option<u32>) {
    (
        (uid as u32 != u32::MAX).then_some(uid as u32),
        (gid as u32 != u32::MAX).then_some(gid as u32),
    )
}
pub(super) fn chown(c: &mut Call<'_>) -> KResult<u64> {
    let path = path_arg(c.a0())?;
    let (u, g) = ids(c.a1(), c.a2());
    fs::chown(&ctx()?, None, &path, u, g, true)?;
    Ok(0)
}
pub(super) fn lchown(c: &mut Call<'_>) -> KResult<u64> {
    let path = path_arg(c.a0())?;
    let (u, g) = ids(c.a1(), c.a2());
    fs::chown(&ctx()?, None, &path, u, g, false)?;
    Ok(0)
}
pub(super) fn fchown(c: &mut Call<'_>) -> KResult<u64> {
    let (u, g) = ids(c.a1(), c.a2());
    file(c.i32(0))?.chown(&ctx()?, u, g)?;
    Ok(0)
}
pub(super) fn fchownat(c: &mut Call<'_>) -> KResult<u64> {
    let path = path_arg(c.a1())?;
    let (u, g) = ids(c.a2(), c.a3());
    if path.is_empty() && c.a4() & AT_EMPTY_PATH != 0 {
        file(c.i32(0))?.chown(&ctx()?, u, g)?;
        return Ok(0);
    }
    let b = base(c.i32(0), &path)?;
    fs::chown(
        &ctx()?,
        b.as_ref(),
        &path,
        u,
        g,
        c.a4() & AT_SYMLINK_NOFOLLOW == 0,
    )?;
    Ok(0)
}
pub(super) fn umask(c: &mut Call<'_>) -> KResult<u64> {
    let p = me()?;
    let mut g = p.fs.lock();
    let ctx = g.as_mut().ok_or(Errno::ESRCH)?;
    let old = ctx.umask;
    ctx.umask = c.a0() as u32 & 0o777;
    Ok(u64::from(old))
}

pub(super) fn utimensat(c: &mut Call<'_>) -> KResult<u64> {
    use crate::fs::TimeSet;
    const UTIME_NOW: i64 = (1 << 30) - 1;
    const UTIME_OMIT: i64 = (1 << 30) - 2;
    let conv = |t: abi::Timespec| match t.tv_nsec {
        UTIME_NOW => Ok(TimeSet::Now),
        UTIME_OMIT => Ok(TimeSet::Omit),
        n if (0..1_000_000_000).contains(&n) => Ok(TimeSet::At(crate::fs::node::Timespec {
            sec: t.tv_sec,
            nsec: n,
        })),
        _ => Err(Errno::EINVAL),
    };
    let (a, m) = if c.a2() == 0 {
        (TimeSet::Now, TimeSet::Now)
    } else {
        let ts: [abi::Timespec; 2] = read_val(c.a2())?;
        (conv(ts[0])?, conv(ts[1])?)
    };
    let ctx = ctx()?;
    if c.a1() == 0 {
        // futimens(fd, …)
        let f = file(c.i32(0))?;
        let node = f.inode().ok_or(Errno::EBADF)?;
        fs::utimens_node(&ctx, node, a, m)?;
        return Ok(0);
    }
    let path = path_arg(c.a1())?;
    let b = base(c.i32(0), &path)?;
    fs::utimens(
        &ctx,
        b.as_ref(),
        &path,
        a,
        m,
        c.a3() & AT_SYMLINK_NOFOLLOW == 0,
    )?;
    Ok(0)
}

pub(super) fn statfs(c: &mut Call<'_>) -> KResult<u64> {
    let path = path_arg(c.a0())?;
    let s = fs::statfs(&ctx()?, None, &path)?;
    write_val(c.a1(), &abi::Statfs::from(&s))?;
    Ok(0)
}
pub(super) fn fstatfs(c: &mut Call<'_>) -> KResult<u64> {
    let s = file(c.i32(0))?.statfs()?;
    write_val(c.a1(), &abi::Statfs::from(&s))?;
    Ok(0)
}

pub(super) fn mount(c: &mut Call<'_>) -> KResult<u64> {
    let source = if c.a0() != 0 {
        path_arg(c.a0())?
    } else {
        String::new()
    };
    let target = path_arg(c.a1())?;
    let fstype = if c.a2() != 0 {
        path_arg(c.a2())?
    } else {
        String::new()
    };
    const MS_REMOUNT: u64 = 32;
    const MS_BIND: u64 = 4096;
    const MS_RDONLY: u64 = 1;
    if c.a3() & (MS_REMOUNT | MS_BIND) != 0 {
        return Err(Errno::EINVAL);
    }
    // The data string (`mount -o`, minus the flags busybox turned into MS_*), with
    // MS_RDONLY folded in as `ro`.
    let mut data = if c.a4() != 0 {
        path_arg(c.a4())?
    } else {
        String::new()
    };
    if c.a3() & MS_RDONLY != 0 {
        data = if data.is_empty() {
            String::from("ro")
        } else {
            alloc::format!("ro,{data}")
        };
    }
    fs::mount_data(&ctx()?, &fstype, &source, &data, None, &target)?;
    Ok(0)
}
pub(super) fn umount2(c: &mut Call<'_>) -> KResult<u64> {
    let target = path_arg(c.a0())?;
    fs::umount(&ctx()?, None, &target)?;
    Ok(0)
}
