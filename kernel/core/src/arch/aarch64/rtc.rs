//! The PL031 real-time clock (`arm,pl031` in the device tree; QEMU `virt` has one at
//! 0x0901_0000, counting host time in seconds since the Unix epoch): read once at boot for
//! the wall clock.

use crate::mm::layout::MMIO_OFFSET;

/// RTCDR: the current count, seconds.
const RTCDR: u64 = 0x00;
/// The boot device window covers physical 0..1 GiB (see boot.S).
const WINDOW: u64 = 1 << 30;

/// Seconds since the epoch, or `None` without a PL031 in the device window.
pub fn unix_time() -> Option<u64> {
    let (pa, size) = super::boot::machine()?.rtc?;
    if size < RTCDR + 4 || pa.checked_add(size)? > WINDOW {
        return None;
    }
    // SAFETY: RTCDR of the PL031 the device tree names, inside its register frame (checked
    // above) in the boot stub's Device-nGnRnE window; reading it has no side effect.
    let secs = unsafe { ((MMIO_OFFSET + pa + RTCDR) as *const u32).read_volatile() };
    // A clock that was never set counts from 0: treat it as absent rather than 1970.
    (secs != 0).then_some(u64::from(secs))
}
