//! Host tests: qTD tokens and buffer pointers, chain completion (short packets, halts),
//! interrupt acknowledgement.

use std::sync::Mutex;

use adros_hal::fake::FakeHal;

use super::*;

#[test]
fn qtd_tokens() {
    let t = token(512, PID_IN, true, true);
    assert_eq!((t >> 16) & 0x7fff, 512);
    assert_eq!((t >> 8) & 3, PID_IN);
    assert!(t & TOK_DT != 0 && t & TOK_IOC != 0 && t & TOK_ACTIVE != 0);
    assert_eq!((t >> 10) & 3, 3, "three retries");
    let s = token(8, PID_SETUP, false, false);
    assert_eq!((s >> 8) & 3, 2);
    assert_eq!(s & (TOK_DT | TOK_IOC), 0);
    assert_eq!(token_error(TOK_HALTED), UsbError::Stall);
    assert_eq!(token_error(TOK_HALTED | TOK_BABBLE), UsbError::Babble);
    assert_eq!(token_error(TOK_HALTED | TOK_XACT), UsbError::Transaction);
}

/// A register file with EHCI's capability and operational registers: HCRESET and
/// run/stop take effect at once, IAA is set when asked for, USBSTS is write-1-to-clear.
struct Regs(Mutex<Vec<u32>>);

const OP: usize = 0x20;

impl Regs {
    fn new(ports: u32) -> Self {
        let mut r = vec![0u32; 0x100 / 4];
        r[0] = OP as u32 | (0x0100 << 16);
        r[1] = ports;
        r[(OP + USBSTS) / 4] = STS_HALTED;
        Regs(Mutex::new(r))
    }
}

impl Mmio for Regs {
    fn read32(&self, off: usize) -> u32 {
        self.0.lock().unwrap()[off / 4]
    }
    fn write32(&self, off: usize, v: u32) {
        let mut r = self.0.lock().unwrap();
        match off - OP.min(off) {
            USBCMD if off >= OP => {
                let v = v & !CMD_HCRESET;
                let mut sts = r[(OP + USBSTS) / 4];
                sts = if v & CMD_RS != 0 {
                    sts & !STS_HALTED
                } else {
                    sts | STS_HALTED
                };
                sts = if v & CMD_ASE != 0 {
                    sts | STS_ASS
                } else {
                    sts & !STS_ASS
                };
                if v & CMD_IAAD != 0 {
                    sts |= STS_IAA;
                }
                r[(OP + USBSTS) / 4] = sts;
                r[(OP + USBCMD) / 4] = v & !CMD_IAAD;
            }
            USBSTS if off >= OP => r[(OP + USBSTS) / 4] &= !(v & 0x3f),
            _ => r[off / 4] = v,
        }
    }
    fn len(&self) -> usize {
        0x100
    }
}

#[test]
fn starts_with_a_halted_head_qh_on_the_async_list() {
    let hal = FakeHal::default();
    let mem = hal.mem.clone();
    let regs = Regs::new(4);
    let hc = Ehci::new(hal, regs, false).unwrap();
    assert_eq!(hc.ports(), 4);
    let head = u64::from(hc.mmio.read32(OP + ASYNCLISTADDR));
    let mut q = [0u8; 48];
    assert!(mem.read(head, &mut q));
    let w = |i: usize| u32::from_le_bytes(q[4 * i..4 * i + 4].try_into().unwrap());
    assert_eq!(u64::from(w(0) & !0x1f), head, "head links to itself");
    assert_eq!(w(0) & 6, TYP_QH);
    assert!(w(1) & (1 << 15) != 0, "H bit");
    assert!(w(6) & TOK_HALTED != 0, "never executed");
    assert_eq!(hc.mmio.read32(OP + CONFIGFLAG), 1);
    assert!(hc.mmio.read32(OP + USBCMD) & (CMD_RS | CMD_ASE) == CMD_RS | CMD_ASE);
}

#[test]
fn qh_link_and_unlink_keep_the_ring_closed() {
    let hal = FakeHal::default();
    let mut hc = Ehci::new(hal, Regs::new(2), false).unwrap();
    let a = hc.new_qh(1, 0, 64, true).unwrap();
    let b = hc.new_qh(1, 1, 512, false).unwrap();
    let walk = |hc: &Ehci<FakeHal, Regs>| {
        let mut v = Vec::new();
        let mut i = 0usize;
        for _ in 0..10 {
            let pa = u64::from(hc.qh.read_u32(i * QH_SIZE) & !0x1f);
            i = ((pa - hc.qh.phys()) as usize) / QH_SIZE;
            if i == 0 {
                break;
            }
            v.push(i);
        }
        v
    };
    assert_eq!(walk(&hc), vec![b, a]);
    assert_eq!((hc.qh.read_u32(b * QH_SIZE + 4) >> 16) & 0x7ff, 512);
    hc.free_qh(b);
    assert_eq!(walk(&hc), vec![a]);
    hc.free_qh(a);
    assert_eq!(walk(&hc), Vec::<usize>::new());
}

#[test]
fn chain_completion_short_packets_and_halts() {
    let hal = FakeHal::default();
    let mut hc = Ehci::new(hal, Regs::new(1), false).unwrap();
    let lens = [16384, 16384, 100];
    let idx = [3, 4, 5];
    for (k, len) in lens.iter().enumerate() {
        hc.put_qtd(idx[k], 0x10000, T, T);
        hc.qtd
            .write_u32(idx[k] * QTD_SIZE + 8, token(*len, PID_IN, false, k == 2));
    }
    assert!(hc.scan(&idx, &lens).is_none(), "running");
    // qTD 0 done, qTD 1 short by 1000 bytes: the transfer ends there.
    hc.qtd.write_u32(3 * QTD_SIZE + 8, 0);
    hc.qtd.write_u32(4 * QTD_SIZE + 8, 1000 << 16);
    match hc.scan(&idx, &lens) {
        Some(Outcome::Done(n)) => assert_eq!(n, 16384 + 15384),
        _ => panic!("short packet not seen"),
    }
    hc.qtd
        .write_u32(4 * QTD_SIZE + 8, TOK_HALTED | (16384 << 16));
    assert!(matches!(
        hc.scan(&idx, &lens),
        Some(Outcome::Error(UsbError::Stall))
    ));
    // Buffer pointers: page 0 with the offset, four more whole pages.
    hc.put_qtd(9, 0x12345, T, T);
    assert_eq!(hc.qtd.read_u32(9 * QTD_SIZE + 12), 0x12345);
    assert_eq!(hc.qtd.read_u32(9 * QTD_SIZE + 16), 0x13000);
}

#[test]
fn a_new_qh_idles_on_an_inactive_dummy_qtd() {
    let hal = FakeHal::default();
    let mut hc = Ehci::new(hal, Regs::new(1), false).unwrap();
    let free = hc.qtd_free.len();
    let q = hc.new_qh(3, 1, 512, false).unwrap();
    let d = hc.qh_dummy[q];
    assert_eq!(hc.qtd_free.len(), free - 1);
    assert_eq!(
        hc.qh.read_u32(q * QH_SIZE + 16),
        hc.qtd_phys(d),
        "overlay next = dummy"
    );
    assert_eq!(
        hc.qtd.read_u32(d * QTD_SIZE + 8) & TOK_ACTIVE,
        0,
        "dummy inactive"
    );
    assert_eq!(
        hc.qh.read_u32(q * QH_SIZE + 24) & (TOK_ACTIVE | TOK_HALTED),
        0
    );
    hc.free_qh(q);
    assert_eq!(hc.qtd_free.len(), free);
}

#[test]
fn interrupt_ack() {
    let r = Regs::new(1);
    let irq = IrqRegs { op: OP };
    r.0.lock().unwrap()[(OP + USBSTS) / 4] = STS_HALTED;
    assert!(!irq.ack(&r));
    r.0.lock().unwrap()[(OP + USBSTS) / 4] = 1 | (1 << 2);
    assert!(irq.ack(&r));
    assert_eq!(r.read32(OP + USBSTS), 0);
}
