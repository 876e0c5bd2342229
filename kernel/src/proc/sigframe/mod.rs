//! The signal frame a handler starts on and `rt_sigreturn` restores from: its layout is
//! each architecture's Linux ABI (`x86_64.rs`: `rt_sigframe` with `sigcontext` and an
//! FXSAVE image; `aarch64.rs`: `rt_sigframe` with `sigcontext` and an `fpsimd_context`
//! record). Selected here, once.

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "aarch64")]
pub use aarch64::{setup, sigreturn};

#[cfg(not(target_arch = "aarch64"))]
#[path = "x86_64.rs"]
mod x86;
#[cfg(not(target_arch = "aarch64"))]
pub use x86::{setup, sigreturn};
