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
use crate::{bio, host, params, printf};

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

// ---- files and block I/O -------------------------------------------------------------------

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_open(
    path: *const c_char,
    ruflags: c_int,
    fdp: *mut c_int,
) -> c_int {
    let path = match path_arg(path) {
        Ok(p) => p,
        Err(e) => return e.code(),
    };
    let (read, write) = match ruflags & RUMPUSER_OPEN_ACCMODE {
        RUMPUSER_OPEN_RDONLY => (true, false),
        RUMPUSER_OPEN_WRONLY => (false, true),
        RUMPUSER_OPEN_RDWR => (true, true),
        _ => return Errno::EINVAL.code(),
    };
    let known =
        RUMPUSER_OPEN_ACCMODE | RUMPUSER_OPEN_CREATE | RUMPUSER_OPEN_EXCL | RUMPUSER_OPEN_BIO;
    if ruflags & !known != 0 {
        return Errno::EINVAL.code();
    }
    let flags = OpenFlags {
        read,
        write,
        create: ruflags & RUMPUSER_OPEN_CREATE != 0,
        excl: ruflags & RUMPUSER_OPEN_EXCL != 0,
        bio: ruflags & RUMPUSER_OPEN_BIO != 0,
    };
    match hyp::without_vcpu(|| host::host().open(path, flags)) {
        Ok(fd) => {
            put(fdp, fd);
            0
        }
        Err(e) => e.code(),
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_close(fd: c_int) -> c_int {
    ret(host::host().close(fd))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_getfileinfo(
    path: *const c_char,
    sizep: *mut u64,
    ftp: *mut c_int,
) -> c_int {
    let path = match path_arg(path) {
        Ok(p) => p,
        Err(e) => return e.code(),
    };
    match host::host().file_info(path) {
        Ok((size, ft)) => {
            put(sizep, size);
            put(ftp, ft as c_int);
            0
        }
        Err(e) => e.code(),
    }
}

/// A queued block I/O request (raw pointers from rump, handed to the bio thread).
pub struct BioReq {
    pub fd: c_int,
    pub write: bool,
    pub sync: bool,
    pub data: *mut u8,
    pub len: usize,
    pub off: u64,
    pub done: BiodoneFn,
    pub arg: *mut c_void,
}

// SAFETY: the request's buffer and argument stay valid until `done` is called (rump's bio
// contract); exactly one thread (the bio thread) uses them after submission.
unsafe impl Send for BioReq {}

impl BioReq {
    /// Performs the I/O; returns (bytes, NetBSD errno).
    pub fn perform(&self) -> (usize, c_int) {
        bio_io(
            self.fd, self.write, self.sync, self.data, self.len, self.off,
        )
    }

    /// Whether `next` continues this request on the disk, in the same direction (its buffer
    /// may be anywhere), so that the two can be done as one I/O.
    pub fn followed_on_disk_by(&self, next: &BioReq) -> bool {
        self.fd == next.fd && self.write == next.write && self.off + self.len as u64 == next.off
    }

    /// Whether `next` continues this request both on the disk and in memory — NetBSD splits
    /// one mapped run of pages into MAXPHYS-sized bios like that — so that the two can be done
    /// as one I/O straight into (or from) rump's memory.
    pub fn continued_by(&self, next: &BioReq) -> bool {
        self.followed_on_disk_by(next) && self.data.wrapping_add(self.len) == next.data
    }

    /// Calls rump's completion callback (the caller holds a vCPU with its own lwp).
    pub fn complete(self, n: usize, error: c_int) {
        // SAFETY: rump's callback with its own argument, called once.
        unsafe { (self.done)(self.arg, n, error) }
    }
}

fn bio_io(
    fd: c_int,
    write: bool,
    sync: bool,
    data: *mut u8,
    len: usize,
    off: u64,
) -> (usize, c_int) {
    let h = host::host();
    let r = if write {
        // SAFETY: rump's buffer of len bytes (or a run of such buffers, one after the other:
        // `continued_by`), valid until completion.
        let buf = unsafe { core::slice::from_raw_parts(data, len) };
        if sync {
            h.write_sync_at(fd, buf, off)
        } else {
            h.write_at(fd, buf, Some(off))
        }
    } else {
        // SAFETY: as above, writable.
        let buf = unsafe { core::slice::from_raw_parts_mut(data, len) };
        h.read_at(fd, buf, Some(off))
    };
    match r {
        Ok(n) => (n, 0),
        Err(e) => (0, e.code()),
    }
}

/// Performs a run of requests, each `followed_on_disk_by` the one before, as one I/O: straight
/// into rump's memory when each also continues the one before there, else through a buffer from
/// the host (read-ahead comes as one 64 KiB request per separately mapped chunk, and one
/// device request per MiB beats sixteen). Returns each request's (bytes, NetBSD errno). If the
/// joint I/O fails, or no buffer can be had, every request is done alone, so each gets its own
/// result.
pub fn perform_run(run: &[BioReq]) -> alloc::vec::Vec<(usize, c_int)> {
    let Some(first) = run.first() else {
        return alloc::vec::Vec::new();
    };
    if run.len() == 1 {
        return alloc::vec![first.perform()];
    }
    let total: usize = run.iter().map(|r| r.len).sum();
    let sync = run.iter().any(|r| r.sync);
    let (mut n, err) = if run.windows(2).all(|w| w[0].continued_by(&w[1])) {
        bio_io(first.fd, first.write, sync, first.data, total, first.off)
    } else if let Some(r) = vectored(run, sync) {
        r
    } else {
        match bounce(run, total, sync) {
            Some(r) => r,
            None => return run.iter().map(BioReq::perform).collect(),
        }
    };
    if err != 0 {
        return run.iter().map(BioReq::perform).collect();
    }
    run.iter()
        .map(|r| {
            let k = n.min(r.len);
            n -= k;
            (k, 0)
        })
        .collect()
}

/// One vectored host I/O straight into (or from) the run's buffers; None if the host has none.
fn vectored(run: &[BioReq], sync: bool) -> Option<(usize, c_int)> {
    let h = host::host();
    let first = run.first()?;
    // Rump never has two requests in flight on the same memory; make sure before handing out
    // slices that exist at the same time.
    let mut spans: alloc::vec::Vec<(usize, usize)> = run
        .iter()
        .map(|r| (r.data as usize, r.data as usize + r.len))
        .collect();
    spans.sort_unstable();
    if spans.windows(2).any(|w| w[0].1 > w[1].0) {
        return None;
    }
    let r = if first.write {
        let bufs: alloc::vec::Vec<&[u8]> = run
            .iter()
            // SAFETY: rump's buffer of r.len bytes, valid until completion.
            .map(|r| unsafe { core::slice::from_raw_parts(r.data.cast_const(), r.len) })
            .collect();
        h.write_vectored_at(first.fd, &bufs, first.off, sync)?
    } else {
        let mut bufs: alloc::vec::Vec<&mut [u8]> = run
            .iter()
            // SAFETY: rump's writable buffer of r.len bytes, valid until completion; the
            // requests of a run do not overlap (they follow each other on the disk and each
            // buffer belongs to its own request).
            .map(|r| unsafe { core::slice::from_raw_parts_mut(r.data, r.len) })
            .collect();
        h.read_vectored_at(first.fd, &mut bufs, first.off)?
    };
    Some(match r {
        Ok(n) => (n, 0),
        Err(e) => (0, e.code()),
    })
}

/// One I/O for a run of requests through a page-aligned host buffer (the kernel host hands out
/// page multiples as physically contiguous memory, which the device reads and writes
/// directly). None if the host has no such buffer.
fn bounce(run: &[BioReq], total: usize, sync: bool) -> Option<(usize, c_int)> {
    const PAGE: usize = 4096;
    let h = host::host();
    let first = run.first()?;
    let size = total.next_multiple_of(PAGE);
    let p = h.alloc(size, PAGE).ok()?;
    // SAFETY: the host gave us `size` bytes, ours until the free below.
    let buf = unsafe { core::slice::from_raw_parts_mut(p.as_ptr(), size) };
    let r = if first.write {
        let mut at = 0;
        for r in run {
            // SAFETY: rump's buffer of r.len bytes, valid until completion.
            buf[at..at + r.len]
                .copy_from_slice(unsafe { core::slice::from_raw_parts(r.data, r.len) });
            at += r.len;
        }
        bio_io(first.fd, true, sync, buf.as_mut_ptr(), total, first.off)
    } else {
        let (n, err) = bio_io(first.fd, false, false, buf.as_mut_ptr(), total, first.off);
        if err == 0 {
            let (mut at, mut left) = (0, n);
            for r in run {
                let k = left.min(r.len);
                // SAFETY: rump's writable buffer of r.len bytes (k <= r.len), valid until
                // completion; it does not overlap ours.
                unsafe { core::slice::from_raw_parts_mut(r.data, k) }
                    .copy_from_slice(&buf[at..at + k]);
                at += r.len;
                left -= k;
            }
        }
        (n, err)
    };
    // SAFETY: allocated above with this size, no longer used.
    unsafe { h.free(p, size) };
    Some(r)
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_bio(
    fd: c_int,
    op: c_int,
    data: *mut c_void,
    dlen: usize,
    doff: i64,
    done: Option<BiodoneFn>,
    arg: *mut c_void,
) {
    let Some(done) = done else {
        host::host().console_write(b"rumpuser_bio: no completion callback\n");
        return;
    };
    let write = op & RUMPUSER_BIO_WRITE != 0;
    let bad = data.is_null()
        || doff < 0
        || (op & (RUMPUSER_BIO_READ | RUMPUSER_BIO_WRITE)) == 0
        || (op & RUMPUSER_BIO_READ != 0 && write);
    let req = BioReq {
        fd,
        write,
        sync: op & RUMPUSER_BIO_SYNC != 0,
        data: data.cast(),
        len: dlen,
        off: doff.max(0) as u64,
        done,
        arg,
    };
    if bad {
        // Complete with EINVAL in a rump context like any other completion.
        bio::submit_error(req, Errno::EINVAL);
        return;
    }
    if req.write && req.sync && host::host().bio_sync_inline() {
        bio::perform_inline(req);
        return;
    }
    bio::submit(req);
}

fn iov_slices<'a>(iov: *const RumpuserIovec, n: usize) -> Result<&'a [RumpuserIovec], Errno> {
    if n == 0 {
        return Ok(&[]);
    }
    if iov.is_null() {
        return Err(Errno::EFAULT);
    }
    // SAFETY: rump passes an array of n iovecs.
    Ok(unsafe { core::slice::from_raw_parts(iov, n) })
}

fn iov_off(off: i64) -> Option<u64> {
    if off == RUMPUSER_IOV_NOSEEK {
        None
    } else {
        Some(off as u64)
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_iovread(
    fd: c_int,
    iov: *mut RumpuserIovec,
    n: usize,
    off: i64,
    retp: *mut usize,
) -> c_int {
    let iov = match iov_slices(iov, n) {
        Ok(v) => v,
        Err(e) => return e.code(),
    };
    let h = host::host();
    let r = hyp::without_vcpu(|| {
        let mut total = 0usize;
        let mut pos = iov_off(off);
        for v in iov {
            if v.iov_len == 0 {
                continue;
            }
            if v.iov_base.is_null() {
                return Err(Errno::EFAULT);
            }
            // SAFETY: each iovec describes a writable buffer (rump's promise).
            let buf =
                unsafe { core::slice::from_raw_parts_mut(v.iov_base.cast::<u8>(), v.iov_len) };
            let got = h.read_at(fd, buf, pos)?;
            total += got;
            pos = pos.map(|p| p + got as u64);
            if got < v.iov_len {
                break;
            }
        }
        Ok(total)
    });
    match r {
        Ok(t) => {
            put(retp, t);
            0
        }
        Err(e) => e.code(),
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_iovwrite(
    fd: c_int,
    iov: *const RumpuserIovec,
    n: usize,
    off: i64,
    retp: *mut usize,
) -> c_int {
    let iov = match iov_slices(iov, n) {
        Ok(v) => v,
        Err(e) => return e.code(),
    };
    let h = host::host();
    let r = hyp::without_vcpu(|| {
        let mut total = 0usize;
        let mut pos = iov_off(off);
        for v in iov {
            if v.iov_len == 0 {
                continue;
            }
            if v.iov_base.is_null() {
                return Err(Errno::EFAULT);
            }
            // SAFETY: each iovec describes a readable buffer (rump's promise).
            let buf = unsafe { core::slice::from_raw_parts(v.iov_base.cast::<u8>(), v.iov_len) };
            let put_n = h.write_at(fd, buf, pos)?;
            total += put_n;
            pos = pos.map(|p| p + put_n as u64);
            if put_n < v.iov_len {
                break;
            }
        }
        Ok(total)
    });
    match r {
        Ok(t) => {
            put(retp, t);
            0
        }
        Err(e) => e.code(),
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_syncfd(fd: c_int, flags: c_int, _start: u64, _len: u64) -> c_int {
    if flags & RUMPUSER_SYNCFD_BOTH == 0 {
        return Errno::EINVAL.code();
    }
    if flags & RUMPUSER_SYNCFD_WRITE == 0 {
        return 0;
    }
    let f = SyncFlags {
        read: flags & RUMPUSER_SYNCFD_READ != 0,
        write: true,
        barrier: flags & RUMPUSER_SYNCFD_BARRIER != 0,
        sync: flags & RUMPUSER_SYNCFD_SYNC != 0,
    };
    ret(hyp::without_vcpu(|| host::host().sync(fd, f)))
}

// ---- threads and curlwp ----------------------------------------------------------------------

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_thread_create(
    f: Option<crate::host::ThreadEntry>,
    arg: *mut c_void,
    name: *const c_char,
    mustjoin: c_int,
    _pri: c_int,
    cpuidx: c_int,
    cookie: *mut *mut c_void,
) -> c_int {
    let Some(f) = f else {
        return Errno::EINVAL.code();
    };
    if mustjoin != 0 && cookie.is_null() {
        return Errno::EINVAL.code();
    }
    let name = if name.is_null() {
        "rump"
    } else {
        path_arg(name).unwrap_or("rump")
    };
    match host::host().thread_create(f, arg, name, mustjoin != 0, cpuidx) {
        Ok(c) => {
            if mustjoin != 0 {
                put(cookie, c.map_or(0, |c| c.0) as *mut c_void);
            }
            0
        }
        Err(e) => e.code(),
    }
}

/// `C-unwind`: on the std host this ends in `pthread_exit`, a forced unwind that must be allowed
/// to pass this frame.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn rumpuser_thread_exit() -> ! {
    host::host().thread_exit()
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_thread_join(cookie: *mut c_void) -> c_int {
    if cookie.is_null() {
        return Errno::EINVAL.code();
    }
    let c = ThreadCookie(cookie as usize);
    ret(hyp::without_vcpu(|| host::host().thread_join(c)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_curlwpop(op: c_int, l: *mut c_void) {
    let h = host::host();
    match op {
        RUMPUSER_LWP_CREATE | RUMPUSER_LWP_DESTROY => {}
        RUMPUSER_LWP_SET => {
            debug_assert_eq!(h.curlwp(), 0, "LWP_SET over an existing curlwp");
            h.set_curlwp(l as usize);
        }
        RUMPUSER_LWP_CLEAR => {
            debug_assert_eq!(h.curlwp(), l as usize, "LWP_CLEAR of another lwp");
            h.set_curlwp(0);
        }
        _ => h.console_write(b"rumpuser_curlwpop: bad op\n"),
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn rumpuser_curlwp() -> *mut c_void {
    host::current_curlwp() as *mut c_void
}

// ---- mutexes ---------------------------------------------------------------------------------

static MUTEXES: crate::CacheAligned<Recycler<Mutex>> = crate::CacheAligned(Recycler::new());
static RWLOCKS: crate::CacheAligned<Recycler<RwLock>> = crate::CacheAligned(Recycler::new());
static CONDVARS: crate::CacheAligned<Recycler<Condvar>> = crate::CacheAligned(Recycler::new());

/// Borrows a lock object rump got from our `*_init`.
fn obj<'a, T>(p: *mut T) -> &'a T {
    assert!(!p.is_null(), "rumpuser: null lock object");
    // SAFETY: rump passes only objects from rumpuser_{mutex,rw,cv}_init that it has not
    // destroyed; they are heap objects (see `recycle`) shared immutably (interior mutability).
    unsafe { &*p }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_mutex_init(mtxp: *mut *mut RumpuserMtx, flags: c_int) {
    assert!(!mtxp.is_null());
    put(mtxp, MUTEXES.make(Mutex::new(flags)));
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_mutex_enter(m: *mut RumpuserMtx) {
    obj(m).enter(host::host());
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_mutex_enter_nowrap(m: *mut RumpuserMtx) {
    obj(m).enter_nowrap(host::host());
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_mutex_tryenter(m: *mut RumpuserMtx) -> c_int {
    ret(obj(m).tryenter(host::host()))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_mutex_exit(m: *mut RumpuserMtx) {
    obj(m).exit();
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_mutex_destroy(m: *mut RumpuserMtx) {
    if !m.is_null() {
        // SAFETY: made by MUTEXES in rumpuser_mutex_init; rump destroys it once.
        unsafe { MUTEXES.destroy(m) };
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_mutex_owner(m: *mut RumpuserMtx, lp: *mut *mut c_void) {
    match obj(m).owner() {
        Some(o) => put(lp, o as *mut c_void),
        None => {
            host::host().console_write(b"panic: rumpuser_mutex_owner on a non-kmutex\n");
            host::host().exit(-1, true)
        }
    }
}

// ---- rwlocks ---------------------------------------------------------------------------------

fn rw_mode(m: c_int) -> Option<RwMode> {
    match m {
        RUMPUSER_RW_READER => Some(RwMode::Read),
        RUMPUSER_RW_WRITER => Some(RwMode::Write),
        _ => None,
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_rw_init(rwp: *mut *mut RumpuserRw) {
    assert!(!rwp.is_null());
    put(rwp, RWLOCKS.make(RwLock::new()));
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_rw_enter(mode: c_int, rw: *mut RumpuserRw) {
    let mode = rw_mode(mode).expect("rumpuser_rw_enter: bad mode");
    obj(rw).enter(host::host(), mode);
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_rw_tryenter(mode: c_int, rw: *mut RumpuserRw) -> c_int {
    match rw_mode(mode) {
        Some(m) => ret(obj(rw).tryenter(host::host(), m)),
        None => Errno::EINVAL.code(),
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_rw_tryupgrade(rw: *mut RumpuserRw) -> c_int {
    ret(obj(rw).tryupgrade(host::host()))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_rw_downgrade(rw: *mut RumpuserRw) {
    obj(rw).downgrade();
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_rw_exit(rw: *mut RumpuserRw) {
    obj(rw).exit();
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_rw_destroy(rw: *mut RumpuserRw) {
    if !rw.is_null() {
        // SAFETY: made by RWLOCKS in rumpuser_rw_init; destroyed once.
        unsafe { RWLOCKS.destroy(rw) };
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_rw_held(mode: c_int, rw: *mut RumpuserRw, rv: *mut c_int) {
    let v = rw_mode(mode).map_or(0, |m| obj(rw).held(host::host(), m));
    put(rv, v);
}

// ---- condition variables ---------------------------------------------------------------------

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_cv_init(cvp: *mut *mut RumpuserCv) {
    assert!(!cvp.is_null());
    put(cvp, CONDVARS.make(Condvar::new()));
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_cv_destroy(cv: *mut RumpuserCv) {
    if !cv.is_null() {
        // SAFETY: made by CONDVARS in rumpuser_cv_init; destroyed once.
        unsafe { CONDVARS.destroy(cv) };
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_cv_wait(cv: *mut RumpuserCv, m: *mut RumpuserMtx) {
    let _ = obj(cv).wait(host::host(), obj(m), None);
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_cv_wait_nowrap(cv: *mut RumpuserCv, m: *mut RumpuserMtx) {
    obj(cv).wait_nowrap(host::host(), obj(m));
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_cv_timedwait(
    cv: *mut RumpuserCv,
    m: *mut RumpuserMtx,
    sec: i64,
    nsec: i64,
) -> c_int {
    ret(obj(cv).wait(host::host(), obj(m), Some(RelTimeout { sec, nsec })))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_cv_signal(cv: *mut RumpuserCv) {
    obj(cv).signal();
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_cv_broadcast(cv: *mut RumpuserCv) {
    obj(cv).broadcast();
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_cv_has_waiters(cv: *mut RumpuserCv, n: *mut c_int) {
    put(n, obj(cv).has_waiters());
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
        rumpuser_dprintf as *const () as usize,
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
