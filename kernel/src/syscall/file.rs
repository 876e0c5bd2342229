//! File and directory calls over the VFS: read/write (and their vector, positional forms),
//! open/openat/close, stat family, getdents64, dup family, pipes, fcntl, ioctl, poll and
//! select, the path operations and their `*at` forms, mount.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::abi;
use super::{Call, Table};
use crate::arch::uaccess::{copy_from_user, copy_to_user, read_cstr, read_val, write_val};
use crate::errno::{Errno, KResult};
use crate::fs::consts::*;
use crate::fs::file::File;
use crate::fs::node::Stat;
use crate::fs::{self, FsCtx, PathRef};
use crate::proc::{Process, current_process};
use core::mem::{offset_of, size_of};
use zerocopy::IntoBytes;

const AT_FDCWD: i32 = -100;
const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
const AT_REMOVEDIR: u64 = 0x200;
const AT_SYMLINK_FOLLOW: u64 = 0x400;
const AT_EMPTY_PATH: u64 = 0x1000;
/// Largest single read/write we copy through a kernel buffer at once.
const CHUNK: usize = 1 << 20;
/// Requests up to this size get a fresh zeroed buffer; larger ones borrow a pooled one.
const SMALL: usize = 4096;
/// Pooled buffers kept for reuse.
const POOLED: usize = 4;

/// Reusable CHUNK-sized bounce buffers: zero-filling a fresh 1 MiB buffer for every large
/// read or write cost as much kernel time as the user copy itself (seen with
/// `debug.profile=1`). A buffer keeps whatever the last call left in it, which is never
/// shown: a read copies out only the bytes the file layer wrote, a write fills all it uses.
static POOL: spin::Mutex<Vec<Vec<u8>>> = spin::Mutex::new(Vec::new());

/// A bounce buffer of `len` bytes (at most CHUNK), pooled when large.
struct Bounce {
    buf: Vec<u8>,
    len: usize,
}

impl Bounce {
    fn new(len: usize) -> Self {
        let len = len.min(CHUNK);
        if len <= SMALL {
            return Bounce {
                buf: alloc::vec![0u8; len],
                len,
            };
        }
        let buf = POOL.lock().pop().unwrap_or_else(|| alloc::vec![0u8; CHUNK]);
        Bounce { buf, len }
    }
}

impl core::ops::Deref for Bounce {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl core::ops::DerefMut for Bounce {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.buf[..self.len]
    }
}

impl Drop for Bounce {
    fn drop(&mut self) {
        if self.buf.len() == CHUNK {
            let mut pool = POOL.lock();
            if pool.len() < POOLED {
                pool.push(core::mem::take(&mut self.buf));
            }
        }
    }
}

pub fn register(t: &mut Table) {
    t.add(0, "read", read);
    t.add(1, "write", write);
    t.add(2, "open", open);
    t.add(3, "close", close);
    t.add(4, "stat", stat);
    t.add(5, "fstat", fstat);
    t.add(6, "lstat", lstat);
    t.add(7, "poll", poll);
    t.add(8, "lseek", lseek);
    t.add(16, "ioctl", ioctl);
    t.add(17, "pread64", pread64);
    t.add(18, "pwrite64", pwrite64);
    t.add(19, "readv", readv);
    t.add(20, "writev", writev);
    t.add(21, "access", access);
    t.add(22, "pipe", pipe);
    t.add(23, "select", select);
    t.add(32, "dup", dup);
    t.add(33, "dup2", dup2);
    t.add(40, "sendfile", sendfile);
    t.add(72, "fcntl", fcntl);
    t.add(73, "flock", flock);
    t.add(74, "fsync", fsync);
    t.add(75, "fdatasync", fsync);
    t.add(76, "truncate", truncate);
    t.add(77, "ftruncate", ftruncate);
    t.add(79, "getcwd", getcwd);
    t.add(80, "chdir", chdir);
    t.add(81, "fchdir", fchdir);
    t.add(82, "rename", rename);
    t.add(83, "mkdir", mkdir);
    t.add(84, "rmdir", rmdir);
    t.add(85, "creat", creat);
    t.add(86, "link", link);
    t.add(87, "unlink", unlink);
    t.add(88, "symlink", symlink);
    t.add(89, "readlink", readlink);
    t.add(90, "chmod", chmod);
    t.add(91, "fchmod", fchmod);
    t.add(92, "chown", chown);
    t.add(93, "fchown", fchown);
    t.add(94, "lchown", lchown);
    t.add(95, "umask", umask);
    t.add(133, "mknod", mknod);
    t.add(137, "statfs", statfs);
    t.add(138, "fstatfs", fstatfs);
    t.add(161, "chroot", chroot);
    t.add(162, "sync", sync);
    t.add(165, "mount", mount);
    t.add(166, "umount2", umount2);
    t.add(217, "getdents64", getdents64);
    t.add(257, "openat", openat);
    t.add(258, "mkdirat", mkdirat);
    t.add(259, "mknodat", mknodat);
    t.add(260, "fchownat", fchownat);
    t.add(262, "newfstatat", newfstatat);
    t.add(263, "unlinkat", unlinkat);
    t.add(264, "renameat", renameat);
    t.add(265, "linkat", linkat);
    t.add(266, "symlinkat", symlinkat);
    t.add(267, "readlinkat", readlinkat);
    t.add(268, "fchmodat", fchmodat);
    t.add(269, "faccessat", faccessat);
    t.add(270, "pselect6", pselect6);
    t.add(271, "ppoll", ppoll);
    t.add(280, "utimensat", utimensat);
    t.add(292, "dup3", dup3);
    t.add(293, "pipe2", pipe2);
    t.add(316, "renameat2", renameat2);
    t.add(332, "statx", statx);
    t.add(439, "faccessat2", faccessat2);
}

fn me() -> KResult<Arc<Process>> {
    current_process().ok_or(Errno::ESRCH)
}

fn ctx() -> KResult<FsCtx> {
    Ok(me()?.fs_ctx())
}

fn file(fd: i32) -> KResult<Arc<File>> {
    me()?.files.lock().get(fd)
}

fn path_arg(addr: u64) -> KResult<String> {
    let b = read_cstr(addr, 4095)?;
    String::from_utf8(b).map_err(|_| Errno::EINVAL)
}

/// The base directory for an `*at` call: None for AT_FDCWD or absolute paths.
fn base(dirfd: i32, path: &str) -> KResult<Option<PathRef>> {
    if dirfd == AT_FDCWD || path.starts_with('/') {
        return Ok(None);
    }
    let f = file(dirfd)?;
    let p = f.path_ref().ok_or(Errno::ENOTDIR)?.clone();
    if !p.is_dir() && !path.is_empty() {
        return Err(Errno::ENOTDIR);
    }
    Ok(Some(p))
}

/// Maps "interrupted" from the file layer to a restartable error.
fn restartable<T>(r: KResult<T>) -> KResult<T> {
    match r {
        Err(Errno::EINTR) => Err(Errno::ERESTARTSYS),
        other => other,
    }
}

fn read(c: &mut Call<'_>) -> KResult<u64> {
    let f = file(c.i32(0))?;
    let mut buf = Bounce::new(c.a2() as usize);
    let n = restartable(f.read(&mut buf))?;
    copy_to_user(c.a1(), &buf[..n])?;
    Ok(n as u64)
}

fn sigpipe_on<T>(r: KResult<T>) -> KResult<T> {
    if let Err(Errno::EPIPE) = r
        && let Some(t) = crate::proc::current_task()
    {
        crate::proc::signal::send_task(&t, crate::proc::signal::SIGPIPE);
    }
    r
}

fn write(c: &mut Call<'_>) -> KResult<u64> {
    let f = file(c.i32(0))?;
    let mut buf = Bounce::new(c.a2() as usize);
    copy_from_user(&mut buf, c.a1())?;
    Ok(sigpipe_on(restartable(f.write(&buf)))? as u64)
}

/// pread/pwrite need a seekable file: pipes, FIFOs and terminals give ESPIPE.
fn seekable(f: &File) -> KResult<()> {
    let st = f.stat()?;
    let tty = st.file_type() == S_IFCHR && matches!(st.rdev >> 8, 4 | 5);
    if st.file_type() == S_IFIFO || tty {
        return Err(Errno::ESPIPE);
    }
    Ok(())
}

fn pread64(c: &mut Call<'_>) -> KResult<u64> {
    let f = file(c.i32(0))?;
    seekable(&f)?;
    if (c.a3() as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    let mut buf = Bounce::new(c.a2() as usize);
    let n = f.pread(&mut buf, c.a3())?;
    copy_to_user(c.a1(), &buf[..n])?;
    Ok(n as u64)
}

fn pwrite64(c: &mut Call<'_>) -> KResult<u64> {
    let f = file(c.i32(0))?;
    seekable(&f)?;
    if (c.a3() as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    let mut buf = Bounce::new(c.a2() as usize);
    copy_from_user(&mut buf, c.a1())?;
    Ok(f.pwrite(&buf, c.a3())? as u64)
}

fn iovecs(addr: u64, n: u64) -> KResult<Vec<(u64, usize)>> {
    if n > 1024 {
        return Err(Errno::EINVAL);
    }
    (0..n)
        .map(|i| {
            let v: abi::Iovec = read_val(addr + i * size_of::<abi::Iovec>() as u64)?;
            Ok((v.iov_base, v.iov_len as usize))
        })
        .collect()
}

fn readv(c: &mut Call<'_>) -> KResult<u64> {
    let f = file(c.i32(0))?;
    let mut total = 0usize;
    for (base, len) in iovecs(c.a1(), c.a2())? {
        if len == 0 {
            continue;
        }
        let mut buf = Bounce::new(len);
        let n = match f.read(&mut buf) {
            Ok(n) => n,
            Err(e) if total == 0 => return restartable(Err(e)),
            Err(_) => break,
        };
        copy_to_user(base, &buf[..n])?;
        total += n;
        if n < buf.len() {
            break;
        }
    }
    Ok(total as u64)
}

fn writev(c: &mut Call<'_>) -> KResult<u64> {
    let f = file(c.i32(0))?;
    let mut data = Vec::new();
    for (base, len) in iovecs(c.a1(), c.a2())? {
        let start = data.len();
        data.resize(start + len.min(CHUNK), 0);
        copy_from_user(&mut data[start..], base)?;
    }
    Ok(sigpipe_on(restartable(f.write(&data)))? as u64)
}

fn do_open(dirfd: i32, path: u64, flags: u64, mode: u64) -> KResult<u64> {
    let p = me()?;
    let path = path_arg(path)?;
    let ctx = p.fs_ctx();
    let b = base(dirfd, &path)?;
    let f = fs::open(
        &ctx,
        b.as_ref(),
        &path,
        flags as u32,
        mode as u32 & !ctx.umask & 0o7777,
    )?;
    let fd = p.files.lock().insert(f, flags as u32 & O_CLOEXEC != 0)?;
    Ok(fd as u64)
}

fn open(c: &mut Call<'_>) -> KResult<u64> {
    do_open(AT_FDCWD, c.a0(), c.a1(), c.a2())
}
fn openat(c: &mut Call<'_>) -> KResult<u64> {
    do_open(c.i32(0), c.a1(), c.a2(), c.a3())
}
fn creat(c: &mut Call<'_>) -> KResult<u64> {
    do_open(
        AT_FDCWD,
        c.a0(),
        u64::from(O_CREAT | O_WRONLY | O_TRUNC),
        c.a1(),
    )
}

fn close(c: &mut Call<'_>) -> KResult<u64> {
    let e = me()?.files.lock().remove(c.i32(0))?;
    drop(e);
    Ok(0)
}

fn do_stat(dirfd: i32, path_addr: u64, flags: u64) -> KResult<Stat> {
    let path = path_arg(path_addr)?;
    if path.is_empty() {
        if flags & AT_EMPTY_PATH != 0 {
            return if dirfd == AT_FDCWD {
                fs::stat(&ctx()?, None, ".", true)
            } else {
                file(dirfd)?.stat()
            };
        }
        return Err(Errno::ENOENT);
    }
    let b = base(dirfd, &path)?;
    fs::stat(&ctx()?, b.as_ref(), &path, flags & AT_SYMLINK_NOFOLLOW == 0)
}

fn stat(c: &mut Call<'_>) -> KResult<u64> {
    let s = do_stat(AT_FDCWD, c.a0(), 0)?;
    write_val(c.a1(), &abi::Stat::from(&s))?;
    Ok(0)
}
fn lstat(c: &mut Call<'_>) -> KResult<u64> {
    let s = do_stat(AT_FDCWD, c.a0(), AT_SYMLINK_NOFOLLOW)?;
    write_val(c.a1(), &abi::Stat::from(&s))?;
    Ok(0)
}
fn fstat(c: &mut Call<'_>) -> KResult<u64> {
    let s = file(c.i32(0))?.stat()?;
    write_val(c.a1(), &abi::Stat::from(&s))?;
    Ok(0)
}
fn newfstatat(c: &mut Call<'_>) -> KResult<u64> {
    let s = do_stat(c.i32(0), c.a1(), c.a3())?;
    write_val(c.a2(), &abi::Stat::from(&s))?;
    Ok(0)
}

fn statx(c: &mut Call<'_>) -> KResult<u64> {
    let s = do_stat(c.i32(0), c.a1(), c.a2())?;
    write_val(c.a4(), &abi::Statx::from(&s))?;
    Ok(0)
}

fn lseek(c: &mut Call<'_>) -> KResult<u64> {
    file(c.i32(0))?.seek(c.a1() as i64, c.a2() as u32)
}

fn ioctl(c: &mut Call<'_>) -> KResult<u64> {
    let f = file(c.i32(0))?;
    const FIONREAD: u32 = 0x541B;
    const FIOCLEX: u32 = 0x5451;
    const FIONCLEX: u32 = 0x5450;
    const FIONBIO: u32 = 0x5421;
    let cmd = c.a1() as u32;
    match cmd {
        FIOCLEX | FIONCLEX => {
            me()?.files.lock().set_cloexec(c.i32(0), cmd == FIOCLEX)?;
            Ok(0)
        }
        FIONBIO => {
            let on: i32 = read_val(c.a2())?;
            let fl = f.flags();
            f.set_flags(if on != 0 {
                fl | O_NONBLOCK
            } else {
                fl & !O_NONBLOCK
            });
            Ok(0)
        }
        FIONREAD => match f.ioctl(cmd, c.a2()) {
            // Pipes and files answer with the count; devices wrote it themselves.
            Ok(n) if !is_device(&f) => {
                write_val(c.a2(), &(n as i32))?;
                Ok(0)
            }
            r => r,
        },
        _ => f.ioctl(cmd, c.a2()),
    }
}

fn is_device(f: &File) -> bool {
    f.stat().is_ok_and(|s| s.file_type() == S_IFCHR)
}

fn access(c: &mut Call<'_>) -> KResult<u64> {
    let path = path_arg(c.a0())?;
    fs::access(&ctx()?, None, &path, c.a1() as u32, true)?;
    Ok(0)
}
fn faccessat(c: &mut Call<'_>) -> KResult<u64> {
    let path = path_arg(c.a1())?;
    let b = base(c.i32(0), &path)?;
    fs::access(&ctx()?, b.as_ref(), &path, c.a2() as u32, true)?;
    Ok(0)
}
fn faccessat2(c: &mut Call<'_>) -> KResult<u64> {
    let path = path_arg(c.a1())?;
    let b = base(c.i32(0), &path)?;
    fs::access(
        &ctx()?,
        b.as_ref(),
        &path,
        c.a2() as u32,
        c.a3() & AT_SYMLINK_NOFOLLOW == 0,
    )?;
    Ok(0)
}

fn do_pipe(addr: u64, flags: u32) -> KResult<u64> {
    if flags & !(O_CLOEXEC | O_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    let (r, w) = fs::pipe(flags)?;
    let p = me()?;
    let cloexec = flags & O_CLOEXEC != 0;
    let (rfd, wfd) = {
        let mut t = p.files.lock();
        let rfd = t.insert(r, cloexec)?;
        match t.insert(w, cloexec) {
            Ok(wfd) => (rfd, wfd),
            Err(e) => {
                let _ = t.remove(rfd);
                return Err(e);
            }
        }
    };
    if let Err(e) = write_val(addr, &[rfd, wfd]) {
        let mut t = p.files.lock();
        let _ = t.remove(rfd);
        let _ = t.remove(wfd);
        return Err(e);
    }
    Ok(0)
}
fn pipe(c: &mut Call<'_>) -> KResult<u64> {
    do_pipe(c.a0(), 0)
}
fn pipe2(c: &mut Call<'_>) -> KResult<u64> {
    do_pipe(c.a0(), c.a1() as u32)
}

fn dup(c: &mut Call<'_>) -> KResult<u64> {
    let p = me()?;
    let mut t = p.files.lock();
    let f = t.get(c.i32(0))?;
    Ok(t.insert(f, false)? as u64)
}
fn dup2(c: &mut Call<'_>) -> KResult<u64> {
    let p = me()?;
    let (old, new) = (c.i32(0), c.i32(1));
    let mut t = p.files.lock();
    let f = t.get(old)?;
    if old == new {
        return Ok(new as u64);
    }
    let prev = t.install(new, f, false)?;
    drop(t);
    drop(prev);
    Ok(new as u64)
}
fn dup3(c: &mut Call<'_>) -> KResult<u64> {
    let (old, new, flags) = (c.i32(0), c.i32(1), c.a2() as u32);
    if old == new || flags & !O_CLOEXEC != 0 {
        return Err(Errno::EINVAL);
    }
    let p = me()?;
    let mut t = p.files.lock();
    let f = t.get(old)?;
    let prev = t.install(new, f, flags & O_CLOEXEC != 0)?;
    drop(t);
    drop(prev);
    Ok(new as u64)
}

const F_DUPFD: u64 = 0;
const F_GETFD: u64 = 1;
const F_SETFD: u64 = 2;
const F_GETFL: u64 = 3;
const F_SETFL: u64 = 4;
const F_GETLK: u64 = 5;
const F_SETLK: u64 = 6;
const F_SETLKW: u64 = 7;
const F_DUPFD_CLOEXEC: u64 = 1030;

fn fcntl(c: &mut Call<'_>) -> KResult<u64> {
    let p = me()?;
    let fd = c.i32(0);
    match c.a1() {
        F_DUPFD | F_DUPFD_CLOEXEC => {
            let mut t = p.files.lock();
            let f = t.get(fd)?;
            let min = usize::try_from(c.a2()).map_err(|_| Errno::EINVAL)?;
            Ok(t.insert_from(min, f, c.a1() == F_DUPFD_CLOEXEC)? as u64)
        }
        F_GETFD => Ok(u64::from(p.files.lock().entry(fd)?.cloexec)),
        F_SETFD => {
            p.files.lock().set_cloexec(fd, c.a2() & 1 != 0)?;
            Ok(0)
        }
        F_GETFL => Ok(u64::from(file(fd)?.flags())),
        F_SETFL => {
            file(fd)?.set_flags(c.a2() as u32);
            Ok(0)
        }
        F_GETLK | F_SETLK | F_SETLKW | 36..=38 => {
            crate::fs::lock::fcntl(&file(fd)?, c.a1(), c.a2())
        }
        _ => Err(Errno::EINVAL),
    }
}

fn flock(c: &mut Call<'_>) -> KResult<u64> {
    crate::fs::lock::flock(&file(c.i32(0))?, c.a1() as u32)?;
    Ok(0)
}
fn fsync(c: &mut Call<'_>) -> KResult<u64> {
    file(c.i32(0))?.sync()?;
    Ok(0)
}
fn sync(_c: &mut Call<'_>) -> KResult<u64> {
    crate::ext2_vfs::sync_all();
    Ok(0)
}

fn truncate(c: &mut Call<'_>) -> KResult<u64> {
    let path = path_arg(c.a0())?;
    if (c.a1() as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    fs::truncate(&ctx()?, None, &path, c.a1())?;
    Ok(0)
}
fn ftruncate(c: &mut Call<'_>) -> KResult<u64> {
    if (c.a1() as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    file(c.i32(0))?.truncate(c.a1())?;
    Ok(0)
}

fn getcwd(c: &mut Call<'_>) -> KResult<u64> {
    let s = fs::getcwd(&ctx()?)?;
    let mut b = s.into_bytes();
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

fn chdir(c: &mut Call<'_>) -> KResult<u64> {
    let p = me()?;
    let path = path_arg(c.a0())?;
    let d = fs::resolve_dir(&p.fs_ctx(), None, &path)?;
    set_cwd(&p, d);
    Ok(0)
}
fn fchdir(c: &mut Call<'_>) -> KResult<u64> {
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
fn chroot(c: &mut Call<'_>) -> KResult<u64> {
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

fn rename(c: &mut Call<'_>) -> KResult<u64> {
    let (o, n) = (path_arg(c.a0())?, path_arg(c.a1())?);
    fs::rename(&ctx()?, None, &o, None, &n, 0)?;
    Ok(0)
}
fn renameat(c: &mut Call<'_>) -> KResult<u64> {
    renameat_common(c.i32(0), c.a1(), c.i32(2), c.a3(), 0)
}
fn renameat2(c: &mut Call<'_>) -> KResult<u64> {
    renameat_common(c.i32(0), c.a1(), c.i32(2), c.a3(), c.a4() as u32)
}
fn renameat_common(ofd: i32, op: u64, nfd: i32, np: u64, flags: u32) -> KResult<u64> {
    let (o, n) = (path_arg(op)?, path_arg(np)?);
    let (ob, nb) = (base(ofd, &o)?, base(nfd, &n)?);
    fs::rename(&ctx()?, ob.as_ref(), &o, nb.as_ref(), &n, flags)?;
    Ok(0)
}

fn mkdir(c: &mut Call<'_>) -> KResult<u64> {
    let path = path_arg(c.a0())?;
    let ctx = ctx()?;
    fs::mkdir(&ctx, None, &path, c.a1() as u32 & !ctx.umask & 0o7777)?;
    Ok(0)
}
fn mkdirat(c: &mut Call<'_>) -> KResult<u64> {
    let path = path_arg(c.a1())?;
    let ctx = ctx()?;
    let b = base(c.i32(0), &path)?;
    fs::mkdir(&ctx, b.as_ref(), &path, c.a2() as u32 & !ctx.umask & 0o7777)?;
    Ok(0)
}
fn mknod(c: &mut Call<'_>) -> KResult<u64> {
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
fn mknodat(c: &mut Call<'_>) -> KResult<u64> {
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
fn rmdir(c: &mut Call<'_>) -> KResult<u64> {
    let path = path_arg(c.a0())?;
    fs::rmdir(&ctx()?, None, &path)?;
    Ok(0)
}
fn unlink(c: &mut Call<'_>) -> KResult<u64> {
    let path = path_arg(c.a0())?;
    fs::unlink(&ctx()?, None, &path)?;
    Ok(0)
}
fn unlinkat(c: &mut Call<'_>) -> KResult<u64> {
    let path = path_arg(c.a1())?;
    let b = base(c.i32(0), &path)?;
    if c.a2() & AT_REMOVEDIR != 0 {
        fs::rmdir(&ctx()?, b.as_ref(), &path)?;
    } else {
        fs::unlink(&ctx()?, b.as_ref(), &path)?;
    }
    Ok(0)
}
fn link(c: &mut Call<'_>) -> KResult<u64> {
    let (o, n) = (path_arg(c.a0())?, path_arg(c.a1())?);
    fs::link(&ctx()?, None, &o, None, &n, false)?;
    Ok(0)
}
fn linkat(c: &mut Call<'_>) -> KResult<u64> {
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
fn symlink(c: &mut Call<'_>) -> KResult<u64> {
    let (t, n) = (path_arg(c.a0())?, path_arg(c.a1())?);
    fs::symlink(&ctx()?, &t, None, &n)?;
    Ok(0)
}
fn symlinkat(c: &mut Call<'_>) -> KResult<u64> {
    let (t, n) = (path_arg(c.a0())?, path_arg(c.a2())?);
    let b = base(c.i32(1), &n)?;
    fs::symlink(&ctx()?, &t, b.as_ref(), &n)?;
    Ok(0)
}
fn readlink_common(dirfd: i32, p: u64, buf: u64, len: u64) -> KResult<u64> {
    let path = path_arg(p)?;
    let b = base(dirfd, &path)?;
    let target = fs::readlink(&ctx()?, b.as_ref(), &path)?;
    let n = target.len().min(len as usize);
    copy_to_user(buf, &target.as_bytes()[..n])?;
    Ok(n as u64)
}
fn readlink(c: &mut Call<'_>) -> KResult<u64> {
    readlink_common(AT_FDCWD, c.a0(), c.a1(), c.a2())
}
fn readlinkat(c: &mut Call<'_>) -> KResult<u64> {
    readlink_common(c.i32(0), c.a1(), c.a2(), c.a3())
}

fn chmod(c: &mut Call<'_>) -> KResult<u64> {
    let path = path_arg(c.a0())?;
    fs::chmod(&ctx()?, None, &path, c.a1() as u32 & 0o7777, true)?;
    Ok(0)
}
fn fchmod(c: &mut Call<'_>) -> KResult<u64> {
    file(c.i32(0))?.chmod(&ctx()?, c.a1() as u32 & 0o7777)?;
    Ok(0)
}
fn fchmodat(c: &mut Call<'_>) -> KResult<u64> {
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
fn chown(c: &mut Call<'_>) -> KResult<u64> {
    let path = path_arg(c.a0())?;
    let (u, g) = ids(c.a1(), c.a2());
    fs::chown(&ctx()?, None, &path, u, g, true)?;
    Ok(0)
}
fn lchown(c: &mut Call<'_>) -> KResult<u64> {
    let path = path_arg(c.a0())?;
    let (u, g) = ids(c.a1(), c.a2());
    fs::chown(&ctx()?, None, &path, u, g, false)?;
    Ok(0)
}
fn fchown(c: &mut Call<'_>) -> KResult<u64> {
    let (u, g) = ids(c.a1(), c.a2());
    file(c.i32(0))?.chown(&ctx()?, u, g)?;
    Ok(0)
}
fn fchownat(c: &mut Call<'_>) -> KResult<u64> {
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
fn umask(c: &mut Call<'_>) -> KResult<u64> {
    let p = me()?;
    let mut g = p.fs.lock();
    let ctx = g.as_mut().ok_or(Errno::ESRCH)?;
    let old = ctx.umask;
    ctx.umask = c.a0() as u32 & 0o777;
    Ok(u64::from(old))
}

fn utimensat(c: &mut Call<'_>) -> KResult<u64> {
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

fn statfs(c: &mut Call<'_>) -> KResult<u64> {
    let path = path_arg(c.a0())?;
    let s = fs::statfs(&ctx()?, None, &path)?;
    write_val(c.a1(), &abi::Statfs::from(&s))?;
    Ok(0)
}
fn fstatfs(c: &mut Call<'_>) -> KResult<u64> {
    let s = file(c.i32(0))?.statfs()?;
    write_val(c.a1(), &abi::Statfs::from(&s))?;
    Ok(0)
}

fn mount(c: &mut Call<'_>) -> KResult<u64> {
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
fn umount2(c: &mut Call<'_>) -> KResult<u64> {
    let target = path_arg(c.a0())?;
    fs::umount(&ctx()?, None, &target)?;
    Ok(0)
}

fn getdents64(c: &mut Call<'_>) -> KResult<u64> {
    let f = file(c.i32(0))?;
    if !f.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    let cap = c.a2() as usize;
    let ents = f.getdents((cap / 24).max(1))?;
    let mut out = Vec::new();
    let mut consumed = 0usize;
    for e in &ents {
        let reclen = abi::Dirent64::reclen(e.name.len());
        if out.len() + reclen > cap {
            break;
        }
        let start = out.len();
        let head = abi::Dirent64 {
            d_ino: e.ino,
            d_off: e.next_offset as i64,
            d_reclen: reclen as u16,
            d_type: e.kind,
        };
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(e.name.as_bytes());
        out.resize(start + reclen, 0); // the NUL and the padding
        consumed += 1;
    }
    if consumed == 0 && !ents.is_empty() {
        return Err(Errno::EINVAL);
    }
    // Entries we fetched but could not return: rewind so the next call sees them.
    if consumed < ents.len() {
        let resume = if consumed == 0 {
            0
        } else {
            ents[consumed - 1].next_offset
        };
        f.seek(resume as i64, 0)?;
    }
    copy_to_user(c.a1(), &out)?;
    Ok(out.len() as u64)
}

fn sendfile(c: &mut Call<'_>) -> KResult<u64> {
    let out = file(c.i32(0))?;
    let inp = file(c.i32(1))?;
    let count = (c.a3() as usize).min(CHUNK);
    let mut buf = alloc::vec![0u8; count];
    let n = if c.a2() != 0 {
        let off: i64 = read_val(c.a2())?;
        let n = inp.pread(&mut buf, off as u64)?;
        write_val(c.a2(), &(off + n as i64))?;
        n
    } else {
        inp.read(&mut buf)?
    };
    Ok(sigpipe_on(out.write(&buf[..n]))? as u64)
}

// ---- poll / select ------------------------------------------------------------------

/// Waits until any of `fds` (fd, events) is ready; returns the revents per entry.
fn poll_files(fds: &[(i32, u32)], deadline: Option<u64>) -> KResult<Vec<u32>> {
    let p = me()?;
    let files: Vec<Option<Arc<File>>> = fds
        .iter()
        .map(|&(fd, _)| {
            if fd < 0 {
                None
            } else {
                p.files.lock().get(fd).ok()
            }
        })
        .collect();
    let check = |out: &mut Vec<u32>| -> usize {
        out.clear();
        let mut n = 0;
        for (i, &(fd, ev)) in fds.iter().enumerate() {
            let r = match (&files[i], fd < 0) {
                (_, true) => 0,
                (None, false) => POLLNVAL,
                (Some(f), false) => {
                    f.poll(ev | POLLHUP | POLLERR) & (ev | POLLHUP | POLLERR | POLLNVAL)
                }
            };
            if r != 0 {
                n += 1;
            }
            out.push(r);
        }
        n
    };
    let mut out = Vec::new();
    if check(&mut out) > 0 || deadline.is_some_and(|d| d <= crate::time::now_ns()) {
        return Ok(out);
    }
    let queues: Vec<&crate::sched::wait::WaitQueue> = files
        .iter()
        .flatten()
        .filter_map(|f| f.wait_queue())
        .collect();
    let mut intr = false;
    let _ = crate::sched::wait::wait_any(
        &queues,
        || {
            if crate::proc::signal::pending_for_current() {
                intr = true;
                return true;
            }
            check(&mut out) > 0
        },
        deadline,
    );
    if intr {
        return Err(Errno::ERESTARTSYS);
    }
    check(&mut out);
    Ok(out)
}

fn do_poll(addr: u64, n: u64, deadline: Option<u64>) -> KResult<u64> {
    if n > 4096 {
        return Err(Errno::EINVAL);
    }
    let mut fds = Vec::new();
    for i in 0..n {
        let p: abi::Pollfd = read_val(addr + i * size_of::<abi::Pollfd>() as u64)?;
        fds.push((p.fd, u32::from(p.events as u16)));
    }
    let rev = poll_files(&fds, deadline)?;
    let mut ready = 0;
    for (i, r) in rev.iter().enumerate() {
        let at = addr + (i * size_of::<abi::Pollfd>() + offset_of!(abi::Pollfd, revents)) as u64;
        write_val(at, &(*r as i16))?;
        if *r != 0 {
            ready += 1;
        }
    }
    Ok(ready)
}

fn poll(c: &mut Call<'_>) -> KResult<u64> {
    let t = c.i32(2);
    let deadline = (t >= 0).then(|| crate::time::now_ns() + t as u64 * 1_000_000);
    do_poll(c.a0(), c.a1(), deadline)
}

fn ts_deadline(addr: u64) -> KResult<Option<u64>> {
    if addr == 0 {
        return Ok(None);
    }
    let ts: abi::Timespec = read_val(addr)?;
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return Err(Errno::EINVAL);
    }
    Ok(Some(
        crate::time::now_ns() + ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64,
    ))
}

/// Applies a temporary signal mask for ppoll/pselect (restored on the way out).
fn with_sigmask<T>(mask_addr: u64, f: impl FnOnce() -> KResult<T>) -> KResult<T> {
    let Some(t) = crate::proc::current_task() else {
        return f();
    };
    if mask_addr == 0 {
        return f();
    }
    let m: u64 = read_val(mask_addr)?;
    let old = {
        let mut s = t.sig.lock();
        let o = s.mask;
        s.mask = m;
        o
    };
    let r = f();
    let mut s = t.sig.lock();
    if r.is_err() {
        s.restore_mask = Some(old);
    } else {
        s.mask = old;
    }
    r
}

fn ppoll(c: &mut Call<'_>) -> KResult<u64> {
    let deadline = ts_deadline(c.a2())?;
    let (a, n, m) = (c.a0(), c.a1(), c.a3());
    with_sigmask(m, || do_poll(a, n, deadline)).map_err(|e| {
        if e == Errno::ERESTARTSYS {
            Errno::EINTR
        } else {
            e
        }
    })
}

fn do_select(n: u64, r: u64, w: u64, e: u64, deadline: Option<u64>) -> KResult<u64> {
    if n > 1024 {
        return Err(Errno::EINVAL);
    }
    let words = (n as usize).div_ceil(64);
    let read_set = |a: u64| -> KResult<Vec<u64>> {
        (0..words)
            .map(|i| {
                if a == 0 {
                    Ok(0)
                } else {
                    read_val(a + i as u64 * 8)
                }
            })
            .collect()
    };
    let (rs, ws, es) = (read_set(r)?, read_set(w)?, read_set(e)?);
    let mut fds = Vec::new();
    for fd in 0..n as usize {
        let bit = |s: &Vec<u64>| s[fd / 64] & (1 << (fd % 64)) != 0;
        let mut ev = 0;
        if bit(&rs) {
            ev |= POLLIN;
        }
        if bit(&ws) {
            ev |= POLLOUT;
        }
        if bit(&es) {
            ev |= POLLPRI;
        }
        if ev != 0 {
            fds.push((fd as i32, ev));
        }
    }
    let rev = poll_files(&fds, deadline)?;
    if rev.contains(&POLLNVAL) {
        return Err(Errno::EBADF);
    }
    let mut out = [
        alloc::vec![0u64; words],
        alloc::vec![0u64; words],
        alloc::vec![0u64; words],
    ];
    let mut count = 0;
    for (i, &(fd, ev)) in fds.iter().enumerate() {
        let got = rev[i];
        let fdu = fd as usize;
        for (k, mask) in [
            (0, POLLIN | POLLHUP | POLLERR),
            (1, POLLOUT | POLLERR),
            (2, POLLPRI),
        ] {
            let wanted = [POLLIN, POLLOUT, POLLPRI][k];
            if ev & wanted != 0 && got & mask != 0 {
                out[k][fdu / 64] |= 1 << (fdu % 64);
                count += 1;
            }
        }
    }
    for (k, a) in [r, w, e].iter().enumerate() {
        if *a != 0 {
            for (i, word) in out[k].iter().enumerate() {
                write_val(*a + i as u64 * 8, word)?;
            }
        }
    }
    Ok(count)
}

fn select(c: &mut Call<'_>) -> KResult<u64> {
    let deadline = if c.a4() == 0 {
        None
    } else {
        let tv: abi::Timeval = read_val(c.a4())?;
        if tv.tv_sec < 0 || !(0..1_000_000).contains(&tv.tv_usec) {
            return Err(Errno::EINVAL);
        }
        Some(crate::time::now_ns() + tv.tv_sec as u64 * 1_000_000_000 + tv.tv_usec as u64 * 1000)
    };
    do_select(c.a0(), c.a1(), c.a2(), c.a3(), deadline)
}

fn pselect6(c: &mut Call<'_>) -> KResult<u64> {
    let deadline = ts_deadline(c.a4())?;
    let mask_addr = if c.a5() != 0 {
        read_val::<u64>(c.a5())?
    } else {
        0
    };
    let (n, r, w, e) = (c.a0(), c.a1(), c.a2(), c.a3());
    with_sigmask(mask_addr, || do_select(n, r, w, e, deadline)).map_err(|e| {
        if e == Errno::ERESTARTSYS {
            Errno::EINTR
        } else {
            e
        }
    })
}
