//! Commands and transfers: waiting for events with a deadline, the command ring, input
//! contexts, recovery of halted endpoints, transfer descriptors and bulk transfers, and
//! Enable Slot + Address Device.

use super::*;

impl<H: Hal, M: Mmio> Xhci<H, M> {
    /// Checks the controller is still alive (USBSTS.HSE/HCE, a window reading all ones).
    pub(crate) fn check_alive(&mut self) -> Result<(), UsbError> {
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
    pub(crate) fn slot_port_gone(&mut self, slot: u8) -> bool {
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
    pub(crate) fn wait(&mut self, want: &Wait, deadline: u64) -> Option<[u32; 4]> {
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
    pub(crate) fn command(&mut self, trb: [u32; 4]) -> Result<(u8, u8), UsbError> {
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

    pub(crate) fn command_ok(&mut self, trb: [u32; 4]) -> Result<u8, UsbError> {
        match self.command(trb)? {
            (1, slot) => Ok(slot),
            (code, _) => {
                self.stats.errors += 1;
                Err(code_error(code))
            }
        }
    }

    pub(crate) fn slot(&mut self, dev: DeviceId) -> Result<&mut Slot<H::Dma>, UsbError> {
        self.slots
            .get_mut(usize::from(dev.0))
            .and_then(|s| s.as_mut())
            .ok_or(UsbError::NoDevice)
    }

    /// Writes an input context (control + slot + 31 endpoint contexts) for slot `id`.
    pub(crate) fn write_input(
        &mut self,
        id: u8,
        input: &dyn InputHandler,
    ) -> Result<PhysAddr, UsbError> {
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

    pub(crate) fn new_input(&self) -> Box<dyn InputHandler> {
        if self.csz64 {
            Box::new(xhci::context::Input::new_64byte())
        } else {
            Box::new(xhci::context::Input::new_32byte())
        }
    }

    /// Fills the slot context of `input` (root port, speed, context entries).
    pub(crate) fn fill_slot(
        &self,
        input: &mut dyn InputHandler,
        port: u8,
        psi: u8,
        entries: u8,
        t: Topo,
    ) {
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

    pub(crate) fn fill_ep0(&self, input: &mut dyn InputHandler, ring: PhysAddr, mps: u16) {
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
    pub(crate) fn recover_halted(&mut self, slot: u8, dci: u8) -> Result<(), UsbError> {
        let mut r = command::ResetEndpoint::new();
        r.set_slot_id(slot).set_endpoint_id(dci);
        match self.command(r.into_raw())? {
            // 19: Context State Error — the endpoint was not halted (already recovered).
            (1, _) | (19, _) => {}
            (c, _) => return Err(code_error(c)),
        }
        self.set_dequeue(slot, dci)
    }

    pub(crate) fn set_dequeue(&mut self, slot: u8, dci: u8) -> Result<(), UsbError> {
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
    pub(crate) fn abort(&mut self, slot: u8, dci: u8) {
        self.stats.timeouts += 1;
        let mut s = command::StopEndpoint::new();
        s.set_slot_id(slot).set_endpoint_id(dci);
        let _ = self.command(s.into_raw());
        let _ = self.set_dequeue(slot, dci);
    }

    /// Queues `trbs` on the ring of `slot`/`dci`, rings, waits; returns the completion
    /// event (None: timed out, the endpoint was stopped).
    pub(crate) fn run_td(
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
    pub(crate) fn finish(&mut self, slot: u8, dci: u8, ev: [u32; 4]) -> Result<u32, UsbError> {
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

    pub(crate) fn bulk(
        &mut self,
        dev: DeviceId,
        ep: u8,
        len: usize,
        dir_in: bool,
    ) -> Result<usize, UsbError> {
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
    pub(crate) fn address_device(
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
