//! aarch64: the asm-generic Linux numbering arm64 uses (`include/uapi/asm-generic/unistd.h`),
//! keyed by the names the families register their handlers under with x86_64 numbers
//! (`Table::add`), so one table serves both. The list was generated from that header for
//! exactly the names the table holds; a name missing here has no arm64 number (arm64 has no
//! `open`, `stat`, `fork`, `pipe`, `poll`, `select`, `dup2`, ... : programs call `openat`,
//! `newfstatat`, `clone`, `pipe2`, `ppoll`, `pselect6`, `dup3`) and is not registered.
//! A compile-time check keeps the list sorted and without duplicates, so the lookup can
//! bisect it.

/// The numbering this architecture's `svc` calls use.
pub const NAME: &str = "asm-generic (arm64)";

/// (name, arm64 number), sorted by name.
pub const NUMBERS: &[(&str, usize)] = &[
    ("accept", 202),
    ("accept4", 242),
    ("bind", 200),
    ("brk", 214),
    ("chdir", 49),
    ("chroot", 51),
    ("clock_getres", 114),
    ("clock_gettime", 113),
    ("clock_nanosleep", 115),
    ("clone", 220),
    ("close", 57),
    ("connect", 203),
    ("dup", 23),
    ("dup3", 24),
    ("epoll_create1", 20),
    ("epoll_ctl", 21),
    ("epoll_pwait", 22),
    ("epoll_pwait2", 441),
    ("eventfd2", 19),
    ("execve", 221),
    ("execveat", 281),
    ("exit", 93),
    ("exit_group", 94),
    ("faccessat", 48),
    ("faccessat2", 439),
    ("fchdir", 50),
    ("fchmod", 52),
    ("fchmodat", 53),
    ("fchown", 55),
    ("fchownat", 54),
    ("fcntl", 25),
    ("fdatasync", 83),
    ("fgetxattr", 10),
    ("flistxattr", 13),
    ("flock", 32),
    ("fremovexattr", 16),
    ("fsetxattr", 7),
    ("fstat", 80),
    ("fstatfs", 44),
    ("fsync", 82),
    ("ftruncate", 46),
    ("futex", 98),
    ("getcpu", 168),
    ("getcwd", 17),
    ("getdents64", 61),
    ("getegid", 177),
    ("geteuid", 175),
    ("getgid", 176),
    ("getgroups", 158),
    ("getitimer", 102),
    ("getpeername", 205),
    ("getpgid", 155),
    ("getpid", 172),
    ("getppid", 173),
    ("getpriority", 141),
    ("getrandom", 278),
    ("getresgid", 150),
    ("getresuid", 148),
    ("getrlimit", 163),
    ("getrusage", 165),
    ("getsid", 156),
    ("getsockname", 204),
    ("getsockopt", 209),
    ("gettid", 178),
    ("gettimeofday", 169),
    ("getuid", 174),
    ("getxattr", 8),
    ("ioctl", 29),
    ("kill", 129),
    ("lgetxattr", 9),
    ("linkat", 37),
    ("listen", 201),
    ("listxattr", 11),
    ("llistxattr", 12),
    ("lremovexattr", 15),
    ("lseek", 62),
    ("lsetxattr", 6),
    ("madvise", 233),
    ("mkdirat", 34),
    ("mknodat", 33),
    ("mmap", 222),
    ("mount", 40),
    ("mprotect", 226),
    ("mremap", 216),
    ("msync", 227),
    ("munmap", 215),
    ("nanosleep", 101),
    ("newfstatat", 79),
    ("openat", 56),
    ("pipe2", 59),
    ("ppoll", 73),
    ("prctl", 167),
    ("pread64", 67),
    ("prlimit64", 261),
    ("pselect6", 72),
    ("pwrite64", 68),
    ("read", 63),
    ("readlinkat", 78),
    ("readv", 65),
    ("reboot", 142),
    ("recvfrom", 207),
    ("recvmmsg", 243),
    ("recvmsg", 212),
    ("removexattr", 14),
    ("renameat", 38),
    ("renameat2", 276),
    ("rseq", 293),
    ("rt_sigaction", 134),
    ("rt_sigpending", 136),
    ("rt_sigprocmask", 135),
    ("rt_sigqueueinfo", 138),
    ("rt_sigreturn", 139),
    ("rt_sigsuspend", 133),
    ("rt_sigtimedwait", 137),
    ("rt_tgsigqueueinfo", 240),
    ("sched_get_priority_max", 125),
    ("sched_get_priority_min", 126),
    ("sched_getaffinity", 123),
    ("sched_getscheduler", 120),
    ("sched_setaffinity", 122),
    ("sched_yield", 124),
    ("sendfile", 71),
    ("sendmmsg", 269),
    ("sendmsg", 211),
    ("sendto", 206),
    ("set_robust_list", 99),
    ("set_tid_address", 96),
    ("setgid", 144),
    ("setgroups", 159),
    ("sethostname", 161),
    ("setitimer", 103),
    ("setpgid", 154),
    ("setpriority", 140),
    ("setregid", 143),
    ("setresgid", 149),
    ("setresuid", 147),
    ("setreuid", 145),
    ("setrlimit", 164),
    ("setsid", 157),
    ("setsockopt", 208),
    ("setuid", 146),
    ("setxattr", 5),
    ("shutdown", 210),
    ("sigaltstack", 132),
    ("signalfd4", 74),
    ("socket", 198),
    ("socketpair", 199),
    ("statfs", 43),
    ("statx", 291),
    ("symlinkat", 36),
    ("sync", 81),
    ("sysinfo", 179),
    ("tgkill", 131),
    ("timerfd_create", 85),
    ("timerfd_gettime", 87),
    ("timerfd_settime", 86),
    ("times", 153),
    ("tkill", 130),
    ("truncate", 45),
    ("umask", 166),
    ("umount2", 39),
    ("uname", 160),
    ("unlinkat", 35),
    ("utimensat", 88),
    ("wait4", 260),
    ("waitid", 95),
    ("write", 64),
    ("writev", 66),
];

/// `a < b`, byte by byte (`str` comparison is not `const`).
const fn before(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut i = 0;
    while i < a.len() && i < b.len() {
        if a[i] != b[i] {
            return a[i] < b[i];
        }
        i += 1;
    }
    a.len() < b.len()
}

const _: () = {
    let mut i = 1;
    while i < NUMBERS.len() {
        assert!(
            before(NUMBERS[i - 1].0, NUMBERS[i].0),
            "NUMBERS is not sorted by name"
        );
        i += 1;
    }
};

/// The arm64 number of the call registered as `name` (its x86_64 number is not used).
pub fn number(_x86_64: usize, name: &str) -> Option<usize> {
    NUMBERS
        .binary_search_by(|(n, _)| n.cmp(&name))
        .ok()
        .map(|i| NUMBERS[i].1)
}

/// Calls that set the whole frame themselves (`dispatch` leaves it alone).
pub const RT_SIGRETURN: usize = 139;
pub const EXECVE: usize = 221;
pub const EXECVEAT: usize = 281;

/// `clone(flags, stack, parent_tid, tls, child_tid)` on arm64 (CONFIG_CLONE_BACKWARDS):
/// the argument positions of the child's TID address and the TLS value.
pub const CLONE_CHILD_TID_ARG: usize = 4;
pub const CLONE_TLS_ARG: usize = 3;

/// The ELF machine `execve` runs (EM_AARCH64), the `AT_PLATFORM` string, `AT_HWCAP`
/// (HWCAP_FP | HWCAP_ASIMD: what every ARMv8-A CPU here has) and `uname`'s machine.
pub const ELF_MACHINE: u16 = 183;
pub const PLATFORM: &[u8] = b"aarch64\0";
pub const HWCAP: u64 = 0x3;
pub const UNAME_MACHINE: &[u8] = b"aarch64";

/// `struct stat` of asm-generic (include/uapi/asm-generic/stat.h): 128 bytes, 32-bit mode,
/// nlink and blksize, where x86_64's is 144 (`abi::Stat`, from which it is filled).
#[repr(C)]
#[derive(Clone, Copy, Debug, zerocopy::IntoBytes, zerocopy::Immutable)]
pub struct Stat {
    st_dev: u64,
    st_ino: u64,
    st_mode: u32,
    st_nlink: u32,
    st_uid: u32,
    st_gid: u32,
    st_rdev: u64,
    __pad1: u64,
    st_size: i64,
    st_blksize: i32,
    __pad2: i32,
    st_blocks: i64,
    st_atime: i64,
    st_atime_nsec: i64,
    st_mtime: i64,
    st_mtime_nsec: i64,
    st_ctime: i64,
    st_ctime_nsec: i64,
    __unused: [u32; 2],
}
const _: () = assert!(core::mem::size_of::<Stat>() == 128);
const _: () = assert!(core::mem::offset_of!(Stat, st_size) == 48);
const _: () = assert!(core::mem::offset_of!(Stat, st_blocks) == 64);

impl From<&crate::syscall::abi::Stat> for Stat {
    fn from(s: &crate::syscall::abi::Stat) -> Self {
        Stat {
            st_dev: s.st_dev,
            st_ino: s.st_ino,
            st_mode: s.st_mode,
            st_nlink: s.st_nlink.min(u64::from(u32::MAX)) as u32,
            st_uid: s.st_uid,
            st_gid: s.st_gid,
            st_rdev: s.st_rdev,
            __pad1: 0,
            st_size: s.st_size,
            st_blksize: s.st_blksize.clamp(0, i64::from(i32::MAX)) as i32,
            __pad2: 0,
            st_blocks: s.st_blocks,
            st_atime: s.st_atime,
            st_atime_nsec: s.st_atime_nsec,
            st_mtime: s.st_mtime,
            st_mtime_nsec: s.st_mtime_nsec,
            st_ctime: s.st_ctime,
            st_ctime_nsec: s.st_ctime_nsec,
            __unused: [0; 2],
        }
    }
}

/// `struct epoll_event` on arm64: not packed (16 bytes, `data` at 8), unlike x86_64's.
#[repr(C)]
#[derive(Clone, Copy, Debug, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable)]
pub struct EpollEvent {
    pub events: u32,
    _pad: u32,
    pub data: u64,
}
const _: () = assert!(core::mem::size_of::<EpollEvent>() == 16);

pub fn epoll_event(events: u32, data: u64) -> EpollEvent {
    EpollEvent {
        events,
        _pad: 0,
        data,
    }
}

/// `struct stat` in arm64's layout.
pub fn stat(s: &crate::fs::node::Stat) -> Stat {
    Stat::from(&crate::syscall::abi::Stat::from(s))
}

/// Open flags where arm64 numbers them apart from x86_64 (arch/arm64/include/uapi/asm/
/// fcntl.h): (arm64, x86_64) for O_DIRECTORY, O_NOFOLLOW, O_DIRECT, O_LARGEFILE.
const OPEN_FLAG_MAP: [(u32, u32); 4] = [
    (0o40000, 0o200000),
    (0o100000, 0o400000),
    (0o200000, 0o40000),
    (0o400000, 0o100000),
];
const OPEN_FLAG_BITS: u32 = 0o740000;

/// Open flags as the kernel numbers them (x86_64's) from arm64's.
pub fn open_flags_in(f: u32) -> u32 {
    OPEN_FLAG_MAP
        .iter()
        .filter(|(arm, _)| f & arm != 0)
        .fold(f & !OPEN_FLAG_BITS, |acc, (_, x86)| acc | x86)
}

/// Open flags as arm64 numbers them, from the kernel's (x86_64's).
pub fn open_flags_out(f: u32) -> u32 {
    OPEN_FLAG_MAP
        .iter()
        .filter(|(_, x86)| f & x86 != 0)
        .fold(f & !OPEN_FLAG_BITS, |acc, (arm, _)| acc | arm)
}
