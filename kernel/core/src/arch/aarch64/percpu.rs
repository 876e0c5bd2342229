//! Per-CPU data, reached through TPIDR_EL1 (which holds this CPU's block; EL0 cannot read
//! it). Reading a field takes two instructions, so the accessors that must name the CPU
//! they run on keep IRQs masked across them (x86_64 does it in one GS-relative load).

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use alloc::boxed::Box;

use crate::sched::CpuSched;

pub struct PerCpu {
    /// The running thread's NetBSD rump `curlwp` (unused on aarch64 until rump is built
    /// for it; the scheduler saves and restores it all the same).
    pub rump_lwp: AtomicU64,
    /// The running thread (`Arc::as_ptr` of the scheduler's `current`; 0 before the
    /// scheduler runs here).
    pub current_thread: AtomicU64,
    pub cpu_id: usize,
    /// This CPU's MPIDR affinity (the GIC routes SGIs by it; PSCI starts CPUs by it).
    pub mpidr: u64,
    pub sched: CpuSched,
    pub online: AtomicBool,
    /// This CPU's GICv3 redistributor SGI/PPI frame (virtual; 0 until set up).
    pub gic_sgi: AtomicU64,
    /// The generic timer's next compare value on this CPU.
    pub timer_next: AtomicU64,
}

static READY: AtomicBool = AtomicBool::new(false);

/// Allocates and installs this CPU's block. Call once per CPU, early (after the heap).
pub fn init_this_cpu(cpu_id: usize, mpidr: u64) -> &'static PerCpu {
    let pc: &'static PerCpu = Box::leak(Box::new(PerCpu {
        rump_lwp: AtomicU64::new(0),
        current_thread: AtomicU64::new(0),
        cpu_id,
        mpidr,
        sched: CpuSched::new(cpu_id),
        online: AtomicBool::new(true),
        gic_sgi: AtomicU64::new(0),
        timer_next: AtomicU64::new(0),
    }));
    // SAFETY: TPIDR_EL1 is the kernel's own per-CPU register; the block is leaked, so the
    // pointer stays valid for good.
    unsafe {
        core::arch::asm!("msr tpidr_el1, {}", in(reg) pc as *const PerCpu as u64, options(nostack, preserves_flags))
    };
    READY.store(true, Ordering::Release);
    register(pc);
    pc
}

/// This CPU's block.
#[inline]
pub fn current() -> &'static PerCpu {
    let p: *const PerCpu;
    // SAFETY: TPIDR_EL1 holds the block installed by `init_this_cpu` (callers run after
    // it); blocks are leaked, so 'static holds.
    unsafe {
        core::arch::asm!("mrs {}, tpidr_el1", out(reg) p, options(nomem, nostack, preserves_flags));
        &*p
    }
}

/// This CPU's index, or 0 before per-CPU data exists.
pub fn cpu_id() -> usize {
    if READY.load(Ordering::Acquire) {
        let was = super::irq::save_and_disable();
        let id = current().cpu_id;
        super::irq::restore(was);
        id
    } else {
        0
    }
}

pub fn is_ready() -> bool {
    READY.load(Ordering::Acquire)
}

/// The running thread's rump `curlwp`.
pub fn rump_lwp() -> u64 {
    let was = super::irq::save_and_disable();
    let v = current().rump_lwp.load(Ordering::Relaxed);
    super::irq::restore(was);
    v
}

pub fn set_rump_lwp(v: u64) {
    let was = super::irq::save_and_disable();
    current().rump_lwp.store(v, Ordering::Relaxed);
    super::irq::restore(was);
}

/// The running thread's address, 0 before the scheduler runs on this CPU (read with IRQs
/// masked, so it is this CPU's running thread: the caller).
pub fn current_thread() -> u64 {
    if !is_ready() {
        return 0;
    }
    let was = super::irq::save_and_disable();
    let v = current().current_thread.load(Ordering::Relaxed);
    super::irq::restore(was);
    v
}

const MAX_CPUS: usize = 256;
static ALL: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

fn register(pc: &'static PerCpu) {
    if let Some(slot) = ALL.get(pc.cpu_id) {
        slot.store(pc as *const PerCpu as u64, Ordering::Release);
    }
}

pub fn get(cpu: usize) -> Option<&'static PerCpu> {
    let p = ALL.get(cpu)?.load(Ordering::Acquire);
    // SAFETY: non-zero entries point at leaked PerCpu blocks.
    (p != 0).then(|| unsafe { &*(p as *const PerCpu) })
}

pub fn online_cpus() -> impl Iterator<Item = &'static PerCpu> {
    (0..MAX_CPUS).map_while(get)
}
