//! The HPET main counter as a reference clock (the comparators are left disabled; the
//! scheduler tick is the local APIC timer). `init` maps the block, checks the period,
//! turns off legacy replacement routing and starts the counter.

use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

use crate::mm::mmio::{self, Cache};

const REG_CAP: u64 = 0x000;
const REG_CONFIG: u64 = 0x010;
const REG_COUNTER: u64 = 0x0F0;
const REG_TIMER0_CONFIG: u64 = 0x100;

const CONFIG_ENABLE: u64 = 1 << 0;
const CONFIG_LEGACY: u64 = 1 << 1;
const TIMER_INT_ENABLE: u64 = 1 << 2;

/// The HPET spec caps the period at 100 ns.
const MAX_PERIOD_FS: u64 = 100_000_000;
const MMIO_WINDOW: u64 = 1 << 44;

static BASE: AtomicU64 = AtomicU64::new(0);
static PERIOD_FS: AtomicU64 = AtomicU64::new(0);
static COMPARATORS: AtomicU8 = AtomicU8::new(0);
static COUNTER_64: AtomicBool = AtomicBool::new(true);
/// For a 32-bit counter: the last full value seen, to extend reads across wrap-arounds.
static LAST: AtomicU64 = AtomicU64::new(0);

/// What `init` found.
#[derive(Clone, Copy, Debug)]
pub struct HpetInfo {
    pub phys: u64,
    pub period_fs: u64,
    pub comparators: u8,
    pub counter_64bit: bool,
    pub legacy_capable: bool,
    pub vendor: u16,
}

impl HpetInfo {
    pub fn frequency_hz(&self) -> u64 {
        1_000_000_000_000_000 / self.period_fs.max(1)
    }
}

fn reg_read(base: u64, reg: u64) -> u64 {
    // SAFETY: `base` maps the 1 KiB HPET register block uncached (see `init`); the register
    // offsets used are inside it and 8-byte aligned.
    unsafe { core::ptr::read_volatile((base + reg) as *const u64) }
}

fn reg_write(base: u64, reg: u64, val: u64) {
    // SAFETY: as in `reg_read`.
    unsafe { core::ptr::write_volatile((base + reg) as *mut u64, val) }
}

/// Maps and starts the HPET at `phys`. Errors leave the HPET unused (callers fall back to
/// the PIT).
pub fn init(phys: u64) -> Result<HpetInfo, &'static str> {
    if phys == 0 || !phys.is_multiple_of(8) || phys.saturating_add(0x400) > MMIO_WINDOW {
        return Err("implausible HPET address");
    }
    let base = mmio::map(phys, 0x400, Cache::Uncached).map_err(|_| "cannot map the HPET")?;
    let cap = reg_read(base, REG_CAP);
    let period = cap >> 32;
    if cap == u64::MAX || period == 0 || period > MAX_PERIOD_FS {
        return Err("HPET period out of range (absent or broken)");
    }
    let comparators = (((cap >> 8) & 0x1f) + 1) as u8;
    let counter_64bit = cap & (1 << 13) != 0;
    let config = reg_read(base, REG_CONFIG);
    // Stop, drop legacy replacement (that would steal IRQ0/IRQ8 from the PIT and RTC),
    // disable every comparator's interrupt, then start the main counter.
    reg_write(base, REG_CONFIG, config & !(CONFIG_ENABLE | CONFIG_LEGACY));
    for t in 0..u64::from(comparators) {
        let r = REG_TIMER0_CONFIG + 0x20 * t;
        let v = reg_read(base, r);
        reg_write(base, r, v & !TIMER_INT_ENABLE);
    }
    reg_write(base, REG_CONFIG, (config & !CONFIG_LEGACY) | CONFIG_ENABLE);
    PERIOD_FS.store(period, Ordering::Relaxed);
    COMPARATORS.store(comparators, Ordering::Relaxed);
    COUNTER_64.store(counter_64bit, Ordering::Relaxed);
    BASE.store(base, Ordering::Release);
    Ok(HpetInfo {
        phys,
        period_fs: period,
        comparators,
        counter_64bit,
        legacy_capable: cap & (1 << 15) != 0,
        vendor: (cap >> 16) as u16,
    })
}

pub fn available() -> bool {
    BASE.load(Ordering::Acquire) != 0
}

pub fn period_fs() -> u64 {
    PERIOD_FS.load(Ordering::Relaxed)
}

pub fn comparators() -> u8 {
    COMPARATORS.load(Ordering::Relaxed)
}

/// The main counter (0 when there is no HPET). A 32-bit counter is extended to 64 bits,
/// which is exact as long as it is read at least once per wrap (minutes).
pub fn counter() -> u64 {
    let base = BASE.load(Ordering::Acquire);
    if base == 0 {
        return 0;
    }
    let raw = reg_read(base, REG_COUNTER);
    if COUNTER_64.load(Ordering::Relaxed) {
        return raw;
    }
    let now32 = raw & 0xffff_ffff;
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let mut full = (last & !0xffff_ffff) | now32;
        if full < last {
            full += 1 << 32;
        }
        match LAST.compare_exchange_weak(last, full, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return full,
            Err(l) => last = l,
        }
    }
}

/// Counter ticks to nanoseconds.
pub fn ticks_to_ns(ticks: u64) -> u64 {
    ((u128::from(ticks) * u128::from(period_fs())) / 1_000_000) as u64
}

/// Nanoseconds on the HPET's own time base (0 when there is no HPET).
pub fn now_ns() -> u64 {
    ticks_to_ns(counter())
}
