#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
//! An EHCI (USB 2.0) host controller driver on the `adros-hal` traits, implementing
//! [`adros_usb::HostController`] for high-speed devices.
//!
//! The asynchronous schedule only (control and bulk): a circular list of queue heads
//! (a halted head QH with the H bit, then one QH per endpoint), transfers as qTD chains
//! handed to an idle QH through its overlay. Ports are reset by software (50 ms); a
//! device that is not high-speed after the reset (or shows a low-speed K state before it)
//! is handed to a companion controller (PORTSC.PORT_OWNER) and logged: on an Intel EHCI
//! the companions are UHCIs, driven by `adros-uhci`; a plain EHCI without companions leaves
//! such devices unused. No periodic schedule (interrupt and isochronous endpoints are not
//! configured), no split transactions (so full-speed hubs only through a companion).
//!
//! Errors: a halted qTD with no other error bit is a stall (the QH's halt is cleared and
//! its toggle reset by `reset_endpoint`); babble and transaction errors halt too; a
//! transfer that does not complete in time is taken off the schedule by unlinking its QH
//! (Interrupt on Async Advance handshake) and relinking it idle.

extern crate alloc;

mod hc;
#[cfg(test)]
mod tests;

use alloc::sync::Arc;
use alloc::vec::Vec;

use adros_hal::{
    Dma, Event, HANDSHAKE_US, Hal, HalError, Mmio, PhysAddr, dma_rmb, dma_wmb, poll_until,
};
use adros_usb::desc::{EndpointDescriptor, TransferType};
use adros_usb::{DeviceId, HostController, PortStatus, Setup, Speed, UsbError, req};

// Capability registers.
const CAPLENGTH: usize = 0x00;
const HCSPARAMS: usize = 0x04;
const HCCPARAMS: usize = 0x08;
// Operational registers.
const USBCMD: usize = 0x00;
const USBSTS: usize = 0x04;
const USBINTR: usize = 0x08;
const CTRLDSSEGMENT: usize = 0x10;
const ASYNCLISTADDR: usize = 0x18;
const CONFIGFLAG: usize = 0x40;
const PORTSC: usize = 0x44;

const CMD_RS: u32 = 1 << 0;
const CMD_HCRESET: u32 = 1 << 1;
const CMD_ASE: u32 = 1 << 5;
const CMD_IAAD: u32 = 1 << 6;
const CMD_ITC_1: u32 = 1 << 16;
const STS_HSE: u32 = 1 << 4;
const STS_IAA: u32 = 1 << 5;
const STS_HALTED: u32 = 1 << 12;
const STS_ASS: u32 = 1 << 15;
/// USBINT, USBERRINT, PCD, HSE, IAA: the interrupts enabled and acknowledged.
const STS_INTS: u32 = 0x37;

const PORT_CCS: u32 = 1 << 0;
const PORT_CSC: u32 = 1 << 1;
const PORT_PE: u32 = 1 << 2;
const PORT_PEC: u32 = 1 << 3;
const PORT_OCC: u32 = 1 << 5;
const PORT_PR: u32 = 1 << 8;
const PORT_PP: u32 = 1 << 12;
const PORT_OWNER: u32 = 1 << 13;
const PORT_CHANGES: u32 = PORT_CSC | PORT_PEC | PORT_OCC;
const PORT_LS_MASK: u32 = 3 << 10;
const PORT_LS_K: u32 = 1 << 10;

const T: u32 = 1;
const TYP_QH: u32 = 1 << 1;

// qTD token.
const TOK_ACTIVE: u32 = 1 << 7;
const TOK_HALTED: u32 = 1 << 6;
const TOK_DBERR: u32 = 1 << 5;
const TOK_BABBLE: u32 = 1 << 4;
const TOK_XACT: u32 = 1 << 3;
const TOK_IOC: u32 = 1 << 15;
const TOK_DT: u32 = 1 << 31;
const PID_OUT: u32 = 0;
const PID_IN: u32 = 1;
const PID_SETUP: u32 = 2;

const QH_SIZE: usize = 64;
const QHS: usize = 64;
const QTD_SIZE: usize = 32;
const QTDS: usize = 128;
/// Bytes per qTD: four whole pages of the page-aligned bounce buffer.
const QTD_BYTES: usize = 16 * 1024;
const XFER_BUF: usize = 256 * 1024;
const CTRL_BUF: usize = 4096;
const CONTROL_TIMEOUT_NS: u64 = 2_000_000_000;
const BULK_TIMEOUT_NS: u64 = 20_000_000_000;

/// Why the controller could not be brought up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    BadWindow,
    Timeout(&'static str),
    NoMemory,
    Absent,
}

impl From<HalError> for InitError {
    fn from(_: HalError) -> Self {
        InitError::NoMemory
    }
}

/// Counters for `/proc`-style reports.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub transfers: u64,
    pub bytes: u64,
    pub stalls: u64,
    pub timeouts: u64,
    pub errors: u64,
    pub companion_handoffs: u64,
    /// Transfers ended because their device's port lost it (a stick pulled out).
    pub unplugged: u64,
}

/// The registers an interrupt handler needs.
#[derive(Clone, Copy, Debug)]
pub struct IrqRegs {
    op: usize,
}

impl IrqRegs {
    /// Acknowledges the controller's interrupt status bits; true if any was set.
    pub fn ack<M: Mmio + ?Sized>(&self, m: &M) -> bool {
        let sts = m.read32(self.op + USBSTS);
        if sts == u32::MAX {
            return false;
        }
        let mine = sts & STS_INTS;
        if mine == 0 {
            return false;
        }
        m.write32(self.op + USBSTS, mine);
        true
    }
}

struct Device {
    address: u8,
    /// The root port it is on.
    port: u8,
    /// QH index by endpoint: [0] = EP0, then (endpoint address, QH index).
    ep0: usize,
    eps: Vec<(u8, usize)>,
}

/// The controller.
pub struct Ehci<H: Hal, M: Mmio> {
    hal: H,
    mmio: M,
    op: usize,
    ports: u8,
    qh: H::Dma,
    qtd: H::Dma,
    xfer: H::Dma,
    ctrl: H::Dma,
    qh_used: [bool; QHS],
    /// Each QH's inactive dummy qTD (the end of its queue).
    qh_dummy: [usize; QHS],
    /// Free qTDs of the pool.
    qtd_free: Vec<usize>,
    devices: Vec<Option<Device>>,
    next_address: u8,
    event: Option<Arc<dyn Event>>,
    dead: bool,
    port_changes: u64,
    /// The root port of the device the transfer being run belongs to (0: not known).
    cur_port: u8,
    pub stats: Stats,
}

/// What a finished qTD chain reports.
enum Outcome {
    Done(usize),
    Error(UsbError),
}

/// Token of a qTD: `len` bytes, `pid`, toggle, IOC.
fn token(len: usize, pid: u32, dt: bool, ioc: bool) -> u32 {
    (if dt { TOK_DT } else { 0 })
        | ((len as u32) << 16)
        | (if ioc { TOK_IOC } else { 0 })
        | (3 << 10)
        | (pid << 8)
        | TOK_ACTIVE
}

fn token_error(tok: u32) -> UsbError {
    if tok & TOK_BABBLE != 0 {
        UsbError::Babble
    } else if tok & (TOK_XACT | TOK_DBERR) != 0 {
        UsbError::Transaction
    } else {
        UsbError::Stall
    }
}

impl<H: Hal, M: Mmio> Ehci<H, M> {
    /// Resets and starts the controller with the asynchronous schedule on.
    pub fn new(hal: H, mmio: M, interrupts: bool) -> Result<Self, InitError> {
        if mmio.len() < 0x20 {
            return Err(InitError::BadWindow);
        }
        let cap = mmio.read32(CAPLENGTH);
        if cap == u32::MAX {
            return Err(InitError::Absent);
        }
        let op = (cap & 0xff) as usize;
        let hcs = mmio.read32(HCSPARAMS);
        let hcc = mmio.read32(HCCPARAMS);
        let ports = (hcs & 0xf) as u8;
        if op + PORTSC + 4 * usize::from(ports) > mmio.len() || op < 0x10 {
            return Err(InitError::BadWindow);
        }
        // Stop, reset. The limits are generous: the spec gives 16 microframes to halt, but
        // QEMU's EHCI updates its status from a frame timer that slows down while idle and
        // lags behind on a loaded host (a 100 ms limit failed there once).
        let cmd = mmio.read32(op + USBCMD);
        mmio.write32(op + USBCMD, cmd & !CMD_RS);
        if !poll_until(&hal, HANDSHAKE_US, 100, || {
            mmio.read32(op + USBSTS) & STS_HALTED != 0
        }) {
            return Err(InitError::Timeout("halt"));
        }
        mmio.write32(op + USBCMD, CMD_HCRESET);
        if !poll_until(&hal, 2 * HANDSHAKE_US, 1000, || {
            mmio.read32(op + USBCMD) & CMD_HCRESET == 0
        }) {
            return Err(InitError::Timeout("reset"));
        }
        if hcc & 1 != 0 {
            mmio.write32(op + CTRLDSSEGMENT, 0);
        }
        let mut qh = hal.dma_alloc(QHS * QH_SIZE)?;
        let qtd = hal.dma_alloc(QTDS * QTD_SIZE)?;
        let xfer = hal.dma_alloc(XFER_BUF)?;
        let ctrl = hal.dma_alloc(CTRL_BUF)?;
        // QH 0: the reclamation head, halted, linked to itself.
        let head = qh.phys();
        qh.write_u32(0, head as u32 | TYP_QH);
        qh.write_u32(4, 1 << 15 | 2 << 12);
        qh.write_u32(8, 1 << 30);
        qh.write_u32(16, T);
        qh.write_u32(20, T);
        qh.write_u32(24, TOK_HALTED);
        let mut qh_used = [false; QHS];
        qh_used[0] = true;
        mmio.write32(op + USBINTR, if interrupts { STS_INTS } else { 0 });
        mmio.write32(op + ASYNCLISTADDR, head as u32);
        mmio.write32(op + USBCMD, CMD_RS | CMD_ASE | CMD_ITC_1);
        mmio.write32(op + CONFIGFLAG, 1);
        if !poll_until(&hal, HANDSHAKE_US, 100, || {
            mmio.read32(op + USBSTS) & STS_HALTED == 0
        }) {
            return Err(InitError::Timeout("start"));
        }
        poll_until(&hal, HANDSHAKE_US, 100, || {
            mmio.read32(op + USBSTS) & STS_ASS != 0
        });
        let mut powered = false;
        for p in 0..usize::from(ports) {
            let off = op + PORTSC + 4 * p;
            let sc = mmio.read32(off);
            if sc & PORT_PP == 0 {
                mmio.write32(off, (sc & !PORT_CHANGES & !PORT_PE) | PORT_PP);
                powered = true;
            }
        }
        hal.delay_us(if powered { 20_000 } else { 5_000 });
        let mut devices = Vec::new();
        devices.resize_with(128, || None);
        Ok(Ehci {
            hal,
            mmio,
            op,
            ports,
            qh,
            qtd,
            xfer,
            ctrl,
            qh_used,
            qh_dummy: [0; QHS],
            qtd_free: (0..QTDS).rev().collect(),
            devices,
            next_address: 1,
            event: None,
            dead: false,
            port_changes: 0,
            cur_port: 0,
            stats: Stats::default(),
        })
    }

    pub fn set_event(&mut self, e: Arc<dyn Event>) {
        self.event = Some(e);
    }

    pub fn irq_regs(&self) -> IrqRegs {
        IrqRegs { op: self.op }
    }

    /// Switches the controller's interrupts on.
    pub fn enable_interrupts(&mut self) {
        self.mmio.write32(self.op + USBINTR, STS_INTS);
    }

    pub fn is_dead(&self) -> bool {
        self.dead
    }

    /// Ports whose status changed since the last call (bit p-1).
    pub fn take_port_changes(&mut self) -> u64 {
        for p in 1..=self.ports {
            if self.mmio.read32(self.portsc(p)) & PORT_CHANGES != 0 {
                self.port_changes |= 1 << (p - 1);
            }
        }
        core::mem::take(&mut self.port_changes)
    }

    fn portsc(&self, p: u8) -> usize {
        self.op + PORTSC + 4 * (usize::from(p) - 1)
    }

    fn check_alive(&mut self) -> Result<(), UsbError> {
        if self.dead {
            return Err(UsbError::HostDead);
        }
        let sts = self.mmio.read32(self.op + USBSTS);
        if sts == u32::MAX || sts & STS_HSE != 0 {
            self.dead = true;
            return Err(UsbError::HostDead);
        }
        Ok(())
    }

    /// True when root port `port` no longer holds an enabled device: the stick was pulled
    /// out, and a transfer to it never completes (QEMU drops a detached device's packets
    /// and leaves the qTD active).
    fn port_gone(&mut self, port: u8) -> bool {
        if port == 0 || port > self.ports {
            return false;
        }
        let sc = self.mmio.read32(self.portsc(port));
        if sc == u32::MAX {
            self.dead = true;
            return true;
        }
        sc & PORT_CCS == 0 || sc & PORT_PE == 0
    }

    fn qh_phys(&self, i: usize) -> PhysAddr {
        self.qh.phys() + (i * QH_SIZE) as u64
    }

    /// A new QH for `address`/`endpoint` (idle), linked after the head.
    fn new_qh(&mut self, address: u8, ep: u8, mps: u16, control: bool) -> Result<usize, UsbError> {
        let i = self
            .qh_used
            .iter()
            .position(|u| !u)
            .ok_or(UsbError::NoResources)?;
        let dummy = self.alloc_qtd()?;
        self.put_qtd(dummy, 0, T, T);
        self.qtd.write_u32(dummy * QTD_SIZE + 8, 0);
        self.qh_dummy[i] = dummy;
        self.qh_used[i] = true;
        let o = i * QH_SIZE;
        for w in 0..QH_SIZE / 4 {
            self.qh.write_u32(o + 4 * w, 0);
        }
        let dtc = if control { 1 << 14 } else { 0 };
        self.qh.write_u32(
            o + 4,
            (u32::from(mps) << 16)
                | dtc
                | (2 << 12)
                | (u32::from(ep & 0xf) << 8)
                | u32::from(address),
        );
        self.qh.write_u32(o + 8, 1 << 30);
        // The overlay's next qTD is the dummy (inactive): idle until it is activated.
        self.qh.write_u32(o + 16, self.qtd_phys(dummy));
        self.qh.write_u32(o + 20, T);
        // Link: new → head's successor; head → new.
        let head_next = self.qh.read_u32(0);
        self.qh.write_u32(o, head_next);
        dma_wmb();
        self.qh.write_u32(0, self.qh_phys(i) as u32 | TYP_QH);
        Ok(i)
    }

    /// Takes QH `i` off the schedule (Interrupt on Async Advance handshake), so the
    /// controller has no cached copy of it.
    fn unlink_qh(&mut self, i: usize) {
        let target = self.qh_phys(i) as u32 | TYP_QH;
        let next = self.qh.read_u32(i * QH_SIZE);
        let mut prev = 0usize;
        for _ in 0..QHS {
            let link = self.qh.read_u32(prev * QH_SIZE);
            if link == target {
                self.qh.write_u32(prev * QH_SIZE, next);
                break;
            }
            let pa = u64::from(link & !0x1f);
            prev = ((pa - self.qh.phys()) as usize) / QH_SIZE;
            if prev == 0 || prev >= QHS {
                return;
            }
        }
        dma_wmb();
        let cmd = self.mmio.read32(self.op + USBCMD);
        self.mmio.write32(self.op + USBCMD, cmd | CMD_IAAD);
        let (m, op) = (&self.mmio, self.op);
        poll_until(&self.hal, HANDSHAKE_US, 100, || {
            m.read32(op + USBSTS) & STS_IAA != 0
        });
        self.mmio.write32(self.op + USBSTS, STS_IAA);
    }

    fn free_qh(&mut self, i: usize) {
        self.unlink_qh(i);
        self.qh_used[i] = false;
        self.qtd_free.push(self.qh_dummy[i]);
    }

    fn qtd_phys(&self, k: usize) -> u32 {
        (self.qtd.phys() + (k * QTD_SIZE) as u64) as u32
    }

    fn alloc_qtd(&mut self) -> Result<usize, UsbError> {
        self.qtd_free.pop().ok_or(UsbError::NoResources)
    }

    /// Writes qTD `k` except its token (the caller activates it last).
    fn put_qtd(&mut self, k: usize, buf: PhysAddr, next: u32, alt: u32) {
        let o = k * QTD_SIZE;
        self.qtd.write_u32(o, next);
        self.qtd.write_u32(o + 4, alt);
        let off = (buf & 0xfff) as u32;
        let page = buf & !0xfff;
        self.qtd.write_u32(o + 12, (page as u32) | off);
        for p in 1..5 {
            self.qtd
                .write_u32(o + 12 + 4 * p, (page + 4096 * p as u64) as u32);
        }
    }

    /// Queues `tds` (token, buffer) on QH `i` and waits for them.
    ///
    /// Every QH's queue ends in an inactive dummy qTD that its overlay's next pointer
    /// names, so a live QH's overlay is never written (the controller may be writing it
    /// back): the new chain's first qTD *is* the old dummy, the chain ends in a fresh
    /// dummy, and the old dummy's token is activated last. With `short_stops`, a short
    /// packet sends the controller (alternate next) straight to the new dummy.
    fn run(
        &mut self,
        i: usize,
        tds: &[(u32, PhysAddr)],
        short_stops: bool,
        timeout: u64,
    ) -> Result<Outcome, UsbError> {
        self.check_alive()?;
        let port = self.cur_port;
        if self.port_gone(port) {
            return Err(UsbError::NoDevice);
        }
        let first = self.qh_dummy[i];
        let mut idx = alloc::vec![first];
        for _ in 1..tds.len() {
            match self.alloc_qtd() {
                Ok(k) => idx.push(k),
                Err(e) => {
                    self.qtd_free.extend(idx.drain(1..));
                    return Err(e);
                }
            }
        }
        let dummy = match self.alloc_qtd() {
            Ok(k) => k,
            Err(e) => {
                self.qtd_free.extend(idx.drain(1..));
                return Err(e);
            }
        };
        let dpa = self.qtd_phys(dummy);
        self.put_qtd(dummy, 0, T, T);
        self.qtd.write_u32(dummy * QTD_SIZE + 8, 0);
        let alt = if short_stops { dpa } else { T };
        for (n, &(tok, buf)) in tds.iter().enumerate() {
            let next = if n + 1 < tds.len() {
                self.qtd_phys(idx[n + 1])
            } else {
                dpa
            };
            self.put_qtd(idx[n], buf, next, alt);
            if n > 0 {
                self.qtd.write_u32(idx[n] * QTD_SIZE + 8, tok);
            }
        }
        dma_wmb();
        self.qtd.write_u32(first * QTD_SIZE + 8, tds[0].0);
        self.qh_dummy[i] = dummy;
        self.stats.transfers += 1;
        let lens: Vec<usize> = tds
            .iter()
            .map(|(t, _)| ((t >> 16) & 0x7fff) as usize)
            .collect();
        let deadline = self.hal.now_ns() + timeout;
        let mut spins = 0u32;
        let (mut unplugged, mut waited) = (false, false);
        let r = loop {
            if let Some(r) = self.scan(&idx, &lens) {
                if let Outcome::Done(b) = r {
                    self.stats.bytes += b as u64;
                }
                break Some(r);
            }
            let now = self.hal.now_ns();
            if now >= deadline {
                break None;
            }
            self.check_alive()?;
            // Woken without a completion (a port change interrupt, or the periodic look):
            // is the device still there?
            if waited && self.port_gone(port) {
                unplugged = true;
                break None;
            }
            match &self.event {
                Some(e) => {
                    e.wait(Some(deadline.min(now + 5_000_000)));
                }
                None => {
                    spins += 1;
                    self.hal.delay_us(if spins < 200 { 5 } else { 1000 });
                }
            }
            waited = true;
        };
        match r {
            Some(Outcome::Done(n)) => {
                self.qtd_free.extend_from_slice(&idx);
                Ok(Outcome::Done(n))
            }
            Some(Outcome::Error(e)) => {
                // The QH is halted: its overlay may be written. Park it on the dummy,
                // keeping it halted until `reset_endpoint`; retire the rest of the chain.
                self.park(i, &idx, true);
                Ok(Outcome::Error(e))
            }
            None => {
                // Timed out or unplugged: take the QH off the schedule, retire the chain,
                // relink it.
                if unplugged {
                    self.stats.unplugged += 1;
                } else {
                    self.stats.timeouts += 1;
                }
                self.unlink_qh(i);
                self.park(i, &idx, false);
                let o = i * QH_SIZE;
                let head_next = self.qh.read_u32(0);
                self.qh.write_u32(o, head_next);
                dma_wmb();
                self.qh.write_u32(0, self.qh_phys(i) as u32 | TYP_QH);
                Err(if unplugged {
                    UsbError::NoDevice
                } else {
                    UsbError::Timeout
                })
            }
        }
    }

    /// Points an idle (halted or unlinked) QH's overlay at its dummy and frees `idx`.
    fn park(&mut self, i: usize, idx: &[usize], halted: bool) {
        for &k in idx {
            self.qtd.write_u32(k * QTD_SIZE + 8, 0);
        }
        let o = i * QH_SIZE;
        let dt = self.qh.read_u32(o + 24) & TOK_DT;
        self.qh.write_u32(o + 12, 0);
        self.qh.write_u32(o + 16, self.qtd_phys(self.qh_dummy[i]));
        self.qh.write_u32(o + 20, T);
        dma_wmb();
        self.qh
            .write_u32(o + 24, dt | if halted { TOK_HALTED } else { 0 });
        self.qtd_free.extend_from_slice(idx);
    }

    /// The chain's state: None while it runs.
    fn scan(&self, idx: &[usize], lens: &[usize]) -> Option<Outcome> {
        let n = idx.len();
        let mut moved = 0;
        for k in 0..n {
            let tok = self.qtd.read_u32(idx[k] * QTD_SIZE + 8);
            if tok & TOK_ACTIVE != 0 {
                return None;
            }
            dma_rmb();
            if tok & TOK_HALTED != 0 {
                return Some(Outcome::Error(token_error(tok)));
            }
            let left = ((tok >> 16) & 0x7fff) as usize;
            moved += lens[k].saturating_sub(left);
            if left > 0 && lens[k] > 0 {
                // Short packet: a bulk IN chain ends here (the controller went to the
                // dummy); a control transfer goes on to its status stage, which must
                // finish too.
                if k + 1 < n && lens[n - 1] == 0 {
                    let st = self.qtd.read_u32(idx[n - 1] * QTD_SIZE + 8);
                    if st & TOK_ACTIVE != 0 {
                        return None;
                    }
                    if st & TOK_HALTED != 0 {
                        return Some(Outcome::Error(token_error(st)));
                    }
                }
                return Some(Outcome::Done(moved));
            }
        }
        Some(Outcome::Done(moved))
    }

    fn finish(&mut self, r: Outcome) -> Result<usize, UsbError> {
        match r {
            Outcome::Done(n) => Ok(n),
            Outcome::Error(e) => {
                if e == UsbError::Stall {
                    self.stats.stalls += 1;
                } else {
                    self.stats.errors += 1;
                }
                Err(e)
            }
        }
    }

    fn device(&self, dev: DeviceId) -> Result<&Device, UsbError> {
        self.devices
            .get(usize::from(dev.0))
            .and_then(|d| d.as_ref())
            .ok_or(UsbError::NoDevice)
    }

    fn ep_qh(&self, dev: DeviceId, ep: u8) -> Result<usize, UsbError> {
        let d = self.device(dev)?;
        if ep & 0xf == 0 {
            return Ok(d.ep0);
        }
        d.eps
            .iter()
            .find(|(a, _)| *a == ep)
            .map(|(_, q)| *q)
            .ok_or(UsbError::NoDevice)
    }

    fn bulk(&mut self, dev: DeviceId, ep: u8, len: usize, dir_in: bool) -> Result<usize, UsbError> {
        if len > XFER_BUF {
            return Err(UsbError::TooLarge);
        }
        let q = self.ep_qh(dev, ep)?;
        self.cur_port = self.device(dev)?.port;
        let pid = if dir_in { PID_IN } else { PID_OUT };
        let mut tds = Vec::new();
        let mut off = 0;
        loop {
            let n = QTD_BYTES.min(len - off);
            let last = off + n >= len;
            // Toggles come from the QH (DTC = 0).
            tds.push((token(n, pid, false, last), self.xfer.phys() + off as u64));
            off += n;
            if last {
                break;
            }
        }
        let r = self.run(q, &tds, dir_in, BULK_TIMEOUT_NS)?;
        self.finish(r)
    }
}
