//! [`adros_usb::HostController`] for [`Xhci`]: root ports, devices (on root ports and
//! behind hubs), endpoint 0, configuration and bulk endpoints.

use super::*;

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
            if !poll_until(&self.hal, HANDSHAKE_US, 1000, || {
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
        let ok = poll_until(&self.hal, HANDSHAKE_US, 1000, || {
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
