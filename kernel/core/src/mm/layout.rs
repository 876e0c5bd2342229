//! The one definition of the kernel's virtual address layout.

/// Linear map of all RAM: virtual = physical + PHYS_OFFSET (PML4 slot 256).
pub const PHYS_OFFSET: u64 = 0xFFFF_8000_0000_0000;
/// Kernel heap, grown on demand (PML4 slot 384), up to 512 GiB.
pub const HEAP_BASE: u64 = 0xFFFF_C000_0000_0000;
pub const HEAP_MAX: u64 = 512 << 30;
/// Device memory and firmware tables: virtual = physical + MMIO_OFFSET, mapped on demand
/// (PML4 slots 416..). Uncached unless asked otherwise.
pub const MMIO_OFFSET: u64 = 0xFFFF_D000_0000_0000;
/// Kernel stacks, each with an unmapped guard page below it (PML4 slot 448).
pub const KSTACK_BASE: u64 = 0xFFFF_E000_0000_0000;
pub const KSTACK_SLOT: u64 = 256 << 10;
pub const KSTACK_SLOTS: u64 = 1 << 20;
/// The kernel image (linked here by `linker.ld`).
pub const KERNEL_VMA: u64 = 0xFFFF_FFFF_8000_0000;

/// First PML4 index of the kernel half; every address space shares entries 256..512.
pub const KERNEL_PML4_FIRST: usize = 256;
