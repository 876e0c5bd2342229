//! Kernel page tables: built once at boot (W^X kernel sections, guard page under the boot
//! stack, linear map of all RAM, every kernel-half PML4 slot pre-allocated so address spaces
//! can share them), then edited through [`map`], [`unmap`] and [`protect`].

use x86_64::PhysAddr;
use x86_64::VirtAddr;
use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::{
    FrameAllocator, Mapper, OffsetPageTable, Page, PageSize, PageTable, PageTableFlags as F,
    PhysFrame, Size2MiB, Size4KiB, Translate,
};

use super::layout::{KERNEL_PML4_FIRST, KERNEL_VMA};
use super::phys::{self, phys_to_virt};
use crate::bootinfo::MemRegion;
use crate::sync::spin::IrqSpinLock;

pub use x86_64::structures::paging::PageTableFlags as Flags;

/// Physical address of the kernel PML4, guarded by this lock for every edit.
static KERNEL_PML4: IrqSpinLock<u64> = IrqSpinLock::new(0);

struct GlobalFrames;

// SAFETY: every frame returned comes from the global allocator, is unused and zeroed.
unsafe impl FrameAllocator<Size4KiB> for GlobalFrames {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        phys::alloc_frame().map(|pa| PhysFrame::containing_address(PhysAddr::new(pa)))
    }
}

fn mapper(pml4_phys: u64) -> OffsetPageTable<'static> {
    let offset = phys_to_virt(0);
    // SAFETY: `pml4_phys` is a live PML4 and all page-table frames are reachable at
    // phys + offset (boot identity map or linear map); the caller holds KERNEL_PML4.
    unsafe {
        let table = &mut *(phys_to_virt(pml4_phys) as *mut PageTable);
        OffsetPageTable::new(table, VirtAddr::new(offset))
    }
}

unsafe extern "C" {
    static __text_start: u8;
    static __text_end: u8;
    static __rodata_start: u8;
    static __rodata_end: u8;
    static __data_start: u8;
    static __data_end: u8;
    #[link_name = "boot_stack_guard"]
    static BOOT_STACK_GUARD: u8;
}

fn sym(s: &u8) -> u64 {
    s as *const u8 as u64
}

/// Kernel image section ranges (virtual), for the W^X check in tests.
pub fn kernel_sections() -> [(u64, u64, &'static str); 3] {
    // SAFETY: linker-provided symbols; only their addresses are taken.
    unsafe {
        [
            (sym(&__text_start), sym(&__text_end), "text"),
            (sym(&__rodata_start), sym(&__rodata_end), "rodata"),
            (sym(&__data_start), sym(&__data_end), "data"),
        ]
    }
}

pub fn boot_stack_guard() -> u64 {
    // SAFETY: only the address is taken.
    unsafe { sym(&BOOT_STACK_GUARD) }
}

/// Builds the kernel's page tables and switches to them. Runs on the boot identity map.
pub fn init(regions: &[MemRegion], huge_1g: bool) {
    let _ = huge_1g;
    let pml4 = phys::alloc_frame().expect("no frame for the kernel PML4");
    let mut m = mapper(pml4);
    let mut fa = GlobalFrames;

    // Pre-allocate every kernel-half PDPT so all address spaces can share them.
    {
        let table = m.level_4_table_mut();
        for i in KERNEL_PML4_FIRST..512 {
            let pdpt = phys::alloc_frame().expect("no frame for a kernel PDPT");
            table[i].set_addr(PhysAddr::new(pdpt), F::PRESENT | F::WRITABLE);
        }
    }

    // Kernel image: text RX, rodata R+NX, data/bss RW+NX; the boot stack guard unmapped.
    let guard = boot_stack_guard();
    for (start, end, name) in kernel_sections() {
        let flags = match name {
            "text" => F::PRESENT | F::GLOBAL,
            "rodata" => F::PRESENT | F::GLOBAL | F::NO_EXECUTE,
            _ => F::PRESENT | F::GLOBAL | F::WRITABLE | F::NO_EXECUTE,
        };
        let mut va = start & !0xfff;
        while va < end {
            if va != guard {
                let pa = va - KERNEL_VMA;
                map_in(&mut m, &mut fa, va, pa, flags);
            }
            va += 4096;
        }
    }

    // Linear map of RAM with 2 MiB pages (plus the first 2 MiB for BIOS structures).
    let mut ranges: alloc_free_ranges::Ranges = alloc_free_ranges::Ranges::new();
    ranges.add(0, 2 << 20);
    for r in regions.iter().filter(|r| r.kind.is_ram()) {
        ranges.add(
            r.start & !((2 << 20) - 1),
            (r.end + (2 << 20) - 1) & !((2 << 20) - 1),
        );
    }
    for (s, e) in ranges.iter() {
        let mut pa = s;
        while pa < e {
            let page = Page::<Size2MiB>::containing_address(VirtAddr::new(
                super::layout::PHYS_OFFSET + pa,
            ));
            let frame = PhysFrame::<Size2MiB>::containing_address(PhysAddr::new(pa));
            // SAFETY: a fresh linear-map slot pointing at RAM; nothing else maps it here.
            unsafe {
                m.map_to(
                    page,
                    frame,
                    F::PRESENT | F::WRITABLE | F::NO_EXECUTE | F::GLOBAL,
                    &mut fa,
                )
                .expect("linear map")
                .ignore();
            }
            pa += Size2MiB::SIZE;
        }
    }

    // SAFETY: the new tables map the running kernel (text, stack, data) at the same
    // addresses as the boot tables, so execution continues seamlessly.
    unsafe {
        Cr3::write(
            PhysFrame::containing_address(PhysAddr::new(pml4)),
            Cr3Flags::empty(),
        )
    };
    phys::switch_to_linear_map();
    *KERNEL_PML4.lock() = pml4;
    KERNEL_PML4_PHYS.store(pml4, core::sync::atomic::Ordering::Relaxed);
}

fn map_in(m: &mut OffsetPageTable<'static>, fa: &mut GlobalFrames, va: u64, pa: u64, flags: F) {
    let page = Page::<Size4KiB>::containing_address(VirtAddr::new(va));
    let frame = PhysFrame::containing_address(PhysAddr::new(pa));
    // SAFETY: callers map kernel-owned frames at kernel addresses they own.
    unsafe {
        m.map_to_with_table_flags(page, frame, flags, F::PRESENT | F::WRITABLE, fa)
            .expect("kernel mapping")
            .flush();
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum MapError {
    AlreadyMapped,
    NoMemory,
    NotMapped,
}

pub fn kernel_pml4() -> u64 {
    KERNEL_PML4_PHYS.load(core::sync::atomic::Ordering::Relaxed)
}

/// Lock-free copy of the kernel PML4 address (read on every context switch).
static KERNEL_PML4_PHYS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Maps one 4 KiB page of the kernel half.
pub fn map(va: u64, pa: u64, flags: Flags) -> Result<(), MapError> {
    let root = KERNEL_PML4.lock();
    let mut m = mapper(*root);
    let page = Page::<Size4KiB>::containing_address(VirtAddr::new(va));
    let frame = PhysFrame::containing_address(PhysAddr::new(pa));
    // SAFETY: callers own `va` (a kernel-half range handed out by one allocator) and `pa`.
    let r = unsafe {
        m.map_to_with_table_flags(
            page,
            frame,
            flags,
            F::PRESENT | F::WRITABLE,
            &mut GlobalFrames,
        )
    };
    match r {
        Ok(flush) => {
            flush.flush();
            Ok(())
        }
        Err(x86_64::structures::paging::mapper::MapToError::PageAlreadyMapped(_)) => {
            Err(MapError::AlreadyMapped)
        }
        Err(_) => Err(MapError::NoMemory),
    }
}

/// Unmaps one page and returns the physical address it pointed at.
/// Every CPU's TLB is flushed before this returns, so the frame may be reused at once.
pub fn unmap(va: u64) -> Result<u64, MapError> {
    let r = {
        let root = KERNEL_PML4.lock();
        let mut m = mapper(*root);
        let page = Page::<Size4KiB>::containing_address(VirtAddr::new(va));
        match m.unmap(page) {
            Ok((frame, flush)) => {
                flush.ignore();
                Ok(frame.start_address().as_u64())
            }
            Err(_) => Err(MapError::NotMapped),
        }
    };
    if r.is_ok() {
        crate::arch::tlb::shootdown(va);
    }
    r
}

/// Changes the flags of one mapped page.
pub fn protect(va: u64, flags: Flags) -> Result<(), MapError> {
    let root = KERNEL_PML4.lock();
    let mut m = mapper(*root);
    let page = Page::<Size4KiB>::containing_address(VirtAddr::new(va));
    // SAFETY: changing permissions cannot break memory safety of Rust code that does not
    // hold references into the page; callers only protect pages they own.
    let r = match unsafe { m.update_flags(page, flags) } {
        Ok(flush) => {
            flush.ignore();
            Ok(())
        }
        Err(_) => Err(MapError::NotMapped),
    };
    drop(root);
    if r.is_ok() {
        crate::arch::tlb::shootdown(va);
    }
    r
}

/// (physical address, flags) of a mapped 4 KiB page, or None.
pub fn query(va: u64) -> Option<(u64, Flags)> {
    use x86_64::structures::paging::mapper::{MappedFrame, TranslateResult};
    let root = KERNEL_PML4.lock();
    let m = mapper(*root);
    match m.translate(VirtAddr::new(va)) {
        TranslateResult::Mapped {
            frame,
            offset,
            flags,
        } => {
            let base = match frame {
                MappedFrame::Size4KiB(f) => f.start_address().as_u64(),
                MappedFrame::Size2MiB(f) => f.start_address().as_u64(),
                MappedFrame::Size1GiB(f) => f.start_address().as_u64(),
            };
            Some((base + offset, flags))
        }
        _ => None,
    }
}

/// Whether `va` is mapped in the kernel half, without taking the page-table lock: for
/// panic and hang reports, which run on a CPU that may have been stopped holding it (the
/// answer may be stale if another CPU is changing the tables at that moment).
pub fn mapped_for_report(va: u64) -> bool {
    let mut table = KERNEL_PML4_PHYS.load(core::sync::atomic::Ordering::Relaxed);
    if table == 0 {
        return false;
    }
    // PML4, PDPT, PD, PT: 9 index bits each from bit 39 down; bit 7 (PS) ends the walk at
    // a 1 GiB or 2 MiB page.
    for level in 0..4 {
        let index = (va >> (39 - 9 * level)) & 0x1ff;
        // SAFETY: `table` is a page-table frame (the kernel's PML4 or a frame an entry
        // points at), reachable through the linear map; a volatile read of one aligned
        // word, no reference is formed.
        let entry = unsafe {
            (phys_to_virt(table) as *const u64)
                .add(index as usize)
                .read_volatile()
        };
        if entry & 1 == 0 {
            return false;
        }
        if level == 3 || (level > 0 && entry & 0x80 != 0) {
            return true;
        }
        table = entry & 0x000f_ffff_ffff_f000;
    }
    true
}

/// A small sorted, merged list of ranges without a heap (boot time only).
mod alloc_free_ranges {
    pub struct Ranges {
        r: [(u64, u64); 64],
        n: usize,
    }
    impl Ranges {
        pub fn new() -> Self {
            Self {
                r: [(0, 0); 64],
                n: 0,
            }
        }
        pub fn add(&mut self, s: u64, e: u64) {
            if s >= e {
                return;
            }
            // merge with any overlapping/adjacent range
            let (mut s, mut e) = (s, e);
            let mut i = 0;
            while i < self.n {
                let (rs, re) = self.r[i];
                if s <= re && rs <= e {
                    s = s.min(rs);
                    e = e.max(re);
                    self.r[i] = self.r[self.n - 1];
                    self.n -= 1;
                } else {
                    i += 1;
                }
            }
            if self.n < self.r.len() {
                self.r[self.n] = (s, e);
                self.n += 1;
            }
        }
        pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
            self.r.iter().take(self.n).copied()
        }
    }
}
