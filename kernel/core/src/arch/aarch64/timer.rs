//! The generic timer: the EL1 virtual timer (CNTV) as the periodic scheduler tick, on its
//! private interrupt (the device tree's third `arm,armv8-timer` interrupt, PPI 11 = ID 27 on
//! QEMU `virt`). Each tick re-arms the compare value one period past the previous one, so
//! ticks do not drift with interrupt latency.

use core::sync::atomic::{AtomicU64, Ordering};

use super::exceptions::TrapFrame;

static PERIOD: AtomicU64 = AtomicU64::new(0);
static INTID: AtomicU64 = AtomicU64::new(0);
/// Ticks taken on all CPUs.
static TICKS: AtomicU64 = AtomicU64::new(0);

fn set_cval(v: u64) {
    // SAFETY: programs this CPU's virtual timer compare value.
    unsafe {
        core::arch::asm!("msr cntv_cval_el0, {}", "isb", in(reg) v, options(nostack, preserves_flags))
    };
}

/// Starts the tick at `hz` on interrupt `intid` on this (the boot) CPU.
pub fn start(intid: u32, hz: u32) {
    let period = (super::cpu::counter_hz() / u64::from(hz.max(1))).max(1);
    PERIOD.store(period, Ordering::Relaxed);
    INTID.store(u64::from(intid), Ordering::Relaxed);
    arm(intid);
}

/// Starts the tick on a secondary CPU, as the boot CPU's [`start`] set it.
pub fn start_secondary() {
    arm(INTID.load(Ordering::Relaxed) as u32);
}

fn arm(intid: u32) {
    let next = super::cpu::counter() + PERIOD.load(Ordering::Relaxed);
    super::percpu::current()
        .timer_next
        .store(next, Ordering::Relaxed);
    set_cval(next);
    // SAFETY: enables the virtual timer with its interrupt unmasked (CNTV_CTL_EL0.ENABLE).
    unsafe {
        core::arch::asm!("msr cntv_ctl_el0, {}", "isb", in(reg) 1u64, options(nostack, preserves_flags))
    };
    super::gic::enable_private(intid, on_tick);
}

fn on_tick(frame: &mut TrapFrame) {
    let period = PERIOD.load(Ordering::Relaxed);
    let now = super::cpu::counter();
    let slot = &super::percpu::current().timer_next;
    let mut next = slot.load(Ordering::Relaxed) + period;
    if next <= now {
        // Missed ticks (a slow host under TCG): catch up rather than fire back to back.
        next = now + period;
    }
    slot.store(next, Ordering::Relaxed);
    set_cval(next);
    TICKS.fetch_add(1, Ordering::Relaxed);
    crate::sched::timer_tick(frame);
}

/// Ticks taken on all CPUs since [`start`].
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

/// Stretches this CPU's tick (idle): the next one `ns` from now instead of one period.
pub fn tick_idle(ns: u64) {
    let hz = super::cpu::counter_hz();
    let delta = (u128::from(ns) * u128::from(hz) / 1_000_000_000).max(1) as u64;
    let next = super::cpu::counter() + delta;
    super::percpu::current()
        .timer_next
        .store(next, Ordering::Relaxed);
    set_cval(next);
}

/// The periodic tick again, after [`tick_idle`]: the next one a period from now.
pub fn tick_resume() {
    let next = super::cpu::counter() + PERIOD.load(Ordering::Relaxed);
    super::percpu::current()
        .timer_next
        .store(next, Ordering::Relaxed);
    set_cval(next);
}
