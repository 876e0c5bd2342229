//! User page tables on x86_64: the entries `mm::uspace` walks and edits (four levels of 512
//! entries, 9 bits of the address each), the root that shares the kernel half, and loading
//! it into CR3. `Flags` are the hardware's own bits, so nothing is translated here.

use x86_64::PhysAddr;
use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::page_table::PageTableEntry;
use x86_64::structures::paging::{PageTable, PhysFrame};

pub use x86_64::structures::paging::PageTableFlags as Flags;

use crate::mm::layout::KERNEL_PML4_FIRST;
use crate::mm::phys::phys_to_virt;

/// Software bit: a copy-on-write page.
pub const COW: Flags = Flags::BIT_9;
/// Software bit: a PROT_NONE page (the frame stays, the entry is not present).
pub const PROTNONE: Flags = Flags::BIT_10;
/// Root entries below this index are the user half.
pub const USER_ROOT_ENTRIES: usize = KERNEL_PML4_FIRST;

/// One entry of a user page table (any level).
#[repr(transparent)]
pub struct Entry(PageTableEntry);

impl Entry {
    pub fn is_unused(&self) -> bool {
        self.0.is_unused()
    }
    pub fn set_unused(&mut self) {
        self.0.set_unused();
    }
    pub fn flags(&self) -> Flags {
        self.0.flags()
    }
    /// The frame (or next table) the entry points to.
    pub fn addr(&self) -> u64 {
        self.0.addr().as_u64()
    }
    /// A last-level entry: `frame` with `flags`.
    pub fn set(&mut self, frame: u64, flags: Flags) {
        self.0.set_addr(PhysAddr::new(frame), flags);
    }
    pub fn set_flags(&mut self, flags: Flags) {
        self.0.set_flags(flags);
    }
    /// An upper-level entry pointing at the next table (user-accessible and writable: the
    /// last level decides).
    pub fn set_table(&mut self, table: u64) {
        self.set(
            table,
            Flags::PRESENT | Flags::WRITABLE | Flags::USER_ACCESSIBLE,
        );
    }
    /// An upper-level entry that maps a large page instead of pointing at a table.
    pub fn is_huge(&self) -> bool {
        self.flags().contains(Flags::HUGE_PAGE)
    }
}

/// The 512 entries of the table in frame `pa`.
pub fn table(pa: u64) -> &'static mut [Entry; 512] {
    // SAFETY: `pa` is a page-table frame owned by an address space whose lock the caller
    // holds (or which is being built/torn down by its only owner), reached via the linear
    // map; `PageTable` is 512 `PageTableEntry`s and `Entry` is one, transparently.
    unsafe { &mut *(phys_to_virt(pa) as *mut PageTable).cast::<[Entry; 512]>() }
}

/// Prepares a new root table in frame `root` (zeroed): the kernel half is shared with every
/// address space.
pub fn init_root(root: u64) {
    let k = table(crate::mm::paging::kernel_pml4());
    let t = table(root);
    for i in KERNEL_PML4_FIRST..512 {
        t[i] = Entry(k[i].0.clone());
    }
}

/// Loads the user address space rooted at `root` on this CPU.
pub fn activate(root: u64) {
    // SAFETY: the root is live (its address space is kept alive by the caller while
    // loaded) and shares the kernel half, so the running kernel code and stack stay mapped.
    unsafe {
        Cr3::write(
            PhysFrame::containing_address(PhysAddr::new(root)),
            Cr3Flags::empty(),
        )
    };
}
