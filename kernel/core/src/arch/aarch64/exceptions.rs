//! EL1 exception vectors. IRQs save the interrupted state as a [`TrapFrame`] on the current
//! stack (the running thread's kernel stack), go to the GIC and then through the
//! scheduler's preemption point. From EL0, system calls (`svc`), instruction and data
//! aborts and anything else go to the user-mode hooks the layers above registered
//! (`arch::hooks`), and every return to EL0 passes their `return_to_user`. A data abort at
//! EL1 inside a user copy (`uaccess`) on a user address is carried back to the interrupted
//! kernel stack and offered to the address space there, or made EFAULT by the copy's fixup
//! (`adros_kernel_fault`). Anything else at EL1 is unexpected and ends in a report — exception class decoded from ESR, the fault address, ELR with its
//! symbol, every register — and a failing exit. Those fatal entries first move to this
//! CPU's emergency stack (SP_EL0, unused by the kernel until user mode), so that a kernel
//! stack overflow — a fault on the guard page under the stack — is reported instead of
//! faulting again on every push, forever.

use core::sync::atomic::{AtomicBool, Ordering};

/// What an exception entry saved: x0–x30, SP_EL0, ELR, SPSR, ESR, FAR (288 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TrapFrame {
    pub x: [u64; 31],
    /// IRQs: SP_EL0 (the emergency stack's top today, the user SP later). Fatal EL1
    /// exceptions: the interrupted kernel SP.
    pub sp: u64,
    pub elr: u64,
    pub spsr: u64,
    pub esr: u64,
    pub far: u64,
}

const _: () = assert!(core::mem::size_of::<TrapFrame>() == 288);

impl TrapFrame {
    /// Whether the exception came from EL0.
    pub fn from_user(&self) -> bool {
        self.spsr & 0xf == 0
    }

    /// Where the interrupted code was.
    pub fn pc(&self) -> u64 {
        self.elr
    }

    // The arch-neutral view of a user frame the layers above use (system calls, signals,
    // fork); x86_64's TrapFrame has the same methods.

    /// Resumes at `pc`.
    #[inline]
    pub fn set_pc(&mut self, pc: u64) {
        self.elr = pc;
    }

    /// The user stack pointer (SP_EL0).
    #[inline]
    pub fn sp(&self) -> u64 {
        self.sp
    }

    #[inline]
    pub fn set_sp(&mut self, sp: u64) {
        self.sp = sp;
    }

    /// The system call number at entry (x8).
    #[inline]
    pub fn syscall_nr(&self) -> u64 {
        self.x[8]
    }

    /// System call argument `i`: x0–x5 (0 past the sixth).
    #[inline]
    pub fn syscall_arg(&self, i: usize) -> u64 {
        if i < 6 { self.x[i] } else { 0 }
    }

    /// What user mode finds returned (x0).
    #[inline]
    pub fn ret(&self) -> u64 {
        self.x[0]
    }

    #[inline]
    pub fn set_ret(&mut self, v: u64) {
        self.x[0] = v;
    }

    /// Whether the frame was built by an `svc` from EL0.
    #[inline]
    pub fn is_syscall(&self) -> bool {
        (self.esr >> 26) & 0x3f == EC_SVC64
    }

    /// Keeps what a restart needs ([`Self::restart_syscall`]): x8 survives the call, but
    /// x0 is both the first argument and the result, so the original goes into the FAR
    /// slot (FAR is UNKNOWN for an `svc`; Linux keeps it as `orig_x0`).
    #[inline]
    pub fn keep_for_restart(&mut self) {
        self.far = self.x[0];
    }

    /// The number of the call in progress (x8 is not overwritten by the result).
    #[inline]
    pub fn kept_syscall_nr(&self) -> u64 {
        self.x[8]
    }

    /// Makes the system call run again on the way back: the original x0, ELR back on the
    /// four-byte `svc`.
    #[inline]
    pub fn restart_syscall(&mut self) {
        self.x[0] = self.far;
        self.elr -= 4;
    }

    /// What a CPU exception in user mode was, for the layer that makes it a signal.
    pub fn user_trap(&self) -> crate::arch::UserTrap {
        use crate::arch::UserTrap as T;
        match (self.esr >> 26) & 0x3f {
            EC_INSN_ABORT_EL0 | EC_DATA_ABORT_EL0 if self.esr & 0x3f == 0x21 => T::Alignment,
            EC_INSN_ABORT_EL0 | EC_DATA_ABORT_EL0 => T::PageFault { addr: self.far },
            0x00 | 0x0e => T::IllegalInstruction,
            0x3c => T::Breakpoint,
            0x2c => T::Arithmetic,
            0x22 | 0x26 => T::Alignment,
            _ => T::Protection,
        }
    }

    /// The exception's name, for logs.
    pub fn trap_name(&self) -> &'static str {
        super::esr::class_name(self.esr)
    }
}

core::arch::global_asm!(
    r#"
.section .text.vectors, "ax"
// x2–x29 into the TrapFrame at sp (x0, x1 are already there).
.macro SAVE_X2_X29
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
.endm

// ELR, SPSR, ESR, FAR into the TrapFrame at sp (leaves ELR in x10).
.macro SAVE_SYSREGS
    mrs     x10, elr_el1
    mrs     x11, spsr_el1
    stp     x10, x11, [sp, #256]
    mrs     x12, esr_el1
    mrs     x13, far_el1
    stp     x12, x13, [sp, #272]
.endm

.macro VENTRY kind
    .balign 128
    sub     sp, sp, #288
    stp     x0, x1, [sp, #0]
    mov     x1, #\kind
    b       adros_exception_common
.endm

// Fatal at EL1: stash x0, keep the interrupted SP, move to the emergency stack (SP_EL0).
.macro VFATAL kind
    .balign 128
    msr     tpidrro_el0, x0
    mov     x0, sp
    msr     spsel, #0
    sub     sp, sp, #288
    str     x0, [sp, #248]
    mrs     x0, tpidrro_el0
    stp     x0, x1, [sp, #0]
    mov     x1, #\kind
    b       adros_fatal_common
.endm

.balign 2048
.global adros_vectors
adros_vectors:
    VENTRY 0
    VENTRY 1
    VENTRY 2
    VENTRY 3
    VFATAL 4
    VENTRY 5
    VFATAL 6
    VFATAL 7
    VENTRY 8
    VENTRY 9
    VENTRY 10
    VENTRY 11
    VENTRY 12
    VENTRY 13
    VENTRY 14
    VENTRY 15

adros_fatal_common:
    SAVE_X2_X29
    str     x30, [sp, #240]
    SAVE_SYSREGS
    stp     x29, x10, [sp, #-16]!
    mov     x29, sp
    add     x0, sp, #16
    bl      adros_exception
    // Back only for a data abort in a user copy (`uaccess`): carry the frame to the
    // interrupted kernel stack, give the emergency stack back, resolve the fault there
    // (it may sleep) and return through the frame.
    add     sp, sp, #16
    ldr     x9, [sp, #248]
    sub     x9, x9, #288
    mov     x2, x9
    mov     x3, sp
    mov     x5, #18
1:  ldp     x6, x7, [x3], #16
    stp     x6, x7, [x2], #16
    subs    x5, x5, #1
    b.ne    1b
    add     sp, sp, #288
    mov     x10, sp
    msr     spsel, #1
    mov     sp, x9
    str     x10, [sp, #248]
    ldr     x29, [sp, #232]
    ldr     x10, [sp, #256]
    stp     x29, x10, [sp, #-16]!
    mov     x29, sp
    add     x0, sp, #16
    bl      adros_kernel_fault
    add     sp, sp, #16
    b       adros_trap_return

adros_exception_common:
    SAVE_X2_X29
    mrs     x9, sp_el0
    stp     x30, x9, [sp, #240]
    SAVE_SYSREGS
    // A frame record, so backtraces walk from the handler into the interrupted code.
    stp     x29, x10, [sp, #-16]!
    mov     x29, sp
    add     x0, sp, #16
    bl      adros_exception
    add     sp, sp, #16
// Leaves through the TrapFrame at sp (an exception's, or the first entry to user mode's).
.global adros_trap_return
adros_trap_return:
    ldp     x10, x11, [sp, #256]
    msr     elr_el1, x10
    msr     spsr_el1, x11
    ldp     x30, x9, [sp, #240]
    msr     sp_el0, x9
    ldp     x0, x1, [sp, #0]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    add     sp, sp, #288
    eret

// adros_enter_user(frame): copies the 288-byte frame onto this thread's kernel stack and
// leaves through it; that stack is where the next exception from EL0 builds its frame.
.global adros_enter_user
adros_enter_user:
    sub     sp, sp, #288
    mov     x2, sp
    mov     x5, #18
1:  ldp     x3, x4, [x0], #16
    stp     x3, x4, [x2], #16
    subs    x5, x5, #1
    b.ne    1b
    b       adros_trap_return
"#
);

static INSTALLED: AtomicBool = AtomicBool::new(false);
static IRQS_FROM_EL0: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Interrupts taken while a CPU ran at EL0, since boot.
pub fn irqs_from_el0() -> u64 {
    IRQS_FROM_EL0.load(Ordering::Relaxed)
}

/// Called once the boot stub has set VBAR_EL1 (it does so before `kmain`).
pub fn mark_installed() {
    INSTALLED.store(true, Ordering::Release);
}

pub fn vectors_installed() -> bool {
    INSTALLED.load(Ordering::Acquire)
}

const KIND_NAMES: [&str; 4] = ["synchronous", "IRQ", "FIQ", "SError"];
const ORIGIN_NAMES: [&str; 4] = ["EL1 on SP_EL0", "EL1", "EL0 (AArch64)", "EL0 (AArch32)"];

/// ESR exception classes from EL0 that user mode handles.
const EC_SVC64: u64 = 0x15;
const EC_INSN_ABORT_EL0: u64 = 0x20;
const EC_DATA_ABORT_EL0: u64 = 0x24;
/// A data abort taken at EL1 itself (a user copy's, when it is in `uaccess`).
const EC_DATA_ABORT_EL1: u64 = 0x25;
/// ESR.ISS bit 6 of a data abort: the access was a write.
const ISS_WNR: u64 = 1 << 6;

#[unsafe(no_mangle)]
extern "C" fn adros_exception(frame: &mut TrapFrame, kind: u64) {
    let (origin, class) = ((kind / 4) as usize & 3, (kind % 4) as usize);
    if origin >= 2 {
        // From EL0: user mode had SP_EL0 (saved in the frame, restored on the way out).
        super::cpu::restore_emergency_stack();
    }
    if class == 1 && origin != 0 {
        if origin >= 2 {
            IRQS_FROM_EL0.fetch_add(1, Ordering::Relaxed);
        }
        super::gic::handle_irq(frame);
        crate::sched::preempt_on_irq_exit(frame);
        if origin == 1 {
            // The thread may have moved to another CPU while preempted: its SP_EL0 is
            // that CPU's emergency stack, not the one saved at entry.
            keep_emergency_stack(frame);
        }
    } else if origin == 1 && class == 0 && user_copy_fault(frame) {
        // Back to the entry, which resolves it on the kernel stack (`adros_kernel_fault`).
        return;
    } else if origin == 2 && class == 0 {
        from_user_sync(frame);
    } else if origin == 3 {
        // AArch32 at EL0: nothing here runs 32-bit code.
        (crate::arch::hooks::get().user_exception)(frame);
    } else {
        report(frame, origin, class)
    }
    if origin >= 2 {
        (crate::arch::hooks::get().return_to_user)(frame);
    }
}

/// Whether a synchronous exception at EL1 is a data abort on a user address inside one of
/// the user-copy routines (`uaccess`), which the entry then resolves or turns into EFAULT.
fn user_copy_fault(frame: &TrapFrame) -> bool {
    (frame.esr >> 26) & 0x3f == EC_DATA_ABORT_EL1
        && frame.far < crate::mm::uspace::USER_TOP
        && super::uaccess::fixup_for(frame.elr).is_some()
}

fn keep_emergency_stack(frame: &mut TrapFrame) {
    let top = super::cpu::emergency_stack_top();
    if top != 0 {
        frame.sp = top;
    }
}

/// A user-copy fault (see [`user_copy_fault`]), on the interrupted thread's kernel stack:
/// offered to the address space (demand paging, copy-on-write), with IRQs as they were;
/// if it cannot be resolved, the copy resumes at its fixup and returns EFAULT.
#[unsafe(no_mangle)]
extern "C" fn adros_kernel_fault(frame: &mut TrapFrame) {
    let hooks = crate::arch::hooks::get();
    if frame.spsr & (1 << 7) == 0 {
        super::irq::enable();
    }
    let write = frame.esr & ISS_WNR != 0;
    let resolved = (hooks.user_fault)(frame.far, write, false);
    super::irq::save_and_disable();
    if !resolved && let Some(fix) = super::uaccess::fixup_for(frame.elr) {
        frame.elr = fix;
    }
    keep_emergency_stack(frame);
}

/// A synchronous exception from EL0: a system call, a fault the layers above may resolve,
/// or anything else they turn into a signal.
fn from_user_sync(frame: &mut TrapFrame) {
    let hooks = crate::arch::hooks::get();
    super::irq::enable();
    match (frame.esr >> 26) & 0x3f {
        EC_SVC64 => (hooks.syscall)(frame),
        ec @ (EC_INSN_ABORT_EL0 | EC_DATA_ABORT_EL0) => {
            let exec = ec == EC_INSN_ABORT_EL0;
            let write = !exec && frame.esr & ISS_WNR != 0;
            if !(hooks.user_fault)(frame.far, write, exec) {
                (hooks.user_exception)(frame);
            }
        }
        _ => (hooks.user_exception)(frame),
    }
    super::irq::save_and_disable();
}

/// Prints the unexpected exception and ends the run with the panic status.
fn report(f: &TrapFrame, origin: usize, class: usize) -> ! {
    use super::serial::panic_write_fmt as p;
    crate::panic::begin();
    let mut line = crate::panic::LineBuf::new();
    let _ = super::esr::describe(f.esr, &mut line);
    p(format_args!(
        "\n!!! EXCEPTION: {} from {} on CPU {}: {}\n",
        KIND_NAMES[class],
        ORIGIN_NAMES[origin],
        super::percpu::cpu_id(),
        line.as_str()
    ));
    p(format_args!(
        "    ESR {:#010x} (class {:#04x})  FAR {:#018x}  ELR {:#018x}{}\n",
        f.esr,
        (f.esr >> 26) & 0x3f,
        f.far,
        f.elr,
        crate::panic::symbolize(f.elr)
    ));
    if super::esr::is_abort(f.esr) && crate::mm::kstack_guard_hit(f.far) {
        p(format_args!(
            "    the fault address is a kernel stack's guard page: stack overflow\n"
        ));
    }
    crate::panic::print_registers(f);
    crate::panic::backtrace_from(f.x[29]);
    crate::panic::end()
}

/// What [`provoke`] can do, for the tests of the fault report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provoke {
    /// A read of an unmapped kernel address (a data abort, translation fault).
    DataAbort,
    /// A `brk` instruction.
    Breakpoint,
    /// A write to the kernel's own text (a permission fault under W^X).
    WriteText,
    /// Unbounded recursion on the current kernel stack, into its guard page.
    StackOverflow,
}

/// Recurses with a frame the optimiser cannot drop until the stack runs out.
#[inline(never)]
#[allow(unconditional_recursion)] // the point: it ends in the guard page
fn recurse(depth: u64) -> u64 {
    let frame = core::hint::black_box([depth; 32]);
    recurse(depth + 1).wrapping_add(frame[7])
}

/// The address [`Provoke::DataAbort`] reads: in the kernel half, never mapped.
pub const PROVOKE_ADDR: u64 = 0xFFFF_A000_0000_0FF8;

/// Raises the exception on purpose; the report ends the run.
pub fn provoke(what: Provoke) {
    match what {
        // SAFETY: deliberately faults: nothing is mapped at PROVOKE_ADDR, so the read never
        // completes; the exception report ends the run.
        Provoke::DataAbort => unsafe {
            let _ = (PROVOKE_ADDR as *const u64).read_volatile();
        },
        // SAFETY: `brk` only raises a debug exception, reported like any other.
        Provoke::Breakpoint => unsafe { core::arch::asm!("brk #0x42", options(nostack)) },
        // SAFETY: deliberately faults: the text is mapped read-only, so the write never
        // happens; the exception report ends the run.
        Provoke::WriteText => unsafe {
            (provoke as *const () as *mut u32).write_volatile(0);
        },
        Provoke::StackOverflow => {
            core::hint::black_box(recurse(0));
        }
    }
}
