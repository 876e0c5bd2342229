#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
//! A UHCI (USB 1.1) host controller driver on the `adros-hal` traits, implementing
//! [`adros_usb::HostController`] for full- and low-speed devices: the companion
//! controllers of a PC's EHCI (Intel ICH), which get every device the EHCI hands over
//! (PORTSC.PORT_OWNER) — QEMU's full-speed `usb-hub` among them.
//!
//! The registers are 16 bytes of port I/O plus one 16-bit PORTSC per root port (the
//! kernel gives them through the same [`Mmio`] window trait as memory BARs). The schedule
//! is the simplest UHCI allows for one transfer at a time (the core's calls are
//! synchronous): the 1024-entry frame list points every frame at one queue head, and a
//! transfer is a chain of TDs (one per packet, linked depth-first) hung from that QH's
//! element pointer. The controller walks the chain each frame until the frame's
//! bandwidth is used up, advancing the element pointer past each TD it completes.
//!
//! * Data toggles are software's: SETUP is DATA0, the data stage starts at DATA1, the
//!   status stage is DATA1; a bulk endpoint keeps its toggle between transfers and
//!   advances it by the packets that completed (a stall's `reset_endpoint` sets DATA0).
//! * Short packets: IN data TDs carry SPD, so a short packet stops the queue there (the
//!   element pointer stays on it). A bulk IN ends; a control transfer's element pointer is
//!   moved to its status TD, which must complete too.
//! * Errors: a TD that stops with STALLED alone is a stall; BABBLE is babble; CRC/time-out,
//!   bit stuffing or a data buffer error (after the TD's three tries) is a transaction
//!   error. A transfer that does not complete in time (2 s control, 20 s bulk) is taken
//!   off the QH (element pointer terminated) and its TDs retired after the controller has
//!   moved past them. A transfer to a device whose root port lost it ends with
//!   `NoDevice`. A halted controller (host system or process error) is dead.
//! * Root ports: reset (50 ms), then enabled by software (UHCI ports do not enable
//!   themselves), speed from the low-speed-attached bit; connect/enable changes are
//!   acknowledged by `port_status`. The controller has no port-change interrupt: the
//!   caller polls.

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

// I/O registers (UHCI 1.1 §2.1).
const USBCMD: usize = 0x00;
const USBSTS: usize = 0x02;
const USBINTR: usize = 0x04;
const FRNUM: usize = 0x06;
const FLBASEADD: usize = 0x08;
const PORTSC: usize = 0x10;
/// The most root ports looked for (Linux's limit; the registers end at 0x1f).
const MAX_PORTS: usize = 7;

const CMD_RS: u16 = 1 << 0;
const CMD_HCRESET: u16 = 1 << 1;
const CMD_GRESET: u16 = 1 << 2;
const CMD_CF: u16 = 1 << 6;
const CMD_MAXP: u16 = 1 << 7;

const STS_HSE: u16 = 1 << 3;
const STS_HCPE: u16 = 1 << 4;
const STS_HALTED: u16 = 1 << 5;
/// USBINT, USBERRINT, resume detect, host system error, process error: write-1-to-clear.
const STS_ACK: u16 = 0x1f;

/// Time-out/CRC, IOC and short-packet interrupts.
const INTR_ENABLE: u16 = 0x0d;

const PORT_CCS: u16 = 1 << 0;
const PORT_CSC: u16 = 1 << 1;
const PORT_PE: u16 = 1 << 2;
const PORT_PEC: u16 = 1 << 3;
/// Reserved, reads as 1 on a port that exists.
const PORT_PRESENT: u16 = 1 << 7;
const PORT_LSDA: u16 = 1 << 8;
const PORT_PR: u16 = 1 << 9;
const PORT_CHANGES: u16 = PORT_CSC | PORT_PEC;

// Link pointers.
const LINK_T: u32 = 1 << 0;
const LINK_QH: u32 = 1 << 1;
const LINK_VF: u32 = 1 << 2;

// TD control and status.
const TD_ACTLEN: u32 = 0x7ff;
const TD_BITSTUFF: u32 = 1 << 17;
const TD_CRC_TIMEOUT: u32 = 1 << 18;
const TD_BABBLE: u32 = 1 << 20;
const TD_DBUF: u32 = 1 << 21;
const TD_STALLED: u32 = 1 << 22;
const TD_ACTIVE: u32 = 1 << 23;
const TD_IOC: u32 = 1 << 24;
const TD_LS: u32 = 1 << 26;
const TD_CERR3: u32 = 3 << 27;
const TD_SPD: u32 = 1 << 29;
const TD_ERRORS: u32 = TD_BITSTUFF | TD_CRC_TIMEOUT | TD_BABBLE | TD_DBUF | TD_STALLED;

// TD token.
pub const PID_SETUP: u8 = 0x2d;
pub const PID_IN: u8 = 0x69;
pub const PID_OUT: u8 = 0xe1;
const TOK_TOGGLE: u32 = 1 << 19;

const FRAMES: usize = 1024;
/// The schedule's one DMA region: the frame list, the QH, the TD pool.
const QH_OFF: usize = FRAMES * 4;
const TD_OFF: usize = QH_OFF + 32;
const TD_SIZE: usize = 16;
const TDS: usize = 1100;
const SCHED_LEN: usize = TD_OFF + TDS * TD_SIZE;
const XFER_BUF: usize = 64 * 1024;
const CTRL_BUF: usize = 4096;
const CONTROL_TIMEOUT_NS: u64 = 2_000_000_000;
const BULK_TIMEOUT_NS: u64 = 20_000_000_000;
/// After a transfer is taken off the schedule, how long its TDs stay untouched: the
/// controller may be inside the frame that reads them, and an emulated one (QEMU) keeps a
/// packet it had started for up to 32 frames before it notices the TD is gone.
const RETIRE_US: u64 = 64_000;

/// Why the controller could not be brought up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    BadWindow,
    Timeout(&'static str),
    NoMemory,
    /// The registers read as all ones, or no root port answers.
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
    /// Transfers ended because their device's root port lost it.
    pub unplugged: u64,
    pub port_resets: u64,
}

/// The registers an interrupt handler needs.
#[derive(Clone, Copy, Debug, Default)]
pub struct IrqRegs;

impl IrqRegs {
    /// Acknowledges the controller's interrupt status bits; true if any was set.
    pub fn ack<M: Mmio + ?Sized>(&self, m: &M) -> bool {
        let sts = m.read16(USBSTS);
        if sts == u16::MAX {
            return false;
        }
        let mine = sts & STS_ACK;
        if mine == 0 {
            return false;
        }
        m.write16(USBSTS, mine);
        true
    }
}

struct Endpoint {
    /// Endpoint address (direction bit included).
    address: u8,
    mps: u16,
    /// The data toggle of the next packet.
    toggle: bool,
}

struct Device {
    address: u8,
    /// The root port it is on (behind a hub: the hub's).
    port: u8,
    low_speed: bool,
    ep0_mps: u16,
    eps: Vec<Endpoint>,
}

/// One packet of a transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Td {
    pid: u8,
    len: usize,
    toggle: bool,
    buf: PhysAddr,
    /// A data packet (not a control transfer's SETUP or status packet).
    data: bool,
}

/// What a TD chain looks like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scan {
    Running,
    /// Every TD completed (or a short IN packet ended the data at TD `short`).
    Done {
        bytes: usize,
        packets: usize,
        short: Option<usize>,
    },
    Error {
        error: UsbError,
        packets: usize,
    },
}

/// The TD token: maximum length, toggle, endpoint, address, PID.
pub fn td_token(pid: u8, address: u8, ep: u8, toggle: bool, len: usize) -> u32 {
    let maxlen = if len == 0 {
        0x7ff
    } else {
        (len as u32 - 1) & 0x7ff
    };
    (maxlen << 21)
        | (if toggle { TOK_TOGGLE } else { 0 })
        | (u32::from(ep & 0xf) << 15)
        | (u32::from(address & 0x7f) << 8)
        | u32::from(pid)
}

/// The TD control word of a packet to be sent: three tries, active.
pub fn td_control(low_speed: bool, ioc: bool, spd: bool) -> u32 {
    TD_CERR3
        | TD_ACTIVE
        | (if low_speed { TD_LS } else { 0 })
        | (if ioc { TD_IOC } else { 0 })
        | (if spd { TD_SPD } else { 0 })
}

/// Bytes a completed TD moved (the ActLen field counts n - 1, 0x7ff for none).
pub fn td_actual(status: u32) -> usize {
    ((status + 1) & TD_ACTLEN) as usize
}

/// The error of a TD that stopped with error bits.
pub fn td_error(status: u32) -> UsbError {
    if status & TD_BABBLE != 0 {
        UsbError::Babble
    } else if status & (TD_CRC_TIMEOUT | TD_BITSTUFF | TD_DBUF) != 0 {
        UsbError::Transaction
    } else {
        UsbError::Stall
    }
}

/// The controller.
pub struct Uhci<H: Hal, M: Mmio> {
    hal: H,
    io: M,
    ports: u8,
    sched: H::Dma,
    xfer: H::Dma,
    ctrl: H::Dma,
    devices: Vec<Option<Device>>,
    next_address: u8,
    event: Option<Arc<dyn Event>>,
    dead: bool,
    port_changes: u64,
    pub stats: Stats,
}

impl<H: Hal, M: Mmio> Uhci<H, M> {
    /// Resets the controller (global reset, then host controller reset) and starts it
    /// with every frame pointing at the transfer QH.
    pub fn new(hal: H, io: M, interrupts: bool) -> Result<Self, InitError> {
        if io.len() < PORTSC + 4 {
            return Err(InitError::BadWindow);
        }
        if io.read16(USBSTS) == u16::MAX {
            return Err(InitError::Absent);
        }
        io.write16(USBINTR, 0);
        io.write16(USBCMD, CMD_GRESET);
        hal.delay_us(50_000);
        io.write16(USBCMD, 0);
        hal.delay_us(10_000);
        io.write16(USBCMD, CMD_HCRESET);
        if !poll_until(&hal, HANDSHAKE_US, 100, || {
            io.read16(USBCMD) & CMD_HCRESET == 0
        }) {
            return Err(InitError::Timeout("reset"));
        }
        let mut ports = 0u8;
        for p in 0..MAX_PORTS.min((io.len() - PORTSC) / 2) {
            let v = io.read16(PORTSC + 2 * p);
            if v & PORT_PRESENT == 0 || v == u16::MAX {
                break;
            }
            ports += 1;
        }
        if ports == 0 {
            return Err(InitError::Absent);
        }
        let mut sched = hal.dma_alloc(SCHED_LEN)?;
        let xfer = hal.dma_alloc(XFER_BUF)?;
        let ctrl = hal.dma_alloc(CTRL_BUF)?;
        let qh = (sched.phys() + QH_OFF as u64) as u32;
        sched.write_u32(QH_OFF, LINK_T);
        sched.write_u32(QH_OFF + 4, LINK_T);
        for f in 0..FRAMES {
            sched.write_u32(4 * f, qh | LINK_QH);
        }
        dma_wmb();
        io.write16(USBSTS, STS_ACK);
        io.write16(FRNUM, 0);
        io.write32(FLBASEADD, sched.phys() as u32);
        io.write16(USBINTR, if interrupts { INTR_ENABLE } else { 0 });
        io.write16(USBCMD, CMD_RS | CMD_CF | CMD_MAXP);
        if !poll_until(&hal, HANDSHAKE_US, 100, || {
            io.read16(USBSTS) & STS_HALTED == 0
        }) {
            return Err(InitError::Timeout("start"));
        }
        let mut devices = Vec::new();
        devices.resize_with(128, || None);
        Ok(Uhci {
            hal,
            io,
            ports,
            sched,
            xfer,
            ctrl,
            devices,
            next_address: 1,
            event: None,
            dead: false,
            port_changes: 0,
            stats: Stats::default(),
        })
    }

    pub fn set_event(&mut self, e: Arc<dyn Event>) {
        self.event = Some(e);
    }

    pub fn irq_regs(&self) -> IrqRegs {
        IrqRegs
    }

    /// Switches the controller's interrupts on.
    pub fn enable_interrupts(&mut self) {
        self.io.write16(USBINTR, INTR_ENABLE);
    }

    pub fn is_dead(&self) -> bool {
        self.dead
    }

    /// Ports whose status changed since the last call (bit p-1).
    pub fn take_port_changes(&mut self) -> u64 {
        for p in 1..=self.ports {
            if self.io.read16(portsc(p)) & PORT_CHANGES != 0 {
                self.port_changes |= 1 << (p - 1);
            }
        }
        core::mem::take(&mut self.port_changes)
    }

    fn check_alive(&mut self) -> Result<(), UsbError> {
        if self.dead {
            return Err(UsbError::HostDead);
        }
        let sts = self.io.read16(USBSTS);
        if sts == u16::MAX || sts & (STS_HSE | STS_HCPE | STS_HALTED) != 0 {
            self.dead = true;
            return Err(UsbError::HostDead);
        }
        Ok(())
    }

    /// True when root port `port` no longer holds an enabled device.
    fn port_gone(&mut self, port: u8) -> bool {
        if port == 0 || port > self.ports {
            return false;
        }
        let sc = self.io.read16(portsc(port));
        if sc == u16::MAX {
            self.dead = true;
            return true;
        }
        sc & PORT_CCS == 0 || sc & PORT_PE == 0
    }

    fn td_phys(&self, k: usize) -> u32 {
        (self.sched.phys() + (TD_OFF + k * TD_SIZE) as u64) as u32
    }

    fn set_element(&mut self, link: u32) {
        dma_wmb();
        self.sched.write_u32(QH_OFF + 4, link);
    }

    /// Writes `tds` as one depth-first chain (IOC on the last; SPD on IN data packets).
    fn put_chain(&mut self, address: u8, ep: u8, low_speed: bool, tds: &[Td]) {
        let n = tds.len();
        for (k, td) in tds.iter().enumerate() {
            let o = TD_OFF + k * TD_SIZE;
            let last = k + 1 == n;
            let link = if last {
                LINK_T
            } else {
                self.td_phys(k + 1) | LINK_VF
            };
            self.sched.write_u32(o, link);
            self.sched.write_u32(
                o + 4,
                td_control(low_speed, last, td.data && td.pid == PID_IN),
            );
            self.sched
                .write_u32(o + 8, td_token(td.pid, address, ep, td.toggle, td.len));
            self.sched.write_u32(o + 12, td.buf as u32);
        }
    }

    fn td_status(&self, k: usize) -> u32 {
        self.sched.read_u32(TD_OFF + k * TD_SIZE + 4)
    }

    /// The chain's state.
    fn scan(&self, tds: &[Td]) -> Scan {
        let (mut bytes, mut packets) = (0, 0);
        for (k, td) in tds.iter().enumerate() {
            let st = self.td_status(k);
            if st & TD_ACTIVE != 0 {
                return Scan::Running;
            }
            dma_rmb();
            if st & TD_ERRORS != 0 {
                return Scan::Error {
                    error: td_error(st),
                    packets,
                };
            }
            if td.data {
                // An acknowledged OUT packet went out whole.
                let got = if td.pid == PID_IN {
                    td_actual(st).min(td.len)
                } else {
                    td.len
                };
                bytes += got;
                packets += 1;
                if td.pid == PID_IN && got < td.len {
                    return Scan::Done {
                        bytes,
                        packets,
                        short: Some(k),
                    };
                }
            }
        }
        Scan::Done {
            bytes,
            packets,
            short: None,
        }
    }

    /// Runs `tds` on the transfer QH and waits for them. `control`: the last TD is a
    /// status stage that must run even after a short data packet.
    fn run(
        &mut self,
        dev: DeviceId,
        ep: u8,
        tds: &[Td],
        control: bool,
        timeout: u64,
    ) -> Result<Scan, UsbError> {
        self.check_alive()?;
        let (address, port, low) = {
            let d = self.device(dev)?;
            (d.address, d.port, d.low_speed)
        };
        if tds.is_empty() || tds.len() > TDS {
            return Err(UsbError::TooLarge);
        }
        self.put_chain(address, ep, low, tds);
        let first = self.td_phys(0);
        self.set_element(first);
        self.stats.transfers += 1;
        let deadline = self.hal.now_ns() + timeout;
        let (mut spins, mut waited, mut redirected, mut unplugged) = (0u32, false, false, false);
        let n = tds.len();
        let r = loop {
            match self.scan(tds) {
                Scan::Running => {}
                Scan::Done {
                    bytes,
                    packets,
                    short: Some(k),
                } if control => {
                    // Short data stage: the queue stopped on it (SPD); the status stage
                    // runs next.
                    let st = self.td_status(n - 1);
                    if st & TD_ACTIVE == 0 {
                        dma_rmb();
                        break Some(if st & TD_ERRORS != 0 {
                            Scan::Error {
                                error: td_error(st),
                                packets,
                            }
                        } else {
                            Scan::Done {
                                bytes,
                                packets,
                                short: Some(k),
                            }
                        });
                    }
                    if !redirected {
                        redirected = true;
                        let status = self.td_phys(n - 1);
                        self.set_element(status);
                    }
                }
                done => break Some(done),
            }
            let now = self.hal.now_ns();
            if now >= deadline {
                break None;
            }
            self.check_alive()?;
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
                    self.hal.delay_us(if spins < 20 { 100 } else { 1000 });
                }
            }
            waited = true;
        };
        match r {
            Some(s) => {
                if let Scan::Done { bytes, .. } = s {
                    self.stats.bytes += bytes as u64;
                }
                Ok(s)
            }
            None => {
                // Timed out or unplugged: off the schedule, then retired once the
                // controller cannot be looking at the TDs any more.
                self.set_element(LINK_T);
                self.hal.delay_us(RETIRE_US);
                let packets = match self.scan(tds) {
                    Scan::Done { packets, .. } | Scan::Error { packets, .. } => packets,
                    Scan::Running => (0..n)
                        .take_while(|&k| {
                            let st = self.td_status(k);
                            st & (TD_ACTIVE | TD_ERRORS) == 0
                        })
                        .filter(|&k| tds[k].data)
                        .count(),
                };
                for k in 0..n {
                    self.sched.write_u32(TD_OFF + k * TD_SIZE + 4, 0);
                }
                let error = if unplugged {
                    self.stats.unplugged += 1;
                    UsbError::NoDevice
                } else {
                    self.stats.timeouts += 1;
                    UsbError::Timeout
                };
                Ok(Scan::Error { error, packets })
            }
        }
    }

    fn finish(&mut self, s: Scan) -> Result<usize, UsbError> {
        match s {
            Scan::Done { bytes, .. } => Ok(bytes),
            Scan::Error { error, .. } => {
                match error {
                    UsbError::Stall => self.stats.stalls += 1,
                    UsbError::Timeout | UsbError::NoDevice => {}
                    _ => self.stats.errors += 1,
                }
                Err(error)
            }
            Scan::Running => Err(UsbError::Timeout),
        }
    }

    fn device(&self, dev: DeviceId) -> Result<&Device, UsbError> {
        self.devices
            .get(usize::from(dev.0))
            .and_then(|d| d.as_ref())
            .ok_or(UsbError::NoDevice)
    }

    fn endpoint(&mut self, dev: DeviceId, ep: u8) -> Result<&mut Endpoint, UsbError> {
        self.devices
            .get_mut(usize::from(dev.0))
            .and_then(|d| d.as_mut())
            .ok_or(UsbError::NoDevice)?
            .eps
            .iter_mut()
            .find(|e| e.address == ep)
            .ok_or(UsbError::NoDevice)
    }

    /// A bulk transfer of `len` bytes of the bounce buffer, in chains of at most `TDS`
    /// packets; a short IN packet ends it.
    fn bulk(&mut self, dev: DeviceId, ep: u8, len: usize, dir_in: bool) -> Result<usize, UsbError> {
        if len > XFER_BUF {
            return Err(UsbError::TooLarge);
        }
        let (mps, mut toggle) = {
            let e = self.endpoint(dev, ep)?;
            (usize::from(e.mps), e.toggle)
        };
        let pid = if dir_in { PID_IN } else { PID_OUT };
        let mut off = 0;
        loop {
            let chunk = (len - off).min(TDS * mps);
            let mut tds = Vec::with_capacity(chunk.div_ceil(mps).max(1));
            let mut o = 0;
            loop {
                let n = mps.min(chunk - o);
                tds.push(Td {
                    pid,
                    len: n,
                    toggle,
                    buf: self.xfer.phys() + (off + o) as u64,
                    data: true,
                });
                toggle = !toggle;
                o += n;
                if o >= chunk {
                    break;
                }
            }
            let r = self.run(dev, ep, &tds, false, BULK_TIMEOUT_NS)?;
            // The toggle moves on by the packets that went through.
            let packets = match r {
                Scan::Done { packets, .. } | Scan::Error { packets, .. } => packets,
                Scan::Running => 0,
            };
            let start = tds[0].toggle;
            toggle = start ^ (packets % 2 == 1);
            if let Ok(e) = self.endpoint(dev, ep) {
                e.toggle = toggle;
            }
            let short = matches!(r, Scan::Done { short: Some(_), .. });
            let n = self.finish(r)?;
            off += n;
            // (`n == 0` cannot happen for a whole chunk; never loop on it.)
            if short || off >= len || n == 0 {
                return Ok(off);
            }
        }
    }
}

fn portsc(p: u8) -> usize {
    PORTSC + 2 * (usize::from(p) - 1)
}
