//! Time: a TSC clocksource with nanosecond monotonic time (calibrated at boot), and the
//! periodic tick that drives timers and preemption.

use core::sync::atomic::{AtomicU64, Ordering};

pub const TICK_HZ: u32 = 1000;

static TSC_HZ: AtomicU64 = AtomicU64::new(0);
static TSC_BASE: AtomicU64 = AtomicU64::new(0);
/// ns = (tsc - base) * MULT >> 32
static MULT: AtomicU64 = AtomicU64::new(0);

pub fn set_tsc_hz(hz: u64, base: u64) {
    TSC_HZ.store(hz, Ordering::Relaxed);
    MULT.store(((1_000_000_000u128 << 32) / u128::from(hz.max(1))) as u64, Ordering::Relaxed);
    TSC_BASE.store(base, Ordering::Release);
}

pub fn tsc_hz() -> u64 {
    TSC_HZ.load(Ordering::Relaxed)
}

/// Nanoseconds since the clocksource was calibrated (0 before that).
#[cfg(target_os = "none")]
pub fn now_ns() -> u64 {
    let mult = MULT.load(Ordering::Relaxed);
    if mult == 0 {
        return 0;
    }
    let d = crate::arch::cpu::rdtsc().saturating_sub(TSC_BASE.load(Ordering::Acquire));
    ((u128::from(d) * u128::from(mult)) >> 32) as u64
}

#[cfg(not(target_os = "none"))]
pub fn now_ns() -> u64 {
    0
}

/// Busy-waits (for early boot and drivers that must not sleep).
#[cfg(target_os = "none")]
pub fn spin_ns(ns: u64) {
    let end = now_ns() + ns;
    while now_ns() < end {
        core::hint::spin_loop();
    }
}

/// Calibrates the TSC against the PIT: the median of three 20 ms windows.
#[cfg(target_os = "none")]
pub fn calibrate_tsc() -> u64 {
    let mut v = [0u64; 3];
    for s in v.iter_mut() {
        let (tsc, _) = crate::arch::apic::pit_measure(20_000);
        *s = tsc * 50;
    }
    v.sort_unstable();
    let hz = v[1];
    set_tsc_hz(hz, crate::arch::cpu::rdtsc());
    hz
}
