//! PCI: enumeration on QEMU q35, ECAM against port I/O, BAR sanity, a mapped BAR, an
//! absent bus.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::acpi::McfgRegion;
use crate::ensure;
use crate::ktest::TestFn;
use crate::pci::{self, ConfigSpace, PciAddress};

pub fn register(v: &mut Vec<(&'static str, TestFn)>) {
    v.push(("pci::q35_devices_found", q35_devices));
    v.push(("pci::ecam_matches_port_io", ecam_matches_port_io));
    v.push(("pci::bars_power_of_two_and_aligned", bars_sane));
    v.push(("pci::map_ahci_abar", ahci_abar));
    v.push(("pci::absent_bus_is_empty", absent_bus));
    v.push(("pci::banner_lines", banner_lines));
}

fn q35_devices() -> Result<(), String> {
    ensure!(!pci::devices().is_empty(), "no PCI functions found");
    for (vendor, device, class, subclass, what) in [
        (0x8086, 0x29c0, 0x06, 0x00, "host bridge"),
        (0x8086, 0x2918, 0x06, 0x01, "ISA/LPC bridge"),
        (0x8086, 0x2922, 0x01, 0x06, "SATA (AHCI)"),
        (0x8086, 0x2930, 0x0c, 0x05, "SMBus"),
    ] {
        let d = pci::find(vendor, device)
            .ok_or_else(|| format!("{what} {vendor:04x}:{device:04x} not found"))?;
        ensure!(
            d.class == class && d.subclass == subclass,
            "{what}: class {:02x}{:02x}",
            d.class,
            d.subclass
        );
        ensure!(
            pci::find_class(class, subclass).any(|x| x.addr == d.addr),
            "find_class({class:02x},{subclass:02x}) misses {what}"
        );
        ensure!(d.addr.bus() == 0, "{what} not on bus 0");
    }
    let lpc = pci::find(0x8086, 0x2918).ok_or("no LPC")?;
    ensure!(
        lpc.addr == PciAddress::new(0, 0, 0x1f, 0) && lpc.multifunction,
        "LPC not at 00:1f.0 multi-function: {:?}",
        lpc.addr
    );
    Ok(())
}

/// The ECAM window from the MCFG, or (when ACPI gives none) from the q35 MCH's PCIEXBAR
/// register, so the ECAM path is exercised either way.
fn test_ecam() -> Option<pci::Ecam> {
    if let Some(e) = pci::ecam() {
        return Some(pci::Ecam::new(&e.regions().collect::<Vec<_>>()));
    }
    let host = PciAddress::new(0, 0, 0, 0);
    if pci::PORT_IO.read(host, 0) != 0x29c0_8086 {
        return None;
    }
    let raw =
        u64::from(pci::PORT_IO.read(host, 0x60)) | (u64::from(pci::PORT_IO.read(host, 0x64)) << 32);
    if raw & 1 == 0 {
        return None;
    }
    let (len, bus_end) = match (raw >> 1) & 3 {
        0 => (256u64 << 20, 255u8),
        1 => (128 << 20, 127),
        2 => (64 << 20, 63),
        _ => return None,
    };
    let base = raw & 0x7f_ffff_f000 & !(len - 1);
    crate::println!(
        "ktest: note: ECAM not in use (no MCFG, or pci.ecam=off); using the q35 PCIEXBAR window at {base:#x}"
    );
    Some(pci::Ecam::new(&[McfgRegion {
        base,
        segment: 0,
        bus_start: 0,
        bus_end,
    }]))
}

fn ecam_matches_port_io() -> Result<(), String> {
    let Some(ecam) = test_ecam() else {
        crate::println!("ktest: note: no ECAM on this machine; nothing to compare");
        return Ok(());
    };
    let mut compared = 0;
    for dev in 0..32u8 {
        for func in 0..8u8 {
            let a = PciAddress::new(0, 0, dev, func);
            let (e, p) = (ecam.read(a, 0), pci::PORT_IO.read(a, 0));
            ensure!(e == p, "{a:?} ID: ECAM {e:#010x}, port I/O {p:#010x}");
            if p == 0xffff_ffff {
                continue;
            }
            for off in (4..0x40u16).step_by(4) {
                let (mut e, mut p) = (ecam.read(a, off), pci::PORT_IO.read(a, off));
                if off == 4 {
                    // Status bit 3 (INTx pending) may change between the two reads.
                    e &= !(1 << 19);
                    p &= !(1 << 19);
                }
                ensure!(
                    e == p,
                    "{a:?} +{off:#x}: ECAM {e:#010x}, port I/O {p:#010x}"
                );
            }
            // ECAM also reaches extended space; port I/O must refuse it.
            ensure!(
                pci::PORT_IO.read(a, 0x100) == 0xffff_ffff,
                "port I/O answered at 0x100"
            );
            compared += 1;
        }
    }
    ensure!(compared >= 4, "only {compared} bus-0 functions compared");
    crate::println!("ktest: note: ECAM and port I/O agree on {compared} bus-0 functions");
    Ok(())
}

fn bars_sane() -> Result<(), String> {
    let mut n = 0;
    for d in pci::devices() {
        for b in d.bars.iter().flatten() {
            ensure!(
                b.size.is_power_of_two(),
                "{:?} BAR{}: size {:#x}",
                d.addr,
                b.index,
                b.size
            );
            ensure!(
                b.address.is_multiple_of(b.size),
                "{:?} BAR{}: {:#x} not aligned to {:#x}",
                d.addr,
                b.index,
                b.address,
                b.size
            );
            ensure!(
                if b.is_io() {
                    b.size >= 4 && b.address + b.size <= 0x1_0000
                } else {
                    b.size >= 16
                },
                "{:?} BAR{}: implausible {b:?}",
                d.addr,
                b.index
            );
            ensure!(
                pci::bar(d, usize::from(b.index)) == Some(*b),
                "bar() disagrees"
            );
            n += 1;
        }
    }
    ensure!(n > 0, "no BARs at all");
    Ok(())
}

fn ahci_abar() -> Result<(), String> {
    let sata = pci::find(0x8086, 0x2922).ok_or("no ICH9 AHCI")?;
    let abar = pci::bar(sata, 5).ok_or("AHCI has no BAR5")?;
    ensure!(abar.is_memory(), "BAR5 is not memory: {abar:?}");
    ensure!(
        matches!(pci::map_bar(sata, 4), Err(pci::BarError::NotMemory)),
        "BAR4 (I/O) mapped as memory"
    );
    pci::enable_memory(sata);
    let regs = pci::map_bar_regs(sata, 5).map_err(|e| format!("map_bar: {e:?}"))?;
    ensure!(
        pci::map_bar(sata, 5) == Ok(regs.base()),
        "mapping twice gave another address"
    );
    let cap = regs.read32(0);
    let version = regs.read32(0x10);
    ensure!(cap != 0xffff_ffff && cap != 0, "AHCI CAP reads {cap:#x}");
    ensure!(version >= 0x0001_0000, "AHCI VS reads {version:#x}");
    crate::println!(
        "ktest: note: AHCI CAP {cap:#010x} VS {version:#010x}, {} ports",
        (cap & 0x1f) + 1
    );
    let cmd = pci::read_config(sata.addr, 4);
    ensure!(cmd & 2 != 0, "memory decode off after enable_memory");
    Ok(())
}

fn absent_bus() -> Result<(), String> {
    let used = |b: u8| {
        pci::devices().iter().any(|d| {
            d.addr.bus() == b
                || d.bridge
                    .is_some_and(|br| (br.secondary..=br.subordinate).contains(&b))
        })
    };
    let bus = (1..=255u8)
        .rev()
        .find(|&b| !used(b))
        .ok_or("every bus is in use?!")?;
    ensure!(
        adros_pci::scan_bus(pci::config(), 0, bus).is_empty(),
        "bus {bus:02x} has functions"
    );
    ensure!(
        adros_pci::scan_bus(&pci::PORT_IO, 0, bus).is_empty(),
        "bus {bus:02x} has functions (port I/O)"
    );
    let e = adros_pci::enumerate(pci::config(), 0, bus);
    ensure!(
        e.devices.is_empty() && e.buses == [bus],
        "enumerating bus {bus:02x}: {:?}",
        e.buses
    );
    ensure!(
        adros_pci::enumerate(pci::config(), 7, 0).devices.is_empty(),
        "segment 7 has functions"
    );
    Ok(())
}

fn banner_lines() -> Result<(), String> {
    let mut lines = Vec::new();
    pci::describe(&mut lines);
    let listed = lines
        .iter()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .count();
    ensure!(
        listed == pci::devices().len(),
        "{listed} lines for {} functions",
        pci::devices().len()
    );
    ensure!(
        lines
            .iter()
            .any(|l| l.contains("00:1f.2 SATA controller [0106]: Intel Corporation")),
        "no SATA line: {lines:?}"
    );
    Ok(())
}
