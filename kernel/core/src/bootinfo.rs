//! What the boot loader told us, from either of the two ways AdrOS is started:
//!
//! - **Multiboot2** (GRUB, the ISO for real machines): the information structure GRUB built.
//! - **PVH** (QEMU's `-kernel`, the x86/HVM direct boot ABI): Xen's `hvm_start_info`
//!   (magic 0x336ec578) with the command line, the E820 memory map and a module list — QEMU
//!   passes the `-initrd` file as its one module. Since PVH carries only that one module, xtask
//!   packs the symbol table and the initrd into one *module bundle* ([`parse_bundle`]), which
//!   is split here into the same named modules GRUB's `module2` lines give.
//!
//! Either structure stays where the loader put it (the frame allocator reserves it: the
//! first MiB always, the modules explicitly); it is read once through the boot identity map
//! to seed the frame allocator and once more through the linear map to fill [`BootInfo`],
//! which is all the rest of the kernel sees.

use alloc::string::String;
use alloc::vec::Vec;

static BOOT_INFO: spin::Once<BootInfo> = spin::Once::new();
static CMDLINE: spin::Once<crate::cmdline::Cmdline> = spin::Once::new();

/// Keeps what the boot loader said and the parsed command line for the rest of the kernel's
/// life (once, at boot, by `boot::early` with what it read from the loader).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) fn keep(info: BootInfo) -> (&'static BootInfo, &'static crate::cmdline::Cmdline) {
    let info = BOOT_INFO.call_once(|| info);
    (
        info,
        CMDLINE.call_once(|| crate::cmdline::Cmdline::parse(&info.cmdline)),
    )
}

/// What the boot loader said (after [`keep`]).
pub fn info() -> &'static BootInfo {
    BOOT_INFO.get().expect("boot info not collected yet")
}

/// The contents of the boot module `name` (the initrd, the symbol table), if the loader
/// gave one.
#[cfg(target_os = "none")]
pub fn module_bytes(name: &str) -> Option<&'static [u8]> {
    let m = info().module(name)?;
    let len = usize::try_from(m.end.checked_sub(m.start)?).ok()?;
    // SAFETY: the kept boot information lists only what the loader loaded: RAM that the
    // frame allocator keeps reserved for good (the loader's ranges) and the linear map
    // covers; nothing ever writes it.
    Some(unsafe { core::slice::from_raw_parts(crate::mm::phys_to_virt(m.start) as *const u8, len) })
}

/// The parsed command line, if [`keep`] ran (the scheduler's tunables read it lazily).
pub fn try_cmdline() -> Option<&'static crate::cmdline::Cmdline> {
    CMDLINE.get()
}

/// The kernel command line (after [`keep`]).
pub fn cmdline() -> &'static crate::cmdline::Cmdline {
    CMDLINE.get().expect("command line not parsed yet")
}

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

/// `"ADROSMOD"`: the first bytes of a module bundle.
pub const BUNDLE_MAGIC: &[u8; 8] = b"ADROSMOD";
/// The bundle format version this kernel reads.
pub const BUNDLE_VERSION: u32 = 1;
/// Header: magic, version (u32 LE), entry count (u32 LE).
const BUNDLE_HEADER: usize = 16;
/// Entry: name (16 bytes, NUL-padded UTF-8), offset (u64 LE), length (u64 LE).
const BUNDLE_ENTRY: usize = 32;
const BUNDLE_MAX_ENTRIES: usize = 64;

/// One module of a bundle: its name and its byte range within the bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleEntry {
    pub name: String,
    pub offset: u64,
    pub len: u64,
}

/// Splits a module bundle (what `cargo xtask` passes as QEMU's `-initrd` on the PVH path):
/// `Ok(None)` when `bytes` is not a bundle (no magic: the whole module is one plain module),
/// `Ok(Some(entries))` for a well-formed one, `Err(why)` for a malformed one (bad version,
/// too many entries, a name that is not UTF-8, a range past the end).
///
/// ```text
/// 0   "ADROSMOD"   8 bytes
/// 8   version      u32 LE (1)
/// 12  count        u32 LE (at most 64)
/// 16  count × { name: 16 bytes NUL-padded, offset: u64 LE, length: u64 LE }
/// ... each module's bytes at its offset (xtask aligns them to 4 KiB)
/// ```
pub fn parse_bundle(bytes: &[u8]) -> Result<Option<Vec<BundleEntry>>, &'static str> {
    if bytes.len() < BUNDLE_MAGIC.len() || &bytes[..BUNDLE_MAGIC.len()] != BUNDLE_MAGIC {
        return Ok(None);
    }
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
    };
    let u64_at = |at: usize| -> Option<u64> {
        Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
    };
    let version = u32_at(8).ok_or("truncated header")?;
    if version != BUNDLE_VERSION {
        return Err("unknown bundle version");
    }
    let count = u32_at(12).ok_or("truncated header")? as usize;
    if count > BUNDLE_MAX_ENTRIES {
        return Err("too many modules");
    }
    let mut v = Vec::with_capacity(count);
    for i in 0..count {
        let at = BUNDLE_HEADER + i * BUNDLE_ENTRY;
        let raw = bytes.get(at..at + 16).ok_or("truncated entry table")?;
        let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        let name = core::str::from_utf8(&raw[..end]).map_err(|_| "a module name is not UTF-8")?;
        let offset = u64_at(at + 16).ok_or("truncated entry table")?;
        let len = u64_at(at + 24).ok_or("truncated entry table")?;
        let table_end = (BUNDLE_HEADER + count * BUNDLE_ENTRY) as u64;
        match offset.checked_add(len) {
            Some(e) if offset >= table_end && e <= bytes.len() as u64 => {}
            _ => return Err("a module lies outside the bundle"),
        }
        v.push(BundleEntry {
            name: String::from(name),
            offset,
            len,
        });
    }
    Ok(Some(v))
}

/// The E820 type of a PVH memory-map entry (`hvm_memmap_table_entry.type`) as a region kind.
pub fn e820_kind(t: u32) -> RegionKind {
    match t {
        1 => RegionKind::Usable,
        3 => RegionKind::AcpiReclaimable,
        4 => RegionKind::AcpiNvs,
        5 => RegionKind::Defective,
        _ => RegionKind::Reserved,
    }
}

#[cfg(all(target_os = "none", target_arch = "x86_64"))]
pub use loader::*;

#[cfg(all(target_os = "none", target_arch = "x86_64"))]
mod loader {
    use super::*;
    use multiboot2::{BootInformation, BootInformationHeader, MemoryAreaType};

    /// EAX from GRUB (and RDI to kmain) for Multiboot2.
    pub const MULTIBOOT2_MAGIC: u64 = 0x36d7_6289;
    /// What the boot stub's `pvh_start` passes to kmain, and `hvm_start_info.magic`.
    pub const PVH_MAGIC: u64 = 0x336e_c578;

    /// Xen's `struct hvm_start_info` (public/arch-x86/hvm/start_info.h), version 1.
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct HvmStartInfo {
        magic: u32,
        version: u32,
        flags: u32,
        nr_modules: u32,
        modlist_paddr: u64,
        cmdline_paddr: u64,
        rsdp_paddr: u64,
        memmap_paddr: u64,
        memmap_entries: u32,
        reserved: u32,
    }

    /// `struct hvm_modlist_entry`.
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct HvmModule {
        paddr: u64,
        size: u64,
        cmdline_paddr: u64,
        reserved: u64,
    }

    /// `struct hvm_memmap_table_entry`.
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct HvmMemmapEntry {
        addr: u64,
        size: u64,
        typ: u32,
        reserved: u32,
    }

    /// More entries than this are ignored (QEMU's PVH option ROM has at most 128).
    const PVH_MAX_MEMMAP: u32 = 256;
    const PVH_MAX_MODULES: u32 = 16;
    const PVH_MAX_CMDLINE: usize = 64 * 1024;

    /// The PVH start information, read through whatever map is current (`offset` is what is
    /// added to a physical address to reach it).
    pub struct Pvh {
        info: HvmStartInfo,
        offset: u64,
    }

    impl Pvh {
        fn read<T: Copy>(&self, paddr: u64) -> T {
            // SAFETY: `Pvh` is only made by `load`, whose caller guarantees that the loader's
            // structures (below 1 MiB for QEMU's option ROM) are mapped at paddr + offset.
            unsafe { core::ptr::read_unaligned((paddr + self.offset) as *const T) }
        }
        fn memmap(&self) -> impl Iterator<Item = HvmMemmapEntry> + '_ {
            let n = if self.info.version >= 1 && self.info.memmap_paddr != 0 {
                self.info.memmap_entries.min(PVH_MAX_MEMMAP)
            } else {
                0
            };
            (0..u64::from(n))
                .map(move |i| self.read::<HvmMemmapEntry>(self.info.memmap_paddr + i * 24))
        }
        fn modules(&self) -> impl Iterator<Item = HvmModule> + '_ {
            let n = if self.info.modlist_paddr != 0 {
                self.info.nr_modules.min(PVH_MAX_MODULES)
            } else {
                0
            };
            (0..u64::from(n)).map(move |i| self.read::<HvmModule>(self.info.modlist_paddr + i * 32))
        }
        /// The NUL-terminated string at `paddr` (empty for 0).
        fn c_string(&self, paddr: u64) -> String {
            if paddr == 0 {
                return String::new();
            }
            let mut bytes = Vec::new();
            while bytes.len() < PVH_MAX_CMDLINE {
                let b: u8 = self.read(paddr + bytes.len() as u64);
                if b == 0 {
                    break;
                }
                bytes.push(b);
            }
            String::from_utf8_lossy(&bytes).into_owned()
        }
    }

    /// What the boot stub was started by.
    pub enum Loader {
        Multiboot2(BootInformation<'static>),
        Pvh(Pvh),
    }

    /// Reads the loader's structure at physical `phys`, reached at `phys + offset`; `magic`
    /// says which protocol (the boot stub passes GRUB's EAX, or [`PVH_MAGIC`] from
    /// `pvh_start`). Err says what was wrong.
    ///
    /// # Safety
    /// The structure the loader handed over, and for PVH the memory map, module list and
    /// command line it points to, must be mapped at their physical address plus `offset`
    /// and not overwritten.
    pub unsafe fn load(magic: u64, phys: u64, offset: u64) -> Result<Loader, &'static str> {
        match magic {
            MULTIBOOT2_MAGIC => {
                // SAFETY: guaranteed by the caller.
                unsafe { BootInformation::load((phys + offset) as *const BootInformationHeader) }
                    .map(Loader::Multiboot2)
                    .map_err(|_| "the Multiboot2 information is malformed")
            }
            PVH_MAGIC => {
                if phys == 0 {
                    return Err("the PVH loader passed no hvm_start_info");
                }
                // SAFETY: guaranteed by the caller.
                let info =
                    unsafe { core::ptr::read_unaligned((phys + offset) as *const HvmStartInfo) };
                if u64::from(info.magic) != PVH_MAGIC {
                    crate::println!(
                        "boot: hvm_start_info at {phys:#x} has magic {:#x} (a command line longer than the PVH loader's buffer overwrites it)",
                        info.magic
                    );
                    return Err("the hvm_start_info magic is not 0x336ec578");
                }
                Ok(Loader::Pvh(Pvh { info, offset }))
            }
            _ => Err("not started by a Multiboot2 or PVH loader"),
        }
    }

    /// Calls `f` for each memory-map entry. Returns false if there is no memory map.
    pub fn for_each_region(l: &Loader, mut f: impl FnMut(MemRegion)) -> bool {
        let mbi = match l {
            Loader::Multiboot2(mbi) => mbi,
            Loader::Pvh(p) => {
                let mut any = false;
                for e in p.memmap() {
                    if e.size == 0 {
                        continue;
                    }
                    any = true;
                    f(MemRegion {
                        start: e.addr,
                        end: e.addr.saturating_add(e.size),
                        kind: e820_kind(e.typ),
                    });
                }
                return any;
            }
        };
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

    /// Calls `f(start, end)` for every physical range the loader put data in that must
    /// survive: the information structure itself and every module (PVH's own structures are
    /// below 1 MiB, which the frame allocator never hands out).
    pub fn for_each_loader_range(l: &Loader, mut f: impl FnMut(u64, u64)) {
        let mbi = match l {
            Loader::Multiboot2(mbi) => mbi,
            Loader::Pvh(p) => {
                for m in p.modules() {
                    f(m.paddr, m.paddr.saturating_add(m.size));
                }
                return;
            }
        };
        f(mbi.start_address() as u64, mbi.end_address() as u64);
        for m in mbi.module_tags() {
            f(u64::from(m.start_address()), u64::from(m.end_address()));
        }
    }

    /// `offset` is what was added to physical addresses to reach the structure (the linear
    /// map); it must also reach every module.
    pub fn collect(l: &Loader, offset: u64) -> BootInfo {
        let mut info = BootInfo::default();
        for_each_region(l, |r| info.regions.push(r));
        info.regions.sort_by_key(|r| r.start);
        let mbi = match l {
            Loader::Multiboot2(mbi) => mbi,
            Loader::Pvh(p) => {
                collect_pvh(p, offset, &mut info);
                return info;
            }
        };
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

    fn collect_pvh(p: &Pvh, offset: u64, info: &mut BootInfo) {
        info.loader = String::from("PVH direct boot");
        info.cmdline = p.c_string(p.info.cmdline_paddr);
        info.rsdp = (p.info.rsdp_paddr != 0).then_some(p.info.rsdp_paddr);
        for (i, m) in p.modules().enumerate() {
            let own_name = p.c_string(m.cmdline_paddr);
            let len = usize::try_from(m.size).unwrap_or(0);
            // SAFETY: the module is RAM the loader filled, reserved by the frame allocator
            // and reached through `offset` (guaranteed by `load`'s caller); only read.
            let bytes =
                unsafe { core::slice::from_raw_parts((m.paddr + offset) as *const u8, len) };
            match parse_bundle(bytes) {
                Ok(Some(entries)) => {
                    for e in entries {
                        info.modules.push(Module {
                            start: m.paddr + e.offset,
                            end: m.paddr + e.offset + e.len,
                            name: e.name,
                        });
                    }
                }
                Ok(None) => info.modules.push(Module {
                    start: m.paddr,
                    end: m.paddr + m.size,
                    // A plain `-initrd FILE`: the first module is the initrd, as for Linux.
                    name: if !own_name.is_empty() {
                        own_name
                    } else if i == 0 {
                        String::from("initrd")
                    } else {
                        alloc::format!("module{i}")
                    },
                }),
                Err(why) => crate::println!(
                    "boot: PVH module {i} at {:#x} ({} bytes) is a malformed module bundle ({why}); ignored",
                    m.paddr,
                    m.size
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(BUNDLE_MAGIC);
        v.extend_from_slice(&1u32.to_le_bytes());
        v.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        let mut off = (16 + 32 * entries.len()).next_multiple_of(4096) as u64;
        let mut data = Vec::new();
        for (name, bytes) in entries {
            let mut n = [0u8; 16];
            n[..name.len()].copy_from_slice(name.as_bytes());
            v.extend_from_slice(&n);
            v.extend_from_slice(&off.to_le_bytes());
            v.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            data.push((off, *bytes));
            off = (off + bytes.len() as u64).next_multiple_of(4096);
        }
        for (o, b) in data {
            v.resize(o as usize, 0);
            v.extend_from_slice(b);
        }
        v
    }

    #[test]
    fn a_bundle_splits_into_named_modules() {
        let b = bundle(&[
            ("symbols", b"ffff0000 T kmain\n"),
            ("initrd", b"\x04\x22\x4d\x18"),
        ]);
        let e = parse_bundle(&b).unwrap().unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].name, "symbols");
        assert_eq!(e[0].offset, 4096);
        assert_eq!(&b[4096..4096 + e[0].len as usize], b"ffff0000 T kmain\n");
        assert_eq!(e[1].name, "initrd");
        assert_eq!(e[1].offset, 8192);
        assert_eq!(e[1].len, 4);
    }

    #[test]
    fn a_plain_module_is_not_a_bundle() {
        assert_eq!(parse_bundle(b"\x04\x22\x4d\x18 lz4 frame"), Ok(None));
        assert_eq!(parse_bundle(b""), Ok(None));
    }

    #[test]
    fn malformed_bundles_are_refused() {
        let good = bundle(&[("initrd", b"abc")]);
        // Truncated: the module's bytes are cut off.
        assert!(parse_bundle(&good[..good.len() - 1]).is_err());
        // Truncated inside the entry table.
        assert!(parse_bundle(&good[..20]).is_err());
        let mut bad = good.clone();
        bad[8] = 2; // version
        assert!(parse_bundle(&bad).is_err());
        let mut bad = good.clone();
        bad[12..16].copy_from_slice(&1000u32.to_le_bytes());
        assert!(parse_bundle(&bad).is_err());
        let mut bad = good.clone();
        bad[16] = 0xff; // name not UTF-8
        assert!(parse_bundle(&bad).is_err());
        let mut bad = good.clone();
        // Offset pointing into the header, and an overflowing length.
        bad[32..40].copy_from_slice(&0u64.to_le_bytes());
        assert!(parse_bundle(&bad).is_err());
        let mut bad = good;
        bad[40..48].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(parse_bundle(&bad).is_err());
    }

    #[test]
    fn e820_types_map_to_region_kinds() {
        assert_eq!(e820_kind(1), RegionKind::Usable);
        assert_eq!(e820_kind(2), RegionKind::Reserved);
        assert_eq!(e820_kind(3), RegionKind::AcpiReclaimable);
        assert_eq!(e820_kind(4), RegionKind::AcpiNvs);
        assert_eq!(e820_kind(5), RegionKind::Defective);
        assert_eq!(e820_kind(7), RegionKind::Reserved);
    }
}
