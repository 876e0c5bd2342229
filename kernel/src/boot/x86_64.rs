//! x86_64's `kmain`: Multiboot2/PVH hand-off, the local APIC, ACPI and the clocks
//! calibrated against the HPET (or PIT), the APIC timer; then [`super::run`].

use alloc::vec::Vec;

use crate::arch::{self, apic, cpu, idt};
use crate::cmdline::Cmdline;
use crate::{println, sched, time};

/// The architecture, for the banner.
pub const NAME: &str = "x86_64";

#[allow(unsafe_code)] // the exported symbol name is the one unsafe thing here
#[unsafe(no_mangle)]
extern "C" fn kmain(magic: u64, mbi_phys: u64) -> ! {
    // 1.–4. Frames, page tables, heap, boot information, log, this CPU's tables, symbols.
    let (info, cmd, feats) = adros_core::boot::early(magic, mbi_phys);

    // 5. Clocks: ACPI tables, I/O APICs masked, HPET; LAPIC + TSC calibrated against the
    // HPET (the PIT without one); wall clock from the RTC.
    apic::init_this_cpu(feats.x2apic);
    let cal = crate::platform::init_clocks();

    println!(
        "AdrOS: command line: {}",
        if info.cmdline.is_empty() {
            "(empty)"
        } else {
            &info.cmdline
        }
    );
    log::info!("boot loader: {}", info.loader);
    log::info!(
        "cpu: {}; smep={} smap={} nx={} x2apic={} 1g-pages={} invariant-tsc={}",
        cpu::brand(),
        feats.smep,
        feats.smap,
        feats.nx,
        feats.x2apic,
        feats.pdpe1gb,
        feats.invariant_tsc
    );
    log::info!(
        "clock: TSC {}.{:03} MHz, LAPIC timer {} ticks/ms (÷16), both against the {}",
        cal.tsc_hz / 1_000_000,
        (cal.tsc_hz / 1000) % 1000,
        cal.lapic_per_ms,
        cal.reference
    );

    crate::profile::init();

    // 6. Scheduler: this context becomes the boot thread; the tick starts.
    sched::init_this_cpu("kmain");
    idt::register(idt::VECTOR_TIMER, sched::timer_tick);
    idt::register(idt::VECTOR_RESCHED, sched::resched_ipi);
    apic::start_timer(time::TICK_HZ);
    arch::irq::enable();

    super::run(info, cmd)
}

pub fn start_other_cpus(cmd: &Cmdline) {
    let max = if cmd.nosmp {
        1
    } else {
        cmd.maxcpus.unwrap_or(usize::MAX).max(1)
    };
    let ids: Vec<u32> = crate::acpi::cpus()
        .iter()
        .filter(|c| c.enabled || c.online_capable)
        .map(|c| c.apic_id)
        .collect();
    if ids.len() <= 1 || max == 1 {
        if ids.len() > 1 {
            log::info!(
                "smp: {} CPUs present, only the boot CPU used ({})",
                ids.len(),
                if cmd.nosmp { "nosmp" } else { "maxcpus=1" }
            );
        }
        return;
    }
    let t0 = time::now_ns();
    let n = arch::smp::start_aps(&ids, max);
    log::info!(
        "smp: {n} of {} CPUs online ({} ms)",
        ids.len(),
        (time::now_ns() - t0) / 1_000_000
    );
}

/// The crashes only this architecture provokes (`debug.crash=pagefault|ud`).
pub fn crash(kind: &str) {
    match kind {
        "pagefault" => {
            let v = crate::arch::cpu::read_unmapped_kernel_page();
            println!("read {v} from an unmapped page?!");
        }
        _ => crate::arch::cpu::raise_invalid_opcode(),
    }
}
