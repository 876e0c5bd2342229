//! The driver against a fake 82540EM: a register file that answers EERD, clears RST, walks
//! the transmit ring when TDT moves (recording each frame), and fills receive descriptors
//! when a test injects a frame — through the fake HAL's memory, by physical address, as
//! the device would over the bus.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use adros_hal::Mmio;
use adros_hal::fake::{FakeHal, FakeMemory};

use super::*;

#[derive(Default)]
struct State {
    regs: BTreeMap<usize, u32>,
    eeprom: Option<[u16; 3]>,
    /// CTRL.RST never clears.
    stuck_in_reset: bool,
    /// The transmitter does not process descriptors.
    tx_stalled: bool,
    sent: Vec<Vec<u8>>,
    resets: u32,
}

#[derive(Clone)]
struct FakeDev {
    st: Arc<Mutex<State>>,
    mem: FakeMemory,
}

impl FakeDev {
    fn new(mem: FakeMemory) -> Self {
        let d = FakeDev {
            st: Arc::new(Mutex::new(State {
                eeprom: Some([0x5452, 0x1200, 0x5634]),
                ..State::default()
            })),
            mem,
        };
        d.set(STATUS, STATUS_LU | STATUS_FD | (2 << STATUS_SPEED_SHIFT));
        d
    }

    fn get(&self, r: usize) -> u32 {
        *self.st.lock().unwrap().regs.get(&r).unwrap_or(&0)
    }

    fn set(&self, r: usize, v: u32) {
        self.st.lock().unwrap().regs.insert(r, v);
    }

    fn raise(&self, cause: u32) {
        let icr = self.get(ICR);
        self.set(ICR, icr | cause);
    }

    fn sent(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.st.lock().unwrap().sent)
    }

    /// Walks the transmit ring from TDH to TDT.
    fn run_tx(&self) {
        if self.st.lock().unwrap().tx_stalled || self.get(TCTL) & TCTL_EN == 0 {
            return;
        }
        let base = u64::from(self.get(TDBAL)) | (u64::from(self.get(TDBAH)) << 32);
        let n = self.get(TDLEN) as usize / 16;
        let mut head = self.get(TDH) as usize;
        let tail = self.get(TDT) as usize;
        while head != tail {
            let mut d = [0u8; 16];
            assert!(self.mem.read(base + head as u64 * 16, &mut d));
            let addr = u64::from_le_bytes(d[0..8].try_into().unwrap());
            let len = u16::from_le_bytes([d[8], d[9]]) as usize;
            assert_eq!(d[11] & (TXD_CMD_EOP | TXD_CMD_IFCS | TXD_CMD_RS), 0x0b);
            let mut frame = vec![0u8; len];
            assert!(
                self.mem.read(addr, &mut frame),
                "TX buffer outside DMA memory"
            );
            self.st.lock().unwrap().sent.push(frame);
            d[12] |= TXD_STAT_DD;
            assert!(self.mem.write(base + head as u64 * 16 + 12, &d[12..13]));
            head = (head + 1) % n;
        }
        self.set(TDH, head as u32);
        self.raise(INT_TXDW);
    }

    /// Puts `frame` into the next receive descriptor the driver has given the device, with
    /// the given status and error bytes; false (and RXO) when the ring is full.
    fn inject_raw(&self, frame: &[u8], len: u16, status: u8, errors: u8) -> bool {
        if self.get(RCTL) & RCTL_EN == 0 {
            return false;
        }
        let base = u64::from(self.get(RDBAL)) | (u64::from(self.get(RDBAH)) << 32);
        let n = self.get(RDLEN) as usize / 16;
        let head = self.get(RDH) as usize;
        if head == self.get(RDT) as usize {
            self.raise(INT_RXO);
            return false;
        }
        let mut d = [0u8; 16];
        assert!(self.mem.read(base + head as u64 * 16, &mut d));
        let addr = u64::from_le_bytes(d[0..8].try_into().unwrap());
        assert!(self.mem.write(addr, frame));
        d[8..10].copy_from_slice(&len.to_le_bytes());
        d[12] = status;
        d[13] = errors;
        assert!(self.mem.write(base + head as u64 * 16 + 8, &d[8..16]));
        self.set(RDH, ((head + 1) % n) as u32);
        self.raise(INT_RXT0);
        true
    }

    fn inject(&self, frame: &[u8]) -> bool {
        self.inject_raw(frame, frame.len() as u16, RXD_STAT_DD | RXD_STAT_EOP, 0)
    }
}

impl Mmio for FakeDev {
    fn read32(&self, off: usize) -> u32 {
        assert!(off < 0x20000 && off.is_multiple_of(4));
        let mut st = self.st.lock().unwrap();
        match off {
            ICR => st.regs.insert(ICR, 0).unwrap_or(0),
            _ => *st.regs.get(&off).unwrap_or(&0),
        }
    }

    fn write32(&self, off: usize, v: u32) {
        assert!(off < 0x20000 && off.is_multiple_of(4));
        let run_tx = {
            let mut st = self.st.lock().unwrap();
            match off {
                CTRL if v & CTRL_RST != 0 => {
                    st.resets += 1;
                    let keep: Vec<(usize, u32)> = [STATUS, RAL0, RAH0]
                        .iter()
                        .filter_map(|r| st.regs.get(r).map(|v| (*r, *v)))
                        .collect();
                    st.regs.clear();
                    st.regs.extend(keep);
                    let ctrl = if st.stuck_in_reset { v } else { v & !CTRL_RST };
                    st.regs.insert(CTRL, ctrl);
                }
                EERD if v & EERD_START != 0 => {
                    let w = (v >> 8) as usize & 0xff;
                    let r = match st.eeprom {
                        Some(e) if w < 3 => (u32::from(e[w]) << 16) | EERD_DONE | (v & 0xff00),
                        _ => v & !EERD_DONE,
                    };
                    st.regs.insert(EERD, r);
                }
                IMS => {
                    let m = st.regs.get(&IMS).copied().unwrap_or(0);
                    st.regs.insert(IMS, m | v);
                }
                IMC => {
                    let m = st.regs.get(&IMS).copied().unwrap_or(0);
                    st.regs.insert(IMS, m & !v);
                }
                _ => {
                    st.regs.insert(off, v);
                }
            }
            off == TDT
        };
        if run_tx {
            self.run_tx();
        }
    }

    fn len(&self) -> usize {
        0x20000
    }
}

fn up() -> (E1000<FakeHal, FakeDev>, FakeDev, FakeHal) {
    let hal = FakeHal::default();
    let dev = FakeDev::new(hal.mem.clone());
    let nic = E1000::new(hal.clone(), dev.clone()).expect("init");
    (nic, dev, hal)
}

fn frame(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
        .collect()
}

#[test]
fn init_reads_the_eeprom_mac_and_enables_both_rings() {
    let (nic, dev, _) = up();
    assert_eq!(nic.mac(), [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
    assert_eq!(nic.mac_source(), "eeprom");
    assert_eq!(dev.st.lock().unwrap().resets, 1);
    assert_eq!(dev.get(RAL0), 0x1200_5452);
    assert_eq!(dev.get(RAH0), 0x5634 | RAH_AV);
    assert_eq!(dev.get(RCTL) & (RCTL_EN | RCTL_SECRC), RCTL_EN | RCTL_SECRC);
    assert_ne!(dev.get(TCTL) & TCTL_EN, 0);
    assert_eq!(dev.get(RDLEN), (RX_RING * 16) as u32);
    assert_eq!(dev.get(RDT), (RX_RING - 1) as u32);
    assert_eq!(dev.get(TDLEN), (TX_RING * 16) as u32);
    assert_eq!(dev.get(IMS), INTERRUPTS);
    assert_ne!(dev.get(CTRL) & CTRL_SLU, 0);
    assert_eq!(
        nic.link(),
        Link {
            up: true,
            mbps: 1000,
            full_duplex: true
        }
    );
}

#[test]
fn mac_falls_back_to_ral_when_the_eeprom_is_silent() {
    let hal = FakeHal::default();
    let dev = FakeDev::new(hal.mem.clone());
    dev.st.lock().unwrap().eeprom = None;
    dev.set(RAL0, 0x0403_0200);
    dev.set(RAH0, 0x0605 | RAH_AV);
    let nic = E1000::new(hal, dev).unwrap();
    assert_eq!(nic.mac(), [0, 2, 3, 4, 5, 6]);
    assert_eq!(nic.mac_source(), "ral");
}

#[test]
fn no_usable_mac_and_a_stuck_reset_are_errors() {
    let hal = FakeHal::default();
    let dev = FakeDev::new(hal.mem.clone());
    dev.st.lock().unwrap().eeprom = Some([0xffff, 0xffff, 0xffff]);
    assert_eq!(E1000::new(hal, dev).err(), Some(Error::NoMac));

    let hal = FakeHal::default();
    let dev = FakeDev::new(hal.mem.clone());
    dev.st.lock().unwrap().stuck_in_reset = true;
    assert_eq!(E1000::new(hal, dev).err(), Some(Error::ResetTimeout));

    let hal = FakeHal::with_alloc_limit(2);
    let dev = FakeDev::new(hal.mem.clone());
    assert_eq!(
        E1000::new(hal.clone(), dev).err(),
        Some(Error::Dma(adros_hal::HalError::NoMemory))
    );
    assert_eq!(hal.mem.regions(), 0, "DMA memory of a failed init is freed");
}

#[test]
fn transmitted_frames_reach_the_wire_intact_across_ring_wraps() {
    let (mut nic, dev, _) = up();
    let mut want = Vec::new();
    for i in 0..(TX_RING * 3 + 5) {
        let f = frame(14 + (i * 37) % 1500, i as u8);
        nic.transmit(f.len(), |b| b.copy_from_slice(&f)).unwrap();
        want.push(f);
    }
    assert_eq!(dev.sent(), want);
    assert_eq!(nic.stats().tx_packets, want.len() as u64);
    assert_eq!(E1000::<FakeHal, FakeDev>::ack(&dev) & INT_TXDW, INT_TXDW);
    assert_eq!(
        E1000::<FakeHal, FakeDev>::ack(&dev),
        0,
        "ICR is read-to-clear"
    );
}

#[test]
fn a_full_transmit_ring_refuses_until_the_device_catches_up() {
    let (mut nic, dev, _) = up();
    dev.st.lock().unwrap().tx_stalled = true;
    for i in 0..TX_RING - 1 {
        nic.transmit(60, |b| b[0] = i as u8).unwrap();
    }
    assert!(!nic.can_transmit());
    assert_eq!(nic.transmit(60, |_| ()), Err(TxError::Full));
    assert_eq!(nic.transmit(1515, |_| ()), Err(TxError::BadLength));
    assert_eq!(nic.transmit(13, |_| ()), Err(TxError::BadLength));
    assert_eq!(nic.stats().tx_dropped, 3);
    dev.st.lock().unwrap().tx_stalled = false;
    dev.run_tx();
    assert_eq!(dev.sent().len(), TX_RING - 1);
    assert!(nic.can_transmit());
    nic.transmit(60, |b| b[0] = 0xaa).unwrap();
    assert_eq!(dev.sent()[0][0], 0xaa);
}

#[test]
fn received_frames_come_up_in_order_across_ring_wraps() {
    let (mut nic, dev, _) = up();
    let mut n = 0;
    for round in 0..5 {
        let batch: Vec<Vec<u8>> = (0..100)
            .map(|i| frame(60 + i * 14, (round * 100 + i) as u8))
            .collect();
        for f in &batch {
            assert!(dev.inject(f));
        }
        assert_eq!(E1000::<FakeHal, FakeDev>::ack(&dev) & INT_RXT0, INT_RXT0);
        for f in &batch {
            assert!(nic.rx_pending());
            assert_eq!(nic.receive().as_ref(), Some(f));
            n += 1;
        }
        assert_eq!(nic.receive(), None);
    }
    assert_eq!(nic.stats().rx_packets, n);
}

#[test]
fn a_full_receive_ring_overruns_and_recovers() {
    let (mut nic, dev, _) = up();
    for i in 0..RX_RING - 1 {
        assert!(dev.inject(&frame(64, i as u8)));
    }
    assert!(
        !dev.inject(&frame(64, 0)),
        "one descriptor always stays with the driver"
    );
    let icr = E1000::<FakeHal, FakeDev>::ack(&dev);
    nic.note_interrupt(icr);
    assert_eq!(nic.stats().rx_overruns, 1);
    for i in 0..RX_RING - 1 {
        assert_eq!(nic.receive(), Some(frame(64, i as u8)));
    }
    assert!(dev.inject(&frame(99, 1)));
    assert_eq!(nic.receive(), Some(frame(99, 1)));
}

#[test]
fn malformed_receive_descriptors_are_dropped_not_passed_up() {
    let (mut nic, dev, _) = up();
    let good = frame(100, 3);
    // An error bit (CRC error).
    assert!(dev.inject_raw(&good, 100, RXD_STAT_DD | RXD_STAT_EOP, 0x01));
    // A length past the buffer, and one shorter than an Ethernet header.
    assert!(dev.inject_raw(&good, 4000, RXD_STAT_DD | RXD_STAT_EOP, 0));
    assert!(dev.inject_raw(&good, 5, RXD_STAT_DD | RXD_STAT_EOP, 0));
    // A frame spread over two descriptors: both halves go.
    assert!(dev.inject_raw(&good, 100, RXD_STAT_DD, 0));
    assert!(dev.inject_raw(&good, 100, RXD_STAT_DD | RXD_STAT_EOP, 0));
    assert!(dev.inject(&good));
    assert_eq!(nic.receive(), Some(good));
    assert_eq!(nic.receive(), None);
    assert_eq!(nic.stats().rx_dropped, 5);
    assert_eq!(nic.stats().rx_packets, 1);
}

#[test]
fn link_changes_are_seen_on_lsc() {
    let (mut nic, dev, _) = up();
    dev.set(STATUS, 0);
    dev.raise(INT_LSC);
    let icr = E1000::<FakeHal, FakeDev>::ack(&dev);
    assert!(nic.note_interrupt(icr));
    assert!(!nic.link().up);
    dev.set(STATUS, STATUS_LU | (1 << STATUS_SPEED_SHIFT));
    dev.raise(INT_LSC);
    assert!(nic.note_interrupt(E1000::<FakeHal, FakeDev>::ack(&dev)));
    assert_eq!(
        nic.link(),
        Link {
            up: true,
            mbps: 100,
            full_duplex: false
        }
    );
    assert!(!nic.note_interrupt(0));
    assert_eq!(nic.stats().link_changes, 2);
}

#[test]
fn drop_stops_the_device_before_freeing_its_rings() {
    let (nic, dev, hal) = up();
    assert_eq!(hal.mem.regions(), 4);
    drop(nic);
    assert_eq!(dev.get(IMS), 0);
    assert_eq!(hal.mem.regions(), 0);
    assert!(!dev.inject(&frame(64, 0)), "receiver off after drop");
}

#[test]
fn smoltcp_answers_an_arp_request_through_the_driver() {
    use smoltcp::iface::{Config, Interface, SocketSet};
    use smoltcp::time::Instant;
    use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};

    let (mut nic, dev, _) = up();
    let mac = EthernetAddress(nic.mac());
    let mut iface = Interface::new(
        Config::new(HardwareAddress::Ethernet(mac)),
        &mut nic,
        Instant::ZERO,
    );
    iface.update_ip_addrs(|a| {
        a.push(IpCidr::new(IpAddress::v4(10, 0, 2, 15), 24))
            .unwrap();
    });
    let mut sockets = SocketSet::new(Vec::new());
    // Who has 10.0.2.15? Tell 10.0.2.2 (52:55:0a:00:02:02).
    let host = [0x52, 0x55, 0x0a, 0x00, 0x02, 0x02];
    let mut req = Vec::new();
    req.extend_from_slice(&[0xff; 6]);
    req.extend_from_slice(&host);
    req.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    req.extend_from_slice(&host);
    req.extend_from_slice(&[10, 0, 2, 2]);
    req.extend_from_slice(&[0; 6]);
    req.extend_from_slice(&[10, 0, 2, 15]);
    req.resize(60, 0);
    assert!(dev.inject(&req));
    iface.poll(Instant::from_millis(1), &mut nic, &mut sockets);
    let sent = dev.sent();
    assert_eq!(sent.len(), 1, "one ARP reply");
    let r = &sent[0];
    assert_eq!(&r[0..6], &host);
    assert_eq!(&r[6..12], &nic.mac());
    assert_eq!(&r[12..14], &[0x08, 0x06]);
    assert_eq!(&r[20..22], &[0, 2], "opcode reply");
    assert_eq!(&r[22..28], &nic.mac());
    assert_eq!(&r[28..32], &[10, 0, 2, 15]);
    assert_eq!(&r[38..42], &[10, 0, 2, 2]);
}

/// xorshift64: deterministic noise for the malformed-frame test.
fn noise(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

#[test]
fn malformed_frames_and_a_syn_flood_do_not_break_the_stack() {
    use smoltcp::iface::{Config, Interface, SocketSet};
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::socket::tcp;
    use smoltcp::time::Instant;
    use smoltcp::wire::{
        EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, HardwareAddress, IpAddress,
        IpCidr, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr, TcpControl, TcpPacket, TcpRepr,
        TcpSeqNumber,
    };

    let (mut nic, dev, _) = up();
    let mac = nic.mac();
    let mut iface = Interface::new(
        Config::new(HardwareAddress::Ethernet(EthernetAddress(mac))),
        &mut nic,
        Instant::ZERO,
    );
    let me = Ipv4Address::new(10, 0, 2, 15);
    iface.update_ip_addrs(|a| {
        a.push(IpCidr::new(IpAddress::Ipv4(me), 24)).unwrap();
    });
    let mut sockets = SocketSet::new(Vec::new());
    let mut l = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; 4096]),
        tcp::SocketBuffer::new(vec![0; 4096]),
    );
    l.listen(80).unwrap();
    let lh = sockets.add(l);
    let host = [0x52, 0x55, 0x0a, 0x00, 0x02, 0x02];
    let mut t = 1;
    let mut seed = 0x1234_5678_9abc_def0u64;

    // 1. Noise behind a plausible Ethernet header: IPv4, ARP, IPv6 and unknown types, with
    //    lengths from 14 bytes to a full frame, some with a real IPv4 header whose fields
    //    (length, IHL, fragment offset, checksum) are then corrupted.
    for i in 0..3000 {
        let len = 14 + (noise(&mut seed) as usize % 1501);
        let mut f: Vec<u8> = (0..len).map(|_| noise(&mut seed) as u8).collect();
        f[0..6].copy_from_slice(if i % 3 == 0 { &[0xff; 6] } else { &mac });
        f[6..12].copy_from_slice(&host);
        let ty: [u8; 2] = match i % 4 {
            0 => [0x08, 0x00],
            1 => [0x08, 0x06],
            2 => [0x86, 0xdd],
            _ => [noise(&mut seed) as u8, 0x42],
        };
        f[12..14].copy_from_slice(&ty);
        if i % 4 == 0 && len >= 34 {
            f[14] = 0x40 | (noise(&mut seed) as u8 & 0x0f);
            f[26..30].copy_from_slice(&[10, 0, 2, 2]);
            f[30..34].copy_from_slice(&me.octets());
        }
        while !dev.inject(&f) {
            iface.poll(Instant::from_millis(t), &mut nic, &mut sockets);
            t += 1;
        }
        if i % 64 == 0 {
            iface.poll(Instant::from_millis(t), &mut nic, &mut sockets);
            t += 1;
        }
    }
    iface.poll(Instant::from_millis(t), &mut nic, &mut sockets);
    dev.sent();

    // 2. A SYN flood at the listening port from 500 source ports, checksums valid.
    for port in 0..500u16 {
        let tcp = TcpRepr {
            src_port: 10_000 + port,
            dst_port: 80,
            control: TcpControl::Syn,
            seq_number: TcpSeqNumber(i32::from(port) * 1000),
            ack_number: None,
            window_len: 1024,
            window_scale: None,
            max_seg_size: Some(1460),
            sack_permitted: false,
            sack_ranges: [None, None, None],
            timestamp: None,
            payload: &[],
        };
        let ip = Ipv4Repr {
            src_addr: Ipv4Address::new(10, 0, 2, 2),
            dst_addr: me,
            next_header: IpProtocol::Tcp,
            payload_len: tcp.buffer_len(),
            hop_limit: 64,
        };
        let eth = EthernetRepr {
            src_addr: EthernetAddress(host),
            dst_addr: EthernetAddress(mac),
            ethertype: EthernetProtocol::Ipv4,
        };
        let mut buf = vec![0u8; 14 + ip.buffer_len() + tcp.buffer_len()];
        let mut frame = EthernetFrame::new_unchecked(&mut buf);
        eth.emit(&mut frame);
        let caps = ChecksumCapabilities::default();
        let mut p = Ipv4Packet::new_unchecked(frame.payload_mut());
        ip.emit(&mut p, &caps);
        let mut seg = TcpPacket::new_unchecked(p.payload_mut());
        tcp.emit(
            &mut seg,
            &IpAddress::Ipv4(ip.src_addr),
            &IpAddress::Ipv4(ip.dst_addr),
            &caps,
        );
        while !dev.inject(&buf) {
            iface.poll(Instant::from_millis(t), &mut nic, &mut sockets);
            t += 1;
        }
    }
    iface.poll(Instant::from_millis(t), &mut nic, &mut sockets);
    let answers = dev.sent();
    assert!(!answers.is_empty(), "the flood got no answer at all");
    let state = sockets.get::<tcp::Socket>(lh).state();
    assert!(
        matches!(state, tcp::State::Listen | tcp::State::SynReceived),
        "the listener is {state:?}"
    );
    assert_eq!(nic.stats().rx_packets, 3500);

    // 3. Still answering: an ARP request gets its reply.
    let mut req = Vec::new();
    req.extend_from_slice(&[0xff; 6]);
    req.extend_from_slice(&host);
    req.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    req.extend_from_slice(&host);
    req.extend_from_slice(&[10, 0, 2, 2]);
    req.extend_from_slice(&[0; 6]);
    req.extend_from_slice(&me.octets());
    req.resize(60, 0);
    assert!(dev.inject(&req));
    iface.poll(Instant::from_millis(t + 1), &mut nic, &mut sockets);
    let sent = dev.sent();
    assert!(
        sent.iter()
            .any(|f| f.len() >= 42 && f[12..14] == [0x08, 0x06] && f[20..22] == [0, 2]),
        "no ARP reply after the bad input"
    );
}
