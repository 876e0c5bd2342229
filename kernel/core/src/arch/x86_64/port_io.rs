//! Port I/O (`in`/`out`) for drivers whose registers are an I/O BAR (UHCI). The kernel's
//! HAL (`kernel/src/hal.rs`) bounds-checks the port against the claimed BAR before it
//! calls these.

use x86_64::instructions::port::Port;

/// Reads a byte from `port`.
///
/// # Safety
/// `port` must belong to a device the caller drives: a port read can have side effects
/// on the device (never on memory).
pub unsafe fn in8(port: u16) -> u8 {
    // SAFETY: the caller vouches for the port (see above).
    unsafe { Port::<u8>::new(port).read() }
}

/// Reads 16 bits from `port`.
///
/// # Safety
/// As [`in8`].
pub unsafe fn in16(port: u16) -> u16 {
    // SAFETY: as in `in8`.
    unsafe { Port::<u16>::new(port).read() }
}

/// Reads 32 bits from `port`.
///
/// # Safety
/// As [`in8`].
pub unsafe fn in32(port: u16) -> u32 {
    // SAFETY: as in `in8`.
    unsafe { Port::<u32>::new(port).read() }
}

/// Writes a byte to `port`.
///
/// # Safety
/// `port` must belong to a device the caller drives; a device register write may start
/// DMA, which must reach only memory the device was given.
pub unsafe fn out8(port: u16, v: u8) {
    // SAFETY: the caller vouches for the port and what the write makes the device do.
    unsafe { Port::<u8>::new(port).write(v) }
}

/// Writes 16 bits to `port`.
///
/// # Safety
/// As [`out8`].
pub unsafe fn out16(port: u16, v: u16) {
    // SAFETY: as in `out8`.
    unsafe { Port::<u16>::new(port).write(v) }
}

/// Writes 32 bits to `port`.
///
/// # Safety
/// As [`out8`].
pub unsafe fn out32(port: u16, v: u32) {
    // SAFETY: as in `out8`.
    unsafe { Port::<u32>::new(port).write(v) }
}
