//! The Linux x86_64 user ABI structures the kernel reads from and writes to user memory,
//! as `#[repr(C)]` types with derived byte-safety (`zerocopy`): only such types cross the
//! user boundary (`arch::uaccess::read_val`/`write_val` require `FromBytes`/`IntoBytes`).
//! Each names the Linux header it mirrors; `layout!` checks its size and every field offset
//! against that header at compile time, in every kernel build. Field names are Linux's, so
//! a structure can be compared with its header line by line. No padding is implicit:
//! `IntoBytes` refuses a type with padding, so the gaps Linux's layout has are named fields.

use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

use crate::fs::node;

/// Checks, at compile time, a type's size and the offsets of its fields.
macro_rules! layout {
    ($t:ty, $size:expr $(, $($f:ident).+ @ $off:expr)* $(,)?) => {
        const _: () = {
            assert!(core::mem::size_of::<$t>() == $size);
            $( assert!(core::mem::offset_of!($t, $($f).+) == $off); )*
        };
    };
}

// ---- time ---------------------------------------------------------------------------------

/// `struct timespec` (include/uapi/linux/time_types.h `__kernel_timespec`).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Timespec {
    pub tv_sec: i64,
    pub tv_nsec: i64,
}
layout!(Timespec, 16, tv_sec @ 0, tv_nsec @ 8);

impl Timespec {
    /// A duration or point in time given in nanoseconds.
    pub fn from_ns(ns: u64) -> Timespec {
        Timespec {
            tv_sec: (ns / 1_000_000_000) as i64,
            tv_nsec: (ns % 1_000_000_000) as i64,
        }
    }
}

/// `struct timeval` (include/uapi/linux/time_types.h `__kernel_old_timeval`).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Timeval {
    pub tv_sec: i64,
    pub tv_usec: i64,
}
layout!(Timeval, 16, tv_sec @ 0, tv_usec @ 8);

impl Timeval {
    /// A duration or point in time given in nanoseconds (truncated to microseconds).
    pub fn from_ns(ns: u64) -> Timeval {
        Timeval {
            tv_sec: (ns / 1_000_000_000) as i64,
            tv_usec: ((ns / 1000) % 1_000_000) as i64,
        }
    }
}

/// `struct itimerspec` (include/uapi/linux/time_types.h `__kernel_itimerspec`).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Itimerspec {
    pub it_interval: Timespec,
    pub it_value: Timespec,
}
layout!(Itimerspec, 32, it_interval @ 0, it_value @ 16);

/// `struct itimerval` (include/uapi/linux/time.h).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Itimerval {
    pub it_interval: Timeval,
    pub it_value: Timeval,
}
layout!(Itimerval, 32, it_interval @ 0, it_value @ 16);

/// `struct tms` (include/uapi/linux/times.h), in clock ticks.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Tms {
    pub tms_utime: i64,
    pub tms_stime: i64,
    pub tms_cutime: i64,
    pub tms_cstime: i64,
}
layout!(Tms, 32, tms_utime @ 0, tms_stime @ 8, tms_cutime @ 16, tms_cstime @ 24);

/// `struct rusage` (include/uapi/linux/resource.h).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Rusage {
    pub ru_utime: Timeval,
    pub ru_stime: Timeval,
    pub ru_maxrss: i64,
    pub ru_ixrss: i64,
    pub ru_idrss: i64,
    pub ru_isrss: i64,
    pub ru_minflt: i64,
    pub ru_majflt: i64,
    pub ru_nswap: i64,
    pub ru_inblock: i64,
    pub ru_oublock: i64,
    pub ru_msgsnd: i64,
    pub ru_msgrcv: i64,
    pub ru_nsignals: i64,
    pub ru_nvcsw: i64,
    pub ru_nivcsw: i64,
}
layout!(Rusage, 144, ru_utime @ 0, ru_stime @ 16, ru_maxrss @ 32, ru_nivcsw @ 136);

/// `struct rlimit` / `struct rlimit64` (include/uapi/linux/resource.h; the same on x86_64).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Rlimit {
    pub rlim_cur: u64,
    pub rlim_max: u64,
}
layout!(Rlimit, 16, rlim_cur @ 0, rlim_max @ 8);

// ---- system ---------------------------------------------------------------------------------

/// `struct sysinfo` (include/uapi/linux/sysinfo.h), x86_64: `_f` is empty there, and the
/// tail padding to 8 bytes is `_pad3`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Sysinfo {
    pub uptime: i64,
    pub loads: [u64; 3],
    pub totalram: u64,
    pub freeram: u64,
    pub sharedram: u64,
    pub bufferram: u64,
    pub totalswap: u64,
    pub freeswap: u64,
    pub procs: u16,
    pub pad: u16,
    pub _pad2: u32,
    pub totalhigh: u64,
    pub freehigh: u64,
    pub mem_unit: u32,
    pub _pad3: u32,
}
layout!(Sysinfo, 112, uptime @ 0, loads @ 8, totalram @ 32, freeram @ 40, sharedram @ 48,
    bufferram @ 56, totalswap @ 64, freeswap @ 72, procs @ 80, totalhigh @ 88, freehigh @ 96,
    mem_unit @ 104);

/// `struct new_utsname` (include/uapi/linux/utsname.h): six NUL-padded 65-byte fields.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Utsname {
    pub sysname: [u8; 65],
    pub nodename: [u8; 65],
    pub release: [u8; 65],
    pub version: [u8; 65],
    pub machine: [u8; 65],
    pub domainname: [u8; 65],
}
layout!(Utsname, 390, sysname @ 0, nodename @ 65, release @ 130, version @ 195,
    machine @ 260, domainname @ 325);

/// Copies `s` into a NUL-padded fixed field, truncated so that a NUL always ends it.
pub fn set_cstr<const N: usize>(field: &mut [u8; N], s: &[u8]) {
    let n = s.len().min(N - 1);
    field[..n].copy_from_slice(&s[..n]);
    field[n..].fill(0);
}

// ---- files ----------------------------------------------------------------------------------

/// `struct stat` (arch/x86/include/uapi/asm/stat.h, x86_64).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Stat {
    pub st_dev: u64,
    pub st_ino: u64,
    pub st_nlink: u64,
    pub st_mode: u32,
    pub st_uid: u32,
    pub st_gid: u32,
    pub __pad0: u32,
    pub st_rdev: u64,
    pub st_size: i64,
    pub st_blksize: i64,
    pub st_blocks: i64,
    pub st_atime: i64,
    pub st_atime_nsec: i64,
    pub st_mtime: i64,
    pub st_mtime_nsec: i64,
    pub st_ctime: i64,
    pub st_ctime_nsec: i64,
    pub __unused: [i64; 3],
}
layout!(Stat, 144, st_dev @ 0, st_ino @ 8, st_nlink @ 16, st_mode @ 24, st_uid @ 28,
    st_gid @ 32, st_rdev @ 40, st_size @ 48, st_blksize @ 56, st_blocks @ 64, st_atime @ 72,
    st_atime_nsec @ 80, st_mtime @ 88, st_mtime_nsec @ 96, st_ctime @ 104,
    st_ctime_nsec @ 112, __unused @ 120);

impl From<&node::Stat> for Stat {
    fn from(s: &node::Stat) -> Stat {
        Stat {
            st_dev: s.dev,
            st_ino: s.ino,
            st_nlink: s.nlink,
            st_mode: s.mode,
            st_uid: s.uid,
            st_gid: s.gid,
            st_rdev: s.rdev,
            st_size: s.size,
            st_blksize: s.blksize,
            st_blocks: s.blocks,
            st_atime: s.atime.sec,
            st_atime_nsec: s.atime.nsec,
            st_mtime: s.mtime.sec,
            st_mtime_nsec: s.mtime.nsec,
            st_ctime: s.ctime.sec,
            st_ctime_nsec: s.ctime.nsec,
            ..Stat::new_zeroed()
        }
    }
}

/// `struct statx_timestamp` (include/uapi/linux/stat.h).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct StatxTimestamp {
    pub tv_sec: i64,
    pub tv_nsec: u32,
    pub __reserved: i32,
}
layout!(StatxTimestamp, 16, tv_sec @ 0, tv_nsec @ 8);

impl From<node::Timespec> for StatxTimestamp {
    fn from(t: node::Timespec) -> StatxTimestamp {
        StatxTimestamp {
            tv_sec: t.sec,
            tv_nsec: t.nsec as u32,
            __reserved: 0,
        }
    }
}

/// `STATX_BASIC_STATS`: the fields `statx` fills in.
pub const STATX_BASIC_STATS: u32 = 0x7ff;

/// `struct statx` (include/uapi/linux/stat.h), 256 bytes; the fields after `stx_dev_minor`
/// are reported as absent (zero, not in `stx_mask`).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Statx {
    pub stx_mask: u32,
    pub stx_blksize: u32,
    pub stx_attributes: u64,
    pub stx_nlink: u32,
    pub stx_uid: u32,
    pub stx_gid: u32,
    pub stx_mode: u16,
    pub __spare0: u16,
    pub stx_ino: u64,
    pub stx_size: u64,
    pub stx_blocks: u64,
    pub stx_attributes_mask: u64,
    pub stx_atime: StatxTimestamp,
    pub stx_btime: StatxTimestamp,
    pub stx_ctime: StatxTimestamp,
    pub stx_mtime: StatxTimestamp,
    pub stx_rdev_major: u32,
    pub stx_rdev_minor: u32,
    pub stx_dev_major: u32,
    pub stx_dev_minor: u32,
    pub __spare2: [u64; 14],
}
layout!(Statx, 256, stx_mask @ 0, stx_blksize @ 4, stx_attributes @ 8, stx_nlink @ 16,
    stx_uid @ 20, stx_gid @ 24, stx_mode @ 28, stx_ino @ 32, stx_size @ 40, stx_blocks @ 48,
    stx_attributes_mask @ 56, stx_atime @ 64, stx_btime @ 80, stx_ctime @ 96, stx_mtime @ 112,
    stx_rdev_major @ 128, stx_rdev_minor @ 132, stx_dev_major @ 136, stx_dev_minor @ 140,
    __spare2 @ 144);

impl From<&node::Stat> for Statx {
    /// The device numbers split as AdrOS encodes them (major in bits 8..20, minor in 0..8);
    /// no birth time.
    fn from(s: &node::Stat) -> Statx {
        Statx {
            stx_mask: STATX_BASIC_STATS,
            stx_blksize: s.blksize as u32,
            stx_nlink: s.nlink as u32,
            stx_uid: s.uid,
            stx_gid: s.gid,
            stx_mode: s.mode as u16,
            stx_ino: s.ino,
            stx_size: s.size as u64,
            stx_blocks: s.blocks as u64,
            stx_atime: s.atime.into(),
            stx_ctime: s.ctime.into(),
            stx_mtime: s.mtime.into(),
            stx_rdev_major: ((s.rdev >> 8) & 0xfff) as u32,
            stx_rdev_minor: (s.rdev & 0xff) as u32,
            stx_dev_major: ((s.dev >> 8) & 0xfff) as u32,
            stx_dev_minor: (s.dev & 0xff) as u32,
            ..Statx::new_zeroed()
        }
    }
}

/// `struct statfs` (include/uapi/asm-generic/statfs.h, 64-bit: every field a long).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Statfs {
    pub f_type: u64,
    pub f_bsize: u64,
    pub f_blocks: u64,
    pub f_bfree: u64,
    pub f_bavail: u64,
    pub f_files: u64,
    pub f_ffree: u64,
    /// `__kernel_fsid_t` (two ints).
    pub f_fsid: u64,
    pub f_namelen: u64,
    pub f_frsize: u64,
    pub f_flags: u64,
    pub f_spare: [u64; 4],
}
layout!(Statfs, 120, f_type @ 0, f_bsize @ 8, f_blocks @ 16, f_bfree @ 24, f_bavail @ 32,
    f_files @ 40, f_ffree @ 48, f_fsid @ 56, f_namelen @ 64, f_frsize @ 72, f_flags @ 80,
    f_spare @ 88);

impl From<&node::StatFs> for Statfs {
    fn from(s: &node::StatFs) -> Statfs {
        Statfs {
            f_type: s.fs_type,
            f_bsize: s.bsize,
            f_blocks: s.blocks,
            f_bfree: s.bfree,
            f_bavail: s.bavail,
            f_files: s.files,
            f_ffree: s.ffree,
            f_fsid: s.fsid,
            f_namelen: s.namelen,
            f_frsize: s.frsize,
            f_flags: s.flags,
            f_spare: [0; 4],
        }
    }
}

/// The fixed head of `struct linux_dirent64` (include/linux/dirent.h); the NUL-terminated
/// name follows at `d_name` (offset 19), the record padded to 8 bytes (`d_reclen`).
#[repr(C, packed)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Dirent64 {
    pub d_ino: u64,
    pub d_off: i64,
    pub d_reclen: u16,
    pub d_type: u8,
}
layout!(Dirent64, 19, d_ino @ 0, d_off @ 8, d_reclen @ 16, d_type @ 18);

impl Dirent64 {
    /// The record length of an entry named `name_len` bytes.
    pub fn reclen(name_len: usize) -> usize {
        (core::mem::size_of::<Dirent64>() + name_len + 1).next_multiple_of(8)
    }
}

/// `struct iovec` (include/uapi/linux/uio.h).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Iovec {
    pub iov_base: u64,
    pub iov_len: u64,
}
layout!(Iovec, 16, iov_base @ 0, iov_len @ 8);

/// `struct pollfd` (include/uapi/asm-generic/poll.h).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Pollfd {
    pub fd: i32,
    pub events: i16,
    pub revents: i16,
}
layout!(Pollfd, 8, fd @ 0, events @ 4, revents @ 6);

/// `struct epoll_event` (include/uapi/linux/eventpoll.h): packed on x86_64.
#[repr(C, packed)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct EpollEvent {
    pub events: u32,
    pub data: u64,
}
layout!(EpollEvent, 12, events @ 0, data @ 4);

/// `struct flock` (include/uapi/asm-generic/fcntl.h, 64-bit).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Flock {
    pub l_type: i16,
    pub l_whence: i16,
    pub __pad0: u32,
    pub l_start: i64,
    pub l_len: i64,
    pub l_pid: i32,
    pub __pad1: u32,
}
layout!(Flock, 32, l_type @ 0, l_whence @ 2, l_start @ 8, l_len @ 16, l_pid @ 24);

/// `struct winsize` (include/uapi/asm-generic/termios.h).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Winsize {
    pub ws_row: u16,
    pub ws_col: u16,
    pub ws_xpixel: u16,
    pub ws_ypixel: u16,
}
layout!(Winsize, 8, ws_row @ 0, ws_col @ 2, ws_xpixel @ 4, ws_ypixel @ 6);

/// The kernel's `struct termios` (include/uapi/asm-generic/termbits.h), as TCGETS uses it:
/// 36 bytes, no speed fields.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Termios {
    pub c_iflag: u32,
    pub c_oflag: u32,
    pub c_cflag: u32,
    pub c_lflag: u32,
    pub c_line: u8,
    pub c_cc: [u8; 19],
}
layout!(Termios, 36, c_iflag @ 0, c_oflag @ 4, c_cflag @ 8, c_lflag @ 12, c_line @ 16,
    c_cc @ 17);

// ---- signals --------------------------------------------------------------------------------

/// The kernel's `struct sigaction` (arch/x86/include/asm/signal.h `struct sigaction` with the
/// x86_64 `SA_RESTORER` field): what `rt_sigaction` reads and writes.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct SigAction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}
layout!(SigAction, 32, handler @ 0, flags @ 8, restorer @ 16, mask @ 24);

/// `stack_t` (include/uapi/asm-generic/signal.h `struct sigaltstack`).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct StackT {
    pub ss_sp: u64,
    pub ss_flags: i32,
    pub __pad: u32,
    pub ss_size: u64,
}
layout!(StackT, 24, ss_sp @ 0, ss_flags @ 8, ss_size @ 16);

/// The head every `siginfo_t` variant shares (include/uapi/asm-generic/siginfo.h); the union
/// `_sifields` starts at 16 (8-byte aligned on 64-bit).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct SigInfoHead {
    pub si_signo: i32,
    pub si_errno: i32,
    pub si_code: i32,
    pub __pad: i32,
}
layout!(SigInfoHead, 16, si_signo @ 0, si_errno @ 4, si_code @ 8);

/// `siginfo_t` with its `_rt` member (`_kill` is its prefix): signals sent by a process or
/// the kernel, `rt_sigqueueinfo`.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SigInfoRt {
    pub head: SigInfoHead,
    pub si_pid: u32,
    pub si_uid: u32,
    /// `sigval_t` (`sival_int` or `sival_ptr`).
    pub si_value: u64,
    pub __rest: [u8; 96],
}
layout!(SigInfoRt, 128, head @ 0, si_pid @ 16, si_uid @ 20, si_value @ 24);

/// `siginfo_t` with its `_sigchld` member.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SigInfoChld {
    pub head: SigInfoHead,
    pub si_pid: u32,
    pub si_uid: u32,
    pub si_status: i32,
    pub __pad: i32,
    pub si_utime: i64,
    pub si_stime: i64,
    pub __rest: [u8; 80],
}
layout!(SigInfoChld, 128, head @ 0, si_pid @ 16, si_uid @ 20, si_status @ 24,
    si_utime @ 32, si_stime @ 40);

/// `siginfo_t` with its `_sigfault` member (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP).
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SigInfoFault {
    pub head: SigInfoHead,
    pub si_addr: u64,
    pub __rest: [u8; 104],
}
layout!(SigInfoFault, 128, head @ 0, si_addr @ 16);

/// `siginfo_t` as bytes: whichever variant above was built.
pub type SigInfoBytes = [u8; 128];

/// `struct signalfd_siginfo` (include/uapi/linux/signalfd.h).
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SignalfdSiginfo {
    pub ssi_signo: u32,
    pub ssi_errno: i32,
    pub ssi_code: i32,
    pub ssi_pid: u32,
    pub ssi_uid: u32,
    pub ssi_fd: i32,
    pub ssi_tid: u32,
    pub ssi_band: u32,
    pub ssi_overrun: u32,
    pub ssi_trapno: u32,
    pub ssi_status: i32,
    pub ssi_int: i32,
    pub ssi_ptr: u64,
    pub ssi_utime: u64,
    pub ssi_stime: u64,
    pub ssi_addr: u64,
    pub ssi_addr_lsb: u16,
    pub __pad2: u16,
    pub ssi_syscall: i32,
    pub ssi_call_addr: u64,
    pub ssi_arch: u32,
    pub __pad: [u8; 28],
}
layout!(SignalfdSiginfo, 128, ssi_signo @ 0, ssi_errno @ 4, ssi_code @ 8, ssi_pid @ 12,
    ssi_uid @ 16, ssi_fd @ 20, ssi_tid @ 24, ssi_band @ 28, ssi_overrun @ 32, ssi_trapno @ 36,
    ssi_status @ 40, ssi_int @ 44, ssi_ptr @ 48, ssi_utime @ 56, ssi_stime @ 64, ssi_addr @ 72,
    ssi_addr_lsb @ 80, ssi_syscall @ 84, ssi_call_addr @ 88, ssi_arch @ 96, __pad @ 100);

/// `struct sigcontext` (arch/x86/include/uapi/asm/sigcontext.h, x86_64): the saved
/// registers of a signal frame's `uc_mcontext`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct SigContext {
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub rdx: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rsp: u64,
    pub rip: u64,
    pub eflags: u64,
    pub cs: u16,
    pub gs: u16,
    pub fs: u16,
    pub ss: u16,
    pub err: u64,
    pub trapno: u64,
    pub oldmask: u64,
    pub cr2: u64,
    /// User address of the `FpState` (0: none).
    pub fpstate: u64,
    pub reserved1: [u64; 8],
}
layout!(SigContext, 256, r8 @ 0, rdi @ 64, rsp @ 120, rip @ 128, eflags @ 136, cs @ 144,
    gs @ 146, fs @ 148, ss @ 150, err @ 152, trapno @ 160, oldmask @ 168, cr2 @ 176,
    fpstate @ 184, reserved1 @ 192);

/// `struct _fpstate_64` (arch/x86/include/uapi/asm/sigcontext.h): the FXSAVE image a signal
/// frame points to.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct FpState {
    pub cwd: u16,
    pub swd: u16,
    pub twd: u16,
    pub fop: u16,
    pub rip: u64,
    pub rdp: u64,
    pub mxcsr: u32,
    pub mxcsr_mask: u32,
    pub st_space: [u32; 32],
    pub xmm_space: [u32; 64],
    pub reserved2: [u32; 12],
    pub sw_reserved: [u32; 12],
}
layout!(FpState, 512, cwd @ 0, rip @ 8, rdp @ 16, mxcsr @ 24, mxcsr_mask @ 28,
    st_space @ 32, xmm_space @ 160, reserved2 @ 416, sw_reserved @ 464);

/// `struct ucontext` (arch/x86/include/uapi/asm/ucontext.h) as the kernel writes it, plus
/// the room glibc's larger `sigset_t` expects after `uc_sigmask`.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct UContext {
    pub uc_flags: u64,
    pub uc_link: u64,
    pub uc_stack: StackT,
    pub uc_mcontext: SigContext,
    pub uc_sigmask: u64,
    pub __glibc_sigset_rest: [u8; 128],
}
layout!(UContext, 432, uc_flags @ 0, uc_link @ 8, uc_stack @ 16, uc_mcontext @ 40,
    uc_sigmask @ 296, __glibc_sigset_rest @ 304);

/// `struct rt_sigframe` (arch/x86/include/asm/sigframe.h, x86_64): what a handler finds on
/// its stack — the return address (`sa_restorer`), the context, the siginfo.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct RtSigFrame {
    pub pretcode: u64,
    pub uc: UContext,
    pub info: SigInfoBytes,
}
layout!(RtSigFrame, 568, pretcode @ 0, uc @ 8, info @ 440, uc.uc_mcontext @ 48,
    uc.uc_sigmask @ 304);
