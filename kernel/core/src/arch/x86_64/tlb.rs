//! TLB shootdown: after a kernel-half mapping is removed or restricted, every other online
//! CPU must drop its cached translation before the frame or permission change is relied on.
//! A shooter publishes the request, IPIs the others and waits for each to acknowledge.
//! Waiting CPUs keep servicing requests aimed at them, so two CPUs shooting at each other
//! (even with interrupts off) cannot deadlock.

use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use x86_64::VirtAddr;
use x86_64::instructions::tlb;

use super::idt::{TrapFrame, VECTOR_TLB};
use super::{apic, percpu};

const MAX_CPUS: usize = 256;
/// Per-CPU "flush requested" flags.
static PENDING: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
/// The address to flush, or u64::MAX for everything.
static REQ_VA: AtomicU64 = AtomicU64::new(0);
static OUTSTANDING: AtomicUsize = AtomicUsize::new(0);
static SHOOTER: AtomicBool = AtomicBool::new(false);

pub fn init() {
    super::idt::register(VECTOR_TLB, ipi_handler);
}

fn flush_local(va: u64) {
    if va == u64::MAX {
        tlb::flush_all();
    } else {
        tlb::flush(VirtAddr::new(va));
    }
}

/// Handles a request aimed at this CPU, if any. Spinlock loops call this while they wait
/// with interrupts off, so a shooter never waits on a CPU that is itself waiting for a
/// lock the shooter holds.
pub fn service() {
    if !percpu::is_ready() {
        return;
    }
    let me = percpu::cpu_id();
    if PENDING[me].load(Ordering::Relaxed) && PENDING[me].swap(false, Ordering::AcqRel) {
        flush_local(REQ_VA.load(Ordering::Acquire));
        OUTSTANDING.fetch_sub(1, Ordering::AcqRel);
    }
}

fn ipi_handler(_f: &mut TrapFrame) {
    service();
}

/// Flushes `va` (or everything, with u64::MAX) on this CPU and every other online CPU.
pub fn shootdown(va: u64) {
    // Stay on this CPU for the whole exchange (a migration would flush the wrong TLB and
    // skip the right one). Waiting with interrupts off is safe: the loops below service
    // requests aimed at us.
    let was = super::irq::save_and_disable();
    shootdown_locked(va);
    super::irq::restore(was);
}

fn shootdown_locked(va: u64) {
    flush_local(va);
    if super::smp::online_count() <= 1 || !percpu::is_ready() {
        return;
    }
    let me = percpu::cpu_id();
    // One shooter at a time; spin while servicing others' requests.
    while SHOOTER
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        service();
        core::hint::spin_loop();
    }
    REQ_VA.store(va, Ordering::Release);
    let mut n = 0;
    for pc in percpu::online_cpus() {
        if pc.cpu_id != me && pc.online.load(Ordering::Acquire) {
            n += 1;
        }
    }
    OUTSTANDING.store(n, Ordering::Release);
    for pc in percpu::online_cpus() {
        if pc.cpu_id != me && pc.online.load(Ordering::Acquire) {
            PENDING[pc.cpu_id].store(true, Ordering::Release);
            apic::send_ipi(pc.apic_id, VECTOR_TLB);
        }
    }
    while OUTSTANDING.load(Ordering::Acquire) != 0 {
        service();
        core::hint::spin_loop();
    }
    SHOOTER.store(false, Ordering::Release);
}
