//! Escaping from deep inside foreign code back to a resume point on the same thread: the
//! `setjmp`/`longjmp` pair, for one use — a thread parked inside the NetBSD rump kernel when
//! it panics. Its C frames (and the hypercall frames under them) can never be returned
//! through, but its caller — the system call that entered NetBSD — can still return an
//! error instead of the process being killed.
//!
//! [`catch`] runs a function after saving what the calling convention makes a callee
//! preserve, the stack pointer and the return address in a [`Resume`] on the caller's
//! stack (the assembly is per architecture: `x86_64/escape_asm.rs`,
//! `aarch64/escape_asm.rs`). [`escape`] restores them and returns from [`catch`] a second
//! way. The frames in between are *abandoned*: never returned into, nothing in them dropped (as if
//! the thread had been killed there — which is what happened before this existed). The
//! compiler sees one ordinary call to an assembly function that returns once, with the
//! callee-saved registers as they were, so nothing it keeps across the call goes stale.

use core::ffi::c_void;

#[cfg(target_arch = "aarch64")]
use super::aarch64::escape_asm as asm;
#[cfg(target_arch = "x86_64")]
use super::x86_64::escape_asm as asm;

/// Where [`escape`] resumes: the callee-saved registers, stack pointer and return address
/// of one [`catch`] call (laid out as the architecture's `adros_catch` writes them).
#[repr(C)]
pub struct Resume {
    regs: [u64; asm::RESUME_WORDS],
}

unsafe extern "C" {
    fn adros_catch(r: *mut Resume, data: *mut c_void, f: extern "C" fn(*mut c_void)) -> u64;
    fn adros_escape(r: *const Resume) -> !;
}

/// Runs `f` with the resume point of this call. `None` when [`escape`] was called with it
/// while `f` ran: `f`'s frames were abandoned (its values leaked, never dropped).
pub fn catch<F: FnOnce(&Resume) -> R, R>(f: F) -> Option<R> {
    struct Call<F, R> {
        f: Option<F>,
        resume: *const Resume,
        out: Option<R>,
    }
    extern "C" fn run<F: FnOnce(&Resume) -> R, R>(p: *mut c_void) {
        // SAFETY: `p` is the `Call` `catch` passes below, alive on its frame for the call.
        let call = unsafe { &mut *p.cast::<Call<F, R>>() };
        if let Some(f) = call.f.take() {
            // SAFETY: the Resume lives on `catch`'s frame, which outlives this call.
            call.out = Some(f(unsafe { &*call.resume }));
        }
    }
    let mut resume = Resume {
        regs: [0; asm::RESUME_WORDS],
    };
    let mut call = Call {
        f: Some(f),
        resume: &raw const resume,
        out: None,
    };
    // SAFETY: `adros_catch` saves the callee-saved state into `resume` and calls `run` with
    // `call`; both live on this frame until it returns, however it returns.
    let escaped = unsafe { adros_catch(&raw mut resume, (&raw mut call).cast(), run::<F, R>) } != 0;
    if escaped { None } else { call.out }
}

/// Resumes at `r`'s [`catch`], which returns `None`; every frame above it is abandoned.
///
/// # Safety
/// `r` must be the resume point of a [`catch`] call on the *current* thread that has not
/// returned yet, and every frame between it and here must be abandonable: nothing in them
/// may be referenced again (locks they hold stay held, memory they own leaks).
pub unsafe fn escape(r: *const Resume) -> ! {
    // SAFETY: the caller guarantees `r` is a live resume point of this thread's stack.
    unsafe { adros_escape(r) }
}
