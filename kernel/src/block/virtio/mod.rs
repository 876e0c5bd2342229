//! virtio-blk over PCI (1af4:1001 transitional, 1af4:1042 modern) and over virtio-mmio (the
//! transports the platform's firmware lists: the device tree's `virtio,mmio` nodes on
//! aarch64) with the `virtio-drivers` crate: our [`Hal`] over `mm::dma`, the crate's PCI
//! transport over our configuration space access or its MMIO transport over a mapped
//! register window, and interrupt-driven completion. The request engine below does not
//! care which transport carries it.
//!
//! Requests: several in flight per disk (as many as the virtqueue's descriptors allow, 3
//! each), from any number of callers; one caller's transfer is split into requests of up
//! to 1 MiB, each physically contiguous, and keeps up to [`PER_CALLER`] of them in flight.
//! Data goes straight to and from the caller's buffer when it is physically contiguous
//! (the linear map always is; heap pages are checked page by page); anything else is
//! bounced through a DMA buffer by [`KernelHal::share`] in pieces of at most 128 KiB.
//!
//! Completion: whoever holds the disk's lock — the interrupt handler, or a submitter
//! polling its own request — pops the used ring in order, completes each request and wakes
//! exactly that request's waiter. A submitter of a request of at most [`SPIN_MAX`] bytes
//! polls for [`SPIN_NS`] before it sleeps (TCG delivers interrupts late). A 10 ms re-check covers a lost interrupt; a request the
//! device has not completed in 30 s resets the device, fails every pending request with
//! EIO and leaves the disk unusable.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

use virtio_drivers::device::blk::{BlkReq, BlkResp, VirtIOBlk};
use virtio_drivers::transport::{InterruptStatus, SomeTransport};
use virtio_drivers::{BufferDirection, Hal, PhysAddr};

use super::layer::{BlockDev, SECTOR, add_disk, next_disk_name};
use crate::errno::{Errno, KResult};
use crate::mm::dma::DmaBuffer;
use crate::mm::layout::PHYS_OFFSET;
use crate::mm::mmio::{self, Cache};
use crate::sched::wait::WaitQueue;
use crate::sync::spin::IrqSpinLock;

mod transport;
pub use transport::probe_all;

const PAGE: usize = 4096;
/// The largest request (QEMU takes far more; this bounds one caller's share of the disk).
const MAX_REQ: usize = 1 << 20;
/// The largest request whose data is bounced.
const BOUNCE_REQ: usize = 128 << 10;
/// The virtqueue's size in `virtio-drivers` 0.13 is 16 descriptors; a request takes 3.
const SLOTS: usize = 16;
const MAX_INFLIGHT: usize = SLOTS / 3;
/// How many requests one caller keeps in flight.
const PER_CALLER: usize = 4;
/// How long a submitter polls the used ring before sleeping, for requests of at most
/// [`SPIN_MAX`] bytes (a larger one takes milliseconds: polling would only take host CPU
/// from the emulated device).
const SPIN_NS: u64 = 200_000;
const SPIN_MAX: usize = 64 << 10;
const TIMEOUT_NS: u64 = 30_000_000_000;
/// The linear map covers at most this much RAM (PML4 slot 256 = 512 GiB).
const LINEAR_SPAN: u64 = 512 << 30;

/// Bounce buffers for memory the device cannot reach directly (physically scattered heap
/// pages), keyed by their physical address.
static BOUNCE: IrqSpinLock<BTreeMap<u64, DmaBuffer>> = IrqSpinLock::new(BTreeMap::new());

/// The physical address of `va..va+len` if the range is mapped and physically contiguous.
fn phys_run(va: u64, len: usize) -> Option<u64> {
    if va >= PHYS_OFFSET && va - PHYS_OFFSET + len as u64 <= LINEAR_SPAN {
        return Some(va - PHYS_OFFSET);
    }
    contiguous_len(va, len)
        .filter(|&(_, n)| n >= len)
        .map(|(pa, _)| pa)
}

/// (physical address of `va`, how many bytes from `va` — at most `len` — are mapped
/// physically contiguously).
fn contiguous_len(va: u64, len: usize) -> Option<(u64, usize)> {
    if va >= PHYS_OFFSET && va - PHYS_OFFSET + len as u64 <= LINEAR_SPAN {
        return Some((va - PHYS_OFFSET, len));
    }
    let (pa, _) = crate::mm::paging::query(va)?;
    let first = PAGE - (va as usize % PAGE);
    let mut n = first.min(len);
    while n < len {
        match crate::mm::paging::query(va + n as u64) {
            Some((p, _)) if p == pa + n as u64 => n = (n + PAGE).min(len),
            _ => break,
        }
    }
    Some((pa, n))
}

pub struct KernelHal;

// SAFETY: dma_alloc returns zeroed, physically contiguous, page-aligned memory that stays
// mapped (linear map) until dma_dealloc; share returns a physical address the device may
// use for the buffer's length until unshare (the buffer itself when it is in the linear
// map, else a bounce copy); mmio_phys_to_virt maps the range uncached for good.
unsafe impl Hal for KernelHal {
    fn dma_alloc(pages: usize, _dir: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        match DmaBuffer::alloc(pages * PAGE, PAGE, u64::MAX) {
            Some(mut b) => {
                b.as_mut_slice().fill(0);
                let va = b.virt();
                let (pa, _) = b.into_raw();
                (
                    pa,
                    NonNull::new(va as *mut u8).unwrap_or(NonNull::dangling()),
                )
            }
            None => (0, NonNull::dangling()),
        }
    }

    unsafe fn dma_dealloc(paddr: PhysAddr, _vaddr: NonNull<u8>, pages: usize) -> i32 {
        crate::mm::dma::free_raw(paddr, pages);
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        match mmio::map(paddr, size as u64, Cache::Uncached) {
            Ok(va) => NonNull::new(va as *mut u8).unwrap_or(NonNull::dangling()),
            Err(e) => panic!("virtio: cannot map MMIO {paddr:#x}+{size:#x}: {e:?}"),
        }
    }

    unsafe fn share(buffer: NonNull<[u8]>, direction: BufferDirection) -> PhysAddr {
        let va = buffer.as_ptr() as *mut u8 as u64;
        let len = buffer.len();
        if let Some(pa) = phys_run(va, len) {
            return pa;
        }
        let Some(mut b) = DmaBuffer::alloc(len.max(1), PAGE, u64::MAX) else {
            panic!("virtio: out of DMA memory for a {len}-byte bounce buffer");
        };
        if direction != BufferDirection::DeviceToDriver {
            // SAFETY: the caller (the virtqueue) gives a valid buffer of `len` bytes that
            // nobody mutates while it is shared.
            let src = unsafe { buffer.as_ref() };
            b.as_mut_slice()[..len].copy_from_slice(src);
        }
        let pa = b.phys();
        BOUNCE.lock().insert(pa, b);
        pa
    }

    unsafe fn unshare(paddr: PhysAddr, mut buffer: NonNull<[u8]>, direction: BufferDirection) {
        let Some(mut b) = BOUNCE.lock().remove(&paddr) else {
            return;
        };
        if direction != BufferDirection::DriverToDevice {
            let len = buffer.len();
            // SAFETY: the same buffer that was shared, valid for writes and no longer used by
            // the device; the virtqueue holds the only reference while it unshares.
            let dst = unsafe { buffer.as_mut() };
            dst.copy_from_slice(&b.as_mut_slice()[..len]);
        }
    }
}

type Blk = VirtIOBlk<KernelHal, SomeTransport<'static>>;

/// A request's outcome, set once by whoever completes it.
struct Done {
    /// 0 pending, 1 done, 2 failed.
    state: AtomicU8,
    wq: WaitQueue,
    /// When the completion was seen (for the latency statistics).
    seen_ns: AtomicU64,
}

impl Done {
    fn state(&self) -> u8 {
        self.state.load(Ordering::Acquire)
    }
}

/// A request on the virtqueue: its header and status live here (stable in a `Box`); its data
/// is the submitter's buffer, which the submitter keeps alive and untouched until `done`.
struct Pending {
    req: BlkReq,
    resp: BlkResp,
    buf: *mut u8,
    len: usize,
    write: bool,
    submitted_ns: u64,
    done: Arc<Done>,
}

// SAFETY: `buf` points at memory the submitting thread lends to the device until the
// request completes; the pointer is only dereferenced (to complete the request) under the
// disk's lock, by whichever CPU completes it, while the submitter waits.
unsafe impl Send for Pending {}

struct Hw {
    /// None once the device has been reset after a timeout.
    blk: Option<Blk>,
    pending: [Option<Box<Pending>>; SLOTS],
    inflight: usize,
}

// SAFETY: the MMIO transport's register pointers (not `Send` in `safe-mmio`) point at a
// device window mapped for good (`KernelHal::mmio_phys_to_virt`, `mmio::map`), valid from
// any CPU; they are only used under the disk's lock, so one CPU at a time touches them.
unsafe impl Send for Hw {}

impl Hw {
    /// Completes every request in the used ring; returns the waiters to wake (after the
    /// lock is dropped) in `wake`.
    fn reap(&mut self, wake: &mut Vec<Arc<Done>>, stats: &Stats) {
        let Some(blk) = self.blk.as_mut() else { return };
        while let Some(token) = blk.peek_used() {
            let Some(mut p) = self.pending.get_mut(token as usize).and_then(|s| s.take()) else {
                log::error!("virtio-blk: used ring names unknown token {token}");
                return;
            };
            let r = if p.write {
                // SAFETY: the buffers submitted with this token; the submitter keeps `buf`
                // alive and untouched until `done` is set below.
                unsafe {
                    blk.complete_write_blocks(
                        token,
                        &p.req,
                        core::slice::from_raw_parts(p.buf, p.len),
                        &mut p.resp,
                    )
                }
            } else {
                // SAFETY: as above.
                unsafe {
                    blk.complete_read_blocks(
                        token,
                        &p.req,
                        core::slice::from_raw_parts_mut(p.buf, p.len),
                        &mut p.resp,
                    )
                }
            };
            self.inflight -= 1;
            let now = crate::time::now_ns();
            stats
                .device_ns
                .fetch_add(now.saturating_sub(p.submitted_ns), Ordering::Relaxed);
            stats.completed.fetch_add(1, Ordering::Relaxed);
            p.done.seen_ns.store(now, Ordering::Relaxed);
            p.done
                .state
                .store(if r.is_ok() { 1 } else { 2 }, Ordering::Release);
            wake.push(p.done.clone());
        }
    }

    /// After a timeout: resets the device (it no longer touches any buffer) and fails every
    /// pending request.
    fn abandon(&mut self, wake: &mut Vec<Arc<Done>>) {
        // Dropping the transport resets the device; the virtqueue's memory is then freed.
        self.blk = None;
        for p in self.pending.iter_mut().filter_map(|s| s.take()) {
            // The device is reset: nothing writes into the request any more.
            p.done.state.store(2, Ordering::Release);
            wake.push(p.done.clone());
        }
        self.inflight = 0;
    }
}

#[derive(Default)]
struct Stats {
    /// Sum of submit → completion seen, and the count.
    device_ns: AtomicU64,
    completed: AtomicU64,
    /// Sum of completion seen → submitter running, for completions it slept for.
    wake_ns: AtomicU64,
    woken: AtomicU64,
    /// Completions the submitter found by polling.
    polled: AtomicU64,
    direct: AtomicU64,
    bounced: AtomicU64,
    /// Cache flushes done, and the sum of their time (waiting for the queue to drain
    /// included).
    flushes: AtomicU64,
    flush_ns: AtomicU64,
}

pub struct VirtioDisk {
    name: String,
    sectors: u64,
    ro: bool,
    hw: IrqSpinLock<Hw>,
    /// Woken when a request slot frees.
    space: WaitQueue,
    dead: AtomicBool,
    stats: Stats,
    pub interrupts: AtomicU64,
    pub requests: AtomicU64,
}

static DISKS: IrqSpinLock<Vec<Arc<VirtioDisk>>> = IrqSpinLock::new(Vec::new());
/// The interrupt lines a virtio handler is attached to.
static VIRTIO_LINES: IrqSpinLock<alloc::collections::BTreeSet<u32>> =
    IrqSpinLock::new(alloc::collections::BTreeSet::new());

fn irq_handler() {
    let disks = DISKS.lock().clone();
    for d in disks {
        let mut wake = Vec::new();
        {
            let mut hw = d.hw.lock();
            let Some(blk) = hw.blk.as_mut() else { continue };
            if blk
                .ack_interrupt()
                .contains(InterruptStatus::QUEUE_INTERRUPT)
            {
                d.interrupts.fetch_add(1, Ordering::Relaxed);
            }
            hw.reap(&mut wake, &d.stats);
        }
        d.wake(wake);
    }
}

enum Submit {
    Queued(Arc<Done>),
    Full,
}

impl VirtioDisk {
    fn wake(&self, wake: Vec<Arc<Done>>) {
        if wake.is_empty() {
            return;
        }
        for w in wake {
            w.wq.wake_all();
        }
        self.space.wake_all();
    }

    /// Pops whatever the device has completed.
    fn poll(&self) {
        let mut wake = Vec::new();
        self.hw.lock().reap(&mut wake, &self.stats);
        self.wake(wake);
    }

    /// The length of the next request at `va` (at most `rem` bytes): a physically contiguous
    /// run of whole sectors, or a bounced piece.
    fn next_len(&self, va: u64, rem: usize) -> usize {
        let want = rem.min(MAX_REQ);
        match contiguous_len(va, want) {
            Some((_, n)) if n >= want => want,
            Some((_, n)) if n >= SECTOR as usize => n - n % SECTOR as usize,
            _ => want.min(BOUNCE_REQ),
        }
    }

    fn submit(&self, sector: u64, buf: *mut u8, len: usize, write: bool) -> KResult<Submit> {
        let mut hw = self.hw.lock();
        if hw.inflight >= MAX_INFLIGHT {
            return Ok(Submit::Full);
        }
        let done = Arc::new(Done {
            state: AtomicU8::new(0),
            wq: WaitQueue::new(),
            seen_ns: AtomicU64::new(0),
        });
        let mut p = Box::new(Pending {
            req: BlkReq::default(),
            resp: BlkResp::default(),
            buf,
            len,
            write,
            submitted_ns: crate::time::now_ns(),
            done: done.clone(),
        });
        let Some(blk) = hw.blk.as_mut() else {
            return Err(Errno::EIO);
        };
        let p_ref = &mut *p;
        // SAFETY: `buf..buf+len` is the caller's buffer, which it keeps alive and does not
        // touch until `done` is set (io() waits for every request it submitted, and a
        // timeout resets the device first); req/resp live in the boxed Pending, which stays
        // in `pending` until the request is completed.
        let r = unsafe {
            if write {
                blk.write_blocks_nb(
                    sector as usize,
                    &mut p_ref.req,
                    core::slice::from_raw_parts(buf, len),
                    &mut p_ref.resp,
                )
            } else {
                blk.read_blocks_nb(
                    sector as usize,
                    &mut p_ref.req,
                    core::slice::from_raw_parts_mut(buf, len),
                    &mut p_ref.resp,
                )
            }
        };
        let token = match r {
            Ok(t) => t as usize,
            Err(virtio_drivers::Error::QueueFull) => return Ok(Submit::Full),
            Err(_) => return Err(Errno::EIO),
        };
        let Some(slot) = hw.pending.get_mut(token) else {
            return Err(Errno::EIO);
        };
        *slot = Some(p);
        hw.inflight += 1;
        self.requests.fetch_add(1, Ordering::Relaxed);
        Ok(Submit::Queued(done))
    }

    /// Waits for `done`: polls for a while, then sleeps; 30 s → device reset and EIO.
    fn wait(&self, done: &Done, len: usize) -> KResult<()> {
        let start = crate::time::now_ns();
        let spin_end = if len <= SPIN_MAX {
            start + SPIN_NS
        } else {
            start
        };
        loop {
            match done.state() {
                1 => {
                    self.stats.polled.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                2 => return Err(Errno::EIO),
                _ => {}
            }
            if crate::time::now_ns() >= spin_end {
                break;
            }
            self.poll();
            core::hint::spin_loop();
        }
        let give_up = start + TIMEOUT_NS;
        loop {
            let now = crate::time::now_ns();
            let ok = done
                .wq
                .wait_until(|| done.state() != 0, Some(now + 10_000_000));
            if ok {
                let seen = done.seen_ns.load(Ordering::Relaxed);
                self.stats.wake_ns.fetch_add(
                    crate::time::now_ns().saturating_sub(seen),
                    Ordering::Relaxed,
                );
                self.stats.woken.fetch_add(1, Ordering::Relaxed);
                return if done.state() == 1 {
                    Ok(())
                } else {
                    Err(Errno::EIO)
                };
            }
            self.poll();
            if done.state() != 0 {
                continue;
            }
            if crate::time::now_ns() > give_up {
                log::error!(
                    "{}: a request timed out; resetting the device, the disk is unusable",
                    self.name
                );
                self.dead.store(true, Ordering::Release);
                let mut wake = Vec::new();
                self.hw.lock().abandon(&mut wake);
                self.wake(wake);
                return Err(Errno::EIO);
            }
        }
    }

    fn io(&self, lba: u64, buf: *mut u8, len: usize, write: bool) -> KResult<()> {
        self.io_many(&[(lba, buf, len)], write)
    }

    /// Transfers every `(lba, buffer, length)` segment, keeping up to [`PER_CALLER`]
    /// requests in flight across them; returns once none of the buffers is in use.
    fn io_many(&self, segs: &[(u64, *mut u8, usize)], write: bool) -> KResult<()> {
        for &(lba, _, len) in segs {
            if len % SECTOR as usize != 0
                || lba
                    .checked_add(len as u64 / SECTOR)
                    .is_none_or(|e| e > self.sectors)
            {
                return Err(Errno::EIO);
            }
        }
        if write && self.ro {
            return Err(Errno::EROFS);
        }
        if self.dead.load(Ordering::Acquire) {
            return Err(Errno::EIO);
        }
        let mut queued: VecDeque<(Arc<Done>, usize)> = VecDeque::new();
        let mut seg = 0usize;
        let mut off = 0usize;
        let mut err = None;
        loop {
            while seg < segs.len() && off >= segs[seg].2 {
                seg += 1;
                off = 0;
            }
            let more = seg < segs.len() && err.is_none();
            if !more && queued.is_empty() {
                break;
            }
            if more && queued.len() < PER_CALLER {
                let (lba, buf, len) = segs[seg];
                let va = buf as u64 + off as u64;
                let n = self.next_len(va, len - off);
                // `off + n <= len`: the pointer stays in the segment's buffer.
                match self.submit(lba + (off as u64 / SECTOR), buf.wrapping_add(off), n, write) {
                    Ok(Submit::Queued(d)) => {
                        if phys_run(va, n).is_some() {
                            self.stats.direct.fetch_add(1, Ordering::Relaxed);
                        } else {
                            self.stats.bounced.fetch_add(1, Ordering::Relaxed);
                        }
                        queued.push_back((d, n));
                        off += n;
                        continue;
                    }
                    Ok(Submit::Full) => {}
                    Err(e) => {
                        err = Some(e);
                        continue;
                    }
                }
            }
            match queued.pop_front() {
                Some((d, n)) => {
                    if let Err(e) = self.wait(&d, n) {
                        err.get_or_insert(e);
                    }
                }
                None => {
                    // The queue is full of other callers' requests: wait for a slot.
                    let ok = self.space.wait_until(
                        || self.hw.lock().inflight < MAX_INFLIGHT,
                        Some(crate::time::now_ns() + 10_000_000),
                    );
                    if !ok {
                        self.poll();
                    }
                    if self.dead.load(Ordering::Acquire) {
                        err = Some(Errno::EIO);
                    }
                }
            }
        }
        err.map_or(Ok(()), Err)
    }

    /// One cache flush. The crate's flush waits for the next used entry, so nothing else
    /// may be in flight.
    fn flush_now(&self) -> KResult<()> {
        let give_up = crate::time::now_ns() + TIMEOUT_NS;
        loop {
            if self.dead.load(Ordering::Acquire) {
                return Err(Errno::EIO);
            }
            {
                let mut hw = self.hw.lock();
                if hw.inflight == 0 {
                    let Some(blk) = hw.blk.as_mut() else {
                        return Err(Errno::EIO);
                    };
                    return blk.flush().map_err(|_| Errno::EIO);
                }
            }
            if crate::time::now_ns() > give_up {
                return Err(Errno::EIO);
            }
            if !self.space.wait_until(
                || self.hw.lock().inflight == 0,
                Some(crate::time::now_ns() + 10_000_000),
            ) {
                self.poll();
            }
        }
    }

    /// The disk's `/proc/drivers` line: completions, mean submit→completion µs, sleeps,
    /// mean completion→running µs, the submission paths, and cache flushes.
    pub fn report(&self) -> String {
        let s = &self.stats;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mean_us = |ns: &AtomicU64, n: u64| load(ns) / n.max(1) / 1000;
        let (c, w, f) = (load(&s.completed), load(&s.woken), load(&s.flushes));
        alloc::format!(
            "virtio-blk {} requests={c} mean_device_us={} sleeps={w} mean_wake_us={} polled={} direct={} bounced={} flushes={f} mean_flush_us={}",
            self.name,
            mean_us(&s.device_ns, c),
            mean_us(&s.wake_ns, w),
            load(&s.polled),
            load(&s.direct),
            load(&s.bounced),
            mean_us(&s.flush_ns, f),
        )
    }
}

impl BlockDev for VirtioDisk {
    fn name(&self) -> &str {
        &self.name
    }
    fn sectors(&self) -> u64 {
        self.sectors
    }
    fn read_sectors(&self, lba: u64, buf: &mut [u8]) -> KResult<()> {
        self.io(lba, buf.as_mut_ptr(), buf.len(), false)
    }
    fn read_sectors_many(&self, reqs: &mut [(u64, &mut [u8])]) -> KResult<()> {
        let segs: Vec<(u64, *mut u8, usize)> = reqs
            .iter_mut()
            .map(|(lba, b)| (*lba, b.as_mut_ptr(), b.len()))
            .collect();
        self.io_many(&segs, false)
    }
    fn write_sectors(&self, lba: u64, buf: &[u8]) -> KResult<()> {
        // The device only reads from a write request's buffer.
        self.io(lba, buf.as_ptr().cast_mut(), buf.len(), true)
    }
    fn flush(&self) -> KResult<()> {
        let t0 = crate::time::now_ns();
        let r = self.flush_now();
        self.stats.flushes.fetch_add(1, Ordering::Relaxed);
        self.stats
            .flush_ns
            .fetch_add(crate::time::now_ns() - t0, Ordering::Relaxed);
        r
    }
    fn read_only(&self) -> bool {
        self.ro
    }
    fn driver(&self) -> &'static str {
        "virtio-blk (native)"
    }
}

/// Interrupt and request counts of every virtio disk: (name, interrupts, requests).
pub fn stats() -> Vec<(String, u64, u64)> {
    DISKS
        .lock()
        .iter()
        .map(|d| {
            (
                d.name.clone(),
                d.interrupts.load(Ordering::Relaxed),
                d.requests.load(Ordering::Relaxed),
            )
        })
        .collect()
}

/// Every virtio disk's [`VirtioDisk::report`].
pub fn reports() -> Vec<String> {
    DISKS.lock().iter().map(|d| d.report()).collect()
}

/// Registers a device brought up on either transport as the next disk, its completions
/// interrupt-driven on `line` (an `irq` line) when that attaches, else polled; returns its
/// name.
fn add(blk: Blk, line: Option<u32>) -> String {
    let sectors = blk.capacity();
    let ro = blk.readonly();
    let (index, name) = next_disk_name();
    let disk = Arc::new(VirtioDisk {
        name,
        sectors,
        ro,
        hw: IrqSpinLock::new(Hw {
            blk: Some(blk),
            pending: Default::default(),
            inflight: 0,
        }),
        space: WaitQueue::new(),
        dead: AtomicBool::new(false),
        stats: Stats::default(),
        interrupts: AtomicU64::new(0),
        requests: AtomicU64::new(0),
    });
    DISKS.lock().push(disk.clone());
    if let Some(gsi) = line {
        // One handler per line serves every virtio disk on it.
        let first = VIRTIO_LINES.lock().insert(gsi);
        let attached = !first
            || crate::irq::attach(gsi, "virtio-blk", alloc::boxed::Box::new(irq_handler))
                .inspect_err(|e| {
                    log::warn!(
                        "{}: interrupt line {gsi}: {e:?}; polling every 10 ms",
                        disk.name
                    )
                })
                .is_ok();
        if attached && let Some(b) = disk.hw.lock().blk.as_mut() {
            b.enable_interrupts();
        }
    }
    let name = disk.name.clone();
    add_disk(index, disk);
    name
}
