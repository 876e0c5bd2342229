//! Fault probes for the in-kernel tests: one instruction that faults on purpose, with the
//! per-CPU fault fixup armed so the exception handler records the fault, prints its report
//! and resumes after the instruction instead of ending the run.

use super::percpu::{self, FaultFixup};

/// Runs `probe` with a fixup armed for `vector`. `probe` gets the slot where it must store
/// the resume address before executing the faulting instruction. Returns the recorded
/// fault (vector, rip, error code), if any.
fn run_armed(vector: u8, probe: impl FnOnce(*mut u64)) -> Option<(u8, u64, u64)> {
    let _np = crate::sched::NoPreempt::new();
    let pc = percpu::current();
    pc.last_fault.set(None);
    let mut resume: u64 = 0;
    let slot: *mut u64 = &mut resume;
    pc.fault_fixup.set(Some(FaultFixup {
        resume_slot: slot,
        vector,
    }));
    probe(slot);
    pc.fault_fixup.set(None);
    pc.last_fault.take()
}

/// Writes to `va`; the recorded fault (vector, rip, error code) if that faulted.
///
/// # Safety
/// `va` is memory the caller owns and may overwrite (8 bytes), or an address that faults.
pub unsafe fn write(va: u64) -> Option<(u8, u64, u64)> {
    run_armed(14, |slot| {
        // SAFETY: the store either succeeds on a page the caller owns, or faults and the
        // armed fixup resumes at label 2 with all registers intact.
        unsafe {
            core::arch::asm!(
                "lea {tmp}, [rip + 2f]",
                "mov [{slot}], {tmp}",
                "mov qword ptr [{va}], 1",
                "2:",
                slot = in(reg) slot,
                va = in(reg) va,
                tmp = out(reg) _,
            );
        }
    })
}

/// Reads `addr`; the recorded fault, if that faulted.
///
/// # Safety
/// `addr` is memory without read side effects (not device registers), or an address that
/// faults.
pub unsafe fn read(addr: u64) -> Option<(u8, u64, u64)> {
    run_armed(14, |slot| {
        // SAFETY: the load faults; the handler resumes at label 2.
        unsafe {
            core::arch::asm!(
                "lea {tmp}, [rip + 2f]",
                "mov [{slot}], {tmp}",
                "mov {tmp}, [{addr}]",
                "2:",
                slot = in(reg) slot,
                addr = in(reg) addr,
                tmp = out(reg) _,
            );
        }
    })
}

/// Executes `ud2`; the recorded fault (#UD expected).
pub fn invalid_opcode() -> Option<(u8, u64, u64)> {
    run_armed(6, |slot| {
        // SAFETY: ud2 raises #UD; the handler resumes at label 2.
        unsafe {
            core::arch::asm!(
                "lea {tmp}, [rip + 2f]",
                "mov [{slot}], {tmp}",
                "ud2",
                "2:",
                slot = in(reg) slot,
                tmp = out(reg) _,
            );
        }
    })
}
