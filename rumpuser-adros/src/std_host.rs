//! The `std` [`Host`]: POSIX threads (created with `pthread_create` so that rump's C thread
//! functions run directly and `rumpuser_thread_exit` can `pthread_exit` like NetBSD's host),
//! `std::thread` parking, `CLOCK_MONOTONIC` with absolute `clock_nanosleep`, `posix_memalign`,
//! regular files and block devices through `std::fs`, and `getrandom(2)`.
//!
//! Configuration: `RUMP_NCPU` (a number or `host`, default 2, as NetBSD's host), any
//! `RUMP_*` parameter from the environment, `ADROS_RUMP_PAGE_POOL=0` to allocate the rump
//! kernel's pages with `posix_memalign` like NetBSD's host instead of the page pool,
//! `ADROS_RUMP_BIO_THREADS=N` for N block-I/O threads instead of 1,
//! `ADROS_RUMP_BIO_SYNC_INLINE=0` to hand synchronous writes to the bio thread too.

use std::collections::HashMap;
use std::ffi::{CString, c_void};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};
use std::task::{Wake, Waker};
use std::thread::Thread;

use crate::errno::Errno;
use crate::host::{FileType, Host, OpenFlags, SyncFlags, ThreadCookie, ThreadEntry};

/// The process-wide std host (used automatically when no other host is installed).
pub static STD_HOST: StdHost = StdHost::new();

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

std::thread_local! {
    static WAKER: Waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    static CURLWP: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The calling thread's `curlwp` (see [`crate::host::curlwp`]).
#[inline(always)]
pub(crate) fn curlwp_slot() -> usize {
    CURLWP.with(|c| c.get())
}

const PAGE: usize = 4096;
/// Page-pool chunk size.
const CHUNK: usize = 2 << 20;

/// Free pages of the page pool. The rump kernel allocates its memory a page at a time
/// (`rumpuser_malloc(4096, 4096)`, page-aligned; other 4 KiB requests go to malloc): serving those from 2 MiB chunks mapped with `MAP_POPULATE`
/// instead of one `posix_memalign` each avoids glibc's per-block alignment padding and a host
/// page fault per page on first use. Pages are reused, never
/// returned to the host (the rump kernel caches its pages the same way).
static PAGES: crate::CacheAligned<Mutex<Vec<usize>>> = crate::CacheAligned(Mutex::new(Vec::new()));
/// Base addresses of the page pool's chunks.
static CHUNKS: crate::CacheAligned<Mutex<std::collections::BTreeSet<usize>>> =
    crate::CacheAligned(Mutex::new(std::collections::BTreeSet::new()));

/// `ADROS_RUMP_PAGE_POOL=0` turns the page pool off (for A/B measurements).
fn page_pool_enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("ADROS_RUMP_PAGE_POOL").map_or(true, |v| v != "0"))
}

fn in_page_pool(p: usize) -> bool {
    CHUNKS
        .lock()
        .unwrap()
        .range(..=p)
        .next_back()
        .is_some_and(|&b| p < b + CHUNK)
}

fn page_alloc() -> Result<NonNull<u8>, Errno> {
    if let Some(p) = PAGES.lock().unwrap().pop() {
        return NonNull::new(p as *mut u8).ok_or(Errno::ENOMEM);
    }
    // A fresh chunk, populated in one call (one kernel entry instead of a fault per page).
    // No MADV_HUGEPAGE: with the common `defrag=madvise` setting its faults may stall in
    // direct compaction, which measured worse than small pages.
    // SAFETY: anonymous private mapping; no existing memory is touched.
    let raw = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            CHUNK,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
            -1,
            0,
        )
    };
    if raw == libc::MAP_FAILED {
        return Err(io_err(std::io::Error::last_os_error()));
    }
    let aligned = raw as usize;
    CHUNKS.lock().unwrap().insert(aligned);
    let mut free = PAGES.lock().unwrap();
    free.extend((1..CHUNK / PAGE).rev().map(|i| aligned + i * PAGE));
    drop(free);
    NonNull::new(aligned as *mut u8).ok_or(Errno::ENOMEM)
}

/// Set once `pwritev2(RWF_DSYNC)` failed as unsupported: synchronous writes then use a write
/// and `fdatasync`.
static NO_DSYNC: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The most iovecs one `preadv`/`pwritev` takes on Linux.
const IOV_MAX: usize = 1024;

/// Runs a vectored I/O call (`io(iovecs, bytes done so far)` → bytes or -1) until the iovecs
/// are done, EOF (0), or an error; returns the bytes transferred. After a short transfer the
/// iovecs are advanced past what was done.
fn vectored_loop(
    iov: &mut [libc::iovec],
    mut io: impl FnMut(&[libc::iovec], u64) -> isize,
) -> Result<usize, Errno> {
    let mut done = 0usize;
    let mut first = 0;
    while first < iov.len() {
        let n = io(&iov[first..], done as u64);
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(io_err(e));
        }
        if n == 0 {
            break;
        }
        let mut n = n as usize;
        done += n;
        while first < iov.len() && n >= iov[first].iov_len {
            n -= iov[first].iov_len;
            first += 1;
        }
        if n > 0 {
            let v = &mut iov[first];
            // SAFETY: n < iov_len: the advanced pointer stays inside the same buffer.
            v.iov_base = unsafe { v.iov_base.cast::<u8>().add(n) }.cast();
            v.iov_len -= n;
        }
    }
    Ok(done)
}

/// Open files by handle.
struct Files {
    slots: Vec<Option<Arc<File>>>,
}

pub struct StdHost {
    files: Mutex<Files>,
    params: Mutex<Option<HashMap<String, String>>>,
    capture: Mutex<Option<Vec<u8>>>,
}

fn io_err(e: std::io::Error) -> Errno {
    e.raw_os_error().map_or(Errno::EIO, Errno::from_linux)
}

/// Sets the C library's `errno` (for `rumpuser_seterrno`).
pub fn set_errno(e: i32) {
    // SAFETY: __errno_location returns the calling thread's errno slot.
    unsafe { *libc::__errno_location() = e };
}

impl Default for StdHost {
    fn default() -> Self {
        Self::new()
    }
}

impl StdHost {
    pub const fn new() -> StdHost {
        StdHost {
            files: Mutex::new(Files { slots: Vec::new() }),
            params: Mutex::new(None),
            capture: Mutex::new(None),
        }
    }

    /// Overrides a `rumpuser_getparam` value (also `_RUMPUSER_NCPU`) for this process;
    /// takes precedence over the environment.
    pub fn set_param(&self, name: &str, value: &str) {
        self.params
            .lock()
            .unwrap()
            .get_or_insert_with(HashMap::new)
            .insert(name.into(), value.into());
    }

    /// Starts (`true`) or stops capturing console output instead of writing it to stderr;
    /// returns what was captured so far.
    pub fn capture_console(&self, on: bool) -> Vec<u8> {
        let mut c = self.capture.lock().unwrap();
        let out = c.take().unwrap_or_default();
        if on {
            *c = Some(Vec::new());
        }
        out
    }

    fn param(&self, name: &str) -> Option<String> {
        self.params
            .lock()
            .unwrap()
            .as_ref()
            .and_then(|m| m.get(name).cloned())
    }

    fn file(&self, fd: i32) -> Result<Arc<File>, Errno> {
        let f = self.files.lock().unwrap();
        usize::try_from(fd)
            .ok()
            .and_then(|i| f.slots.get(i))
            .and_then(|s| s.clone())
            .ok_or(Errno::EBADF)
    }

    fn mono_now() -> u64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: valid out-pointer; CLOCK_MONOTONIC always exists on Linux.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
    }
}

impl Host for StdHost {
    fn current_waker(&self) -> Waker {
        WAKER.with(|w| w.clone())
    }

    fn park(&self) {
        std::thread::park();
    }

    fn yield_now(&self) {
        std::thread::yield_now();
    }

    fn park_until(&self, deadline_ns: u64) {
        let now = Self::mono_now();
        if deadline_ns > now {
            std::thread::park_timeout(std::time::Duration::from_nanos(deadline_ns - now));
        }
    }

    fn relax(&self) {
        std::hint::spin_loop();
    }

    #[allow(
        clippy::not_unsafe_ptr_arg_deref,
        reason = "arg is opaque: handed to the new thread's C entry"
    )]
    fn thread_create(
        &self,
        entry: ThreadEntry,
        arg: *mut c_void,
        name: &str,
        joinable: bool,
        _cpu: i32,
    ) -> Result<Option<ThreadCookie>, Errno> {
        // SAFETY: plain pthread calls with valid pointers; `entry` is a C-ABI function taking
        // `arg`, which is what pthread_create runs.
        unsafe {
            let mut attr: libc::pthread_attr_t = std::mem::zeroed();
            let rv = libc::pthread_attr_init(&mut attr);
            if rv != 0 {
                return Err(Errno::from_linux(rv));
            }
            let detach = if joinable {
                libc::PTHREAD_CREATE_JOINABLE
            } else {
                libc::PTHREAD_CREATE_DETACHED
            };
            libc::pthread_attr_setdetachstate(&mut attr, detach);
            let mut tid: libc::pthread_t = 0;
            let mut rv = libc::EAGAIN;
            // The same function with the unwind-permitting ABI tag; identical calling convention.
            let start: extern "C" fn(*mut c_void) -> *mut c_void = std::mem::transmute(entry);
            for _ in 0..10 {
                rv = libc::pthread_create(&mut tid, &attr, start, arg);
                if rv != libc::EAGAIN {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            libc::pthread_attr_destroy(&mut attr);
            if rv != 0 {
                return Err(Errno::from_linux(rv));
            }
            let short: String = name.chars().take(15).collect();
            if let Ok(c) = CString::new(short) {
                libc::pthread_setname_np(tid, c.as_ptr());
            }
            Ok(joinable.then_some(ThreadCookie(tid as usize)))
        }
    }

    fn thread_join(&self, cookie: ThreadCookie) -> Result<(), Errno> {
        // SAFETY: the cookie is a joinable pthread_t from thread_create, joined once.
        let rv = unsafe { libc::pthread_join(cookie.0 as libc::pthread_t, std::ptr::null_mut()) };
        if rv == 0 {
            Ok(())
        } else {
            Err(Errno::from_linux(rv))
        }
    }

    fn thread_exit(&self) -> ! {
        // SAFETY: called on a thread made by pthread_create (thread_create) from C code via the
        // rumpuser_thread_exit shim, which has no live Rust values with destructors.
        unsafe { libc::pthread_exit(std::ptr::null_mut()) }
    }

    fn curlwp(&self) -> usize {
        curlwp_slot()
    }

    fn set_curlwp(&self, lwp: usize) {
        CURLWP.with(|c| c.set(lwp));
    }

    fn monotonic_ns(&self) -> u64 {
        Self::mono_now()
    }

    fn wall_clock(&self) -> (i64, u32) {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        (d.as_secs() as i64, d.subsec_nanos())
    }

    fn sleep_until(&self, deadline_ns: u64) {
        let ts = libc::timespec {
            tv_sec: (deadline_ns / 1_000_000_000) as libc::time_t,
            tv_nsec: (deadline_ns % 1_000_000_000) as libc::c_long,
        };
        loop {
            // SAFETY: valid timespec; absolute sleep on the clock mono_now reads.
            let rv = unsafe {
                libc::clock_nanosleep(
                    libc::CLOCK_MONOTONIC,
                    libc::TIMER_ABSTIME,
                    &ts,
                    std::ptr::null_mut(),
                )
            };
            if rv != libc::EINTR {
                break;
            }
        }
    }

    fn alloc(&self, len: usize, align: usize) -> Result<NonNull<u8>, Errno> {
        if len == PAGE && align == PAGE && page_pool_enabled() {
            return page_alloc();
        }
        let align = align.max(std::mem::size_of::<usize>());
        let mut p: *mut c_void = std::ptr::null_mut();
        // SAFETY: valid out-pointer; align is a power of two multiple of sizeof(void *).
        let rv = unsafe { libc::posix_memalign(&mut p, align, len.max(1)) };
        if rv != 0 {
            return Err(Errno::from_linux(rv));
        }
        NonNull::new(p.cast()).ok_or(Errno::ENOMEM)
    }

    unsafe fn free(&self, ptr: NonNull<u8>, len: usize) {
        if len == PAGE && in_page_pool(ptr.as_ptr() as usize) {
            PAGES.lock().unwrap().push(ptr.as_ptr() as usize);
            return;
        }
        // SAFETY: ptr came from posix_memalign in alloc (the caller's contract).
        unsafe { libc::free(ptr.as_ptr().cast()) };
    }

    fn putchar(&self, c: u8) {
        self.console_write(&[c]);
    }

    fn console_write(&self, s: &[u8]) {
        if let Some(buf) = self.capture.lock().unwrap().as_mut() {
            buf.extend_from_slice(s);
            return;
        }
        let _ = std::io::stderr().write_all(s);
    }

    fn getenv(&self, name: &str) -> Option<String> {
        self.param(name).or_else(|| std::env::var(name).ok())
    }

    fn ncpu(&self) -> u32 {
        let v = self
            .param(crate::params::PARAM_NCPU)
            .or_else(|| std::env::var("RUMP_NCPU").ok());
        match v.as_deref() {
            Some("host") => std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
            Some(s) => s.parse().unwrap_or(2),
            None => 2,
        }
    }

    fn hostname(&self) -> String {
        if let Some(h) = self.param(crate::params::PARAM_HOSTNAME) {
            return h;
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let pid = std::process::id();
        if host.is_empty() {
            format!("rump-{pid:05}")
        } else {
            format!("rump-{pid:05}.{host}")
        }
    }

    fn getrandom(&self, buf: &mut [u8], _hard: bool, nowait: bool) -> Result<usize, Errno> {
        let flags = if nowait { libc::GRND_NONBLOCK } else { 0 };
        loop {
            // SAFETY: buf is a valid writable slice.
            let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), flags) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(io_err(e));
            }
        }
    }

    fn exit(&self, code: i32, panic: bool) -> ! {
        if panic {
            std::process::abort();
        }
        std::process::exit(code)
    }

    fn kill(&self, pid: i64, sig: i32) -> Result<(), Errno> {
        // NetBSD's host raises the signal on itself; only SIGABRT/SIGKILL-like requests from a
        // rump kernel matter in tests, and those come through rumpuser_exit. Accept and ignore.
        let _ = (pid, sig);
        Ok(())
    }

    fn open(&self, path: &str, flags: OpenFlags) -> Result<i32, Errno> {
        let mut o = OpenOptions::new();
        o.read(flags.read).write(flags.write);
        if flags.create && flags.excl {
            o.create_new(true);
        } else if flags.create {
            o.create(true);
        }
        o.mode(0o644);
        let f = o.open(path).map_err(io_err)?;
        let mut files = self.files.lock().unwrap();
        let idx = match files.slots.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                files.slots.push(None);
                files.slots.len() - 1
            }
        };
        files.slots[idx] = Some(Arc::new(f));
        i32::try_from(idx).map_err(|_| Errno::EMFILE)
    }

    fn close(&self, fd: i32) -> Result<(), Errno> {
        let mut files = self.files.lock().unwrap();
        let slot = usize::try_from(fd)
            .ok()
            .and_then(|i| files.slots.get_mut(i))
            .ok_or(Errno::EBADF)?;
        slot.take().map(|_| ()).ok_or(Errno::EBADF)
    }

    fn file_info(&self, path: &str) -> Result<(u64, FileType), Errno> {
        let m = std::fs::metadata(path).map_err(io_err)?;
        let ft = m.file_type();
        if ft.is_dir() {
            Ok((m.len(), FileType::Dir))
        } else if ft.is_file() {
            Ok((m.len(), FileType::Reg))
        } else if ft.is_block_device() || ft.is_char_device() {
            let mut f = File::open(path).map_err(io_err)?;
            let size = f.seek(SeekFrom::End(0)).map_err(io_err)?;
            Ok((
                size,
                if ft.is_block_device() {
                    FileType::Blk
                } else {
                    FileType::Chr
                },
            ))
        } else {
            Ok((0, FileType::Other))
        }
    }

    /// One thread, like NetBSD's host, unless `ADROS_RUMP_BIO_THREADS` says otherwise: a
    /// host file's I/O is a synchronous system call (mostly a copy from the page cache), rump
    /// issues a file read's bios one after the other, and more threads only competed with
    /// the reader for the rump vCPUs (measured: read after remount ~15 % slower and up to
    /// twice the CPU time with 4 threads on a loaded 2-core host).
    fn bio_threads(&self) -> usize {
        static N: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        *N.get_or_init(|| {
            std::env::var("ADROS_RUMP_BIO_THREADS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(1)
        })
    }

    /// No plug wait: a host file's I/O is a system call whether it carries 64 KiB or 1 MiB, the
    /// rump syscalls of a std program return without pulling the plug (only releasing a vCPU
    /// does), so a woken thread would mostly wait out the whole interval after read-ahead
    /// (measured: ~120 µs queued per request, a read after remount at a third of its speed).
    /// Requests queued while the thread does I/O are still joined (`preadv`/`pwritev`).
    fn bio_plug_ns(&self) -> u64 {
        0
    }

    /// Synchronous writes inline (`ADROS_RUMP_BIO_SYNC_INLINE=0`: through the bio thread).
    /// Measured on the create workload (two synchronous metadata writes per file): half the
    /// context switches, ~15 % less CPU, faster than the bio thread in 5 of 5 alternated runs.
    fn bio_sync_inline(&self) -> bool {
        static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *ON.get_or_init(|| std::env::var("ADROS_RUMP_BIO_SYNC_INLINE").map_or(true, |v| v != "0"))
    }

    fn read_at(&self, fd: i32, buf: &mut [u8], off: Option<u64>) -> Result<usize, Errno> {
        let f = self.file(fd)?;
        match off {
            Some(o) => {
                let mut done = 0;
                while done < buf.len() {
                    match f.read_at(&mut buf[done..], o + done as u64) {
                        Ok(0) => break,
                        Ok(n) => done += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(io_err(e)),
                    }
                }
                Ok(done)
            }
            None => (&*f).read(buf).map_err(io_err),
        }
    }

    fn write_at(&self, fd: i32, buf: &[u8], off: Option<u64>) -> Result<usize, Errno> {
        let f = self.file(fd)?;
        match off {
            Some(o) => f.write_all_at(buf, o).map(|()| buf.len()).map_err(io_err),
            None => (&*f).write(buf).map_err(io_err),
        }
    }

    /// `pwritev2(RWF_DSYNC)`: the write and a data sync of just its range in one call —
    /// what NetBSD's host does with `fsync_range(FDATASYNC)` on hosts that have it (on Linux
    /// it falls back to an `fsync` of the whole file, which also waits for every other dirty
    /// page of the image). Kernels without `RWF_DSYNC` get a write plus `fdatasync`.
    fn write_sync_at(&self, fd: i32, buf: &[u8], off: u64) -> Result<usize, Errno> {
        let f = self.file(fd)?;
        let mut done = 0;
        while done < buf.len() && !NO_DSYNC.load(std::sync::atomic::Ordering::Relaxed) {
            let iov = libc::iovec {
                iov_base: buf[done..].as_ptr() as *mut c_void,
                iov_len: buf.len() - done,
            };
            // SAFETY: one valid iovec over the unwritten rest of `buf`; `f` keeps the
            // descriptor open.
            let n = unsafe {
                libc::pwritev2(
                    f.as_raw_fd(),
                    &iov,
                    1,
                    (off + done as u64) as libc::off_t,
                    libc::RWF_DSYNC,
                )
            };
            if n > 0 {
                done += n as usize;
                continue;
            }
            if n == 0 {
                return Err(Errno::EIO);
            }
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => {}
                // No RWF_DSYNC here (old kernel, or a file system without it): write + sync.
                Some(libc::EOPNOTSUPP | libc::ENOSYS | libc::EINVAL) if done == 0 => {
                    NO_DSYNC.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                _ => return Err(io_err(e)),
            }
        }
        if done == buf.len() {
            return Ok(done);
        }
        f.write_all_at(&buf[done..], off + done as u64)
            .map_err(io_err)?;
        f.sync_data().map_err(io_err)?;
        Ok(buf.len())
    }

    /// `preadv`, repeated after a short read until EOF.
    fn read_vectored_at(
        &self,
        fd: i32,
        bufs: &mut [&mut [u8]],
        off: u64,
    ) -> Option<Result<usize, Errno>> {
        if bufs.len() > IOV_MAX {
            return None;
        }
        let f = match self.file(fd) {
            Ok(f) => f,
            Err(e) => return Some(Err(e)),
        };
        let mut iov: Vec<libc::iovec> = bufs
            .iter_mut()
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: b.len(),
            })
            .collect();
        Some(vectored_loop(&mut iov, |iov, at| {
            // SAFETY: the iovecs describe the caller's writable buffers (or their unread
            // tails); `f` keeps the descriptor open.
            unsafe {
                libc::preadv(
                    f.as_raw_fd(),
                    iov.as_ptr(),
                    iov.len() as libc::c_int,
                    (off + at) as libc::off_t,
                )
            }
        }))
    }

    /// `pwritev2` (with `RWF_DSYNC` for a synchronous write, as [`Host::write_sync_at`]).
    fn write_vectored_at(
        &self,
        fd: i32,
        bufs: &[&[u8]],
        off: u64,
        sync: bool,
    ) -> Option<Result<usize, Errno>> {
        if bufs.len() > IOV_MAX || (sync && NO_DSYNC.load(std::sync::atomic::Ordering::Relaxed)) {
            return None;
        }
        let f = match self.file(fd) {
            Ok(f) => f,
            Err(e) => return Some(Err(e)),
        };
        let mut iov: Vec<libc::iovec> = bufs
            .iter()
            .map(|b| libc::iovec {
                iov_base: b.as_ptr() as *mut c_void,
                iov_len: b.len(),
            })
            .collect();
        let flags = if sync { libc::RWF_DSYNC } else { 0 };
        let r = vectored_loop(&mut iov, |iov, at| {
            // SAFETY: the iovecs describe the caller's buffers (or their unwritten tails); `f`
            // keeps the descriptor open.
            unsafe {
                libc::pwritev2(
                    f.as_raw_fd(),
                    iov.as_ptr(),
                    iov.len() as libc::c_int,
                    (off + at) as libc::off_t,
                    flags,
                )
            }
        });
        match r {
            Err(Errno::EOPNOTSUPP | Errno::ENOSYS | Errno::EINVAL) if sync => {
                // No RWF_DSYNC: the caller bounces through write_sync_at's fallback.
                NO_DSYNC.store(true, std::sync::atomic::Ordering::Relaxed);
                None
            }
            Ok(n) if n < bufs.iter().map(|b| b.len()).sum() => Some(Err(Errno::EIO)),
            r => Some(r),
        }
    }

    fn sync(&self, fd: i32, flags: SyncFlags) -> Result<(), Errno> {
        let f = self.file(fd)?;
        if flags.write {
            f.sync_data().map_err(io_err)
        } else {
            Ok(())
        }
    }
}
