//! The kernel's [`Host`] for `rumpuser-adros`: NetBSD's hypercalls served by AdrOS threads,
//! parking, clocks, memory, entropy, console and block devices.
//!
//! * Threads are ordinary kernel threads (preemptive, on any CPU); parking uses the
//!   scheduler's park token, so a wake-up before the park is never lost.
//! * Memory: whole pages come from the frame allocator through the linear map (virt = phys +
//!   constant, as rump's DMA code wants); everything else from the kernel heap, with the real
//!   start stored in front of the aligned block (rump's `free` passes the length, not the
//!   alignment).
//! * Files: rump opens AdrOS block devices by path (`/dev/vda`, …) for etfs; I/O goes through
//!   the block layer.
//! * `rumpuser_exit(RUMPUSER_PANIC)` is contained: the rump kernel is marked dead, its mounts
//!   answer EIO, and every thread inside it — the panicking one too — leaves its call with
//!   EIO ([`call`]); the rest of AdrOS lives on.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::task::Wake;
use alloc::vec::Vec;
use core::alloc::Layout;
use core::ffi::c_void;
use core::ptr::NonNull;
use core::sync::atomic::Ordering;
use core::task::Waker;

use rumpuser_adros::Errno as NbErrno;
use rumpuser_adros::Host;
use rumpuser_adros::host::{
    DmaBlock, FileType, IrqHandler, OpenFlags, PciAddr, SyncFlags, ThreadCookie, ThreadEntry,
};

use crate::block::{self, BlockDev};
use crate::mm::phys;
use crate::sched::thread::{self, JoinHandle, ThreadRef};

const PAGE: usize = 4096;

pub struct KernelHost {
    joinable: spin::Mutex<(usize, BTreeMap<usize, JoinHandle>)>,
    files: spin::Mutex<Vec<Option<Arc<dyn BlockDev>>>>,
    line: spin::Mutex<Vec<u8>>,
}

pub static HOST: KernelHost = KernelHost {
    joinable: spin::Mutex::new((1, BTreeMap::new())),
    files: spin::Mutex::new(Vec::new()),
    line: spin::Mutex::new(Vec::new()),
};

struct ThreadWaker(ThreadRef);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        thread::unpark(&self.0);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        thread::unpark(&self.0);
    }
}

fn nb(e: crate::errno::Errno) -> NbErrno {
    NbErrno::from_linux(e as i32)
}

impl KernelHost {
    fn file(&self, fd: i32) -> Result<Arc<dyn BlockDev>, NbErrno> {
        let f = self.files.lock();
        usize::try_from(fd)
            .ok()
            .and_then(|i| f.get(i).cloned().flatten())
            .ok_or(NbErrno::EBADF)
    }

    /// Flushes the write cache of every device the rump kernel has open (`sync(2)`: the
    /// rump block device leaves writes in the device's cache until it is told to commit).
    /// The first error, after trying them all.
    pub fn flush_all(&self) -> crate::errno::KResult<()> {
        let devs: Vec<Arc<dyn BlockDev>> = self.files.lock().iter().flatten().cloned().collect();
        let mut first = Ok(());
        for d in devs.iter().filter(|d| !d.read_only()) {
            let r = d.flush();
            if first.is_ok() {
                first = r;
            }
        }
        first
    }
}

/// Threads parked inside the rump kernel (waiting on a NetBSD lock, condition variable, bio
/// or virtual CPU), by thread id: when NetBSD dies none of them would ever be woken, so
/// [`release_parked`] wakes them all and each leaves through [`dead_end`].
static PARKED: spin::Mutex<BTreeMap<u64, ThreadRef>> = spin::Mutex::new(BTreeMap::new());

/// `rumpuser`'s park: an ordinary park, except that a thread never sleeps in (or returns
/// into) a dead rump kernel. The thread is registered before it looks at the state, and
/// [`release_parked`] runs after the state is set, so a death is never missed.
fn park_in_rump(deadline_ns: Option<u64>) {
    let me = thread::current();
    let id = me.id;
    PARKED.lock().insert(id, me);
    if !super::state_is_dead() {
        thread::park(deadline_ns);
    }
    PARKED.lock().remove(&id);
    if super::state_is_dead() {
        dead_end("died while it waited inside it");
    }
}

/// Wakes every thread parked inside the (now dead) rump kernel.
pub(super) fn release_parked() {
    let parked: Vec<ThreadRef> = PARKED.lock().values().cloned().collect();
    if !parked.is_empty() {
        log::warn!(
            "rump: releasing {} thread(s) that waited inside the dead NetBSD kernel",
            parked.len()
        );
    }
    for t in &parked {
        thread::unpark(t);
    }
}

/// The resume points of the calls into the rump kernel each thread is making (innermost
/// last), by thread id: see [`call`].
static RESUME: spin::Mutex<BTreeMap<u64, Vec<usize>>> = spin::Mutex::new(BTreeMap::new());

/// Runs `f`, one call into the rump kernel, so that the calling thread can get out of it
/// if NetBSD dies while the thread is inside (parked on a NetBSD lock, condition variable
/// or bio, or spinning on a spin mutex): `f`'s frames — NetBSD's C frames and the
/// hypercalls under them — are abandoned, never returned into, and the call answers EIO.
/// A call made after the death answers EIO without entering.
pub(super) fn call<R>(f: impl FnOnce() -> R) -> crate::errno::KResult<R> {
    use crate::errno::Errno;
    if super::state_is_dead() {
        return Err(Errno::EIO);
    }
    let id = thread::current().id;
    let r = crate::arch::escape::catch(|resume| {
        RESUME
            .lock()
            .entry(id)
            .or_default()
            .push(resume as *const _ as usize);
        f()
    });
    let mut map = RESUME.lock();
    if let Some(stack) = map.get_mut(&id) {
        stack.pop();
        if stack.is_empty() {
            map.remove(&id);
        }
    }
    drop(map);
    match r {
        Some(v) => Ok(v),
        None => {
            if !crate::arch::irq::enabled() {
                // The escape came from a spin inside NetBSD with interrupts off; this
                // call was entered with them on (`sys::bind` checks).
                crate::arch::irq::enable();
            }
            Err(Errno::EIO)
        }
    }
}

/// Where a thread that was inside the rump kernel goes once it is dead: it cannot go on
/// (NetBSD's state is whatever the panic left). If it entered through [`call`] — every
/// system call the VFS bridge makes does — it leaves to that call, which answers EIO.
/// Otherwise — no way back through the C frames — a user process is killed as by SIGKILL,
/// which its parent sees at once (`wait`: signal 9) rather than a call that never returns,
/// and a kernel thread (rump's own, or a bridge worker whose callers time out on the dead
/// state) parks for good.
fn dead_end(why: &str) -> ! {
    let id = thread::current().id;
    let resume = RESUME.lock().get(&id).and_then(|s| s.last().copied());
    let who = crate::proc::current_process().map(|p| {
        let name = p.name.lock().clone();
        (p.pid, name)
    });
    if let Some(r) = resume {
        match who {
            Some((pid, name)) => crate::println!(
                "rump: pid {pid} ({name}): its call into NetBSD fails with EIO: the NetBSD kernel {why}"
            ),
            None => crate::println!(
                "rump: thread {id}: its call into NetBSD fails with EIO: the NetBSD kernel {why}"
            ),
        }
        // SAFETY: `r` is the resume point `call` registered for this thread and has not
        // returned (it removes it first); the frames above it are NetBSD's and the
        // hypercalls', which nothing references once the rump kernel is dead (every later
        // call answers EIO without entering, and no rump thread runs again).
        unsafe { crate::arch::escape::escape(r as *const crate::arch::escape::Resume) }
    }
    if let Some((pid, name)) = who {
        crate::println!("rump: pid {pid} ({name}) killed: the NetBSD kernel {why}");
        crate::proc::exit_group(crate::proc::ExitStatus::Signaled(9));
    }
    loop {
        thread::park(None);
    }
}

fn netbsd_line(l: &[u8]) {
    let s = String::from_utf8_lossy(l);
    if s.contains("panic") {
        log::error!("netbsd: {s}");
    } else {
        log::info!("netbsd: {s}");
    }
}

/// A configuration value from the kernel command line: `RUMP_VERBOSE` is `rump.verbose=`.
fn cmdline_param(name: &str) -> Option<String> {
    let key = alloc::format!("rump.{}", name.strip_prefix("RUMP_")?.to_ascii_lowercase());
    crate::boot::cmdline().param(&key).map(String::from)
}

impl Host for KernelHost {
    fn current_waker(&self) -> Waker {
        Waker::from(Arc::new(ThreadWaker(thread::current())))
    }
    fn park(&self) {
        park_in_rump(None);
    }
    fn park_until(&self, deadline_ns: u64) {
        park_in_rump(Some(deadline_ns));
    }
    /// Also where a thread spinning inside the rump kernel (a spin mutex, whose holder may
    /// be the thread that panicked NetBSD and will never release it) finds out it is dead.
    fn yield_now(&self) {
        if super::state_is_dead() {
            dead_end("died while it spun inside it");
        }
        thread::yield_now();
    }

    fn thread_create(
        &self,
        entry: ThreadEntry,
        arg: *mut c_void,
        name: &str,
        joinable: bool,
        _cpu: i32,
    ) -> Result<Option<ThreadCookie>, NbErrno> {
        let arg = arg as usize;
        let name = if name.is_empty() { "rump" } else { name };
        let h = thread::spawn(name, move || {
            entry(arg as *mut c_void);
        });
        if !joinable {
            return Ok(None);
        }
        let mut j = self.joinable.lock();
        let cookie = j.0;
        j.0 += 1;
        j.1.insert(cookie, h);
        Ok(Some(ThreadCookie(cookie)))
    }
    fn thread_join(&self, cookie: ThreadCookie) -> Result<(), NbErrno> {
        let h = self
            .joinable
            .lock()
            .1
            .remove(&cookie.0)
            .ok_or(NbErrno::ESRCH)?;
        h.join();
        Ok(())
    }
    fn thread_exit(&self) -> ! {
        thread::exit_current()
    }

    fn curlwp(&self) -> usize {
        crate::arch::percpu::rump_lwp() as usize
    }
    fn set_curlwp(&self, lwp: usize) {
        crate::arch::percpu::set_rump_lwp(lwp as u64);
    }
    fn set_errno(&self, error: i32) {
        thread::current().rump_errno.store(error, Ordering::Relaxed);
    }

    fn monotonic_ns(&self) -> u64 {
        crate::time::now_ns()
    }
    fn wall_clock(&self) -> (i64, u32) {
        let ns = crate::time::wall_clock_ns();
        ((ns / 1_000_000_000) as i64, (ns % 1_000_000_000) as u32)
    }
    fn sleep_until(&self, deadline_ns: u64) {
        thread::sleep_until(deadline_ns);
    }

    fn alloc(&self, len: usize, align: usize) -> Result<NonNull<u8>, NbErrno> {
        // Whole pages (rump's page allocator, its pools) come from the frame allocator. `free`
        // decides by the length alone, so every page-multiple goes this way.
        if len != 0 && len.is_multiple_of(PAGE) {
            // Not zeroed: rumpuser_malloc promises nothing about the contents (NetBSD zeroes
            // what it needs zeroed, kmem_zalloc/UVM_PGA_ZERO), and zeroing every page rump's
            // page cache takes before a read overwrites it was 7 % of a cold read.
            let pa = if len == PAGE && align <= PAGE {
                phys::alloc_frame_dirty()
            } else {
                phys::alloc_contig_dirty(len / PAGE, align.max(PAGE) as u64, u64::MAX)
            };
            return pa
                .and_then(|pa| NonNull::new(phys::phys_to_virt(pa) as *mut u8))
                .ok_or(NbErrno::ENOMEM);
        }
        // Heap: [raw … | raw, total | aligned block of len …]: the two words in front of the
        // block say how to give the allocation back.
        let a = align.max(16);
        let total = len.checked_add(a + 16).ok_or(NbErrno::ENOMEM)?;
        let layout = Layout::from_size_align(total, 16).map_err(|_| NbErrno::EINVAL)?;
        // SAFETY: `layout` has a non-zero size.
        let raw = unsafe { alloc::alloc::alloc(layout) };
        if raw.is_null() {
            return Err(NbErrno::ENOMEM);
        }
        let aligned = (raw as usize + 16).next_multiple_of(a);
        // SAFETY: `raw <= aligned - 16` and `aligned + len <= raw + total`, so both header
        // words are inside the allocation, 8-byte aligned (aligned is a multiple of 16).
        unsafe {
            ((aligned - 16) as *mut usize).write(raw as usize);
            ((aligned - 8) as *mut usize).write(total);
        }
        NonNull::new(aligned as *mut u8).ok_or(NbErrno::ENOMEM)
    }

    unsafe fn free(&self, ptr: NonNull<u8>, len: usize) {
        let p = ptr.as_ptr() as usize;
        if len != 0 && len.is_multiple_of(PAGE) {
            let pa = phys::virt_to_phys(p as u64);
            if len == PAGE {
                phys::free_frame(pa);
            } else {
                phys::free_contig(pa, len / PAGE);
            }
            return;
        }
        // SAFETY: (the caller's contract) `ptr` came from `alloc`'s heap path, which stored
        // the allocation's start and size in the two words below it.
        unsafe {
            let raw = ((p - 16) as *const usize).read();
            let total = ((p - 8) as *const usize).read();
            alloc::alloc::dealloc(raw as *mut u8, Layout::from_size_align_unchecked(total, 16));
        }
    }

    /// NetBSD's console output goes to the kernel log (it may come at any time, also while
    /// user programs own the console), as `netbsd: …` lines; panics at error level.
    fn putchar(&self, c: u8) {
        let mut l = self.line.lock();
        if c != b'\n' {
            l.push(c);
        }
        if c == b'\n' || l.len() >= 256 {
            netbsd_line(&l);
            l.clear();
        }
    }
    fn console_write(&self, s: &[u8]) {
        for line in s.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
            netbsd_line(line);
        }
    }

    fn getenv(&self, name: &str) -> Option<String> {
        cmdline_param(name).or_else(|| match name {
            // Keep rump's page cache to a quarter of RAM (at least 32 MiB): without a limit
            // it grows until our allocator says no.
            "RUMP_MEMLIMIT" => {
                let (_, total) = phys::stats();
                Some(((total * PAGE / 4).max(32 << 20)).to_string())
            }
            _ => None,
        })
    }
    fn ncpu(&self) -> u32 {
        let cpus = crate::arch::percpu::online_cpus().count().max(1) as u32;
        crate::boot::cmdline().number("rump.ncpu", cpus, 1..=cpus)
    }
    /// `rump.spin_us=` (default 20 µs, 0–10 000), read once.
    fn spin_ns(&self) -> u64 {
        static NS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(u64::MAX);
        let v = NS.load(Ordering::Relaxed);
        if v != u64::MAX {
            return v;
        }
        let v = crate::boot::cmdline().number("rump.spin_us", 20, 0..=10_000) * 1000;
        NS.store(v, Ordering::Relaxed);
        v
    }
    fn bio_threads(&self) -> usize {
        crate::boot::cmdline().number("rump.bio_threads", 4, 1..=16)
    }
    fn bio_plug_ns(&self) -> u64 {
        crate::boot::cmdline().number("rump.bio_plug_us", 200, 0..=10_000) * 1000
    }
    fn hostname(&self) -> String {
        String::from("adros")
    }
    fn getrandom(&self, buf: &mut [u8], _hard: bool, _nowait: bool) -> Result<usize, NbErrno> {
        crate::fs::random::fill(buf);
        Ok(buf.len())
    }
    fn exit(&self, code: i32, panic: bool) -> ! {
        super::died(code, panic);
        release_parked();
        dead_end("panicked under its system call")
    }

    fn open(&self, path: &str, flags: OpenFlags) -> Result<i32, NbErrno> {
        if flags.create {
            return Err(NbErrno::EROFS);
        }
        let dev = block::open_source(path).map_err(nb)?;
        if flags.write && dev.read_only() {
            return Err(NbErrno::EROFS);
        }
        let mut f = self.files.lock();
        let slot = match f.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                f.push(None);
                f.len() - 1
            }
        };
        f[slot] = Some(dev);
        Ok(slot as i32)
    }
    fn close(&self, fd: i32) -> Result<(), NbErrno> {
        let mut f = self.files.lock();
        let slot = usize::try_from(fd)
            .ok()
            .and_then(|i| f.get_mut(i))
            .ok_or(NbErrno::EBADF)?;
        slot.take().map(drop).ok_or(NbErrno::EBADF)
    }
    fn file_info(&self, path: &str) -> Result<(u64, FileType), NbErrno> {
        let dev = block::open_source(path).map_err(nb)?;
        Ok((dev.sectors() * block::SECTOR, FileType::Blk))
    }
    fn read_at(&self, fd: i32, buf: &mut [u8], off: Option<u64>) -> Result<usize, NbErrno> {
        let dev = self.file(fd)?;
        let off = off.ok_or(NbErrno::ESPIPE)?;
        block::read_bytes(&*dev, off, buf).map_err(nb)
    }
    fn write_at(&self, fd: i32, buf: &[u8], off: Option<u64>) -> Result<usize, NbErrno> {
        let dev = self.file(fd)?;
        let off = off.ok_or(NbErrno::ESPIPE)?;
        block::write_bytes(&*dev, off, buf).map_err(nb)
    }
    fn sync(&self, fd: i32, _flags: SyncFlags) -> Result<(), NbErrno> {
        self.file(fd)?.flush().map_err(nb)
    }

    // PCI, DMA and interrupts for rump device drivers: kernel/src/rump/pci.rs.
    fn pci_conf_read(&self, a: PciAddr, reg: u32) -> Result<u32, NbErrno> {
        super::pci::conf_read(a, reg)
    }
    fn pci_conf_write(&self, a: PciAddr, reg: u32, val: u32) -> Result<(), NbErrno> {
        super::pci::conf_write(a, reg, val)
    }
    fn pci_map(&self, pa: u64, len: u64) -> Option<NonNull<u8>> {
        super::pci::map(pa, len)
    }
    fn pci_iospace_init(&self) -> Result<(), NbErrno> {
        // rump's bus_space does in/out itself; the kernel runs at CPL 0.
        Ok(())
    }
    fn pci_dmalloc(&self, size: usize, align: usize) -> Result<DmaBlock, NbErrno> {
        super::pci::dmalloc(size, align)
    }
    fn pci_dmafree(&self, va: usize, size: usize) {
        super::pci::dmafree(va, size)
    }
    fn pci_dmamem_map(&self, segs: &[(u64, u64)], total: usize) -> Result<NonNull<u8>, NbErrno> {
        super::pci::dmamem_map(segs, total)
    }
    fn pci_virt_to_mach(&self, va: usize) -> u64 {
        super::pci::virt_to_mach(va)
    }
    fn pci_irq_map(&self, a: PciAddr, intrline: i32, cookie: u32) -> Result<(), NbErrno> {
        super::pci::irq_map(a, intrline, cookie)
    }
    fn pci_irq_establish(
        &self,
        cookie: u32,
        handler: IrqHandler,
        arg: *mut c_void,
    ) -> Option<NonNull<c_void>> {
        super::pci::irq_establish(cookie, handler, arg)
    }
}

/// Rump threads start through `extern "C-unwind"` entry points (on a POSIX host they may end
/// by unwinding, `pthread_exit`), so calling one leaves an abort-on-unwind landing pad that
/// names Rust's personality routine. Nothing unwinds in this kernel (`panic = "abort"`, and
/// NetBSD's C code is built without exceptions), so the routine is never called; if it ever
/// were, stopping is the only right answer.
#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {
    panic!("rust_eh_personality: unwinding is not supported in the AdrOS kernel");
}
