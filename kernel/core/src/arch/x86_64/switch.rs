//! Kernel thread context switch: callee-saved registers on the old stack, stack pointer
//! swapped. A new thread's stack is seeded so that the first switch "returns" into
//! `thread_trampoline`, which calls the scheduler's entry with the thread argument.

core::arch::global_asm!(
    r#"
.section .text.switch, "ax"
.global adros_switch_context
// rdi = where to store the old rsp, rsi = new rsp
adros_switch_context:
    push rbp
    push rbx
    push r12
    push r13
    push r14
    push r15
    mov [rdi], rsp
    mov rsp, rsi
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    ret

.global adros_thread_trampoline
// r12 = entry function, r13 = its argument (set up by `init_stack`)
adros_thread_trampoline:
    xor ebp, ebp
    mov rdi, r13
    call r12
    ud2
"#
);

/// The frame pointer a switched-out thread's saved stack holds (its `adros_switch_context`
/// pushed rbp, rbx, r12–r15 there), if that stack is mapped kernel memory. For reports.
pub fn saved_frame_pointer(rsp: u64) -> Option<u64> {
    let at = rsp.checked_add(40)?;
    if rsp < 0xFFFF_8000_0000_0000
        || !rsp.is_multiple_of(8)
        || !crate::mm::paging::mapped_for_report(at)
    {
        return None;
    }
    // SAFETY: the word was just checked to be mapped kernel memory.
    Some(unsafe { *(at as *const u64) })
}

unsafe extern "C" {
    fn adros_switch_context(old_rsp: *mut u64, new_rsp: u64);
    fn adros_thread_trampoline();
}

/// Switches stacks.
///
/// # Safety
/// Interrupts must be off; `new_rsp` must be a stack saved by this function or prepared by
/// [`init_stack`]; `old_rsp` must stay valid until someone switches back.
pub unsafe fn switch_context(old_rsp: *mut u64, new_rsp: u64) {
    // SAFETY: forwarded to the caller.
    unsafe { adros_switch_context(old_rsp, new_rsp) }
}

/// Prepares a fresh stack whose first switch enters `entry(arg)`. Returns the initial rsp.
///
/// # Safety
/// `top` must be the top of a mapped, writable stack of at least one page that nothing else uses.
pub unsafe fn init_stack(top: u64, entry: extern "C" fn(u64) -> !, arg: u64) -> u64 {
    let mut sp = top & !0xf;
    let mut push = |v: u64| {
        sp -= 8;
        // SAFETY: `sp` stays inside the caller-provided stack.
        unsafe { (sp as *mut u64).write(v) };
    };
    push(0); // alignment: the trampoline is entered as if called (rsp % 16 == 8 after ret)
    push(adros_thread_trampoline as *const () as u64); // return address of the switch
    push(0); // rbp
    push(0); // rbx
    push(entry as *const () as u64); // r12
    push(arg); // r13
    push(0); // r14
    push(0); // r15
    sp
}
