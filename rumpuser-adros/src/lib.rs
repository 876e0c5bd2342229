//! `rumpuser-adros`: the NetBSD rump kernel hypercall interface (`rumpuser(3)`, version 17)
//! plus the `rumpcomp_pci_*` family, written once against a small [`Host`] trait.
//!
//! * [`host::Host`] — what a host supplies: parking/waking threads, clocks, memory, thread
//!   creation, a per-thread `curlwp` slot, files, entropy, PCI/DMA/IRQ. The AdrOS kernel
//!   implements it (issue 6); with the `std` feature, [`StdHost`] implements it on Linux.
//! * [`sync`] and [`locks`] — mutexes, rwlocks, condvars and NetBSD's rules for them
//!   (SPIN/KMUTEX, `cv_reschedule` ordering, relative timed waits).
//! * [`hyp`] — the upcall table and the unschedule/schedule calls around blocking hypercalls.
//! * [`ffi`] and [`pci`] — the `extern "C"` symbols; thin shims that check arguments.
//! * [`errno::Errno`] — NetBSD errno numbering, the only one rump understands.
//!
//! The host is installed once with [`set_host`]; with the `std` feature the `std` host is used
//! when none was installed.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub mod bio;
pub mod errno;
pub mod ffi;
pub mod host;
pub mod hyp;
pub mod locks;
pub mod params;
pub mod pci;
pub mod printf;
pub mod recycle;
#[cfg(feature = "std")]
pub mod std_host;
pub mod sync;

pub use errno::Errno;

/// A value alone on its cache line(s). Globals that every hypercall reads (the host, the upcall
/// table) must not share a line with ones that other threads keep writing (lock words,
/// counters): each write would make the readers miss.
#[repr(align(64))]
pub(crate) struct CacheAligned<T>(pub T);

impl<T> core::ops::Deref for CacheAligned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}
pub use host::Host;
pub use host::host;
pub use host::set_host;
#[cfg(feature = "std")]
pub use std_host::StdHost;
