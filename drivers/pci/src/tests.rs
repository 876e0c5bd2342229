//! Host tests against a map-backed configuration space that models BAR sizing,
//! write-one-to-clear status bits, bridges, multi-function devices and broken lists.

use std::cell::RefCell;
use std::collections::BTreeMap;

use super::*;

const IO_MEM: u32 = 0b11;

#[derive(Default)]
struct Fake {
    regs: RefCell<BTreeMap<(PciAddress, u16), u32>>,
    /// Writable bits of each implemented BAR dword (the rest read back as stored flags/zero).
    bar_masks: BTreeMap<(PciAddress, u16), u32>,
    /// All-ones writes per BAR dword.
    sizing_writes: RefCell<BTreeMap<(PciAddress, u16), u32>>,
    /// Things the code under test must never do.
    violations: RefCell<Vec<String>>,
    command_writes: RefCell<Vec<(PciAddress, u32)>>,
}

fn a(bus: u8, dev: u8, func: u8) -> PciAddress {
    PciAddress::new(0, bus, dev, func)
}

impl Fake {
    fn set(&mut self, at: PciAddress, off: u16, v: u32) {
        self.regs.get_mut().insert((at, off), v);
    }

    /// A function with ID, class and header type; command = IO|MEM.
    fn func(&mut self, at: PciAddress, vendor: u16, device: u16, class: u32, rev: u8, header: u8) {
        self.set(at, reg::ID, u32::from(vendor) | (u32::from(device) << 16));
        self.set(at, reg::CLASS_REV, (class << 8) | u32::from(rev));
        self.set(at, reg::HEADER, u32::from(header) << 16);
        self.set(at, reg::COMMAND, IO_MEM);
    }

    /// A BAR: `value` is what firmware programmed (address | flag bits), `size` its size.
    fn bar(&mut self, at: PciAddress, slot: u16, value: u32, size: u64, io16: bool) {
        let off = reg::BAR0 + slot * 4;
        self.set(at, off, value);
        let flags = if value & 1 == 1 { 0x3 } else { 0xf };
        let mut mask = !(size as u32).wrapping_sub(1) & !flags;
        if size >= 1 << 32 {
            mask = 0;
        }
        if io16 {
            mask &= 0xffff;
        }
        self.bar_masks.insert((at, off), mask);
        if value & 0x6 == 0x4 && value & 1 == 0 {
            // 64-bit: the upper dword is all address bits.
            let hi_mask = !((size.wrapping_sub(1)) >> 32) as u32;
            self.bar_masks.insert((at, off + 4), hi_mask);
            self.regs.get_mut().entry((at, off + 4)).or_insert(0);
        }
    }

    fn caps(&mut self, at: PciAddress, ptr: u8, list: &[(u16, u8, u8)]) {
        let cmd = self.regs.get_mut()[&(at, reg::COMMAND)];
        self.set(
            at,
            reg::COMMAND,
            cmd | (u32::from(reg::STATUS_CAP_LIST) << 16),
        );
        self.set(at, reg::CAP_PTR, u32::from(ptr));
        for &(off, id, next) in list {
            self.set(at, off, u32::from(id) | (u32::from(next) << 8));
        }
    }

    fn present(&self, at: PciAddress) -> bool {
        self.regs.borrow().contains_key(&(at, reg::ID))
    }
}

impl ConfigSpace for Fake {
    fn read(&self, at: PciAddress, off: u16) -> u32 {
        assert_eq!(off & 3, 0, "unaligned read");
        if !self.present(at) {
            return 0xffff_ffff;
        }
        self.regs.borrow().get(&(at, off)).copied().unwrap_or(0)
    }

    fn write(&self, at: PciAddress, off: u16, v: u32) {
        assert_eq!(off & 3, 0, "unaligned write");
        if !self.present(at) {
            return;
        }
        let mut regs = self.regs.borrow_mut();
        let old = regs.get(&(at, off)).copied().unwrap_or(0);
        if off == reg::COMMAND {
            self.command_writes.borrow_mut().push((at, v));
            // Status: bits 11..16 and 8 are write-one-to-clear; the rest read-only.
            let rw1c = 0xf900u32 << 16;
            let status = (old & 0xffff_0000) & !(v & rw1c);
            regs.insert((at, off), status | (v & 0xffff));
            return;
        }
        if let Some(&mask) = self.bar_masks.get(&(at, off)) {
            if v == 0xffff_ffff {
                *self
                    .sizing_writes
                    .borrow_mut()
                    .entry((at, off))
                    .or_insert(0) += 1;
                let cmd = regs.get(&(at, reg::COMMAND)).copied().unwrap_or(0);
                let class = regs.get(&(at, reg::CLASS_REV)).copied().unwrap_or(0) >> 16;
                if cmd & IO_MEM != 0 && class != 0x0600 {
                    self.violations
                        .borrow_mut()
                        .push(format!("{at}: BAR {off:#x} sized with decode on"));
                }
            }
            regs.insert((at, off), (v & mask) | (old & !mask));
            return;
        }
        if off == reg::ID || off == reg::CLASS_REV {
            return;
        }
        // Unimplemented BARs are hardwired to zero.
        let header = (regs.get(&(at, reg::HEADER)).copied().unwrap_or(0) >> 16) & 0x7f;
        let bar_end = if header == 0 { 0x28 } else { 0x18 };
        if (reg::BAR0..bar_end).contains(&off) {
            return;
        }
        regs.insert((at, off), v);
    }
}

/// The machine: q35-like bus 0, a root port to bus 1, and broken things.
fn machine() -> Fake {
    let mut f = Fake::default();
    // 00:00.0 host bridge, decode on, no BARs.
    f.func(a(0, 0, 0), 0x8086, 0x29c0, 0x06_00_00, 0, 0);
    // 00:01.0 PCIe root port -> bus 1, one 4K BAR, PCIe capability, INTA.
    f.func(a(0, 1, 0), 0x1b36, 0x000c, 0x06_04_00, 0, 1);
    f.set(a(0, 1, 0), reg::BRIDGE_BUSES, 0x00_01_01_00);
    f.bar(a(0, 1, 0), 0, 0xfea0_0000, 4096, false);
    f.set(a(0, 1, 0), reg::INTERRUPT, 0x01_0a);
    f.caps(a(0, 1, 0), 0x40, &[(0x40, 0x10, 0x60), (0x60, 0x11, 0x00)]);
    // 01:00.0 virtio-blk: 16-bit I/O BAR0, mem32 BAR1, 64-bit prefetchable BAR4 (+5), INTA.
    f.func(a(1, 0, 0), 0x1af4, 0x1001, 0x01_00_00, 0, 0);
    f.bar(a(1, 0, 0), 0, 0xc001, 64, true);
    f.bar(a(1, 0, 0), 1, 0xfe80_0000, 4096, false);
    f.bar(a(1, 0, 0), 4, 0x0000_000c, 16384, false);
    f.set(a(1, 0, 0), reg::BAR0 + 5 * 4, 0x80);
    f.set(a(1, 0, 0), reg::INTERRUPT, 0x01_0b);
    f.set(a(1, 0, 0), reg::SUBSYSTEM, 0x0002_1af4);
    // 01:02.0 a second device behind the port, INTA (swizzles to INTC).
    f.func(a(1, 2, 0), 0x8086, 0x100e, 0x02_00_00, 3, 0);
    f.set(a(1, 2, 0), reg::INTERRUPT, 0x01_0b);
    // 00:02.x multi-function USB: two UHCI (I/O BAR4) and EHCI (mem BAR0).
    f.func(a(0, 2, 0), 0x8086, 0x2934, 0x0c_03_00, 3, 0x80);
    f.bar(a(0, 2, 0), 4, 0xc041, 32, true);
    f.func(a(0, 2, 1), 0x8086, 0x2935, 0x0c_03_00, 3, 0x00);
    f.bar(a(0, 2, 1), 4, 0xc061, 32, true);
    f.func(a(0, 2, 2), 0x8086, 0x293a, 0x0c_03_20, 3, 0x00);
    f.bar(a(0, 2, 2), 0, 0xfebd_6000, 1024, false);
    // 00:03.0 capability list that loops on itself.
    f.func(a(0, 3, 0), 0x1234, 0x5678, 0x08_80_00, 0, 0);
    f.caps(a(0, 3, 0), 0x40, &[(0x40, 0x05, 0x40)]);
    // 00:04.0 capability list pointing back into the header.
    f.func(a(0, 4, 0), 0x1b36, 0x0005, 0x00_ff_00, 0, 0);
    f.caps(a(0, 4, 0), 0x50, &[(0x50, 0x01, 0x20)]);
    // 00:05.0 single-function device, yet function 1 answers: must not be listed.
    f.func(a(0, 5, 0), 0x1b36, 0x0011, 0x08_80_00, 0, 0);
    f.func(a(0, 5, 1), 0x1b36, 0x0011, 0x08_80_00, 0, 0);
    // 00:06.0 bridge with no secondary bus assigned; 00:07.0 bridge to bus 1 again.
    f.func(a(0, 6, 0), 0x1b36, 0x0001, 0x06_04_00, 0, 1);
    f.func(a(0, 7, 0), 0x1b36, 0x0001, 0x06_04_00, 0, 1);
    f.set(a(0, 7, 0), reg::BRIDGE_BUSES, 0x00_01_01_00);
    // 00:09.0 explicitly all ones: absent.
    f.set(a(0, 9, 0), reg::ID, 0xffff_ffff);
    f.set(a(0, 9, 0), reg::HEADER, 0xffff_ffff);
    // 00:1f.2 AHCI, revision 2, ABAR at BAR5, status has a sticky error bit set.
    f.func(a(0, 0x1f, 2), 0x8086, 0x2922, 0x01_06_01, 2, 0);
    f.bar(a(0, 0x1f, 2), 5, 0xfebd_5000, 4096, false);
    f.set(a(0, 0x1f, 2), reg::COMMAND, IO_MEM | (0x2000 << 16));
    f.set(a(0, 0x1f, 2), reg::INTERRUPT, 0x01_0a);
    // 00:1f.0 LPC: function 0 of the multi-function device 1f.
    f.func(a(0, 0x1f, 0), 0x8086, 0x2918, 0x06_01_00, 2, 0x80);
    f
}

fn find(e: &Enumeration, at: PciAddress) -> &PciDevice {
    e.devices
        .iter()
        .find(|d| d.addr == at)
        .unwrap_or_else(|| panic!("{at} not found"))
}

#[test]
fn finds_every_reachable_function_in_order() {
    let f = machine();
    let e = enumerate(&f, 0, 0);
    let got: Vec<String> = e.devices.iter().map(|d| slot_name(d.addr)).collect();
    assert_eq!(
        got,
        [
            "00:00.0", "00:01.0", "00:02.0", "00:02.1", "00:02.2", "00:03.0", "00:04.0", "00:05.0",
            "00:06.0", "00:07.0", "00:1f.0", "00:1f.2", "01:00.0", "01:02.0"
        ]
    );
    assert_eq!(e.buses, [0, 1]);
    assert_eq!(e.skipped_bridges, [a(0, 6, 0), a(0, 7, 0)]);
    assert!(
        f.violations.borrow().is_empty(),
        "{:?}",
        f.violations.borrow()
    );
}

#[test]
fn bridge_children_know_their_parent() {
    let f = machine();
    let e = enumerate(&f, 0, 0);
    assert_eq!(find(&e, a(1, 0, 0)).parent_bridge, Some(a(0, 1, 0)));
    assert_eq!(find(&e, a(0, 2, 0)).parent_bridge, None);
    assert_eq!(
        find(&e, a(0, 1, 0)).bridge,
        Some(BridgeBuses {
            primary: 0,
            secondary: 1,
            subordinate: 1
        })
    );
}

#[test]
fn multifunction_only_when_function_zero_says_so() {
    let f = machine();
    let e = enumerate(&f, 0, 0);
    assert!(find(&e, a(0, 2, 2)).multifunction);
    assert!(!e.devices.iter().any(|d| d.addr == a(0, 5, 1)));
    assert!(!e.devices.iter().any(|d| d.addr == a(0, 9, 0)));
}

#[test]
fn bars_are_sized_with_decode_off_and_restored() {
    let f = machine();
    let before = f.regs.borrow().clone();
    let e = enumerate(&f, 0, 0);
    assert!(
        f.violations.borrow().is_empty(),
        "{:?}",
        f.violations.borrow()
    );
    let v = find(&e, a(1, 0, 0));
    assert_eq!(
        v.bar(0),
        Some(Bar {
            index: 0,
            kind: BarKind::Io,
            address: 0xc000,
            size: 64,
            prefetchable: false
        })
    );
    assert_eq!(
        v.bar(1),
        Some(Bar {
            index: 1,
            kind: BarKind::Memory32,
            address: 0xfe80_0000,
            size: 4096,
            prefetchable: false
        })
    );
    assert_eq!(v.bar(2), None);
    assert_eq!(
        v.bar(4),
        Some(Bar {
            index: 4,
            kind: BarKind::Memory64,
            address: 0x80_0000_0000,
            size: 16384,
            prefetchable: true
        })
    );
    assert_eq!(v.bar(5), None, "upper half of a 64-bit BAR is not a BAR");
    assert_eq!(
        find(&e, a(0, 0x1f, 2)).bar(5).map(|b| (b.address, b.size)),
        Some((0xfebd_5000, 4096))
    );
    assert_eq!(find(&e, a(0, 2, 2)).bar(0).map(|b| b.size), Some(1024));
    // Every BAR dword written with all-ones exactly once (the 64-bit upper half included).
    let w = f.sizing_writes.borrow();
    assert_eq!(w.get(&(a(1, 0, 0), 0x20)), Some(&1));
    assert_eq!(w.get(&(a(1, 0, 0), 0x24)), Some(&1));
    assert!(w.values().all(|&n| n == 1), "{w:?}");
    // Everything is back as firmware left it (status error bits included).
    assert_eq!(*f.regs.borrow(), before);
}

#[test]
fn host_bridge_decode_is_never_toggled() {
    let f = machine();
    enumerate(&f, 0, 0);
    assert!(
        !f.command_writes
            .borrow()
            .iter()
            .any(|(at, _)| *at == a(0, 0, 0))
    );
}

#[test]
fn sizes_and_alignment_are_sane() {
    let f = machine();
    for d in enumerate(&f, 0, 0).devices {
        for b in d.bars.iter().flatten() {
            assert!(b.size.is_power_of_two(), "{b:?}");
            assert_eq!(b.address % b.size, 0, "{b:?}");
        }
    }
}

#[test]
fn capability_lists_and_their_guards() {
    let f = machine();
    let e = enumerate(&f, 0, 0);
    let rp = find(&e, a(0, 1, 0));
    assert_eq!(
        rp.capabilities,
        [
            Capability {
                id: 0x10,
                offset: 0x40
            },
            Capability {
                id: 0x11,
                offset: 0x60
            }
        ]
    );
    assert!(!rp.capabilities_malformed);
    assert_eq!(rp.capability(0x11).map(|c| c.offset), Some(0x60));
    let looped = find(&e, a(0, 3, 0));
    assert_eq!(looped.capabilities.len(), MAX_CAPABILITIES);
    assert!(looped.capabilities_malformed);
    let low = find(&e, a(0, 4, 0));
    assert_eq!(
        low.capabilities,
        [Capability {
            id: 0x01,
            offset: 0x50
        }]
    );
    assert!(low.capabilities_malformed);
    assert!(find(&e, a(1, 0, 0)).capabilities.is_empty());
}

#[test]
fn absent_bus_and_absent_functions_yield_nothing() {
    let f = machine();
    assert!(scan_bus(&f, 0, 0x42).is_empty());
    assert!(probe_function(&f, a(0, 9, 0)).is_none());
    let e = enumerate(&f, 0, 0x42);
    assert!(e.devices.is_empty());
    assert_eq!(e.buses, [0x42]);
    assert!(enumerate(&f, 1, 0).devices.is_empty(), "segment 1 is empty");
}

#[test]
fn bridge_loops_terminate() {
    let mut f = Fake::default();
    // Bridges on bus 1 and 2 pointing at each other and back at bus 0.
    f.func(a(0, 1, 0), 0x1b36, 0x0001, 0x06_04_00, 0, 1);
    f.set(a(0, 1, 0), reg::BRIDGE_BUSES, 0x00_02_01_00);
    f.func(a(1, 0, 0), 0x1b36, 0x0001, 0x06_04_00, 0, 1);
    f.set(a(1, 0, 0), reg::BRIDGE_BUSES, 0x00_02_02_01);
    f.func(a(2, 0, 0), 0x1b36, 0x0001, 0x06_04_00, 0, 1);
    f.set(a(2, 0, 0), reg::BRIDGE_BUSES, 0x00_01_01_02);
    f.func(a(2, 1, 0), 0x1b36, 0x0001, 0x06_04_00, 0, 1);
    f.set(a(2, 1, 0), reg::BRIDGE_BUSES, 0x00_00_00_02);
    let e = enumerate(&f, 0, 0);
    assert_eq!(e.devices.len(), 4);
    assert_eq!(e.buses, [0, 1, 2]);
}

#[test]
fn lspci_lines() {
    let f = machine();
    let e = enumerate(&f, 0, 0);
    assert_eq!(
        lspci_line(find(&e, a(0, 0x1f, 2))),
        "00:1f.2 SATA controller [0106]: Intel Corporation 82801IR/IO/IH (ICH9R/DO/DH) 6 port SATA Controller [AHCI mode] [8086:2922] (rev 02)"
    );
    assert_eq!(
        lspci_line(find(&e, a(0, 0, 0))),
        "00:00.0 Host bridge [0600]: Intel Corporation 82G33/G31/P35/P31 Express DRAM Controller [8086:29c0]"
    );
    assert_eq!(
        lspci_line(find(&e, a(1, 0, 0))),
        "01:00.0 SCSI storage controller [0100]: Red Hat, Inc. Virtio block device [1af4:1001]"
    );
    // Unknown device of a known vendor; known class without that subclass.
    assert_eq!(
        lspci_line(find(&e, a(0, 3, 0))),
        "00:03.0 System peripheral [0880]: QEMU/Bochs Device [1234:5678]"
    );
    assert_eq!(
        lspci_line(find(&e, a(0, 4, 0))),
        "00:04.0 Unclassified device [00ff]: Red Hat, Inc. QEMU PCI Test Device [1b36:0005]"
    );
    let mut d = find(&e, a(0, 3, 0)).clone();
    d.vendor_id = 0xabcd;
    d.class = 0x77;
    d.addr = PciAddress::new(1, 2, 3, 4);
    assert_eq!(
        lspci_line(&d),
        "0001:02:03.4 Class [7780]: Device [abcd:5678]"
    );
}

#[test]
fn details_lines() {
    let f = machine();
    let e = enumerate(&f, 0, 0);
    let mut v = find(&e, a(1, 0, 0)).clone();
    assert_eq!(
        details_line(&v, false).unwrap(),
        "BAR0 I/O 0xc000 [64]; BAR1 mem32 0xfe800000 [4K]; BAR4 mem64 pref 0x8000000000 [16K]; INTA: irq unrouted"
    );
    v.irq = Some(22);
    assert!(details_line(&v, false).unwrap().ends_with("INTA -> GSI 22"));
    assert!(
        details_line(&v, true)
            .unwrap()
            .contains("subsystem 1af4:0002")
    );
    assert!(
        details_line(find(&e, a(0, 3, 0)), true)
            .unwrap()
            .contains("MSI@40 MSI@40")
    );
    assert!(
        details_line(find(&e, a(0, 3, 0)), true)
            .unwrap()
            .contains("malformed")
    );
    assert_eq!(details_line(find(&e, a(0, 0, 0)), false), None);
    assert_eq!(
        details_line(find(&e, a(0, 1, 0)), false).unwrap(),
        "BAR0 mem32 0xfea00000 [4K]; buses 00->01..01; INTA: irq unrouted"
    );
}

#[test]
fn names() {
    assert_eq!(virtio_device_type(0x1af4, 0x1042), Some("block"));
    assert_eq!(virtio_device_type(0x1af4, 0x1000), Some("network"));
    assert_eq!(device_name(0x1af4, 0x1077), Some("Virtio 1.0 device"));
    assert_eq!(
        device_name(0x1b36, 0x000d),
        Some("QEMU XHCI Host Controller")
    );
    assert_eq!(
        device_name(0x1234, 0x1111),
        Some("Bochs display (QEMU standard VGA)")
    );
    assert_eq!(
        device_name(0x8086, 0x10d3),
        Some("82574L Gigabit Network Connection")
    );
    assert_eq!(
        device_name(0x8086, 0x293e),
        Some("82801I (ICH9 Family) HD Audio Controller")
    );
    assert_eq!(device_name(0x1af4, 0x2000), None);
    assert_eq!(subclass_name(0x0c, 0x03), Some("USB controller"));
    assert_eq!(subclass_name(0x0c, 0x42), Some("Serial bus controller"));
    assert_eq!(class_name(0x42), None);
    assert_eq!(prog_if_name(0x0c, 0x03, 0x30), Some("XHCI"));
    assert_eq!(capability_name(0x11), Some("MSI-X"));
}

#[test]
fn sizes_print_like_lspci() {
    assert_eq!(size_string(32), "32");
    assert_eq!(size_string(4096), "4K");
    assert_eq!(size_string(16 << 20), "16M");
    assert_eq!(size_string(4 << 30), "4G");
    assert_eq!(size_string(1536), "1536");
}

#[test]
fn irq_routing_swizzles_through_bridges() {
    assert_eq!(swizzle(1, 0), 1);
    assert_eq!(swizzle(1, 2), 3);
    assert_eq!(swizzle(4, 1), 1);
    assert_eq!(swizzle(2, 7), 1);
    let f = machine();
    let e = enumerate(&f, 0, 0);
    // Only bus 0 has a routing table: device d, pin p -> GSI 16 + (d + p - 1) % 4.
    let prt =
        |bus: u8, dev: u8, _f: u8, pin: u8| (bus == 0).then(|| 16 + u32::from((dev + pin - 1) % 4));
    let mut asked = Vec::new();
    let g = route_irq(&e.devices, find(&e, a(1, 2, 0)), |b, d, fun, p| {
        asked.push((b, d, fun, p));
        prt(b, d, fun, p)
    });
    // 01:02.0 INTA -> INTC at the root port 00:01.0 -> 16 + (1 + 3 - 1) % 4 = 19.
    assert_eq!(asked, [(1, 2, 0, 1), (0, 1, 0, 3)]);
    assert_eq!(g, Some(19));
    assert_eq!(
        route_irq(&e.devices, find(&e, a(0, 0x1f, 2)), prt),
        Some(16 + (0x1f % 4))
    );
    assert_eq!(
        route_irq(&e.devices, find(&e, a(0, 0, 0)), prt),
        None,
        "no pin"
    );
    assert_eq!(
        route_irq(&e.devices, find(&e, a(1, 0, 0)), |_, _, _, _| None),
        None,
        "unrouted"
    );
}

#[test]
fn command_updates_keep_status_error_bits() {
    let f = machine();
    let sata = a(0, 0x1f, 2);
    let c = update_command(&f, sata, |c| c | CommandRegister::BUS_MASTER_ENABLE);
    assert!(c.contains(CommandRegister::BUS_MASTER_ENABLE | CommandRegister::MEMORY_ENABLE));
    let raw = f.read(sata, reg::COMMAND);
    assert_eq!(raw & 0xffff, 0b111);
    assert_eq!(raw >> 16, 0x2000, "sticky status bit survived");
    assert_eq!(f.read_u16(sata, 0x02), 0x2922);
    assert_eq!(f.read_u8(sata, 0x08), 2);
    assert_eq!(f.read_u8(sata, 0x0b), 0x01);
}

#[test]
fn to_pci_types_bar() {
    let b = Bar {
        index: 4,
        kind: BarKind::Memory64,
        address: 0x1_0000_0000,
        size: 0x4000,
        prefetchable: true,
    };
    assert!(matches!(
        pci_types::Bar::from(b),
        pci_types::Bar::Memory64 {
            address: 0x1_0000_0000,
            size: 0x4000,
            prefetchable: true
        }
    ));
}
