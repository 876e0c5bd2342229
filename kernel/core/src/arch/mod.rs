//! Everything CPU-specific. Only this layer (with `mm`'s page-table and DMA code) holds
//! `unsafe`. On the host (for `cargo test`) only the interrupt-flag shims exist.

#[cfg(target_os = "none")]
pub mod x86_64;
#[cfg(target_os = "none")]
pub use self::x86_64::*;

#[cfg(not(target_os = "none"))]
pub mod irq {
    pub fn save_and_disable() -> bool {
        false
    }
    pub fn restore(_was_enabled: bool) {}
    pub fn enabled() -> bool {
        false
    }
}
