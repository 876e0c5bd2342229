//! Synchronisation: interrupt-safe spinlocks, and sleeping mutexes, condition variables and
//! reader-writer locks built on the scheduler's wait queues.

pub mod spin;

#[cfg(target_os = "none")]
mod sleeping;
#[cfg(target_os = "none")]
pub use sleeping::{Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
