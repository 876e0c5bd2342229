//! The NetBSD rump kernel's entry points the kernel calls (`rump.h`, `rump_syscalls.h`), the
//! NetBSD structures they take (amd64 layouts from NetBSD's headers), and NetBSD→Linux errno
//! translation — in one place, so the VFS bridge speaks only Linux.
//!
//! The `rump_sys_*` macros of `rump_syscalls.h` name versioned symbols
//! (`rump___sysimpl_stat50` …); the `link_name`s below are those. Only compiled with the
//! components linked (`cfg(rump_linked)`); the safe wrappers return `KResult`.

use alloc::ffi::CString;
use alloc::vec::Vec;
use core::ffi::{c_char, c_int, c_void};

use rumpuser_adros::Errno as Nb;

use crate::errno::{Errno, KResult};

use super::host::call;

/// NetBSD `struct timespec` (amd64).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct NbTimespec {
    pub tv_sec: i64,
    pub tv_nsec: i64,
}

/// NetBSD `struct stat` (amd64, the `__stat50` layout).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct NbStat {
    pub st_dev: u64,
    pub st_mode: u32,
    pub st_ino: u64,
    pub st_nlink: u32,
    pub st_uid: u32,
    pub st_gid: u32,
    pub st_rdev: u64,
    pub st_atim: NbTimespec,
    pub st_mtim: NbTimespec,
    pub st_ctim: NbTimespec,
    pub st_birthtim: NbTimespec,
    pub st_size: i64,
    pub st_blocks: i64,
    pub st_blksize: u32,
    pub st_flags: u32,
    pub st_gen: u32,
    pub st_spare: [u32; 2],
}
const _: () = assert!(core::mem::size_of::<NbStat>() == 152);

/// NetBSD `struct statvfs` (amd64; `_VFS_NAMELEN` 32, `_VFS_MNAMELEN` 1024).
#[repr(C)]
pub struct NbStatvfs {
    pub f_flag: u64,
    pub f_bsize: u64,
    pub f_frsize: u64,
    pub f_iosize: u64,
    pub f_blocks: u64,
    pub f_bfree: u64,
    pub f_bavail: u64,
    pub f_bresvd: u64,
    pub f_files: u64,
    pub f_ffree: u64,
    pub f_favail: u64,
    pub f_fresvd: u64,
    pub f_syncreads: u64,
    pub f_syncwrites: u64,
    pub f_asyncreads: u64,
    pub f_asyncwrites: u64,
    pub f_fsidx: [i32; 2],
    pub f_fsid: u64,
    pub f_namemax: u64,
    pub f_owner: u32,
    pub f_spare: [u32; 4],
    pub f_fstypename: [u8; 32],
    pub f_mntonname: [u8; 1024],
    pub f_mntfromname: [u8; 1024],
}

/// `struct ufs_args` (ffs, ext2fs).
#[repr(C)]
pub struct UfsArgs {
    pub fspec: *const c_char,
}

/// `struct uucred` (amd64; `NGROUPS_MAX` 16).
#[repr(C)]
#[derive(Default)]
pub struct NbUucred {
    pub cr_unused: u16,
    pub cr_uid: u32,
    pub cr_gid: u32,
    pub cr_ngroups: i16,
    pub cr_groups: [u32; 16],
}

/// `struct export_args30` (the padding in `msdosfs_args`).
#[repr(C)]
pub struct NbExportArgs30 {
    pub ex_flags: c_int,
    pub ex_root: u32,
    pub ex_anon: NbUucred,
    pub ex_addr: *mut c_void,
    pub ex_addrlen: c_int,
    pub ex_mask: *mut c_void,
    pub ex_masklen: c_int,
    pub ex_indexfile: *mut c_char,
}
const _: () = assert!(core::mem::size_of::<NbExportArgs30>() == 128);

/// `struct msdosfs_args` (version 3).
#[repr(C)]
pub struct MsdosfsArgs {
    pub fspec: *const c_char,
    pub pad: NbExportArgs30,
    pub uid: u32,
    pub gid: u32,
    pub mask: u32,
    pub flags: c_int,
    pub version: c_int,
    pub dirmask: u32,
    pub gmtoff: c_int,
}
pub const MSDOSFSMNT_LONGNAME: c_int = 2;
pub const MSDOSFSMNT_VERSIONED: c_int = 16;
pub const MSDOSFSMNT_VERSION: c_int = 3;

/// NetBSD disk ioctls (`sys/dkio.h`).
pub const DIOCGMEDIASIZE: u64 = 0x4008_6484;
pub const DIOCGSECTORSIZE: u64 = 0x4004_6485;
pub const DIOCCACHESYNC: u64 = 0x8004_6476;
/// NetBSD `S_IFCHR`.
pub const NB_S_IFCHR: u32 = 0o020000;

pub const RUMP_ETFS_BLK: c_int = 1;

// NetBSD open(2) flags and *at constants.
pub const O_RDONLY: c_int = 0;
pub const O_RDWR: c_int = 2;
pub const O_CREAT: c_int = 0x200;
pub const O_EXCL: c_int = 0x800;
pub const O_NOFOLLOW: c_int = 0x100;
pub const O_DIRECTORY: c_int = 0x0020_0000;
pub const AT_FDCWD: c_int = -100;
pub const AT_SYMLINK_NOFOLLOW: c_int = 0x200;
pub const AT_REMOVEDIR: c_int = 0x800;
pub const UTIME_OMIT: i64 = (1 << 30) - 2;
pub const MNT_RDONLY: c_int = 0x1;
pub const MNT_SYNCHRONOUS: c_int = 0x2;
pub const MNT_ASYNC: c_int = 0x40;
pub const MNT_RELATIME: c_int = 0x0002_0000;
pub const MNT_FORCE: c_int = 0x0008_0000;
pub const ST_WAIT: c_int = 1;

#[cfg(rump_linked)]
mod ffi {
    use core::ffi::{c_char, c_int, c_void};

    use super::{NbStat, NbStatvfs, NbTimespec};

    unsafe extern "C" {
        pub fn rump_init() -> c_int;
        pub fn rump_pub_etfs_register(
            key: *const c_char,
            hostpath: *const c_char,
            ftype: c_int,
        ) -> c_int;
        pub fn rump_pub_etfs_remove(key: *const c_char) -> c_int;
        pub fn rump_pub_lwproc_newlwp(pid: c_int) -> c_int;
        pub fn rump_pub_lwproc_releaselwp();
        #[link_name = "rump___sysimpl_openat"]
        pub fn openat(dirfd: c_int, path: *const c_char, flags: c_int, mode: u32) -> c_int;
        #[link_name = "rump___sysimpl_close"]
        pub fn close(fd: c_int) -> c_int;
        #[link_name = "rump___sysimpl_pread"]
        pub fn pread(fd: c_int, buf: *mut c_void, n: usize, off: i64) -> isize;
        #[link_name = "rump___sysimpl_pwrite"]
        pub fn pwrite(fd: c_int, buf: *const c_void, n: usize, off: i64) -> isize;
        #[link_name = "rump___sysimpl_fstat50"]
        pub fn fstat(fd: c_int, st: *mut NbStat) -> c_int;
        #[link_name = "rump___sysimpl_fstatat"]
        pub fn fstatat(dirfd: c_int, path: *const c_char, st: *mut NbStat, flags: c_int) -> c_int;
        #[link_name = "rump___sysimpl_getdents30"]
        pub fn getdents(fd: c_int, buf: *mut c_char, n: usize) -> c_int;
        #[link_name = "rump___sysimpl_lseek"]
        pub fn lseek(fd: c_int, off: i64, whence: c_int) -> i64;
        #[link_name = "rump___sysimpl_mkdirat"]
        pub fn mkdirat(dirfd: c_int, path: *const c_char, mode: u32) -> c_int;
        #[link_name = "rump___sysimpl_mknodat"]
        pub fn mknodat(dirfd: c_int, path: *const c_char, mode: u32, dev: u64) -> c_int;
        #[link_name = "rump___sysimpl_mkfifoat"]
        pub fn mkfifoat(dirfd: c_int, path: *const c_char, mode: u32) -> c_int;
        #[link_name = "rump___sysimpl_unlinkat"]
        pub fn unlinkat(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int;
        #[link_name = "rump___sysimpl_renameat"]
        pub fn renameat(
            fromfd: c_int,
            from: *const c_char,
            tofd: c_int,
            to: *const c_char,
        ) -> c_int;
        #[link_name = "rump___sysimpl_linkat"]
        pub fn linkat(
            fd1: c_int,
            p1: *const c_char,
            fd2: c_int,
            p2: *const c_char,
            flags: c_int,
        ) -> c_int;
        #[link_name = "rump___sysimpl_symlinkat"]
        pub fn symlinkat(target: *const c_char, dirfd: c_int, path: *const c_char) -> c_int;
        #[link_name = "rump___sysimpl_readlinkat"]
        pub fn readlinkat(dirfd: c_int, path: *const c_char, buf: *mut c_char, n: usize) -> isize;
        #[link_name = "rump___sysimpl_fchmodat"]
        pub fn fchmodat(dirfd: c_int, path: *const c_char, mode: u32, flags: c_int) -> c_int;
        #[link_name = "rump___sysimpl_fchownat"]
        pub fn fchownat(
            dirfd: c_int,
            path: *const c_char,
            uid: u32,
            gid: u32,
            flags: c_int,
        ) -> c_int;
        #[link_name = "rump___sysimpl_utimensat"]
        pub fn utimensat(
            dirfd: c_int,
            path: *const c_char,
            ts: *const NbTimespec,
            flags: c_int,
        ) -> c_int;
        #[link_name = "rump___sysimpl_ftruncate"]
        pub fn ftruncate(fd: c_int, len: i64) -> c_int;
        #[link_name = "rump___sysimpl_fsync_range"]
        pub fn fsync_range(fd: c_int, flags: c_int, start: i64, len: i64) -> c_int;
        #[link_name = "rump___sysimpl_fstatvfs1"]
        pub fn fstatvfs1(fd: c_int, st: *mut NbStatvfs, flags: c_int) -> c_int;
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
        #[link_name = "rump___sysimpl_sync"]
        pub fn sync() -> c_int;
        #[link_name = "rump___sysimpl_ioctl"]
        pub fn ioctl(fd: c_int, cmd: u64, arg: *mut c_void) -> c_int;
        #[link_name = "rump___sysimpl_fchmod"]
        pub fn fchmod(fd: c_int, mode: u32) -> c_int;
        #[link_name = "rump___sysimpl_fchown"]
        pub fn fchown(fd: c_int, uid: u32, gid: u32) -> c_int;
        #[link_name = "rump___sysimpl_futimens"]
        pub fn futimens(fd: c_int, ts: *const NbTimespec) -> c_int;
        #[link_name = "rump___sysimpl_umask"]
        pub fn umask(mask: u32) -> u32;
        /// NetBSD's version string (`version[]` in the rump kernel, renamed by the build).
        pub static rumpns_version: [c_char; 0];
    }
}

/// Stand-ins when the components are not linked: the rump stack never starts then, so no
/// caller reaches these; they fail with ENOSYS rather than pretend.
#[cfg(not(rump_linked))]
#[allow(clippy::missing_safety_doc)]
mod ffi {
    use core::ffi::{c_char, c_int, c_void};

    use super::{NbStat, NbStatvfs, NbTimespec};

    pub unsafe fn rump_pub_lwproc_releaselwp() {}
    macro_rules! nosys {
        ($($name:ident($($a:ty),*) -> $r:ty;)*) => {$(
            pub unsafe fn $name($(_: $a),*) -> $r { (-1i32) as $r }
        )*};
    }
    nosys! {
        rump_init() -> c_int;
        rump_pub_etfs_register(*const c_char, *const c_char, c_int) -> c_int;
        rump_pub_etfs_remove(*const c_char) -> c_int;
        rump_pub_lwproc_newlwp(c_int) -> c_int;
        openat(c_int, *const c_char, c_int, u32) -> c_int;
        close(c_int) -> c_int;
        pread(c_int, *mut c_void, usize, i64) -> isize;
        pwrite(c_int, *const c_void, usize, i64) -> isize;
        fstat(c_int, *mut NbStat) -> c_int;
        fstatat(c_int, *const c_char, *mut NbStat, c_int) -> c_int;
        getdents(c_int, *mut c_char, usize) -> c_int;
        lseek(c_int, i64, c_int) -> i64;
        mkdirat(c_int, *const c_char, u32) -> c_int;
        mknodat(c_int, *const c_char, u32, u64) -> c_int;
        mkfifoat(c_int, *const c_char, u32) -> c_int;
        unlinkat(c_int, *const c_char, c_int) -> c_int;
        renameat(c_int, *const c_char, c_int, *const c_char) -> c_int;
        linkat(c_int, *const c_char, c_int, *const c_char, c_int) -> c_int;
        symlinkat(*const c_char, c_int, *const c_char) -> c_int;
        readlinkat(c_int, *const c_char, *mut c_char, usize) -> isize;
        fchmodat(c_int, *const c_char, u32, c_int) -> c_int;
        fchownat(c_int, *const c_char, u32, u32, c_int) -> c_int;
        utimensat(c_int, *const c_char, *const NbTimespec, c_int) -> c_int;
        ftruncate(c_int, i64) -> c_int;
        fsync_range(c_int, c_int, i64, i64) -> c_int;
        fstatvfs1(c_int, *mut NbStatvfs, c_int) -> c_int;
        mount(*const c_char, *const c_char, c_int, *mut c_void, usize) -> c_int;
        unmount(*const c_char, c_int) -> c_int;
        sync() -> c_int;
        ioctl(c_int, u64, *mut c_void) -> c_int;
        fchmod(c_int, u32) -> c_int;
        fchown(c_int, u32, u32) -> c_int;
        futimens(c_int, *const NbTimespec) -> c_int;
        umask(u32) -> u32;
    }
}

/// A NetBSD errno as the Linux one user space expects (numbers 1–34 agree; the rest differ).
pub fn linux_errno(code: i32) -> Errno {
    use Errno as L;
    let Some(e) = Nb::from_code(code) else {
        log::warn!("rump: unknown NetBSD errno {code}");
        return L::EIO;
    };
    match e {
        Nb::EPERM => L::EPERM,
        Nb::ENOENT => L::ENOENT,
        Nb::ESRCH => L::ESRCH,
        Nb::EINTR => L::EINTR,
        Nb::EIO => L::EIO,
        Nb::ENXIO => L::ENXIO,
        Nb::E2BIG => L::E2BIG,
        Nb::EBADF => L::EBADF,
        Nb::ENOMEM => L::ENOMEM,
        Nb::EACCES => L::EACCES,
        Nb::EFAULT => L::EFAULT,
        Nb::ENOTBLK => L::ENOTBLK,
        Nb::EBUSY => L::EBUSY,
        Nb::EEXIST => L::EEXIST,
        Nb::EXDEV => L::EXDEV,
        Nb::ENODEV => L::ENODEV,
        Nb::ENOTDIR => L::ENOTDIR,
        Nb::EISDIR => L::EISDIR,
        Nb::EINVAL => L::EINVAL,
        Nb::ENFILE => L::ENFILE,
        Nb::EMFILE => L::EMFILE,
        Nb::ENOTTY => L::ENOTTY,
        Nb::ETXTBSY => L::ETXTBSY,
        Nb::EFBIG => L::EFBIG,
        Nb::ENOSPC => L::ENOSPC,
        Nb::ESPIPE => L::ESPIPE,
        Nb::EROFS => L::EROFS,
        Nb::EMLINK => L::EMLINK,
        Nb::EPIPE => L::EPIPE,
        Nb::ERANGE => L::ERANGE,
        Nb::EAGAIN => L::EAGAIN,
        Nb::ENAMETOOLONG => L::ENAMETOOLONG,
        Nb::ENOTEMPTY => L::ENOTEMPTY,
        Nb::ELOOP => L::ELOOP,
        Nb::ENOSYS => L::ENOSYS,
        Nb::ENOLCK => L::ENOLCK,
        Nb::EOVERFLOW => L::EOVERFLOW,
        Nb::EILSEQ => L::EILSEQ,
        Nb::ENOTSUP | Nb::EOPNOTSUPP => L::EOPNOTSUPP,
        Nb::ETIMEDOUT => L::ETIMEDOUT,
        Nb::ENOATTR => L::ENODATA,
        Nb::EDEADLK => L::EDEADLK,
        Nb::EFTYPE => L::EINVAL,
        // Sockets (NetBSD 35–65 are Linux's 88–115, in another order).
        Nb::EINPROGRESS => L::EINPROGRESS,
        Nb::EALREADY => L::EALREADY,
        Nb::ENOTSOCK => L::ENOTSOCK,
        Nb::EDESTADDRREQ => L::EDESTADDRREQ,
        Nb::EMSGSIZE => L::EMSGSIZE,
        Nb::EPROTOTYPE => L::EPROTOTYPE,
        Nb::ENOPROTOOPT => L::ENOPROTOOPT,
        Nb::EPROTONOSUPPORT => L::EPROTONOSUPPORT,
        Nb::ESOCKTNOSUPPORT => L::ESOCKTNOSUPPORT,
        Nb::EPFNOSUPPORT | Nb::EAFNOSUPPORT => L::EAFNOSUPPORT,
        Nb::EADDRINUSE => L::EADDRINUSE,
        Nb::EADDRNOTAVAIL => L::EADDRNOTAVAIL,
        Nb::ENETDOWN => L::ENETDOWN,
        Nb::ENETUNREACH => L::ENETUNREACH,
        Nb::ECONNABORTED => L::ECONNABORTED,
        Nb::ECONNRESET | Nb::ENETRESET => L::ECONNRESET,
        Nb::ENOBUFS => L::ENOBUFS,
        Nb::EISCONN => L::EISCONN,
        Nb::ENOTCONN => L::ENOTCONN,
        Nb::ESHUTDOWN => L::EPIPE,
        Nb::ECONNREFUSED => L::ECONNREFUSED,
        Nb::EHOSTUNREACH | Nb::EHOSTDOWN => L::EHOSTUNREACH,
        Nb::ECANCELED => L::ECANCELED,
        other => {
            log::warn!("rump: NetBSD errno {other:?} has no Linux equivalent here: EIO");
            L::EIO
        }
    }
}

/// The errno of the calling thread's last failed `rump_sys_*` call, in Linux numbering.
fn last_errno() -> Errno {
    let e = crate::sched::thread::current()
        .rump_errno
        .load(core::sync::atomic::Ordering::Relaxed);
    if e == 0 { Errno::EIO } else { linux_errno(e) }
}

pub(super) fn chk(rv: c_int) -> KResult<c_int> {
    // Back from the rump kernel: block requests this call queued can go (see bio::unplug).
    rumpuser_adros::bio::unplug();
    if rv < 0 { Err(last_errno()) } else { Ok(rv) }
}

pub(super) fn chk_sz(rv: isize) -> KResult<usize> {
    rumpuser_adros::bio::unplug();
    if rv < 0 {
        Err(last_errno())
    } else {
        Ok(rv as usize)
    }
}

/// AdrOS threads that got their own rump lwp from [`bind`] (by thread id).
static BOUND: crate::fs::sync::SpinLock<alloc::collections::BTreeSet<u64>> =
    crate::fs::sync::SpinLock::new(alloc::collections::BTreeSet::new());

/// Gives the calling AdrOS thread its own rump lwp (in the rump kernel's process 1, where
/// the bridge's descriptors live) on its first rump call. Without one, every `rump_sys_*`
/// call would allocate and free a temporary lwp ("anyone who cares about performance will
/// start a real thread", NetBSD's scheduler.c). Released by [`thread_exit_hook`].
pub(super) fn bind() {
    if !crate::arch::irq::enabled() {
        // The rump kernel blocks and spins on locks that preemptible threads hold: entered
        // with interrupts off (an IrqSpinLock guard still alive), it can wait forever for
        // a thread that cannot run on this CPU.
        log::error!(
            "BUG: thread {} called into the rump kernel with interrupts off",
            crate::sched::thread::current().id
        );
        crate::panic::backtrace_from(crate::panic::current_fp());
    }
    if crate::arch::percpu::rump_lwp() != 0 || super::is_dead() {
        return;
    }
    // SAFETY: plain call; on success it sets this thread's curlwp (rumpuser_curlwpop).
    if unsafe { ffi::rump_pub_lwproc_newlwp(1) } == 0 {
        BOUND.lock().insert(crate::sched::thread::current().id);
    }
}

/// Called by every exiting thread that has a rump curlwp: releases the lwp [`bind`] made.
pub fn thread_exit_hook() {
    let id = crate::sched::thread::current().id;
    if BOUND.lock().remove(&id) && !super::is_dead() {
        // SAFETY: this thread's curlwp is the lwp `bind` created for it.
        unsafe { ffi::rump_pub_lwproc_releaselwp() };
    }
}

pub fn cstr(s: &str) -> KResult<CString> {
    CString::new(s).map_err(|_| Errno::EINVAL)
}

// Safe wrappers. Every pointer handed over is valid for the call (Rust references, CStrings
// and buffers that outlive it); rump copies in and out with its own copyin/copyout, which for
// rump's "local" client are memcpy.

/// `rump_init()`: NetBSD's errno on failure.
pub fn init() -> Result<(), i32> {
    // SAFETY: called once, from the thread `super::start` spawns.
    let rv = unsafe { ffi::rump_init() };
    if rv == 0 { Ok(()) } else { Err(rv) }
}

/// NetBSD's version line (first line of `version[]`).
pub fn version() -> alloc::string::String {
    #[cfg(rump_linked)]
    {
        // SAFETY: `version` is a NUL-terminated string in the rump kernel's rodata.
        let s =
            unsafe { core::ffi::CStr::from_ptr(core::ptr::addr_of!(ffi::rumpns_version).cast()) };
        alloc::string::String::from(s.to_string_lossy().lines().next().unwrap_or("").trim())
    }
    #[cfg(not(rump_linked))]
    alloc::string::String::new()
}

pub fn etfs_register_blk(key: &str, host_path: &str) -> KResult<()> {
    bind();
    let (k, h) = (cstr(key)?, cstr(host_path)?);
    // SAFETY: valid strings for the call.
    let rv =
        call(|| unsafe { ffi::rump_pub_etfs_register(k.as_ptr(), h.as_ptr(), RUMP_ETFS_BLK) })?;
    if rv == 0 {
        Ok(())
    } else {
        Err(linux_errno(rv))
    }
}

pub fn etfs_remove(key: &str) -> KResult<()> {
    bind();
    let k = cstr(key)?;
    // SAFETY: valid string.
    let rv = call(|| unsafe { ffi::rump_pub_etfs_remove(k.as_ptr()) })?;
    if rv == 0 {
        Ok(())
    } else {
        Err(linux_errno(rv))
    }
}

pub fn openat(dirfd: c_int, path: &str, flags: c_int, mode: u32) -> KResult<c_int> {
    bind();
    let p = cstr(path)?;
    // SAFETY: valid path.
    chk(call(|| unsafe {
        ffi::openat(dirfd, p.as_ptr(), flags, mode)
    })?)
}

pub fn close(fd: c_int) -> KResult<()> {
    bind();
    // SAFETY: plain call.
    chk(call(|| unsafe { ffi::close(fd) })?).map(drop)
}

pub fn pread(fd: c_int, buf: &mut [u8], off: u64) -> KResult<usize> {
    bind();
    // SAFETY: buf is writable for its length.
    chk_sz(call(|| unsafe {
        ffi::pread(fd, buf.as_mut_ptr().cast::<c_void>(), buf.len(), off as i64)
    })?)
}

pub fn pwrite(fd: c_int, buf: &[u8], off: u64) -> KResult<usize> {
    bind();
    // SAFETY: buf is readable for its length.
    chk_sz(call(|| unsafe {
        ffi::pwrite(fd, buf.as_ptr().cast::<c_void>(), buf.len(), off as i64)
    })?)
}

pub fn fstat(fd: c_int) -> KResult<NbStat> {
    bind();
    let mut st = NbStat::default();
    // SAFETY: valid out-pointer.
    chk(call(|| unsafe { ffi::fstat(fd, &mut st) })?)?;
    Ok(st)
}

pub fn fstatat(dirfd: c_int, path: &str, flags: c_int) -> KResult<NbStat> {
    bind();
    let p = cstr(path)?;
    let mut st = NbStat::default();
    // SAFETY: valid path and out-pointer.
    chk(call(|| unsafe {
        ffi::fstatat(dirfd, p.as_ptr(), &mut st, flags)
    })?)?;
    Ok(st)
}

pub fn lseek(fd: c_int, off: i64, whence: c_int) -> KResult<i64> {
    bind();
    // SAFETY: plain call.
    let r = call(|| unsafe { ffi::lseek(fd, off, whence) })?;
    if r < 0 { Err(last_errno()) } else { Ok(r) }
}

/// One `getdents` call into `buf`: the bytes filled (0 at the end).
pub fn getdents(fd: c_int, buf: &mut [u8]) -> KResult<usize> {
    bind();
    // SAFETY: buf is writable for its length.
    chk(call(|| unsafe {
        ffi::getdents(fd, buf.as_mut_ptr().cast::<c_char>(), buf.len())
    })?)
    .map(|n| n as usize)
}

pub fn mkdirat(dirfd: c_int, path: &str, mode: u32) -> KResult<()> {
    bind();
    let p = cstr(path)?;
    // SAFETY: valid path.
    chk(call(|| unsafe { ffi::mkdirat(dirfd, p.as_ptr(), mode) })?).map(drop)
}

pub fn mknodat(dirfd: c_int, path: &str, mode: u32, dev: u64) -> KResult<()> {
    bind();
    let p = cstr(path)?;
    // SAFETY: valid path.
    chk(call(|| unsafe {
        ffi::mknodat(dirfd, p.as_ptr(), mode, dev)
    })?)
    .map(drop)
}

pub fn mkfifoat(dirfd: c_int, path: &str, mode: u32) -> KResult<()> {
    bind();
    let p = cstr(path)?;
    // SAFETY: valid path.
    chk(call(|| unsafe { ffi::mkfifoat(dirfd, p.as_ptr(), mode) })?).map(drop)
}

pub fn unlinkat(dirfd: c_int, path: &str, flags: c_int) -> KResult<()> {
    bind();
    let p = cstr(path)?;
    // SAFETY: valid path.
    chk(call(|| unsafe { ffi::unlinkat(dirfd, p.as_ptr(), flags) })?).map(drop)
}

pub fn renameat(fromfd: c_int, from: &str, tofd: c_int, to: &str) -> KResult<()> {
    bind();
    let (f, t) = (cstr(from)?, cstr(to)?);
    // SAFETY: valid paths.
    chk(call(|| unsafe {
        ffi::renameat(fromfd, f.as_ptr(), tofd, t.as_ptr())
    })?)
    .map(drop)
}

pub fn linkat(fd1: c_int, p1: &str, fd2: c_int, p2: &str) -> KResult<()> {
    bind();
    let (a, b) = (cstr(p1)?, cstr(p2)?);
    // SAFETY: valid paths.
    chk(call(|| unsafe {
        ffi::linkat(fd1, a.as_ptr(), fd2, b.as_ptr(), 0)
    })?)
    .map(drop)
}

pub fn symlinkat(target: &str, dirfd: c_int, path: &str) -> KResult<()> {
    bind();
    let (t, p) = (cstr(target)?, cstr(path)?);
    // SAFETY: valid strings.
    chk(call(|| unsafe {
        ffi::symlinkat(t.as_ptr(), dirfd, p.as_ptr())
    })?)
    .map(drop)
}

pub fn readlinkat(dirfd: c_int, path: &str) -> KResult<Vec<u8>> {
    bind();
    let p = cstr(path)?;
    let mut buf = alloc::vec![0u8; 4096];
    // SAFETY: valid path; buf is writable for its length.
    let n = chk_sz(call(|| unsafe {
        ffi::readlinkat(
            dirfd,
            p.as_ptr(),
            buf.as_mut_ptr().cast::<c_char>(),
            buf.len(),
        )
    })?)?;
    buf.truncate(n);
    Ok(buf)
}

pub fn fchmodat(dirfd: c_int, path: &str, mode: u32, flags: c_int) -> KResult<()> {
    bind();
    let p = cstr(path)?;
    // SAFETY: valid path.
    chk(call(|| unsafe {
        ffi::fchmodat(dirfd, p.as_ptr(), mode, flags)
    })?)
    .map(drop)
}

pub fn fchownat(dirfd: c_int, path: &str, uid: u32, gid: u32, flags: c_int) -> KResult<()> {
    bind();
    let p = cstr(path)?;
    // SAFETY: valid path.
    chk(call(|| unsafe {
        ffi::fchownat(dirfd, p.as_ptr(), uid, gid, flags)
    })?)
    .map(drop)
}

pub fn utimensat(dirfd: c_int, path: &str, ts: &[NbTimespec; 2], flags: c_int) -> KResult<()> {
    bind();
    let p = cstr(path)?;
    // SAFETY: valid path; ts points at two timespecs.
    chk(call(|| unsafe {
        ffi::utimensat(dirfd, p.as_ptr(), ts.as_ptr(), flags)
    })?)
    .map(drop)
}

pub fn ftruncate(fd: c_int, len: u64) -> KResult<()> {
    bind();
    // SAFETY: plain call.
    chk(call(|| unsafe { ffi::ftruncate(fd, len as i64) })?).map(drop)
}

/// NetBSD's `fsync_range` flags (`sys/unistd.h`).
const FFILESYNC: c_int = 0x0020;
const FDISKSYNC: c_int = 0x0040;

/// `fsync(2)` as Linux means it: the file's data and metadata written *and* on stable
/// storage. NetBSD's `fsync` only writes; `FDISKSYNC` adds the device cache flush
/// (`DIOCCACHESYNC`, which the rump block device turns into `rumpuser_syncfd`).
pub fn fsync(fd: c_int) -> KResult<()> {
    bind();
    // SAFETY: plain call; start 0 and length 0 mean the whole file.
    chk(call(|| unsafe {
        ffi::fsync_range(fd, FFILESYNC | FDISKSYNC, 0, 0)
    })?)
    .map(drop)
}

pub fn fstatvfs(fd: c_int) -> KResult<alloc::boxed::Box<NbStatvfs>> {
    bind();
    // SAFETY: NbStatvfs is plain integers and byte arrays: all-zero is a valid value.
    let mut st: alloc::boxed::Box<NbStatvfs> =
        alloc::boxed::Box::new(unsafe { core::mem::zeroed() });
    // SAFETY: valid out-pointer.
    chk(call(|| unsafe { ffi::fstatvfs1(fd, &mut *st, ST_WAIT) })?)?;
    Ok(st)
}

pub fn mount_ufs(fstype: &str, path: &str, flags: c_int, fspec: &str) -> KResult<()> {
    bind();
    let (t, p, s) = (cstr(fstype)?, cstr(path)?, cstr(fspec)?);
    let mut args = UfsArgs { fspec: s.as_ptr() };
    // SAFETY: valid strings; args is a ufs_args of the given size, alive for the call.
    chk(call(|| unsafe {
        ffi::mount(
            t.as_ptr(),
            p.as_ptr(),
            flags,
            (&mut args as *mut UfsArgs).cast::<c_void>(),
            core::mem::size_of::<UfsArgs>(),
        )
    })?)
    .map(drop)
}

pub fn unmount(path: &str, flags: c_int) -> KResult<()> {
    bind();
    let p = cstr(path)?;
    // SAFETY: valid path.
    chk(call(|| unsafe { ffi::unmount(p.as_ptr(), flags) })?).map(drop)
}

pub fn fchmod(fd: c_int, mode: u32) -> KResult<()> {
    bind();
    // SAFETY: plain call.
    chk(call(|| unsafe { ffi::fchmod(fd, mode) })?).map(drop)
}

pub fn fchown(fd: c_int, uid: u32, gid: u32) -> KResult<()> {
    bind();
    // SAFETY: plain call.
    chk(call(|| unsafe { ffi::fchown(fd, uid, gid) })?).map(drop)
}

pub fn futimens(fd: c_int, ts: &[NbTimespec; 2]) -> KResult<()> {
    bind();
    // SAFETY: ts points at two timespecs.
    chk(call(|| unsafe { ffi::futimens(fd, ts.as_ptr()) })?).map(drop)
}

/// Sets the rump process's umask (our VFS applies the caller's own before asking).
pub fn umask(mask: u32) {
    bind();
    // SAFETY: plain call.
    let _ = call(|| unsafe { ffi::umask(mask) });
}

pub fn sync() {
    bind();
    // SAFETY: plain call.
    let _ = call(|| unsafe { ffi::sync() });
}

/// `mount("msdos", …)` with long names, root-owned files, mode 0755.
pub fn mount_msdos(path: &str, flags: c_int, fspec: &str) -> KResult<()> {
    bind();
    let (t, p, sp) = (cstr("msdos")?, cstr(path)?, cstr(fspec)?);
    let mut args = MsdosfsArgs {
        fspec: sp.as_ptr(),
        pad: NbExportArgs30 {
            ex_flags: 0,
            ex_root: 0,
            ex_anon: NbUucred::default(),
            ex_addr: core::ptr::null_mut(),
            ex_addrlen: 0,
            ex_mask: core::ptr::null_mut(),
            ex_masklen: 0,
            ex_indexfile: core::ptr::null_mut(),
        },
        uid: 0,
        gid: 0,
        mask: 0o755,
        flags: MSDOSFSMNT_LONGNAME | MSDOSFSMNT_VERSIONED,
        version: MSDOSFSMNT_VERSION,
        dirmask: 0o755,
        gmtoff: 0,
    };
    // SAFETY: valid strings; args is a msdosfs_args of the given size, alive for the call.
    chk(call(|| unsafe {
        ffi::mount(
            t.as_ptr(),
            p.as_ptr(),
            flags,
            (&mut args as *mut MsdosfsArgs).cast::<c_void>(),
            core::mem::size_of::<MsdosfsArgs>(),
        )
    })?)
    .map(drop)
}

/// An ioctl whose argument is a plain value of type `T` (in, out or both).
pub fn ioctl<T: Copy>(fd: c_int, cmd: u64, arg: &mut T) -> KResult<()> {
    bind();
    // SAFETY: arg is a valid, exclusive `T` for the call; the command's size is T's.
    chk(call(|| unsafe {
        ffi::ioctl(fd, cmd, (arg as *mut T).cast::<c_void>())
    })?)
    .map(drop)
}
