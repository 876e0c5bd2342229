//! Pure decoders for firmware data: ACPI table bodies (MADT, MCFG, HPET), a bounds-checked
//! scan of AML for the `\_S5_` sleep package, QEMU's fixed PCI interrupt routing, and CMOS
//! RTC register decoding. No hardware access and no `unsafe`: everything here takes byte
//! slices or plain numbers, never panics on malformed input, and is unit-tested on the host.
//! `acpi.rs` and `arch/x86_64/rtc.rs` feed it bytes read from the machine.

use alloc::vec::Vec;

/// Size of the common ACPI table header (`signature`..`creator_revision`).
pub const SDT_HEADER_LEN: usize = 36;

fn u8_at(b: &[u8], off: usize) -> Option<u8> {
    b.get(off).copied()
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    let s = b.get(off..off.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_le_bytes(a))
}

/// A processor from the MADT (type 0 local APIC or type 9 local x2APIC entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcpiCpu {
    pub apic_id: u32,
    /// ACPI processor UID.
    pub uid: u32,
    /// Flags bit 0: the processor is usable now.
    pub enabled: bool,
    /// Flags bit 1: not enabled now but may be brought online (hot-add); ignored if enabled.
    pub online_capable: bool,
}

impl AcpiCpu {
    /// Whether an OS may start this processor.
    pub fn startable(&self) -> bool {
        self.enabled || self.online_capable
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoApicEntry {
    pub id: u8,
    pub address: u32,
    pub gsi_base: u32,
}

/// Polarity and trigger from MPS INTI flags, already resolved for the ISA bus ("conforms"
/// means active-high, edge-triggered on ISA).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntiFlags {
    pub active_low: bool,
    pub level: bool,
}

impl IntiFlags {
    pub fn from_mps(flags: u16) -> Self {
        // Polarity bits 0-1: 00 conforms, 01 high, 11 low. Trigger bits 2-3: 00 conforms, 01 edge, 11 level.
        Self {
            active_low: flags & 0b11 == 0b11,
            level: (flags >> 2) & 0b11 == 0b11,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InterruptOverride {
    pub bus: u8,
    pub irq: u8,
    pub gsi: u32,
    pub flags: IntiFlags,
}

/// A GSI wired to NMI (MADT type 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NmiSource {
    pub gsi: u32,
    pub flags: IntiFlags,
}

/// A local APIC LINT pin wired to NMI (MADT type 4, or type 0xA for x2APIC UIDs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalNmi {
    /// Processor UID, or `u32::MAX` for all processors (0xff in the 8-bit form).
    pub uid: u32,
    /// 0 = LINT0, 1 = LINT1.
    pub lint: u8,
    pub flags: IntiFlags,
}

/// What the MADT says.
#[derive(Clone, Debug, Default)]
pub struct Madt {
    pub local_apic_address: u64,
    /// Flags bit 0: the machine also has dual 8259 PICs (which must be masked).
    pub pcat_compat: bool,
    pub cpus: Vec<AcpiCpu>,
    pub ioapics: Vec<IoApicEntry>,
    pub overrides: Vec<InterruptOverride>,
    pub nmi_sources: Vec<NmiSource>,
    pub local_nmis: Vec<LocalNmi>,
    /// Entries that were cut short or otherwise malformed (skipped).
    pub malformed: usize,
}

/// Decodes a whole MADT (header included). Never panics; stops at the first entry whose
/// length is impossible.
pub fn parse_madt(t: &[u8]) -> Madt {
    let mut m = Madt {
        local_apic_address: u64::from(u32_at(t, SDT_HEADER_LEN).unwrap_or(0xFEE0_0000)),
        pcat_compat: u32_at(t, SDT_HEADER_LEN + 4).is_some_and(|f| f & 1 != 0),
        ..Madt::default()
    };
    let mut off = SDT_HEADER_LEN + 8;
    while off + 2 <= t.len() {
        let kind = t[off];
        let len = usize::from(t[off + 1]);
        if len < 2 || off + len > t.len() {
            m.malformed += 1;
            break;
        }
        let e = &t[off..off + len];
        let ok = match kind {
            0 => (|| {
                let flags = u32_at(e, 4)?;
                m.cpus.push(AcpiCpu {
                    uid: u32::from(u8_at(e, 2)?),
                    apic_id: u32::from(u8_at(e, 3)?),
                    enabled: flags & 1 != 0,
                    online_capable: flags & 2 != 0,
                });
                Some(())
            })(),
            1 => (|| {
                m.ioapics.push(IoApicEntry {
                    id: u8_at(e, 2)?,
                    address: u32_at(e, 4)?,
                    gsi_base: u32_at(e, 8)?,
                });
                Some(())
            })(),
            2 => (|| {
                m.overrides.push(InterruptOverride {
                    bus: u8_at(e, 2)?,
                    irq: u8_at(e, 3)?,
                    gsi: u32_at(e, 4)?,
                    flags: IntiFlags::from_mps(u16_at(e, 8)?),
                });
                Some(())
            })(),
            3 => (|| {
                m.nmi_sources.push(NmiSource {
                    flags: IntiFlags::from_mps(u16_at(e, 2)?),
                    gsi: u32_at(e, 4)?,
                });
                Some(())
            })(),
            4 => (|| {
                let uid = u8_at(e, 2)?;
                m.local_nmis.push(LocalNmi {
                    uid: if uid == 0xff {
                        u32::MAX
                    } else {
                        u32::from(uid)
                    },
                    flags: IntiFlags::from_mps(u16_at(e, 3)?),
                    lint: u8_at(e, 5)?,
                });
                Some(())
            })(),
            5 => (|| {
                m.local_apic_address = u64_at(e, 4)?;
                Some(())
            })(),
            9 => (|| {
                let flags = u32_at(e, 8)?;
                m.cpus.push(AcpiCpu {
                    apic_id: u32_at(e, 4)?,
                    enabled: flags & 1 != 0,
                    online_capable: flags & 2 != 0,
                    uid: u32_at(e, 12)?,
                });
                Some(())
            })(),
            0xA => (|| {
                m.local_nmis.push(LocalNmi {
                    flags: IntiFlags::from_mps(u16_at(e, 2)?),
                    uid: u32_at(e, 4)?,
                    lint: u8_at(e, 8)?,
                });
                Some(())
            })(),
            _ => Some(()), // other interrupt models, reserved and OEM entries
        };
        if ok.is_none() {
            m.malformed += 1;
        }
        off += len;
    }
    // Firmware may describe a processor twice (type 0 and type 9): keep the first.
    let mut seen = Vec::with_capacity(m.cpus.len());
    m.cpus.retain(|c| {
        let dup = seen.contains(&c.apic_id);
        seen.push(c.apic_id);
        !dup
    });
    m
}

/// The MADT's overrides applied to one ISA IRQ: (GSI, active_low, level). Without an
/// override the ISA IRQ is the GSI of the same number, active-high, edge-triggered.
pub fn isa_irq_to_gsi(overrides: &[InterruptOverride], irq: u8) -> (u32, bool, bool) {
    match overrides.iter().find(|o| o.bus == 0 && o.irq == irq) {
        Some(o) => (o.gsi, o.flags.active_low, o.flags.level),
        None => (u32::from(irq), false, false),
    }
}

/// One ECAM window from the MCFG table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct McfgRegion {
    pub base: u64,
    pub segment: u16,
    pub bus_start: u8,
    pub bus_end: u8,
}

/// Decodes a whole MCFG (header included): 8 reserved bytes, then 16-byte entries.
pub fn parse_mcfg(t: &[u8]) -> Vec<McfgRegion> {
    let mut v = Vec::new();
    let mut off = SDT_HEADER_LEN + 8;
    while let (Some(base), Some(segment), Some(bus_start), Some(bus_end)) = (
        u64_at(t, off),
        u16_at(t, off + 8),
        u8_at(t, off + 10),
        u8_at(t, off + 11),
    ) {
        if off + 16 > t.len() {
            break;
        }
        if base != 0 && bus_start <= bus_end {
            v.push(McfgRegion {
                base,
                segment,
                bus_start,
                bus_end,
            });
        }
        off += 16;
    }
    v
}

/// The HPET table's description of one timer block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HpetEntry {
    /// Generic-address space id (0 = system memory; nothing else is usable).
    pub address_space: u8,
    pub address: u64,
    pub event_timer_block_id: u32,
    pub number: u8,
    pub min_tick: u16,
}

pub fn parse_hpet(t: &[u8]) -> Option<HpetEntry> {
    Some(HpetEntry {
        event_timer_block_id: u32_at(t, 36)?,
        address_space: u8_at(t, 40)?,
        address: u64_at(t, 44)?,
        number: u8_at(t, 52)?,
        min_tick: u16_at(t, 53)?,
    })
}

/// Reads one AML integer constant at `p`: (value, bytes used).
fn aml_integer(b: &[u8], p: usize) -> Option<(u64, usize)> {
    match *b.get(p)? {
        0x00 => Some((0, 1)),                            // ZeroOp
        0x01 => Some((1, 1)),                            // OneOp
        0x0A => Some((u64::from(u8_at(b, p + 1)?), 2)),  // BytePrefix
        0x0B => Some((u64::from(u16_at(b, p + 1)?), 3)), // WordPrefix
        0x0C => Some((u64::from(u32_at(b, p + 1)?), 5)), // DWordPrefix
        0x0E => Some((u64_at(b, p + 1)?, 9)),            // QWordPrefix
        _ => None,
    }
}

/// Finds `Name(_S5_, Package(){ SLP_TYPa, SLP_TYPb, ... })` in an AML byte stream (a DSDT
/// or SSDT body) and returns the two 3-bit sleep-type values. This is a careful byte scan,
/// not an interpreter: it accepts the forms firmware emits for a constant package (a NameOp
/// optionally with a root prefix, PackageOp, a 1-4 byte PkgLength, NumElements, integer
/// constants) and rejects anything else, e.g. `_S5_` computed by a method.
pub fn find_s5(aml: &[u8]) -> Option<(u8, u8)> {
    let mut from = 0;
    while let Some(rel) = aml.get(from..)?.windows(4).position(|w| w == b"_S5_") {
        let at = from + rel;
        from = at + 1;
        let named = (at >= 1 && aml[at - 1] == 0x08)
            || (at >= 2 && aml[at - 1] == b'\\' && aml[at - 2] == 0x08);
        if !named {
            continue;
        }
        let mut p = at + 4;
        if aml.get(p) != Some(&0x12) {
            continue; // not a PackageOp
        }
        p += 1;
        let lead = match aml.get(p) {
            Some(&l) => l,
            None => continue,
        };
        p += 1 + usize::from(lead >> 6);
        let count = match aml.get(p) {
            Some(&c) => c,
            None => continue,
        };
        p += 1;
        if count == 0 {
            continue;
        }
        let Some((a, used)) = aml_integer(aml, p) else {
            continue;
        };
        let b = if count >= 2 {
            match aml_integer(aml, p + used) {
                Some((b, _)) => b,
                None => continue,
            }
        } else {
            a
        };
        return Some(((a & 7) as u8, (b & 7) as u8));
    }
    None
}

/// The host bridge that tells us which fixed interrupt routing QEMU's DSDT describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chipset {
    /// Q35 + ICH9 (host bridge 8086:29c0).
    Q35,
    /// i440FX + PIIX3/4 (host bridge 8086:1237).
    I440fx,
    Unknown,
}

impl Chipset {
    pub fn from_host_bridge(vendor: u16, device: u16) -> Self {
        match (vendor, device) {
            (0x8086, 0x29c0) => Chipset::Q35,
            (0x8086, 0x1237) => Chipset::I440fx,
            _ => Chipset::Unknown,
        }
    }
}

/// QEMU q35's `_SB.PCI0._PRT` in APIC mode (`PRTA`): the GSI for device `dev` on bus 0,
/// `pin` 1 = INTA … 4 = INTD. Slots 0-0x18 rotate over PIRQ E-H (GSI 20-23) by slot,
/// slots 0x19-0x1d and 0x1f rotate over PIRQ A-D (GSI 16-19) starting at A, slot 0x1e
/// (the DMI-PCI bridge) over E-H starting at E. The GSIx links are level-triggered,
/// active-high.
pub fn q35_bus0_gsi(dev: u8, pin: u8) -> Option<u32> {
    if !(1..=4).contains(&pin) || dev > 0x1f {
        return None;
    }
    let p = u32::from(pin - 1);
    let d = u32::from(dev);
    Some(match dev {
        0x00..=0x18 => 20 + ((d + p) & 3),
        0x19..=0x1d | 0x1f => 16 + p,
        _ => 20 + p, // 0x1e
    })
}

/// QEMU i440fx's `_SB.PCI0._PRT`: which PCI interrupt link (0 = LNKA … 3 = LNKD) device
/// `dev` on bus 0 uses for `pin`, or `None` for device 1 INTA (LNKS: the ACPI SCI,
/// fixed at IRQ 9) and nonsense input. The link's ISA IRQ is in the PIIX3 PIRQ route
/// control register 0x60 + link of device 00:01.0.
pub fn i440fx_bus0_link(dev: u8, pin: u8) -> Option<u8> {
    if !(1..=4).contains(&pin) || dev > 0x1f || (dev == 1 && pin == 1) {
        return None;
    }
    Some((dev + pin - 1 + 3) & 3)
}

/// The standard PCI-PCI bridge swizzle: the pin a device's `pin` arrives on at its bridge.
/// `pin` is 1 = INTA … 4 = INTD; anything else is treated modulo 4.
pub fn swizzle(dev: u8, pin: u8) -> u8 {
    (((u32::from(pin) + 3 + u32::from(dev)) & 3) + 1) as u8
}

/// CMOS RTC registers as read (raw, possibly BCD).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RtcRegs {
    pub sec: u8,
    pub min: u8,
    pub hour: u8,
    pub day: u8,
    pub month: u8,
    pub year: u8,
    /// Raw century register, if the FADT names one.
    pub century: Option<u8>,
    pub status_b: u8,
}

/// A calendar date and time (UTC as the RTC keeps it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTime {
    pub year: u32,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub min: u8,
    pub sec: u8,
}

pub fn bcd_to_bin(v: u8) -> Option<u8> {
    let (hi, lo) = (v >> 4, v & 0xf);
    if hi > 9 || lo > 9 {
        return None;
    }
    Some(hi * 10 + lo)
}

/// Decodes RTC registers honouring status B: bit 2 binary (else BCD), bit 1 24-hour (else
/// 12-hour with bit 7 of the hour meaning PM). Without a century register, years 00-99
/// are 2000-2099. `None` when a field is out of range.
pub fn decode_rtc(r: &RtcRegs) -> Option<DateTime> {
    let binary = r.status_b & 0x04 != 0;
    let h24 = r.status_b & 0x02 != 0;
    let conv = |v: u8| if binary { Some(v) } else { bcd_to_bin(v) };
    let pm = !h24 && r.hour & 0x80 != 0;
    let mut hour = conv(r.hour & 0x7f)?;
    if !h24 {
        if !(1..=12).contains(&hour) {
            return None;
        }
        hour %= 12;
        if pm {
            hour += 12;
        }
    }
    let yy = conv(r.year)?;
    let century = match r.century {
        Some(c) => match conv(c) {
            Some(c @ 19..=99) => u32::from(c),
            _ => 20,
        },
        None => 20,
    };
    let dt = DateTime {
        year: century * 100 + u32::from(yy),
        month: conv(r.month)?,
        day: conv(r.day)?,
        hour,
        min: conv(r.min)?,
        sec: conv(r.sec)?,
    };
    let ok = (1..=12).contains(&dt.month)
        && (1..=31).contains(&dt.day)
        && dt.hour < 24
        && dt.min < 60
        && dt.sec < 60
        && yy < 100;
    ok.then_some(dt)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub fn unix_seconds(dt: &DateTime) -> Option<u64> {
    let days = days_from_civil(i64::from(dt.year), u32::from(dt.month), u32::from(dt.day));
    let s = days * 86_400 + i64::from(dt.hour) * 3600 + i64::from(dt.min) * 60 + i64::from(dt.sec);
    u64::try_from(s).ok()
}

/// The inverse of [`unix_seconds`] (for printing).
pub fn civil_from_unix(secs: u64) -> DateTime {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as u32;
    DateTime {
        year,
        month,
        day,
        hour: (rem / 3600) as u8,
        min: ((rem / 60) % 60) as u8,
        sec: (rem % 60) as u8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(sig: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut t = Vec::new();
        t.extend_from_slice(sig);
        t.extend_from_slice(&((SDT_HEADER_LEN + body.len()) as u32).to_le_bytes());
        t.resize(SDT_HEADER_LEN, 0);
        t.extend_from_slice(body);
        t
    }

    /// The MADT QEMU q35 builds for 2 CPUs (plus an x2APIC entry and a truncated tail).
    fn sample_madt() -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&0xFEE0_0000u32.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&[0, 8, 0, 0, 1, 0, 0, 0]); // CPU uid 0 apic 0 enabled
        b.extend_from_slice(&[0, 8, 1, 1, 2, 0, 0, 0]); // CPU uid 1 apic 1 online-capable
        b.extend_from_slice(&[1, 12, 0, 0, 0x00, 0x00, 0xC0, 0xFE, 0, 0, 0, 0]); // IOAPIC 0
        b.extend_from_slice(&[2, 10, 0, 0, 2, 0, 0, 0, 0, 0]); // IRQ0 -> GSI2
        b.extend_from_slice(&[2, 10, 0, 9, 9, 0, 0, 0, 0x0d, 0]); // IRQ9 level high
        b.extend_from_slice(&[4, 6, 0xff, 0, 0, 1]); // LINT1 NMI all
        b.extend_from_slice(&[9, 16, 0, 0, 0x10, 0x01, 0, 0, 1, 0, 0, 0, 7, 0, 0, 0]); // x2APIC 0x110
        b.extend_from_slice(&[9, 16, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0]); // APIC 1 again, as x2APIC
        b.extend_from_slice(&[0, 8, 2]); // truncated
        header(b"APIC", &b)
    }

    #[test]
    fn madt_decodes_qemu_layout() {
        let m = parse_madt(&sample_madt());
        assert_eq!(m.local_apic_address, 0xFEE0_0000);
        assert!(m.pcat_compat);
        assert_eq!(m.cpus.len(), 3);
        assert_eq!(
            m.cpus[0],
            AcpiCpu {
                apic_id: 0,
                uid: 0,
                enabled: true,
                online_capable: false
            }
        );
        assert!(!m.cpus[1].enabled && m.cpus[1].online_capable && m.cpus[1].startable());
        assert_eq!(
            m.cpus[2],
            AcpiCpu {
                apic_id: 0x110,
                uid: 7,
                enabled: true,
                online_capable: false
            }
        );
        assert_eq!(
            m.ioapics,
            [IoApicEntry {
                id: 0,
                address: 0xFEC0_0000,
                gsi_base: 0
            }]
        );
        assert_eq!(isa_irq_to_gsi(&m.overrides, 0), (2, false, false));
        assert_eq!(isa_irq_to_gsi(&m.overrides, 9), (9, false, true));
        assert_eq!(isa_irq_to_gsi(&m.overrides, 8), (8, false, false));
        assert_eq!(
            m.local_nmis,
            [LocalNmi {
                uid: u32::MAX,
                lint: 1,
                flags: IntiFlags {
                    active_low: false,
                    level: false
                }
            }]
        );
        assert_eq!(m.malformed, 1);
    }

    #[test]
    fn madt_survives_garbage() {
        for len in 0..sample_madt().len() {
            let _ = parse_madt(&sample_madt()[..len]);
        }
        let mut zero_len = header(b"APIC", &[0; 8]);
        zero_len.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(parse_madt(&zero_len).malformed, 1);
        let _ = parse_madt(&[0xff; 300]);
        assert!(parse_madt(&[]).cpus.is_empty());
    }

    #[test]
    fn inti_flags() {
        assert_eq!(
            IntiFlags::from_mps(0),
            IntiFlags {
                active_low: false,
                level: false
            }
        );
        assert_eq!(
            IntiFlags::from_mps(0xf),
            IntiFlags {
                active_low: true,
                level: true
            }
        );
        assert_eq!(
            IntiFlags::from_mps(0xd),
            IntiFlags {
                active_low: false,
                level: true
            }
        );
    }

    #[test]
    fn mcfg_and_hpet() {
        let mut b = vec![0u8; 8];
        b.extend_from_slice(&0xB000_0000u64.to_le_bytes());
        b.extend_from_slice(&[0, 0, 0, 0xff, 0, 0, 0, 0]);
        b.extend_from_slice(&[1, 2, 3]); // trailing junk
        let m = parse_mcfg(&header(b"MCFG", &b));
        assert_eq!(
            m,
            [McfgRegion {
                base: 0xB000_0000,
                segment: 0,
                bus_start: 0,
                bus_end: 0xff
            }]
        );
        assert!(parse_mcfg(&[1, 2]).is_empty());

        let mut h = Vec::new();
        h.extend_from_slice(&0x8086_a201u32.to_le_bytes());
        h.extend_from_slice(&[0, 64, 0, 0]);
        h.extend_from_slice(&0xFED0_0000u64.to_le_bytes());
        h.extend_from_slice(&[0, 0x80, 0, 0]);
        let e = parse_hpet(&header(b"HPET", &h)).unwrap();
        assert_eq!(
            (e.address_space, e.address, e.number, e.min_tick),
            (0, 0xFED0_0000, 0, 0x80)
        );
        assert!(parse_hpet(&header(b"HPET", &h[..10])).is_none());
    }

    #[test]
    fn s5_scan() {
        // QEMU: Name (_S5, Package (0x04) { Zero, Zero, Zero, Zero })
        let qemu = [
            0x10, 0x05, b'\\', 0x08, b'_', b'S', b'5', b'_', 0x12, 0x06, 0x04, 0x00, 0x00, 0x00,
            0x00,
        ];
        assert_eq!(find_s5(&qemu), Some((0, 0)));
        // Typical real firmware: Name (\_S5, Package (0x02) { 0x07, 0x07 }) with a 2-byte PkgLength.
        let real = [
            0x08, b'\\', b'_', b'S', b'5', b'_', 0x12, 0x40, 0x08, 0x02, 0x0A, 0x07, 0x0A, 0x07,
        ];
        assert_eq!(find_s5(&real), Some((7, 7)));
        // A method reference first, the real object later.
        let mut both = vec![0x14, 0x05, b'_', b'S', b'5', b'_', 0x00];
        both.extend_from_slice(&[
            0x08, b'_', b'S', b'5', b'_', 0x12, 0x05, 0x02, 0x01, 0x0B, 0x05, 0x00,
        ]);
        assert_eq!(find_s5(&both), Some((1, 5)));
        // Truncations never panic and never invent a value.
        for n in 0..qemu.len() - 4 {
            assert_eq!(find_s5(&qemu[..n]), None, "{n}");
        }
        assert_eq!(find_s5(b"_S5_"), None);
        assert_eq!(find_s5(&[]), None);
    }

    #[test]
    fn pci_routing() {
        assert_eq!(q35_bus0_gsi(0x1f, 1), Some(16)); // 00:1f.2 SATA INTA -> PIRQA
        assert_eq!(q35_bus0_gsi(0x1f, 4), Some(19));
        assert_eq!(q35_bus0_gsi(0x00, 1), Some(20));
        assert_eq!(q35_bus0_gsi(0x01, 1), Some(21));
        assert_eq!(q35_bus0_gsi(0x03, 2), Some(20));
        assert_eq!(q35_bus0_gsi(0x18, 1), Some(20));
        assert_eq!(q35_bus0_gsi(0x1a, 2), Some(17));
        assert_eq!(q35_bus0_gsi(0x1e, 3), Some(22));
        assert_eq!(q35_bus0_gsi(40, 1), None);
        assert_eq!(q35_bus0_gsi(1, 0), None);
        assert_eq!(q35_bus0_gsi(1, 5), None);
        assert_eq!(i440fx_bus0_link(0, 1), Some(3)); // LNKD
        assert_eq!(i440fx_bus0_link(3, 1), Some(2)); // LNKC
        assert_eq!(i440fx_bus0_link(1, 1), None); // LNKS
        assert_eq!(i440fx_bus0_link(1, 2), Some(1));
        assert_eq!(swizzle(0, 1), 1);
        assert_eq!(swizzle(1, 4), 1);
        assert_eq!(swizzle(2, 3), 1);
    }

    #[test]
    fn rtc_decoding() {
        // BCD, 24-hour: 2025-12-31 23:59:58 with century 0x20.
        let r = RtcRegs {
            sec: 0x58,
            min: 0x59,
            hour: 0x23,
            day: 0x31,
            month: 0x12,
            year: 0x25,
            century: Some(0x20),
            status_b: 0x02,
        };
        let dt = decode_rtc(&r).unwrap();
        assert_eq!(
            dt,
            DateTime {
                year: 2025,
                month: 12,
                day: 31,
                hour: 23,
                min: 59,
                sec: 58
            }
        );
        assert_eq!(unix_seconds(&dt), Some(1_767_225_598));
        // BCD, 12-hour: 12 AM is 0, 12 PM is 12, 1 PM is 13.
        let mut t = RtcRegs { hour: 0x12, ..r };
        t.status_b = 0;
        assert_eq!(decode_rtc(&t).unwrap().hour, 0);
        t.hour = 0x92;
        assert_eq!(decode_rtc(&t).unwrap().hour, 12);
        t.hour = 0x81;
        assert_eq!(decode_rtc(&t).unwrap().hour, 13);
        t.hour = 0x13;
        assert!(decode_rtc(&t).is_none());
        // Binary, 24-hour, no century register.
        let b = RtcRegs {
            sec: 5,
            min: 4,
            hour: 3,
            day: 29,
            month: 2,
            year: 24,
            century: None,
            status_b: 0x06,
        };
        assert_eq!(
            decode_rtc(&b).unwrap(),
            DateTime {
                year: 2024,
                month: 2,
                day: 29,
                hour: 3,
                min: 4,
                sec: 5
            }
        );
        // Binary 12-hour PM.
        let b12 = RtcRegs {
            hour: 0x80 | 11,
            status_b: 0x04,
            ..b
        };
        assert_eq!(decode_rtc(&b12).unwrap().hour, 23);
        // Garbage.
        assert!(decode_rtc(&RtcRegs { month: 0x13, ..r }).is_none());
        assert!(decode_rtc(&RtcRegs { sec: 0x5a, ..r }).is_none());
        assert!(decode_rtc(&RtcRegs::default()).is_none());
        assert_eq!(bcd_to_bin(0x99), Some(99));
        assert_eq!(bcd_to_bin(0xa0), None);
    }

    #[test]
    fn civil_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        for s in [
            0u64,
            951_782_400,
            1_709_164_800,
            4_102_444_799,
            1_767_225_598,
        ] {
            let dt = civil_from_unix(s);
            assert_eq!(unix_seconds(&dt), Some(s), "{dt:?}");
        }
        assert_eq!(
            civil_from_unix(1_709_164_800),
            DateTime {
                year: 2024,
                month: 2,
                day: 29,
                hour: 0,
                min: 0,
                sec: 0
            }
        );
    }
}
