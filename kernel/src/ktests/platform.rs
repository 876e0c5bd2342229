//! ACPI, I/O APIC, HPET, RTC and the clock calibration, checked on the real (emulated) machine.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::{apic, hpet, idt, ioapic, rtc};
use crate::ensure;
use crate::ktest::TestFn;
use crate::sched;

pub fn register(v: &mut Vec<(&'static str, TestFn)>) {
    v.push(("platform::madt_cpus_and_ioapics", madt));
    v.push(("platform::hpet_monotonic", hpet_monotonic));
    v.push(("platform::lapic_vs_hpet_100ms", lapic_vs_hpet));
    v.push(("platform::tsc_vs_hpet_100ms", tsc_vs_hpet));
    v.push(("platform::rtc_plausible", rtc_plausible));
    v.push(("platform::ioapic_rtc_irq8_arrives", ioapic_rtc_irq));
    v.push(("platform::pci_route_irq_q35", pci_route));
}

fn madt() -> Result<(), String> {
    let cpus = crate::acpi::cpus();
    let enabled = cpus.iter().filter(|c| c.enabled).count();
    ensure!(crate::acpi::platform().madt.is_some(), "no MADT");
    ensure!(enabled >= 1, "no enabled CPU in the MADT: {cpus:?}");
    let me = apic::id();
    ensure!(
        cpus.iter().any(|c| c.apic_id == me && c.enabled),
        "the boot CPU (APIC id {me}) is not an enabled MADT entry: {cpus:?}"
    );
    ensure!(
        !crate::acpi::ioapics().is_empty(),
        "no I/O APIC in the MADT"
    );
    ensure!(!ioapic::all().is_empty(), "no I/O APIC initialised");
    let io = ioapic::all()[0];
    ensure!(
        io.pins >= 16,
        "I/O APIC {} has only {} pins",
        io.id,
        io.pins
    );
    // Every pin the driver has not been asked to route is masked.
    ensure!(
        ioapic::entry(io.gsi_base + io.pins - 1).is_some_and(|e| e & (1 << 16) != 0),
        "last pin not masked"
    );
    let (gsi0, _, _) = crate::acpi::isa_irq_to_gsi(0);
    log::info!(
        "madt: {} CPUs ({enabled} enabled), {} I/O APIC(s); ISA IRQ 0 -> GSI {gsi0}",
        cpus.len(),
        ioapic::all().len()
    );
    Ok(())
}

fn hpet_monotonic() -> Result<(), String> {
    ensure!(hpet::available(), "no HPET");
    let mut last = hpet::counter();
    let start = last;
    for i in 0..100_000 {
        let c = hpet::counter();
        ensure!(c >= last, "HPET went backwards at read {i}: {last} -> {c}");
        last = c;
    }
    ensure!(last > start, "HPET did not advance over 100000 reads");
    let (n0, t0) = (hpet::now_ns(), crate::time::now_ns());
    sched::sleep_ms(20);
    let (n1, t1) = (hpet::now_ns(), crate::time::now_ns());
    ensure!(n1 > n0 && t1 > t0, "clocks stood still across a sleep");
    Ok(())
}

/// Median of three 100 ms windows of (TSC error %, LAPIC error %) against the HPET, with
/// interrupts off; restarts the scheduler tick afterwards.
fn clock_errors() -> Result<(f64, f64), String> {
    ensure!(hpet::available(), "no HPET");
    let tsc_hz = crate::time::tsc_hz();
    let lapic_per_ms = u64::from(apic::ticks_per_ms());
    ensure!(tsc_hz > 0 && lapic_per_ms > 0, "clocks not calibrated");
    let mut et = [0f64; 3];
    let mut el = [0f64; 3];
    for i in 0..3 {
        let irq = sched::IrqOff::new();
        let s = crate::time::measure_against_hpet(100);
        drop(irq);
        let s = s.ok_or_else(|| String::from("no HPET sample"))?;
        let tsc_want = tsc_hz as f64 * s.ns as f64 / 1e9;
        let lapic_want = lapic_per_ms as f64 * s.ns as f64 / 1e6;
        et[i] = (s.tsc as f64 - tsc_want) / tsc_want * 100.0;
        el[i] = (f64::from(s.lapic) - lapic_want) / lapic_want * 100.0;
    }
    apic::start_timer(crate::time::TICK_HZ);
    let med = |mut v: [f64; 3]| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(core::cmp::Ordering::Equal));
        v[1]
    };
    log::info!(
        "clocks vs HPET over 3 x 100 ms: TSC off by {:+.4?}%, LAPIC off by {:+.4?}% (signed)",
        et,
        el
    );
    Ok((med(et).abs(), med(el).abs()))
}

fn lapic_vs_hpet() -> Result<(), String> {
    let (_, el) = clock_errors()?;
    log::info!("LAPIC timer vs HPET: median error {el:.4}% over 100 ms");
    ensure!(
        el < 1.0,
        "LAPIC timer disagrees with the HPET by {el:.4}% (median of 3 x 100 ms)"
    );
    Ok(())
}

fn tsc_vs_hpet() -> Result<(), String> {
    let (et, _) = clock_errors()?;
    log::info!("TSC vs HPET: median error {et:.4}% over 100 ms");
    ensure!(
        et < 1.0,
        "TSC disagrees with the HPET by {et:.4}% (median of 3 x 100 ms)"
    );
    Ok(())
}

fn rtc_plausible() -> Result<(), String> {
    let dt = rtc::now().ok_or_else(|| String::from("the RTC is unreadable"))?;
    let unix = rtc::unix_time().unwrap_or(0);
    log::info!(
        "rtc: {:04}-{:02}-{:02} {:02}:{:02}:{:02} (unix {unix})",
        dt.year,
        dt.month,
        dt.day,
        dt.hour,
        dt.min,
        dt.sec
    );
    ensure!(
        dt.year >= 2024 && dt.year < 2200,
        "implausible RTC year {}",
        dt.year
    );
    let wall = crate::time::wall_clock_ns() / 1_000_000_000;
    ensure!(
        wall.abs_diff(unix) <= 2,
        "wall clock {wall} drifted from the RTC {unix}"
    );
    Ok(())
}

static RTC_IRQS: AtomicU64 = AtomicU64::new(0);
static RTC_VECTOR: spin::Once<Option<u8>> = spin::Once::new();

fn rtc_irq(_f: &mut idt::TrapFrame) {
    rtc::ack();
    RTC_IRQS.fetch_add(1, Ordering::Relaxed);
}

fn ioapic_rtc_irq() -> Result<(), String> {
    let (gsi, active_low, level) = crate::acpi::isa_irq_to_gsi(8);
    let vector = (*RTC_VECTOR.call_once(ioapic::alloc_vector))
        .ok_or_else(|| String::from("no free vector"))?;
    idt::register(vector, rtc_irq);
    RTC_IRQS.store(0, Ordering::Relaxed);
    ioapic::route(gsi, vector, apic::id(), level, active_low)
        .map_err(|e| format!("route GSI {gsi}: {e}"))?;
    rtc::enable_periodic(6); // 1024 Hz
    ioapic::unmask(gsi).map_err(|e| format!("unmask GSI {gsi}: {e}"))?;
    let t0 = crate::time::now_ns();
    // Interrupts stay on while we sleep; the handler counts wherever it runs.
    while crate::time::now_ns() - t0 < 100_000_000 {
        sched::sleep_ms(10);
    }
    let _ = ioapic::mask(gsi);
    rtc::disable_periodic();
    let n = RTC_IRQS.load(Ordering::Relaxed);
    log::info!(
        "rtc periodic interrupt via GSI {gsi} (vector {vector:#x}, level={level}, active_low={active_low}): {n} in 100 ms"
    );
    ensure!(
        n > 0,
        "no RTC interrupt arrived through the I/O APIC in 100 ms"
    );
    Ok(())
}

fn pci_route() -> Result<(), String> {
    ensure!(
        crate::acpi::chipset() == crate::firmware::Chipset::Q35,
        "not a q35 machine: {:?}",
        crate::acpi::chipset()
    );
    let sata = crate::acpi::pci_route_irq(0, 0x1f, 2, 1);
    ensure!(
        sata == Some(16),
        "00:1f.2 INTA routed to {sata:?}, want GSI 16"
    );
    ensure!(
        crate::acpi::pci_route_irq(255, 40, 0, 1).is_none(),
        "bus 255 dev 40 routed"
    );
    ensure!(
        crate::acpi::pci_route_irq(0, 3, 0, 0).is_none(),
        "pin 0 routed"
    );
    ensure!(
        crate::acpi::pci_route_irq(0, 3, 9, 1).is_none(),
        "function 9 routed"
    );
    ensure!(
        crate::acpi::pci_route_irq(0, 3, 0, 5).is_none(),
        "pin 5 routed"
    );
    for dev in 0..32u8 {
        for pin in 1..=4u8 {
            if let Some(g) = crate::acpi::pci_route_irq(0, dev, 0, pin) {
                ensure!(
                    (16..24).contains(&g),
                    "00:{dev:02x} pin {pin} -> GSI {g} outside 16-23"
                );
                ensure!(
                    ioapic::all().iter().any(|io| io.handles(g)),
                    "GSI {g} has no I/O APIC"
                );
            }
        }
    }
    Ok(())
}
