//! CPU identification and control-register setup.

use raw_cpuid::CpuId;
use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};
use x86_64::registers::model_specific::{Efer, EferFlags};

#[derive(Clone, Copy, Debug, Default)]
pub struct Features {
    pub smep: bool,
    pub smap: bool,
    pub nx: bool,
    pub pdpe1gb: bool,
    pub invariant_tsc: bool,
    pub x2apic: bool,
    pub rdrand: bool,
    pub rdseed: bool,
    pub fsgsbase: bool,
    pub tsc_deadline: bool,
    pub rdtscp: bool,
}

pub fn features() -> Features {
    let id = CpuId::new();
    let f = id.get_feature_info();
    let ext = id.get_extended_feature_info();
    let ext_fn = id.get_extended_processor_and_feature_identifiers();
    let pm = id.get_advanced_power_mgmt_info();
    Features {
        smep: ext.as_ref().is_some_and(|e| e.has_smep()),
        smap: ext.as_ref().is_some_and(|e| e.has_smap()),
        fsgsbase: ext.as_ref().is_some_and(|e| e.has_fsgsbase()),
        rdseed: ext.as_ref().is_some_and(|e| e.has_rdseed()),
        nx: ext_fn.as_ref().is_some_and(|e| e.has_execute_disable()),
        pdpe1gb: ext_fn.as_ref().is_some_and(|e| e.has_1gib_pages()),
        invariant_tsc: pm.as_ref().is_some_and(|p| p.has_invariant_tsc()),
        x2apic: f.as_ref().is_some_and(|f| f.has_x2apic()),
        rdrand: f.as_ref().is_some_and(|f| f.has_rdrand()),
        tsc_deadline: f.as_ref().is_some_and(|f| f.has_tsc_deadline()),
        rdtscp: ext_fn.as_ref().is_some_and(|e| e.has_rdtscp()),
    }
}

pub fn brand() -> alloc::string::String {
    CpuId::new()
        .get_processor_brand_string()
        .map(|b| alloc::string::String::from(b.as_str().trim()))
        .unwrap_or_else(|| alloc::string::String::from("unknown x86_64"))
}

/// Turns on NX, write protection, global pages, and SMEP/SMAP when the CPU has them.
pub fn enable_protections(f: &Features) {
    // SAFETY: these bits only restrict what the CPU allows; the kernel's page tables are built
    // with NX where intended and never execute or touch user pages without stac/clac.
    unsafe {
        if f.nx {
            Efer::update(|e| *e |= EferFlags::NO_EXECUTE_ENABLE);
        }
        Cr0::update(|c| *c |= Cr0Flags::WRITE_PROTECT);
        let mut cr4 = Cr4::read() | Cr4Flags::PAGE_GLOBAL;
        if f.smep {
            cr4 |= Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION;
        }
        if f.smap {
            cr4 |= Cr4Flags::SUPERVISOR_MODE_ACCESS_PREVENTION;
        }
        Cr4::write(cr4);
    }
}

pub fn cr4() -> Cr4Flags {
    Cr4::read()
}

#[inline]
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no side effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Hardware random number (RDSEED, then RDRAND), or None if the CPU has neither.
pub fn hw_random() -> Option<u64> {
    let f = features();
    if !f.rdseed && !f.rdrand {
        return None;
    }
    for _ in 0..64 {
        let v: u64;
        let ok: u8;
        // SAFETY: only executed when CPUID says the instruction exists; it only writes the
        // named registers and the carry flag.
        unsafe {
            if f.rdseed {
                core::arch::asm!("rdseed {v}", "setc {ok}", v = out(reg) v, ok = out(reg_byte) ok, options(nomem, nostack));
            } else {
                core::arch::asm!("rdrand {v}", "setc {ok}", v = out(reg) v, ok = out(reg_byte) ok, options(nomem, nostack));
            }
        }
        if ok == 1 {
            return Some(v);
        }
    }
    None
}

pub fn read_cr2() -> u64 {
    x86_64::registers::control::Cr2::read_raw()
}

/// The user thread-pointer base (`FS_BASE`), as `arch_prctl(ARCH_GET_FS)` reports it.
pub fn fs_base() -> u64 {
    x86_64::registers::model_specific::FsBase::read().as_u64()
}

/// An address with its upper bits not a sign extension of bit 47: loading it into a base
/// register would fault.
#[derive(Debug)]
pub struct NonCanonical;

/// Sets `FS_BASE`; `Err` for a non-canonical address (the MSR write would fault).
pub fn set_fs_base(v: u64) -> Result<(), NonCanonical> {
    let a = x86_64::VirtAddr::try_new(v).map_err(|_| NonCanonical)?;
    x86_64::registers::model_specific::FsBase::write(a);
    Ok(())
}

/// The user thread pointer, by its arch-neutral name: `FS_BASE` here, TPIDR_EL0 on aarch64.
#[inline]
pub fn tls_base() -> u64 {
    fs_base()
}

/// Sets the user thread pointer (`FS_BASE`); `Err` for a non-canonical address.
#[inline]
pub fn set_tls_base(v: u64) -> Result<(), NonCanonical> {
    set_fs_base(v)
}

/// The user `GS` base. While the kernel runs (after `swapgs`) it sits in `KERNEL_GS_BASE`.
pub fn user_gs_base() -> u64 {
    x86_64::registers::model_specific::KernelGsBase::read().as_u64()
}

/// Sets the user `GS` base; `Err` for a non-canonical address.
pub fn set_user_gs_base(v: u64) -> Result<(), NonCanonical> {
    let a = x86_64::VirtAddr::try_new(v).map_err(|_| NonCanonical)?;
    x86_64::registers::model_specific::KernelGsBase::write(a);
    Ok(())
}

/// The physical address of the page-table root this CPU runs on (CR3).
pub fn address_space() -> u64 {
    x86_64::registers::control::Cr3::read_raw()
        .0
        .start_address()
        .as_u64()
}

/// Switches this CPU to the page-table root at physical address `pml4` (CR3's flags kept).
///
/// # Safety
/// `pml4` must be a live, 4 KiB-aligned PML4 that maps the kernel half as the current one
/// does (the code running this must stay mapped), and must stay alive while in use.
pub unsafe fn switch_address_space(pml4: u64) {
    use x86_64::registers::control::Cr3;
    use x86_64::structures::paging::PhysFrame;
    let (_, flags) = Cr3::read_raw();
    // SAFETY: the caller guarantees `pml4` is a live root sharing the kernel half.
    unsafe {
        Cr3::write_raw(
            PhysFrame::containing_address(x86_64::PhysAddr::new(pml4)),
            flags,
        );
    }
}

/// The frame pointer (RBP) of the caller's frame, where a backtrace starts.
#[inline(always)]
pub fn frame_pointer() -> u64 {
    let rbp: u64;
    // SAFETY: reads a register.
    unsafe {
        core::arch::asm!("mov {}, rbp", out(reg) rbp, options(nomem, nostack, preserves_flags))
    };
    rbp
}

/// For an NMI, which can arrive in the few kernel instructions where GS still holds the
/// user's base (right after `syscall`, or after the exit path's `swapgs` before
/// `sysretq`/`iretq`): the entry stub decides by the interrupted CS alone, so the handler
/// checks the base itself and swaps if it is not a kernel address. Returns whether it
/// swapped; hand that to [`nmi_restore_gs`] before returning.
pub fn nmi_kernel_gs() -> bool {
    // SAFETY: reading IA32_GS_BASE has no side effects.
    let base = unsafe { x86_64::registers::model_specific::Msr::new(0xc000_0101).read() };
    if base >= 0xffff_8000_0000_0000 {
        return false;
    }
    // SAFETY: GS held the user's base; the kernel's is in KERNEL_GS_BASE (that is what the
    // entry paths' swapgs relies on). NMIs are not nested and interrupts are off, so nothing
    // else sees the swapped state before `nmi_restore_gs`.
    unsafe { core::arch::asm!("swapgs", options(nostack, preserves_flags)) };
    true
}

/// Undoes [`nmi_kernel_gs`].
pub fn nmi_restore_gs(swapped: bool) {
    if swapped {
        // SAFETY: puts back the user base that `nmi_kernel_gs` swapped out, for the
        // interrupted instructions, which expect it.
        unsafe { core::arch::asm!("swapgs", options(nostack, preserves_flags)) };
    }
}

/// Puts this CPU's number in IA32_TSC_AUX, where `rdtscp` (the vDSO's `getcpu`) reads it;
/// false if the CPU has no `rdtscp`.
pub fn set_tsc_aux(cpu: usize) -> bool {
    if !features().rdtscp {
        return false;
    }
    // SAFETY: IA32_TSC_AUX (0xC000_0103) exists when rdtscp does; it only holds a value
    // that rdtscp/rdpid return, nothing the kernel relies on.
    unsafe { x86_64::registers::model_specific::Msr::new(0xc000_0103).write(cpu as u64) };
    true
}

/// Reads a kernel address that is never mapped (just below the MMIO window), on purpose: the
/// page-fault report's test (`debug.crash=pagefault`). Returns only if the read did not
/// fault, with what it read.
pub fn read_unmapped_kernel_page() -> u64 {
    let va = crate::mm::layout::MMIO_OFFSET - 0x30_0000;
    // SAFETY: a read of an unmapped kernel address faults into the exception handler, which
    // reports it and ends the run; it touches no memory.
    unsafe { core::ptr::read_volatile(va as *const u64) }
}

/// Raises an invalid-opcode exception (#UD) on purpose: the fault path's test.
pub fn raise_invalid_opcode() {
    // SAFETY: `ud2` only traps; the exception handler reports it and ends the run.
    unsafe { core::arch::asm!("ud2") };
}
