//! TLB maintenance. AArch64 broadcasts invalidations to every CPU of the inner-shareable
//! domain in hardware (`tlbi …is`), so there are no shootdown IPIs to send or to service.

/// Invalidates `va`'s translation (every translation with `u64::MAX`, as on x86_64: fork
/// write-protects a whole address space) on every CPU and waits for it.
pub fn shootdown(va: u64) {
    if va == u64::MAX {
        // SAFETY: TLB maintenance and barriers only; stale entries can only be dropped.
        unsafe {
            core::arch::asm!(
                "dsb ishst",
                "tlbi vmalle1is",
                "dsb ish",
                "isb",
                options(nostack, preserves_flags)
            )
        };
        return;
    }
    // SAFETY: TLB maintenance and barriers only; stale entries can only be dropped.
    unsafe {
        core::arch::asm!(
            "dsb ishst",
            "tlbi vaae1is, {}",
            "dsb ish",
            "isb",
            in(reg) (va >> 12) & 0xfff_ffff_ffff,
            options(nostack, preserves_flags)
        )
    };
}

/// Makes new translation-table entries visible to this CPU's walker (an invalid entry
/// becoming valid needs no invalidation, only the barrier).
pub fn publish_new_entry() {
    // SAFETY: barriers only.
    unsafe { core::arch::asm!("dsb ishst", "isb", options(nostack, preserves_flags)) };
}

/// What spinning lock waiters call on x86_64 to answer shootdown IPIs: nothing to do here.
#[inline]
pub fn service() {}
