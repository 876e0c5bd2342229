//! Checked access to user memory. Every copy between kernel and user space goes through
//! `rep movsq` + `rep movsb` between two known labels (quadwords first: under QEMU's TCG a
//! `rep movsb` costs about as much per byte as `rep movsq` per quadword); a page fault there is first offered to the process's
//! address space (demand paging, copy-on-write) and, if it cannot be resolved, makes the copy
//! return EFAULT instead of crashing the kernel. SMAP is lifted only around those instructions.

use crate::errno::{Errno, KResult};

use super::super::uaccess_common::check;
pub use super::super::uaccess_common::{cmpxchg_user, read_cstr, read_val, write_val};

core::arch::global_asm!(
    r#"
.section .text.uaccess, "ax"
.global adros_uaccess_copy
.global adros_uaccess_fault_start
.global adros_uaccess_fault_end
.global adros_uaccess_fixup
/* rdi = dst, rsi = src, rdx = len; rax = 0 on success, 1 on an unresolvable fault */
adros_uaccess_copy:
    mov rcx, rdx
    shr rcx, 3
    and edx, 7
    stac
adros_uaccess_fault_start:
    rep movsq
    mov ecx, edx
    rep movsb
adros_uaccess_fault_end:
    clac
    xor eax, eax
    ret
adros_uaccess_fixup:
    clac
    mov eax, 1
    ret

/* rdi = user u32 address, esi = expected, edx = new, rcx = where to store the old value.
   rax = 0 on success (old value stored), 1 on an unresolvable fault. */
.global adros_uaccess_cmpxchg
adros_uaccess_cmpxchg:
    mov eax, esi
    stac
.global adros_uaccess_cmpxchg_fault
adros_uaccess_cmpxchg_fault:
    lock cmpxchg dword ptr [rdi], edx
    clac
    mov dword ptr [rcx], eax
    xor eax, eax
    ret
"#
);

unsafe extern "C" {
    static adros_uaccess_cmpxchg_fault: u8;
    fn adros_uaccess_copy(dst: *mut u8, src: *const u8, len: usize) -> u64;
    static adros_uaccess_fault_start: u8;
    static adros_uaccess_fault_end: u8;
    static adros_uaccess_fixup: u8;
}

/// If `rip` is the user-copy instruction, the address to resume at after an unresolvable fault.
pub fn fixup_for(rip: u64) -> Option<u64> {
    // SAFETY: only the addresses of the labels are taken.
    let (s, e, f) = unsafe {
        (
            &adros_uaccess_fault_start as *const u8 as u64,
            &adros_uaccess_fault_end as *const u8 as u64,
            &adros_uaccess_fixup as *const u8 as u64,
        )
    };
    // SAFETY: only the address of the label is taken.
    let c = unsafe { &adros_uaccess_cmpxchg_fault as *const u8 as u64 };
    ((s..=e).contains(&rip) || rip == c).then_some(f)
}

/// Copies `dst.len()` bytes from user address `src`.
pub fn copy_from_user(dst: &mut [u8], src: u64) -> KResult<()> {
    if dst.is_empty() {
        return Ok(());
    }
    check(src, dst.len())?;
    // SAFETY: `dst` is a valid kernel buffer; `src` is a user address whose faults are
    // handled by the fixup above.
    match unsafe { adros_uaccess_copy(dst.as_mut_ptr(), src as *const u8, dst.len()) } {
        0 => Ok(()),
        _ => Err(Errno::EFAULT),
    }
}

/// Copies `src` to user address `dst`.
pub fn copy_to_user(dst: u64, src: &[u8]) -> KResult<()> {
    if src.is_empty() {
        return Ok(());
    }
    check(dst, src.len())?;
    // SAFETY: as in `copy_from_user`, the other way round.
    match unsafe { adros_uaccess_copy(dst as *mut u8, src.as_ptr(), src.len()) } {
        0 => Ok(()),
        _ => Err(Errno::EFAULT),
    }
}
