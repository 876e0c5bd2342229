//! User mode: the `syscall` entry, the return path to ring 3, per-thread SSE state, and the
//! per-CPU MSR setup. System calls and interrupts from user mode build the same
//! [`TrapFrame`] on the thread's kernel stack. They leave through `iretq`, except a system
//! call whose frame is still exactly what `syscall` left, with a canonical RIP, which leaves
//! through `sysretq` ([`sysret_ok`]; a non-canonical RIP would fault in ring 0).

use core::sync::atomic::Ordering;

use x86_64::VirtAddr;
use x86_64::registers::control::{Cr4, Cr4Flags};
use x86_64::registers::model_specific::{Efer, EferFlags, LStar, SFMask, Star};
use x86_64::registers::rflags::RFlags;

use super::gdt::{KERNEL_CS, KERNEL_DS, USER_CS, USER_DS};
use super::idt::TrapFrame;
use super::percpu;

/// Vector number recorded in a TrapFrame built by the syscall entry.
pub const SYSCALL_VECTOR: u64 = 0x100;

core::arch::global_asm!(
    r#"
/* The general registers of a TrapFrame, in the reverse of the order they were pushed. */
.macro adros_pop_user_gprs
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
.endm

.section .text.syscall, "ax"
.global adros_syscall_entry
adros_syscall_entry:
    swapgs
    mov gs:[16], rsp
    mov rsp, gs:[8]
    push 0x1b               /* ss: user data | 3 */
    push qword ptr gs:[16]  /* rsp */
    push r11                /* rflags */
    push 0x23               /* cs: user code | 3 */
    push rcx                /* rip */
    push 0                  /* error code */
    push 0x100              /* vector: syscall */
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    mov rdi, rsp
    cld
    sti
    call {dispatch}
    cli
    test rax, rax
    jz adros_return_to_user_frame
    /* Fast return: the frame is what `syscall` left (rcx = rip, r11 = rflags), so sysretq
       restores exactly what iretq would, at a fraction of its cost. */
    adros_pop_user_gprs
    mov rsp, [rsp + 40]     /* user rsp (skipping vector, error code, rip, cs, rflags) */
    swapgs
    sysretq

/* rsp points at a TrapFrame for ring 3: restore it and iretq. */
.global adros_return_to_user_frame
adros_return_to_user_frame:
    adros_pop_user_gprs
    add rsp, 16
    swapgs
    iretq

/* rdi = pointer to a TrapFrame (on this thread's kernel stack) to enter user mode with. */
.global adros_enter_user
adros_enter_user:
    cli
    mov rsp, rdi
    jmp adros_return_to_user_frame
"#,
    dispatch = sym syscall_entry_rust,
);

unsafe extern "C" {
    fn adros_syscall_entry();
    fn adros_enter_user(frame: *const TrapFrame) -> !;
}

/// Runs the system call; returns 1 when the frame can be resumed with `sysretq` (see
/// [`sysret_ok`]), 0 when it needs `iretq`.
extern "C" fn syscall_entry_rust(frame: &mut TrapFrame) -> u64 {
    let hooks = crate::arch::hooks::get();
    (hooks.syscall)(frame);
    (hooks.return_to_user)(frame);
    u64::from(sysret_ok(frame))
}

/// Whether `sysretq` resumes `frame` exactly as `iretq` would: `sysretq` takes rip from rcx
/// and rflags from r11 and the standard user selectors, so the frame must hold the same values
/// there (a syscall frame nobody rewrote — signal delivery, `rt_sigreturn` and `execve` do),
/// a canonical user rip (a non-canonical one would fault in ring 0 on Intel CPUs), and no
/// flag `sysretq` would drop or that must act on the return itself (TF, RF, NT, VM).
fn sysret_ok(f: &TrapFrame) -> bool {
    const TF: u64 = 1 << 8;
    const NT: u64 = 1 << 14;
    const RF: u64 = 1 << 16;
    const VM: u64 = 1 << 17;
    f.vector == SYSCALL_VECTOR
        && f.rcx == f.rip
        && f.r11 == f.rflags
        && f.rip < crate::mm::uspace::USER_TOP
        && f.cs == 0x23
        && f.ss == 0x1b
        && f.rflags & (TF | NT | RF | VM) == 0
}

/// Sets up `syscall` and SSE for user code on this CPU.
pub fn init_this_cpu() {
    // SAFETY: standard MSR/CR4 setup; the entry point is the stub above and the selectors
    // match the GDT layout (`gdt.rs`).
    unsafe {
        Efer::update(|e| *e |= EferFlags::SYSTEM_CALL_EXTENSIONS);
        LStar::write(VirtAddr::new(adros_syscall_entry as *const () as u64));
        // On syscall: clear IF, TF, DF, AC, NT.
        SFMask::write(
            RFlags::INTERRUPT_FLAG
                | RFlags::TRAP_FLAG
                | RFlags::DIRECTION_FLAG
                | RFlags::ALIGNMENT_CHECK
                | RFlags::NESTED_TASK,
        );
        Star::write(USER_CS, USER_DS, KERNEL_CS, KERNEL_DS).expect("GDT layout fits STAR");
        Cr4::update(|c| *c |= Cr4Flags::OSFXSR | Cr4Flags::OSXMMEXCPT_ENABLE);
    }
}

/// Points this CPU's syscall stack and TSS.rsp0 at `top` (the next thread's kernel stack).
pub fn set_kernel_stack(top: u64) {
    let pc = percpu::current();
    pc.kernel_rsp.store(top, Ordering::Relaxed);
    let tss = pc.tss.load(Ordering::Acquire) as *mut x86_64::structures::tss::TaskStateSegment;
    if !tss.is_null() {
        // SAFETY: the TSS belongs to this CPU (leaked in gdt::init_this_cpu); only this CPU
        // writes rsp0, with interrupts off during the switch.
        unsafe { (*tss).privilege_stack_table[0] = VirtAddr::new(top) };
    }
}

/// Enters ring 3 with the register state in `frame` (which must live on this thread's kernel
/// stack, at its top, so later entries reuse the space).
///
/// # Safety
/// `frame` must describe a valid user context (user CS/SS, canonical user RIP/RSP) and the
/// current address space must be the one it runs in.
pub unsafe fn enter_user(frame: *const TrapFrame) -> ! {
    // SAFETY: forwarded to the caller.
    unsafe { adros_enter_user(frame) }
}

/// A fresh user frame: entry point, stack, interrupts on.
pub fn user_frame(rip: u64, rsp: u64) -> TrapFrame {
    TrapFrame {
        rip,
        rsp,
        cs: u64::from(USER_CS.0),
        ss: u64::from(USER_DS.0),
        rflags: 0x202,
        ..TrapFrame::default()
    }
}

/// The 512-byte FXSAVE area holding a thread's x87/SSE registers.
#[repr(C, align(16))]
#[derive(Clone)]
pub struct FpuState(pub [u8; 512]);

impl FpuState {
    /// The state a new process starts with: default control words, MXCSR 0x1f80.
    pub fn initial() -> Self {
        let mut s = FpuState([0; 512]);
        s.0[0..2].copy_from_slice(&0x037Fu16.to_le_bytes()); // FCW
        s.0[24..28].copy_from_slice(&0x1F80u32.to_le_bytes()); // MXCSR
        s.0[28..32].copy_from_slice(&0xFFFFu32.to_le_bytes()); // MXCSR mask
        s
    }

    pub fn save(&mut self) {
        // SAFETY: the area is 512 bytes, 16-byte aligned; fxsave64 only writes it.
        unsafe { core::arch::asm!("fxsave64 [{}]", in(reg) self.0.as_mut_ptr(), options(nostack)) };
    }

    pub fn restore(&self) {
        // SAFETY: the area holds a state produced by fxsave64 or `initial` (valid MXCSR).
        unsafe {
            core::arch::asm!("fxrstor64 [{}]", in(reg) self.0.as_ptr(), options(nostack, readonly))
        };
    }
}
