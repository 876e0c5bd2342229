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
pub mod regs;
pub mod ring;
#[cfg(test)]
mod tests;

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;

use adros_hal::{Dma, Event, Hal, HalError, Mmio, PhysAddr, dma_wmb, poll_until};
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
            if !poll_until(&hal, 100_000, 100, || {
                mmio.read32(op + USBSTS) & USBSTS_HCH != 0
            }) {
                return Err(InitError::Timeout("halt"));
            }
        }
        mmio.write32(op + USBCMD, USBCMD_HCRST);
        if !poll_until(&hal, 1_000_000, 1000, || {
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
        if !poll_until(&hal, 100_000, 100, || {
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
    /// Checks the controller is still alive (USBSTS.HSE/HCE, a window reading all ones).
    fn check_alive(&mut self) -> Result<(), UsbError> {
        if self.dead {
            return Err(UsbError::HostDead);
        }
        let sts = self.mmio.read32(self.op + USBSTS);
        if sts == u32::MAX || sts & (USBSTS_HSE | USBSTS_HCE) != 0 {
            self.dead = true;
            return Err(UsbError::HostDead);
        }
        Ok(())
    }

    /// True when the root port of device slot `slot` no longer holds an enabled device:
    /// the stick was pulled out (or the port was disabled under it). A transfer to it can
    /// never complete (QEMU drops a detached device's transfers without an event).
    fn slot_port_gone(&mut self, slot: u8) -> bool {
        let Some(port) = self
            .slots
            .get(usize::from(slot))
            .and_then(|s| s.as_ref())
            .map(|s| s.port)
        else {
            return true;
        };
        let sc = self.mmio.read32(self.portsc(port));
        if sc == u32::MAX {
            self.dead = true;
            return true;
        }
        sc & PORTSC_CCS == 0 || sc & PORTSC_PED == 0
    }

    /// Waits for the event `want` until `deadline` (monotonic ns). A transfer also ends
    /// (None) when its device's port loses the device: at once on a Port Status Change
    /// event of that port, and at the latest 100 ms after the port changed.
    fn wait(&mut self, want: &Wait, deadline: u64) -> Option<[u32; 4]> {
        let mut spins = 0u32;
        let mut next_port_check = self.hal.now_ns() + PORT_CHECK_NS;
        loop {
            if let Some(ev) = self.drain(Some(want)) {
                return Some(ev);
            }
            let now = self.hal.now_ns();
            if now >= deadline || self.check_alive().is_err() {
                return None;
            }
            if let Wait::Transfer { slot, .. } = want {
                let port = self
                    .slots
                    .get(usize::from(*slot))
                    .and_then(|s| s.as_ref())
                    .map_or(0, |s| s.port);
                let changed =
                    (1..=64).contains(&port) && self.port_changes & (1 << (port - 1)) != 0;
                if (changed || now >= next_port_check) && self.slot_port_gone(*slot) {
                    return None;
                }
                if now >= next_port_check {
                    next_port_check = now + PORT_CHECK_NS;
                }
            }
            match &self.event {
                // Interrupts: sleep until notified; a few ms at most, which covers a lost
                // interrupt and the death of the controller.
                Some(e) => {
                    e.wait(Some(deadline.min(now + 5_000_000)));
                }
                // Polling: a short spin first (most completions take microseconds under
                // emulation), then millisecond sleeps.
                None => {
                    spins += 1;
                    self.hal.delay_us(if spins < 200 { 5 } else { 1000 });
                }
            }
        }
    }

    /// Runs one command; returns (completion code, slot id) of its completion event.
    fn command(&mut self, trb: [u32; 4]) -> Result<(u8, u8), UsbError> {
        self.check_alive()?;
        let pa = self.cmd.push(trb);
        self.stats.commands += 1;
        self.ring_doorbell(0, 0);
        let deadline = self.hal.now_ns() + COMMAND_TIMEOUT_NS;
        let Some(ev) = self.wait(&Wait::Command(pa), deadline) else {
            // Abort the command ring so a wedged command does not block the next ones.
            self.stats.timeouts += 1;
            let crcr = self.op + CRCR;
            write64(&self.mmio, crcr, CRCR_CA);
            let deadline = self.hal.now_ns() + 100_000_000;
            let _ = self.wait(&Wait::Command(pa), deadline);
            return Err(UsbError::Timeout);
        };
        let code = (ev[2] >> 24) as u8;
        let slot = (ev[3] >> 24) as u8;
        Ok((code, slot))
    }

    fn command_ok(&mut self, trb: [u32; 4]) -> Result<u8, UsbError> {
        match self.command(trb)? {
            (1, slot) => Ok(slot),
            (code, _) => {
                self.stats.errors += 1;
                Err(code_error(code))
            }
        }
    }

    fn slot(&mut self, dev: DeviceId) -> Result<&mut Slot<H::Dma>, UsbError> {
        self.slots
            .get_mut(usize::from(dev.0))
            .and_then(|s| s.as_mut())
            .ok_or(UsbError::NoDevice)
    }

    /// Writes an input context (control + slot + 31 endpoint contexts) for slot `id`.
    fn write_input(&mut self, id: u8, input: &dyn InputHandler) -> Result<PhysAddr, UsbError> {
        let csz = self.context_size();
        let slot = self.slot(DeviceId(id))?;
        let mut off = 0;
        let mut put = |words: &[u32], off: &mut usize| {
            for (i, w) in words.iter().enumerate() {
                slot.in_ctx.write_u32(*off + 4 * i, *w);
            }
            *off += csz;
        };
        put(input.control().as_ref(), &mut off);
        put(input.device().slot().as_ref(), &mut off);
        for dci in 1..=31 {
            put(input.device().endpoint(dci).as_ref(), &mut off);
        }
        Ok(slot.in_ctx.phys())
    }

    fn new_input(&self) -> Box<dyn InputHandler> {
        if self.csz64 {
            Box::new(xhci::context::Input::new_64byte())
        } else {
            Box::new(xhci::context::Input::new_32byte())
        }
    }

    /// Fills the slot context of `input` (root port, speed, context entries).
    fn fill_slot(&self, input: &mut dyn InputHandler, port: u8, psi: u8, entries: u8, t: Topo) {
        let s = input.device_mut().slot_mut();
        s.set_root_hub_port_number(port);
        s.set_speed(psi);
        s.set_context_entries(entries);
        s.set_route_string(t.route);
        if t.hub_ports > 0 {
            s.set_hub();
            s.set_number_of_ports(t.hub_ports);
        }
        if t.tt_slot != 0 {
            s.set_parent_hub_slot_id(t.tt_slot);
            s.set_parent_port_number(t.tt_port);
        }
    }

    fn fill_ep0(&self, input: &mut dyn InputHandler, ring: PhysAddr, mps: u16) {
        let e = input.device_mut().endpoint_mut(1);
        e.set_endpoint_type(EndpointType::Control);
        e.set_max_packet_size(mps);
        e.set_error_count(3);
        e.set_tr_dequeue_pointer(ring);
        e.set_dequeue_cycle_state();
        e.set_average_trb_length(8);
    }

    /// Host-side recovery of a halted endpoint: Reset Endpoint, then move the dequeue
    /// pointer past whatever was left on the ring.
    fn recover_halted(&mut self, slot: u8, dci: u8) -> Result<(), UsbError> {
        let mut r = command::ResetEndpoint::new();
        r.set_slot_id(slot).set_endpoint_id(dci);
        match self.command(r.into_raw())? {
            // 19: Context State Error — the endpoint was not halted (already recovered).
            (1, _) | (19, _) => {}
            (c, _) => return Err(code_error(c)),
        }
        self.set_dequeue(slot, dci)
    }

    fn set_dequeue(&mut self, slot: u8, dci: u8) -> Result<(), UsbError> {
        let (ptr, cycle) = {
            let s = self.slot(DeviceId(slot))?;
            let ring = s.rings[usize::from(dci)]
                .as_ref()
                .ok_or(UsbError::NoDevice)?;
            (ring.enqueue_ptr(), ring.cycle())
        };
        let mut d = command::SetTrDequeuePointer::new();
        d.set_slot_id(slot)
            .set_endpoint_id(dci)
            .set_new_tr_dequeue_pointer(ptr);
        if cycle {
            d.set_dequeue_cycle_state();
        }
        match self.command(d.into_raw())? {
            (1, _) => Ok(()),
            (c, _) => Err(code_error(c)),
        }
    }

    /// Stops an endpoint whose transfer timed out and skips the unfinished TD.
    fn abort(&mut self, slot: u8, dci: u8) {
        self.stats.timeouts += 1;
        let mut s = command::StopEndpoint::new();
        s.set_slot_id(slot).set_endpoint_id(dci);
        let _ = self.command(s.into_raw());
        let _ = self.set_dequeue(slot, dci);
    }

    /// Queues `trbs` on the ring of `slot`/`dci`, rings, waits; returns the completion
    /// event (None: timed out, the endpoint was stopped).
    fn run_td(
        &mut self,
        slot: u8,
        dci: u8,
        trbs: &[[u32; 4]],
        control: bool,
        timeout_ns: u64,
    ) -> Result<([u32; 4], usize), UsbError> {
        self.check_alive()?;
        if self.slot_port_gone(slot) {
            return Err(UsbError::NoDevice);
        }
        let addrs: Vec<PhysAddr> = {
            let s = self.slot(DeviceId(slot))?;
            let ring = s.rings[usize::from(dci)]
                .as_mut()
                .ok_or(UsbError::NoDevice)?;
            trbs.iter().map(|t| ring.push(*t)).collect()
        };
        self.stats.transfers += 1;
        self.pending_short = None;
        self.ring_doorbell(slot, dci);
        let want = Wait::Transfer {
            slot,
            dci,
            trbs: addrs.clone(),
            control,
        };
        let deadline = self.hal.now_ns() + timeout_ns;
        match self.wait(&want, deadline) {
            Some(ev) => {
                let ptr = u64::from(ev[0]) | (u64::from(ev[1]) << 32);
                let idx = addrs
                    .iter()
                    .position(|a| *a == ptr)
                    .unwrap_or(addrs.len() - 1);
                Ok((ev, idx))
            }
            None => {
                self.check_alive()?;
                if self.slot_port_gone(slot) {
                    // Pulled out mid-transfer: stop the endpoint and skip the TD (the ring
                    // stays consistent until the slot is released).
                    self.stats.unplugged += 1;
                    let mut s = command::StopEndpoint::new();
                    s.set_slot_id(slot).set_endpoint_id(dci);
                    let _ = self.command(s.into_raw());
                    let _ = self.set_dequeue(slot, dci);
                    return Err(UsbError::NoDevice);
                }
                self.abort(slot, dci);
                Err(UsbError::Timeout)
            }
        }
    }

    /// Completion code handling shared by control and bulk transfers.
    fn finish(&mut self, slot: u8, dci: u8, ev: [u32; 4]) -> Result<u32, UsbError> {
        let code = (ev[2] >> 24) as u8;
        let residue = ev[2] & 0xff_ffff;
        match code {
            1 | 13 => Ok(residue),
            3 | 4 | 6 => {
                if code == 6 {
                    self.stats.stalls += 1;
                } else {
                    self.stats.errors += 1;
                }
                self.recover_halted(slot, dci)?;
                Err(code_error(code))
            }
            c => {
                self.stats.errors += 1;
                Err(code_error(c))
            }
        }
    }

    fn bulk(&mut self, dev: DeviceId, ep: u8, len: usize, dir_in: bool) -> Result<usize, UsbError> {
        if len > XFER_BUF {
            return Err(UsbError::TooLarge);
        }
        let d = dci(ep);
        let mps = {
            let s = self.slot(dev)?;
            if s.rings[usize::from(d)].is_none() {
                return Err(UsbError::NoDevice);
            }
            s.mps[usize::from(d)]
        };
        let trbs = normal_trbs(self.xfer.phys(), len, dir_in, mps);
        let (ev, idx) = self.run_td(dev.0, d, &trbs, false, BULK_TIMEOUT_NS)?;
        let residue = self.finish(dev.0, d, ev)? as usize;
        // Bytes moved: every TRB before the one the event names, and that one's part.
        let before: usize = trbs[..idx].iter().map(|t| (t[2] & 0x1_ffff) as usize).sum();
        let this = (trbs[idx][2] & 0x1_ffff) as usize;
        let moved = (before + this.saturating_sub(residue)).min(len);
        self.stats.bytes += moved as u64;
        Ok(moved)
    }
}

impl<H: Hal, M: Mmio> Xhci<H, M> {
    /// Enable Slot + Address Device for a device on root port `port` at `topo`.
    fn address_device(
        &mut self,
        port: u8,
        psi: u8,
        speed: Speed,
        topo: Topo,
    ) -> Result<DeviceId, UsbError> {
        let id = self.command_ok(command::EnableSlot::new().into_raw())?;
        if id == 0 || id > self.max_slots {
            return Err(UsbError::Controller(0));
        }
        let mk = |hal: &H| -> Result<_, UsbError> {
            Ok((
                hal.dma_alloc(4096).map_err(|_| UsbError::NoResources)?,
                hal.dma_alloc(4096).map_err(|_| UsbError::NoResources)?,
                Ring::new(hal).map_err(|_| UsbError::NoResources)?,
            ))
        };
        let (out_ctx, in_ctx, ring0) = match mk(&self.hal) {
            Ok(x) => x,
            Err(e) => {
                self.disable_slot(id);
                return Err(e);
            }
        };
        let ring_pa = ring0.phys();
        let mps0 = speed.default_ep0_max_packet();
        self.dcbaa.write_u64(8 * usize::from(id), out_ctx.phys());
        let mut rings: [Option<Ring<H::Dma>>; 32] = Default::default();
        rings[1] = Some(ring0);
        let mut mps = [0u16; 32];
        mps[1] = mps0;
        self.slots[usize::from(id)] = Some(Slot {
            port,
            speed,
            psi,
            topo,
            out_ctx,
            in_ctx,
            rings,
            mps,
        });
        let mut input = self.new_input();
        input.control_mut().set_add_context_flag(0);
        input.control_mut().set_add_context_flag(1);
        self.fill_slot(&mut *input, port, psi, 1, topo);
        self.fill_ep0(&mut *input, ring_pa, mps0);
        let r = self.write_input(id, &*input).and_then(|pa| {
            let mut a = command::AddressDevice::new();
            a.set_slot_id(id).set_input_context_pointer(pa);
            self.command_ok(a.into_raw())
        });
        if let Err(e) = r {
            self.release_device(DeviceId(id));
            return Err(e);
        }
        // SET_ADDRESS recovery interval (USB 2 §9.2.6.3).
        self.hal.delay_us(2_000);
        Ok(DeviceId(id))
    }
}

impl<H: Hal, M: Mmio> HostController for Xhci<H, M> {
    fn ports(&self) -> u8 {
        self.ports
    }

    fn port_status(&mut self, port: u8) -> PortStatus {
        if port == 0 || port > self.ports {
            return PortStatus::default();
        }
        let off = self.portsc(port);
        let sc = self.mmio.read32(off);
        if sc == u32::MAX {
            self.dead = true;
            return PortStatus::default();
        }
        let changes = sc & PORTSC_CHANGES;
        if changes != 0 {
            self.mmio.write32(off, (sc & PORTSC_KEEP) | changes);
        }
        PortStatus {
            connected: sc & PORTSC_CCS != 0,
            enabled: sc & PORTSC_PED != 0,
            changed: changes != 0,
        }
    }

    fn enable_port(&mut self, port: u8) -> Result<Speed, UsbError> {
        if port == 0 || port > self.ports {
            return Err(UsbError::NoDevice);
        }
        let off = self.portsc(port);
        let m = &self.mmio;
        if m.read32(off) & PORTSC_CCS == 0 {
            return Err(UsbError::NoDevice);
        }
        if self.is_usb3(port) {
            // USB 3: link training enables the port by itself; wait for it.
            if !poll_until(&self.hal, 1_000_000, 1000, || {
                m.read32(off) & PORTSC_PED != 0
            }) {
                // Still not enabled: a warm reset.
                let sc = m.read32(off);
                m.write32(off, (sc & PORTSC_KEEP) | PORTSC_WPR);
            }
        } else {
            let sc = m.read32(off);
            m.write32(off, (sc & PORTSC_KEEP) | PORTSC_PR);
        }
        let ok = poll_until(&self.hal, 1_000_000, 1000, || {
            let sc = m.read32(off);
            sc & PORTSC_PR == 0 && sc & PORTSC_PED != 0 || sc & PORTSC_CCS == 0
        });
        let sc = m.read32(off);
        m.write32(off, (sc & PORTSC_KEEP) | (sc & PORTSC_CHANGES));
        if sc & PORTSC_CCS == 0 {
            return Err(UsbError::NoDevice);
        }
        if !ok || sc & PORTSC_PED == 0 {
            return Err(UsbError::Timeout);
        }
        // USB 2 §7.1.7.5: 10 ms reset recovery before the first request.
        self.hal.delay_us(10_000);
        speed_of((sc >> 10) & 0xf).ok_or(UsbError::Controller(0))
    }

    fn disable_port(&mut self, port: u8) {
        if port == 0 || port > self.ports {
            return;
        }
        let off = self.portsc(port);
        let sc = self.mmio.read32(off);
        // PED is write-1-to-disable (USB 2 ports; USB 3 ports ignore it).
        self.mmio.write32(off, (sc & PORTSC_KEEP) | PORTSC_PED);
    }

    fn new_device(&mut self, port: u8, speed: Speed) -> Result<DeviceId, UsbError> {
        let psi = (self.mmio.read32(self.portsc(port)) >> 10 & 0xf) as u8;
        self.address_device(port, psi, speed, Topo::default())
    }

    fn new_device_behind_hub(
        &mut self,
        hub: DeviceId,
        hub_port: u8,
        speed: Speed,
    ) -> Result<DeviceId, UsbError> {
        if hub_port == 0 || hub_port > 15 {
            return Err(UsbError::NoDevice);
        }
        let (port, hub_speed, hub_topo) = {
            let h = self.slot(hub)?;
            (h.port, h.speed, h.topo)
        };
        // The route string has five tiers of 4 bits.
        let depth = (0..5)
            .take_while(|i| (hub_topo.route >> (4 * i)) & 0xf != 0)
            .count() as u32;
        if depth >= 5 {
            return Err(UsbError::Unsupported);
        }
        let mut t = Topo {
            route: hub_topo.route | (u32::from(hub_port) << (4 * depth)),
            ..Topo::default()
        };
        if hub_speed == Speed::High && matches!(speed, Speed::Full | Speed::Low) {
            t.tt_slot = hub.0;
            t.tt_port = hub_port;
        } else if hub_topo.tt_slot != 0 {
            t.tt_slot = hub_topo.tt_slot;
            t.tt_port = hub_topo.tt_port;
        }
        // Protocol speed IDs of the default USB 2/3 mapping (xHCI §7.2.2.1.1).
        let psi = match speed {
            Speed::Full => 1,
            Speed::Low => 2,
            Speed::High => 3,
            Speed::Super => 4,
            Speed::SuperPlus => 5,
        };
        self.address_device(port, psi, speed, t)
    }

    fn release_device(&mut self, dev: DeviceId) {
        if self.slot(dev).is_ok() {
            self.disable_slot(dev.0);
        }
    }

    fn set_ep0_max_packet(&mut self, dev: DeviceId, mps: u16) -> Result<(), UsbError> {
        let (port, psi, ring, topo) = {
            let s = self.slot(dev)?;
            s.mps[1] = mps;
            (
                s.port,
                s.psi,
                s.rings[1].as_ref().map(|r| r.phys()).unwrap_or(0),
                s.topo,
            )
        };
        let mut input = self.new_input();
        input.control_mut().set_add_context_flag(1);
        self.fill_slot(&mut *input, port, psi, 1, topo);
        self.fill_ep0(&mut *input, ring, mps);
        let pa = self.write_input(dev.0, &*input)?;
        let mut e = command::EvaluateContext::new();
        e.set_slot_id(dev.0).set_input_context_pointer(pa);
        self.command_ok(e.into_raw()).map(drop)
    }

    fn control(&mut self, dev: DeviceId, s: Setup, data: &mut [u8]) -> Result<usize, UsbError> {
        let len = usize::from(s.length).min(data.len());
        if len > CTRL_BUF {
            return Err(UsbError::TooLarge);
        }
        self.slot(dev)?;
        let dir_in = s.request_type & 0x80 != 0;
        let mut setup = transfer::SetupStage::new();
        setup
            .set_request_type(s.request_type)
            .set_request(s.request)
            .set_value(s.value)
            .set_index(s.index)
            .set_length(len as u16)
            .set_transfer_type(match (len, dir_in) {
                (0, _) => transfer::TransferType::No,
                (_, true) => transfer::TransferType::In,
                (_, false) => transfer::TransferType::Out,
            });
        let mut trbs = alloc::vec![setup.into_raw()];
        if len > 0 {
            if !dir_in {
                self.ctrl.write(0, &data[..len]);
            }
            let mut d = transfer::DataStage::new();
            d.set_data_buffer_pointer(self.ctrl.phys())
                .set_trb_transfer_length(len as u32)
                .set_direction(if dir_in {
                    transfer::Direction::In
                } else {
                    transfer::Direction::Out
                });
            if dir_in {
                d.set_interrupt_on_short_packet();
            }
            trbs.push(d.into_raw());
        }
        let mut st = transfer::StatusStage::new();
        if len == 0 || !dir_in {
            st.set_direction();
        }
        st.set_interrupt_on_completion();
        trbs.push(st.into_raw());
        let (ev, _) = self.run_td(dev.0, 1, &trbs, true, COMMAND_TIMEOUT_NS)?;
        self.finish(dev.0, 1, ev)?;
        let got = match self.pending_short.take() {
            Some(short) => len.saturating_sub((short[2] & 0xff_ffff) as usize),
            None => len,
        };
        if dir_in && got > 0 {
            self.ctrl.read(0, &mut data[..got]);
        }
        Ok(got)
    }

    fn configure_endpoints(
        &mut self,
        dev: DeviceId,
        eps: &[EndpointDescriptor],
    ) -> Result<(), UsbError> {
        let (port, psi, speed, topo, entries) = {
            let s = self.slot(dev)?;
            let entries = (1..32).rev().find(|d| s.rings[*d].is_some()).unwrap_or(1) as u8;
            (s.port, s.psi, s.speed, s.topo, entries)
        };
        let mut input = self.new_input();
        input.control_mut().set_add_context_flag(0);
        let mut max_dci = entries;
        let mut new_rings = Vec::new();
        for e in eps {
            let ty = match (e.transfer_type(), e.is_in()) {
                (EpType::Bulk, true) => EndpointType::BulkIn,
                (EpType::Bulk, false) => EndpointType::BulkOut,
                (EpType::Interrupt, true) => EndpointType::InterruptIn,
                (EpType::Interrupt, false) => EndpointType::InterruptOut,
                _ => continue,
            };
            let d = dci(e.address);
            let ring = Ring::new(&self.hal).map_err(|_| UsbError::NoResources)?;
            input.control_mut().set_add_context_flag(usize::from(d));
            let c = input.device_mut().endpoint_mut(usize::from(d));
            c.set_endpoint_type(ty);
            c.set_max_packet_size(e.packet_size());
            c.set_max_burst_size(e.max_burst);
            c.set_error_count(3);
            c.set_tr_dequeue_pointer(ring.phys());
            c.set_dequeue_cycle_state();
            if e.transfer_type() == EpType::Interrupt {
                // Interval as 2^n × 125 µs.
                let iv = match speed {
                    Speed::High | Speed::Super | Speed::SuperPlus => e.interval.clamp(1, 16) - 1,
                    _ => (u32::from(e.interval.max(1)) * 8).ilog2() as u8,
                };
                c.set_interval(iv);
                c.set_average_trb_length(e.packet_size());
            } else {
                c.set_average_trb_length(3072);
            }
            max_dci = max_dci.max(d);
            new_rings.push((d, ring, e.packet_size()));
        }
        self.fill_slot(&mut *input, port, psi, max_dci, topo);
        let pa = self.write_input(dev.0, &*input)?;
        let mut c = command::ConfigureEndpoint::new();
        c.set_slot_id(dev.0).set_input_context_pointer(pa);
        self.command_ok(c.into_raw())?;
        let s = self.slot(dev)?;
        for (d, ring, mps) in new_rings {
            s.rings[usize::from(d)] = Some(ring);
            s.mps[usize::from(d)] = mps;
        }
        Ok(())
    }

    fn bulk_in(&mut self, dev: DeviceId, ep: u8, buf: &mut [u8]) -> Result<usize, UsbError> {
        let n = self.bulk(dev, ep | 0x80, buf.len(), true)?;
        self.xfer.read(0, &mut buf[..n]);
        Ok(n)
    }

    fn bulk_out(&mut self, dev: DeviceId, ep: u8, data: &[u8]) -> Result<usize, UsbError> {
        if data.len() > XFER_BUF {
            return Err(UsbError::TooLarge);
        }
        self.xfer.write(0, data);
        self.bulk(dev, ep & 0x7f, data.len(), false)
    }

    fn reset_endpoint(&mut self, dev: DeviceId, ep: u8) -> Result<(), UsbError> {
        let d = dci(ep);
        if self.slot(dev)?.rings[usize::from(d)].is_none() {
            return Err(UsbError::NoDevice);
        }
        // Halted endpoints were recovered when the error was seen; Reset Endpoint on a
        // running one is a Context State Error, which `recover_halted` accepts.
        self.recover_halted(dev.0, d)
    }

    fn max_transfer(&self) -> usize {
        XFER_BUF
    }

    fn set_hub(&mut self, dev: DeviceId, ports: u8) -> Result<(), UsbError> {
        self.slot(dev)?.topo.hub_ports = ports;
        // A Configure Endpoint that adds no endpoint: the slot context (Hub, Number of
        // Ports) is all it changes.
        self.configure_endpoints(dev, &[])
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
            poll_until(hal, 1_000_000, 1000, || {
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
