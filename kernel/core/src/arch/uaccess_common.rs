//! The arch-neutral half of checked user-memory access: the bounds check and the helpers
//! built on each architecture's `copy_from_user` / `copy_to_user` (`arch::<arch>::uaccess`,
//! which re-exports these), so that both architectures offer the same `arch::uaccess` API.

use zerocopy::{FromBytes, Immutable, IntoBytes};

use super::uaccess::{copy_from_user, copy_to_user};
use crate::errno::{Errno, KResult};
use crate::mm::uspace::USER_TOP;

/// `EFAULT` unless `addr..addr + len` lies below the top of user space.
pub(crate) fn check(addr: u64, len: usize) -> KResult<()> {
    match addr.checked_add(len as u64) {
        Some(end) if end <= USER_TOP => Ok(()),
        _ => Err(Errno::EFAULT),
    }
}

unsafe extern "C" {
    /// Each architecture's assembly (`<arch>/uaccess.rs`): 0, or nonzero after a fault.
    fn adros_uaccess_cmpxchg(addr: u64, expected: u32, new: u32, old_out: *mut u32) -> u64;
}

/// Atomic compare-and-exchange on a user u32 (futex operations); returns the old value.
pub fn cmpxchg_user(addr: u64, expected: u32, new: u32) -> KResult<u32> {
    if !addr.is_multiple_of(4) {
        return Err(Errno::EINVAL);
    }
    check(addr, 4)?;
    let mut old = 0u32;
    // SAFETY: `addr` is a checked, aligned user address whose faults are handled by the
    // fixup; `old` is a valid kernel location.
    match unsafe { adros_uaccess_cmpxchg(addr, expected, new, &mut old) } {
        0 => Ok(old),
        _ => Err(Errno::EFAULT),
    }
}

/// Reads a NUL-terminated string of at most `max` bytes (ENAMETOOLONG beyond).
pub fn read_cstr(addr: u64, max: usize) -> KResult<alloc::vec::Vec<u8>> {
    let mut out = alloc::vec::Vec::new();
    let mut at = addr;
    loop {
        let chunk = (4096 - (at % 4096)) as usize;
        let mut buf = alloc::vec![0u8; chunk.min(max + 1 - out.len())];
        copy_from_user(&mut buf, at)?;
        if let Some(p) = buf.iter().position(|&b| b == 0) {
            out.extend_from_slice(&buf[..p]);
            return Ok(out);
        }
        out.extend_from_slice(&buf);
        if out.len() > max {
            return Err(Errno::ENAMETOOLONG);
        }
        at += buf.len() as u64;
    }
}

/// Reads a value from user memory. Only types for which every byte pattern is a valid value
/// (`FromBytes`: integers, arrays of them, the `#[repr(C)]` structures of `syscall::abi`)
/// can be read.
pub fn read_val<T: FromBytes + IntoBytes>(addr: u64) -> KResult<T> {
    let mut v = T::new_zeroed();
    copy_from_user(v.as_mut_bytes(), addr)?;
    Ok(v)
}

/// Writes a value to user memory. Only types without padding or interior mutability
/// (`IntoBytes + Immutable`) can be written, so no uninitialized kernel byte reaches user space.
pub fn write_val<T: IntoBytes + Immutable + ?Sized>(addr: u64, v: &T) -> KResult<()> {
    copy_to_user(addr, v.as_bytes())
}
