//! Checked access to user memory on aarch64, the same API as x86_64's (`arch::uaccess`).
//! Every copy runs between two known labels with the unprivileged loads and stores
//! (`ldtr`/`sttr`): they check EL0's permissions, so a copy can only touch what the user
//! could. A data abort there from EL1 is first offered to the process's address space
//! (demand paging, copy-on-write; `exceptions::kernel_fault`, on the interrupted kernel
//! stack) and, if it cannot be resolved, makes the copy return EFAULT instead of stopping
//! the kernel. The futex compare-and-exchange uses an exclusive pair, which has no
//! unprivileged form: it relies on PSTATE.PAN staying clear (SCTLR_EL1.SPAN is set at boot,
//! so exceptions never set it).

use crate::errno::{Errno, KResult};

use super::super::uaccess_common::check;
pub use super::super::uaccess_common::{cmpxchg_user, read_cstr, read_val, write_val};

core::arch::global_asm!(
    r#"
.section .text.uaccess, "ax"
.global adros_uaccess_fault_start
.global adros_uaccess_fault_end
.global adros_uaccess_fixup
/* x0 = kernel dst, x1 = user src, x2 = len; x0 = 0 on success, 1 on an unresolvable fault */
.global adros_copy_from_user
adros_copy_from_user:
adros_uaccess_fault_start:
    cmp     x2, #8
    b.lo    2f
1:  ldtr    x3, [x1]
    str     x3, [x0], #8
    add     x1, x1, #8
    sub     x2, x2, #8
    cmp     x2, #8
    b.hs    1b
2:  cbz     x2, 4f
3:  ldtrb   w3, [x1]
    strb    w3, [x0], #1
    add     x1, x1, #1
    subs    x2, x2, #1
    b.ne    3b
4:  mov     x0, #0
    ret

/* x0 = user dst, x1 = kernel src, x2 = len; as above */
.global adros_copy_to_user
adros_copy_to_user:
    cmp     x2, #8
    b.lo    2f
1:  ldr     x3, [x1], #8
    sttr    x3, [x0]
    add     x0, x0, #8
    sub     x2, x2, #8
    cmp     x2, #8
    b.hs    1b
2:  cbz     x2, 4f
3:  ldrb    w3, [x1], #1
    sttrb   w3, [x0]
    add     x0, x0, #1
    subs    x2, x2, #1
    b.ne    3b
4:  mov     x0, #0
    ret

/* x0 = user u32 address, w1 = expected, w2 = new, x3 = where to store the old value.
   x0 = 0 on success (old value stored), 1 on an unresolvable fault. */
.global adros_uaccess_cmpxchg
adros_uaccess_cmpxchg:
1:  ldaxr   w4, [x0]
    cmp     w4, w1
    b.ne    2f
    stlxr   w5, w2, [x0]
    cbnz    w5, 1b
    b       3f
2:  clrex
3:  str     w4, [x3]
    mov     x0, #0
    ret
adros_uaccess_fault_end:
adros_uaccess_fixup:
    mov     x0, #1
    ret
"#
);

unsafe extern "C" {
    fn adros_copy_from_user(dst: *mut u8, src: u64, len: usize) -> u64;
    fn adros_copy_to_user(dst: u64, src: *const u8, len: usize) -> u64;
    static adros_uaccess_fault_start: u8;
    static adros_uaccess_fault_end: u8;
    static adros_uaccess_fixup: u8;
}

/// If `pc` is one of the user-copy instructions, the address to resume at after an
/// unresolvable fault.
pub fn fixup_for(pc: u64) -> Option<u64> {
    // SAFETY: only the addresses of the labels are taken.
    let (s, e, f) = unsafe {
        (
            &adros_uaccess_fault_start as *const u8 as u64,
            &adros_uaccess_fault_end as *const u8 as u64,
            &adros_uaccess_fixup as *const u8 as u64,
        )
    };
    (s..e).contains(&pc).then_some(f)
}

/// Copies `dst.len()` bytes from user address `src`.
pub fn copy_from_user(dst: &mut [u8], src: u64) -> KResult<()> {
    if dst.is_empty() {
        return Ok(());
    }
    check(src, dst.len())?;
    // SAFETY: `dst` is a valid kernel buffer; `src` is a user address whose faults are
    // handled by the fixup above.
    match unsafe { adros_copy_from_user(dst.as_mut_ptr(), src, dst.len()) } {
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
    match unsafe { adros_copy_to_user(dst, src.as_ptr(), src.len()) } {
        0 => Ok(()),
        _ => Err(Errno::EFAULT),
    }
}
