//! A fake xHCI controller for host tests: a register file whose doorbells walk the command
//! and transfer rings in fake DMA memory (following Link TRBs and cycle bits as hardware
//! does) and post completion events on the event ring, with one high-speed Bulk-Only
//! stick (a RAM disk behind descriptors, CBW/CSW and READ/WRITE(10)) on port 1. Faults:
//! a bulk IN that stalls, a device that never completes a bulk transfer, a stick pulled out
//! mid-transfer.

use std::sync::{Arc, Mutex};

use adros_hal::Mmio;
use adros_hal::fake::FakeMemory;

pub const OP: usize = 0x20;
pub const RT: usize = 0x600;
pub const DB: usize = 0x800;
pub const PORTS: usize = 2;

#[derive(Default)]
pub struct Faults {
    /// Stall the next bulk IN data transfer (not a CSW).
    pub stall_data_in: u32,
    /// Never complete bulk transfers (a dead device).
    pub hang_bulk: bool,
    /// At the next bulk TD the stick on port 1 is pulled out: the port loses connection
    /// and enable, a Port Status Change event is posted, the TD never completes (as QEMU
    /// drops a detached device's transfers).
    pub unplug_on_bulk: bool,
    /// The configuration descriptor has a zero-length descriptor after its header.
    pub zero_length_config: bool,
}

#[derive(Default, Clone, Copy)]
struct RingPtr {
    pa: u64,
    cycle: bool,
}

enum Bot {
    Cbw,
    DataIn(Vec<u8>, u32),
    DataOut(u64, usize, u32),
    Csw(u32, u32, u8),
}

pub struct State {
    regs: Vec<u32>,
    mem: FakeMemory,
    cmd: RingPtr,
    ev_base: u64,
    ev_size: u32,
    ev_idx: u32,
    ev_cycle: bool,
    /// Transfer ring dequeue by (slot, dci).
    rings: std::collections::BTreeMap<(u8, u8), RingPtr>,
    next_slot: u8,
    pub disk: Vec<u8>,
    bot: Bot,
    pub faults: Faults,
    pub commands: Vec<u32>,
    pub halted: std::collections::BTreeSet<(u8, u8)>,
    /// (command type, slot, slot context) of every Address Device / Configure Endpoint.
    pub slot_contexts: Vec<(u32, u8, [u32; 4])>,
    pub resets_bot: u32,
}

#[derive(Clone)]
pub struct FakeXhci(pub Arc<Mutex<State>>);

fn rd(mem: &FakeMemory, pa: u64) -> [u32; 4] {
    let mut b = [0u8; 16];
    assert!(
        mem.read(pa, &mut b),
        "device read outside DMA memory at {pa:#x}"
    );
    [0, 1, 2, 3].map(|i| u32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap()))
}

fn rd_bytes(mem: &FakeMemory, pa: u64, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    assert!(mem.read(pa, &mut v));
    v
}

impl FakeXhci {
    pub fn new(mem: FakeMemory, blocks: usize) -> Self {
        let mut regs = vec![0u32; 0x1000 / 4];
        regs[0] = OP as u32 | (0x0110 << 16);
        regs[1] = 8 | (1 << 8) | ((PORTS as u32) << 24);
        regs[4] = (0x100 / 4) << 16; // xECP
        regs[5] = DB as u32;
        regs[6] = RT as u32;
        // Supported protocol: port 1 USB 2, port 2 USB 3.
        regs[0x100 / 4] = 0x0200_0402;
        regs[0x108 / 4] = 0x0000_0101;
        regs[0x110 / 4] = 0x0300_0002;
        regs[0x118 / 4] = 0x0000_0102;
        regs[(OP + 4) / 4] = 1; // HCH
        // Port 1: a high-speed device connected, powered; port 2 empty.
        regs[(OP + 0x400) / 4] = 1 | (1 << 9) | (3 << 10) | (1 << 17);
        regs[(OP + 0x410) / 4] = 1 << 9;
        let disk = (0..blocks * 512)
            .map(|i| (i / 512) as u8 ^ (i % 253) as u8)
            .collect();
        FakeXhci(Arc::new(Mutex::new(State {
            regs,
            mem,
            cmd: RingPtr::default(),
            ev_base: 0,
            ev_size: 0,
            ev_idx: 0,
            ev_cycle: true,
            rings: Default::default(),
            next_slot: 1,
            disk,
            bot: Bot::Cbw,
            faults: Faults::default(),
            commands: Vec::new(),
            halted: Default::default(),
            slot_contexts: Vec::new(),
            resets_bot: 0,
        })))
    }
}

impl State {
    fn event(&mut self, trb: [u32; 4]) {
        let pa = self.ev_base + 16 * u64::from(self.ev_idx);
        let mut t = trb;
        t[3] = (t[3] & !1) | u32::from(self.ev_cycle);
        let mut b = [0u8; 16];
        for i in 0..4 {
            b[4 * i..4 * i + 4].copy_from_slice(&t[i].to_le_bytes());
        }
        assert!(self.mem.write(pa, &b));
        self.ev_idx += 1;
        if self.ev_idx == self.ev_size {
            self.ev_idx = 0;
            self.ev_cycle = !self.ev_cycle;
        }
        // IMAN.IP, USBSTS.EINT
        self.regs[(RT + 0x20) / 4] |= 1;
        self.regs[(OP + 4) / 4] |= 1 << 3;
    }

    fn complete_cmd(&mut self, pa: u64, code: u32, slot: u8) {
        self.event([
            pa as u32,
            (pa >> 32) as u32,
            code << 24,
            (33 << 10) | (u32::from(slot) << 24),
        ]);
    }

    fn transfer_event(&mut self, pa: u64, residue: u32, code: u32, slot: u8, dci: u8) {
        self.event([
            pa as u32,
            (pa >> 32) as u32,
            (code << 24) | residue,
            (32 << 10) | (u32::from(dci) << 16) | (u32::from(slot) << 24),
        ]);
    }

    /// Next TRB of a ring (following Link TRBs); None when the cycle bit says empty.
    fn next(&self, r: &mut RingPtr) -> Option<(u64, [u32; 4])> {
        for _ in 0..4 {
            let t = rd(&self.mem, r.pa);
            if (t[3] & 1 != 0) != r.cycle {
                return None;
            }
            if (t[3] >> 10) & 0x3f == 6 {
                if t[3] & 2 != 0 {
                    r.cycle = !r.cycle;
                }
                r.pa = u64::from(t[0]) | (u64::from(t[1]) << 32);
                continue;
            }
            let pa = r.pa;
            r.pa += 16;
            return Some((pa, t));
        }
        None
    }

    fn ring_commands(&mut self) {
        let mut r = self.cmd;
        while let Some((pa, t)) = self.next(&mut r) {
            let ty = (t[3] >> 10) & 0x3f;
            self.commands.push(ty);
            let slot = (t[3] >> 24) as u8;
            let ctx = u64::from(t[0]) | (u64::from(t[1]) << 32);
            match ty {
                9 => {
                    let s = self.next_slot;
                    self.next_slot += 1;
                    self.complete_cmd(pa, 1, s);
                }
                10 => {
                    self.rings.retain(|k, _| k.0 != slot);
                    self.complete_cmd(pa, 1, slot)
                }
                11 | 12 => {
                    // Address Device / Configure Endpoint: rings from the input context.
                    let add = rd(&self.mem, ctx)[1];
                    let sc = rd(&self.mem, ctx + 32);
                    self.slot_contexts.push((ty, slot, sc));
                    for dci in 1..32u8 {
                        if add & (1 << dci) != 0 {
                            let e = rd(&self.mem, ctx + 32 * (u64::from(dci) + 1));
                            let dq = u64::from(e[2]) | (u64::from(e[3]) << 32);
                            self.rings.insert(
                                (slot, dci),
                                RingPtr {
                                    pa: dq & !0xf,
                                    cycle: dq & 1 != 0,
                                },
                            );
                        }
                    }
                    self.complete_cmd(pa, 1, slot)
                }
                13 => self.complete_cmd(pa, 1, slot),
                14 => {
                    let dci = ((t[3] >> 16) & 0x1f) as u8;
                    let code = if self.halted.remove(&(slot, dci)) {
                        1
                    } else {
                        19
                    };
                    self.complete_cmd(pa, code, slot)
                }
                15 => self.complete_cmd(pa, 1, slot),
                16 => {
                    let dci = ((t[3] >> 16) & 0x1f) as u8;
                    let dq = u64::from(t[0]) | (u64::from(t[1]) << 32);
                    self.rings.insert(
                        (slot, dci),
                        RingPtr {
                            pa: dq & !0xf,
                            cycle: dq & 1 != 0,
                        },
                    );
                    self.complete_cmd(pa, 1, slot)
                }
                _ => self.complete_cmd(pa, 5, slot),
            }
        }
        self.cmd = r;
    }

    fn descriptor(&self, value: u16) -> Vec<u8> {
        match value >> 8 {
            1 => vec![18, 1, 0, 2, 0, 0, 0, 64, 0x46, 0x46, 1, 0, 0, 1, 0, 2, 0, 1],
            2 => {
                let mut c = vec![9, 2, 32, 0, 1, 1, 0, 0x80, 50];
                c.extend_from_slice(&[9, 4, 0, 0, 2, 8, 6, 0x50, 0]);
                c.extend_from_slice(&[7, 5, 0x81, 2, 0, 2, 0]);
                c.extend_from_slice(&[7, 5, 0x02, 2, 0, 2, 0]);
                if self.faults.zero_length_config {
                    c[9] = 0;
                }
                c
            }
            3 if value & 0xff == 0 => vec![4, 3, 9, 4],
            3 => vec![10, 3, b'F', 0, b'a', 0, b'k', 0, b'e', 0],
            _ => Vec::new(),
        }
    }

    fn ring_ep(&mut self, slot: u8, dci: u8) {
        let Some(mut r) = self.rings.get(&(slot, dci)).copied() else {
            return;
        };
        if self.halted.contains(&(slot, dci)) {
            return;
        }
        loop {
            // Gather one TD.
            let mut td = Vec::new();
            let mut probe = r;
            while let Some((pa, t)) = self.next(&mut probe) {
                td.push((pa, t));
                let ty = (t[3] >> 10) & 0x3f;
                let chain = t[3] & (1 << 4) != 0;
                if (ty == 1 && !chain) || ty == 4 {
                    break;
                }
            }
            let Some(&(_, last)) = td.last() else {
                break;
            };
            let ty_last = (last[3] >> 10) & 0x3f;
            let complete_td = ty_last == 4 || (ty_last == 1 && last[3] & (1 << 4) == 0);
            if !complete_td {
                break;
            }
            if dci == 1 {
                self.control_td(slot, &td);
            } else if !self.bulk_td(slot, dci, &td) {
                // Hung or halted: the ring stays where it is.
                self.rings.insert((slot, dci), r);
                return;
            }
            r = probe;
            self.rings.insert((slot, dci), r);
        }
    }

    fn control_td(&mut self, slot: u8, td: &[(u64, [u32; 4])]) {
        let setup = td[0].1;
        let (rt, req, value) = (
            setup[0] as u8,
            (setup[0] >> 8) as u8,
            (setup[0] >> 16) as u16,
        );
        let len = (setup[1] >> 16) as usize;
        let mut reply = Vec::new();
        match (rt, req) {
            (0x80, 6) => reply = self.descriptor(value),
            (0x21, 0xff) => {
                self.resets_bot += 1;
                self.bot = Bot::Cbw;
            }
            (0xa1, 0xfe) => reply = vec![0],
            _ => {}
        }
        reply.truncate(len);
        let mut short = None;
        for &(pa, t) in td {
            match (t[3] >> 10) & 0x3f {
                3 => {
                    let buf = u64::from(t[0]) | (u64::from(t[1]) << 32);
                    let tl = (t[2] & 0x1_ffff) as usize;
                    if t[3] & (1 << 16) != 0 {
                        assert!(self.mem.write(buf, &reply));
                        if reply.len() < tl {
                            short = Some((pa, (tl - reply.len()) as u32));
                        }
                    }
                }
                4 => {
                    if let Some((spa, res)) = short {
                        self.transfer_event(spa, res, 13, slot, 1);
                    }
                    self.transfer_event(pa, 0, 1, slot, 1);
                }
                _ => {}
            }
        }
    }

    /// Runs a bulk TD; false if it did not complete (hang or stall).
    fn bulk_td(&mut self, slot: u8, dci: u8, td: &[(u64, [u32; 4])]) -> bool {
        if self.faults.hang_bulk {
            return false;
        }
        if self.faults.unplug_on_bulk {
            self.faults.unplug_on_bulk = false;
            self.faults.hang_bulk = true;
            let p = (OP + 0x400) / 4;
            // CCS and PED off, CSC (17) and PEC (18) on.
            self.regs[p] = (self.regs[p] & !3) | (1 << 17) | (1 << 18);
            self.event([1 << 24, 0, 1 << 24, 34 << 10]);
            return false;
        }
        let dir_in = dci & 1 == 1;
        let total: usize = td.iter().map(|(_, t)| (t[2] & 0x1_ffff) as usize).sum();
        let last_pa = td.last().unwrap().0;
        if dir_in {
            let data = match std::mem::replace(&mut self.bot, Bot::Cbw) {
                Bot::DataIn(d, tag) => {
                    if self.faults.stall_data_in > 0 {
                        self.faults.stall_data_in -= 1;
                        self.bot = Bot::Csw(tag, d.len() as u32, 1);
                        self.halted.insert((slot, dci));
                        self.transfer_event(td[0].0, 0, 6, slot, dci);
                        return false;
                    }
                    let n = d.len().min(total);
                    self.bot = Bot::Csw(tag, (total - n) as u32, 0);
                    d[..n].to_vec()
                }
                Bot::Csw(tag, residue, status) => {
                    let mut c = b"USBS".to_vec();
                    c.extend_from_slice(&tag.to_le_bytes());
                    c.extend_from_slice(&residue.to_le_bytes());
                    c.push(status);
                    c
                }
                other => {
                    self.bot = other;
                    self.halted.insert((slot, dci));
                    self.transfer_event(td[0].0, 0, 6, slot, dci);
                    return false;
                }
            };
            // Scatter into the TRBs.
            let mut off = 0;
            for &(pa, t) in td {
                let buf = u64::from(t[0]) | (u64::from(t[1]) << 32);
                let tl = (t[2] & 0x1_ffff) as usize;
                let n = tl.min(data.len() - off);
                assert!(self.mem.write(buf, &data[off..off + n]));
                off += n;
                if n < tl {
                    self.transfer_event(pa, (tl - n) as u32, 13, slot, dci);
                    return true;
                }
            }
            self.transfer_event(last_pa, 0, 1, slot, dci);
        } else {
            let mut data = Vec::new();
            for &(_, t) in td {
                let buf = u64::from(t[0]) | (u64::from(t[1]) << 32);
                data.extend(rd_bytes(&self.mem, buf, (t[2] & 0x1_ffff) as usize));
            }
            match std::mem::replace(&mut self.bot, Bot::Cbw) {
                Bot::Cbw => self.cbw(&data),
                Bot::DataOut(lba, len, tag) => {
                    let at = lba as usize * 512;
                    self.disk[at..at + len].copy_from_slice(&data[..len]);
                    self.bot = Bot::Csw(tag, 0, 0);
                }
                other => self.bot = other,
            }
            self.transfer_event(last_pa, 0, 1, slot, dci);
        }
        true
    }

    fn cbw(&mut self, b: &[u8]) {
        assert_eq!(&b[0..4], b"USBC");
        let tag = u32::from_le_bytes(b[4..8].try_into().unwrap());
        let len = u32::from_le_bytes(b[8..12].try_into().unwrap());
        let cdb = &b[15..31];
        let blocks = (self.disk.len() / 512) as u32;
        self.bot = match cdb[0] {
            0x12 => {
                let mut d = vec![0u8; 36];
                d[8..16].copy_from_slice(b"FAKE    ");
                d[16..32].copy_from_slice(b"XHCI STICK      ");
                Bot::DataIn(d, tag)
            }
            0x25 => {
                let mut d = (blocks - 1).to_be_bytes().to_vec();
                d.extend_from_slice(&512u32.to_be_bytes());
                Bot::DataIn(d, tag)
            }
            0x1a => Bot::DataIn(vec![3, 0, 0, 0], tag),
            0x03 => {
                let mut s = vec![0u8; 18];
                s[0] = 0x70;
                s[2] = 3;
                Bot::DataIn(s, tag)
            }
            0x28 | 0x2a => {
                let lba = u64::from(u32::from_be_bytes(cdb[2..6].try_into().unwrap()));
                let n = usize::from(u16::from_be_bytes([cdb[7], cdb[8]])) * 512;
                assert_eq!(n, len as usize);
                if cdb[0] == 0x28 {
                    let at = lba as usize * 512;
                    Bot::DataIn(self.disk[at..at + n].to_vec(), tag)
                } else {
                    Bot::DataOut(lba, n, tag)
                }
            }
            _ => Bot::Csw(tag, 0, 0),
        };
    }
}

impl Mmio for FakeXhci {
    fn read32(&self, off: usize) -> u32 {
        self.0.lock().unwrap().regs[off / 4]
    }

    fn write32(&self, off: usize, v: u32) {
        let mut s = self.0.lock().unwrap();
        let st = &mut *s;
        match off {
            o if o == OP => {
                if v & 2 != 0 {
                    st.regs[(OP + 4) / 4] |= 1;
                    st.regs[OP / 4] = 0;
                    return;
                }
                st.regs[OP / 4] = v;
                if v & 1 != 0 {
                    st.regs[(OP + 4) / 4] &= !1;
                } else {
                    st.regs[(OP + 4) / 4] |= 1;
                }
            }
            o if o == OP + 4 => st.regs[o / 4] &= !(v & 0x41c),
            o if o == OP + 0x18 => {
                st.regs[o / 4] = v;
                if v & 4 == 0 {
                    st.cmd = RingPtr {
                        pa: u64::from(v & !0x3f),
                        cycle: v & 1 != 0,
                    };
                }
            }
            o if (OP + 0x400..OP + 0x400 + 0x10 * PORTS).contains(&o)
                && (o - OP).is_multiple_of(16) =>
            {
                let cur = st.regs[o / 4];
                let mut n = (cur & !0x00fe_0000) | (cur & 0x00fe_0000 & !v);
                if v & 2 != 0 {
                    n &= !2;
                }
                if v & (1 << 4) != 0 && cur & 1 != 0 {
                    // Reset completes at once: enabled, reset change.
                    n |= 2 | (1 << 21);
                }
                st.regs[o / 4] = n;
            }
            o if o == RT + 0x20 => {
                let cur = st.regs[o / 4];
                st.regs[o / 4] = (v & 2) | (cur & 1 & !(v & 1));
            }
            o if o == RT + 0x20 + 0x10 => {
                st.regs[o / 4] = v;
                let erst = u64::from(v) | (u64::from(st.regs[(o + 4) / 4]) << 32);
                let e = rd(&st.mem, erst);
                st.ev_base = u64::from(e[0]) | (u64::from(e[1]) << 32);
                st.ev_size = e[2];
            }
            o if o == DB => {
                st.regs[o / 4] = v;
                st.ring_commands();
            }
            o if o > DB && o < DB + 4 * 9 => {
                let slot = ((o - DB) / 4) as u8;
                st.ring_ep(slot, v as u8);
            }
            o => st.regs[o / 4] = v,
        }
    }

    fn len(&self) -> usize {
        0x1000
    }
}
