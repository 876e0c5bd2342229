//! Time: a TSC clocksource with nanosecond monotonic time, calibrated at boot together with
//! the LAPIC timer against the HPET (the PIT without one); wall-clock time from the CMOS RTC
//! read at boot plus monotonic time since; the periodic tick that drives timers and preemption.

use core::sync::atomic::{AtomicU64, Ordering};

pub const TICK_HZ: u32 = 1000;

static TSC_HZ: AtomicU64 = AtomicU64::new(0);
static TSC_BASE: AtomicU64 = AtomicU64::new(0);
/// ns = (tsc - base) * MULT >> 32
static MULT: AtomicU64 = AtomicU64::new(0);

pub fn set_tsc_hz(hz: u64, base: u64) {
    TSC_HZ.store(hz, Ordering::Relaxed);
    MULT.store(
        ((1_000_000_000u128 << 32) / u128::from(hz.max(1))) as u64,
        Ordering::Relaxed,
    );
    TSC_BASE.store(base, Ordering::Release);
    #[cfg(target_os = "none")]
    user_clock::publish();
}

#[cfg(target_os = "none")]
pub mod user_clock;

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
    let d = crate::arch::clock_counter().saturating_sub(TSC_BASE.load(Ordering::Acquire));
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

/// How the clocks were calibrated at boot.
#[derive(Clone, Copy, Debug)]
pub struct Calibration {
    pub tsc_hz: u64,
    /// LAPIC timer ticks per millisecond (divide by 16).
    pub lapic_per_ms: u32,
    /// "HPET" or "PIT".
    pub reference: &'static str,
}

/// One window of the TSC and the LAPIC timer measured against the HPET.
#[derive(Clone, Copy, Debug)]
pub struct HpetSample {
    /// Window length on the HPET, in ns.
    pub ns: u64,
    pub tsc: u64,
    pub lapic: u32,
}

/// Measures the TSC and the LAPIC timer (one-shot from `u32::MAX`, divide by 16; its
/// interrupt stays masked, so the caller restarts the scheduler tick afterwards) over `ms`
/// of HPET time. Interrupts must be off. `None` without an HPET.
#[cfg(all(target_os = "none", target_arch = "x86_64"))]
pub fn measure_against_hpet(ms: u64) -> Option<HpetSample> {
    use crate::arch::{apic, cpu, hpet};
    if !hpet::available() {
        return None;
    }
    let ticks = (u128::from(ms) * 1_000_000_000_000 / u128::from(hpet::period_fs().max(1))) as u64;
    // Both ends are sampled by the same code in the same order, so the time each read
    // takes (an HPET read is a slow MMIO exit under TCG) cancels out of the differences.
    let sample = || {
        let h = hpet::counter();
        let t = cpu::rdtsc();
        let l = apic::timer_current();
        (h, t, l)
    };
    apic::timer_one_shot_count(u32::MAX);
    let (h0, t0, l0) = sample();
    while hpet::counter().wrapping_sub(h0) < ticks {
        core::hint::spin_loop();
    }
    let (h1, t1, l1) = sample();
    apic::timer_one_shot_count(0);
    Some(HpetSample {
        ns: hpet::ticks_to_ns(h1.wrapping_sub(h0)).max(1),
        tsc: t1.wrapping_sub(t0),
        lapic: l0.wrapping_sub(l1),
    })
}

/// Calibrates the TSC clocksource and the boot CPU's LAPIC timer: against the HPET when
/// there is one (median of three 20 ms windows, so one host-scheduling hiccup under TCG
/// cannot skew it), else against the PIT. Run with interrupts off, before the tick starts.
#[cfg(all(target_os = "none", target_arch = "x86_64"))]
pub fn calibrate() -> Calibration {
    use crate::arch::{apic, hpet};
    if hpet::available() {
        let mut tsc = [0u64; 3];
        let mut lapic = [0u64; 3];
        for i in 0..3 {
            if let Some(s) = measure_against_hpet(20) {
                tsc[i] = (u128::from(s.tsc) * 1_000_000_000 / u128::from(s.ns)) as u64;
                lapic[i] = u64::from(s.lapic) * 1_000_000 / s.ns;
            }
        }
        tsc.sort_unstable();
        lapic.sort_unstable();
        if tsc[1] != 0 && lapic[1] != 0 {
            let lapic_per_ms = u32::try_from(lapic[1]).unwrap_or(u32::MAX);
            set_tsc_hz(tsc[1], crate::arch::cpu::rdtsc());
            apic::set_ticks_per_ms(lapic_per_ms);
            return Calibration {
                tsc_hz: tsc[1],
                lapic_per_ms,
                reference: "HPET",
            };
        }
        log::warn!("time: the HPET did not advance during calibration; using the PIT");
    }
    // The PIT: both clocks over the same three ~50 ms channel-2 windows, medians taken.
    const PIT_HZ: u64 = 1_193_182;
    let us = 50_000u32;
    let window_ns = (PIT_HZ * u64::from(us) / 1_000_000) * 1_000_000_000 / PIT_HZ;
    let mut tsc = [0u64; 3];
    let mut lapic = [0u64; 3];
    for i in 0..3 {
        let (t, l) = apic::pit_measure(us);
        tsc[i] = (u128::from(t) * 1_000_000_000 / u128::from(window_ns)) as u64;
        lapic[i] = u64::from(l) * 1_000_000 / window_ns;
    }
    log::debug!("time: PIT windows: TSC {tsc:?} Hz, LAPIC {lapic:?} ticks/ms");
    tsc.sort_unstable();
    lapic.sort_unstable();
    let lapic_per_ms = u32::try_from(lapic[1]).unwrap_or(u32::MAX).max(1);
    set_tsc_hz(tsc[1].max(1), crate::arch::cpu::rdtsc());
    apic::set_ticks_per_ms(lapic_per_ms);
    Calibration {
        tsc_hz: tsc[1],
        lapic_per_ms,
        reference: "PIT",
    }
}

/// The clocksource's parameters (TSC base, multiplier) and the wall clock's base (ns since
/// the epoch, and the monotonic time it was taken at), as the vDSO's data page holds them.
pub fn clock_parameters() -> (u64, u64, u64, u64) {
    (
        TSC_BASE.load(Ordering::Acquire),
        MULT.load(Ordering::Relaxed),
        WALL_BASE_NS.load(Ordering::Acquire),
        WALL_AT_NS.load(Ordering::Relaxed),
    )
}

/// Unix time (ns) read from the RTC at boot, and the monotonic time of that read.
static WALL_BASE_NS: AtomicU64 = AtomicU64::new(0);
static WALL_AT_NS: AtomicU64 = AtomicU64::new(0);

/// Reads the RTC once; [`wall_clock_ns`] runs on from it with the monotonic clock.
#[cfg(all(target_os = "none", target_arch = "x86_64"))]
pub fn init_wall_clock() -> Option<u64> {
    if let Some(c) = crate::acpi::fadt().map(|f| f.century) {
        crate::arch::rtc::set_century_register(c);
    }
    let secs = crate::arch::rtc::unix_time();
    set_wall_clock(secs, "the CMOS RTC is absent or unreadable")
}

/// Reads the PL031 RTC the device tree names once; [`wall_clock_ns`] runs on from it.
#[cfg(all(target_os = "none", target_arch = "aarch64"))]
pub fn init_wall_clock() -> Option<u64> {
    let secs = crate::arch::rtc::unix_time();
    set_wall_clock(secs, "no usable PL031 RTC in the device tree")
}

#[cfg(target_os = "none")]
fn set_wall_clock(secs: Option<u64>, why_not: &str) -> Option<u64> {
    match secs {
        Some(s) => {
            WALL_AT_NS.store(now_ns(), Ordering::Relaxed);
            WALL_BASE_NS.store(s.saturating_mul(1_000_000_000), Ordering::Release);
            user_clock::publish();
        }
        None => log::warn!("time: {why_not}; wall-clock time starts at the epoch"),
    }
    secs
}

/// Wall-clock time in ns since the Unix epoch (UTC): the RTC at boot plus monotonic time
/// since. Without an RTC it counts from the epoch.
pub fn wall_clock_ns() -> u64 {
    let base = WALL_BASE_NS.load(Ordering::Acquire);
    base + now_ns().saturating_sub(WALL_AT_NS.load(Ordering::Relaxed))
}

/// The RTC's reading at boot, in seconds since the epoch (`None` if there was none).
pub fn boot_unix_time() -> Option<u64> {
    let b = WALL_BASE_NS.load(Ordering::Acquire);
    (b != 0).then_some(b / 1_000_000_000)
}
