//! The locks and wait queue the file-system code uses, chosen so that the same code runs in
//! the kernel and in host unit tests (`cargo test -p adros-kernel`).
//!
//! - [`SpinLock`]: short metadata critical sections (interrupts off while held).
//! - [`SleepLock`]: file contents, held across copies of up to a whole `write`: the kernel's
//!   sleeping mutex on the target, a spinning one on the host.
//! - [`WaitQueue`]: the scheduler's wait queue on the target; a `std` condition variable with
//!   the same `wait_until` / `wake_*` contract on the host.

pub use crate::sync::spin::IrqSpinLock as SpinLock;

#[cfg(target_os = "none")]
pub type SleepLock<T> = crate::sync::Mutex<T>;
#[cfg(not(target_os = "none"))]
pub type SleepLock<T> = spin::Mutex<T>;

#[cfg(target_os = "none")]
pub use crate::sched::wait::WaitQueue;

/// Host stand-in for the scheduler's wait queue: `cond` is evaluated under the queue's
/// mutex and wakers take the same mutex, so a wake-up cannot be lost.
#[cfg(not(target_os = "none"))]
pub struct WaitQueue {
    generation: std::sync::Mutex<u64>,
    cv: std::sync::Condvar,
}

#[cfg(not(target_os = "none"))]
impl Default for WaitQueue {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(not(target_os = "none"))]
impl WaitQueue {
    pub const fn new() -> Self {
        Self {
            generation: std::sync::Mutex::new(0),
            cv: std::sync::Condvar::new(),
        }
    }

    /// Blocks until `cond()` holds. Host time stands still (`now_ns() == 0`), so a deadline
    /// is treated as "poll once more after 1 ms".
    pub fn wait_until(&self, mut cond: impl FnMut() -> bool, deadline: Option<u64>) -> bool {
        let mut g = self.generation.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if cond() {
                return true;
            }
            if deadline.is_some() {
                let (g2, _) = self
                    .cv
                    .wait_timeout(g, std::time::Duration::from_millis(1))
                    .unwrap_or_else(|e| e.into_inner());
                drop(g2);
                return cond();
            }
            g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }

    pub fn wake_one(&self) -> bool {
        let mut g = self.generation.lock().unwrap_or_else(|e| e.into_inner());
        *g += 1;
        self.cv.notify_one();
        true
    }

    pub fn wake_all(&self) -> usize {
        let mut g = self.generation.lock().unwrap_or_else(|e| e.into_inner());
        *g += 1;
        self.cv.notify_all();
        1
    }
}

/// Wall-clock time for timestamps: (seconds, nanoseconds) since the Unix epoch.
pub fn now() -> super::Timespec {
    let ns = crate::time::wall_clock_ns();
    super::Timespec {
        sec: (ns / 1_000_000_000) as i64,
        nsec: (ns % 1_000_000_000) as i64,
    }
}
