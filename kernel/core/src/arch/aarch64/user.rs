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
