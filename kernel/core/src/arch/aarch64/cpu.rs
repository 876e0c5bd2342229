//! System registers the rest of the core reads: the generic timer's counter and frequency,
//! this CPU's MPIDR, the exception level, the translation-table bases.

macro_rules! read_sysreg {
    ($name:literal) => {{
        let v: u64;
        // SAFETY: reading an EL1/EL0-accessible system register has no side effect.
        unsafe {
            core::arch::asm!(concat!("mrs {}, ", $name), out(reg) v, options(nomem, nostack, preserves_flags))
        };
        v
    }};
}

/// The virtual count (CNTVCT_EL0), ordered after the instructions before it (`isb`).
#[inline]
pub fn counter() -> u64 {
    let v: u64;
    // SAFETY: reads the virtual counter; `isb` only orders.
    unsafe {
        core::arch::asm!("isb", "mrs {}, cntvct_el0", out(reg) v, options(nomem, nostack, preserves_flags))
    };
    v
}

/// The counter's frequency in Hz (CNTFRQ_EL0, set by the firmware or QEMU).
pub fn counter_hz() -> u64 {
    read_sysreg!("cntfrq_el0")
}

/// This CPU's affinity (MPIDR_EL1 without the RES1 and MT/U bits).
pub fn mpidr() -> u64 {
    read_sysreg!("mpidr_el1") & 0xff_00ff_ffff
}

/// The exception level we run at (1 after the boot stub).
pub fn current_el() -> u64 {
    (read_sysreg!("CurrentEL") >> 2) & 3
}

/// The kernel half's translation table (TTBR1_EL1, physical).
pub fn kernel_table_root() -> u64 {
    read_sysreg!("ttbr1_el1") & 0x0000_ffff_ffff_fffe
}

/// The CPU's name, from MIDR_EL1 (the implementer and part numbers QEMU models).
pub fn model() -> &'static str {
    let midr = read_sysreg!("midr_el1");
    match ((midr >> 24) & 0xff, (midr >> 4) & 0xfff) {
        (0x41, 0xd03) => "Cortex-A53",
        (0x41, 0xd07) => "Cortex-A57",
        (0x41, 0xd08) => "Cortex-A72",
        (0x41, 0xd0c) => "Neoverse-N1",
        (0x41, 0xd40) => "Neoverse-V1",
        (0, 0x51) | (0, _) => "QEMU max",
        _ => "unknown",
    }
}

/// The CPU's name for `/proc/cpuinfo` and the boot log.
pub fn brand() -> alloc::string::String {
    alloc::format!("ARM {} (MIDR {:#010x})", model(), read_sysreg!("midr_el1"))
}

/// Hardware random number (`RNDR`, FEAT_RNG), or None if the CPU has none (Cortex-A72
/// does not; QEMU's `max` does) or it failed repeatedly.
pub fn hw_random() -> Option<u64> {
    // ID_AA64ISAR0_EL1.RNDR, bits 63:60.
    if read_sysreg!("id_aa64isar0_el1") >> 60 == 0 {
        return None;
    }
    for _ in 0..64 {
        let v: u64;
        let failed: u64;
        // SAFETY: only executed when the ID register says RNDR exists (s3_3_c2_c4_0); it
        // writes the named register and NZCV (Z set on failure).
        unsafe {
            core::arch::asm!("mrs {v}, s3_3_c2_c4_0", "cset {f}, eq", v = out(reg) v, f = out(reg) failed, options(nomem, nostack))
        };
        if failed == 0 {
            return Some(v);
        }
    }
    None
}

/// A thread pointer the CPU cannot hold. x86_64's FS_BASE refuses non-canonical
/// addresses; TPIDR_EL0 holds any 64-bit value (as on Linux), so this is never returned here.
#[derive(Debug)]
pub struct NonCanonical;

/// The user thread pointer (TPIDR_EL0; FS_BASE on x86_64).
#[inline]
pub fn tls_base() -> u64 {
    super::user::tls()
}

/// Sets the user thread pointer (any value).
pub fn set_tls_base(v: u64) -> Result<(), NonCanonical> {
    super::user::set_tls(v);
    Ok(())
}

/// Each CPU's emergency stack top, by CPU number (0: none yet): user mode borrows SP_EL0,
/// so every entry from EL0 puts it back.
static EMERGENCY: [core::sync::atomic::AtomicU64; 256] =
    [const { core::sync::atomic::AtomicU64::new(0) }; 256];

/// Gives this CPU the emergency stack its fatal-exception entries switch to (SP_EL0).
pub fn set_emergency_stack(top: u64) {
    if let Some(slot) = EMERGENCY.get(super::percpu::cpu_id()) {
        slot.store(top & !0xf, core::sync::atomic::Ordering::Relaxed);
    }
    restore_emergency_stack_top(top);
}

/// This CPU's emergency stack top (0 before `set_emergency_stack`).
pub fn emergency_stack_top() -> u64 {
    EMERGENCY
        .get(super::percpu::cpu_id())
        .map_or(0, |s| s.load(core::sync::atomic::Ordering::Relaxed))
}

/// Points SP_EL0 at this CPU's emergency stack again (after user mode had it).
pub fn restore_emergency_stack() {
    let top = emergency_stack_top();
    if top != 0 {
        restore_emergency_stack_top(top);
    }
}

fn restore_emergency_stack_top(top: u64) {
    // SAFETY: SP_EL0 is not used by the kernel (it runs on SP_EL1); only the fatal
    // exception entries move to it, and user mode's value is in its trap frame.
    unsafe {
        core::arch::asm!("msr sp_el0, {}", in(reg) top & !0xf, options(nostack, preserves_flags))
    };
}

/// Makes instructions written through the data side at `[va, va + len)` visible to
/// instruction fetch (clean to the point of unification, invalidate the I-cache), as after
/// loading code into a page. `va` must be mapped.
pub fn sync_icache(va: u64, len: u64) {
    const LINE: u64 = 64;
    let mut a = va & !(LINE - 1);
    while a < va + len {
        // SAFETY: cache maintenance by address on a mapped range changes no memory.
        unsafe {
            core::arch::asm!("dc cvau, {a}", a = in(reg) a, options(nostack, preserves_flags))
        };
        a += LINE;
    }
    // SAFETY: barriers and I-cache maintenance by address have no other effect.
    unsafe { core::arch::asm!("dsb ish", options(nostack, preserves_flags)) };
    let mut a = va & !(LINE - 1);
    while a < va + len {
        // SAFETY: as above.
        unsafe {
            core::arch::asm!("ic ivau, {a}", a = in(reg) a, options(nostack, preserves_flags))
        };
        a += LINE;
    }
    // SAFETY: as above.
    unsafe { core::arch::asm!("dsb ish", "isb", options(nostack, preserves_flags)) };
}
