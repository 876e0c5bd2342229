//! Test support: the NetBSD rump kernel's entry points (`rump.h`, `rump_syscalls.h`), the few
//! NetBSD structures the tests pass (amd64 layouts, written by hand from NetBSD's headers and
//! checked against the bindgen-generated ones by `bindings/tests/host_tests_layouts.rs`), and
//! safe wrappers returning NetBSD errno values. Only compiled into a working state when the
//! build script found a host build of the components (`cfg(rump_host)`).

use std::ffi::{CString, c_char, c_int, c_void};

/// Prints the skip line the test harness counts and returns from the test when the rump
/// components are not linked.
#[macro_export]
macro_rules! require_rump {
    () => {
        if !$crate::LINKED {
            $crate::skip("no NetBSD source (see README)");
            return;
        }
    };
}

/// Prints `SKIPPED: <test>: <reason>` (the line `cargo xtask test` counts; libtest names each
/// test's thread after the test).
pub fn skip(reason: &str) {
    let t = std::thread::current();
    println!("SKIPPED: {}: {reason}", t.name().unwrap_or("?"));
}

/// Whether real NetBSD components are linked into the test binaries.
pub const LINKED: bool = cfg!(rump_host);

/// Which hypercall implementation hosts the rump kernel in this binary.
pub const HOSTED_BY: &str = if cfg!(rumpuser_posix) {
    "netbsd-librumpuser"
} else {
    "rumpuser-adros"
};

/// A NetBSD errno value.
pub type Errno = i32;
pub type R<T> = Result<T, Errno>;

pub const ENOENT: Errno = 2;
pub const EEXIST: Errno = 17;

pub const O_RDONLY: c_int = 0;
pub const O_WRONLY: c_int = 1;
pub const O_RDWR: c_int = 2;
pub const O_CREAT: c_int = 0x200;
pub const O_TRUNC: c_int = 0x400;
pub const O_DIRECTORY: c_int = 0x0020_0000;

pub const S_IFMT: u32 = 0o170000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFREG: u32 = 0o100000;

/// `struct timespec` (amd64).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct Timespec {
    pub tv_sec: i64,
    pub tv_nsec: i64,
}

/// NetBSD `struct stat` (amd64, the `__stat50` layout).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct Stat {
    pub st_dev: u64,
    pub st_mode: u32,
    pub st_ino: u64,
    pub st_nlink: u32,
    pub st_uid: u32,
    pub st_gid: u32,
    pub st_rdev: u64,
    pub st_atim: Timespec,
    pub st_mtim: Timespec,
    pub st_ctim: Timespec,
    pub st_birthtim: Timespec,
    pub st_size: i64,
    pub st_blocks: i64,
    pub st_blksize: u32,
    pub st_flags: u32,
    pub st_gen: u32,
    pub st_spare: [u32; 2],
}

const _: () = assert!(std::mem::size_of::<Stat>() == 152);

/// Field offsets in NetBSD's `struct dirent` (`d_fileno` u64, `d_reclen` u16, `d_namlen` u16,
/// `d_type` u8, `d_name`), as `getdents` returns them.
pub const DIRENT_RECLEN: usize = 8;
pub const DIRENT_NAMLEN: usize = 10;
pub const DIRENT_TYPE: usize = 12;
pub const DIRENT_NAME: usize = 13;

/// `struct ufs_args` (ffs, ext2fs).
#[repr(C)]
pub struct UfsArgs {
    pub fspec: *const c_char,
}

/// `struct tmpfs_args`, version 1.
#[repr(C)]
pub struct TmpfsArgs {
    pub ta_version: c_int,
    pub ta_nodes_max: u64,
    pub ta_size_max: i64,
    pub ta_root_uid: u32,
    pub ta_root_gid: u32,
    pub ta_root_mode: u32,
}

/// `struct msdosfs_args`, version 3 (`_pad1` is the 128-byte `struct export_args30`).
#[repr(C)]
pub struct MsdosfsArgs {
    pub fspec: *const c_char,
    pub pad1: [u64; 16],
    pub uid: u32,
    pub gid: u32,
    pub mask: u32,
    pub flags: c_int,
    pub version: c_int,
    pub dirmask: u32,
    pub gmtoff: c_int,
}

const _: () = assert!(std::mem::size_of::<MsdosfsArgs>() == 168);

/// NetBSD `struct sockaddr_in` (2-byte aligned: NetBSD's `struct in_addr` is `__packed`).
#[repr(C, packed(2))]
#[derive(Clone, Copy, Default, Debug)]
pub struct SockaddrIn {
    pub sin_len: u8,
    pub sin_family: u8,
    pub sin_port: u16,
    pub sin_addr: u32,
    pub sin_zero: [u8; 8],
}

impl SockaddrIn {
    pub fn loopback(port: u16) -> SockaddrIn {
        SockaddrIn {
            sin_len: 16,
            sin_family: AF_INET as u8,
            sin_port: port.to_be(),
            sin_addr: u32::from_be_bytes([127, 0, 0, 1]).to_be(),
            sin_zero: [0; 8],
        }
    }
}

pub const AF_INET: c_int = 2;
pub const SOCK_STREAM: c_int = 1;
pub const SOCK_DGRAM: c_int = 2;
pub const IPPROTO_TCP: c_int = 6;
pub const TCP_NODELAY: c_int = 1;
pub const SOL_SOCKET: c_int = 0xffff;
pub const SO_REUSEADDR: c_int = 0x0004;
pub const SO_SNDBUF: c_int = 0x1001;
pub const SO_RCVBUF: c_int = 0x1002;

pub const RUMP_ETFS_BLK: c_int = 1;

#[cfg(rump_host)]
mod sys {
    use std::ffi::{c_char, c_int, c_long, c_void};

    unsafe extern "C" {
        pub fn rump_init() -> c_int;
        pub fn rump_pub_etfs_register(
            key: *const c_char,
            hostpath: *const c_char,
            ftype: c_int,
        ) -> c_int;
        #[link_name = "rump___sysimpl_open"]
        pub fn open(path: *const c_char, flags: c_int, mode: u32) -> c_int;
        #[link_name = "rump___sysimpl_close"]
        pub fn close(fd: c_int) -> c_int;
        #[link_name = "rump___sysimpl_read"]
        pub fn read(fd: c_int, buf: *mut c_void, n: usize) -> isize;
        #[link_name = "rump___sysimpl_write"]
        pub fn write(fd: c_int, buf: *const c_void, n: usize) -> isize;
        #[link_name = "rump___sysimpl_mkdir"]
        pub fn mkdir(path: *const c_char, mode: u32) -> c_int;
        #[link_name = "rump___sysimpl_rmdir"]
        pub fn rmdir(path: *const c_char) -> c_int;
        #[link_name = "rump___sysimpl_unlink"]
        pub fn unlink(path: *const c_char) -> c_int;
        #[link_name = "rump___sysimpl_rename"]
        pub fn rename(from: *const c_char, to: *const c_char) -> c_int;
        #[link_name = "rump___sysimpl_stat50"]
        pub fn stat(path: *const c_char, st: *mut super::Stat) -> c_int;
        #[link_name = "rump___sysimpl_fsync"]
        pub fn fsync(fd: c_int) -> c_int;
        #[link_name = "rump___sysimpl_getdents30"]
        pub fn getdents(fd: c_int, buf: *mut c_char, n: usize) -> c_int;
        #[link_name = "rump___sysimpl_mount50"]
        pub fn mount(
            ty: *const c_char,
            path: *const c_char,
            flags: c_int,
            data: *mut c_void,
            len: usize,
        ) -> c_int;
        #[link_name = "rump___sysimpl_unmount"]
        pub fn unmount(path: *const c_char, flags: c_int) -> c_int;
        #[link_name = "rump___sysimpl_socket30"]
        pub fn socket(domain: c_int, ty: c_int, proto: c_int) -> c_int;
        #[link_name = "rump___sysimpl_bind"]
        pub fn bind(fd: c_int, addr: *const c_void, len: u32) -> c_int;
        #[link_name = "rump___sysimpl_listen"]
        pub fn listen(fd: c_int, backlog: c_int) -> c_int;
        #[link_name = "rump___sysimpl_accept"]
        pub fn accept(fd: c_int, addr: *mut c_void, len: *mut u32) -> c_int;
        #[link_name = "rump___sysimpl_connect"]
        pub fn connect(fd: c_int, addr: *const c_void, len: u32) -> c_int;
        #[link_name = "rump___sysimpl_setsockopt"]
        pub fn setsockopt(
            fd: c_int,
            level: c_int,
            name: c_int,
            val: *const c_void,
            len: u32,
        ) -> c_int;
        #[link_name = "rump___sysimpl_sendto"]
        pub fn sendto(
            fd: c_int,
            buf: *const c_void,
            n: usize,
            flags: c_int,
            to: *const c_void,
            tolen: u32,
        ) -> isize;
        #[link_name = "rump___sysimpl_recvfrom"]
        pub fn recvfrom(
            fd: c_int,
            buf: *mut c_void,
            n: usize,
            flags: c_int,
            from: *mut c_void,
            fromlen: *mut u32,
        ) -> isize;
        #[link_name = "rump___sysimpl_lseek"]
        pub fn lseek(fd: c_int, off: i64, whence: c_int) -> i64;
    }
    #[allow(dead_code)]
    pub type Long = c_long;
}

/// Stubs so the crate compiles without components (every call fails with ENOSYS; the tests
/// skip before calling anything).
#[cfg(not(rump_host))]
#[allow(clippy::missing_safety_doc)]
mod sys {
    use std::ffi::{c_char, c_int, c_void};
    pub unsafe fn rump_init() -> c_int {
        78
    }
    pub unsafe fn rump_pub_etfs_register(_: *const c_char, _: *const c_char, _: c_int) -> c_int {
        78
    }
    macro_rules! nosys {
        ($($name:ident($($a:ty),*) -> $r:ty;)*) => {$(
            pub unsafe fn $name($(_: $a),*) -> $r { -1 }
        )*};
    }
    nosys! {
        open(*const c_char, c_int, u32) -> c_int;
        close(c_int) -> c_int;
        read(c_int, *mut c_void, usize) -> isize;
        write(c_int, *const c_void, usize) -> isize;
        mkdir(*const c_char, u32) -> c_int;
        rmdir(*const c_char) -> c_int;
        unlink(*const c_char) -> c_int;
        rename(*const c_char, *const c_char) -> c_int;
        stat(*const c_char, *mut super::Stat) -> c_int;
        fsync(c_int) -> c_int;
        getdents(c_int, *mut c_char, usize) -> c_int;
        mount(*const c_char, *const c_char, c_int, *mut c_void, usize) -> c_int;
        unmount(*const c_char, c_int) -> c_int;
        socket(c_int, c_int, c_int) -> c_int;
        bind(c_int, *const c_void, u32) -> c_int;
        listen(c_int, c_int) -> c_int;
        accept(c_int, *mut c_void, *mut u32) -> c_int;
        connect(c_int, *const c_void, u32) -> c_int;
        setsockopt(c_int, c_int, c_int, *const c_void, u32) -> c_int;
        sendto(c_int, *const c_void, usize, c_int, *const c_void, u32) -> isize;
        recvfrom(c_int, *mut c_void, usize, c_int, *mut c_void, *mut u32) -> isize;
        lseek(c_int, i64, c_int) -> i64;
    }
}

/// The errno rump stored through `rumpuser_seterrno` (NetBSD numbering).
fn errno() -> Errno {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(5)
}

fn chk(rv: c_int) -> R<c_int> {
    if rv < 0 { Err(errno()) } else { Ok(rv) }
}

fn chk_sz(rv: isize) -> R<usize> {
    if rv < 0 {
        Err(errno())
    } else {
        Ok(rv as usize)
    }
}

fn cs(s: &str) -> CString {
    CString::new(s).expect("no NUL in paths")
}

/// Boots the rump kernel once per process (later calls return the first result).
pub fn init() -> R<()> {
    static RV: std::sync::OnceLock<c_int> = std::sync::OnceLock::new();
    let rv = *RV.get_or_init(|| {
        // Pull every hypercall into the link before the C archives need them (unless the
        // benchmark's peer, NetBSD's own librumpuser, provides them).
        #[cfg(not(rumpuser_posix))]
        assert!(rumpuser_adros::ffi::link_all() > 50);
        // SAFETY: rump_init may be called from any thread; once per process (OnceLock).
        unsafe { sys::rump_init() }
    });
    if rv == 0 { Ok(()) } else { Err(rv) }
}

pub fn etfs_register_blk(key: &str, host_path: &str) -> R<()> {
    let (k, h) = (cs(key), cs(host_path));
    // SAFETY: valid strings for the call.
    let rv = unsafe { sys::rump_pub_etfs_register(k.as_ptr(), h.as_ptr(), RUMP_ETFS_BLK) };
    if rv == 0 { Ok(()) } else { Err(rv) }
}

pub fn open(path: &str, flags: c_int, mode: u32) -> R<c_int> {
    let p = cs(path);
    // SAFETY: valid path.
    chk(unsafe { sys::open(p.as_ptr(), flags, mode) })
}

pub fn close(fd: c_int) -> R<()> {
    // SAFETY: plain syscall.
    chk(unsafe { sys::close(fd) }).map(drop)
}

pub fn read(fd: c_int, buf: &mut [u8]) -> R<usize> {
    // SAFETY: buf is writable for its length.
    chk_sz(unsafe { sys::read(fd, buf.as_mut_ptr().cast(), buf.len()) })
}

pub fn write(fd: c_int, buf: &[u8]) -> R<usize> {
    // SAFETY: buf is readable for its length.
    chk_sz(unsafe { sys::write(fd, buf.as_ptr().cast(), buf.len()) })
}

pub fn write_all(fd: c_int, mut buf: &[u8]) -> R<()> {
    while !buf.is_empty() {
        let n = write(fd, buf)?;
        buf = &buf[n..];
    }
    Ok(())
}

pub fn read_to_end(fd: c_int) -> R<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let n = read(fd, &mut buf)?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
    }
}

pub fn read_file(path: &str) -> R<Vec<u8>> {
    let fd = open(path, O_RDONLY, 0)?;
    let r = read_to_end(fd);
    close(fd)?;
    r
}

pub fn write_file(path: &str, data: &[u8]) -> R<()> {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)?;
    write_all(fd, data)?;
    // SAFETY: plain syscall.
    chk(unsafe { sys::fsync(fd) })?;
    close(fd)
}

pub fn mkdir(path: &str, mode: u32) -> R<()> {
    let p = cs(path);
    // SAFETY: valid path.
    chk(unsafe { sys::mkdir(p.as_ptr(), mode) }).map(drop)
}

pub fn rmdir(path: &str) -> R<()> {
    let p = cs(path);
    // SAFETY: valid path.
    chk(unsafe { sys::rmdir(p.as_ptr()) }).map(drop)
}

pub fn unlink(path: &str) -> R<()> {
    let p = cs(path);
    // SAFETY: valid path.
    chk(unsafe { sys::unlink(p.as_ptr()) }).map(drop)
}

pub fn rename(from: &str, to: &str) -> R<()> {
    let (f, t) = (cs(from), cs(to));
    // SAFETY: valid paths.
    chk(unsafe { sys::rename(f.as_ptr(), t.as_ptr()) }).map(drop)
}

pub fn stat(path: &str) -> R<Stat> {
    let p = cs(path);
    let mut st = Stat::default();
    // SAFETY: valid path and out-pointer.
    chk(unsafe { sys::stat(p.as_ptr(), &mut st) })?;
    Ok(st)
}

/// Directory entries (name, d_type) without "." and "..".
pub fn readdir(path: &str) -> R<Vec<(String, u8)>> {
    let fd = open(path, O_RDONLY | O_DIRECTORY, 0)?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 16384];
    loop {
        // SAFETY: buf is writable for its length.
        let n = unsafe { sys::getdents(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = errno();
            close(fd)?;
            return Err(e);
        }
        if n == 0 {
            break;
        }
        let mut off = 0usize;
        while off < n as usize {
            let reclen =
                u16::from_ne_bytes([buf[off + DIRENT_RECLEN], buf[off + DIRENT_RECLEN + 1]])
                    as usize;
            let namlen =
                u16::from_ne_bytes([buf[off + DIRENT_NAMLEN], buf[off + DIRENT_NAMLEN + 1]])
                    as usize;
            let dtype = buf[off + DIRENT_TYPE];
            let name = String::from_utf8_lossy(&buf[off + DIRENT_NAME..off + DIRENT_NAME + namlen])
                .into_owned();
            if name != "." && name != ".." {
                out.push((name, dtype));
            }
            if reclen == 0 {
                break;
            }
            off += reclen;
        }
    }
    close(fd)?;
    out.sort();
    Ok(out)
}

/// `mount(2)`; `args` is the file system's argument structure.
pub fn mount<T>(fstype: &str, path: &str, flags: c_int, args: &mut T) -> R<()> {
    let (t, p) = (cs(fstype), cs(path));
    // SAFETY: valid strings; args points at a T of the given size.
    chk(unsafe {
        sys::mount(
            t.as_ptr(),
            p.as_ptr(),
            flags,
            (args as *mut T).cast(),
            std::mem::size_of::<T>(),
        )
    })
    .map(drop)
}

pub fn unmount(path: &str, flags: c_int) -> R<()> {
    let p = cs(path);
    // SAFETY: valid path.
    chk(unsafe { sys::unmount(p.as_ptr(), flags) }).map(drop)
}

pub fn socket(domain: c_int, ty: c_int) -> R<c_int> {
    // SAFETY: plain syscall.
    chk(unsafe { sys::socket(domain, ty, 0) })
}

pub fn bind(fd: c_int, a: &SockaddrIn) -> R<()> {
    // SAFETY: a points at a sockaddr_in of the given size.
    chk(unsafe { sys::bind(fd, (a as *const SockaddrIn).cast(), 16) }).map(drop)
}

pub fn listen(fd: c_int, backlog: c_int) -> R<()> {
    // SAFETY: plain syscall.
    chk(unsafe { sys::listen(fd, backlog) }).map(drop)
}

pub fn accept(fd: c_int) -> R<c_int> {
    // SAFETY: null address is allowed.
    chk(unsafe { sys::accept(fd, std::ptr::null_mut(), std::ptr::null_mut()) })
}

pub fn connect(fd: c_int, a: &SockaddrIn) -> R<()> {
    // SAFETY: a points at a sockaddr_in.
    chk(unsafe { sys::connect(fd, (a as *const SockaddrIn).cast(), 16) }).map(drop)
}

pub fn setsockopt_int(fd: c_int, level: c_int, name: c_int, v: c_int) -> R<()> {
    // SAFETY: v lives for the call.
    chk(unsafe { sys::setsockopt(fd, level, name, (&v as *const c_int).cast(), 4) }).map(drop)
}

pub fn sendto(fd: c_int, buf: &[u8], to: &SockaddrIn) -> R<usize> {
    // SAFETY: buffer and address valid for the call.
    chk_sz(unsafe {
        sys::sendto(
            fd,
            buf.as_ptr().cast(),
            buf.len(),
            0,
            (to as *const SockaddrIn).cast(),
            16,
        )
    })
}

pub fn recvfrom(fd: c_int, buf: &mut [u8]) -> R<(usize, SockaddrIn)> {
    let mut from = SockaddrIn::default();
    let mut len = 16u32;
    // SAFETY: buffer and address valid for the call.
    let n = chk_sz(unsafe {
        sys::recvfrom(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            0,
            (&mut from as *mut SockaddrIn).cast::<c_void>(),
            &mut len,
        )
    })?;
    Ok((n, from))
}

pub fn lseek(fd: c_int, off: i64, whence: c_int) -> R<i64> {
    // SAFETY: plain syscall.
    let r = unsafe { sys::lseek(fd, off, whence) };
    if r < 0 { Err(errno()) } else { Ok(r) }
}

/// Runs a host command; returns (success, stdout+stderr).
pub fn host_cmd(cmd: &str, args: &[&str]) -> Option<(bool, String)> {
    let out = std::process::Command::new(cmd).args(args).output().ok()?;
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    Some((out.status.success(), s))
}

/// Finds a host tool in PATH or the sbin directories.
pub fn tool(name: &str) -> Option<String> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/sbin", "/usr/sbin", "/usr/local/sbin"])
        .map(|d| format!("{d}/{name}"))
        .find(|p| std::path::Path::new(p).is_file())
}

/// A fresh scratch directory under the system temp dir.
pub fn scratch(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("rump-host-tests-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

/// Deterministic pseudo-random bytes.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
