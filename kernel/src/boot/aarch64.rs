//! aarch64's `kmain` (QEMU `virt`): the core's early boot from the device tree (frames,
//! W^X, heap, log, GICv3, generic timer, the initrd range as boot module "initrd"), this
//! CPU's scheduler and timer tick; then [`super::run`]. Other CPUs start through PSCI.

use alloc::vec::Vec;

use adros_core::arch::aarch64::{boot, smp, timer};

use crate::cmdline::Cmdline;
use crate::{println, sched, time};

/// The architecture, for the banner.
pub const NAME: &str = "aarch64";

/// The CPUs' MPIDRs from the device tree, for `start_other_cpus`.
static CPUS: spin::Once<Vec<u64>> = spin::Once::new();

#[allow(unsafe_code)] // the exported symbol name is the one unsafe thing here
#[unsafe(no_mangle)]
extern "C" fn kmain(dtb_pa: u64) -> ! {
    let b = boot::early(dtb_pa);
    let m = &b.machine;
    println!(
        "AdrOS: {} CPUs ({}), {} MiB RAM, EL{}, GICv3 with {} interrupt lines, generic timer at {} Hz; command line: {}",
        m.cpus().len(),
        b.cpu_model,
        b.ram_bytes >> 20,
        b.el,
        b.gic_lines,
        b.counter_hz,
        boot::describe_cmdline(&b)
    );
    CPUS.call_once(|| m.cpus().to_vec());

    sched::init_this_cpu("kmain");
    timer::start(m.timer_intid, time::TICK_HZ);
    crate::arch::irq::enable();

    super::run(crate::bootinfo::info(), crate::bootinfo::cmdline())
}

/// Starts the device tree's other CPUs with PSCI `CPU_ON`, up to `maxcpus` (none with
/// `nosmp`).
pub fn start_other_cpus(cmd: &Cmdline) {
    let all = CPUS.get().map_or(&[][..], |v| v.as_slice());
    let max = if cmd.nosmp {
        1
    } else {
        cmd.maxcpus.unwrap_or(usize::MAX).max(1)
    };
    if all.len() <= 1 || max == 1 {
        return;
    }
    let t0 = time::now_ns();
    let n = smp::start_secondaries(&all[..all.len().min(max)]);
    log::info!(
        "smp: {n} of {} CPUs online ({} ms)",
        all.len(),
        (time::now_ns() - t0) / 1_000_000
    );
}

/// `debug.crash=pagefault`: an unmapped kernel read (the exception report ends the run).
/// `ud` (an undefined instruction) is x86_64's only.
pub fn crash(kind: &str) {
    use adros_core::arch::aarch64::exceptions::{Provoke, provoke};
    if kind == "pagefault" {
        provoke(Provoke::DataAbort);
    } else {
        log::warn!("debug.crash={kind}: not provoked on aarch64 (pagefault is)");
    }
}
