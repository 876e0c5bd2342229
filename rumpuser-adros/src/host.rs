//! The `Host`: everything `rumpuser-adros` needs from whatever runs it (the AdrOS kernel, or
//! `std` for host tests). It is deliberately small: parking and waking threads, clocks,
//! memory, thread creation, a per-thread `curlwp` slot, files, entropy, and the optional PCI
//! family. Locks, condition variables, the schedule/unschedule contract, block-I/O queueing and
//! errno handling are written once, in this crate, on top of it.

use alloc::string::String;
use core::ffi::c_void;
use core::ptr::NonNull;
use core::task::Waker;

use crate::errno::Errno;

/// Entry point of a thread created by `rumpuser_thread_create` (a C function). `C-unwind`
/// because such a thread may end with `rumpuser_thread_exit`, which on a POSIX host is
/// `pthread_exit` (a forced unwind through the entry's frame).
pub type ThreadEntry = extern "C-unwind" fn(*mut c_void) -> *mut c_void;

/// An interrupt handler registered with `rumpcomp_pci_irq_establish`.
pub type IrqHandler = extern "C" fn(*mut c_void) -> i32;

/// `rumpuser_open` access and creation flags (the `RUMPUSER_OPEN_*` bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenFlags {
    pub read: bool,
    pub write: bool,
    pub create: bool,
    pub excl: bool,
    /// Opened for block I/O (`RUMPUSER_OPEN_BIO`): the file backs a rump block device.
    pub bio: bool,
}

/// `RUMPUSER_FT_*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum FileType {
    Other = 0,
    Dir = 1,
    Reg = 2,
    Blk = 3,
    Chr = 4,
}

/// What `rumpuser_syncfd` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncFlags {
    pub read: bool,
    pub write: bool,
    pub barrier: bool,
    pub sync: bool,
}

/// A joinable thread, as returned by [`Host::thread_create`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadCookie(pub usize);

/// A PCI function's address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PciAddr {
    pub bus: u32,
    pub dev: u32,
    pub fun: u32,
}

/// A DMA allocation: physical (bus) and virtual address of the same memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaBlock {
    pub pa: u64,
    pub va: usize,
}

/// The services `rumpuser-adros` is built on. One instance serves the whole process/kernel;
/// see [`crate::set_host`].
///
/// Methods with a default body are optional: the default is what a host without the
/// facility should answer (usually `ENOSYS`).
pub trait Host: Sync {
    // ---- threads and waiting ------------------------------------------------------------

    /// A waker that, when woken, makes the *calling* thread return from [`Host::park`] /
    /// [`Host::park_until`] (or makes its next park return immediately).
    fn current_waker(&self) -> Waker;
    /// Blocks the calling thread until woken through its waker. May return spuriously.
    fn park(&self);
    /// As [`Host::park`], but returns at the latest at `deadline_ns` on the monotonic clock.
    fn park_until(&self, deadline_ns: u64);
    /// A hint that the caller is spinning.
    fn relax(&self) {
        core::hint::spin_loop();
    }

    /// How long (ns) a thread waiting for its turn at a spin mutex spins before it sleeps
    /// until its turn comes (see `locks::Mutex`). About what a sleep and wake-up cost.
    fn spin_ns(&self) -> u64 {
        20_000
    }

    /// Lets other runnable threads have this CPU for a moment (used while waiting briefly for
    /// another thread's progress; a CPU-spinning wait would keep the other thread off a
    /// single CPU).
    fn yield_now(&self) {
        self.relax();
    }

    /// Starts a thread running `entry(arg)`. `joinable` threads return a cookie for
    /// [`Host::thread_join`]. `cpu` is a hint (-1 = any).
    fn thread_create(
        &self,
        entry: ThreadEntry,
        arg: *mut c_void,
        name: &str,
        joinable: bool,
        cpu: i32,
    ) -> Result<Option<ThreadCookie>, Errno>;
    /// Waits for a joinable thread to finish (it called [`Host::thread_exit`] or returned).
    fn thread_join(&self, cookie: ThreadCookie) -> Result<(), Errno>;
    /// Ends the calling thread (created by [`Host::thread_create`]).
    fn thread_exit(&self) -> !;

    /// The calling thread's rump `curlwp` (an opaque `struct lwp *`; 0 = none).
    fn curlwp(&self) -> usize;
    /// Sets the calling thread's rump `curlwp`.
    fn set_curlwp(&self, lwp: usize);

    // ---- time ---------------------------------------------------------------------------

    /// Monotonic clock in nanoseconds (never goes backwards; arbitrary epoch).
    fn monotonic_ns(&self) -> u64;
    /// Wall clock: (seconds, nanoseconds) since the Unix epoch.
    fn wall_clock(&self) -> (i64, u32);
    /// Sleeps until the monotonic clock reaches `deadline_ns`. Must not wake early.
    fn sleep_until(&self, deadline_ns: u64);

    // ---- memory -------------------------------------------------------------------------

    /// Allocates `len` bytes aligned to `align` (a power of two ≥ 1).
    fn alloc(&self, len: usize, align: usize) -> Result<NonNull<u8>, Errno>;
    /// Frees memory from [`Host::alloc`].
    ///
    /// # Safety
    /// `ptr` came from `self.alloc(len, _)` with the same `len` and was not freed since.
    unsafe fn free(&self, ptr: NonNull<u8>, len: usize);

    // ---- console, parameters, entropy, process ------------------------------------------

    /// Writes one byte to the console.
    fn putchar(&self, c: u8);
    /// Writes bytes to the console (debug output; must not call into rump).
    fn console_write(&self, s: &[u8]) {
        for &c in s {
            self.putchar(c);
        }
    }
    /// A configuration value (`RUMP_*` or other non-underscore names), if set.
    fn getenv(&self, name: &str) -> Option<String>;
    /// Number of virtual CPUs the rump kernel should have.
    fn ncpu(&self) -> u32;
    /// The host name the rump kernel reports.
    fn hostname(&self) -> String;
    /// Fills `buf` with random bytes from a real entropy source; returns how many.
    fn getrandom(&self, buf: &mut [u8], hard: bool, nowait: bool) -> Result<usize, Errno>;
    /// Ends everything. `panic` is `rumpuser_exit(RUMPUSER_PANIC)`.
    fn exit(&self, code: i32, panic: bool) -> !;
    /// Records the calling thread's errno for the `rump_sys_*` call that is returning -1
    /// (`rumpuser_seterrno`, NetBSD numbering). Hosts without a per-thread slot may ignore it.
    fn set_errno(&self, _error: i32) {}
    /// Delivers a signal to the host process (rump numbering); hosts may ignore it.
    fn kill(&self, _pid: i64, _sig: i32) -> Result<(), Errno> {
        Err(Errno::ENOSYS)
    }

    // ---- files and block devices --------------------------------------------------------

    /// How many threads serve `rumpuser_bio` requests (at least 1). Several let a device that
    /// keeps requests in flight get them; on a host whose I/O is a synchronous system call
    /// each extra thread only adds wake-ups and competition for the rump vCPUs.
    fn bio_threads(&self) -> usize {
        4
    }
    /// How long (ns) a woken bio thread waits, yielding, for the submitter's burst of requests
    /// to end before it takes and joins what is queued (see `bio::unplug`). Worth it where one
    /// joined device request beats several; a host whose I/O is a system call on a file, and
    /// whose rump syscalls return without pulling the plug, only loses the wait.
    fn bio_plug_ns(&self) -> u64 {
        200_000
    }
    /// Whether a synchronous write (`RUMPUSER_BIO_SYNC`: the caller's next step is to wait
    /// for it) is done by the calling thread itself, with its vCPU released, instead of by a
    /// bio thread — NetBSD's host does every bio that way with `RUMP_THREADS=0`, and its
    /// `rumpblk` completes failed requests inline too. Saves two thread hand-offs per write
    /// where the host's I/O is a blocking system call anyway.
    fn bio_sync_inline(&self) -> bool {
        false
    }

    /// Opens a host file; returns a small non-negative handle.
    fn open(&self, path: &str, flags: OpenFlags) -> Result<i32, Errno>;
    fn close(&self, fd: i32) -> Result<(), Errno>;
    /// Size in bytes and type of a host file.
    fn file_info(&self, path: &str) -> Result<(u64, FileType), Errno>;
    /// Reads at `off` (or at the current position when `None`).
    fn read_at(&self, fd: i32, buf: &mut [u8], off: Option<u64>) -> Result<usize, Errno>;
    /// Writes at `off` (or at the current position when `None`).
    fn write_at(&self, fd: i32, buf: &[u8], off: Option<u64>) -> Result<usize, Errno>;
    fn sync(&self, fd: i32, flags: SyncFlags) -> Result<(), Errno>;
    /// Reads consecutive bytes from `off` into `bufs`, one after the other (`preadv`); returns
    /// the total read. `None`: the host has no vectored I/O (a run of requests whose buffers
    /// are apart is then done through one bounce buffer).
    fn read_vectored_at(
        &self,
        _fd: i32,
        _bufs: &mut [&mut [u8]],
        _off: u64,
    ) -> Option<Result<usize, Errno>> {
        None
    }
    /// Writes `bufs`, one after the other, at `off` (`pwritev`); with `sync`, returns only once
    /// they are on stable storage (as [`Host::write_sync_at`]). `None`: not supported.
    fn write_vectored_at(
        &self,
        _fd: i32,
        _bufs: &[&[u8]],
        _off: u64,
        _sync: bool,
    ) -> Option<Result<usize, Errno>> {
        None
    }
    /// Writes at `off` and returns only once those bytes are on stable storage
    /// (`RUMPUSER_BIO_SYNC`). The default writes and then syncs the whole file; a host that
    /// can make just this write durable (NetBSD's host uses `fsync_range` where it exists)
    /// should.
    fn write_sync_at(&self, fd: i32, buf: &[u8], off: u64) -> Result<usize, Errno> {
        let n = self.write_at(fd, buf, Some(off))?;
        self.sync(
            fd,
            SyncFlags {
                read: false,
                write: true,
                barrier: false,
                sync: true,
            },
        )?;
        Ok(n)
    }

    // ---- PCI, DMA, interrupts (for rump device drivers) ---------------------------------

    fn pci_conf_read(&self, _a: PciAddr, _reg: u32) -> Result<u32, Errno> {
        Err(Errno::ENOSYS)
    }
    fn pci_conf_write(&self, _a: PciAddr, _reg: u32, _val: u32) -> Result<(), Errno> {
        Err(Errno::ENOSYS)
    }
    /// Maps `len` bytes of device memory at physical `pa` uncached; returns the VA.
    fn pci_map(&self, _pa: u64, _len: u64) -> Option<NonNull<u8>> {
        None
    }
    fn pci_iospace_init(&self) -> Result<(), Errno> {
        Err(Errno::ENOSYS)
    }
    /// Physically contiguous DMA memory of `size` bytes aligned to `align`.
    fn pci_dmalloc(&self, _size: usize, _align: usize) -> Result<DmaBlock, Errno> {
        Err(Errno::ENOSYS)
    }
    /// Frees a [`Host::pci_dmalloc`] block, identified (as rump does) by its *virtual* address.
    fn pci_dmafree(&self, _va: usize, _size: usize) {}
    /// A VA covering DMA segments (by physical address) that are contiguous in VA space.
    fn pci_dmamem_map(&self, _segs: &[(u64, u64)], _total: usize) -> Result<NonNull<u8>, Errno> {
        Err(Errno::ENOSYS)
    }
    /// The bus address of a VA inside rump memory (malloc or DMA).
    fn pci_virt_to_mach(&self, va: usize) -> u64 {
        va as u64
    }
    /// Records the routing of a function's interrupt under `cookie`.
    fn pci_irq_map(&self, _a: PciAddr, _intrline: i32, _cookie: u32) -> Result<(), Errno> {
        Err(Errno::ENOSYS)
    }
    /// Arranges for `handler(arg)` to run (in a thread holding a rump lwp, never in hardware
    /// interrupt context) whenever the interrupt mapped under `cookie` fires. Returns an
    /// opaque non-null handle.
    fn pci_irq_establish(
        &self,
        _cookie: u32,
        _handler: IrqHandler,
        _arg: *mut c_void,
    ) -> Option<NonNull<c_void>> {
        None
    }
}

/// `h.curlwp()`, the hottest hypercall: a rump kernel built with `RUMP_CURLWP=hypercall` asks
/// for `curlwp` in nearly every function (`rumpuser_curlwp`, KMUTEX owners, rwlock writers).
/// With `std`, when `h` is the std host its thread-local slot is read here directly instead
/// of through the trait object (measured: the chain of calls was ~5 % of the CPU time of
/// a rump `stat` loop).
#[inline(always)]
pub fn curlwp(h: &dyn Host) -> usize {
    #[cfg(feature = "std")]
    if core::ptr::addr_eq(h as *const dyn Host, &crate::std_host::STD_HOST) {
        return crate::std_host::curlwp_slot();
    }
    h.curlwp()
}

/// The calling thread's `curlwp` from the installed host (`rumpuser_curlwp`): with `std`, once
/// the std host is installed, one flag test and a thread-local load.
#[inline(always)]
pub fn current_curlwp() -> usize {
    #[cfg(feature = "std")]
    if STD_INSTALLED.load(core::sync::atomic::Ordering::Relaxed) {
        return crate::std_host::curlwp_slot();
    }
    curlwp(host())
}

static HOST: crate::CacheAligned<spin::Once<&'static dyn Host>> =
    crate::CacheAligned(spin::Once::new());

/// Whether [`HOST`] is the std host (read-only after it is installed).
#[cfg(feature = "std")]
static STD_INSTALLED: crate::CacheAligned<core::sync::atomic::AtomicBool> =
    crate::CacheAligned(core::sync::atomic::AtomicBool::new(false));

#[cfg(feature = "std")]
fn note_installed(h: &'static dyn Host) -> &'static dyn Host {
    if core::ptr::addr_eq(h as *const dyn Host, &crate::std_host::STD_HOST) {
        STD_INSTALLED.store(true, core::sync::atomic::Ordering::Relaxed);
    }
    h
}

/// Installs the host every hypercall uses. Only the first call has an effect; returns false
/// if a host was already installed.
pub fn set_host(h: &'static dyn Host) -> bool {
    let mut installed = false;
    HOST.call_once(|| {
        installed = true;
        #[cfg(feature = "std")]
        note_installed(h);
        h
    });
    installed
}

/// The installed host (with `std`: the [`StdHost`](crate::StdHost) when none was installed).
pub fn host() -> &'static dyn Host {
    #[cfg(feature = "std")]
    {
        *HOST.call_once(|| note_installed(&crate::std_host::STD_HOST))
    }
    #[cfg(not(feature = "std"))]
    {
        *HOST
            .get()
            .expect("rumpuser-adros: no Host installed (call set_host first)")
    }
}
