//! virtio-blk over PCI (1af4:1001 transitional, 1af4:1042 modern) with the `virtio-drivers`
//! crate: our [`Hal`] over `mm::dma`, the crate's PCI transport over our configuration
//! space access, and interrupt-driven completion.
//!
//! Request queue: one request in flight per disk, in FIFO order of the sleeping lock that
//! guards the disk's DMA data buffer; large transfers are split into 128 KiB requests. The
//! submitter sleeps on the disk's wait queue; the interrupt handler acknowledges the
//! device and wakes it. A 10 ms re-check covers a lost or unroutable interrupt, and a
//! request the device has not completed in 30 s fails with EIO.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use virtio_drivers::device::blk::{BlkReq, BlkResp, VirtIOBlk};
use virtio_drivers::transport::pci::PciTransport;
use virtio_drivers::transport::pci::bus::{ConfigurationAccess, DeviceFunction, PciRoot};
use virtio_drivers::{BufferDirection, Hal, PhysAddr};

use super::layer::{BlockDev, SECTOR, add_disk, next_disk_name};
use crate::arch::idt::TrapFrame;
use crate::arch::{apic, idt, ioapic};
use crate::errno::{Errno, KResult};
use crate::mm::dma::DmaBuffer;
use crate::mm::layout::PHYS_OFFSET;
use crate::mm::mmio::{self, Cache};
use crate::pci::{self, PciAddress};
use crate::sched::wait::WaitQueue;
use crate::sync::Mutex;
use crate::sync::spin::IrqSpinLock;

const PAGE: usize = 4096;
const CHUNK: usize = 128 << 10;
/// The linear map covers at most this much RAM (PML4 slot 256 = 512 GiB).
const LINEAR_SPAN: u64 = 512 << 30;

/// Bounce buffers for memory the device cannot reach by `virt - PHYS_OFFSET` (the heap,
/// stacks), keyed by their physical address.
static BOUNCE: IrqSpinLock<BTreeMap<u64, DmaBuffer>> = IrqSpinLock::new(BTreeMap::new());

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
                (pa, NonNull::new(va as *mut u8).unwrap_or(NonNull::dangling()))
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
        if va >= PHYS_OFFSET && va - PHYS_OFFSET + len as u64 <= LINEAR_SPAN {
            return va - PHYS_OFFSET;
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
        let Some(mut b) = BOUNCE.lock().remove(&paddr) else { return };
        if direction != BufferDirection::DriverToDevice {
            let len = buffer.len();
            // SAFETY: the same buffer that was shared, valid for writes and no longer used by
            // the device; the virtqueue holds the only reference while it unshares.
            let dst = unsafe { buffer.as_mut() };
            dst.copy_from_slice(&b.as_mut_slice()[..len]);
        }
    }
}

/// Configuration space access for the crate's PCI transport, through the kernel's.
struct Cfg {
    segment: u16,
}

impl ConfigurationAccess for Cfg {
    fn read_word(&self, df: DeviceFunction, off: u8) -> u32 {
        pci::read_config(PciAddress::new(self.segment, df.bus, df.device, df.function), off as u16)
    }
    fn write_word(&mut self, df: DeviceFunction, off: u8, data: u32) {
        pci::write_config(PciAddress::new(self.segment, df.bus, df.device, df.function), off as u16, data)
    }
    unsafe fn unsafe_clone(&self) -> Self {
        Cfg { segment: self.segment }
    }
}

type Blk = VirtIOBlk<KernelHal, PciTransport>;

pub struct VirtioDisk {
    name: String,
    sectors: u64,
    ro: bool,
    /// The request queue: holders submit one request at a time through this buffer.
    queue: Mutex<DmaBuffer>,
    hw: IrqSpinLock<Blk>,
    irq_seen: AtomicBool,
    wq: WaitQueue,
    pub interrupts: AtomicU64,
    pub requests: AtomicU64,
}

static DISKS: IrqSpinLock<Vec<Arc<VirtioDisk>>> = IrqSpinLock::new(Vec::new());
static VECTORS: IrqSpinLock<BTreeMap<u32, u8>> = IrqSpinLock::new(BTreeMap::new());

fn irq_handler(_f: &mut TrapFrame) {
    let disks = DISKS.lock().clone();
    for d in disks {
        let used = {
            let mut hw = d.hw.lock();
            hw.ack_interrupt();
            hw.peek_used().is_some()
        };
        if used {
            d.interrupts.fetch_add(1, Ordering::Relaxed);
            d.irq_seen.store(true, Ordering::Release);
            d.wq.wake_all();
        }
    }
}

impl VirtioDisk {
    fn io(&self, lba: u64, data: IoBuf<'_>) -> KResult<()> {
        let len = data.len();
        if len % SECTOR as usize != 0 || lba.checked_add(len as u64 / SECTOR).is_none_or(|e| e > self.sectors) {
            return Err(Errno::EIO);
        }
        let write = matches!(data, IoBuf::Write(_));
        if write && self.ro {
            return Err(Errno::EROFS);
        }
        let mut dma = self.queue.lock();
        let mut done = 0usize;
        let mut data = data;
        while done < len {
            let n = CHUNK.min(len - done);
            let sector = lba + (done as u64 / SECTOR);
            if let IoBuf::Write(src) = &data {
                dma.as_mut_slice()[..n].copy_from_slice(&src[done..done + n]);
            }
            self.one(&mut dma, sector, n, write)?;
            if let IoBuf::Read(dst) = &mut data {
                dst[done..done + n].copy_from_slice(&dma.as_mut_slice()[..n]);
            }
            done += n;
        }
        Ok(())
    }

    /// One request of `n` bytes through `dma`, waited for.
    fn one(&self, dma: &mut DmaBuffer, sector: u64, n: usize, write: bool) -> KResult<()> {
        let mut req = BlkReq::default();
        let mut resp = BlkResp::default();
        let buf = &mut dma.as_mut_slice()[..n];
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.irq_seen.store(false, Ordering::Release);
        let token = {
            let mut hw = self.hw.lock();
            // SAFETY: req, buf and resp stay alive and untouched until the request is
            // completed below (or the disk is abandoned: see the timeout path).
            let r = unsafe {
                if write { hw.write_blocks_nb(sector as usize, &mut req, buf, &mut resp) } else { hw.read_blocks_nb(sector as usize, &mut req, buf, &mut resp) }
            };
            r.map_err(|_| Errno::EIO)?
        };
        let give_up = crate::time::now_ns() + 30_000_000_000;
        loop {
            let now = crate::time::now_ns();
            self.wq.wait_until(|| self.irq_seen.load(Ordering::Acquire), Some(now + 10_000_000));
            self.irq_seen.store(false, Ordering::Release);
            let mut hw = self.hw.lock();
            if hw.peek_used() == Some(token) {
                // SAFETY: the same buffers as submitted, for the completed token.
                let r = unsafe {
                    if write { hw.complete_write_blocks(token, &req, buf, &mut resp) } else { hw.complete_read_blocks(token, &req, buf, &mut resp) }
                };
                return r.map_err(|_| Errno::EIO);
            }
            drop(hw);
            if crate::time::now_ns() > give_up {
                log::error!("{}: request for sector {sector} timed out; the disk is unusable", self.name);
                // The device may still write into req/buf/resp: leak them.
                core::mem::forget(req);
                core::mem::forget(resp);
                return Err(Errno::EIO);
            }
        }
    }
}

enum IoBuf<'a> {
    Read(&'a mut [u8]),
    Write(&'a [u8]),
}

impl IoBuf<'_> {
    fn len(&self) -> usize {
        match self {
            IoBuf::Read(b) => b.len(),
            IoBuf::Write(b) => b.len(),
        }
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
        self.io(lba, IoBuf::Read(buf))
    }
    fn write_sectors(&self, lba: u64, buf: &[u8]) -> KResult<()> {
        self.io(lba, IoBuf::Write(buf))
    }
    fn flush(&self) -> KResult<()> {
        let _q = self.queue.lock();
        self.hw.lock().flush().map_err(|_| Errno::EIO)
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
    DISKS.lock().iter().map(|d| (d.name.clone(), d.interrupts.load(Ordering::Relaxed), d.requests.load(Ordering::Relaxed))).collect()
}

pub fn probe_all() {
    let devs: Vec<_> = pci::devices().iter().filter(|d| d.vendor_id == 0x1af4 && (d.device_id == 0x1001 || d.device_id == 0x1042)).collect();
    for d in devs {
        if let Err(e) = probe(d) {
            log::warn!("virtio-blk {:?}: not brought up: {e}", d.addr);
        }
    }
}

fn probe(d: &'static crate::pci::PciDevice) -> Result<(), String> {
    use alloc::format;
    pci::enable_memory(d);
    pci::enable_io(d);
    pci::enable_bus_master(d);
    let mut root = PciRoot::new(Cfg { segment: d.addr.segment() });
    let df = DeviceFunction { bus: d.addr.bus(), device: d.addr.device(), function: d.addr.function() };
    let transport = PciTransport::new::<KernelHal, Cfg>(&mut root, df).map_err(|e| format!("transport: {e} (a legacy-only device without virtio 1.0 capabilities is not supported)"))?;
    let blk = Blk::new(transport).map_err(|e| format!("init: {e:?}"))?;
    let sectors = blk.capacity();
    let ro = blk.readonly();
    let dma = DmaBuffer::alloc(CHUNK, PAGE, u64::MAX).ok_or("no DMA memory")?;
    let (index, name) = next_disk_name();
    let disk = Arc::new(VirtioDisk {
        name,
        sectors,
        ro,
        queue: Mutex::new(dma),
        hw: IrqSpinLock::new(blk),
        irq_seen: AtomicBool::new(false),
        wq: WaitQueue::new(),
        interrupts: AtomicU64::new(0),
        requests: AtomicU64::new(0),
    });
    DISKS.lock().push(disk.clone());
    match pci::irq(d) {
        Some(gsi) => {
            let vector = {
                let mut v = VECTORS.lock();
                match v.get(&gsi) {
                    Some(&x) => Some(x),
                    None => {
                        let x = ioapic::alloc_vector();
                        if let Some(x) = x {
                            idt::register(x, irq_handler);
                            v.insert(gsi, x);
                        }
                        x
                    }
                }
            };
            match vector {
                Some(vec) => {
                    // PCI INTx: level-triggered, active low.
                    if ioapic::route(gsi, vec, apic::id(), true, true).is_ok() {
                        disk.hw.lock().enable_interrupts();
                        let _ = ioapic::unmask(gsi);
                    } else {
                        log::warn!("{}: GSI {gsi} not routable; polling every 10 ms", disk.name);
                    }
                }
                None => log::warn!("{}: no free vector; polling every 10 ms", disk.name),
            }
        }
        None => log::warn!("{}: no routed INTx; polling every 10 ms", disk.name),
    }
    add_disk(index, disk);
    Ok(())
}
