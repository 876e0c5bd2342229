//! Host tests against a fake UHCI: a register file whose frame counter advances (one
//! frame walked) each time the driver reads USBSTS, a schedule walker that follows the
//! frame list, the QH and depth-first TD chains in fake DMA memory as the UHCI 1.1 spec
//! (and QEMU's `hcd-uhci.c`) do, and a fake full-speed function on each port with
//! EP0 (standard requests), a bulk IN and a bulk OUT endpoint that check data toggles.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use adros_hal::fake::{FakeHal, FakeMemory};
use adros_usb::{clear_halt, enumerate};

use super::*;

#[test]
fn td_fields() {
    let t = td_token(PID_IN, 5, 1, true, 64);
    assert_eq!(t & 0xff, u32::from(PID_IN));
    assert_eq!((t >> 8) & 0x7f, 5);
    assert_eq!((t >> 15) & 0xf, 1);
    assert!(t & TOK_TOGGLE != 0);
    assert_eq!(t >> 21, 63, "MaxLen counts n - 1");
    assert_eq!(
        td_token(PID_OUT, 0, 0, false, 0) >> 21,
        0x7ff,
        "zero-length"
    );
    assert_eq!(td_token(PID_SETUP, 0, 0, false, 8) & TOK_TOGGLE, 0);
    let c = td_control(true, true, true);
    assert!(c & TD_ACTIVE != 0 && c & TD_LS != 0 && c & TD_IOC != 0 && c & TD_SPD != 0);
    assert_eq!((c >> 27) & 3, 3, "three tries");
    assert_eq!(
        td_control(false, false, false) & (TD_LS | TD_IOC | TD_SPD),
        0
    );
    assert_eq!(td_actual(0x7ff), 0);
    assert_eq!(td_actual(0), 1);
    assert_eq!(td_actual(63), 64);
    assert_eq!(td_error(TD_STALLED), UsbError::Stall);
    assert_eq!(td_error(TD_STALLED | TD_BABBLE), UsbError::Babble);
    assert_eq!(td_error(TD_STALLED | TD_CRC_TIMEOUT), UsbError::Transaction);
    assert_eq!(td_error(TD_STALLED | TD_BITSTUFF), UsbError::Transaction);
}

/// What a fake device answers to one packet.
enum Answer {
    Ack(usize),
    Nak,
    Stall,
    /// No handshake (the device is gone or deaf): a CRC/time-out error.
    Silence,
}

#[derive(Default)]
struct FakeDevice {
    address: u8,
    pending_address: Option<u8>,
    low_speed: bool,
    /// EP0: the data stage to send, how far it went, whether the request is refused.
    ctrl_in: Vec<u8>,
    ctrl_pos: usize,
    ctrl_stall: bool,
    /// Next toggle per endpoint number and direction (IN = 1).
    toggles: [[bool; 2]; 16],
    toggle_errors: u32,
    speed_errors: u32,
    /// Bulk IN (0x81) data queued for the host, bulk OUT (0x02) data received.
    to_host: VecDeque<u8>,
    from_host: Vec<u8>,
    stalled_in: bool,
    nak_in: bool,
    /// Ignores every packet (never answers).
    deaf: bool,
    resets: u32,
    setups: Vec<[u8; 8]>,
}

const DEVICE_DESC: [u8; 18] = [
    18, 1, 0x10, 0x01, 0, 0, 0, 64, 0x34, 0x12, 0x78, 0x56, 0, 1, 0, 0, 0, 1,
];

fn config_desc() -> Vec<u8> {
    let mut c = vec![9, 2, 32, 0, 1, 1, 0, 0x80, 50];
    c.extend([9, 4, 0, 0, 2, 8, 6, 0x50, 0]);
    c.extend([7, 5, 0x81, 2, 64, 0, 0]);
    c.extend([7, 5, 0x02, 2, 64, 0, 0]);
    c
}

impl FakeDevice {
    fn reset(&mut self) {
        self.address = 0;
        self.pending_address = None;
        self.toggles = [[false; 2]; 16];
        self.resets += 1;
    }

    fn setup(&mut self, s: [u8; 8]) {
        self.setups.push(s);
        self.ctrl_pos = 0;
        self.ctrl_stall = false;
        self.ctrl_in.clear();
        let value = u16::from_le_bytes([s[2], s[3]]);
        let length = usize::from(u16::from_le_bytes([s[6], s[7]]));
        match (s[0], s[1]) {
            (0x80, 6) => {
                let d = match value >> 8 {
                    1 => DEVICE_DESC.to_vec(),
                    2 => config_desc(),
                    // Language IDs only: a product string request stalls.
                    3 if value & 0xff == 0 => vec![4, 3, 9, 4],
                    _ => {
                        self.ctrl_stall = true;
                        Vec::new()
                    }
                };
                self.ctrl_in = d[..d.len().min(length)].to_vec();
            }
            (0x00, 5) => self.pending_address = Some(value as u8),
            (0x00, 9) => {}
            (0x02, 1) => {
                // CLEAR_FEATURE(ENDPOINT_HALT).
                let ep = s[4];
                if ep == 0x81 {
                    self.stalled_in = false;
                }
                self.toggles[usize::from(ep & 0xf)][usize::from(ep >> 7)] = false;
            }
            _ => self.ctrl_stall = true,
        }
    }

    fn packet(&mut self, pid: u8, ep: u8, toggle: bool, data: &mut Vec<u8>, max: usize) -> Answer {
        if self.deaf {
            return Answer::Silence;
        }
        if ep == 0 {
            return match pid {
                PID_SETUP => {
                    if toggle {
                        self.toggle_errors += 1;
                    }
                    let mut s = [0u8; 8];
                    s.copy_from_slice(&data[..8]);
                    self.setup(s);
                    Answer::Ack(8)
                }
                _ if self.ctrl_stall => Answer::Stall,
                PID_IN if self.ctrl_pos < self.ctrl_in.len() => {
                    let n = max.min(self.ctrl_in.len() - self.ctrl_pos);
                    *data = self.ctrl_in[self.ctrl_pos..self.ctrl_pos + n].to_vec();
                    self.ctrl_pos += n;
                    Answer::Ack(n)
                }
                _ => {
                    // Status stage (or an OUT data stage).
                    if !toggle {
                        self.toggle_errors += 1;
                    }
                    if let Some(a) = self.pending_address.take() {
                        self.address = a;
                    }
                    data.clear();
                    Answer::Ack(if pid == PID_OUT { max } else { 0 })
                }
            };
        }
        let dir = usize::from(pid == PID_IN);
        let t = &mut self.toggles[usize::from(ep)][dir];
        if pid == PID_IN {
            if self.stalled_in {
                return Answer::Stall;
            }
            if self.nak_in {
                return Answer::Nak;
            }
            if toggle != *t {
                self.toggle_errors += 1;
            }
            *t = !*t;
            let n = max.min(self.to_host.len());
            *data = self.to_host.drain(..n).collect();
            Answer::Ack(n)
        } else {
            if toggle != *t {
                self.toggle_errors += 1;
            }
            *t = !*t;
            self.from_host.extend_from_slice(&data[..max]);
            Answer::Ack(max)
        }
    }
}

struct Port {
    ctrl: u16,
    dev: Option<Arc<Mutex<FakeDevice>>>,
}

struct State {
    cmd: u16,
    sts: u16,
    intr: u16,
    frnum: u16,
    flbase: u32,
    ports: Vec<Port>,
    grsets: u32,
    port_writes: Vec<(usize, u16)>,
    /// Frames walked while a port is enabled, before its device is pulled out.
    pull_after: Option<(usize, u32)>,
    frames: u64,
}

#[derive(Clone)]
struct FakeUhci {
    st: Arc<Mutex<State>>,
    mem: FakeMemory,
}

const RO: u16 = 0x1bb;

impl FakeUhci {
    fn new(mem: FakeMemory) -> Self {
        FakeUhci {
            st: Arc::new(Mutex::new(State {
                cmd: 0,
                sts: STS_HALTED,
                intr: 0,
                frnum: 0,
                flbase: 0,
                ports: (0..2)
                    .map(|_| Port {
                        ctrl: PORT_PRESENT,
                        dev: None,
                    })
                    .collect(),
                grsets: 0,
                port_writes: Vec::new(),
                pull_after: None,
                frames: 0,
            })),
            mem,
        }
    }

    fn plug(&self, port: usize, d: FakeDevice) -> Arc<Mutex<FakeDevice>> {
        let low = d.low_speed;
        let d = Arc::new(Mutex::new(d));
        let mut s = self.st.lock().unwrap();
        let p = &mut s.ports[port];
        p.dev = Some(d.clone());
        p.ctrl |= PORT_CCS | PORT_CSC;
        if low {
            p.ctrl |= PORT_LSDA;
        }
        d
    }

    fn rd(&self, pa: u32) -> u32 {
        let mut b = [0; 4];
        assert!(self.mem.read(u64::from(pa), &mut b), "bus error at {pa:#x}");
        u32::from_le_bytes(b)
    }

    fn wr(&self, pa: u32, v: u32) {
        assert!(self.mem.write(u64::from(pa), &v.to_le_bytes()));
    }

    /// One frame: the frame list entry, its QH, the TD chain depth first until the
    /// 1280-byte budget is spent, a TD stops the queue, or the chain ends.
    fn frame(&self, s: &mut State) {
        s.frames += 1;
        if let Some((p, n)) = s.pull_after {
            if n == 0 {
                let port = &mut s.ports[p];
                port.dev = None;
                port.ctrl = (port.ctrl & !(PORT_CCS | PORT_PE)) | PORT_CSC | PORT_PEC;
                s.pull_after = None;
            } else {
                s.pull_after = Some((p, n - 1));
            }
        }
        s.frnum = (s.frnum + 1) & 0x7ff;
        let mut link = self.rd(s.flbase + 4 * u32::from(s.frnum & 0x3ff));
        let mut budget = 1280usize;
        let mut int = 0u16;
        while link & LINK_T == 0 {
            assert!(link & LINK_QH != 0, "frame list points at a TD");
            let qh = link & !0xf;
            let mut cur = self.rd(qh + 4);
            while cur & LINK_T == 0 && budget > 0 {
                let td = cur & !0xf;
                let ctrl = self.rd(td + 4);
                if ctrl & TD_ACTIVE == 0 {
                    break;
                }
                let token = self.rd(td + 8);
                let buf = self.rd(td + 12);
                let pid = token as u8;
                let addr = ((token >> 8) & 0x7f) as u8;
                let ep = ((token >> 15) & 0xf) as u8;
                let toggle = token & TOK_TOGGLE != 0;
                let max = (((token >> 21) + 1) & 0x7ff) as usize;
                let dev = s
                    .ports
                    .iter()
                    .filter(|p| p.ctrl & PORT_PE != 0)
                    .filter_map(|p| p.dev.clone())
                    .find(|d| d.lock().unwrap().address == addr);
                let mut data = vec![0u8; max];
                if pid != PID_IN && max > 0 {
                    assert!(self.mem.read(u64::from(buf), &mut data));
                }
                let answer = match &dev {
                    Some(d) => {
                        let mut d = d.lock().unwrap();
                        if (ctrl & TD_LS != 0) != d.low_speed {
                            d.speed_errors += 1;
                        }
                        d.packet(pid, ep, toggle, &mut data, max)
                    }
                    None => Answer::Silence,
                };
                let ioc = ctrl & TD_IOC != 0;
                match answer {
                    Answer::Nak => break,
                    Answer::Stall => {
                        self.wr(td + 4, (ctrl & !TD_ACTIVE) | TD_STALLED);
                        s.sts |= 2;
                        int |= 1;
                        break;
                    }
                    Answer::Silence => {
                        self.wr(td + 4, (ctrl & !TD_ACTIVE) | TD_STALLED | TD_CRC_TIMEOUT);
                        s.sts |= 2;
                        int |= 1;
                        break;
                    }
                    Answer::Ack(n) => {
                        if pid == PID_IN && n > 0 {
                            assert!(self.mem.write(u64::from(buf), &data[..n]));
                        }
                        let actlen = (n as u32).wrapping_sub(1) & TD_ACTLEN;
                        self.wr(td + 4, (ctrl & !(TD_ACTIVE | TD_ACTLEN)) | actlen);
                        if ioc {
                            int |= 1;
                        }
                        budget = budget.saturating_sub(n.max(1));
                        if pid == PID_IN && ctrl & TD_SPD != 0 && n < max {
                            int |= 1;
                            break;
                        }
                        let next = self.rd(td);
                        self.wr(qh + 4, next);
                        cur = next;
                        if next & LINK_VF == 0 {
                            break;
                        }
                    }
                }
            }
            link = self.rd(qh);
        }
        if int != 0 {
            s.sts |= 1;
        }
    }
}

impl Mmio for FakeUhci {
    fn read32(&self, off: usize) -> u32 {
        match off {
            FLBASEADD => self.st.lock().unwrap().flbase,
            _ => u32::from(self.read16(off)) | (u32::from(self.read16(off + 2)) << 16),
        }
    }
    fn write32(&self, off: usize, v: u32) {
        match off {
            FLBASEADD => self.st.lock().unwrap().flbase = v & !0xfff,
            _ => panic!("32-bit write at {off:#x}"),
        }
    }
    fn read16(&self, off: usize) -> u16 {
        let mut s = self.st.lock().unwrap();
        match off {
            USBCMD => s.cmd,
            USBSTS => {
                if s.cmd & CMD_RS != 0 {
                    self.frame(&mut s);
                }
                s.sts
            }
            USBINTR => s.intr,
            FRNUM => s.frnum,
            0x10..=0x1f => s.ports.get((off - 0x10) / 2).map_or(0xff7f, |p| p.ctrl),
            _ => 0xffff,
        }
    }
    fn write16(&self, off: usize, v: u16) {
        let mut s = self.st.lock().unwrap();
        match off {
            USBCMD => {
                if v & CMD_GRESET != 0 {
                    s.grsets += 1;
                    for p in &s.ports {
                        if let Some(d) = &p.dev {
                            d.lock().unwrap().reset();
                        }
                    }
                }
                if v & (CMD_GRESET | CMD_HCRESET) != 0 {
                    s.cmd = 0;
                    s.sts = STS_HALTED;
                    for p in &mut s.ports {
                        p.ctrl = PORT_PRESENT | (p.ctrl & (PORT_CCS | PORT_LSDA));
                    }
                    return;
                }
                s.sts = if v & CMD_RS != 0 {
                    s.sts & !STS_HALTED
                } else {
                    s.sts | STS_HALTED
                };
                s.cmd = v;
            }
            USBSTS => s.sts &= !v,
            USBINTR => s.intr = v,
            FRNUM => s.frnum = v & 0x7ff,
            0x10..=0x1f => {
                let n = (off - 0x10) / 2;
                s.port_writes.push((n, v));
                let Some(p) = s.ports.get_mut(n) else { return };
                if v & PORT_PR != 0
                    && p.ctrl & PORT_PR == 0
                    && let Some(d) = &p.dev
                {
                    d.lock().unwrap().reset();
                }
                let mut v = v;
                if p.ctrl & PORT_CCS == 0 {
                    v &= !PORT_PE;
                }
                p.ctrl = (p.ctrl & RO) | (v & !RO);
                p.ctrl &= !(v & PORT_CHANGES);
            }
            _ => {}
        }
    }
    fn read8(&self, off: usize) -> u8 {
        panic!("8-bit read at {off:#x}")
    }
    fn write8(&self, off: usize, _v: u8) {
        panic!("8-bit write at {off:#x}")
    }
    fn len(&self) -> usize {
        0x20
    }
}

fn controller() -> (Uhci<FakeHal, FakeUhci>, FakeUhci, FakeHal) {
    let hal = FakeHal::default();
    let regs = FakeUhci::new(hal.mem.clone());
    let hc = Uhci::new(hal.clone(), regs.clone(), false).unwrap();
    (hc, regs, hal)
}

fn stick() -> FakeDevice {
    FakeDevice::default()
}

#[test]
fn start_up_points_every_frame_at_the_transfer_qh() {
    let (hc, regs, hal) = controller();
    assert_eq!(hc.ports(), 2, "the third PORTSC reads without bit 7");
    let s = regs.st.lock().unwrap();
    assert_eq!(s.grsets, 1, "global reset");
    assert_eq!(s.cmd, CMD_RS | CMD_CF | CMD_MAXP);
    assert_eq!(s.sts & STS_HALTED, 0);
    assert_eq!(s.intr, 0, "interrupts off until asked for");
    let base = s.flbase;
    drop(s);
    let qh = regs.rd(base);
    assert_eq!(qh & 3, LINK_QH, "a QH, not terminated");
    for f in [1u32, 511, 1023] {
        assert_eq!(regs.rd(base + 4 * f), qh);
    }
    assert_eq!(regs.rd(qh & !0xf), LINK_T, "one QH, nothing after it");
    assert_eq!(regs.rd((qh & !0xf) + 4), LINK_T, "idle");
    assert_eq!(hal.mem.regions(), 3);
}

#[test]
fn port_reset_then_software_enable_full_and_low_speed() {
    let (mut hc, regs, _hal) = controller();
    let full = regs.plug(0, stick());
    let low = regs.plug(
        1,
        FakeDevice {
            low_speed: true,
            ..Default::default()
        },
    );
    let st = hc.port_status(1);
    assert!(st.connected && !st.enabled && st.changed);
    assert!(
        !hc.port_status(1).changed,
        "the connect change was acknowledged"
    );
    regs.st.lock().unwrap().port_writes.clear();
    assert_eq!(hc.enable_port(1), Ok(Speed::Full));
    let writes = regs.st.lock().unwrap().port_writes.clone();
    // Reset asserted, released, then the port enabled by software.
    assert_eq!(writes[0], (0, PORT_PR));
    assert_eq!(writes[1], (0, 0));
    assert!(writes[2..].iter().any(|&(p, v)| p == 0 && v & PORT_PE != 0));
    assert!(writes.iter().all(|&(p, _)| p == 0));
    assert_eq!(
        full.lock().unwrap().resets,
        1,
        "the port reset reached the device"
    );
    let st = hc.port_status(1);
    assert!(st.connected && st.enabled);
    // One device at address 0 at a time: port 1's is switched off again.
    hc.disable_port(1);
    assert!(!hc.port_status(1).enabled);
    assert_eq!(hc.enable_port(2), Ok(Speed::Low));
    assert_eq!(low.lock().unwrap().resets, 1);
    // Low-speed TDs carry LS.
    let id = hc.new_device(2, Speed::Low).unwrap();
    assert_eq!(low.lock().unwrap().address, id.0);
    assert_eq!(low.lock().unwrap().speed_errors, 0);
    // An empty port.
    regs.st.lock().unwrap().ports[1].dev = None;
    regs.st.lock().unwrap().ports[1].ctrl = PORT_PRESENT;
    assert_eq!(hc.enable_port(2), Err(UsbError::NoDevice));
    assert_eq!(hc.enable_port(3), Err(UsbError::NoDevice));
}

#[test]
fn enumeration_with_short_control_reads_and_toggles() {
    let (mut hc, regs, _hal) = controller();
    let d = regs.plug(0, stick());
    let dev = enumerate(&mut hc, 1).unwrap();
    assert_eq!(dev.speed, Speed::Full);
    assert_eq!(dev.descriptor.vendor, 0x1234);
    assert_eq!(dev.config.interfaces[0].endpoints.len(), 2);
    let f = d.lock().unwrap();
    assert_eq!(f.address, dev.id.0);
    assert_eq!(f.toggle_errors, 0);
    // SET_ADDRESS, 8 bytes of the device descriptor, all of it, the configuration head,
    // all of it, the language IDs (4 of 255 bytes: a short packet, then the status stage),
    // SET_CONFIGURATION.
    let reqs: Vec<(u8, u8)> = f.setups.iter().map(|s| (s[0], s[1])).collect();
    assert_eq!(reqs.first(), Some(&(0x00, 5)));
    assert_eq!(reqs.last(), Some(&(0x00, 9)));
    assert!(f.setups.iter().any(|s| s[3] == 3 && s[6] == 255));
    drop(f);
    assert_eq!(hc.stats.stalls, 0, "no strings asked for (indices are 0)");
}

#[test]
fn bulk_reads_and_writes_keep_toggles_across_transfers_and_a_short_read_ends_early() {
    let (mut hc, regs, _hal) = controller();
    let d = regs.plug(0, stick());
    let dev = enumerate(&mut hc, 1).unwrap();
    let data: Vec<u8> = (0..70_000u32).map(|i| (i * 7 + i / 256) as u8).collect();
    d.lock().unwrap().to_host.extend(&data[..3 * 64 + 13]);
    // A short read: 205 bytes of the 4096 asked for, the last packet short.
    let mut buf = vec![0u8; 4096];
    assert_eq!(hc.bulk_in(dev.id, 1, &mut buf), Ok(205));
    assert_eq!(&buf[..205], &data[..205]);
    // An odd number of packets went through (4): the next read starts at DATA0 again.
    d.lock().unwrap().to_host.extend(&data[..64 * 1024]);
    let mut big = vec![0u8; 64 * 1024];
    assert_eq!(hc.bulk_in(dev.id, 1, &mut big), Ok(64 * 1024));
    assert_eq!(&big[..], &data[..64 * 1024]);
    assert_eq!(hc.bulk_out(dev.id, 2, &data[..1000]), Ok(1000));
    assert_eq!(hc.bulk_out(dev.id, 2, &data[1000..1031]), Ok(31));
    let f = d.lock().unwrap();
    assert_eq!(&f.from_host[..], &data[..1031]);
    assert_eq!(f.toggle_errors, 0, "data toggles as the device expects");
    drop(f);
    assert_eq!(hc.max_transfer(), 64 * 1024);
    let mut too_big = vec![0u8; 64 * 1024 + 1];
    assert_eq!(hc.bulk_in(dev.id, 1, &mut too_big), Err(UsbError::TooLarge));
}

#[test]
fn a_stalled_td_is_reported_and_cleared() {
    let (mut hc, regs, _hal) = controller();
    let d = regs.plug(0, stick());
    let dev = enumerate(&mut hc, 1).unwrap();
    d.lock().unwrap().to_host.extend([1u8; 64]);
    let mut buf = [0u8; 64];
    assert_eq!(hc.bulk_in(dev.id, 1, &mut buf), Ok(64));
    d.lock().unwrap().stalled_in = true;
    assert_eq!(hc.bulk_in(dev.id, 1, &mut buf), Err(UsbError::Stall));
    assert_eq!(hc.stats.stalls, 1);
    // CLEAR_FEATURE(ENDPOINT_HALT) + the host side's toggle reset: DATA0 on both sides.
    clear_halt(&mut hc, dev.id, 0x81).unwrap();
    d.lock().unwrap().to_host.extend([2u8; 100]);
    let mut b = [0u8; 100];
    assert_eq!(hc.bulk_in(dev.id, 1, &mut b), Ok(100));
    assert_eq!(b, [2u8; 100]);
    assert_eq!(d.lock().unwrap().toggle_errors, 0);
    // A control request the device refuses: a stall on EP0, which needs no clearing.
    let mut s = [0u8; 255];
    let r = hc.control(
        dev.id,
        Setup {
            request_type: 0x80,
            request: 6,
            value: 0x0302,
            index: 0x0409,
            length: 255,
        },
        &mut s,
    );
    assert_eq!(r, Err(UsbError::Stall));
    assert!(
        hc.control(
            dev.id,
            Setup {
                request_type: 0x80,
                request: 6,
                value: 0x0100,
                index: 0,
                length: 18,
            },
            &mut s[..18],
        )
        .is_ok()
    );
}

#[test]
fn a_device_that_never_answers_times_out_and_one_that_is_deaf_is_a_transaction_error() {
    let (mut hc, regs, hal) = controller();
    let d = regs.plug(0, stick());
    let dev = enumerate(&mut hc, 1).unwrap();
    d.lock().unwrap().nak_in = true;
    let t0 = hal.now_ns();
    let mut buf = [0u8; 512];
    assert_eq!(hc.bulk_in(dev.id, 1, &mut buf), Err(UsbError::Timeout));
    assert!(hal.now_ns() - t0 >= BULK_TIMEOUT_NS);
    assert_eq!(hc.stats.timeouts, 1);
    // The chain is off the schedule: the QH is idle, the TDs inactive.
    let qh = regs.rd(regs.st.lock().unwrap().flbase) & !0xf;
    assert_eq!(regs.rd(qh + 4), LINK_T);
    // The device answers again: the endpoint works.
    {
        let mut f = d.lock().unwrap();
        f.nak_in = false;
        f.to_host.extend([9u8; 10]);
    }
    assert_eq!(hc.bulk_in(dev.id, 1, &mut buf), Ok(10));
    d.lock().unwrap().deaf = true;
    assert_eq!(hc.bulk_in(dev.id, 1, &mut buf), Err(UsbError::Transaction));
    assert_eq!(hc.stats.errors, 1);
}

#[test]
fn a_device_pulled_out_mid_transfer_ends_it_with_no_device() {
    let (mut hc, regs, hal) = controller();
    let d = regs.plug(0, stick());
    let dev = enumerate(&mut hc, 1).unwrap();
    d.lock().unwrap().nak_in = true;
    regs.st.lock().unwrap().pull_after = Some((0, 5));
    let t0 = hal.now_ns();
    let mut buf = [0u8; 512];
    assert_eq!(hc.bulk_in(dev.id, 1, &mut buf), Err(UsbError::NoDevice));
    assert!(
        hal.now_ns() - t0 < 1_000_000_000,
        "ended at once, not at the time-out"
    );
    assert_eq!(hc.stats.unplugged, 1);
    let st = hc.port_status(1);
    assert!(!st.connected && st.changed);
    hc.release_device(dev.id);
    assert_eq!(hc.bulk_in(dev.id, 1, &mut buf), Err(UsbError::NoDevice));
}

#[test]
fn a_dead_controller_is_reported_and_interrupts_are_acknowledged() {
    let (mut hc, regs, _hal) = controller();
    let d = regs.plug(0, stick());
    let dev = enumerate(&mut hc, 1).unwrap();
    regs.st.lock().unwrap().sts |= 1 | 2;
    assert!(IrqRegs.ack(&regs));
    assert_eq!(regs.st.lock().unwrap().sts & STS_ACK, 0);
    assert!(!IrqRegs.ack(&regs));
    drop(d);
    // A host system error halts the controller.
    regs.st.lock().unwrap().cmd &= !CMD_RS;
    regs.st.lock().unwrap().sts |= STS_HSE | STS_HALTED;
    let mut buf = [0u8; 64];
    assert_eq!(hc.bulk_in(dev.id, 1, &mut buf), Err(UsbError::HostDead));
    assert!(hc.is_dead());
}

#[test]
fn bad_endpoint_sizes_and_a_device_behind_a_hub_use_the_hubs_root_port() {
    let (mut hc, regs, _hal) = controller();
    let d = regs.plug(0, stick());
    let dev = enumerate(&mut hc, 1).unwrap();
    let ep = |address, max_packet_size| EndpointDescriptor {
        address,
        attributes: 2,
        max_packet_size,
        interval: 0,
        max_burst: 0,
    };
    assert_eq!(
        hc.configure_endpoints(dev.id, &[ep(0x83, 0)]),
        Err(UsbError::Unsupported)
    );
    assert_eq!(
        hc.configure_endpoints(dev.id, &[ep(0x83, 1024)]),
        Err(UsbError::Unsupported)
    );
    assert_eq!(
        hc.set_ep0_max_packet(dev.id, 512),
        Err(UsbError::Unsupported)
    );
    assert_eq!(
        hc.new_device_behind_hub(dev.id, 1, Speed::High),
        Err(UsbError::Unsupported),
        "no high-speed device behind a full-speed port"
    );
    // The fake function plays the device behind the hub: back at address 0 after a
    // (hub port) reset, it is addressed through the hub's root port.
    d.lock().unwrap().reset();
    let child = hc.new_device_behind_hub(dev.id, 3, Speed::Full).unwrap();
    assert_ne!(child, dev.id);
    assert_eq!(d.lock().unwrap().address, child.0);
    // Its root port is the hub's: pulling the hub ends the child's transfers at once.
    d.lock().unwrap().nak_in = true;
    hc.configure_endpoints(child, &[ep(0x81, 64)]).unwrap();
    regs.st.lock().unwrap().pull_after = Some((0, 3));
    let mut buf = [0u8; 64];
    assert_eq!(hc.bulk_in(child, 1, &mut buf), Err(UsbError::NoDevice));
}
