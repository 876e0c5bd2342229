//! x86_64 platform discovery: ACPI tables, interrupt controllers, timers, the RTC, PCI.
//! `init_clocks` runs in the boot sequence's clock step (interrupts off, before the
//! scheduler tick); `platform_init` runs once on the boot CPU with the scheduler running;
//! `describe_platform` produces the boot banner's hardware lines.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::arch::{hpet, ioapic};
use crate::time::Calibration;

static CALIBRATION: spin::Once<Calibration> = spin::Once::new();
static HPET: spin::Once<Option<hpet::HpetInfo>> = spin::Once::new();

/// ACPI, the I/O APICs (all pins masked), the HPET, then the TSC and LAPIC timer calibrated
/// against the HPET (PIT without one), then the wall clock from the RTC.
pub fn init_clocks() -> Calibration {
    crate::acpi::init();
    init_ioapics();
    HPET.call_once(|| {
        let e = crate::acpi::hpet()?;
        match hpet::init(e.address) {
            Ok(info) => Some(info),
            Err(why) => {
                log::warn!(
                    "hpet: {why} (at {:#x}); clocks are calibrated against the PIT",
                    e.address
                );
                None
            }
        }
    });
    let cal = *CALIBRATION.call_once(crate::time::calibrate);
    crate::time::init_wall_clock();
    cal
}

fn init_ioapics() {
    let found: Vec<(u8, u64, u32)> = crate::acpi::ioapics()
        .iter()
        .map(|i| (i.id, u64::from(i.address), i.gsi_base))
        .collect();
    ioapic::init(&found);
}

pub fn platform_init() {
    crate::acpi::init();
    init_ioapics();
    crate::pci::init();
}

/// virtio-mmio transports: none here (virtio devices are PCI functions on q35).
pub fn virtio_mmio() -> Vec<super::MmioDevice> {
    Vec::new()
}

pub fn describe_platform(lines: &mut Vec<String>) {
    let cpus = crate::acpi::cpus();
    let ids: Vec<String> = cpus
        .iter()
        .filter(|c| c.startable())
        .map(|c| format!("{}", c.apic_id))
        .collect();
    let disabled = cpus.iter().filter(|c| !c.startable()).count();
    let online = crate::arch::percpu::online_cpus().count();
    let from = if crate::acpi::platform().madt.is_some() {
        "in the MADT"
    } else {
        "assumed (no MADT)"
    };
    lines.push(format!(
        "cpus: {} {from} (APIC ids {}{}), {online} online; boot CPU APIC id {}",
        ids.len(),
        ids.join(" "),
        if disabled > 0 {
            format!("; {disabled} disabled")
        } else {
            String::new()
        },
        crate::arch::apic::id()
    ));
    let ios = ioapic::all();
    if ios.is_empty() {
        lines.push(String::from("ioapic: none (device interrupts unavailable)"));
    }
    for io in ios {
        lines.push(format!(
            "ioapic: id {} at {:#x}, GSI {}-{} ({} pins, version {:#x})",
            io.id,
            io.phys,
            io.gsi_base,
            io.gsi_base + io.pins.saturating_sub(1),
            io.pins,
            io.version
        ));
    }
    let ov: Vec<String> = crate::acpi::overrides()
        .iter()
        .map(|o| {
            format!(
                "{}->{}{}{}",
                o.irq,
                o.gsi,
                if o.flags.level { " level" } else { "" },
                if o.flags.active_low { " low" } else { "" }
            )
        })
        .collect();
    if !ov.is_empty() {
        lines.push(format!("isa irq overrides: {}", ov.join(", ")));
    }
    match HPET.get().copied().flatten() {
        Some(h) => lines.push(format!(
            "hpet: {}.{:03} MHz (period {} fs), {} comparators, {}-bit counter, at {:#x}",
            h.frequency_hz() / 1_000_000,
            (h.frequency_hz() / 1000) % 1000,
            h.period_fs,
            h.comparators,
            if h.counter_64bit { 64 } else { 32 },
            h.phys
        )),
        None => lines.push(String::from("hpet: none (PIT used for calibration)")),
    }
    if let Some(c) = CALIBRATION.get() {
        lines.push(format!(
            "clocks: TSC {}.{:03} MHz, LAPIC timer {} ticks/ms (/16), calibrated against the {}",
            c.tsc_hz / 1_000_000,
            (c.tsc_hz / 1000) % 1000,
            c.lapic_per_ms,
            c.reference
        ));
    }
    match crate::time::boot_unix_time() {
        Some(_) => {
            let now = crate::time::wall_clock_ns() / 1_000_000_000;
            let d = crate::firmware::civil_from_unix(now);
            lines.push(format!(
                "rtc: {:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC (unix {now})",
                d.year, d.month, d.day, d.hour, d.min, d.sec
            ));
        }
        None => lines.push(String::from("rtc: unavailable")),
    }
    for r in crate::acpi::mcfg_regions() {
        lines.push(format!(
            "pci ecam: segment {}, buses {:02x}-{:02x} at {:#x}",
            r.segment, r.bus_start, r.bus_end, r.base
        ));
    }
    let p = crate::acpi::platform();
    let routing = match p.chipset {
        crate::firmware::Chipset::Q35 => "q35: PCI INTx by QEMU's q35 _PRT (GSI 16-23)",
        crate::firmware::Chipset::I440fx => {
            "i440fx: PCI INTx by QEMU's i440fx _PRT and PIIX PIRQ links"
        }
        crate::firmware::Chipset::Unknown => "unknown chipset: no PCI INTx routing",
    };
    lines.push(format!(
        "acpi: revision {}, OEM {}; {routing}",
        p.revision,
        if p.oem.is_empty() { "?" } else { &p.oem }
    ));
    lines.push(format!("power off: {}", crate::acpi::describe_power_off()));
    crate::pci::describe(lines);
}

/// Powers the machine off: ACPI S5 when the FADT and `\_S5_` allow it, else QEMU's exit
/// device (status 0).
pub fn power_off() -> ! {
    crate::arch::irq::save_and_disable();
    let why = crate::acpi::power_off_s5();
    log::warn!("power off: {why}; falling back to QEMU's exit device");
    crate::arch::qemu_exit(crate::panic::EXIT_SUCCESS)
}

/// Restarts the machine: the 8042 keyboard controller's reset line (every PC and QEMU
/// machine has it); if that does nothing, a triple fault.
pub fn reset() -> ! {
    crate::arch::irq::save_and_disable();
    crate::arch::reset_machine()
}
