//! User address spaces: a PML4 per process sharing the kernel half, VMAs, demand-zero
//! anonymous memory, copy-on-write after fork, and the user page-fault handler.
//!
//! File contents are copied into anonymous pages when a segment is loaded, so a page fault
//! never has to block on a file system and can be served under the address-space spinlock.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use super::phys::{self, phys_to_virt};
use crate::arch::upt::{self, COW, Entry, Flags as F, PROTNONE, table};
use crate::errno::{Errno, KResult};
use crate::sync::spin::IrqSpinLock;

pub const PAGE: u64 = 4096;
/// End of the user half (exclusive); the last page below it is never mapped.
pub const USER_TOP: u64 = 0x0000_7fff_ffff_f000;
pub const STACK_TOP: u64 = 0x0000_7fff_ffff_e000;
pub const STACK_SIZE: u64 = 8 << 20;
pub const MMAP_BASE: u64 = 0x0000_7f00_0000_0000;
// Page-table entries come from the arch layer (`arch::upt`): `COW` marks a copy-on-write
// page; `PROTNONE` a PROT_NONE page, whose frame stays allocated while the entry is not
// present, so every access faults (as Linux does on x86) and `handle_fault` refuses it
// because the VMA allows nothing.

pub const PROT_READ: u32 = 1;
pub const PROT_WRITE: u32 = 2;
pub const PROT_EXEC: u32 = 4;

/// What a shared file mapping maps (`mmap(MAP_SHARED)` of a regular file): the layer above
/// the core keeps the file's pages (one frame per page, shared by every mapper) and hands
/// them over with [`AddressSpace::install_frame`]; the core only keeps this with the VMA.
#[derive(Clone)]
pub struct FileBacking {
    /// The file's identity (device, inode number) as the layer above keys its pages.
    pub key: (u64, u64),
    /// File offset of an address = address + `base` (wrapping), so that splitting the VMA
    /// needs no adjustment.
    pub base: u64,
    /// The file was opened for writing: the mapping may be (or be made) writable.
    pub may_write: bool,
}

impl core::fmt::Debug for FileBacking {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "FileBacking(dev {:#x} ino {} base {:#x} may_write {})",
            self.key.0, self.key.1, self.base, self.may_write
        )
    }
}

#[derive(Clone, Debug)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    pub prot: u32,
    /// Shown in /proc/PID/maps ("[stack]", "[heap]", a path).
    pub name: alloc::string::String,
    /// MAP_SHARED|MAP_ANONYMOUS: every page is allocated up front and `fork` shares the
    /// frames writable instead of copy-on-write. Shared file mappings too.
    pub shared: bool,
    /// MAP_SHARED of a file: its pages are the file's cached pages.
    pub file: Option<FileBacking>,
}

impl Vma {
    fn pte_flags(&self) -> F {
        if self.prot & (PROT_READ | PROT_WRITE | PROT_EXEC) == 0 {
            return PROTNONE | F::USER_ACCESSIBLE | F::NO_EXECUTE;
        }
        let mut f = F::PRESENT | F::USER_ACCESSIBLE;
        if self.prot & PROT_WRITE != 0 {
            f |= F::WRITABLE;
        }
        if self.prot & PROT_EXEC == 0 {
            f |= F::NO_EXECUTE;
        }
        f
    }
}

/// The pages of a loaded executable image kept for reuse (`proc::imgcache`): its VMAs and
/// its present frames, each frame with one owner held by this value (released on drop).
pub struct ImagePages {
    vmas: Vec<Vma>,
    /// (virtual address, frame, PTE flags of the VMA).
    pages: Vec<(u64, u64, F)>,
}

impl ImagePages {
    /// Frames held.
    pub fn len(&self) -> usize {
        self.pages.len()
    }
    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }
}

impl Drop for ImagePages {
    fn drop(&mut self) {
        for &(_, f, _) in &self.pages {
            release(f);
        }
    }
}

struct Inner {
    vmas: BTreeMap<u64, Vma>,
    brk_start: u64,
    brk: u64,
    mmap_hint: u64,
}

pub struct AddressSpace {
    pml4: u64,
    inner: IrqSpinLock<Inner>,
}

/// Finds (optionally creating) the PTE for `va`.
fn pte(pml4: u64, va: u64, create: bool) -> KResult<Option<&'static mut Entry>> {
    let idx = [
        (va >> 39) & 511,
        (va >> 30) & 511,
        (va >> 21) & 511,
        (va >> 12) & 511,
    ];
    let mut t = table(pml4);
    for &i in &idx[..3] {
        let e = &mut t[i as usize];
        if e.is_unused() {
            if !create {
                return Ok(None);
            }
            let f = phys::alloc_frame().ok_or(Errno::ENOMEM)?;
            e.set_table(f);
        }
        if e.is_huge() {
            return Err(Errno::EFAULT);
        }
        t = table(e.addr());
    }
    Ok(Some(&mut t[idx[3] as usize]))
}

/// Extra owners of every frame (0 = one owner), indexed by frame number: frames shared
/// copy-on-write by `fork` and by the executable image cache. One atomic counter per frame
/// (4 bytes per 4 KiB, allocated on first use) rather than a map under one lock: `fork` and
/// `execve` share and release hundreds of frames each.
static REFS: spin::Once<(u64, usize)> = spin::Once::new();

fn refcount(frame: u64) -> Option<&'static AtomicU32> {
    let &(pa, n) = REFS.call_once(|| {
        let (_, total) = phys::stats();
        let pages = (total * 4).div_ceil(PAGE as usize);
        let pa = phys::alloc_contig(pages, PAGE, u64::MAX)
            .expect("memory for the frame reference counts");
        (pa, total)
    });
    // SAFETY: `n` zero-initialised AtomicU32s live in frames allocated for them above and
    // never freed, reached through the linear map.
    let all = unsafe { core::slice::from_raw_parts(phys_to_virt(pa) as *const AtomicU32, n) };
    all.get((frame / PAGE) as usize)
}

/// The first page at or after `va` (and below `end`; else `end`) whose last-level page table
/// exists: whole unpopulated 512 GiB, 1 GiB and 2 MiB ranges are skipped, so walking a huge,
/// mostly empty range (`munmap(p, 1 << 46)`, a sparse VMA) costs per populated table rather
/// than per page — with the address-space lock held and interrupts off.
fn next_populated(pml4: u64, mut va: u64, end: u64) -> u64 {
    'walk: while va < end {
        let mut t = table(pml4);
        for shift in [39u32, 30, 21] {
            let e = &t[((va >> shift) & 511) as usize];
            if e.is_unused() || e.is_huge() {
                let span = 1u64 << shift;
                va = match (va & !(span - 1)).checked_add(span) {
                    Some(n) => n,
                    None => return end,
                };
                continue 'walk;
            }
            t = table(e.addr());
        }
        return va;
    }
    end
}

fn share(frame: u64) {
    match refcount(frame) {
        Some(r) => {
            r.fetch_add(1, Ordering::AcqRel);
        }
        None => log::error!("uspace: frame {frame:#x} outside the frame allocator"),
    }
}

/// Drops one owner of `frame`; frees it when none remain.
fn release(frame: u64) {
    let Some(r) = refcount(frame) else {
        return;
    };
    // Only an owner shares a frame, so once the count is 0 the caller is the last one.
    if r.fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| c.checked_sub(1))
        .is_err()
    {
        phys::free_frame(frame);
    }
}

fn owners(frame: u64) -> u32 {
    refcount(frame).map_or(1, |r| r.load(Ordering::Acquire) + 1)
}

/// Adds an owner to `frame` (a page the layer above caches and hands to several address
/// spaces: shared file mappings).
pub fn frame_share(frame: u64) {
    share(frame);
}

/// Drops one owner of `frame` (freed with the last).
pub fn frame_release(frame: u64) {
    release(frame);
}

/// How many owners `frame` has (mappings and caches holding it).
pub fn frame_owners(frame: u64) -> u32 {
    owners(frame)
}

/// A new zeroed frame with one owner, for a cache of file pages.
pub fn frame_alloc() -> KResult<u64> {
    phys::alloc_frame().ok_or(Errno::ENOMEM)
}

/// Copies `buf.len()` bytes from `frame` at `off` (within the page).
pub fn frame_read(frame: u64, off: usize, buf: &mut [u8]) {
    assert!(off + buf.len() <= PAGE as usize, "frame_read past the page");
    // SAFETY: the caller owns `frame` (an ownership taken with `frame_share` or
    // `frame_alloc`), a whole page reached through the linear map; user stores to it at the
    // same time are byte races on shared memory, as with any shared mapping.
    unsafe {
        core::ptr::copy_nonoverlapping(
            (phys_to_virt(frame) as *const u8).add(off),
            buf.as_mut_ptr(),
            buf.len(),
        );
    }
}

/// Copies `data` into `frame` at `off` (within the page).
pub fn frame_write(frame: u64, off: usize, data: &[u8]) {
    assert!(
        off + data.len() <= PAGE as usize,
        "frame_write past the page"
    );
    // SAFETY: as in `frame_read`.
    unsafe {
        core::ptr::copy_nonoverlapping(
            data.as_ptr(),
            (phys_to_virt(frame) as *mut u8).add(off),
            data.len(),
        );
    }
}

fn flush(va: u64) {
    crate::arch::tlb::shootdown(va);
}

impl AddressSpace {
    /// An empty user half sharing the kernel half.
    pub fn new() -> KResult<Self> {
        let pml4 = phys::alloc_frame().ok_or(Errno::ENOMEM)?;
        upt::init_root(pml4);
        Ok(Self {
            pml4,
            inner: IrqSpinLock::new(Inner {
                vmas: BTreeMap::new(),
                brk_start: 0,
                brk: 0,
                mmap_hint: MMAP_BASE,
            }),
        })
    }

    pub fn pml4(&self) -> u64 {
        self.pml4
    }

    /// Loads this address space on the current CPU (the caller keeps it alive while it is
    /// loaded, e.g. through the thread's `cr3` and the process).
    pub fn activate(&self) {
        upt::activate(self.pml4);
    }

    /// Adds a VMA for `[start, end)`, replacing whatever was mapped there.
    pub fn map_anon(&self, start: u64, end: u64, prot: u32, name: &str) -> KResult<()> {
        if !start.is_multiple_of(PAGE) || end <= start || end > USER_TOP {
            return Err(Errno::EINVAL);
        }
        self.unmap(start, end)?;
        self.inner.lock().vmas.insert(
            start,
            Vma {
                start,
                end,
                prot,
                name: alloc::string::String::from(name),
                shared: false,
                file: None,
            },
        );
        Ok(())
    }

    /// Adds a VMA over an unmapped range (the ELF loader; no existing pages are dropped).
    pub fn map_anon_keep(&self, start: u64, end: u64, prot: u32, name: &str) -> KResult<()> {
        if !start.is_multiple_of(PAGE) || end <= start || end > USER_TOP {
            return Err(Errno::EINVAL);
        }
        self.inner.lock().vmas.insert(
            start,
            Vma {
                start,
                end,
                prot,
                name: alloc::string::String::from(name),
                shared: false,
                file: None,
            },
        );
        Ok(())
    }

    /// ORs `prot` into the VMAs covering `[start, end)` (segments sharing an edge page).
    pub fn add_prot(&self, start: u64, end: u64, prot: u32) {
        let mut g = self.inner.lock();
        for v in g
            .vmas
            .values_mut()
            .filter(|v| v.start < end && v.end > start)
        {
            v.prot |= prot;
        }
    }

    /// Removes mappings in `[start, end)`, splitting VMAs at the edges. The page tables are
    /// cleared (and every TLB flushed) before the lock is released, so a thread that maps
    /// the freed range right away can never fault in one of the old frames.
    pub fn unmap(&self, start: u64, end: u64) -> KResult<()> {
        if !start.is_multiple_of(PAGE) || end < start || end > USER_TOP {
            return Err(Errno::EINVAL);
        }
        let mut g = self.inner.lock();
        let overlapping: Vec<u64> = g
            .vmas
            .range(..end)
            .filter(|(_, v)| v.end > start)
            .map(|(&k, _)| k)
            .collect();
        for k in overlapping {
            let Some(v) = g.vmas.remove(&k) else { continue };
            if v.start < start {
                g.vmas.insert(
                    v.start,
                    Vma {
                        end: start,
                        ..v.clone()
                    },
                );
            }
            if v.end > end {
                g.vmas.insert(
                    end,
                    Vma {
                        start: end,
                        ..v.clone()
                    },
                );
            }
        }
        let mut freed: Vec<u64> = Vec::new();
        let mut va = start;
        while va < end {
            va = next_populated(self.pml4, va, end);
            if va >= end {
                break;
            }
            if let Ok(Some(e)) = pte(self.pml4, va, false)
                && !e.is_unused()
            {
                freed.push(e.addr());
                e.set_unused();
            }
            va += PAGE;
        }
        if !freed.is_empty() {
            // One shootdown for the whole range (other CPUs spinning on this lock answer it).
            if end - start <= 32 * PAGE {
                let mut va = start;
                while va < end {
                    flush(va);
                    va += PAGE;
                }
            } else {
                flush(u64::MAX);
            }
        }
        drop(g);
        for f in freed {
            release(f);
        }
        Ok(())
    }

    /// Changes protection of `[start, end)` (whole pages; VMAs split as needed).
    pub fn protect(&self, start: u64, end: u64, prot: u32) -> KResult<()> {
        if !start.is_multiple_of(PAGE) || end < start || end > USER_TOP {
            return Err(Errno::EINVAL);
        }
        let mut g = self.inner.lock();
        let keys: Vec<u64> = g
            .vmas
            .range(..end)
            .filter(|(_, v)| v.end > start)
            .map(|(&k, _)| k)
            .collect();
        let covered: u64 = keys
            .iter()
            .filter_map(|k| g.vmas.get(k))
            .map(|v| v.end.min(end) - v.start.max(start))
            .sum();
        if covered != end - start {
            return Err(Errno::ENOMEM);
        }
        // A shared mapping of a file opened read-only never becomes writable.
        if prot & PROT_WRITE != 0
            && keys
                .iter()
                .filter_map(|k| g.vmas.get(k))
                .any(|v| v.file.as_ref().is_some_and(|f| !f.may_write))
        {
            return Err(Errno::EACCES);
        }
        for k in keys {
            let Some(v) = g.vmas.remove(&k) else { continue };
            if v.start < start {
                g.vmas.insert(
                    v.start,
                    Vma {
                        end: start,
                        ..v.clone()
                    },
                );
            }
            if v.end > end {
                g.vmas.insert(
                    end,
                    Vma {
                        start: end,
                        ..v.clone()
                    },
                );
            }
            let mid = Vma {
                start: v.start.max(start),
                end: v.end.min(end),
                prot,
                ..v.clone()
            };
            let flags = mid.pte_flags();
            let mut va = mid.start;
            while va < mid.end {
                va = next_populated(self.pml4, va, mid.end);
                if va >= mid.end {
                    break;
                }
                if let Ok(Some(e)) = pte(self.pml4, va, false)
                    && !e.is_unused()
                {
                    let cow = e.flags().contains(COW);
                    let mut f = flags;
                    if cow {
                        f = (f - F::WRITABLE) | COW;
                    }
                    let addr = e.addr();
                    e.set(addr, f);
                    flush(va);
                }
                va += PAGE;
            }
            g.vmas.insert(mid.start, mid);
        }
        Ok(())
    }

    /// Finds a free range and claims it with a new VMA in one step, so two threads mapping
    /// at once can never be handed the same range.
    pub fn map_anon_free(&self, len: u64, prot: u32, name: &str) -> KResult<u64> {
        let mut g = self.inner.lock();
        let start = Self::free_range(&g, len)?;
        g.vmas.insert(
            start,
            Vma {
                start,
                end: start + len,
                prot,
                name: alloc::string::String::from(name),
                shared: false,
                file: None,
            },
        );
        Ok(start)
    }

    /// The VMA that is exactly `[start, end)` (EINVAL if there is none).
    fn vma_exact(g: &mut Inner, start: u64, end: u64) -> KResult<&mut Vma> {
        g.vmas
            .get_mut(&start)
            .filter(|v| v.end == end)
            .ok_or(Errno::EINVAL)
    }

    /// Makes the VMA `[start, end)` a shared mapping of a file: `fork` shares its frames, and
    /// the caller puts the file's pages in with [`AddressSpace::install_frame`].
    pub fn set_file(&self, start: u64, end: u64, backing: FileBacking) -> KResult<()> {
        let mut g = self.inner.lock();
        let v = Self::vma_exact(&mut g, start, end)?;
        v.shared = true;
        v.file = Some(backing);
        Ok(())
    }

    /// Puts `frame` at `va`, inside a VMA, with the VMA's permissions; the caller hands over
    /// one ownership of the frame (see [`frame_share`]). Whatever was mapped there is
    /// released.
    pub fn install_frame(&self, va: u64, frame: u64) -> KResult<()> {
        let g = self.inner.lock();
        let Some(flags) = g
            .vmas
            .range(..=va)
            .next_back()
            .map(|(_, v)| v)
            .filter(|v| va < v.end)
            .map(Vma::pte_flags)
        else {
            drop(g);
            release(frame);
            return Err(Errno::EFAULT);
        };
        let e = match pte(self.pml4, va & !(PAGE - 1), true) {
            Ok(Some(e)) => e,
            _ => {
                drop(g);
                release(frame);
                return Err(Errno::ENOMEM);
            }
        };
        let old = (!e.is_unused()).then(|| e.addr());
        e.set(frame, flags);
        if old.is_some() {
            flush(va & !(PAGE - 1));
        }
        drop(g);
        if let Some(o) = old {
            release(o);
        }
        Ok(())
    }

    /// Makes the VMA starting at `start` (ending at `end`) shared: its pages are allocated
    /// now, zeroed, and `fork` shares them with the child instead of copying on write.
    pub fn share_range(&self, start: u64, end: u64) -> KResult<()> {
        let mut g = self.inner.lock();
        let v = Self::vma_exact(&mut g, start, end)?;
        v.shared = true;
        let flags = v.pte_flags();
        let mut va = start;
        while va < end {
            let e = pte(self.pml4, va, true)?.ok_or(Errno::ENOMEM)?;
            if e.is_unused() {
                let f = phys::alloc_frame().ok_or(Errno::ENOMEM)?;
                e.set(f, flags);
            }
            va += PAGE;
        }
        Ok(())
    }

    /// A free range of `len` bytes (top-down from the mmap hint).
    fn free_range(g: &Inner, len: u64) -> KResult<u64> {
        let mut top = g.mmap_hint;
        loop {
            let start = top.checked_sub(len).ok_or(Errno::ENOMEM)? & !(PAGE - 1);
            if start < 0x1_0000_0000 {
                return Err(Errno::ENOMEM);
            }
            match g
                .vmas
                .range(..start + len)
                .rev()
                .find(|(_, v)| v.end > start)
            {
                None => return Ok(start),
                Some((_, v)) => top = v.start,
            }
        }
    }

    pub fn set_brk_start(&self, at: u64) {
        let mut g = self.inner.lock();
        g.brk_start = at;
        g.brk = at;
    }

    /// `brk(2)`: returns the (possibly unchanged) break.
    pub fn brk(&self, want: u64) -> u64 {
        let (start, cur) = {
            let g = self.inner.lock();
            (g.brk_start, g.brk)
        };
        if want < start || want > start + (1 << 34) {
            return cur;
        }
        let old_end = cur.next_multiple_of(PAGE);
        let new_end = want.next_multiple_of(PAGE);
        if new_end > old_end {
            let clash = self
                .inner
                .lock()
                .vmas
                .range(..new_end)
                .any(|(_, v)| v.end > old_end && v.start < new_end && v.name != "[heap]");
            if clash {
                return cur;
            }
            // Extend (or create) the heap VMA.
            let mut g = self.inner.lock();
            let heap = g
                .vmas
                .values()
                .find(|v| v.name == "[heap]")
                .map(|v| v.start);
            match heap {
                Some(s) => {
                    if let Some(v) = g.vmas.get_mut(&s) {
                        v.end = new_end;
                    }
                }
                None => {
                    g.vmas.insert(
                        start,
                        Vma {
                            start,
                            end: new_end,
                            prot: PROT_READ | PROT_WRITE,
                            name: "[heap]".into(),
                            shared: false,
                            file: None,
                        },
                    );
                }
            }
        } else if new_end < old_end && self.unmap(new_end, old_end).is_ok() && new_end > start {
            let mut g = self.inner.lock();
            g.vmas.insert(
                start,
                Vma {
                    start,
                    end: new_end,
                    prot: PROT_READ | PROT_WRITE,
                    name: "[heap]".into(),
                    shared: false,
                    file: None,
                },
            );
        }
        self.inner.lock().brk = want;
        want
    }

    /// Resolves a fault at `va`. Ok if the access may now be retried.
    pub fn handle_fault(&self, va: u64, write: bool, exec: bool) -> KResult<()> {
        let _g = self.inner.lock();
        let vma = _g
            .vmas
            .range(..=va)
            .next_back()
            .map(|(_, v)| v)
            .filter(|v| va < v.end)
            .ok_or(Errno::EFAULT)?;
        if (write && vma.prot & PROT_WRITE == 0)
            || (exec && vma.prot & PROT_EXEC == 0)
            || vma.prot == 0
        {
            return Err(Errno::EFAULT);
        }
        let page = va & !(PAGE - 1);
        let flags = vma.pte_flags();
        let e = pte(self.pml4, page, true)?.ok_or(Errno::EFAULT)?;
        if e.is_unused() {
            let f = phys::alloc_frame().ok_or(Errno::ENOMEM)?;
            e.set(f, flags);
            return Ok(());
        }
        if write && e.flags().contains(COW) {
            let old = e.addr();
            if owners(old) > 1 {
                let new = phys::alloc_frame().ok_or(Errno::ENOMEM)?;
                // SAFETY: both frames are in the linear map; `new` is ours, `old` is only read.
                unsafe {
                    core::ptr::copy_nonoverlapping(
                        phys_to_virt(old) as *const u8,
                        phys_to_virt(new) as *mut u8,
                        PAGE as usize,
                    );
                }
                e.set(new, flags);
                release(old);
            } else {
                e.set(old, flags);
            }
            flush(page);
            return Ok(());
        }
        // Present and allowed by the VMA: bring the PTE up to the VMA's permissions (a
        // segment widened after its page was first mapped), or it was a stale TLB entry.
        let addr = e.addr();
        e.set(addr, flags);
        flush(page);
        Ok(())
    }

    /// Copies `data` into the address space at `va` (pages must be inside writable-or-not
    /// VMAs; used by the ELF loader before the process runs). Faults pages in as needed.
    pub fn write_bytes(&self, va: u64, data: &[u8]) -> KResult<()> {
        let mut off = 0usize;
        while off < data.len() {
            let a = va + off as u64;
            let page = a & !(PAGE - 1);
            let frame = self.frame_for(page)?;
            let in_page = (a - page) as usize;
            let n = (PAGE as usize - in_page).min(data.len() - off);
            // SAFETY: `frame` is a present user frame of this address space, reached through
            // the linear map; the range stays inside it.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    data.as_ptr().add(off),
                    (phys_to_virt(frame) as *mut u8).add(in_page),
                    n,
                );
            }
            off += n;
        }
        Ok(())
    }

    /// The frame backing `page`, faulting it in (for writing) if needed.
    fn frame_for(&self, page: u64) -> KResult<u64> {
        {
            let _g = self.inner.lock();
            if let Ok(Some(e)) = pte(self.pml4, page, false)
                && !e.is_unused()
                && !e.flags().contains(COW)
            {
                return Ok(e.addr());
            }
        }
        // Not present (or shared): resolve as a write fault, ignoring VMA write permission.
        let _g = self.inner.lock();
        _g.vmas
            .range(..=page)
            .next_back()
            .filter(|(_, v)| page < v.end)
            .ok_or(Errno::EFAULT)?;
        let e = pte(self.pml4, page, true)?.ok_or(Errno::EFAULT)?;
        if e.is_unused() {
            let f = phys::alloc_frame().ok_or(Errno::ENOMEM)?;
            let vma = _g
                .vmas
                .range(..=page)
                .next_back()
                .map(|(_, v)| v.clone())
                .ok_or(Errno::EFAULT)?;
            e.set(f, vma.pte_flags());
            return Ok(f);
        }
        drop(_g);
        self.handle_fault(page, true, false).or_else(|_| {
            // Read-only VMA holding a COW page: break the sharing by hand.
            let _g = self.inner.lock();
            let e = pte(self.pml4, page, false)?.ok_or(Errno::EFAULT)?;
            let old = e.addr();
            let new = phys::alloc_frame().ok_or(Errno::ENOMEM)?;
            // SAFETY: as in handle_fault.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    phys_to_virt(old) as *const u8,
                    phys_to_virt(new) as *mut u8,
                    PAGE as usize,
                )
            };
            let fl = (e.flags() - COW) - F::WRITABLE;
            e.set(new, fl);
            release(old);
            flush(page);
            Ok(())
        })?;
        let _g = self.inner.lock();
        Ok(pte(self.pml4, page, false)?.ok_or(Errno::EFAULT)?.addr())
    }

    /// Takes every VMA and present page out of this (scratch) address space, which the
    /// caller then drops: the frames' ownership moves to the returned value.
    pub fn take_image(&self) -> KResult<ImagePages> {
        let mut g = self.inner.lock();
        let vmas: Vec<Vma> = g.vmas.values().cloned().collect();
        let mut pages = Vec::new();
        for v in &vmas {
            let flags = v.pte_flags();
            let mut va = v.start;
            while va < v.end {
                if let Ok(Some(e)) = pte(self.pml4, va, false)
                    && !e.is_unused()
                {
                    pages.push((va, e.addr(), flags));
                    e.set_unused();
                }
                va += PAGE;
            }
        }
        g.vmas.clear();
        Ok(ImagePages { vmas, pages })
    }

    /// Maps a cached image: its VMAs, and its frames shared copy-on-write (read-only in the
    /// page tables whatever the VMA allows, as after `fork`), each gaining an owner. The
    /// range must be unmapped (a fresh address space being built by `execve`).
    pub fn map_image(&self, img: &ImagePages) -> KResult<()> {
        let mut g = self.inner.lock();
        if img.vmas.iter().any(|n| {
            g.vmas
                .range(..n.end)
                .next_back()
                .is_some_and(|(_, v)| v.end > n.start)
        }) {
            return Err(Errno::EEXIST);
        }
        for &(va, frame, flags) in &img.pages {
            let e = pte(self.pml4, va, true)?.ok_or(Errno::ENOMEM)?;
            share(frame);
            let fl = if flags.contains(F::PRESENT) {
                (flags - F::WRITABLE) | COW
            } else {
                flags | COW
            };
            e.set(frame, fl);
        }
        for v in &img.vmas {
            g.vmas.insert(v.start, v.clone());
        }
        Ok(())
    }

    /// Maps `frame` — a kernel-owned page that stays allocated, such as the vDSO's clock
    /// page — read-only at `va` as VMA `name`; the mapping is one more owner of the frame (and
    /// copy-on-write, should the process make it writable with `mprotect`). The page must
    /// be unmapped (a fresh address space being built by `execve`).
    pub fn map_kernel_frame(&self, va: u64, frame: u64, name: &str) -> KResult<()> {
        if !va.is_multiple_of(PAGE) || va >= USER_TOP {
            return Err(Errno::EINVAL);
        }
        let mut g = self.inner.lock();
        if g.vmas
            .range(..va + PAGE)
            .next_back()
            .is_some_and(|(_, v)| v.end > va)
        {
            return Err(Errno::EEXIST);
        }
        let e = pte(self.pml4, va, true)?.ok_or(Errno::ENOMEM)?;
        share(frame);
        e.set(frame, F::PRESENT | F::USER_ACCESSIBLE | F::NO_EXECUTE | COW);
        g.vmas.insert(
            va,
            Vma {
                start: va,
                end: va + PAGE,
                prot: PROT_READ,
                name: alloc::string::String::from(name),
                shared: false,
                file: None,
            },
        );
        Ok(())
    }

    /// A copy-on-write duplicate (fork).
    pub fn fork(&self) -> KResult<AddressSpace> {
        let child = AddressSpace::new()?;
        let g = self.inner.lock();
        for v in g.vmas.values() {
            let mut va = v.start;
            while va < v.end {
                va = next_populated(self.pml4, va, v.end);
                if va >= v.end {
                    break;
                }
                if let Ok(Some(e)) = pte(self.pml4, va, false)
                    && !e.is_unused()
                {
                    let frame = e.addr();
                    let mut fl = e.flags();
                    if v.shared {
                        // Shared memory stays shared: same frame, same permissions.
                    } else {
                        // Read-only and PROT_NONE pages too: a later mprotect must
                        // not make a frame writable that the other process still sees.
                        fl = (fl - F::WRITABLE) | COW;
                        e.set_flags(fl);
                    }
                    share(frame);
                    let ce = pte(child.pml4, va, true)?.ok_or(Errno::ENOMEM)?;
                    ce.set(frame, fl);
                }
                va += PAGE;
            }
        }
        {
            let mut cg = child.inner.lock();
            cg.vmas = g.vmas.clone();
            cg.brk_start = g.brk_start;
            cg.brk = g.brk;
            cg.mmap_hint = g.mmap_hint;
        }
        drop(g);
        // The parent's pages just became read-only: drop stale writable TLB entries.
        crate::arch::tlb::shootdown(u64::MAX);
        Ok(child)
    }

    /// True if a VMA covers `va` (a fault there is SEGV_ACCERR, not SEGV_MAPERR).
    pub fn mapped(&self, va: u64) -> bool {
        let g = self.inner.lock();
        g.vmas
            .range(..=va)
            .next_back()
            .is_some_and(|(_, v)| va < v.end)
    }

    /// MADV_DONTNEED: drops the pages of private anonymous VMAs in `[start, end)`, so the
    /// next access finds a fresh zero page. Shared and file-backed pages are kept (their
    /// contents live elsewhere on Linux; here they stay as they are). ENOMEM if part of the
    /// range is unmapped, EINVAL for locked-in pages Linux refuses (none here).
    pub fn discard(&self, start: u64, end: u64) -> KResult<()> {
        if !start.is_multiple_of(PAGE) || end < start || end > USER_TOP {
            return Err(Errno::EINVAL);
        }
        let g = self.inner.lock();
        let vs: Vec<Vma> = g
            .vmas
            .range(..end)
            .filter(|(_, v)| v.end > start)
            .map(|(_, v)| v.clone())
            .collect();
        let covered: u64 = vs.iter().map(|v| v.end.min(end) - v.start.max(start)).sum();
        if covered != end - start {
            return Err(Errno::ENOMEM);
        }
        let mut freed: Vec<u64> = Vec::new();
        for v in vs.iter().filter(|v| !v.shared && v.name != "file") {
            let mut va = v.start.max(start);
            let stop = v.end.min(end);
            while va < stop {
                va = next_populated(self.pml4, va, stop);
                if va >= stop {
                    break;
                }
                if let Ok(Some(e)) = pte(self.pml4, va, false)
                    && !e.is_unused()
                {
                    freed.push(e.addr());
                    e.set_unused();
                    flush(va);
                }
                va += PAGE;
            }
        }
        drop(g);
        for f in freed {
            release(f);
        }
        Ok(())
    }

    pub fn vmas(&self) -> Vec<Vma> {
        self.inner.lock().vmas.values().cloned().collect()
    }

    /// Checks that `[va, va+len)` lies in VMAs allowing `write` (for syscall argument checks).
    pub fn check_range(&self, va: u64, len: u64, write: bool) -> bool {
        let Some(end) = va.checked_add(len) else {
            return false;
        };
        if end > USER_TOP {
            return false;
        }
        let g = self.inner.lock();
        let mut at = va;
        while at < end {
            match g
                .vmas
                .range(..=at)
                .next_back()
                .map(|(_, v)| v)
                .filter(|v| at < v.end)
            {
                Some(v) if v.prot & PROT_READ != 0 && (!write || v.prot & PROT_WRITE != 0) => {
                    at = v.end
                }
                _ => return false,
            }
        }
        true
    }
}

impl Drop for AddressSpace {
    fn drop(&mut self) {
        // Free every user frame and user page-table frame (the root's user entries).
        let live = |e: &&Entry| !e.is_unused();
        let root = table(self.pml4);
        for e1 in root[..upt::USER_ROOT_ENTRIES].iter().filter(live) {
            let pdpt_pa = e1.addr();
            for e2 in table(pdpt_pa).iter().filter(live) {
                let pd_pa = e2.addr();
                for e3 in table(pd_pa).iter().filter(live) {
                    let pt_pa = e3.addr();
                    for e4 in table(pt_pa).iter().filter(live) {
                        release(e4.addr());
                    }
                    phys::free_frame(pt_pa);
                }
                phys::free_frame(pd_pa);
            }
            phys::free_frame(pdpt_pa);
        }
        phys::free_frame(self.pml4);
    }
}
