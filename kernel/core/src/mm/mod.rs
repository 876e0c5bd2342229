//! Memory management: frames, kernel page tables, the heap, kernel stacks, DMA, MMIO.

pub mod frame;
pub mod layout;

#[cfg(target_os = "none")]
pub mod dma;
#[cfg(target_os = "none")]
pub mod heap;
#[cfg(target_os = "none")]
pub mod kstack;
#[cfg(target_os = "none")]
pub mod mmio;
#[cfg(all(target_os = "none", target_arch = "x86_64"))]
pub mod paging;
/// aarch64's translation tables, behind the same interface (`map`, `unmap`, `query`, `Flags`).
#[cfg(all(target_os = "none", target_arch = "aarch64"))]
pub use crate::arch::aarch64::paging;
#[cfg(target_os = "none")]
pub mod phys;
#[cfg(target_os = "none")]
pub mod uspace;

#[cfg(target_os = "none")]
pub use phys::{phys_to_virt, virt_to_phys};

/// True if `addr` falls in the guard page of a kernel stack (or of the boot stack).
#[cfg(target_os = "none")]
pub fn kstack_guard_hit(addr: u64) -> bool {
    let page = addr & !0xfff;
    if page == paging::boot_stack_guard() {
        return true;
    }
    (layout::KSTACK_BASE..layout::KSTACK_BASE + layout::KSTACK_SLOT * layout::KSTACK_SLOTS)
        .contains(&addr)
        && paging::query(page).is_none()
}
