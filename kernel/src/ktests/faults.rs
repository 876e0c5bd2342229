//! Deliberate faults, caught through the per-CPU fault fixup: the exception handler prints
//! its report, records the fault and resumes after the faulting instruction.

use alloc::string::String;
use alloc::vec::Vec;

use crate::arch::percpu::{self, FaultFixup};
use crate::ensure;
use crate::ktest::TestFn;

pub fn register(v: &mut Vec<(&'static str, TestFn)>) {
    v.push(("fault::page_fault_caught", page_fault));
    v.push(("fault::invalid_opcode_caught", invalid_opcode));
}

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

/// Writes to `va`; true if that raised a write page fault (caught and resumed).
pub fn write_faults(va: u64) -> bool {
    let r = run_armed(14, |slot| {
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
    });
    matches!(r, Some((14, _, e)) if e & 2 != 0)
}

fn page_fault() -> Result<(), String> {
    // Reading an unmapped kernel address must fault, be reported, and resume here.
    let addr: u64 = crate::mm::layout::MMIO_OFFSET - 0x20_0000;
    ensure!(
        crate::mm::paging::query(addr).is_none(),
        "probe address is mapped"
    );
    let r = run_armed(14, |slot| {
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
    });
    let (v, rip, err) = r.ok_or("no page fault was reported")?;
    ensure!(v == 14, "wrong vector {v}");
    ensure!(
        rip >= crate::mm::layout::KERNEL_VMA,
        "fault rip {rip:#x} not in the kernel"
    );
    ensure!(
        err & 1 == 0 && err & 2 == 0,
        "error code {err:#x}: expected a not-present read"
    );
    Ok(())
}

fn invalid_opcode() -> Result<(), String> {
    let r = run_armed(6, |slot| {
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
    });
    let (v, rip, _) = r.ok_or("no #UD was reported")?;
    ensure!(v == 6, "wrong vector {v}");
    ensure!(
        rip >= crate::mm::layout::KERNEL_VMA,
        "fault rip {rip:#x} not in the kernel"
    );
    Ok(())
}
