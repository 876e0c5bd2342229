//! The `extern "C"` hypercalls: every `rumpuser_*` symbol of `rumpuser.h` version 17.
//!
//! Each shim only turns C arguments into Rust values (checking what can be checked: null
//! pointers, flag values, UTF-8 paths) and calls the safe code in `locks`, `bio` and the
//! installed [`Host`](crate::Host). Return values are NetBSD errno numbers.

// Safety contract of every function here: called by the rump kernel (C) as rumpuser(3) /
// pci_user.h specify — pointers valid for the documented access, lock objects from the
// matching `*_init` and not yet destroyed.
#![allow(clippy::missing_safety_doc)]

use core::ffi::{CStr, c_char, c_int, c_void};
use core::ptr::{self, NonNull};

use crate::errno::{Errno, ret};
use crate::host::{FileType, OpenFlags, SyncFlags, ThreadCookie};
use crate::hyp::{self, Hyperup};
use crate::locks::{Condvar, Mutex, RelTimeout, RwLock};
use crate::recycle::Recycler;
use crate::sync::RwMode;
use crate::{host, params, printf};

mod bio;
mod files;
mod threads;

pub use bio::*;
pub use files::*;
pub use threads::*;

pub const RUMPUSER_VERSION: c_int = 17;

// The constants of rumpuser.h, under their C names (bindings/tests checks them against the
// generated ones).
pub const RUMPUSER_OPEN_RDONLY: c_int = 0x0000;
pub const RUMPUSER_OPEN_WRONLY: c_int = 0x0001;
pub const RUMPUSER_OPEN_RDWR: c_int = 0x0002;
pub const RUMPUSER_OPEN_ACCMODE: c_int = 0x0003;
pub const RUMPUSER_OPEN_CREATE: c_int = 0x0004;
pub const RUMPUSER_OPEN_EXCL: c_int = 0x0008;
pub const RUMPUSER_OPEN_BIO: c_int = 0x0010;
pub const RUMPUSER_FT_OTHER: c_int = FileType::Other as c_int;
pub const RUMPUSER_FT_DIR: c_int = FileType::Dir as c_int;
pub const RUMPUSER_FT_REG: c_int = FileType::Reg as c_int;
pub const RUMPUSER_FT_BLK: c_int = FileType::Blk as c_int;
pub const RUMPUSER_FT_CHR: c_int = FileType::Chr as c_int;
pub const RUMPUSER_BIO_READ: c_int = 0x01;
pub const RUMPUSER_BIO_WRITE: c_int = 0x02;
pub const RUMPUSER_BIO_SYNC: c_int = 0x04;
pub const RUMPUSER_IOV_NOSEEK: i64 = -1;
pub const RUMPUSER_SYNCFD_READ: c_int = 0x01;
pub const RUMPUSER_SYNCFD_WRITE: c_int = 0x02;
pub const RUMPUSER_SYNCFD_BOTH: c_int = RUMPUSER_SYNCFD_READ | RUMPUSER_SYNCFD_WRITE;
pub const RUMPUSER_SYNCFD_BARRIER: c_int = 0x04;
pub const RUMPUSER_SYNCFD_SYNC: c_int = 0x08;
pub const RUMPUSER_CLOCK_RELWALL: c_int = 0;
pub const RUMPUSER_CLOCK_ABSMONO: c_int = 1;
pub const RUMPUSER_PANIC: c_int = -1;
pub const RUMPUSER_RANDOM_HARD: c_int = 0x01;
pub const RUMPUSER_RANDOM_NOWAIT: c_int = 0x02;
pub const RUMPUSER_LWP_CREATE: c_int = 0;
pub const RUMPUSER_LWP_DESTROY: c_int = 1;
pub const RUMPUSER_LWP_SET: c_int = 2;
pub const RUMPUSER_LWP_CLEAR: c_int = 3;
pub const RUMPUSER_MTX_SPIN: c_int = crate::locks::MTX_SPIN;
pub const RUMPUSER_MTX_KMUTEX: c_int = crate::locks::MTX_KMUTEX;
pub const RUMPUSER_RW_READER: c_int = 0;
pub const RUMPUSER_RW_WRITER: c_int = 1;
pub const RUMPUSER_PARAM_NCPU: &str = params::PARAM_NCPU;
pub const RUMPUSER_PARAM_HOSTNAME: &str = params::PARAM_HOSTNAME;

// Opaque C names for the lock objects.
pub type RumpuserMtx = Mutex;
pub type RumpuserRw = RwLock;
pub type RumpuserCv = Condvar;

/// `struct rumpuser_iovec`.
#[repr(C)]
pub struct RumpuserIovec {
    pub iov_base: *mut c_void,
    pub iov_len: usize,
}

/// `rump_biodone_fn`.
pub type BiodoneFn = unsafe extern "C" fn(*mut c_void, usize, c_int);

/// `rump_modinit_fn` (`const struct modinfo *const *, size_t`), for `rumpuser_dl_bootstrap`.
pub type RumpModinitFn = unsafe extern "C" fn(*const *const c_void, usize);
/// `rump_symload_fn` (`void *, uint64_t, char *, uint64_t`).
pub type RumpSymloadFn = unsafe extern "C" fn(*mut c_void, u64, *mut c_char, u64) -> c_int;
/// `rump_compload_fn` (`const struct rump_component *`).
pub type RumpComploadFn = unsafe extern "C" fn(*const c_void);

fn path_arg<'a>(p: *const c_char) -> Result<&'a str, Errno> {
    if p.is_null() {
        return Err(Errno::EFAULT);
    }
    // SAFETY: rump passes NUL-terminated path strings that live for the call.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str().map_err(|_| Errno::EINVAL)
}

/// Writes `v` through an out-pointer if it is not null.
fn put<T>(p: *mut T, v: T) {
    if !p.is_null() {
        // SAFETY: rump's out-pointers point at a writable, aligned T (checked non-null).
        unsafe { p.write(v) };
    }
}

// ---- init, parameters, errno ----------------------------------------------------------------

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_init(version: c_int, hyp: *const Hyperup) -> c_int {
    if version != RUMPUSER_VERSION {
        host::host().console_write(
            b"rumpuser: hypercall version mismatch (kernel wants another than 17)\n",
        );
        return Errno::EINVAL.code();
    }
    if hyp.is_null() {
        return Errno::EINVAL.code();
    }
    // SAFETY: rump passes a valid table; we copy it.
    hyp::install(unsafe { *hyp });
    0
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_getparam(
    name: *const c_char,
    buf: *mut c_void,
    blen: usize,
) -> c_int {
    let name = match path_arg(name) {
        Ok(n) => n,
        Err(e) => return e.code(),
    };
    if buf.is_null() || blen == 0 {
        return Errno::EINVAL.code();
    }
    // SAFETY: rump gives a writable buffer of blen bytes.
    let out = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), blen) };
    ret(params::getparam(host::host(), name, out))
}

/// `rumpuser_seterrno`: the errno of the calling thread for `rump_sys_*` callers. With `std`
/// it is the C library's errno; otherwise the host's per-thread slot ([`Host::set_errno`]).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_seterrno(error: c_int) {
    #[cfg(feature = "std")]
    crate::std_host::set_errno(error);
    #[cfg(not(feature = "std"))]
    crate::host::host().set_errno(error);
}

// ---- memory ----------------------------------------------------------------------------------

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_malloc(
    len: usize,
    align: c_int,
    memp: *mut *mut c_void,
) -> c_int {
    if memp.is_null() {
        return Errno::EINVAL.code();
    }
    let align = if align <= 0 {
        core::mem::size_of::<usize>()
    } else {
        align as usize
    };
    if !align.is_power_of_two() {
        return Errno::EINVAL.code();
    }
    match host::host().alloc(len, align) {
        Ok(p) => {
            put(memp, p.as_ptr().cast());
            0
        }
        Err(e) => {
            put(memp, ptr::null_mut());
            e.code()
        }
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_free(p: *mut c_void, len: usize) {
    if let Some(p) = NonNull::new(p.cast::<u8>()) {
        // SAFETY: rump frees only what rumpuser_malloc gave it, with the requested length.
        unsafe { host::host().free(p, len) };
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_anonmmap(
    _pref: *mut c_void,
    _len: usize,
    _alignbit: c_int,
    _exec: c_int,
    memp: *mut *mut c_void,
) -> c_int {
    put(memp, ptr::null_mut());
    Errno::ENOSYS.code()
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_unmap(_p: *mut c_void, _len: usize) {}

// ---- console -------------------------------------------------------------------------------

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_putchar(c: c_int) {
    host::host().putchar(c as u8);
}

#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // read by the x86_64 entry
struct VaArgs {
    regs: *const u64,
    stack: *const u64,
    idx: usize,
}

impl printf::Args for VaArgs {
    fn next(&mut self) -> u64 {
        let i = self.idx;
        self.idx += 1;
        // SAFETY: the dprintf entry saved the five integer argument registers after `fmt` at
        // `regs` and points `stack` at the caller's stack arguments; the format string (the
        // caller's promise) says how many there are.
        unsafe {
            if i < 5 {
                *self.regs.add(i)
            } else {
                *self.stack.add(i - 5)
            }
        }
    }
    fn cstr(&self, p: u64) -> &[u8] {
        // SAFETY: a %s argument is a NUL-terminated string (the caller's promise).
        unsafe { CStr::from_ptr(p as usize as *const c_char).to_bytes() }
    }
}

/// The body of `rumpuser_dprintf`, called by its entry stub with the saved arguments.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // the entry is x86_64's
extern "C" fn dprintf_impl(fmt: *const c_char, regs: *const u64, stack: *const u64) {
    if fmt.is_null() {
        return;
    }
    // SAFETY: fmt is the caller's NUL-terminated format string.
    let fmt = unsafe { CStr::from_ptr(fmt) }.to_bytes();
    let h = host::host();
    printf::format(
        fmt,
        &mut VaArgs {
            regs,
            stack,
            idx: 0,
        },
        &mut |s| h.console_write(s),
    );
}

/// `void rumpuser_dprintf(const char *fmt, ...)`. Stable Rust cannot define C-variadic
/// functions, so this entry saves the integer argument registers (`rsi, rdx, rcx, r8, r9`)
/// in order and passes them, with the address of the stack arguments, to `dprintf_impl`.
#[cfg(target_arch = "x86_64")]
#[unsafe(no_mangle)]
#[unsafe(naked)]
pub unsafe extern "C" fn rumpuser_dprintf() {
    core::arch::naked_asm!(
        "push rbp",
        "mov rbp, rsp",
        "push r9",
        "push r8",
        "push rcx",
        "push rdx",
        "push rsi",
        "mov rsi, rsp",
        "lea rdx, [rbp + 16]",
        "sub rsp, 8",
        "call {imp}",
        "leave",
        "ret",
        imp = sym dprintf_impl,
    )
}

/// `rumpuser_dprintf`'s address for `link_all`. Its variadic entry is written for the x86_64
/// calling convention, and rump is cross-built for x86_64 alone (issue 19): elsewhere there
/// is none, and 0 (not counted) stands in its slot.
fn dprintf_entry() -> usize {
    #[cfg(target_arch = "x86_64")]
    return rumpuser_dprintf as *const () as usize;
    #[cfg(not(target_arch = "x86_64"))]
    0
}

// ---- clocks and randomness -----------------------------------------------------------------

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_clock_gettime(
    which: c_int,
    sec: *mut i64,
    nsec: *mut core::ffi::c_long,
) -> c_int {
    let h = host::host();
    let (s, ns) = match which {
        RUMPUSER_CLOCK_RELWALL => {
            let (s, ns) = h.wall_clock();
            (s, i64::from(ns))
        }
        RUMPUSER_CLOCK_ABSMONO => {
            let t = h.monotonic_ns();
            ((t / 1_000_000_000) as i64, (t % 1_000_000_000) as i64)
        }
        _ => return Errno::EINVAL.code(),
    };
    put(sec, s);
    put(nsec, ns as core::ffi::c_long);
    0
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_clock_sleep(
    which: c_int,
    sec: i64,
    nsec: core::ffi::c_long,
) -> c_int {
    let h = host::host();
    let ns = u64::try_from(i128::from(sec.max(0)) * 1_000_000_000 + i128::from(nsec.max(0)))
        .unwrap_or(u64::MAX);
    match which {
        RUMPUSER_CLOCK_RELWALL => {
            let deadline = h.monotonic_ns().saturating_add(ns);
            hyp::without_vcpu(|| h.sleep_until(deadline));
        }
        RUMPUSER_CLOCK_ABSMONO => hyp::without_vcpu(|| h.sleep_until(ns)),
        _ => return Errno::EINVAL.code(),
    }
    0
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_getrandom(
    buf: *mut c_void,
    len: usize,
    flags: c_int,
    retp: *mut usize,
) -> c_int {
    if buf.is_null() && len > 0 {
        return Errno::EFAULT.code();
    }
    if flags & !(RUMPUSER_RANDOM_HARD | RUMPUSER_RANDOM_NOWAIT) != 0 {
        return Errno::EINVAL.code();
    }
    let out: &mut [u8] = if len == 0 {
        &mut []
    } else {
        // SAFETY: rump gives a writable buffer of len bytes.
        unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), len) }
    };
    match host::host().getrandom(
        out,
        flags & RUMPUSER_RANDOM_HARD != 0,
        flags & RUMPUSER_RANDOM_NOWAIT != 0,
    ) {
        Ok(n) => {
            put(retp, n);
            0
        }
        Err(e) => e.code(),
    }
}

// ---- process ---------------------------------------------------------------------------------

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_kill(pid: i64, sig: c_int) -> c_int {
    ret(host::host().kill(pid, sig))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_exit(code: c_int) -> ! {
    let h = host::host();
    h.console_write(b"halted\n");
    h.exit(code, code == RUMPUSER_PANIC)
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_daemonize_begin() -> c_int {
    Errno::ENOSYS.code()
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_daemonize_done(_error: c_int) -> c_int {
    Errno::ENOSYS.code()
}

/// Components reach the rump kernel through ELF link sets in a static image, so there is
/// nothing to load.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_dl_bootstrap(
    _modinit: Option<RumpModinitFn>,
    _symload: Option<RumpSymloadFn>,
    _compload: Option<RumpComploadFn>,
) {
}

/// References every hypercall symbol, so that linking a test or image against the rump
/// archives pulls them all in even though nothing in Rust calls them. Returns how many.
pub fn link_all() -> usize {
    let all: [usize; 62] = [
        rumpuser_init as *const () as usize,
        rumpuser_getparam as *const () as usize,
        rumpuser_seterrno as *const () as usize,
        rumpuser_malloc as *const () as usize,
        rumpuser_free as *const () as usize,
        rumpuser_anonmmap as *const () as usize,
        rumpuser_unmap as *const () as usize,
        rumpuser_putchar as *const () as usize,
        dprintf_entry(),
        rumpuser_clock_gettime as *const () as usize,
        rumpuser_clock_sleep as *const () as usize,
        rumpuser_getrandom as *const () as usize,
        rumpuser_open as *const () as usize,
        rumpuser_close as *const () as usize,
        rumpuser_getfileinfo as *const () as usize,
        rumpuser_bio as *const () as usize,
        rumpuser_iovread as *const () as usize,
        rumpuser_iovwrite as *const () as usize,
        rumpuser_syncfd as *const () as usize,
        rumpuser_thread_create as *const () as usize,
        rumpuser_thread_exit as *const () as usize,
        rumpuser_thread_join as *const () as usize,
        rumpuser_curlwpop as *const () as usize,
        rumpuser_curlwp as *const () as usize,
        rumpuser_mutex_init as *const () as usize,
        rumpuser_mutex_enter as *const () as usize,
        rumpuser_mutex_enter_nowrap as *const () as usize,
        rumpuser_mutex_tryenter as *const () as usize,
        rumpuser_mutex_exit as *const () as usize,
        rumpuser_mutex_destroy as *const () as usize,
        rumpuser_mutex_owner as *const () as usize,
        rumpuser_rw_init as *const () as usize,
        rumpuser_rw_enter as *const () as usize,
        rumpuser_rw_tryenter as *const () as usize,
        rumpuser_rw_tryupgrade as *const () as usize,
        rumpuser_rw_downgrade as *const () as usize,
        rumpuser_rw_exit as *const () as usize,
        rumpuser_rw_destroy as *const () as usize,
        rumpuser_rw_held as *const () as usize,
        rumpuser_cv_init as *const () as usize,
        rumpuser_cv_destroy as *const () as usize,
        rumpuser_cv_wait as *const () as usize,
        rumpuser_cv_wait_nowrap as *const () as usize,
        rumpuser_cv_timedwait as *const () as usize,
        rumpuser_cv_signal as *const () as usize,
        rumpuser_cv_broadcast as *const () as usize,
        rumpuser_cv_has_waiters as *const () as usize,
        rumpuser_kill as *const () as usize,
        rumpuser_exit as *const () as usize,
        rumpuser_daemonize_begin as *const () as usize,
        rumpuser_daemonize_done as *const () as usize,
        rumpuser_dl_bootstrap as *const () as usize,
        crate::pci::rumpcomp_pci_confread as *const () as usize,
        crate::pci::rumpcomp_pci_confwrite as *const () as usize,
        crate::pci::rumpcomp_pci_map as *const () as usize,
        crate::pci::rumpcomp_pci_iospace_init as *const () as usize,
        crate::pci::rumpcomp_pci_dmalloc as *const () as usize,
        crate::pci::rumpcomp_pci_dmamem_map as *const () as usize,
        crate::pci::rumpcomp_pci_dmafree as *const () as usize,
        crate::pci::rumpcomp_pci_virt_to_mach as *const () as usize,
        crate::pci::rumpcomp_pci_irq_map as *const () as usize,
        crate::pci::rumpcomp_pci_irq_establish as *const () as usize,
    ];
    core::hint::black_box(&all)
        .iter()
        .filter(|&&p| p != 0)
        .count()
}

/// The FileType numbering is the C one.
const _: () = assert!(FileType::Blk as i32 == 3);
