//! Local APIC (x2APIC when the CPU has it, else xAPIC through MMIO) and its timer. The legacy
//! 8259 PICs are masked. The timer is calibrated against the PIT (and re-checked against the
//! HPET by the timer tests).

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use x86_64::instructions::port::Port;
use x86_64::registers::model_specific::Msr;

use super::idt::{VECTOR_SPURIOUS, VECTOR_TIMER};

const IA32_APIC_BASE: u32 = 0x1B;
const REG_ID: u32 = 0x20;
const REG_EOI: u32 = 0xB0;
const REG_SVR: u32 = 0xF0;
const REG_ICR_LOW: u32 = 0x300;
const REG_ICR_HIGH: u32 = 0x310;
const REG_LVT_TIMER: u32 = 0x320;
const REG_TIMER_INIT: u32 = 0x380;
const REG_TIMER_CUR: u32 = 0x390;
const REG_TIMER_DIV: u32 = 0x3E0;

static X2APIC: AtomicBool = AtomicBool::new(false);
static MMIO_BASE: AtomicU64 = AtomicU64::new(0);
/// LAPIC timer ticks per millisecond (divide by 16), measured at boot.
static TICKS_PER_MS: AtomicU32 = AtomicU32::new(0);

fn read(reg: u32) -> u32 {
    if X2APIC.load(Ordering::Relaxed) {
        // SAFETY: x2APIC MSRs 0x800.. exist once x2APIC mode is enabled.
        unsafe { Msr::new(0x800 + (reg >> 4)).read() as u32 }
    } else {
        // SAFETY: the xAPIC page is mapped uncached at MMIO_BASE by `init`.
        unsafe {
            core::ptr::read_volatile(
                (MMIO_BASE.load(Ordering::Relaxed) + u64::from(reg)) as *const u32,
            )
        }
    }
}

fn write(reg: u32, val: u32) {
    if X2APIC.load(Ordering::Relaxed) {
        // SAFETY: as in `read`.
        unsafe { Msr::new(0x800 + (reg >> 4)).write(u64::from(val)) }
    } else {
        // SAFETY: as in `read`.
        unsafe {
            core::ptr::write_volatile(
                (MMIO_BASE.load(Ordering::Relaxed) + u64::from(reg)) as *mut u32,
                val,
            )
        }
    }
}

fn mask_legacy_pic() {
    // SAFETY: the 8259 data ports; masking every line is always safe. We also remap them to
    // 0x20..0x2f first so a spurious legacy interrupt cannot alias an exception vector.
    unsafe {
        let mut cmd1 = Port::<u8>::new(0x20);
        let mut dat1 = Port::<u8>::new(0x21);
        let mut cmd2 = Port::<u8>::new(0xA0);
        let mut dat2 = Port::<u8>::new(0xA1);
        cmd1.write(0x11);
        cmd2.write(0x11);
        dat1.write(0x20);
        dat2.write(0x28);
        dat1.write(4);
        dat2.write(2);
        dat1.write(1);
        dat2.write(1);
        dat1.write(0xff);
        dat2.write(0xff);
    }
}

/// Enables this CPU's local APIC. `x2apic` comes from CPUID.
pub fn init_this_cpu(x2apic: bool) {
    if super::percpu::cpu_id() == 0 {
        mask_legacy_pic();
    }
    // SAFETY: IA32_APIC_BASE exists on every x86_64 CPU.
    let base = unsafe { Msr::new(IA32_APIC_BASE).read() };
    if x2apic {
        // SAFETY: enabling x2APIC mode (bits 10 and 11) when CPUID advertises it.
        unsafe { Msr::new(IA32_APIC_BASE).write(base | (1 << 11) | (1 << 10)) };
        X2APIC.store(true, Ordering::Relaxed);
    } else {
        let phys = base & 0xFFFF_F000;
        let va =
            crate::mm::mmio::map(phys, 4096, crate::mm::mmio::Cache::Uncached).expect("map LAPIC");
        MMIO_BASE.store(va, Ordering::Relaxed);
        // SAFETY: global enable bit only.
        unsafe { Msr::new(IA32_APIC_BASE).write(base | (1 << 11)) };
    }
    write(REG_SVR, 0x100 | u32::from(VECTOR_SPURIOUS));
    write(REG_TIMER_DIV, 0x3); // divide by 16
    write(REG_LVT_TIMER, 1 << 16); // masked until started
}

pub fn is_x2apic() -> bool {
    X2APIC.load(Ordering::Relaxed)
}

pub fn id() -> u32 {
    let v = read(REG_ID);
    if is_x2apic() { v } else { v >> 24 }
}

pub fn eoi() {
    write(REG_EOI, 0);
}

/// Sends a fixed IPI to one CPU (by APIC id).
pub fn send_ipi(apic_id: u32, vector: u8) {
    send_raw_ipi(apic_id, u32::from(vector));
}

/// ICR delivery modes for [`send_raw_ipi`].
pub const ICR_INIT: u32 = 0x0000_4500; // INIT, level assert
pub const ICR_STARTUP: u32 = 0x0000_4600; // SIPI; OR in the start page number
pub const ICR_NMI: u32 = 0x0000_0400;

/// Writes the interrupt command register (`icr_low`: vector | delivery mode | level bits)
/// for one destination, with interrupts off so the two xAPIC halves are not interleaved.
pub fn send_raw_ipi(apic_id: u32, icr_low: u32) {
    let was = super::irq::save_and_disable();
    if is_x2apic() {
        // SAFETY: the x2APIC ICR is a single 64-bit MSR.
        unsafe { Msr::new(0x830).write((u64::from(apic_id) << 32) | u64::from(icr_low)) };
    } else {
        write(REG_ICR_HIGH, apic_id << 24);
        write(REG_ICR_LOW, icr_low);
        while read(REG_ICR_LOW) & (1 << 12) != 0 {
            core::hint::spin_loop();
        }
    }
    super::irq::restore(was);
}

/// Measures this CPU's LAPIC timer against the (already calibrated) TSC over `ms`.
pub fn calibrate_against_tsc(ms: u64) -> u32 {
    let was = super::irq::save_and_disable();
    write(REG_LVT_TIMER, 1 << 16);
    write(REG_TIMER_DIV, 0x3);
    write(REG_TIMER_INIT, u32::MAX);
    let l0 = read(REG_TIMER_CUR);
    let t0 = crate::time::now_ns();
    while crate::time::now_ns() - t0 < ms * 1_000_000 {
        core::hint::spin_loop();
    }
    let l1 = read(REG_TIMER_CUR);
    let dt = crate::time::now_ns() - t0;
    write(REG_TIMER_INIT, 0);
    super::irq::restore(was);
    let per_ms = (u64::from(l0 - l1) * 1_000_000 / dt.max(1)).max(1) as u32;
    PER_CPU_TICKS[super::percpu::cpu_id() % PER_CPU_TICKS.len()].store(per_ms, Ordering::Relaxed);
    per_ms
}

/// Each CPU's own LAPIC timer rate (0 = use the boot CPU's).
static PER_CPU_TICKS: [AtomicU32; 256] = [const { AtomicU32::new(0) }; 256];

fn this_cpu_ticks_per_ms() -> u32 {
    let v = PER_CPU_TICKS[super::percpu::cpu_id() % PER_CPU_TICKS.len()].load(Ordering::Relaxed);
    if v != 0 {
        v
    } else {
        TICKS_PER_MS.load(Ordering::Relaxed)
    }
}

/// Busy-waits about `us` microseconds on PIT channel 2, returning the TSC and LAPIC-timer
/// deltas measured over the exact PIT interval. Interrupts should be off.
pub fn pit_measure(us: u32) -> (u64, u32) {
    let count = (1_193_182u64 * u64::from(us) / 1_000_000).min(0xffff) as u16;
    // SAFETY: PIT channel 2 and the speaker gate (port 0x61) are only used here, at boot.
    unsafe {
        let mut gate = Port::<u8>::new(0x61);
        let mut cmd = Port::<u8>::new(0x43);
        let mut ch2 = Port::<u8>::new(0x42);
        let g = gate.read();
        gate.write((g & !0x02) | 0x01); // gate high, speaker off
        cmd.write(0b1011_0000); // channel 2, lobyte/hibyte, mode 0
        ch2.write(count as u8);
        ch2.write((count >> 8) as u8);
        write(REG_TIMER_INIT, u32::MAX);
        let t0 = super::cpu::rdtsc();
        let l0 = read(REG_TIMER_CUR);
        while gate.read() & 0x20 == 0 {
            core::hint::spin_loop();
        }
        let l1 = read(REG_TIMER_CUR);
        let t1 = super::cpu::rdtsc();
        write(REG_TIMER_INIT, 0);
        (t1 - t0, l0 - l1)
    }
}

/// Measures the LAPIC timer against the PIT over 50 ms.
pub fn calibrate() -> u32 {
    let (_, lapic) = pit_measure(50_000);
    let per_ms = (lapic / 50).max(1);
    TICKS_PER_MS.store(per_ms, Ordering::Relaxed);
    per_ms
}

pub fn ticks_per_ms() -> u32 {
    TICKS_PER_MS.load(Ordering::Relaxed)
}

/// Starts the periodic scheduler tick at `hz`.
pub fn start_timer(hz: u32) {
    let per_ms = this_cpu_ticks_per_ms();
    let init = (u64::from(per_ms) * 1000 / u64::from(hz)).max(1) as u32;
    write(REG_TIMER_DIV, 0x3);
    write(REG_LVT_TIMER, (1 << 17) | u32::from(VECTOR_TIMER)); // periodic
    write(REG_TIMER_INIT, init);
}

/// Stretches this CPU's tick (idle): one interrupt after `ns`, then none until
/// [`tick_resume`].
pub fn tick_idle(ns: u64) {
    let per_ms = u64::from(this_cpu_ticks_per_ms());
    let count = (ns.saturating_mul(per_ms) / 1_000_000).clamp(1, u64::from(u32::MAX));
    write(REG_LVT_TIMER, u32::from(VECTOR_TIMER)); // one-shot
    write(REG_TIMER_INIT, count as u32);
}

/// The periodic tick again, after [`tick_idle`].
pub fn tick_resume() {
    start_timer(crate::time::TICK_HZ);
}

/// Raw access for the timer accuracy tests.
pub fn timer_one_shot_count(init: u32) {
    write(REG_LVT_TIMER, 1 << 16);
    write(REG_TIMER_INIT, init);
}

pub fn timer_current() -> u32 {
    read(REG_TIMER_CUR)
}

/// Stores the boot CPU's timer rate when it was measured elsewhere (against the HPET, by
/// `time::calibrate`).
pub fn set_ticks_per_ms(v: u32) {
    TICKS_PER_MS.store(v.max(1), Ordering::Relaxed);
}
