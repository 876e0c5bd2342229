//! Host tests: TRB construction, producer ring wrap through the Link TRB, the event ring's
//! cycle handling, TD splitting at 64 KiB boundaries, interrupt acknowledgement.

use std::sync::Mutex;

use adros_hal::Mmio;
use adros_hal::fake::FakeHal;

use super::regs::*;
use super::ring::{EventRing, Ring, TRBS};
use super::*;

const TRB_NORMAL: u32 = 1;
const TRB_LINK: u32 = 6;

fn ty(t: [u32; 4]) -> u32 {
    (t[3] >> 10) & 0x3f
}

#[test]
fn ring_wraps_through_link_trb_with_toggle_cycle() {
    let hal = FakeHal::default();
    let mut r = Ring::new(&hal).unwrap();
    let base = r.phys();
    let link = r.trb(TRBS - 1);
    assert_eq!(ty(link), TRB_LINK);
    assert_eq!(u64::from(link[0]) | (u64::from(link[1]) << 32), base);
    assert!(link[3] & 2 != 0, "toggle cycle");
    assert_eq!(link[3] & 1, 0, "link not handed over yet");
    let mut t = transfer::Normal::new();
    t.set_trb_transfer_length(512);
    for i in 0..TRBS - 1 {
        let pa = r.push(t.into_raw());
        assert_eq!(pa, base + 16 * i as u64);
        assert_eq!(r.trb(i)[3] & 1, 1, "cycle 1 on the first lap");
    }
    // The producer reached the link: handed over with cycle 1, state toggled to 0.
    assert_eq!(r.trb(TRBS - 1)[3] & 1, 1);
    assert!(!r.cycle());
    assert_eq!(r.enqueue_ptr(), base);
    let pa = r.push(t.into_raw());
    assert_eq!(pa, base);
    assert_eq!(r.trb(0)[3] & 1, 0, "second lap writes cycle 0");
    assert_eq!(ty(r.trb(0)), TRB_NORMAL);
    assert_eq!(r.trb(0)[2] & 0x1_ffff, 512);
}

#[test]
fn chained_td_across_the_link_chains_the_link() {
    let hal = FakeHal::default();
    let mut r = Ring::new(&hal).unwrap();
    let mut plain = transfer::Normal::new();
    plain.set_trb_transfer_length(1);
    for _ in 0..TRBS - 2 {
        r.push(plain.into_raw());
    }
    let mut chained = transfer::Normal::new();
    chained.set_chain_bit();
    r.push(chained.into_raw());
    assert!(r.trb(TRBS - 1)[3] & (1 << 4) != 0, "link carries the chain");
}

#[test]
fn event_ring_follows_the_cycle_bit() {
    let hal = FakeHal::default();
    let mem = hal.mem.clone();
    let mut ev = EventRing::new(&hal).unwrap();
    assert_eq!(ev.pop(), None);
    let mut seg = [0u8; 16];
    mem.read(ev.erst_phys(), &mut seg);
    let seg_pa = u64::from_le_bytes(seg[0..8].try_into().unwrap());
    assert_eq!(
        u32::from_le_bytes(seg[8..12].try_into().unwrap()),
        TRBS as u32
    );
    let write = |i: usize, cycle: u32, tag: u32| {
        let mut b = [0u8; 16];
        b[0..4].copy_from_slice(&tag.to_le_bytes());
        b[12..16].copy_from_slice(&((34 << 10) | cycle).to_le_bytes());
        mem.write(seg_pa + 16 * i as u64, &b);
    };
    for i in 0..TRBS {
        write(i, 1, i as u32);
    }
    for i in 0..TRBS {
        assert_eq!(ev.pop().unwrap()[0], i as u32);
    }
    // Lap 2: the old TRBs (cycle 1) are not new events.
    assert_eq!(ev.pop(), None);
    assert_eq!(ev.dequeue_ptr(), seg_pa);
    write(0, 0, 99);
    assert_eq!(ev.pop().unwrap()[0], 99);
    assert_eq!(ev.pop(), None);
}

#[test]
fn tds_split_at_64k_boundaries() {
    // 200 KiB starting 4 KiB below a 64 KiB boundary.
    let base = 0x10_f000;
    let v = normal_trbs(base, 200 * 1024, true, 512);
    let lens: Vec<u32> = v.iter().map(|t| t[2] & 0x1_ffff).collect();
    assert_eq!(lens, vec![4096, 65536, 65536, 65536, 4096]);
    let mut pa = base;
    for (i, t) in v.iter().enumerate() {
        assert_eq!(u64::from(t[0]) | (u64::from(t[1]) << 32), pa);
        pa += u64::from(t[2] & 0x1_ffff);
        let last = i == v.len() - 1;
        assert_eq!(t[3] & (1 << 4) != 0, !last, "chain on all but the last");
        assert_eq!(t[3] & (1 << 5) != 0, last, "IOC on the last");
        assert!(t[3] & (1 << 2) != 0, "ISP on IN");
    }
    // TD size: packets after the first TRB: (200K - 4K) / 512 = 392 → capped at 31.
    assert_eq!((v[0][2] >> 17) & 0x1f, 31);
    assert_eq!((v[4][2] >> 17) & 0x1f, 0);
    // A 13-byte OUT: one TRB, no ISP.
    let v = normal_trbs(0x2000, 13, false, 512);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0][3] & (1 << 2), 0);
}

#[test]
fn dci_and_completion_codes() {
    assert_eq!(dci(0), 1);
    assert_eq!(dci(0x81), 3);
    assert_eq!(dci(0x02), 4);
    assert_eq!(dci(0x8f), 31);
    assert_eq!(code_error(6), UsbError::Stall);
    assert_eq!(code_error(3), UsbError::Babble);
    assert_eq!(code_error(4), UsbError::Transaction);
    assert_eq!(code_error(99), UsbError::Controller(99));
}

/// A register file: reads return what was written (IMAN's IP is write-1-to-clear).
struct Regs(Mutex<Vec<u32>>);

impl Mmio for Regs {
    fn read32(&self, off: usize) -> u32 {
        self.0.lock().unwrap()[off / 4]
    }
    fn write32(&self, off: usize, v: u32) {
        let mut r = self.0.lock().unwrap();
        if off == 0x1020 + IMAN {
            r[off / 4] = (r[off / 4] & !(v & IMAN_IP)) | (v & IMAN_IE);
        } else if off == 0x20 + USBSTS {
            r[off / 4] &= !v;
        } else {
            r[off / 4] = v;
        }
    }
    fn len(&self) -> usize {
        0x2000
    }
}

#[test]
fn interrupt_ack_clears_ip_and_eint() {
    let regs = Regs(Mutex::new(vec![0; 0x800]));
    let irq = IrqRegs {
        op: 0x20,
        ir0: 0x1020,
    };
    assert!(!irq.ack(&regs), "not ours when IP is clear");
    regs.0.lock().unwrap()[(0x1020 + IMAN) / 4] = IMAN_IP | IMAN_IE;
    regs.0.lock().unwrap()[(0x20 + USBSTS) / 4] = USBSTS_EINT;
    assert!(irq.ack(&regs));
    assert_eq!(regs.read32(0x1020 + IMAN), IMAN_IE);
    assert_eq!(regs.read32(0x20 + USBSTS), 0);
    // A vanished device (all ones) is not claimed.
    regs.0.lock().unwrap()[(0x1020 + IMAN) / 4] = u32::MAX;
    assert!(!irq.ack(&regs));
}

#[test]
fn supported_protocol_caps_mark_usb3_ports() {
    let regs = Regs(Mutex::new(vec![0; 0x800]));
    {
        let mut r = regs.0.lock().unwrap();
        // xECP at 0x100: USB 2 protocol for ports 1-4, then USB 3 for ports 5-8.
        r[0x100 / 4] = 0x0200_0402; // major 2, next 4 dwords
        r[0x108 / 4] = 0x0000_0401; // ports 1..=4
        r[0x110 / 4] = 0x0300_0002; // major 3, last
        r[0x118 / 4] = 0x0000_0405; // ports 5..=8
    }
    assert_eq!(supported_protocols(&regs, 0x100, 8), 0xf0);
    // The list ends after the USB 2 capability: no USB 3 ports.
    regs.0.lock().unwrap()[0x100 / 4] = 0x0200_0002;
    assert_eq!(supported_protocols(&regs, 0x100, 8), 0);
}

// ------------------------------------------------------------------ the whole driver

use super::fake_hc::FakeXhci;
use adros_usb::bot::Transport;
use adros_usb::disk::ScsiDisk;

fn bring_up(blocks: usize) -> (Xhci<FakeHal, FakeXhci>, FakeXhci) {
    let hal = FakeHal::default();
    let dev = FakeXhci::new(hal.mem.clone(), blocks);
    let hc = Xhci::new(hal, dev.clone(), false).unwrap();
    (hc, dev)
}

#[test]
fn enumerates_and_reads_a_stick_through_the_rings() {
    let (mut hc, dev) = bring_up(2048);
    assert_eq!(hc.ports(), 2);
    assert!(!hc.is_usb3(1) && hc.is_usb3(2));
    assert!(hc.port_status(1).connected);
    assert!(!hc.port_status(2).connected);
    let d = adros_usb::enumerate(&mut hc, 1).unwrap();
    assert_eq!(d.product, "Fake");
    assert_eq!(d.speed, Speed::High);
    let mut t = d
        .config
        .interfaces
        .iter()
        .find_map(|i| Transport::from_interface(d.id, i))
        .unwrap();
    let disk = ScsiDisk::probe(&mut t, &mut hc, 0, 3, |_| {}).unwrap();
    assert_eq!(disk.blocks, 2048);
    assert_eq!(disk.vendor, "FAKE");
    // 600 KiB: three READs (256 + 256 + 88 KiB), each TD split at 64 KiB boundaries; a
    // few hundred commands wrap every transfer ring through its Link TRB.
    for round in 0..60u64 {
        let lba = (round * 37) % 800;
        let mut buf = vec![0u8; 600 * 1024];
        disk.read(&mut t, &mut hc, lba, &mut buf).unwrap();
        let want = &dev.0.lock().unwrap().disk[lba as usize * 512..lba as usize * 512 + buf.len()];
        assert!(buf == want, "round {round}: data differs");
    }
    let data: Vec<u8> = (0..300 * 1024).map(|i| (i * 13 % 256) as u8).collect();
    disk.write(&mut t, &mut hc, 100, &data).unwrap();
    assert!(dev.0.lock().unwrap().disk[100 * 512..100 * 512 + data.len()] == data[..]);
    assert_eq!(hc.stats.stalls, 0);
    assert_eq!(t.resets, 0);
}

#[test]
fn a_stall_is_recovered_with_reset_endpoint_and_set_dequeue() {
    let (mut hc, dev) = bring_up(256);
    let d = adros_usb::enumerate(&mut hc, 1).unwrap();
    let mut t = Transport::from_interface(d.id, &d.config.interfaces[0]).unwrap();
    let disk = ScsiDisk::probe(&mut t, &mut hc, 0, 3, |_| {}).unwrap();
    dev.0.lock().unwrap().faults.stall_data_in = 1;
    dev.0.lock().unwrap().commands.clear();
    let mut buf = vec![0u8; 4096];
    // The data phase stalls: the driver recovers the endpoint (Reset Endpoint 14, Set TR
    // Dequeue 16), BOT clears the device's halt and reads the CSW (failed → sense).
    assert!(disk.read(&mut t, &mut hc, 8, &mut buf).is_err());
    assert_eq!(hc.stats.stalls, 1);
    let cmds = dev.0.lock().unwrap().commands.clone();
    assert!(cmds.windows(2).any(|w| w == [14, 16]), "{cmds:?}");
    disk.read(&mut t, &mut hc, 8, &mut buf).unwrap();
    assert!(buf[..] == dev.0.lock().unwrap().disk[8 * 512..8 * 512 + 4096]);
}

#[test]
fn a_device_that_never_answers_times_out_and_the_endpoint_is_stopped() {
    let (mut hc, dev) = bring_up(256);
    let d = adros_usb::enumerate(&mut hc, 1).unwrap();
    let mut t = Transport::from_interface(d.id, &d.config.interfaces[0]).unwrap();
    let disk = ScsiDisk::probe(&mut t, &mut hc, 0, 3, |_| {}).unwrap();
    dev.0.lock().unwrap().faults.hang_bulk = true;
    dev.0.lock().unwrap().commands.clear();
    let mut buf = vec![0u8; 512];
    let e = disk.read(&mut t, &mut hc, 0, &mut buf).unwrap_err();
    assert!(
        matches!(
            e,
            adros_usb::disk::DiskError::Transport(adros_usb::bot::BotError::Usb(UsbError::Timeout))
        ),
        "{e:?}"
    );
    assert!(hc.stats.timeouts >= 1);
    let cmds = dev.0.lock().unwrap().commands.clone();
    assert!(cmds.contains(&15), "Stop Endpoint: {cmds:?}");
}

#[test]
fn a_stick_pulled_out_mid_transfer_fails_at_once_with_no_device() {
    let (mut hc, dev) = bring_up(256);
    let d = adros_usb::enumerate(&mut hc, 1).unwrap();
    let mut t = Transport::from_interface(d.id, &d.config.interfaces[0]).unwrap();
    let disk = ScsiDisk::probe(&mut t, &mut hc, 0, 3, |_| {}).unwrap();
    dev.0.lock().unwrap().faults.unplug_on_bulk = true;
    let mut buf = vec![0u8; 4096];
    let t0 = hc.hal.now_ns();
    let e = disk.read(&mut t, &mut hc, 0, &mut buf).unwrap_err();
    assert!(e.is_fatal(), "{e:?}");
    assert!(
        matches!(
            e,
            adros_usb::disk::DiskError::Transport(adros_usb::bot::BotError::Usb(
                UsbError::NoDevice
            ))
        ),
        "{e:?}"
    );
    // Not the 20 s bulk timeout: the Port Status Change event ended the wait.
    assert!(
        hc.hal.now_ns() - t0 < 1_000_000_000,
        "waited {} ns",
        hc.hal.now_ns() - t0
    );
    assert_eq!(hc.stats.timeouts, 0);
    assert_eq!(hc.stats.unplugged, 1);
    // BOT does not try reset recovery on a gone device; later I/O fails at once.
    assert_eq!(t.resets, 0);
    assert!(
        disk.read(&mut t, &mut hc, 0, &mut buf)
            .unwrap_err()
            .is_fatal()
    );
    assert!(!hc.port_status(1).connected);
    assert_ne!(hc.take_port_changes(), 0);
    // Releasing the device disables its slot.
    dev.0.lock().unwrap().commands.clear();
    hc.release_device(d.id);
    assert_eq!(dev.0.lock().unwrap().commands.last(), Some(&10));
    assert!(hc.device_port(d.id).is_none());
}

#[test]
fn an_empty_port_is_no_device() {
    let (mut hc, _dev) = bring_up(16);
    assert_eq!(
        adros_usb::enumerate(&mut hc, 2).unwrap_err(),
        UsbError::NoDevice
    );
    assert_eq!(hc.enable_port(9), Err(UsbError::NoDevice));
}

#[test]
fn a_malformed_configuration_releases_the_slot_and_disables_the_port() {
    let (mut hc, dev) = bring_up(16);
    dev.0.lock().unwrap().faults.zero_length_config = true;
    let e = adros_usb::enumerate(&mut hc, 1).unwrap_err();
    assert_eq!(
        e,
        UsbError::Descriptor(adros_usb::desc::DescError::ZeroLength { offset: 9 })
    );
    let cmds = dev.0.lock().unwrap().commands.clone();
    // Enable Slot, Address Device, …, Disable Slot.
    assert_eq!(cmds.first(), Some(&9));
    assert_eq!(cmds.last(), Some(&10), "{cmds:?}");
    assert!(!hc.port_status(1).enabled, "port disabled");
    assert!(
        hc.device_port(adros_usb::DeviceId(1)).is_none(),
        "slot freed"
    );
}

#[test]
fn devices_behind_a_hub_get_a_route_string_and_the_hub_its_flag() {
    let (mut hc, dev) = bring_up(16);
    let hub = adros_usb::enumerate(&mut hc, 1).unwrap();
    hc.set_hub(hub.id, 4).unwrap();
    let (ty, slot, sc) = *dev.0.lock().unwrap().slot_contexts.last().unwrap();
    // Configure Endpoint (12) of the hub's slot: Hub flag (bit 26), 4 ports (dword 1, 31:24).
    assert_eq!((ty, slot), (12, hub.id.0));
    assert!(sc[0] & (1 << 26) != 0, "Hub flag: {sc:x?}");
    assert_eq!(sc[1] >> 24, 4);
    // A full-speed device on hub port 3: route string 3, root port 1, speed 1; the hub is
    // high-speed, so its slot and port are the device's transaction translator.
    let child = hc.new_device_behind_hub(hub.id, 3, Speed::Full).unwrap();
    assert_ne!(child, hub.id);
    let (ty, slot, sc) = *dev.0.lock().unwrap().slot_contexts.last().unwrap();
    assert_eq!((ty, slot), (11, child.0));
    assert_eq!(sc[0] & 0xf_ffff, 3, "route string");
    assert_eq!((sc[0] >> 20) & 0xf, 1, "full-speed");
    assert_eq!((sc[1] >> 16) & 0xff, 1, "root port");
    assert_eq!(sc[2] & 0xff, u32::from(hub.id.0), "TT hub slot");
    assert_eq!((sc[2] >> 8) & 0xff, 3, "TT port");
    assert_eq!(hc.device_port(child), Some((1, Speed::Full)));
    // Port numbers outside a route string's 4 bits are refused.
    assert_eq!(
        hc.new_device_behind_hub(hub.id, 16, Speed::Full),
        Err(UsbError::NoDevice)
    );
    assert_eq!(
        hc.new_device_behind_hub(DeviceId(30), 1, Speed::Full),
        Err(UsbError::NoDevice)
    );
}
