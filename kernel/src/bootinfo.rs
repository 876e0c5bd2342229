//! What the boot loader told us. The Multiboot2 information structure stays where GRUB put
//! it (the frame allocator reserves it); it is read once through the boot identity map to
//! seed the frame allocator and once more through the linear map to fill [`BootInfo`].

use alloc::string::String;
use alloc::vec::Vec;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionKind {
    Usable,
    AcpiReclaimable,
    AcpiNvs,
    Reserved,
    Defective,
}

impl RegionKind {
    /// RAM the linear map covers (everything that is memory rather than a device hole).
    pub fn is_ram(self) -> bool {
        matches!(self, Self::Usable | Self::AcpiReclaimable | Self::AcpiNvs)
    }
}

#[derive(Clone, Copy, Debug)]
pub struct MemRegion {
    pub start: u64,
    pub end: u64,
    pub kind: RegionKind,
}

#[derive(Clone, Debug)]
pub struct Module {
    pub start: u64,
    pub end: u64,
    pub name: String,
}

#[derive(Debug, Default)]
pub struct BootInfo {
    pub regions: Vec<MemRegion>,
    pub modules: Vec<Module>,
    pub cmdline: String,
    pub rsdp: Option<u64>,
    pub loader: String,
}

impl BootInfo {
    pub fn ram_top(&self) -> u64 {
        ram_top(&self.regions)
    }
    pub fn usable_bytes(&self) -> u64 {
        self.regions
            .iter()
            .filter(|r| r.kind == RegionKind::Usable)
            .map(|r| r.end - r.start)
            .sum()
    }
    pub fn module(&self, name: &str) -> Option<&Module> {
        self.modules.iter().find(|m| m.name == name)
    }
}

pub fn ram_top(regions: &[MemRegion]) -> u64 {
    regions
        .iter()
        .filter(|r| r.kind.is_ram())
        .map(|r| r.end)
        .max()
        .unwrap_or(0)
}

#[cfg(target_os = "none")]
pub use mb2::*;

#[cfg(target_os = "none")]
mod mb2 {
    use super::*;
    use multiboot2::{BootInformation, BootInformationHeader, MemoryAreaType};

    /// Loads the Multiboot2 structure at `virt` (its physical address plus the current offset).
    ///
    /// # Safety
    /// `virt` must point at the structure GRUB handed over, mapped and not overwritten.
    pub unsafe fn load(virt: u64) -> Option<BootInformation<'static>> {
        // SAFETY: guaranteed by the caller.
        unsafe { BootInformation::load(virt as *const BootInformationHeader).ok() }
    }

    /// Calls `f` for each memory-map entry. Returns false if there is no memory map.
    pub fn for_each_region(mbi: &BootInformation<'_>, mut f: impl FnMut(MemRegion)) -> bool {
        let Some(tag) = mbi.memory_map_tag() else {
            return false;
        };
        for area in tag.memory_areas() {
            let kind = match area.typ() {
                MemoryAreaType::Available => RegionKind::Usable,
                MemoryAreaType::AcpiAvailable => RegionKind::AcpiReclaimable,
                MemoryAreaType::ReservedHibernate => RegionKind::AcpiNvs,
                MemoryAreaType::Defective => RegionKind::Defective,
                _ => RegionKind::Reserved,
            };
            f(MemRegion {
                start: area.start_address(),
                end: area.end_address(),
                kind,
            });
        }
        true
    }

    /// Calls `f(start, end)` for every physical range GRUB put data in that must survive:
    /// the information structure itself and every module.
    pub fn for_each_loader_range(mbi: &BootInformation<'_>, mut f: impl FnMut(u64, u64)) {
        f(mbi.start_address() as u64, mbi.end_address() as u64);
        for m in mbi.module_tags() {
            f(u64::from(m.start_address()), u64::from(m.end_address()));
        }
    }

    /// `offset` is what was added to physical addresses to reach `mbi` (the linear map).
    pub fn collect(mbi: &BootInformation<'_>, offset: u64) -> BootInfo {
        let mut info = BootInfo::default();
        for_each_region(mbi, |r| info.regions.push(r));
        info.regions.sort_by_key(|r| r.start);
        for m in mbi.module_tags() {
            info.modules.push(Module {
                start: u64::from(m.start_address()),
                end: u64::from(m.end_address()),
                name: String::from(m.cmdline().unwrap_or("")),
            });
        }
        if let Some(c) = mbi.command_line_tag() {
            info.cmdline = String::from(c.cmdline().unwrap_or(""));
        }
        if let Some(n) = mbi.boot_loader_name_tag() {
            info.loader = String::from(n.name().unwrap_or(""));
        }
        info.rsdp = mbi
            .rsdp_v2_tag()
            .map(|t| t as *const _ as *const u8 as u64 + 8 - offset)
            .or_else(|| {
                mbi.rsdp_v1_tag()
                    .map(|t| t as *const _ as *const u8 as u64 + 8 - offset)
            });
        info
    }
}
