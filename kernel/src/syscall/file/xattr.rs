//! Extended attributes: `{,l,f}getxattr`, `{,l,f}listxattr`, `{,l,f}setxattr`,
//! `{,l,f}removexattr`. No AdrOS file system stores extended attributes, so they answer as
//! Linux does for a file system without them — a file has none: `get` and `remove` say
//! ENODATA, `list` returns an empty list, `set` says EOPNOTSUPP — after checking the file
//! and the name as Linux does (ENOENT, EBADF, ERANGE for an empty or over-long name,
//! EOPNOTSUPP for a name outside the `user.`/`trusted.`/`security.`/`system.` namespaces,
//! EINVAL for unknown `set` flags). GNU `ls -l` and `cp -a` ask for them on every file.

use super::*;

/// XATTR_NAME_MAX.
const NAME_MAX: usize = 255;
const XATTR_CREATE: u64 = 1;
const XATTR_REPLACE: u64 = 2;

/// Which file: a path (following a final symlink or not), or a descriptor.
enum Target {
    Path(u64, bool),
    Fd(i32),
}

fn check_target(t: Target) -> KResult<()> {
    match t {
        Target::Path(p, follow) => {
            let path = path_arg(p)?;
            fs::stat(&ctx()?, None, &path, follow)?;
        }
        Target::Fd(fd) => {
            file(fd)?;
        }
    }
    Ok(())
}

fn check_name(addr: u64) -> KResult<()> {
    let name = read_cstr(addr, NAME_MAX + 1).map_err(|e| {
        if e == Errno::ENAMETOOLONG {
            Errno::ERANGE
        } else {
            e
        }
    })?;
    if name.is_empty() || name.len() > NAME_MAX {
        return Err(Errno::ERANGE);
    }
    let known = [&b"user."[..], b"trusted.", b"security.", b"system."]
        .iter()
        .any(|ns| name.starts_with(ns) && name.len() > ns.len());
    if known {
        Ok(())
    } else {
        Err(Errno::EOPNOTSUPP)
    }
}

fn get(t: Target, name: u64) -> KResult<u64> {
    check_target(t)?;
    check_name(name)?;
    Err(Errno::ENODATA)
}
fn list(t: Target) -> KResult<u64> {
    check_target(t)?;
    Ok(0)
}
fn set(t: Target, name: u64, flags: u64) -> KResult<u64> {
    if flags & !(XATTR_CREATE | XATTR_REPLACE) != 0 {
        return Err(Errno::EINVAL);
    }
    check_target(t)?;
    check_name(name)?;
    Err(Errno::EOPNOTSUPP)
}
fn remove(t: Target, name: u64) -> KResult<u64> {
    check_target(t)?;
    check_name(name)?;
    Err(Errno::ENODATA)
}

pub(super) fn setxattr(c: &mut Call<'_>) -> KResult<u64> {
    set(Target::Path(c.a0(), true), c.a1(), c.a4())
}
pub(super) fn lsetxattr(c: &mut Call<'_>) -> KResult<u64> {
    set(Target::Path(c.a0(), false), c.a1(), c.a4())
}
pub(super) fn fsetxattr(c: &mut Call<'_>) -> KResult<u64> {
    set(Target::Fd(c.i32(0)), c.a1(), c.a4())
}
pub(super) fn getxattr(c: &mut Call<'_>) -> KResult<u64> {
    get(Target::Path(c.a0(), true), c.a1())
}
pub(super) fn lgetxattr(c: &mut Call<'_>) -> KResult<u64> {
    get(Target::Path(c.a0(), false), c.a1())
}
pub(super) fn fgetxattr(c: &mut Call<'_>) -> KResult<u64> {
    get(Target::Fd(c.i32(0)), c.a1())
}
pub(super) fn listxattr(c: &mut Call<'_>) -> KResult<u64> {
    list(Target::Path(c.a0(), true))
}
pub(super) fn llistxattr(c: &mut Call<'_>) -> KResult<u64> {
    list(Target::Path(c.a0(), false))
}
pub(super) fn flistxattr(c: &mut Call<'_>) -> KResult<u64> {
    list(Target::Fd(c.i32(0)))
}
pub(super) fn removexattr(c: &mut Call<'_>) -> KResult<u64> {
    remove(Target::Path(c.a0(), true), c.a1())
}
pub(super) fn lremovexattr(c: &mut Call<'_>) -> KResult<u64> {
    remove(Target::Path(c.a0(), false), c.a1())
}
pub(super) fn fremovexattr(c: &mut Call<'_>) -> KResult<u64> {
    remove(Target::Fd(c.i32(0)), c.a1())
}
