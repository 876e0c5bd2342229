//! The rump kernel's upcall table (`struct rumpuser_hyperup`) and the schedule/unschedule
//! contract around blocking hypercalls.
//!
//! Every hypercall runs while its caller holds a rump virtual CPU. One that may block releases
//! it first with `hyp_backend_unschedule(0, &nlocks, interlock)` and takes it back with
//! `hyp_backend_schedule(nlocks, interlock)` (NetBSD's `rumpkern_unsched` / `rumpkern_sched`).
//! Before `rumpuser_init` has stored a table these are no-ops, so the lock primitives also work
//! outside a rump kernel.

use core::ffi::{c_char, c_int, c_void};
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};

use alloc::boxed::Box;

/// `struct rumpuser_hyperup` (rumpuser.h, version 17), field for field.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Hyperup {
    pub hyp_schedule: Option<unsafe extern "C" fn()>,
    pub hyp_unschedule: Option<unsafe extern "C" fn()>,
    pub hyp_backend_unschedule: Option<unsafe extern "C" fn(c_int, *mut c_int, *mut c_void)>,
    pub hyp_backend_schedule: Option<unsafe extern "C" fn(c_int, *mut c_void)>,
    pub hyp_lwproc_switch: Option<unsafe extern "C" fn(*mut c_void)>,
    pub hyp_lwproc_release: Option<unsafe extern "C" fn()>,
    pub hyp_lwproc_rfork: Option<unsafe extern "C" fn(*mut c_void, c_int, *const c_char) -> c_int>,
    pub hyp_lwproc_newlwp: Option<unsafe extern "C" fn(c_int) -> c_int>,
    pub hyp_lwproc_curlwp: Option<unsafe extern "C" fn() -> *mut c_void>,
    pub hyp_syscall: Option<unsafe extern "C" fn(c_int, *mut c_void, *mut i64) -> c_int>,
    pub hyp_lwpexit: Option<unsafe extern "C" fn()>,
    pub hyp_execnotify: Option<unsafe extern "C" fn(*const c_char)>,
    pub hyp_getpid: Option<unsafe extern "C" fn() -> c_int>,
    pub hyp_extra: [*mut c_void; 8],
}

static HYP: crate::CacheAligned<AtomicPtr<Hyperup>> =
    crate::CacheAligned(AtomicPtr::new(ptr::null_mut()));

/// Stores a copy of the upcall table (each `rumpuser_init` replaces it; old copies are leaked
/// on purpose, a thread may still be reading one).
pub fn install(table: Hyperup) {
    HYP.store(Box::into_raw(Box::new(table)), Ordering::Release);
}

fn table() -> Option<&'static Hyperup> {
    let p = HYP.load(Ordering::Acquire);
    // SAFETY: p is null or came from Box::into_raw in `install` and is never freed.
    unsafe { p.as_ref() }
}

#[allow(
    clippy::not_unsafe_ptr_arg_deref,
    reason = "interlock is opaque: handed to rump, never dereferenced here"
)]
/// Releases the caller's virtual CPU; returns the `nlocks` to give back to [`schedule`].
pub fn unschedule(interlock: *mut c_void) -> c_int {
    // Releasing the vCPU ends the caller's burst of block requests (see bio::unplug).
    crate::bio::unplug();
    let mut nlocks: c_int = 0;
    if let Some(f) = table().and_then(|t| t.hyp_backend_unschedule) {
        // SAFETY: the rump kernel's own function, called as its rumpuser contract says: by a
        // thread holding a virtual CPU, with a valid out-pointer.
        unsafe { f(0, &mut nlocks, interlock) };
    }
    nlocks
}

#[allow(
    clippy::not_unsafe_ptr_arg_deref,
    reason = "interlock is opaque: handed to rump, never dereferenced here"
)]
/// Takes a virtual CPU back after [`unschedule`].
pub fn schedule(nlocks: c_int, interlock: *mut c_void) {
    if let Some(f) = table().and_then(|t| t.hyp_backend_schedule) {
        // SAFETY: the rump kernel's function, called by a thread that released its vCPU.
        unsafe { f(nlocks, interlock) };
    }
}

/// Runs `f` with the virtual CPU released (NetBSD's `KLOCK_WRAP`).
pub fn without_vcpu<R>(f: impl FnOnce() -> R) -> R {
    let n = unschedule(ptr::null_mut());
    let r = f();
    schedule(n, ptr::null_mut());
    r
}

/// `hyp_schedule()`: a thread that is not running rump code takes a vCPU (with its lwp).
pub fn hyp_schedule() {
    if let Some(f) = table().and_then(|t| t.hyp_schedule) {
        // SAFETY: rump's entry point for host threads entering the rump kernel.
        unsafe { f() };
    }
}

/// `hyp_unschedule()`: the counterpart of [`hyp_schedule`].
pub fn hyp_unschedule() {
    if let Some(f) = table().and_then(|t| t.hyp_unschedule) {
        // SAFETY: called by a thread that entered through hyp_schedule.
        unsafe { f() };
    }
}

/// `hyp_lwproc_newlwp(pid)`: gives the calling (scheduled) thread its own lwp.
pub fn lwproc_newlwp(pid: c_int) -> c_int {
    match table().and_then(|t| t.hyp_lwproc_newlwp) {
        // SAFETY: called while scheduled, as rump requires.
        Some(f) => unsafe { f(pid) },
        None => 0,
    }
}

/// True once `rumpuser_init` stored a table.
pub fn initialized() -> bool {
    table().is_some()
}
