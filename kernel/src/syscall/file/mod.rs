//! File and directory calls over the VFS: read/write (and their vector, positional forms),
//! open/openat/close, stat family, getdents64, dup family, pipes, fcntl, ioctl, poll and
//! select (in `poll`), the path operations and their `*at` forms, mount (in `path`).

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

mod path;
mod poll;
mod xattr;

use path::*;
use poll::*;
use xattr::*;

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
    t.add(188, "setxattr", setxattr);
    t.add(189, "lsetxattr", lsetxattr);
    t.add(190, "fsetxattr", fsetxattr);
    t.add(191, "getxattr", getxattr);
    t.add(192, "lgetxattr", lgetxattr);
    t.add(193, "fgetxattr", fgetxattr);
    t.add(194, "listxattr", listxattr);
    t.add(195, "llistxattr", llistxattr);
    t.add(196, "flistxattr", flistxattr);
    t.add(197, "removexattr", removexattr);
    t.add(198, "lremovexattr", lremovexattr);
    t.add(199, "fremovexattr", fremovexattr);
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
    // Any bytes, UTF-8 or not, as on Linux (see fs::bytename).
    Ok(fs::bytename::from_bytes(read_cstr(addr, 4095)?))
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
    do_open(AT_FDCWD, c.a0(), flags_in(c.a1()), c.a2())
}
fn openat(c: &mut Call<'_>) -> KResult<u64> {
    do_open(c.i32(0), c.a1(), flags_in(c.a2()), c.a3())
}

/// Open flags as the kernel numbers them (x86_64's) from this architecture's.
fn flags_in(f: u64) -> u64 {
    u64::from(crate::syscall::arch::open_flags_in(f as u32))
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
    write_val(c.a1(), &crate::syscall::arch::stat(&s))?;
    Ok(0)
}
fn lstat(c: &mut Call<'_>) -> KResult<u64> {
    let s = do_stat(AT_FDCWD, c.a0(), AT_SYMLINK_NOFOLLOW)?;
    write_val(c.a1(), &crate::syscall::arch::stat(&s))?;
    Ok(0)
}
fn fstat(c: &mut Call<'_>) -> KResult<u64> {
    let s = file(c.i32(0))?.stat()?;
    write_val(c.a1(), &crate::syscall::arch::stat(&s))?;
    Ok(0)
}
fn newfstatat(c: &mut Call<'_>) -> KResult<u64> {
    let s = do_stat(c.i32(0), c.a1(), c.a3())?;
    write_val(c.a2(), &crate::syscall::arch::stat(&s))?;
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
        F_GETFL => Ok(u64::from(crate::syscall::arch::open_flags_out(
            file(fd)?.flags(),
        ))),
        F_SETFL => {
            file(fd)?.set_flags(crate::syscall::arch::open_flags_in(c.a2() as u32));
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
    crate::fs::filemap::write_back_all();
    crate::ext2_vfs::sync_all();
    crate::fat_vfs::sync_all();
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
        let name = fs::bytename::to_bytes(&e.name);
        let reclen = abi::Dirent64::reclen(name.len());
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
        out.extend_from_slice(&name);
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

/// `sendfile(out, in, offset, count)`: up to a chunk, read then written. Only what `out`
/// took counts: a socket may take part of it (a non-blocking one, or one interrupted by a
/// signal), and the input's offset — `*offset`, or the file position — advances by that
/// much, as on Linux, so the caller's next call sends the rest.
fn sendfile(c: &mut Call<'_>) -> KResult<u64> {
    let out = file(c.i32(0))?;
    let inp = file(c.i32(1))?;
    let count = (c.a3() as usize).min(CHUNK);
    let mut buf = alloc::vec![0u8; count];
    let at: Option<i64> = if c.a2() != 0 {
        let off: i64 = read_val(c.a2())?;
        if off < 0 {
            return Err(Errno::EINVAL);
        }
        Some(off)
    } else {
        None
    };
    let n = match at {
        Some(off) => inp.pread(&mut buf, off as u64)?,
        None => inp.read(&mut buf)?,
    };
    let written = sigpipe_on(out.write(&buf[..n]));
    let w = *written.as_ref().unwrap_or(&0);
    match at {
        Some(off) => write_val(c.a2(), &(off + w as i64))?,
        // Give back what was read and not sent.
        None if w < n => {
            inp.seek(-((n - w) as i64), 1)?;
        }
        None => {}
    }
    Ok(written? as u64)
}
