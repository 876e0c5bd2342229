//! `lspci -nn`-like text.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use crate::names::{capability_name, device_name, prog_if_name, subclass_name, vendor_name};
use crate::{BarKind, PciAddress, PciDevice};

/// `bb:dd.f`, with a `ssss:` prefix outside segment 0 (as `lspci` prints it).
pub fn slot_name(a: PciAddress) -> String {
    if a.segment() == 0 {
        format!("{:02x}:{:02x}.{}", a.bus(), a.device(), a.function())
    } else {
        format!(
            "{:04x}:{:02x}:{:02x}.{}",
            a.segment(),
            a.bus(),
            a.device(),
            a.function()
        )
    }
}

/// 4096 → "4K", 32 → "32", 0x1_0000_0000 → "4G".
pub fn size_string(size: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (1 << 40, "T"),
        (1 << 30, "G"),
        (1 << 20, "M"),
        (1 << 10, "K"),
    ];
    for (unit, suffix) in UNITS {
        if size >= unit && size.is_multiple_of(unit) {
            return format!("{}{suffix}", size / unit);
        }
    }
    format!("{size}")
}

/// One `lspci -nn` line, e.g.
/// `00:1f.2 SATA controller [0106]: Intel Corporation 82801IR/IO/IH (ICH9R/DO/DH) 6 port SATA Controller [AHCI mode] [8086:2922] (rev 02)`.
pub fn lspci_line(d: &PciDevice) -> String {
    let mut s = slot_name(d.addr);
    match subclass_name(d.class, d.subclass) {
        Some(c) => {
            let _ = write!(s, " {c} [{:02x}{:02x}]: ", d.class, d.subclass);
        }
        None => {
            let _ = write!(s, " Class [{:02x}{:02x}]: ", d.class, d.subclass);
        }
    }
    match (
        vendor_name(d.vendor_id),
        device_name(d.vendor_id, d.device_id),
    ) {
        (Some(v), Some(n)) => {
            let _ = write!(s, "{v} {n}");
        }
        (Some(v), None) => {
            let _ = write!(s, "{v} Device");
        }
        (None, _) => s.push_str("Device"),
    }
    let _ = write!(s, " [{:04x}:{:04x}]", d.vendor_id, d.device_id);
    if d.revision != 0 {
        let _ = write!(s, " (rev {:02x})", d.revision);
    }
    s
}

fn pin_name(pin: u8) -> &'static str {
    match pin {
        1 => "INTA",
        2 => "INTB",
        3 => "INTC",
        4 => "INTD",
        _ => "INT?",
    }
}

/// The second, indented line: BARs, bridge buses and the routed IRQ; with `verbose` also
/// the prog-if, subsystem and capability list. `None` when there is nothing to say.
pub fn details_line(d: &PciDevice, verbose: bool) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    if verbose {
        if let Some(p) = prog_if_name(d.class, d.subclass, d.prog_if) {
            parts.push(format!("prog-if {:02x} [{p}]", d.prog_if));
        } else if d.prog_if != 0 {
            parts.push(format!("prog-if {:02x}", d.prog_if));
        }
    }
    for b in d.bars.iter().flatten() {
        let kind = match (b.kind, b.prefetchable) {
            (BarKind::Io, _) => "I/O",
            (BarKind::Memory32, false) => "mem32",
            (BarKind::Memory32, true) => "mem32 pref",
            (BarKind::Memory64, false) => "mem64",
            (BarKind::Memory64, true) => "mem64 pref",
        };
        let unassigned = if b.address == 0 { " (unassigned)" } else { "" };
        parts.push(format!(
            "BAR{} {kind} {:#x} [{}]{unassigned}",
            b.index,
            b.address,
            size_string(b.size)
        ));
    }
    if let Some(br) = d.bridge {
        parts.push(format!(
            "buses {:02x}->{:02x}..{:02x}",
            br.primary, br.secondary, br.subordinate
        ));
    }
    if (1..=4).contains(&d.interrupt_pin) {
        match d.irq {
            Some(gsi) => parts.push(format!("{} -> GSI {gsi}", pin_name(d.interrupt_pin))),
            None => parts.push(format!("{}: irq unrouted", pin_name(d.interrupt_pin))),
        }
    }
    if verbose {
        if d.subsystem_vendor != 0 || d.subsystem_id != 0 {
            parts.push(format!(
                "subsystem {:04x}:{:04x}",
                d.subsystem_vendor, d.subsystem_id
            ));
        }
        if !d.capabilities.is_empty() || d.capabilities_malformed {
            let mut caps = String::from("caps");
            for c in &d.capabilities {
                match capability_name(c.id) {
                    Some(n) => {
                        let _ = write!(caps, " {n}@{:02x}", c.offset);
                    }
                    None => {
                        let _ = write!(caps, " {:02x}@{:02x}", c.id, c.offset);
                    }
                }
            }
            if d.capabilities_malformed {
                caps.push_str(" (list malformed, cut short)");
            }
            parts.push(caps);
        }
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}
