//! PSCI (the Power State Coordination Interface): CPU_ON for the secondary CPUs and
//! SYSTEM_OFF, through the conduit the device tree names (`hvc` on QEMU `virt` without EL2).

use core::sync::atomic::{AtomicU8, Ordering};

use crate::devicetree::PsciConduit;

const CPU_ON: u64 = 0xc400_0003;
const SYSTEM_OFF: u64 = 0x8400_0008;
const SYSTEM_RESET: u64 = 0x8400_0009;

/// 0: unknown (no call is made), 1: hvc, 2: smc.
static CONDUIT: AtomicU8 = AtomicU8::new(0);

pub fn set_conduit(c: Option<PsciConduit>) {
    CONDUIT.store(
        match c {
            None => 0,
            Some(PsciConduit::Hvc) => 1,
            Some(PsciConduit::Smc) => 2,
        },
        Ordering::Relaxed,
    );
}

pub fn available() -> bool {
    CONDUIT.load(Ordering::Relaxed) != 0
}

fn call(f: u64, a: u64, b: u64, c: u64) -> Option<i64> {
    let mut r = f;
    match CONDUIT.load(Ordering::Relaxed) {
        // SAFETY: a PSCI call: the firmware reads x0..x3 and returns in x0; SMCCC lets it
        // clobber x0..x17, declared here.
        1 => unsafe {
            core::arch::asm!("hvc #0", inout("x0") r, inout("x1") a => _, inout("x2") b => _, inout("x3") c => _,
                out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _, out("x9") _, out("x10") _,
                out("x11") _, out("x12") _, out("x13") _, out("x14") _, out("x15") _, out("x16") _, out("x17") _,
                options(nostack))
        },
        // SAFETY: as above, through the secure monitor.
        2 => unsafe {
            core::arch::asm!("smc #0", inout("x0") r, inout("x1") a => _, inout("x2") b => _, inout("x3") c => _,
                out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _, out("x9") _, out("x10") _,
                out("x11") _, out("x12") _, out("x13") _, out("x14") _, out("x15") _, out("x16") _, out("x17") _,
                options(nostack))
        },
        _ => return None,
    }
    Some(r as i64)
}

/// Starts the CPU with affinity `mpidr` at physical `entry` with `context` in x0.
/// Returns PSCI's status (0: success) or None without PSCI.
pub fn cpu_on(mpidr: u64, entry: u64, context: u64) -> Option<i64> {
    call(CPU_ON, mpidr, entry, context)
}

/// Powers the machine off (QEMU exits with status 0); returns only if PSCI is missing.
pub fn system_off() {
    let _ = call(SYSTEM_OFF, 0, 0, 0);
}

/// PSCI `SYSTEM_RESET`; returns only if there is no PSCI or it refused.
pub fn system_reset() {
    let _ = call(SYSTEM_RESET, 0, 0, 0);
}
