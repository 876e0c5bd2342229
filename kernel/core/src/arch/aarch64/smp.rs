//! Secondary CPUs: started one at a time through PSCI `CPU_ON` at `_secondary_start`
//! (boot.S), which turns on the MMU with the boot CPU's tables and calls [`adros_ap_main`]
//! on a kernel stack; each sets up its per-CPU block, its GIC redistributor and CPU
//! interface and its timer tick, then runs the scheduler's idle loop.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::mm::kstack::{DEFAULT_STACK, KernelStack};
use crate::mm::layout::KERNEL_VMA;
use crate::println;

/// The stack top and TTBR1 a starting CPU takes, read by boot.S (the second before its MMU
/// is on, hence cleaned to memory). One CPU starts at a time.
#[unsafe(no_mangle)]
static ADROS_AP_STACK_TOP: AtomicU64 = AtomicU64::new(0);
#[unsafe(no_mangle)]
static ADROS_AP_TTBR1: AtomicU64 = AtomicU64::new(0);

/// CPUs that reached the idle loop (the boot CPU included).
static ONLINE: AtomicUsize = AtomicUsize::new(1);

unsafe extern "C" {
    fn _secondary_start();
}

/// CPUs running the scheduler.
pub fn online_count() -> usize {
    super::percpu::online_cpus().count()
}

/// Writes the cache line holding `va` back to memory, for a reader with its MMU and
/// caches off.
fn clean_to_memory(va: u64) {
    // SAFETY: cache maintenance by VA on a mapped kernel address; changes no data.
    unsafe {
        core::arch::asm!("dc civac, {}", "dsb sy", in(reg) va, options(nostack, preserves_flags))
    };
}

/// Why a secondary CPU did not come up.
#[derive(Debug)]
pub enum StartError {
    NoPsci,
    NoStack,
    /// PSCI refused (its status).
    Refused(i64),
    /// It never reported in.
    Silent,
}

/// Starts every CPU of `mpidrs` but this one, in order, each as CPU 1, 2, …; reports each
/// failure on the console and goes on. Returns how many CPUs are online afterwards.
pub fn start_secondaries(mpidrs: &[u64]) -> usize {
    let me = super::cpu::mpidr();
    let mut next = 1;
    for &mpidr in mpidrs.iter().filter(|&&m| m != me) {
        match start_one(next, mpidr) {
            Ok(()) => next += 1,
            Err(StartError::Silent) => {
                // It may still come up later, on the stack the next one would be given:
                // start no more.
                println!(
                    "smp: CPU with MPIDR {mpidr:#x} did not report in within 5 s; starting no more CPUs"
                );
                break;
            }
            Err(e) => println!("smp: CPU with MPIDR {mpidr:#x} did not start: {e:?}"),
        }
    }
    ONLINE.load(Ordering::SeqCst)
}

fn start_one(index: usize, mpidr: u64) -> Result<(), StartError> {
    if !super::psci::available() {
        return Err(StartError::NoPsci);
    }
    let stack = KernelStack::new(DEFAULT_STACK).ok_or(StartError::NoStack)?;
    ADROS_AP_STACK_TOP.store(stack.top(), Ordering::SeqCst);
    // The CPU runs on this stack for good.
    core::mem::forget(stack);
    ADROS_AP_TTBR1.store(super::cpu::kernel_table_root(), Ordering::SeqCst);
    clean_to_memory(&ADROS_AP_STACK_TOP as *const AtomicU64 as u64);
    clean_to_memory(&ADROS_AP_TTBR1 as *const AtomicU64 as u64);
    let before = ONLINE.load(Ordering::SeqCst);
    let entry = _secondary_start as *const () as u64 - KERNEL_VMA;
    match super::psci::cpu_on(mpidr, entry, index as u64) {
        Some(0) => {}
        Some(e) => return Err(StartError::Refused(e)),
        None => return Err(StartError::NoPsci),
    }
    // Under TCG on a loaded host a CPU can take a while: wait up to 5 s.
    let deadline = crate::time::now_ns() + 5_000_000_000;
    while ONLINE.load(Ordering::SeqCst) == before {
        if crate::time::now_ns() > deadline {
            return Err(StartError::Silent);
        }
        core::hint::spin_loop();
    }
    Ok(())
}

/// Where a secondary CPU enters Rust (boot.S), on its kernel stack with the MMU on.
#[unsafe(no_mangle)]
extern "C" fn adros_ap_main(index: u64) -> ! {
    super::exceptions::mark_installed();
    super::user::enable_fp_this_cpu();
    let index = index as usize;
    // The per-CPU block first: the emergency stack is recorded under this CPU's number
    // (before it, `cpu_id` would say 0 and take CPU 0's slot, leaving this CPU none to put
    // back into SP_EL0 after user mode).
    super::percpu::init_this_cpu(index, super::cpu::mpidr());
    match KernelStack::new(16 << 10) {
        Some(s) => {
            super::cpu::set_emergency_stack(s.top());
            core::mem::forget(s);
        }
        None => println!("smp: CPU {index}: no memory for an emergency stack"),
    }
    if let Err(e) = super::gic::init_secondary() {
        println!("smp: CPU {index}: GIC: {e}; this CPU stops");
        super::halt_forever();
    }
    super::timer::start_secondary();
    crate::sched::init_this_cpu_idle();
    ONLINE.fetch_add(1, Ordering::SeqCst);
    crate::sched::idle_forever()
}
