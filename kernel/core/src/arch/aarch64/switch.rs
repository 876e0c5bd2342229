//! Kernel thread context switch: the callee-saved registers x19–x30 on the old stack, stack
//! pointers swapped. (The kernel is soft-float, so no FP/SIMD register needs saving.) A new
//! thread's stack is seeded so that the first switch "returns" into the trampoline, which
//! calls the entry with its argument.

core::arch::global_asm!(
    r#"
.section .text.switch, "ax"
.global adros_switch_context
// x0 = where to store the old sp, x1 = the new sp
adros_switch_context:
    sub     sp, sp, #96
    stp     x19, x20, [sp, #0]
    stp     x21, x22, [sp, #16]
    stp     x23, x24, [sp, #32]
    stp     x25, x26, [sp, #48]
    stp     x27, x28, [sp, #64]
    stp     x29, x30, [sp, #80]
    mov     x9, sp
    str     x9, [x0]
    mov     sp, x1
    ldp     x19, x20, [sp, #0]
    ldp     x21, x22, [sp, #16]
    ldp     x23, x24, [sp, #32]
    ldp     x25, x26, [sp, #48]
    ldp     x27, x28, [sp, #64]
    ldp     x29, x30, [sp, #80]
    add     sp, sp, #96
    ret

.global adros_thread_trampoline
// x19 = entry function, x20 = its argument (set up by `init_stack`)
adros_thread_trampoline:
    mov     x29, xzr
    mov     x30, xzr
    mov     x0, x20
    blr     x19
    brk     #1
"#
);

unsafe extern "C" {
    fn adros_switch_context(old_sp: *mut u64, new_sp: u64);
    fn adros_thread_trampoline();
}

/// Size of the frame `adros_switch_context` leaves on a switched-out stack.
const FRAME: u64 = 96;

/// The frame pointer (x29) a switched-out thread's saved stack holds, if that stack is
/// mapped kernel memory. For reports.
pub fn saved_frame_pointer(sp: u64) -> Option<u64> {
    let at = sp.checked_add(80)?;
    if sp < 0xFFFF_0000_0000_0000
        || !sp.is_multiple_of(16)
        || !crate::mm::paging::mapped_for_report(at)
    {
        return None;
    }
    // SAFETY: the word was just checked to be mapped kernel memory.
    Some(unsafe { *(at as *const u64) })
}

/// Switches stacks.
///
/// # Safety
/// IRQs must be masked; `new_sp` must be a stack saved by this function or prepared by
/// [`init_stack`]; `old_sp` must stay valid until someone switches back.
pub unsafe fn switch_context(old_sp: *mut u64, new_sp: u64) {
    // SAFETY: forwarded to the caller.
    unsafe { adros_switch_context(old_sp, new_sp) }
}

/// Prepares a fresh stack whose first switch enters `entry(arg)`. Returns the initial sp.
///
/// # Safety
/// `top` must be the top of a mapped, writable stack of at least one page that nothing else uses.
pub unsafe fn init_stack(top: u64, entry: extern "C" fn(u64) -> !, arg: u64) -> u64 {
    let sp = (top & !0xf) - FRAME;
    let words: [u64; 12] = [
        entry as *const () as u64, // x19
        arg,                       // x20
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,                                           // x29
        adros_thread_trampoline as *const () as u64, // x30: where `ret` goes
    ];
    for (i, w) in words.iter().enumerate() {
        // SAFETY: `sp..sp + FRAME` lies inside the caller-provided stack.
        unsafe { ((sp + 8 * i as u64) as *mut u64).write(*w) };
    }
    sp
}
