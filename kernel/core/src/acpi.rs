//! ACPI: MADT (CPUs, IOAPICs, interrupt overrides, NMI wiring), HPET, MCFG, FADT (power
//! off, RTC century) and PCI interrupt routing.
//!
//! The `acpi` crate (5.2, no `alloc`: it builds on stable) finds and checksums the tables;
//! their bodies are decoded by the host-tested, bounds-checked parsers in
//! `crate::firmware`. Missing or malformed tables never panic: each absence is logged with
//! its fallback (no MADT → one CPU and identity ISA IRQs; no HPET → the PIT calibrates the
//! clocks; no FADT/`_S5_` → power off by QEMU's exit device).
//!
//! **PCI interrupt routing is not read from AML.** Interpreting `_PRT` (and the link
//! devices' `_CRS`) needs an AML interpreter; the `aml` crate (0.16) needs nightly Rust
//! (`#![feature(decl_macro)]`) and `acpi` 6.x, which absorbed it, does too. Instead
//! [`pci_route_irq`] implements the `_PRT` of QEMU's own DSDTs, recognised by their host
//! bridge *and* their link device names in the DSDT:
//! - q35 (ICH9, host bridge 8086:29c0, links `GSIA`..`GSIH`): the root bus's APIC-mode
//!   table `PRTA` — PIRQ A-H are hard-wired to GSI 16-23, level-triggered, active-high
//!   (see `firmware::q35_bus0_gsi`);
//! - i440fx (PIIX3, host bridge 8086:1237, links `LNKA`..`LNKD`, `LNKS`): slot/pin → link,
//!   and the link's ISA IRQ from the PIIX PIRQ route registers (00:01.0, 0x60-0x63) that
//!   the firmware programmed, mapped to a GSI through the MADT overrides.
//!
//! On any other platform it returns `None` (and says so once in the log). As with a real
//! `_PRT`, only the root bus is answered: functions behind bridges are resolved by the
//! caller swizzling up to the root bus (`adros_pci::route_irq`).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::ptr::NonNull;

use acpi::fadt::Fadt;
use acpi::hpet::HpetTable;
use acpi::madt::Madt as MadtTable;
use acpi::mcfg::Mcfg;
use acpi::{AcpiHandler, AcpiTable, AcpiTables, PhysicalMapping};

use crate::arch::acpi_io::{self, Register, Space};
use crate::firmware::{self, Chipset};
use crate::mm::mmio::{self, Cache};

pub use crate::firmware::{
    AcpiCpu, HpetEntry, InterruptOverride, IoApicEntry, LocalNmi, McfgRegion, NmiSource,
};

/// Highest physical address the MMIO window can map (see `mm::layout`).
const MMIO_WINDOW: u64 = 1 << 44;
const MAX_TABLE_LEN: u64 = 64 << 20;

/// Backs mappings of physical addresses that cannot be mapped: reads as zeros, so the crate
/// sees an invalid signature and skips the table instead of us panicking.
#[repr(C, align(4096))]
struct ZeroPage([u8; 4096]);
static ZERO_PAGE: ZeroPage = ZeroPage([0; 4096]);

/// Maps firmware tables write-back through the MMIO window (QEMU keeps them in reserved
/// e820 areas outside the linear map). Mappings are never torn down.
#[derive(Clone, Copy, Debug)]
struct Mapper;

impl AcpiHandler for Mapper {
    unsafe fn map_physical_region<T>(
        &self,
        physical_address: usize,
        size: usize,
    ) -> PhysicalMapping<Self, T> {
        let pa = physical_address as u64;
        // Cover the whole `T` (the crate reads fixed-size structs such as the FADT even
        // from shorter, older tables) and round up to the page.
        let len = (size.max(core::mem::size_of::<T>()) as u64).max(1);
        // No real table is anywhere near 64 MiB: a larger length is corruption, and mapping
        // it would only waste page tables.
        let mapped = pa
            .checked_add(len)
            .filter(|&end| pa != 0 && end <= MMIO_WINDOW && len <= MAX_TABLE_LEN)
            .and_then(|_| mmio::map(pa, len, Cache::WriteBack).ok());
        let (va, region_len, mapped_len) = match mapped {
            Some(va) => (va, size, (((pa + len + 0xfff) & !0xfff) - pa) as usize),
            None => {
                log::warn!(
                    "acpi: cannot map a table at {pa:#x} (+{len:#x}); treating it as absent"
                );
                // The crate checks a header's signature before anything else, so it reads
                // only the (zero) header here and rejects the table.
                let n = ZERO_PAGE.0.len();
                (ZERO_PAGE.0.as_ptr() as u64, size.min(n), n)
            }
        };
        let ptr = NonNull::new(va as *mut T).expect("the MMIO window and ZERO_PAGE are never null");
        // SAFETY: `ptr` points at `mapped_len >= region_len` readable bytes that stay mapped for
        // the life of the kernel (or at the zero page, which the crate only reads); `pa` is
        // the physical address they map.
        unsafe { PhysicalMapping::new(physical_address, ptr, region_len, mapped_len, *self) }
    }

    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}

/// The bytes of a mapped, checksummed table (header included).
fn table_bytes<T: AcpiTable>(m: &PhysicalMapping<Mapper, T>) -> &'static [u8] {
    // SAFETY: the crate validated the table, so `region_length` is its header's length and
    // that many bytes are mapped at `virtual_start`; `Mapper` never unmaps.
    unsafe {
        core::slice::from_raw_parts(m.virtual_start().as_ptr() as *const u8, m.region_length())
    }
}

/// Maps `len` bytes of AML at `pa` (a DSDT or SSDT body).
fn aml_bytes(pa: u64, len: u32) -> Option<&'static [u8]> {
    let len = u64::from(len);
    if pa == 0 || len == 0 || len > (16 << 20) || pa.checked_add(len)? > MMIO_WINDOW {
        return None;
    }
    let va = mmio::map(pa, len, Cache::WriteBack).ok()?;
    // SAFETY: just mapped `len` bytes at `va`; never unmapped.
    Some(unsafe { core::slice::from_raw_parts(va as *const u8, len as usize) })
}

/// How to enter S5 (soft off).
#[derive(Clone, Copy, Debug)]
pub struct PowerOff {
    pub pm1a_cnt: Register,
    pub pm1b_cnt: Option<Register>,
    /// Hardware-reduced ACPI: the sleep control register replaces PM1 control.
    pub sleep_control: Option<Register>,
    pub slp_typ_a: u8,
    pub slp_typ_b: u8,
}

/// What the FADT (and the DSDT behind it) says.
#[derive(Clone, Copy, Debug)]
pub struct FadtInfo {
    pub sci_irq: u16,
    /// CMOS index of the RTC century register, 0 if none.
    pub century: u8,
    pub hw_reduced: bool,
    pub dsdt: Option<(u64, u32)>,
    pub poweroff: Option<PowerOff>,
}

/// Everything ACPI told us, parsed once.
#[derive(Debug)]
pub struct Platform {
    pub revision: u8,
    pub oem: String,
    pub madt: Option<firmware::Madt>,
    pub hpet: Option<HpetEntry>,
    pub mcfg: Vec<McfgRegion>,
    pub fadt: Option<FadtInfo>,
    pub chipset: Chipset,
    /// i440fx: the ISA IRQ behind LNKA..LNKD.
    pub pirq: [Option<u8>; 4],
}

impl Platform {
    fn empty() -> Self {
        Platform {
            revision: 0,
            oem: String::new(),
            madt: None,
            hpet: None,
            mcfg: Vec::new(),
            fadt: None,
            chipset: Chipset::Unknown,
            pirq: [None; 4],
        }
    }
}

static STATE: spin::Once<Platform> = spin::Once::new();

/// Parses the tables (RSDP from the boot information). Idempotent: the first call parses,
/// later calls return at once.
pub fn init() {
    platform();
}

/// The parsed tables (parsing them on first use).
pub fn platform() -> &'static Platform {
    STATE.call_once(parse)
}

fn parse() -> Platform {
    let mut p = Platform::empty();
    let Some(rsdp) = crate::bootinfo::info().rsdp else {
        log::warn!(
            "acpi: the boot loader passed no RSDP: no MADT (assuming 1 CPU), no HPET (PIT calibration), no FADT (power off by QEMU exit)"
        );
        return p;
    };
    // SAFETY: `rsdp` is the physical address of the RSDP copy in the Multiboot2 information;
    // `Mapper` maps any physical range it is asked for.
    let tables = match unsafe { AcpiTables::from_rsdp(Mapper, rsdp as usize) } {
        Ok(t) => t,
        Err(e) => {
            log::warn!(
                "acpi: the RSDP at {rsdp:#x} is invalid ({e:?}): no MADT (assuming 1 CPU), no HPET (PIT calibration), no FADT (power off by QEMU exit)"
            );
            return p;
        }
    };
    p.revision = tables.revision();

    match tables.find_table::<MadtTable>() {
        Ok(m) => {
            let b = table_bytes(&m);
            p.oem = String::from_utf8_lossy(b.get(10..16).unwrap_or(&[]))
                .trim_end()
                .into();
            let madt = firmware::parse_madt(b);
            if madt.malformed > 0 {
                log::warn!(
                    "acpi: MADT has {} malformed entries (skipped)",
                    madt.malformed
                );
            }
            if madt.cpus.is_empty() {
                log::warn!("acpi: MADT lists no processors; assuming 1 CPU (the boot CPU)");
            }
            if madt.ioapics.is_empty() {
                log::warn!("acpi: MADT lists no I/O APIC; device interrupts cannot be routed");
            }
            p.madt = Some(madt);
        }
        Err(e) => log::warn!(
            "acpi: no MADT ({e:?}): assuming 1 CPU, ISA IRQs identity-mapped, no I/O APIC"
        ),
    }

    match tables.find_table::<HpetTable>() {
        Ok(h) => match firmware::parse_hpet(table_bytes(&h)) {
            Some(e) if e.address_space == 0 && e.address != 0 => p.hpet = Some(e),
            Some(e) => log::warn!(
                "acpi: HPET table names an unusable address ({:#x} in space {}); using the PIT",
                e.address,
                e.address_space
            ),
            None => log::warn!("acpi: HPET table is truncated; using the PIT"),
        },
        Err(_) => log::info!("acpi: no HPET table; clocks are calibrated against the PIT"),
    }

    match tables.find_table::<Mcfg>() {
        Ok(m) => p.mcfg = firmware::parse_mcfg(table_bytes(&m)),
        Err(_) => log::info!("acpi: no MCFG table; PCI configuration through I/O ports"),
    }

    match tables.find_table::<Fadt>() {
        Ok(m) => {
            let fadt: Fadt = *m;
            p.fadt = Some(parse_fadt(&tables, &fadt));
        }
        Err(e) => log::warn!("acpi: no FADT ({e:?}): power off falls back to QEMU's exit device"),
    }

    detect_chipset(&mut p);
    p
}

fn register_from(g: acpi::address::GenericAddress) -> Option<Register> {
    let space = match g.address_space {
        acpi::address::AddressSpace::SystemIo => Space::Io,
        acpi::address::AddressSpace::SystemMemory => Space::Memory,
        _ => return None,
    };
    Register::new(space, g.address, g.bit_width)
}

fn parse_fadt(tables: &AcpiTables<Mapper>, fadt: &Fadt) -> FadtInfo {
    let hw_reduced = { fadt.flags }.system_is_hw_reduced_acpi();
    let dsdt = tables.dsdt().ok().map(|t| (t.address as u64, t.length));
    let mut s5 = dsdt
        .and_then(|(pa, len)| aml_bytes(pa, len))
        .and_then(firmware::find_s5);
    if s5.is_none() {
        s5 = tables
            .ssdts()
            .filter_map(|t| aml_bytes(t.address as u64, t.length))
            .find_map(firmware::find_s5);
    }
    let pm1a = fadt.pm1a_control_block().ok().and_then(register_from);
    let pm1b = fadt
        .pm1b_control_block()
        .ok()
        .flatten()
        .and_then(register_from);
    let sleep_control = if hw_reduced {
        fadt.sleep_control_register()
            .ok()
            .flatten()
            .and_then(register_from)
    } else {
        None
    };
    let poweroff = match (s5, pm1a) {
        (Some((a, b)), Some(pm1a_cnt)) => Some(PowerOff {
            pm1a_cnt,
            pm1b_cnt: pm1b,
            sleep_control,
            slp_typ_a: a,
            slp_typ_b: b,
        }),
        (None, _) => {
            log::warn!(
                "acpi: no \\_S5_ package found in the DSDT/SSDTs: power off falls back to QEMU's exit device"
            );
            None
        }
        (_, None) => {
            log::warn!(
                "acpi: the FADT names no usable PM1a control block: power off falls back to QEMU's exit device"
            );
            None
        }
    };
    FadtInfo {
        sci_irq: fadt.sci_interrupt,
        century: fadt.century,
        hw_reduced,
        dsdt,
        poweroff,
    }
}

fn detect_chipset(p: &mut Platform) {
    let ecam0 = p
        .mcfg
        .iter()
        .find(|r| r.segment == 0 && r.bus_start == 0)
        .map(|r| (r.base, r.bus_start));
    let Some(id) = acpi_io::pci_config_read32(ecam0, 0, 0, 0, 0) else {
        return;
    };
    let chipset = Chipset::from_host_bridge(id as u16, (id >> 16) as u16);
    let dsdt = p
        .fadt
        .and_then(|f| f.dsdt)
        .and_then(|(pa, len)| aml_bytes(pa, len))
        .unwrap_or(&[]);
    let has = |name: &[u8]| dsdt.windows(name.len()).any(|w| w == name);
    p.chipset = match chipset {
        Chipset::Q35 if has(b"GSIA") => Chipset::Q35,
        Chipset::I440fx if has(b"LNKS") => {
            let route = acpi_io::pci_config_read32(ecam0, 0, 1, 0, 0x60).unwrap_or(0x8080_8080);
            for (i, slot) in p.pirq.iter_mut().enumerate() {
                let b = (route >> (8 * i)) as u8;
                *slot = (b & 0x80 == 0 && matches!(b & 0x0f, 3..=7 | 9..=12 | 14 | 15))
                    .then_some(b & 0x0f);
            }
            Chipset::I440fx
        }
        _ => {
            log::warn!(
                "acpi: PCI interrupt routing: host bridge {:04x}:{:04x} is not one of QEMU's (q35, i440fx); without an AML interpreter INTx routing is unavailable",
                id as u16,
                (id >> 16) as u16
            );
            Chipset::Unknown
        }
    };
}

/// Processors from the MADT (only the boot CPU when there is no usable MADT). Enabled or
/// online-capable ones may be started; the BSP is the one whose APIC id is `apic::id()`.
pub fn cpus() -> Vec<AcpiCpu> {
    match platform().madt.as_ref() {
        Some(m) if !m.cpus.is_empty() => m.cpus.clone(),
        _ => alloc::vec![AcpiCpu {
            apic_id: crate::arch::apic::id(),
            uid: 0,
            enabled: true,
            online_capable: false
        }],
    }
}

/// I/O APICs from the MADT.
pub fn ioapics() -> Vec<IoApicEntry> {
    platform()
        .madt
        .as_ref()
        .map(|m| m.ioapics.clone())
        .unwrap_or_default()
}

/// ISA interrupt source overrides from the MADT.
pub fn overrides() -> Vec<InterruptOverride> {
    platform()
        .madt
        .as_ref()
        .map(|m| m.overrides.clone())
        .unwrap_or_default()
}

/// GSIs wired to NMI (MADT type 3).
pub fn nmi_sources() -> Vec<NmiSource> {
    platform()
        .madt
        .as_ref()
        .map(|m| m.nmi_sources.clone())
        .unwrap_or_default()
}

/// Local APIC LINT pins wired to NMI, per processor UID (`u32::MAX` = all), for SMP bring-up.
pub fn local_nmis() -> Vec<LocalNmi> {
    platform()
        .madt
        .as_ref()
        .map(|m| m.local_nmis.clone())
        .unwrap_or_default()
}

/// The HPET the HPET table describes, if any.
pub fn hpet() -> Option<HpetEntry> {
    platform().hpet
}

pub fn fadt() -> Option<FadtInfo> {
    platform().fadt
}

/// ECAM windows, empty when there is no MCFG (PCI then uses port I/O).
pub fn mcfg_regions() -> Vec<McfgRegion> {
    platform().mcfg.clone()
}

/// An ISA IRQ's GSI with its polarity and trigger mode, honouring the MADT's interrupt
/// source overrides: `(gsi, active_low, level)`.
pub fn isa_irq_to_gsi(irq: u8) -> (u32, bool, bool) {
    match platform().madt.as_ref() {
        Some(m) => firmware::isa_irq_to_gsi(&m.overrides, irq),
        None => (u32::from(irq), false, false),
    }
}

/// The IOAPIC GSI a PCI function's INTx pin (1 = INTA … 4 = INTD) is wired to, as the
/// root bus's `_PRT` says (QEMU q35 and i440fx only; see the module documentation).
/// `None` for functions not on bus 0 (swizzle up to bus 0 and ask for the bridge), for
/// unknown platforms and for nonsense input. On q35 the line is level-triggered,
/// active-high; on i440fx it is what [`isa_irq_to_gsi`] says for the link's IRQ.
pub fn pci_route_irq(bus: u8, dev: u8, func: u8, pin: u8) -> Option<u32> {
    if bus != 0 || dev > 31 || func > 7 || !(1..=4).contains(&pin) {
        return None;
    }
    let p = platform();
    match p.chipset {
        Chipset::Q35 => firmware::q35_bus0_gsi(dev, pin),
        Chipset::I440fx => {
            let irq = match firmware::i440fx_bus0_link(dev, pin) {
                Some(link) => (*p.pirq.get(usize::from(link))?)?,
                None => u8::try_from(p.fadt?.sci_irq).ok()?, // LNKS: the SCI
            };
            Some(isa_irq_to_gsi(irq).0)
        }
        Chipset::Unknown => None,
    }
}

/// The platform's chipset as far as interrupt routing is concerned.
pub fn chipset() -> Chipset {
    platform().chipset
}

const SLP_EN: u32 = 1 << 13;
const SLP_TYP_MASK: u32 = 0x7 << 10;
/// PM1 control bits kept across the sleep write: SCI_EN and BM_RLD. GBL_RLS (bit 2) is
/// write-only and would raise an SMI; bits 3-8 and 14-15 are reserved.
const PM1_CNT_PRESERVE: u32 = 0b11;

/// Enters ACPI S5 (soft off). Returns only if that is impossible or did not take effect
/// (why, as text). Interrupts should be off.
pub fn power_off_s5() -> &'static str {
    let Some(po) = platform().fadt.and_then(|f| f.poweroff) else {
        return "no FADT PM1 control block or no \\_S5_ sleep type";
    };
    if let Some(sc) = po.sleep_control {
        // Hardware-reduced: SLP_TYP in bits 2-4, SLP_EN bit 5 of the sleep control register.
        // SAFETY: the FADT declares this register for exactly this purpose.
        unsafe { acpi_io::write(&sc, (u32::from(po.slp_typ_a & 7) << 2) | (1 << 5)) };
    } else {
        // SAFETY: PM1a/PM1b control come from the FADT; writing SLP_TYP then SLP_EN is the
        // documented sleep sequence (ACPI 6.5 §7.4.2), reads have no side effects.
        unsafe {
            let a = (acpi_io::read(&po.pm1a_cnt).unwrap_or(0) & PM1_CNT_PRESERVE)
                | (u32::from(po.slp_typ_a) << 10);
            let b = po.pm1b_cnt.map(|r| {
                (
                    r,
                    (acpi_io::read(&r).unwrap_or(0) & PM1_CNT_PRESERVE)
                        | (u32::from(po.slp_typ_b) << 10),
                )
            });
            acpi_io::write(&po.pm1a_cnt, a & !SLP_EN);
            if let Some((r, v)) = b {
                acpi_io::write(&r, v & !SLP_EN);
            }
            acpi_io::write(
                &po.pm1a_cnt,
                (a & !SLP_EN & !SLP_TYP_MASK) | (u32::from(po.slp_typ_a) << 10) | SLP_EN,
            );
            if let Some((r, v)) = b {
                acpi_io::write(&r, v | SLP_EN);
            }
        }
    }
    // The machine turns off asynchronously; give it a moment before falling back.
    crate::time::spin_ns(500_000_000);
    "the S5 write did not turn the machine off within 500 ms"
}

/// One line per power-off path, for the banner.
pub fn describe_power_off() -> String {
    match platform().fadt.and_then(|f| f.poweroff) {
        Some(po) => {
            let r = po.sleep_control.unwrap_or(po.pm1a_cnt);
            let (space, name) = match (r.space, po.sleep_control.is_some()) {
                (Space::Io, false) => ("io", "PM1a_CNT"),
                (Space::Memory, false) => ("mem", "PM1a_CNT"),
                (Space::Io, true) => ("io", "SLEEP_CONTROL"),
                (Space::Memory, true) => ("mem", "SLEEP_CONTROL"),
            };
            format!(
                "ACPI S5 via {name} {space} {:#x} (SLP_TYPa={} SLP_TYPb={})",
                r.address, po.slp_typ_a, po.slp_typ_b
            )
        }
        None => String::from("QEMU exit device (no ACPI S5 path)"),
    }
}
