//! User page tables on aarch64 (TTBR0_EL1): the same interface as x86_64's (`Entry`,
//! `table`, `Flags` with x86_64's names), translated to VMSAv8-64 descriptors with a 4 KiB
//! granule and four levels, as the kernel half (`paging.rs`). User tables hold the user half
//! only: the kernel half lives behind TTBR1, so a new root starts empty. Copy-on-write and
//! PROT_NONE are descriptor software bits (55, 56); a PROT_NONE entry keeps its frame and
//! its other bits with the valid bit clear, as on x86_64.

use crate::mm::phys::phys_to_virt;

use super::paging::{Flags as KFlags, descriptor};

bitflags::bitflags! {
    /// What a user entry allows (x86_64's names, encoded in [`Entry::set`]).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Flags: u64 {
        const PRESENT = 1;
        const WRITABLE = 1 << 1;
        const USER_ACCESSIBLE = 1 << 2;
        const HUGE_PAGE = 1 << 7;
        const NO_EXECUTE = 1 << 63;
        const COW_BIT = 1 << 9;
        const PROTNONE_BIT = 1 << 10;
    }
}

pub const COW: Flags = Flags::COW_BIT;
pub const PROTNONE: Flags = Flags::PROTNONE_BIT;
/// The whole root is the user half.
pub const USER_ROOT_ENTRIES: usize = 512;

const VALID: u64 = 1;
const TABLE_OR_PAGE: u64 = 1 << 1;
const SW_COW: u64 = 1 << 55;
const SW_PROTNONE: u64 = 1 << 56;
const ADDR: u64 = 0x0000_ffff_ffff_f000;

/// One descriptor of a user translation table (any level).
#[repr(transparent)]
pub struct Entry(u64);

impl Entry {
    pub fn is_unused(&self) -> bool {
        self.0 == 0
    }
    pub fn set_unused(&mut self) {
        self.0 = 0;
    }
    pub fn flags(&self) -> Flags {
        let d = self.0;
        if d == 0 {
            return Flags::empty();
        }
        let k = descriptor_flags(d | VALID);
        let mut f = Flags::empty();
        f.set(Flags::PRESENT, d & VALID != 0);
        f.set(Flags::WRITABLE, k.contains(KFlags::WRITABLE));
        f.set(Flags::USER_ACCESSIBLE, k.contains(KFlags::USER_ACCESSIBLE));
        f.set(Flags::NO_EXECUTE, k.contains(KFlags::NO_EXECUTE));
        f.set(Flags::HUGE_PAGE, d & VALID != 0 && d & TABLE_OR_PAGE == 0);
        f.set(COW, d & SW_COW != 0);
        f.set(PROTNONE, d & SW_PROTNONE != 0);
        f
    }
    pub fn addr(&self) -> u64 {
        self.0 & ADDR
    }
    /// A last-level (page) descriptor: `frame` with `flags`.
    pub fn set(&mut self, frame: u64, flags: Flags) {
        let mut k = KFlags::PRESENT;
        k.set(KFlags::WRITABLE, flags.contains(Flags::WRITABLE));
        k.set(
            KFlags::USER_ACCESSIBLE,
            flags.contains(Flags::USER_ACCESSIBLE),
        );
        k.set(KFlags::NO_EXECUTE, flags.contains(Flags::NO_EXECUTE));
        let mut d = descriptor(frame, k);
        if !flags.contains(Flags::PRESENT) {
            d &= !VALID;
        }
        if flags.contains(COW) {
            d |= SW_COW;
        }
        if flags.contains(PROTNONE) {
            d |= SW_PROTNONE;
        }
        self.0 = d;
    }
    pub fn set_flags(&mut self, flags: Flags) {
        let frame = self.addr();
        self.set(frame, flags);
    }
    /// An upper-level descriptor pointing at the next table.
    pub fn set_table(&mut self, table: u64) {
        self.0 = (table & ADDR) | VALID | TABLE_OR_PAGE;
    }
    /// An upper-level block descriptor (a large page) instead of a table.
    pub fn is_huge(&self) -> bool {
        self.0 & VALID != 0 && self.0 & TABLE_OR_PAGE == 0
    }
}

/// The permission bits of a valid page descriptor, in the kernel half's terms.
fn descriptor_flags(d: u64) -> KFlags {
    super::paging::flags_of(d)
}

/// The 512 descriptors of the table in frame `pa`.
pub fn table(pa: u64) -> &'static mut [Entry; 512] {
    // SAFETY: `pa` is a translation-table frame owned by an address space whose lock the
    // caller holds (or which is being built/torn down by its only owner), reached via the
    // linear map; a table is 512 little-endian 64-bit descriptors.
    unsafe { &mut *(phys_to_virt(pa) as *mut [Entry; 512]) }
}

/// An empty user half, for threads without an address space (so that TTBR0 never keeps
/// pointing at the tables of an address space that may be freed).
pub fn idle_root() -> u64 {
    static ROOT: spin::Once<u64> = spin::Once::new();
    *ROOT.call_once(|| {
        crate::mm::phys::alloc_frame().expect("a frame for the empty user root table")
    })
}

/// A new root needs nothing: the kernel half is TTBR1's.
pub fn init_root(_root: u64) {}

/// Loads the user address space rooted at `root` on this CPU (ASID 0 for every space, so
/// this CPU's non-global entries go with the old one).
pub fn activate(root: u64) {
    // SAFETY: TTBR0_EL1 only translates the user half; the kernel runs from TTBR1, so the
    // running code and stack stay mapped. The barriers order the table walks and the
    // invalidation after the switch.
    unsafe {
        core::arch::asm!(
            "msr ttbr0_el1, {root}",
            "isb",
            "tlbi vmalle1",
            "dsb nsh",
            "isb",
            root = in(reg) root & ADDR,
            options(nostack, preserves_flags)
        );
    }
}

/// The root TTBR0_EL1 holds now (to put it back after borrowing the user half).
pub fn active_root() -> u64 {
    let v: u64;
    // SAFETY: reading a system register has no side effect.
    unsafe {
        core::arch::asm!("mrs {v}, ttbr0_el1", v = out(reg) v, options(nomem, nostack, preserves_flags))
    };
    v & ADDR
}
