//! User mode (EL0): the first entry of a thread into it. Later entries come back through
//! the exception vectors (`exceptions.rs`), whose frames live on the same kernel stack.

use super::exceptions::TrapFrame;

unsafe extern "C" {
    fn adros_enter_user(frame: *const TrapFrame) -> !;
}

/// SPSR for EL0t (AArch64, SP_EL0) with every interrupt unmasked.
const SPSR_EL0T: u64 = 0;

/// The frame that starts user mode at `pc` with stack pointer `sp` (other registers 0).
pub fn user_frame(pc: u64, sp: u64) -> TrapFrame {
    TrapFrame {
        x: [0; 31],
        sp,
        elr: pc,
        spsr: SPSR_EL0T,
        esr: 0,
        far: 0,
    }
}

/// Leaves for EL0 through `frame`, on the current thread's kernel stack (which then holds
/// the frames of its exceptions from EL0). The thread's user address space must be loaded
/// (`upt::activate`) and the user-mode hooks registered.
pub fn enter(frame: &TrapFrame) -> ! {
    super::irq::save_and_disable();
    // SAFETY: the frame is a complete 288-byte TrapFrame read before the stack below the
    // current SP is reused; SPSR says EL0t, so the `eret` drops to user mode at `elr` with
    // the address space the caller loaded; the kernel stack stays this thread's.
    unsafe { adros_enter_user(frame) }
}

unsafe extern "C" {
    fn adros_trap_return() -> !;
}

/// Leaves for EL0 through the frame at `frame_at`, which is the top of the current
/// thread's kernel stack (`Thread::new_user` put it there).
///
/// # Safety
/// `frame_at` must hold a valid user frame (EL0t) at the top of the running thread's
/// kernel stack, with the thread's address space loaded.
pub unsafe fn enter_user(frame_at: *const TrapFrame) -> ! {
    super::irq::save_and_disable();
    // SAFETY: per the contract, SP may move to the frame (nothing above it is live) and
    // the trap return restores every register from it and `eret`s to EL0.
    unsafe {
        core::arch::asm!(
            "mov sp, {f}",
            "b {ret}",
            f = in(reg) frame_at,
            ret = sym adros_trap_return,
            options(noreturn)
        )
    }
}

/// A user thread's FP/SIMD registers (q0–q31, FPCR, FPSR), saved while it is switched out.
/// The kernel itself never uses them (a soft-float target), so only switches between user
/// threads move them.
#[repr(C, align(16))]
#[derive(Clone)]
pub struct FpuState(pub [u8; 528]);

impl FpuState {
    /// The state a new process starts with: every register 0 (round to nearest, no traps).
    pub fn initial() -> Self {
        FpuState([0; 528])
    }

    pub fn save(&mut self) {
        // SAFETY: the area is 528 bytes, 16-byte aligned; the stores only write it. FP is
        // enabled at EL1 (CPACR_EL1.FPEN, set at boot).
        unsafe {
            core::arch::asm!(
                ".arch_extension fp",
                ".arch_extension simd",
                "stp q0, q1, [{a}, #0]",
                "stp q2, q3, [{a}, #32]",
                "stp q4, q5, [{a}, #64]",
                "stp q6, q7, [{a}, #96]",
                "stp q8, q9, [{a}, #128]",
                "stp q10, q11, [{a}, #160]",
                "stp q12, q13, [{a}, #192]",
                "stp q14, q15, [{a}, #224]",
                "stp q16, q17, [{a}, #256]",
                "stp q18, q19, [{a}, #288]",
                "stp q20, q21, [{a}, #320]",
                "stp q22, q23, [{a}, #352]",
                "stp q24, q25, [{a}, #384]",
                "stp q26, q27, [{a}, #416]",
                "stp q28, q29, [{a}, #448]",
                "stp q30, q31, [{a}, #480]",
                "mrs {t}, fpcr",
                "str {t}, [{a}, #512]",
                "mrs {t}, fpsr",
                "str {t}, [{a}, #520]",
                a = in(reg) self.0.as_mut_ptr(),
                t = out(reg) _,
                options(nostack)
            )
        };
    }

    pub fn restore(&self) {
        // SAFETY: the area holds a state `save` or `initial` produced; FP is enabled at EL1.
        unsafe {
            core::arch::asm!(
                ".arch_extension fp",
                ".arch_extension simd",
                "ldp q0, q1, [{a}, #0]",
                "ldp q2, q3, [{a}, #32]",
                "ldp q4, q5, [{a}, #64]",
                "ldp q6, q7, [{a}, #96]",
                "ldp q8, q9, [{a}, #128]",
                "ldp q10, q11, [{a}, #160]",
                "ldp q12, q13, [{a}, #192]",
                "ldp q14, q15, [{a}, #224]",
                "ldp q16, q17, [{a}, #256]",
                "ldp q18, q19, [{a}, #288]",
                "ldp q20, q21, [{a}, #320]",
                "ldp q22, q23, [{a}, #352]",
                "ldp q24, q25, [{a}, #384]",
                "ldp q26, q27, [{a}, #416]",
                "ldp q28, q29, [{a}, #448]",
                "ldp q30, q31, [{a}, #480]",
                "ldr {t}, [{a}, #512]",
                "msr fpcr, {t}",
                "ldr {t}, [{a}, #520]",
                "msr fpsr, {t}",
                a = in(reg) self.0.as_ptr(),
                t = out(reg) _,
                options(nostack, readonly)
            )
        };
    }
}

/// Lets EL0 and EL1 use FP/SIMD on this CPU (CPACR_EL1.FPEN = 0b11): user threads have
/// their own registers, switched with [`FpuState`]; the soft-float kernel never touches
/// them.
pub fn enable_fp_this_cpu() {
    // SAFETY: only changes whether FP/SIMD instructions trap; followed by `isb`.
    unsafe {
        core::arch::asm!(
            "mrs {t}, cpacr_el1",
            "orr {t}, {t}, #(3 << 20)",
            "msr cpacr_el1, {t}",
            "isb",
            t = out(reg) _,
            options(nostack, preserves_flags)
        )
    };
}

/// The user thread pointer (TPIDR_EL0), switched like x86_64's FS base.
pub fn tls() -> u64 {
    let v: u64;
    // SAFETY: reading a system register has no side effect.
    unsafe {
        core::arch::asm!("mrs {v}, tpidr_el0", v = out(reg) v, options(nomem, nostack, preserves_flags))
    };
    v
}

pub fn set_tls(v: u64) {
    // SAFETY: TPIDR_EL0 is user state only; the kernel does not use it.
    unsafe {
        core::arch::asm!("msr tpidr_el0, {v}", v = in(reg) v, options(nomem, nostack, preserves_flags))
    };
}
