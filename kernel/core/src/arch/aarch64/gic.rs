//! The GICv3 interrupt controller: the distributor (shared peripheral interrupts), this CPU's
//! redistributor (its private and software-generated interrupts) and the CPU interface
//! through the ICC_* system registers. Everything is Group 1, non-secure; QEMU `virt`
//! without `secure=on` runs the GIC with a single security state.
//!
//! Device interrupts are SPIs (IDs 32 and up): each has one [`SpiHandler`], which the layer
//! above (the kernel's `irq` module) installs with [`route_spi`]; the trigger comes from the
//! device tree ([`set_trigger`] at boot), the target is the CPU that routes it, and
//! [`unmask_spi`]/[`mask_spi`] switch it on and off at the distributor.

use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use super::exceptions::TrapFrame;
use crate::devicetree::GicV3;
use crate::mm::layout::MMIO_OFFSET;

/// The software-generated interrupt that asks a CPU to reschedule.
pub const SGI_RESCHED: u32 = 1;
/// The one that stops a CPU for good (the panic report's).
pub const SGI_STOP: u32 = 2;

const GICD_CTLR: u64 = 0x0000;
const GICD_TYPER: u64 = 0x0004;
const GICD_IGROUPR: u64 = 0x0080;
const GICD_ISENABLER: u64 = 0x0100;
const GICD_ICENABLER: u64 = 0x0180;
const GICD_IPRIORITYR: u64 = 0x0400;
const GICD_ICFGR: u64 = 0x0c00;
const GICD_IROUTER: u64 = 0x6000;
const CTLR_RWP: u32 = 1 << 31;
const CTLR_ARE: u32 = 1 << 4;
const CTLR_ENABLE_G1: u32 = 1 << 1;
const CTLR_ENABLE_G0: u32 = 1 << 0;

const GICR_FRAME: u64 = 0x2_0000;
const GICR_TYPER: u64 = 0x0008;
const GICR_WAKER: u64 = 0x0014;
const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
const TYPER_LAST: u64 = 1 << 4;
/// The SGI/PPI frame of a redistributor.
const SGI_BASE: u64 = 0x1_0000;
const GICR_IGROUPR0: u64 = 0x0080;
const GICR_ISENABLER0: u64 = 0x0100;
const GICR_ICENABLER0: u64 = 0x0180;
const GICR_IPRIORITYR: u64 = 0x0400;

/// The boot device window covers physical 0..1 GiB (see boot.S).
const WINDOW: u64 = 1 << 30;

static DIST: AtomicU64 = AtomicU64::new(0);
/// How many interrupt IDs the distributor implements (GICD_TYPER).
static LINES: AtomicU32 = AtomicU32::new(0);
/// Serialises read-modify-write of the distributor's shared registers.
static DIST_LOCK: crate::sync::spin::IrqSpinLock<()> = crate::sync::spin::IrqSpinLock::new(());
/// The GIC as the device tree described it, for the secondary CPUs.
static CONFIG: spin::Once<GicV3> = spin::Once::new();
static SPURIOUS: AtomicUsize = AtomicUsize::new(0);
static UNEXPECTED: AtomicUsize = AtomicUsize::new(0);

/// A handler for one interrupt ID (interrupt context, IRQs masked).
pub type Handler = fn(&mut TrapFrame);

const MAX_INTID: usize = 1020;
static HANDLERS: [AtomicUsize; 32] = [const { AtomicUsize::new(0) }; 32];

/// A handler for shared peripheral interrupts, given the interrupt's ID (interrupt
/// context, IRQs masked; the interrupt ends when it returns).
pub type SpiHandler = fn(u32, &mut TrapFrame);
static SPI_HANDLERS: [AtomicUsize; MAX_INTID - 32] =
    [const { AtomicUsize::new(0) }; MAX_INTID - 32];

fn rd32(va: u64) -> u32 {
    // SAFETY: `va` is a register of the GIC's frames in the boot device window
    // (Device-nGnRnE), checked against the device tree's ranges by `init`.
    unsafe { (va as *const u32).read_volatile() }
}

fn wr32(va: u64, v: u32) {
    // SAFETY: as in `rd32`.
    unsafe { (va as *mut u32).write_volatile(v) }
}

fn wr64(va: u64, v: u64) {
    // SAFETY: as in `rd32`, for a 64-bit register.
    unsafe { (va as *mut u64).write_volatile(v) }
}

fn rd64(va: u64) -> u64 {
    // SAFETY: as in `rd32`, for a 64-bit register.
    unsafe { (va as *const u64).read_volatile() }
}

/// Why the GIC could not be set up.
#[derive(Debug)]
pub enum Error {
    OutsideWindow,
    NotInitialised,
    NoRedistributor(u64),
    /// Not a shared peripheral interrupt this distributor implements.
    NotAnSpi(u32),
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::OutsideWindow => {
                write!(f, "the GIC's registers lie above 1 GiB (not mapped yet)")
            }
            Error::NotInitialised => write!(f, "the boot CPU has not set the GIC up"),
            Error::NoRedistributor(m) => {
                write!(f, "no redistributor answers for this CPU (MPIDR {m:#x})")
            }
            Error::NotAnSpi(id) => write!(
                f,
                "interrupt {id} is not a shared peripheral interrupt of this GIC (32..{})",
                LINES.load(Ordering::Relaxed)
            ),
        }
    }
}

/// Enables the distributor (affinity routing, Group 1) and this CPU's redistributor and
/// CPU interface. Returns the number of interrupt lines the distributor has.
pub fn init(g: &GicV3) -> Result<u32, Error> {
    if g.dist + g.dist_size > WINDOW || g.redist + g.redist_size > WINDOW {
        return Err(Error::OutsideWindow);
    }
    let d = MMIO_OFFSET + g.dist;
    DIST.store(d, Ordering::Relaxed);
    wr32(d + GICD_CTLR, 0);
    wait_rwp(d);
    wr32(d + GICD_CTLR, CTLR_ARE | CTLR_ENABLE_G1 | CTLR_ENABLE_G0);
    wait_rwp(d);
    let lines = (32 * ((rd32(d + GICD_TYPER) & 0x1f) + 1)).min(MAX_INTID as u32);
    LINES.store(lines, Ordering::Relaxed);
    CONFIG.call_once(|| *g);
    init_this_cpu(g)?;
    Ok(lines)
}

/// [`init_this_cpu`] on a secondary CPU, with what the boot CPU's [`init`] found.
pub fn init_secondary() -> Result<(), Error> {
    let g = CONFIG.get().ok_or(Error::NotInitialised)?;
    init_this_cpu(g)
}

fn wait_rwp(d: u64) {
    for _ in 0..1_000_000 {
        if rd32(d + GICD_CTLR) & CTLR_RWP == 0 {
            return;
        }
        core::hint::spin_loop();
    }
}

/// This CPU's redistributor frame (virtual), found by its affinity.
fn find_redistributor(g: &GicV3, mpidr: u64) -> Option<u64> {
    let want = ((mpidr >> 32) & 0xff) << 24 | (mpidr & 0xff_ffff);
    let mut off = 0;
    while off + GICR_FRAME <= g.redist_size {
        let r = MMIO_OFFSET + g.redist + off;
        let typer = rd64(r + GICR_TYPER);
        if typer >> 32 == want {
            return Some(r);
        }
        if typer & TYPER_LAST != 0 {
            break;
        }
        off += GICR_FRAME;
    }
    None
}

/// Wakes this CPU's redistributor, puts its SGIs and PPIs in Group 1 (all masked), and
/// turns on the CPU interface (system registers, priority mask open, Group 1 enabled).
pub fn init_this_cpu(g: &GicV3) -> Result<(), Error> {
    let mpidr = super::cpu::mpidr();
    let r = find_redistributor(g, mpidr).ok_or(Error::NoRedistributor(mpidr))?;
    let w = rd32(r + GICR_WAKER);
    wr32(r + GICR_WAKER, w & !WAKER_PROCESSOR_SLEEP);
    for _ in 0..1_000_000 {
        if rd32(r + GICR_WAKER) & WAKER_CHILDREN_ASLEEP == 0 {
            break;
        }
        core::hint::spin_loop();
    }
    let s = r + SGI_BASE;
    wr32(s + GICR_ICENABLER0, u32::MAX);
    wr32(s + GICR_IGROUPR0, u32::MAX);
    for i in 0..8 {
        wr32(s + GICR_IPRIORITYR + 4 * i, 0xa0a0_a0a0);
    }
    super::percpu::current().gic_sgi.store(s, Ordering::Relaxed);
    // SAFETY: the GICv3 CPU interface's own registers on this CPU: system-register access
    // on, any priority let through, no preemption grouping, Group 1 on.
    unsafe {
        core::arch::asm!(
            "msr icc_sre_el1, {sre}",
            "isb",
            "msr icc_pmr_el1, {pmr}",
            "msr icc_bpr1_el1, xzr",
            "msr icc_igrpen1_el1, {one}",
            "isb",
            sre = in(reg) 0x7u64,
            pmr = in(reg) 0xffu64,
            one = in(reg) 1u64,
            options(nostack, preserves_flags)
        );
    }
    enable_private(SGI_RESCHED, crate::sched::resched_ipi);
    enable_private(SGI_STOP, |_| super::halt_forever());
    Ok(())
}

/// Routes private interrupt `intid` (an SGI 0–15 or PPI 16–31) to `handler` (the same on
/// every CPU) and unmasks it on this CPU.
pub fn enable_private(intid: u32, handler: Handler) {
    let Some(slot) = HANDLERS.get(intid as usize) else {
        return;
    };
    slot.store(handler as usize, Ordering::Release);
    let s = super::percpu::current().gic_sgi.load(Ordering::Relaxed);
    if s != 0 {
        wr32(s + GICR_ISENABLER0, 1 << intid);
    }
}

/// The distributor's address and the register bit of SPI `intid`, if it is one.
fn spi(intid: u32) -> Result<(u64, u64, u32), Error> {
    let d = DIST.load(Ordering::Relaxed);
    if d == 0 {
        return Err(Error::NotInitialised);
    }
    if intid < 32 || intid >= LINES.load(Ordering::Relaxed) {
        return Err(Error::NotAnSpi(intid));
    }
    Ok((d, u64::from(intid / 32) * 4, 1 << (intid % 32)))
}

/// Programs SPI `intid` edge- or level-triggered (from the device tree's flags). The
/// interrupt stays masked.
pub fn set_trigger(intid: u32, edge: bool) -> Result<(), Error> {
    let (d, _, _) = spi(intid)?;
    let reg = d + GICD_ICFGR + u64::from(intid / 16) * 4;
    let bit = 2 * (intid % 16) + 1;
    let _g = DIST_LOCK.lock();
    let v = rd32(reg);
    wr32(reg, if edge { v | 1 << bit } else { v & !(1 << bit) });
    Ok(())
}

/// Makes `handler` SPI `intid`'s, in Group 1 at the usual priority, delivered to this CPU.
/// The interrupt stays masked until [`unmask_spi`].
pub fn route_spi(intid: u32, handler: SpiHandler) -> Result<(), Error> {
    let (d, word, bit) = spi(intid)?;
    let slot = SPI_HANDLERS
        .get(intid as usize - 32)
        .ok_or(Error::NotAnSpi(intid))?;
    slot.store(handler as usize, Ordering::Release);
    let mpidr = super::cpu::mpidr();
    // IROUTER: Aff3 in bits 39:32, Aff2.Aff1.Aff0 in 23:0; Interrupt_Routing_Mode 0 (this PE).
    let route = ((mpidr >> 32) & 0xff) << 32 | (mpidr & 0xff_ffff);
    let _g = DIST_LOCK.lock();
    wr32(d + GICD_ICENABLER + word, bit);
    let g = rd32(d + GICD_IGROUPR + word);
    wr32(d + GICD_IGROUPR + word, g | bit);
    let preg = d + GICD_IPRIORITYR + u64::from(intid & !3);
    let shift = 8 * (intid % 4);
    wr32(preg, (rd32(preg) & !(0xff << shift)) | 0xa0 << shift);
    wr64(d + GICD_IROUTER + 8 * u64::from(intid), route);
    Ok(())
}

/// Lets SPI `intid` through the distributor.
pub fn unmask_spi(intid: u32) {
    if let Ok((d, word, bit)) = spi(intid) {
        wr32(d + GICD_ISENABLER + word, bit);
    }
}

/// Holds SPI `intid` back at the distributor (callable from its handler).
pub fn mask_spi(intid: u32) {
    if let Ok((d, word, bit)) = spi(intid) {
        wr32(d + GICD_ICENABLER + word, bit);
        wait_rwp(d);
    }
}

/// Sends SGI `intid` to the CPU with affinity `mpidr`.
pub fn send_sgi(mpidr: u64, intid: u32) {
    let aff0 = mpidr & 0xf;
    let v = ((mpidr >> 32) & 0xff) << 48
        | ((mpidr >> 16) & 0xff) << 32
        | ((mpidr >> 8) & 0xff) << 16
        | u64::from(intid & 0xf) << 24
        | (1 << aff0);
    // SAFETY: writing ICC_SGI1R_EL1 only raises an SGI at the named CPU.
    unsafe {
        core::arch::asm!("msr icc_sgi1r_el1, {}", "isb", in(reg) v, options(nostack, preserves_flags))
    };
}

/// The IRQ entry: acknowledges and dispatches every pending interrupt, then signals their end.
pub fn handle_irq(frame: &mut TrapFrame) {
    let mut handled = 0;
    loop {
        let iar: u64;
        // SAFETY: acknowledging reads the highest-priority pending interrupt's ID.
        unsafe {
            core::arch::asm!("mrs {}, icc_iar1_el1", out(reg) iar, options(nostack, preserves_flags))
        };
        let intid = (iar & 0xff_ffff) as usize;
        if intid >= MAX_INTID {
            // Nothing (more) pending; an entry that found nothing at all was spurious.
            if handled == 0 {
                SPURIOUS.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        handled += 1;
        if intid >= 32 {
            let h = SPI_HANDLERS
                .get(intid - 32)
                .map_or(0, |h| h.load(Ordering::Acquire));
            if h != 0 {
                // SAFETY: only `route_spi` stores into SPI_HANDLERS, and only `SpiHandler`s.
                let f: SpiHandler = unsafe { core::mem::transmute::<usize, SpiHandler>(h) };
                f(intid as u32, frame);
            } else {
                // Masked, so a level-triggered line does not fire forever.
                mask_spi(intid as u32);
                UNEXPECTED.fetch_add(1, Ordering::Relaxed);
                log::warn!("gic: interrupt {intid} has no handler; masked");
            }
        } else if let Some(h) = HANDLERS
            .get(intid)
            .map(|h| h.load(Ordering::Acquire))
            .filter(|&h| h != 0)
        {
            // SAFETY: only `enable_private` stores into HANDLERS, and only `Handler`s.
            let f: Handler = unsafe { core::mem::transmute::<usize, Handler>(h) };
            f(frame);
        } else {
            UNEXPECTED.fetch_add(1, Ordering::Relaxed);
            log::warn!("gic: interrupt {intid} has no handler");
        }
        // SAFETY: signals the end of the interrupt just acknowledged.
        unsafe {
            core::arch::asm!("msr icc_eoir1_el1, {}", in(reg) iar, options(nostack, preserves_flags))
        };
    }
}

/// (spurious acknowledgements, interrupts without a handler) since boot.
pub fn stats() -> (usize, usize) {
    (
        SPURIOUS.load(Ordering::Relaxed),
        UNEXPECTED.load(Ordering::Relaxed),
    )
}
