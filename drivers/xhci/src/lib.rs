#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
//! An xHCI host controller driver on the `adros-hal` traits, implementing
//! [`adros_usb::HostController`].
//!
//! TRBs and device/input contexts come from the `xhci` crate (`xhci::ring::trb`,
//! `xhci::context`). Its register accessors map raw pointers (`unsafe fn new(mmio_base)`),
//! which a `forbid(unsafe_code)` crate cannot use, so registers are reached through
//! [`Mmio`] at the offsets of the xHCI 1.2 specification (§5), collected in [`regs`].
//!
//! What it does: halt/reset/start, DCBAA and scratchpad buffers, one command ring, one
//! event ring on interrupter 0 (IMAN/IMOD; the kernel acknowledges interrupts with
//! [`IrqRegs::ack`] and wakes the driver through an [`Event`]; without an interrupt the
//! driver polls), root ports (USB 2 ports are reset, USB 3 ports train by themselves — told
//! apart by the Supported Protocol capabilities), Enable Slot / Address Device / Evaluate
//! Context / Configure Endpoint / Disable Slot, control and bulk transfers on transfer
//! rings with Link TRBs, 32- and 64-byte contexts (HCCPARAMS1.CSZ). Errors: a stall,
//! babble or transaction error halts the endpoint, which is recovered with Reset Endpoint
//! and Set TR Dequeue Pointer before the error is returned; a transfer that does not
//! complete in time is stopped (Stop Endpoint) and skipped.
//!
//! All calls are synchronous: the kernel serialises them (one lock per controller).

extern crate alloc;

#[cfg(test)]
mod fake_hc;
mod hc;
pub mod regs;
pub mod ring;
#[cfg(test)]
mod tests;
mod xfer;

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;

use adros_hal::{Dma, Event, HANDSHAKE_US, Hal, HalError, Mmio, PhysAddr, dma_wmb, poll_until};
use adros_usb::desc::{EndpointDescriptor, TransferType as EpType};
use adros_usb::{DeviceId, HostController, PortStatus, Setup, Speed, UsbError};
use xhci::context::{EndpointType, InputHandler};
use xhci::ring::trb::{command, event, transfer};

use regs::*;
use ring::{EventRing, Ring};

/// Why the controller could not be brought up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    /// The register window is smaller than the capability registers say.
    BadWindow,
    /// The controller did not halt, reset or start in time.
    Timeout(&'static str),
    NoMemory,
    /// Registers read as all ones: the device is not there.
    Absent,
}

impl From<HalError> for InitError {
    fn from(_: HalError) -> Self {
        InitError::NoMemory
    }
}

/// How long a command or a control transfer may take.
const COMMAND_TIMEOUT_NS: u64 = 2_000_000_000;
/// A bulk transfer (a whole run of a stick's blocks) may take this long.
const BULK_TIMEOUT_NS: u64 = 20_000_000_000;
/// How often a waiting transfer looks at its port without a Port Status Change event.
const PORT_CHECK_NS: u64 = 100_000_000;
/// Bounce buffer for bulk data (the largest single transfer).
const XFER_BUF: usize = 256 * 1024;
/// Control data stage buffer.
const CTRL_BUF: usize = 4096;

/// Counters for `/proc`-style reports.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub commands: u64,
    pub transfers: u64,
    pub bytes: u64,
    pub events: u64,
    pub stalls: u64,
    pub timeouts: u64,
    pub errors: u64,
    /// Transfers ended because their device's port lost it (a stick pulled out).
    pub unplugged: u64,
}

/// Where a device sits below the root port (xHCI §4.5.2, §6.2.2), for its slot context.
#[derive(Clone, Copy, Debug, Default)]
struct Topo {
    /// Route string: the hub port at each tier, 4 bits per tier (0: on the root port).
    route: u32,
    /// A hub: its number of downstream ports (the slot context's Hub flag).
    hub_ports: u8,
    /// A full/low-speed device behind a high-speed hub: the hub's slot and port (its
    /// transaction translator).
    tt_slot: u8,
    tt_port: u8,
}

struct Slot<D: Dma> {
    /// The root port (the route string's start).
    port: u8,
    speed: Speed,
    psi: u8,
    topo: Topo,
    out_ctx: D,
    in_ctx: D,
    /// Transfer rings by DCI (1 = EP0).
    rings: [Option<Ring<D>>; 32],
    /// Maximum packet size by DCI.
    mps: [u16; 32],
}

/// What the driver waits for.
enum Wait {
    Command(PhysAddr),
    /// A transfer event of `slot`/`dci` for a TRB in `first..=last` (TRB addresses); for
    /// a control transfer the event on `last` (the status stage) ends it.
    Transfer {
        slot: u8,
        dci: u8,
        trbs: Vec<PhysAddr>,
        control: bool,
    },
}

/// The registers an interrupt handler needs to acknowledge the controller.
#[derive(Clone, Copy, Debug)]
pub struct IrqRegs {
    op: usize,
    ir0: usize,
}

impl IrqRegs {
    /// Acknowledges interrupter 0 (IMAN.IP, USBSTS.EINT). True if the interrupt was ours.
    pub fn ack<M: Mmio + ?Sized>(&self, m: &M) -> bool {
        let iman = m.read32(self.ir0 + IMAN);
        if iman == u32::MAX || iman & IMAN_IP == 0 {
            return false;
        }
        m.write32(self.ir0 + IMAN, iman | IMAN_IP);
        m.write32(self.op + USBSTS, USBSTS_EINT);
        true
    }
}

/// The controller.
pub struct Xhci<H: Hal, M: Mmio> {
    hal: H,
    mmio: M,
    op: usize,
    db: usize,
    ir0: usize,
    ports: u8,
    max_slots: u8,
    csz64: bool,
    /// Ports (1-based) of USB 3 protocol.
    usb3: u64,
    dcbaa: H::Dma,
    _scratch: Vec<H::Dma>,
    cmd: Ring<H::Dma>,
    events: EventRing<H::Dma>,
    slots: Vec<Option<Slot<H::Dma>>>,
    xfer: H::Dma,
    ctrl: H::Dma,
    event: Option<Arc<dyn Event>>,
    /// Ports with a Port Status Change event since the last [`Xhci::take_port_changes`].
    port_changes: u64,
    dead: bool,
    /// The short-packet event of a control transfer's data stage, until its status stage
    /// completes.
    pending_short: Option<[u32; 4]>,
    pub stats: Stats,
}

fn speed_of(psi: u32) -> Option<Speed> {
    // Default Protocol Speed IDs (xHCI §7.2.2.1.1).
    match psi {
        1 => Some(Speed::Full),
        2 => Some(Speed::Low),
        3 => Some(Speed::High),
        4 => Some(Speed::Super),
        5..=15 => Some(Speed::SuperPlus),
        _ => None,
    }
}

/// Device Context Index of endpoint address `ep` (bit 7: IN).
pub fn dci(ep: u8) -> u8 {
    let n = ep & 0xf;
    if n == 0 { 1 } else { n * 2 + (ep >> 7) }
}

fn code_error(code: u8) -> UsbError {
    match code {
        3 => UsbError::Babble,
        4 => UsbError::Transaction,
        6 => UsbError::Stall,
        // Slot/endpoint not enabled, context state errors: the device is gone.
        11 | 12 | 19 => UsbError::NoDevice,
        c => UsbError::Controller(c),
    }
}

impl<H: Hal, M: Mmio> Xhci<H, M> {
    /// Resets and starts the controller. `interrupts`: enable interrupter 0 (the kernel
    /// routed the line and will call [`IrqRegs::ack`] and notify the [`Event`] given to
    /// [`Xhci::set_event`]); else the driver polls.
    pub fn new(hal: H, mmio: M, interrupts: bool) -> Result<Self, InitError> {
        if mmio.len() < 0x100 {
            return Err(InitError::BadWindow);
        }
        let cap0 = mmio.read32(CAPLENGTH);
        if cap0 == u32::MAX {
            return Err(InitError::Absent);
        }
        let caplen = (cap0 & 0xff) as usize;
        let hcs1 = mmio.read32(HCSPARAMS1);
        let hcs2 = mmio.read32(HCSPARAMS2);
        let hcc1 = mmio.read32(HCCPARAMS1);
        let db = (mmio.read32(DBOFF) & !3) as usize;
        let rts = (mmio.read32(RTSOFF) & !0x1f) as usize;
        let op = caplen;
        let max_slots = (hcs1 & 0xff).min(64) as u8;
        let ports = (hcs1 >> 24) as u8;
        let ir0 = rts + 0x20;
        if op + PORTSC_BASE + 0x10 * usize::from(ports) > mmio.len()
            || db + 4 * (usize::from(max_slots) + 1) > mmio.len()
            || ir0 + 0x20 > mmio.len()
            || max_slots == 0
        {
            return Err(InitError::BadWindow);
        }
        let csz64 = hcc1 & HCCPARAMS1_CSZ != 0;
        let usb3 = supported_protocols(&mmio, ((hcc1 >> 16) as usize) * 4, ports);
        bios_handoff(&hal, &mmio, ((hcc1 >> 16) as usize) * 4);

        // Halt, then reset.
        let cmd = mmio.read32(op + USBCMD);
        if mmio.read32(op + USBSTS) & USBSTS_HCH == 0 {
            mmio.write32(op + USBCMD, cmd & !USBCMD_RS);
            if !poll_until(&hal, HANDSHAKE_US, 100, || {
                mmio.read32(op + USBSTS) & USBSTS_HCH != 0
            }) {
                return Err(InitError::Timeout("halt"));
            }
        }
        mmio.write32(op + USBCMD, USBCMD_HCRST);
        if !poll_until(&hal, 2 * HANDSHAKE_US, 1000, || {
            mmio.read32(op + USBCMD) & USBCMD_HCRST == 0
                && mmio.read32(op + USBSTS) & USBSTS_CNR == 0
        }) {
            return Err(InitError::Timeout("reset"));
        }

        mmio.write32(op + CONFIG, u32::from(max_slots));
        let mut dcbaa = hal.dma_alloc(8 * 256)?;
        let sp = (((hcs2 >> 21) & 0x1f) << 5) | ((hcs2 >> 27) & 0x1f);
        let mut scratch = Vec::new();
        if sp > 0 {
            let page = 4096usize << (mmio.read32(op + PAGESIZE) & 0xffff).trailing_zeros();
            let mut arr = hal.dma_alloc(8 * sp as usize)?;
            for i in 0..sp as usize {
                let b = hal.dma_alloc(page)?;
                arr.write_u64(8 * i, b.phys());
                scratch.push(b);
            }
            dcbaa.write_u64(0, arr.phys());
            scratch.push(arr);
        }
        write64(&mmio, op + DCBAAP, dcbaa.phys());
        let cmdring = Ring::new(&hal)?;
        write64(&mmio, op + CRCR, cmdring.phys() | 1);
        let events = EventRing::new(&hal)?;
        mmio.write32(ir0 + ERSTSZ, 1);
        write64(&mmio, ir0 + ERDP, events.dequeue_ptr());
        write64(&mmio, ir0 + ERSTBA, events.erst_phys());
        // 40 µs moderation (in 250 ns units), as Linux.
        mmio.write32(ir0 + IMOD, 160);
        mmio.write32(ir0 + IMAN, IMAN_IP | if interrupts { IMAN_IE } else { 0 });
        let xfer = hal.dma_alloc(XFER_BUF)?;
        let ctrl = hal.dma_alloc(CTRL_BUF)?;
        mmio.write32(
            op + USBCMD,
            USBCMD_RS | if interrupts { USBCMD_INTE } else { 0 },
        );
        if !poll_until(&hal, HANDSHAKE_US, 100, || {
            mmio.read32(op + USBSTS) & USBSTS_HCH == 0
        }) {
            return Err(InitError::Timeout("start"));
        }
        // Port power (controllers without port power switching keep PP set).
        let mut powered = false;
        for p in 1..=ports {
            let off = op + PORTSC_BASE + 0x10 * (usize::from(p) - 1);
            let sc = mmio.read32(off);
            if sc & PORTSC_PP == 0 {
                mmio.write32(off, (sc & PORTSC_KEEP) | PORTSC_PP);
                powered = true;
            }
        }
        if powered {
            hal.delay_us(20_000);
        }
        let mut slots = Vec::new();
        slots.resize_with(usize::from(max_slots) + 1, || None);
        Ok(Xhci {
            hal,
            mmio,
            op,
            db,
            ir0,
            ports,
            max_slots,
            csz64,
            usb3,
            dcbaa,
            _scratch: scratch,
            cmd: cmdring,
            events,
            slots,
            xfer,
            ctrl,
            event: None,
            port_changes: 0,
            dead: false,
            pending_short: None,
            stats: Stats::default(),
        })
    }

    /// The wake-up the interrupt handler notifies.
    pub fn set_event(&mut self, e: Arc<dyn Event>) {
        self.event = Some(e);
    }

    /// Switches interrupter 0 and USBCMD.INTE on (after the kernel attached its handler).
    pub fn enable_interrupts(&mut self) {
        let iman = self.mmio.read32(self.ir0 + IMAN);
        self.mmio.write32(self.ir0 + IMAN, iman | IMAN_IE | IMAN_IP);
        let cmd = self.mmio.read32(self.op + USBCMD);
        self.mmio.write32(self.op + USBCMD, cmd | USBCMD_INTE);
    }

    pub fn irq_regs(&self) -> IrqRegs {
        IrqRegs {
            op: self.op,
            ir0: self.ir0,
        }
    }

    pub fn context_size(&self) -> usize {
        if self.csz64 { 64 } else { 32 }
    }

    pub fn max_slots(&self) -> u8 {
        self.max_slots
    }

    /// True if port `p` (1-based) is a USB 3 port.
    pub fn is_usb3(&self, p: u8) -> bool {
        p > 0 && p <= 64 && self.usb3 & (1 << (p - 1)) != 0
    }

    /// Ports that reported a change (bit p-1), cleared.
    pub fn take_port_changes(&mut self) -> u64 {
        self.drain(None);
        core::mem::take(&mut self.port_changes)
    }

    /// True once the controller reported a fatal error (HSE/HCE) or vanished.
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    fn portsc(&self, p: u8) -> usize {
        self.op + PORTSC_BASE + 0x10 * (usize::from(p) - 1)
    }

    fn ring_doorbell(&self, slot: u8, target: u8) {
        dma_wmb();
        self.mmio
            .write32(self.db + 4 * usize::from(slot), u32::from(target));
    }

    /// Processes every pending event; returns the one `want` matches, if it came.
    fn drain(&mut self, want: Option<&Wait>) -> Option<[u32; 4]> {
        let mut found = None;
        let mut n = 0;
        while let Some(ev) = self.events.pop() {
            n += 1;
            self.stats.events += 1;
            match event::Allowed::try_from(ev) {
                Ok(event::Allowed::PortStatusChange(p)) => {
                    let id = p.port_id();
                    if (1..=64).contains(&id) {
                        self.port_changes |= 1 << (id - 1);
                    }
                }
                Ok(event::Allowed::CommandCompletion(c)) => {
                    if let Some(Wait::Command(pa)) = want
                        && c.command_trb_pointer() == *pa
                        && found.is_none()
                    {
                        found = Some(ev);
                    }
                }
                Ok(event::Allowed::TransferEvent(t)) => {
                    if let Some(Wait::Transfer {
                        slot,
                        dci,
                        trbs,
                        control,
                    }) = want
                    {
                        let ptr = t.trb_pointer();
                        if t.slot_id() == *slot
                            && t.endpoint_id() == *dci
                            && found.is_none()
                            && trbs.contains(&ptr)
                        {
                            let code = t.completion_code().map_or_else(|c| c, |c| c as u8);
                            let last = trbs.last() == Some(&ptr);
                            // A short data stage of a control transfer is followed by the
                            // status stage's event: wait for that one (keep the short one's
                            // residue in `found` through a second pass below).
                            if !*control || last || !(code == 1 || code == 13) {
                                found = Some(ev);
                            } else {
                                self.pending_short = Some(ev);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        if n > 0 {
            write64(
                &self.mmio,
                self.ir0 + ERDP,
                self.events.dequeue_ptr() | ERDP_EHB,
            );
        }
        found
    }
}

impl<H: Hal, M: Mmio> Xhci<H, M> {
    fn disable_slot(&mut self, id: u8) {
        let mut d = command::DisableSlot::new();
        d.set_slot_id(id);
        let _ = self.command(d.into_raw());
        self.dcbaa.write_u64(8 * usize::from(id), 0);
        if let Some(s) = self.slots.get_mut(usize::from(id)) {
            *s = None;
        }
    }

    /// The port and speed of a device (for logs).
    pub fn device_port(&mut self, dev: DeviceId) -> Option<(u8, Speed)> {
        self.slot(dev).ok().map(|s| (s.port, s.speed))
    }

    /// The slot state the controller keeps in the output device context (diagnostics).
    pub fn slot_state(&mut self, dev: DeviceId) -> Option<u32> {
        let s = self.slot(dev).ok()?;
        Some(s.out_ctx.read_u32(12) >> 27)
    }
}

/// Normal TRBs for `len` bytes at `base` (a TD): split so no TRB crosses a 64 KiB boundary
/// (xHCI §6.4.1.1), chained, Interrupt-on-Short-Packet on IN TRBs, Interrupt-on-Completion
/// on the last, TD Size (packets left after each TRB, at most 31).
pub fn normal_trbs(base: PhysAddr, len: usize, dir_in: bool, mps: u16) -> Vec<[u32; 4]> {
    let mut v = Vec::new();
    let mut off = 0usize;
    loop {
        let pa = base + off as u64;
        let room = (0x1_0000 - (pa & 0xffff)) as usize;
        let n = room.min(len - off);
        let rest = len - off - n;
        let mut t = transfer::Normal::new();
        t.set_data_buffer_pointer(pa)
            .set_trb_transfer_length(n as u32);
        t.set_td_size(rest.div_ceil(usize::from(mps.max(1))).min(31) as u8);
        if dir_in {
            t.set_interrupt_on_short_packet();
        }
        off += n;
        if off < len {
            t.set_chain_bit();
            v.push(t.into_raw());
        } else {
            t.set_interrupt_on_completion();
            v.push(t.into_raw());
            return v;
        }
    }
}

fn write64<M: Mmio + ?Sized>(m: &M, off: usize, v: u64) {
    m.write32(off, v as u32);
    m.write32(off + 4, (v >> 32) as u32);
}

/// Walks the extended capabilities: the bitmap of USB 3 ports (Supported Protocol, ID 2).
fn supported_protocols<M: Mmio + ?Sized>(m: &M, mut off: usize, ports: u8) -> u64 {
    let mut usb3 = 0u64;
    let mut guard = 0;
    while off != 0 && off + 16 <= m.len() && guard < 64 {
        guard += 1;
        let w0 = m.read32(off);
        if w0 & 0xff == XECP_PROTOCOL && w0 >> 24 >= 3 {
            let w2 = m.read32(off + 8);
            let first = (w2 & 0xff) as u8;
            let count = ((w2 >> 8) & 0xff) as u8;
            for p in first..first.saturating_add(count) {
                if p >= 1 && p <= ports && p <= 64 {
                    usb3 |= 1 << (p - 1);
                }
            }
        }
        let next = ((w0 >> 8) & 0xff) as usize;
        if next == 0 {
            break;
        }
        off += next * 4;
    }
    usb3
}

/// USB Legacy Support (ID 1): takes the controller from the BIOS.
fn bios_handoff<H: Hal, M: Mmio + ?Sized>(hal: &H, m: &M, mut off: usize) {
    let mut guard = 0;
    while off != 0 && off + 8 <= m.len() && guard < 64 {
        guard += 1;
        let w0 = m.read32(off);
        if w0 & 0xff == XECP_LEGACY {
            m.write32(off, w0 | LEGSUP_OS_OWNED);
            poll_until(hal, HANDSHAKE_US, 1000, || {
                m.read32(off) & LEGSUP_BIOS_OWNED == 0
            });
            // SMI enables off.
            let ctl = m.read32(off + 4);
            m.write32(off + 4, ctl & 0xffff_0000 & !0x1f);
            return;
        }
        let next = ((w0 >> 8) & 0xff) as usize;
        if next == 0 {
            return;
        }
        off += next * 4;
    }
}
