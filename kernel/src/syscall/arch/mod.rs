//! The per-architecture part of the Linux system-call ABI: the numbering (x86_64's own, or
//! arm64's asm-generic one looked up by name), the argument order of `clone`, and the calls
//! only one architecture has. Selected here, once.

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "aarch64")]
pub use aarch64::*;

#[cfg(not(target_arch = "aarch64"))]
#[path = "x86_64.rs"]
mod x86;
#[cfg(not(target_arch = "aarch64"))]
pub use x86::*;

/// Calls only this architecture has: none on aarch64.
#[cfg(target_arch = "aarch64")]
pub fn register(_t: &mut super::Table) {}
