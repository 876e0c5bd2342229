//! PCI devices for the rump kernel: the kernel side of `rumpcomp_pci_*` (NetBSD's
//! `sys/rump/dev/lib/libpci/pci_user.h`), for every rump driver that owns a PCI function —
//! USB host controllers today, network and audio controllers next.
//!
//! * **Ownership.** [`give`] hands a function to the rump kernel and records it in the
//!   kernel's one ownership table ([`crate::pci::claim`]; `/proc/drivers` prints it). NetBSD's
//!   PCI bus walks every slot of bus 0 (and turns on memory decoding of what it finds), so
//!   configuration space answers only for functions the rump kernel owns: the others read
//!   as absent (all ones) and ignore writes, and a native driver's device is never touched.
//! * **Registers.** BARs are mapped uncached through the MMIO window, and only inside a BAR
//!   of an owned function. Port I/O needs nothing: rump's `bus_space` does `in`/`out` itself
//!   (the kernel runs at CPL 0).
//! * **DMA.** `dmalloc` hands out physically contiguous, naturally aligned blocks below
//!   4 GiB from the frame allocator, reached through the linear map (rump merges DMA
//!   segments by *virtual* contiguity; in the linear map that is physical contiguity too).
//!   `virt_to_mach` translates linear-map addresses arithmetically and anything else (heap)
//!   through the page tables.
//! * **Interrupts.** `irq_map` resolves the function's INTx pin through the kernel's ACPI
//!   routing (the GSI in the boot banner's PCI lines), falling back to the firmware's
//!   interrupt line. `irq_establish` attaches a hard handler to the shared line
//!   ([`crate::irq`]) that only masks the line and wakes the line's interrupt thread; that
//!   thread owns a rump lwp, takes a rump virtual CPU, runs every NetBSD handler of the line,
//!   releases the CPU and unmasks the line. NetBSD code never runs in hard-interrupt context
//!   and never with interrupts off.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ffi::c_void;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rumpuser_adros::Errno as NbErrno;
use rumpuser_adros::host::{DmaBlock, IrqHandler, PciAddr};

use crate::mm::dma::{self, DmaBuffer};
use crate::mm::layout::PHYS_OFFSET;
use crate::mm::mmio::{self, Cache};
use crate::mm::phys;
use crate::pci::{self, PciDevice};
use crate::sched::wait::WaitQueue;

/// Hands `dev` to the rump kernel (before `rump_init`, which attaches NetBSD's drivers to
/// what it finds). Fails with the current owner when a native driver has it.
pub fn give(dev: &'static PciDevice, driver: &'static str) -> Result<(), pci::Owner> {
    pci::claim(
        dev.addr,
        pci::Owner {
            stack: "rump",
            driver,
        },
    )?;
    log::info!(
        "rump: PCI {} ({:04x}:{:04x}) given to the rump kernel: {driver}",
        adros_pci::slot_name(dev.addr),
        dev.vendor_id,
        dev.device_id
    );
    Ok(())
}

/// The rump-owned function at `a` (segment 0: rump's PCI bus is bus 0 of segment 0).
fn owned(a: PciAddr) -> Option<&'static PciDevice> {
    let d = pci::devices().iter().find(|d| {
        d.addr.segment() == 0
            && u32::from(d.addr.bus()) == a.bus
            && u32::from(d.addr.device()) == a.dev
            && u32::from(d.addr.function()) == a.fun
    })?;
    (pci::owner(d.addr)?.stack == "rump").then_some(d)
}

pub fn conf_read(a: PciAddr, reg: u32) -> Result<u32, NbErrno> {
    let d = owned(a).ok_or(NbErrno::ENXIO)?;
    Ok(pci::read_config(d.addr, reg as u16))
}

pub fn conf_write(a: PciAddr, reg: u32, val: u32) -> Result<(), NbErrno> {
    let d = owned(a).ok_or(NbErrno::ENXIO)?;
    pci::write_config(d.addr, reg as u16, val);
    Ok(())
}

/// Maps `[pa, pa + len)` uncached, if it lies inside a memory BAR of a rump-owned function.
pub fn map(pa: u64, len: u64) -> Option<NonNull<u8>> {
    let end = pa.checked_add(len)?;
    let inside = pci::devices().iter().any(|d| {
        pci::owner(d.addr).is_some_and(|o| o.stack == "rump")
            && d.bars.iter().flatten().any(|b| {
                b.is_memory() && b.address != 0 && pa >= b.address && end <= b.address + b.size
            })
    });
    if !inside {
        log::warn!(
            "rump: rumpcomp_pci_map({pa:#x}, {len:#x}) is not inside a BAR of a rump-owned function: refused"
        );
        return None;
    }
    match mmio::map(pa, len, Cache::Uncached) {
        Ok(va) => NonNull::new(va as *mut u8),
        Err(e) => {
            log::warn!("rump: cannot map BAR {pa:#x}+{len:#x}: {e:?}");
            None
        }
    }
}

/// DMA blocks handed out, by virtual address: (physical address, frames).
static DMA: crate::sync::spin::IrqSpinLock<BTreeMap<usize, (u64, usize)>> =
    crate::sync::spin::IrqSpinLock::new(BTreeMap::new());
static DMA_BYTES: AtomicU64 = AtomicU64::new(0);

pub fn dmalloc(size: usize, align: usize) -> Result<DmaBlock, NbErrno> {
    super::audio::quirk_before_dma();
    // Naturally aligned (to the size rounded up to a power of two), as rump asks of its
    // host; EHCI, UHCI, OHCI and HDA need 32-bit bus addresses.
    let natural = size.next_power_of_two().max(align);
    let b = DmaBuffer::alloc(size, natural, 1 << 32).ok_or_else(|| {
        log::warn!("rump: no contiguous DMA memory below 4 GiB for {size} bytes");
        NbErrno::ENOMEM
    })?;
    let va = b.virt() as usize;
    let (pa, frames) = b.into_raw();
    DMA.lock().insert(va, (pa, frames));
    DMA_BYTES.fetch_add(frames as u64 * 4096, Ordering::Relaxed);
    Ok(DmaBlock { pa, va })
}

pub fn dmafree(va: usize, _size: usize) {
    match DMA.lock().remove(&va) {
        Some((pa, frames)) => {
            DMA_BYTES.fetch_sub(frames as u64 * 4096, Ordering::Relaxed);
            dma::free_raw(pa, frames);
        }
        None => log::warn!("rump: rumpcomp_pci_dmafree({va:#x}): not a DMA block; ignored"),
    }
}

/// One VA for the segments: they come from one `dmalloc` block, so in the linear map they
/// are contiguous exactly when they are physically contiguous.
pub fn dmamem_map(segs: &[(u64, u64)], _total: usize) -> Result<NonNull<u8>, NbErrno> {
    let (first, _) = *segs.first().ok_or(NbErrno::EINVAL)?;
    let mut next = first;
    for &(pa, len) in segs {
        if pa != next {
            log::warn!("rump: dmamem_map of physically discontiguous segments is not supported");
            return Err(NbErrno::EINVAL);
        }
        next = pa + len;
    }
    NonNull::new(phys::phys_to_virt(first) as *mut u8).ok_or(NbErrno::EINVAL)
}

pub fn virt_to_mach(va: usize) -> u64 {
    let va = va as u64;
    if (PHYS_OFFSET..crate::mm::layout::HEAP_BASE).contains(&va) {
        return phys::virt_to_phys(va);
    }
    match crate::mm::paging::query(va) {
        Some((pa, _)) => pa,
        None => {
            log::error!("rump: virt_to_mach({va:#x}): not mapped");
            0
        }
    }
}

/// `irq_map` cookies: cookie → GSI.
static COOKIES: crate::sync::spin::IrqSpinLock<BTreeMap<u32, (u32, String)>> =
    crate::sync::spin::IrqSpinLock::new(BTreeMap::new());

pub fn irq_map(a: PciAddr, intrline: i32, cookie: u32) -> Result<(), NbErrno> {
    let d = owned(a).ok_or(NbErrno::ENXIO)?;
    let gsi = match pci::irq(d) {
        Some(g) => g,
        None if (1..16).contains(&intrline) => {
            log::warn!(
                "rump: {}: no ACPI routing for its INTx; using the firmware's line {intrline}",
                adros_pci::slot_name(d.addr)
            );
            intrline as u32
        }
        None => {
            log::warn!(
                "rump: {}: no interrupt routing (line {intrline})",
                adros_pci::slot_name(d.addr)
            );
            return Err(NbErrno::EINVAL);
        }
    };
    COOKIES
        .lock()
        .insert(cookie, (gsi, adros_pci::slot_name(d.addr)));
    Ok(())
}

/// A NetBSD interrupt handler and its argument.
struct Hand {
    f: IrqHandler,
    arg: usize,
}

/// One shared line's rump side: its handlers and the thread that runs them.
struct RumpLine {
    gsi: u32,
    hands: spin::Mutex<Vec<Hand>>,
    pending: AtomicBool,
    wq: WaitQueue,
    fired: AtomicU64,
    claimed: AtomicU64,
}

static LINES: spin::Mutex<BTreeMap<u32, Arc<RumpLine>>> = spin::Mutex::new(BTreeMap::new());

pub fn irq_establish(cookie: u32, f: IrqHandler, arg: *mut c_void) -> Option<NonNull<c_void>> {
    let Some((gsi, slot)) = COOKIES.lock().get(&cookie).cloned() else {
        log::warn!("rump: irq_establish: unknown cookie {cookie}");
        return None;
    };
    let mut lines = LINES.lock();
    let line = match lines.get(&gsi) {
        Some(l) => l.clone(),
        None => {
            let l = Arc::new(RumpLine {
                gsi,
                hands: spin::Mutex::new(Vec::new()),
                pending: AtomicBool::new(false),
                wq: WaitQueue::new(),
                fired: AtomicU64::new(0),
                claimed: AtomicU64::new(0),
            });
            let t = l.clone();
            crate::sched::thread::spawn("rump-intr", move || intr_thread(t));
            let h = l.clone();
            let hard = alloc::boxed::Box::new(move || {
                // Hard-interrupt context: no NetBSD code here. Mask the (level) line so it
                // does not fire again before the handlers have quieted the device.
                crate::irq::mask(h.gsi);
                h.fired.fetch_add(1, Ordering::Relaxed);
                h.pending.store(true, Ordering::Release);
                h.wq.wake_all();
            });
            if let Err(e) = crate::irq::attach(gsi, "rump", hard) {
                log::warn!("rump: {slot}: cannot attach GSI {gsi}: {e:?}");
                return None;
            }
            lines.insert(gsi, l.clone());
            l
        }
    };
    drop(lines);
    let mut hands = line.hands.lock();
    hands.push(Hand {
        f,
        arg: arg as usize,
    });
    log::info!("rump: {slot}: NetBSD interrupt handler on GSI {gsi} (run by thread rump-intr)");
    // Any non-null handle: rump never disestablishes (pci_intr_disestablish panics).
    NonNull::new(hands.len() as *mut c_void)
}

fn intr_thread(line: Arc<RumpLine>) {
    use rumpuser_adros::hyp;
    // The thread's own rump lwp, as NetBSD's host and rumprun give interrupt threads.
    hyp::hyp_schedule();
    let rv = hyp::lwproc_newlwp(0);
    hyp::hyp_unschedule();
    if rv != 0 {
        log::error!(
            "rump: interrupt thread for GSI {}: no lwp ({rv}); line stays masked",
            line.gsi
        );
        return;
    }
    loop {
        line.wq
            .wait_until(|| line.pending.swap(false, Ordering::AcqRel), None);
        if super::is_dead() {
            // Leave the line masked: nobody can quiet the device any more.
            log::warn!(
                "rump: GSI {}: the rump kernel is dead; line left masked",
                line.gsi
            );
            loop {
                crate::sched::thread::park(None);
            }
        }
        let hands: Vec<(IrqHandler, usize)> =
            line.hands.lock().iter().map(|h| (h.f, h.arg)).collect();
        hyp::schedule(0, core::ptr::null_mut());
        let mut claimed = 0;
        for (f, arg) in hands {
            if f(arg as *mut c_void) != 0 {
                claimed += 1;
            }
        }
        hyp::unschedule(core::ptr::null_mut());
        if claimed > 0 {
            line.claimed.fetch_add(1, Ordering::Relaxed);
        }
        crate::irq::unmask(line.gsi);
    }
}

/// `/proc/drivers` lines: DMA memory in use, and each rump interrupt line's counts.
pub fn report() -> Vec<String> {
    let mut v = alloc::vec![alloc::format!(
        "rump-dma blocks={} bytes={}",
        DMA.lock().len(),
        DMA_BYTES.load(Ordering::Relaxed)
    )];
    for l in LINES.lock().values() {
        v.push(alloc::format!(
            "rump-intr gsi={} handlers={} interrupts={} claimed={}",
            l.gsi,
            l.hands.lock().len(),
            l.fired.load(Ordering::Relaxed),
            l.claimed.load(Ordering::Relaxed)
        ));
    }
    v
}
