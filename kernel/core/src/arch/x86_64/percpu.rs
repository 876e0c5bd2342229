//! Per-CPU data, reached through the GS base. There is no global "current thread": each CPU
//! finds its own state at `gs:0` (a pointer to itself).

use core::cell::Cell;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use alloc::boxed::Box;
use x86_64::VirtAddr;
use x86_64::registers::model_specific::{GsBase, KernelGsBase};

use crate::sched::CpuSched;

/// Where execution resumes if an expected fault hits (in-kernel tests of the fault path).
#[derive(Clone, Copy, Debug)]
pub struct FaultFixup {
    /// Address of a word holding the resume RIP, written by the probing code right before
    /// the instruction expected to fault.
    pub resume_slot: *const u64,
    pub vector: u8,
}

#[repr(C)]
pub struct PerCpu {
    /// gs:0 — pointer to this structure.
    self_ptr: *const PerCpu,
    /// gs:8 — kernel stack top for entries from user mode (syscall).
    pub kernel_rsp: AtomicU64,
    /// gs:16 — scratch for the user stack pointer on syscall entry.
    pub user_rsp: AtomicU64,
    /// gs:24 — the running thread's NetBSD rump `curlwp` (saved into / loaded from the
    /// thread at every switch), so `rumpuser_curlwp`, which NetBSD calls constantly, is one
    /// GS-relative load.
    pub rump_lwp: AtomicU64,
    /// gs:32 — the running thread (`Arc::as_ptr` of the scheduler's `current`; 0 before the
    /// scheduler runs here), so that finding the calling thread is one GS-relative load,
    /// with no need to keep interrupts off across two (see [`current_thread`]).
    pub current_thread: AtomicU64,
    pub cpu_id: usize,
    pub apic_id: u32,
    pub sched: CpuSched,
    /// Set by in-kernel tests that deliberately fault; consumed by the exception handler.
    pub fault_fixup: Cell<Option<FaultFixup>>,
    /// The last exception report taken through a fixup (vector, rip, error code).
    pub last_fault: Cell<Option<(u8, u64, u64)>>,
    pub online: AtomicBool,
    /// This CPU's TSS (for rsp0), set by `gdt::init_this_cpu`.
    pub tss: AtomicU64,
}

static READY: AtomicBool = AtomicBool::new(false);

/// Allocates and installs this CPU's block. Call once per CPU, early.
pub fn init_this_cpu(cpu_id: usize, apic_id: u32) -> &'static PerCpu {
    let pc = Box::leak(Box::new(PerCpu {
        self_ptr: core::ptr::null(),
        kernel_rsp: AtomicU64::new(0),
        user_rsp: AtomicU64::new(0),
        rump_lwp: AtomicU64::new(0),
        current_thread: AtomicU64::new(0),
        cpu_id,
        apic_id,
        sched: CpuSched::new(cpu_id),
        fault_fixup: Cell::new(None),
        last_fault: Cell::new(None),
        online: AtomicBool::new(true),
        tss: AtomicU64::new(0),
    }));
    pc.self_ptr = pc as *const PerCpu;
    GsBase::write(VirtAddr::new(pc as *const PerCpu as u64));
    KernelGsBase::write(VirtAddr::new(0));
    READY.store(true, Ordering::Release);
    register(pc);
    pc
}

/// This CPU's block.
#[inline]
pub fn current() -> &'static PerCpu {
    let p: *const PerCpu;
    // SAFETY: gs:0 holds the self pointer installed by `init_this_cpu` (kernel GS is always
    // active in kernel mode); PerCpu blocks are leaked, so 'static holds.
    unsafe {
        core::arch::asm!("mov {}, gs:[0]", out(reg) p, options(nostack, readonly, preserves_flags));
        &*p
    }
}

/// This CPU's index, or 0 before per-CPU data exists.
pub fn cpu_id() -> usize {
    if READY.load(Ordering::Acquire) {
        current().cpu_id
    } else {
        0
    }
}

pub fn is_ready() -> bool {
    READY.load(Ordering::Acquire)
}

/// The running thread's rump `curlwp` (gs:24). One instruction, so it cannot be torn by a
/// preemption: whichever CPU runs it, it reads that CPU's copy of the running thread's slot.
#[inline]
pub fn rump_lwp() -> u64 {
    let v: u64;
    // SAFETY: gs:24 is `PerCpu::rump_lwp` (repr(C), fourth word) of this CPU's block.
    unsafe {
        core::arch::asm!("mov {}, gs:[24]", out(reg) v, options(nostack, readonly, preserves_flags))
    };
    v
}

/// Sets the running thread's rump `curlwp` (see [`rump_lwp`]).
#[inline]
pub fn set_rump_lwp(v: u64) {
    // SAFETY: as in `rump_lwp`; a single store to this CPU's block.
    unsafe { core::arch::asm!("mov gs:[24], {}", in(reg) v, options(nostack, preserves_flags)) };
}

const _: () = assert!(core::mem::offset_of!(PerCpu, rump_lwp) == 24);
const _: () = assert!(core::mem::offset_of!(PerCpu, current_thread) == 32);

/// The running thread's address (gs:32), 0 before the scheduler runs on this CPU. One
/// instruction, so a preemption cannot tear it: whichever CPU runs it, that CPU's running
/// thread is the caller.
#[inline]
pub fn current_thread() -> u64 {
    let v: u64;
    // SAFETY: gs:32 is `PerCpu::current_thread` (repr(C), fifth word) of this CPU's block.
    unsafe {
        core::arch::asm!("mov {}, gs:[32]", out(reg) v, options(nostack, readonly, preserves_flags))
    };
    v
}

// All CPUs' blocks, for cross-CPU wake-ups and the panic report.
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
