//! The clocks as user space reads them without a system call: one page of data that the
//! vDSO (`kernel/vdso/vdso.c`) maps read-only just below its code, kept current here under a
//! sequence count (odd while being written). The process layer maps the page into every
//! process ([`frame`], `uspace::AddressSpace::map_kernel_frame`).

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

use crate::mm::phys;

/// The page's layout; `kernel/vdso/vdso.c` has the same `struct vvar`.
#[repr(C)]
struct UserClock {
    seq: AtomicU32,
    flags: AtomicU32,
    tsc_base: AtomicU64,
    mult: AtomicU64,
    wall_base_ns: AtomicU64,
    wall_at_ns: AtomicU64,
}

/// `flags`: every CPU's IA32_TSC_AUX holds its number, so `rdtscp` answers `getcpu`.
pub const FLAG_RDTSCP: u32 = 1;

static FRAME: spin::Once<Option<u64>> = spin::Once::new();
static FLAGS: AtomicU32 = AtomicU32::new(0);

/// The page (its physical frame), allocated on first use and never freed; None if memory
/// ran out at boot (then processes get no vDSO and use the system calls).
pub fn frame() -> Option<u64> {
    *FRAME.call_once(|| {
        let f = phys::alloc_frame();
        if f.is_none() {
            log::warn!("time: no frame for the vDSO clock page; user space will use system calls");
        }
        f
    })
}

fn page() -> Option<&'static UserClock> {
    let f = frame()?;
    // SAFETY: the frame is ours for good, zeroed by the allocator, reached through the
    // linear map; every field is an atomic, so shared references are sound while user
    // mappings read it.
    Some(unsafe { &*(crate::mm::phys_to_virt(f) as *const UserClock) })
}

/// Sets flags (once every CPU agrees, e.g. [`FLAG_RDTSCP`]) and republishes.
pub fn set_flags(flags: u32) {
    FLAGS.store(flags, Ordering::Relaxed);
    publish();
}

/// Writes the current clock parameters into the page (after calibration, after the wall
/// clock is set). Writers are serialised by the callers (boot, one CPU).
pub fn publish() {
    let Some(p) = page() else { return };
    let (tsc_base, mult, wall_base, wall_at) = super::clock_parameters();
    let s = p.seq.load(Ordering::Relaxed);
    p.seq.store(s.wrapping_add(1) | 1, Ordering::Relaxed);
    fence(Ordering::Release);
    p.flags
        .store(FLAGS.load(Ordering::Relaxed), Ordering::Relaxed);
    p.tsc_base.store(tsc_base, Ordering::Relaxed);
    p.mult.store(mult, Ordering::Relaxed);
    p.wall_base_ns.store(wall_base, Ordering::Relaxed);
    p.wall_at_ns.store(wall_at, Ordering::Relaxed);
    fence(Ordering::Release);
    p.seq.store((s | 1).wrapping_add(1), Ordering::Release);
}
