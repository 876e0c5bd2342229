//! Translation tables of the kernel half (TTBR1_EL1): 4 KiB granule, 48-bit virtual
//! addresses, four levels — the same layout as x86_64's (mm/layout.rs), so the heap, kernel
//! stacks and device windows sit at the same addresses. The boot stub's tables are edited in
//! place: [`map`] adds 4 KiB pages, allocating intermediate tables from the frame allocator;
//! table memory is reached through the linear map. Invalidations are broadcast by the
//! hardware (`tlbi …is`), so no shootdown IPIs.
//!
//! `Flags` keeps x86_64's names (what the core asks for), translated to descriptor bits here.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::mm::layout::KERNEL_VMA;
use crate::mm::phys::{self, phys_to_virt};
use crate::sync::spin::IrqSpinLock;

bitflags::bitflags! {
    /// What a mapping allows (arch-neutral names; see [`descriptor`]).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Flags: u64 {
        const PRESENT = 1;
        const WRITABLE = 1 << 1;
        const USER_ACCESSIBLE = 1 << 2;
        const WRITE_THROUGH = 1 << 3;
        /// Device memory (Device-nGnRnE): registers.
        const NO_CACHE = 1 << 4;
        const GLOBAL = 1 << 8;
        const NO_EXECUTE = 1 << 63;
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum MapError {
    AlreadyMapped,
    NoMemory,
    NotMapped,
}

const VALID: u64 = 1;
/// Table descriptor at levels 0–2, page descriptor at level 3.
const TABLE_OR_PAGE: u64 = 1 << 1;
const ATTR_DEVICE: u64 = 0 << 2;
const ATTR_NORMAL: u64 = 1 << 2;
const AP_USER: u64 = 1 << 6;
const AP_READ_ONLY: u64 = 1 << 7;
const SH_INNER: u64 = 3 << 8;
const AF: u64 = 1 << 10;
const NOT_GLOBAL: u64 = 1 << 11;
const PXN: u64 = 1 << 53;
const UXN: u64 = 1 << 54;
const ADDR: u64 = 0x0000_ffff_ffff_f000;

/// The level-3 descriptor for `pa` with `flags`.
pub fn descriptor(pa: u64, flags: Flags) -> u64 {
    let mut d = (pa & ADDR) | VALID | TABLE_OR_PAGE | AF;
    d |= if flags.contains(Flags::NO_CACHE) {
        ATTR_DEVICE
    } else {
        ATTR_NORMAL | SH_INNER
    };
    if !flags.contains(Flags::WRITABLE) {
        d |= AP_READ_ONLY;
    }
    if flags.contains(Flags::USER_ACCESSIBLE) {
        // The kernel never runs user pages.
        d |= AP_USER | PXN;
        if flags.contains(Flags::NO_EXECUTE) {
            d |= UXN;
        }
    } else {
        // User mode never runs kernel pages.
        d |= UXN;
        if flags.contains(Flags::NO_EXECUTE) {
            d |= PXN;
        }
    }
    if !flags.contains(Flags::GLOBAL) {
        d |= NOT_GLOBAL;
    }
    d
}

/// The flags a (page or block) descriptor grants.
pub(crate) fn flags_of(d: u64) -> Flags {
    let mut f = Flags::PRESENT;
    if d & AP_READ_ONLY == 0 {
        f |= Flags::WRITABLE;
    }
    if d & AP_USER != 0 {
        f |= Flags::USER_ACCESSIBLE;
        if d & UXN != 0 {
            f |= Flags::NO_EXECUTE;
        }
    } else if d & PXN != 0 {
        f |= Flags::NO_EXECUTE;
    }
    if d & (7 << 2) == ATTR_DEVICE {
        f |= Flags::NO_CACHE;
    }
    if d & NOT_GLOBAL == 0 {
        f |= Flags::GLOBAL;
    }
    f
}

/// The kernel half's root table (physical), set by [`init`].
static ROOT: AtomicU64 = AtomicU64::new(0);
/// Serialises every edit.
static LOCK: IrqSpinLock<()> = IrqSpinLock::new(());

/// Takes over the boot stub's tables (TTBR1) and switches physical addresses to the linear
/// map, which the boot stub already set up.
pub fn init() {
    ROOT.store(super::cpu::kernel_table_root(), Ordering::Relaxed);
    phys::switch_to_linear_map();
}

/// The kernel half's root table (the scheduler's "address space" of kernel threads).
pub fn kernel_pml4() -> u64 {
    ROOT.load(Ordering::Relaxed)
}

fn entry(table: u64, index: u64) -> *mut u64 {
    (phys_to_virt(table) + index * 8) as *mut u64
}

fn index(va: u64, level: u32) -> u64 {
    (va >> (39 - 9 * level)) & 0x1ff
}

/// What a walk found for `va`.
enum Walk {
    /// The level-3 entry's address.
    Page(*mut u64),
    /// A block descriptor at level 1 or 2 maps it: (descriptor, level).
    Block(u64, u32),
    /// Not mapped (a missing table on the way).
    Missing,
}

/// Walks to `va`'s level-3 entry, creating the missing tables when `create` is set.
/// The caller holds LOCK (or accepts a racy answer, for reports).
fn walk(va: u64, create: bool) -> Result<Walk, MapError> {
    let mut table = ROOT.load(Ordering::Relaxed);
    if table == 0 {
        return Ok(Walk::Missing);
    }
    for level in 0..3 {
        let e = entry(table, index(va, level));
        // SAFETY: `table` is a translation table (the root or one an entry points at),
        // reachable through the linear map; one aligned word is read.
        let d = unsafe { e.read_volatile() };
        if d & VALID == 0 {
            if !create {
                return Ok(Walk::Missing);
            }
            let t = phys::alloc_frame().ok_or(MapError::NoMemory)?;
            // SAFETY: as above; the new table frame is zeroed and ours. Publishing it before
            // any entry in it is valid is harmless.
            unsafe { e.write_volatile(t | VALID | TABLE_OR_PAGE) };
            super::tlb::publish_new_entry();
            table = t;
            continue;
        }
        if d & TABLE_OR_PAGE == 0 {
            return Ok(Walk::Block(d, level));
        }
        table = d & ADDR;
    }
    Ok(Walk::Page(entry(table, index(va, 3))))
}

/// Maps one 4 KiB page of the kernel half.
pub fn map(va: u64, pa: u64, flags: Flags) -> Result<(), MapError> {
    let _g = LOCK.lock();
    match walk(va, true)? {
        Walk::Page(e) => {
            // SAFETY: `e` is the level-3 entry for `va` in a live table.
            if unsafe { e.read_volatile() } & VALID != 0 {
                return Err(MapError::AlreadyMapped);
            }
            // SAFETY: as above; an invalid entry becoming valid needs no invalidation.
            unsafe { e.write_volatile(descriptor(pa, flags)) };
            super::tlb::publish_new_entry();
            Ok(())
        }
        Walk::Block(..) => Err(MapError::AlreadyMapped),
        Walk::Missing => Err(MapError::NoMemory),
    }
}

/// Unmaps one page and returns the physical address it pointed at; every CPU's TLB is
/// clean of it when this returns.
pub fn unmap(va: u64) -> Result<u64, MapError> {
    let _g = LOCK.lock();
    match walk(va, false)? {
        Walk::Page(e) => {
            // SAFETY: `e` is the level-3 entry for `va` in a live table.
            let d = unsafe { e.read_volatile() };
            if d & VALID == 0 {
                return Err(MapError::NotMapped);
            }
            // SAFETY: as above.
            unsafe { e.write_volatile(0) };
            super::tlb::shootdown(va);
            Ok(d & ADDR)
        }
        _ => Err(MapError::NotMapped),
    }
}

/// Changes the flags of one mapped page (break-before-make: invalid, flushed, then new).
pub fn protect(va: u64, flags: Flags) -> Result<(), MapError> {
    let _g = LOCK.lock();
    match walk(va, false)? {
        Walk::Page(e) => {
            // SAFETY: `e` is the level-3 entry for `va` in a live table.
            let d = unsafe { e.read_volatile() };
            if d & VALID == 0 {
                return Err(MapError::NotMapped);
            }
            // SAFETY: as above.
            unsafe { e.write_volatile(0) };
            super::tlb::shootdown(va);
            // SAFETY: as above.
            unsafe { e.write_volatile(descriptor(d & ADDR, flags)) };
            super::tlb::publish_new_entry();
            Ok(())
        }
        _ => Err(MapError::NotMapped),
    }
}

/// (physical address, flags) of a mapped address, or None.
pub fn query(va: u64) -> Option<(u64, Flags)> {
    let _g = LOCK.lock();
    lookup(va)
}

fn lookup(va: u64) -> Option<(u64, Flags)> {
    match walk(va, false).ok()? {
        Walk::Page(e) => {
            // SAFETY: `e` is the level-3 entry for `va` in a live table.
            let d = unsafe { e.read_volatile() };
            (d & VALID != 0).then(|| ((d & ADDR) + (va & 0xfff), flags_of(d)))
        }
        Walk::Block(d, level) => {
            let size = 1u64 << (39 - 9 * level);
            Some(((d & ADDR & !(size - 1)) + (va & (size - 1)), flags_of(d)))
        }
        Walk::Missing => None,
    }
}

/// Whether `va` is mapped, without the lock: for reports, which may run on a CPU stopped
/// while holding it.
pub fn mapped_for_report(va: u64) -> bool {
    va >= 0xFFFF_0000_0000_0000 && lookup(va).is_some()
}

unsafe extern "C" {
    static __text_start: u8;
    static __text_end: u8;
    static __rodata_start: u8;
    static __rodata_end: u8;
    static __data_start: u8;
    static __kernel_end: u8;
    #[link_name = "boot_stack_guard"]
    static BOOT_STACK_GUARD: u8;
    fn adros_replace_ttbr1(root_pa: u64);
}

fn sym(s: &u8) -> u64 {
    s as *const u8 as u64
}

/// Kernel image section ranges (virtual): text, read-only data, data and BSS.
pub fn kernel_sections() -> [(u64, u64, &'static str); 3] {
    // SAFETY: linker-provided symbols; only their addresses are taken.
    unsafe {
        [
            (sym(&__text_start), sym(&__text_end), "text"),
            (sym(&__rodata_start), sym(&__rodata_end), "rodata"),
            (sym(&__data_start), sym(&__kernel_end), "data"),
        ]
    }
}

/// The page under the boot stack, left unmapped by [`protect_kernel`].
pub fn boot_stack_guard() -> u64 {
    // SAFETY: only the address is taken.
    unsafe { sym(&BOOT_STACK_GUARD) }
}

/// Why [`protect_kernel`] could not finish (the boot tables then stay).
#[derive(Debug)]
pub enum ProtectError {
    NoMemory,
}

/// W^X for the image: a new kernel-half root sharing every subtree of the boot tables but
/// the image's, which is rebuilt page by page — text read-only and executable, read-only
/// data read-only, data and BSS writable and never executable, the boot stack's guard page
/// unmapped — and nothing else at KERNEL_VMA (the boot stub mapped the image's whole GiB
/// read-write-execute). TTBR1 is switched from the identity map (`adros_replace_ttbr1`).
/// Run on the boot CPU before the others start (they take the root it leaves).
pub fn protect_kernel() -> Result<(), ProtectError> {
    let _g = LOCK.lock();
    let old = ROOT.load(Ordering::Relaxed);
    let new = phys::alloc_frame().ok_or(ProtectError::NoMemory)?;
    for i in 0..511 {
        // SAFETY: both are translation tables reached through the linear map; entries are
        // copied one aligned word at a time.
        unsafe { entry(new, i).write_volatile(entry(old, i).read_volatile()) };
    }
    let [(text, text_end, _), (ro, ro_end, _), (_, end, _)] = kernel_sections();
    let guard = boot_stack_guard();
    let mut va = text & !0xfff;
    while va < end {
        let flags = if va < text_end {
            Flags::PRESENT | Flags::GLOBAL
        } else if (ro..ro_end).contains(&va) {
            Flags::PRESENT | Flags::GLOBAL | Flags::NO_EXECUTE
        } else {
            Flags::PRESENT | Flags::GLOBAL | Flags::WRITABLE | Flags::NO_EXECUTE
        };
        if va != guard {
            let e = walk_in(new, va).ok_or(ProtectError::NoMemory)?;
            // SAFETY: a level-3 entry of the new tables, not yet in use by any CPU.
            unsafe { e.write_volatile(descriptor(va - KERNEL_VMA, flags)) };
        }
        va += 4096;
    }
    super::tlb::publish_new_entry();
    // SAFETY: the new root maps everything the old one did (the shared subtrees) and the
    // image with the same physical addresses; the caller runs with IRQs masked (LOCK), and
    // the switch itself runs from the identity map.
    unsafe { adros_replace_ttbr1(new) };
    ROOT.store(new, Ordering::Relaxed);
    Ok(())
}

/// The level-3 entry for `va` under root `root`, creating tables (for building new tables
/// that no CPU uses yet).
fn walk_in(root: u64, va: u64) -> Option<*mut u64> {
    let mut table = root;
    for level in 0..3 {
        let e = entry(table, index(va, level));
        // SAFETY: `table` is a translation table reached through the linear map.
        let d = unsafe { e.read_volatile() };
        table = if d & VALID == 0 {
            let t = phys::alloc_frame()?;
            // SAFETY: as above; the new table frame is zeroed and ours.
            unsafe { e.write_volatile(t | VALID | TABLE_OR_PAGE) };
            t
        } else if d & TABLE_OR_PAGE == 0 {
            return None;
        } else {
            d & ADDR
        };
    }
    Some(entry(table, index(va, 3)))
}
