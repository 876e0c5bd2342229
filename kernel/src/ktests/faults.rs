//! Deliberate faults, caught through the per-CPU fault fixup: the exception handler prints
//! its report, records the fault and resumes after the faulting instruction.

use alloc::string::String;
use alloc::vec::Vec;

use crate::ensure;
use crate::ktest::TestFn;

pub fn register(v: &mut Vec<(&'static str, TestFn)>) {
    v.push(("fault::page_fault_caught", page_fault));
    v.push(("fault::invalid_opcode_caught", invalid_opcode));
}

/// Writes to `va`; true if that raised a write page fault (caught and resumed).
///
/// # Safety
/// As for `arch::probe::write`: `va` is the caller's to overwrite, or faults.
pub unsafe fn write_faults(va: u64) -> bool {
    // SAFETY: the caller's promise.
    matches!(unsafe { crate::arch::probe::write(va) }, Some((14, _, e)) if e & 2 != 0)
}

fn page_fault() -> Result<(), String> {
    // Reading an unmapped kernel address must fault, be reported, and resume here.
    let addr: u64 = crate::mm::layout::MMIO_OFFSET - 0x20_0000;
    ensure!(
        crate::mm::paging::query(addr).is_none(),
        "probe address is mapped"
    );
    // SAFETY: `addr` is unmapped (checked above): the read faults and is resumed.
    let r = unsafe { crate::arch::probe::read(addr) };
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
    let r = crate::arch::probe::invalid_opcode();
    let (v, rip, _) = r.ok_or("no #UD was reported")?;
    ensure!(v == 6, "wrong vector {v}");
    ensure!(
        rip >= crate::mm::layout::KERNEL_VMA,
        "fault rip {rip:#x} not in the kernel"
    );
    Ok(())
}
