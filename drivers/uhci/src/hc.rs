//! [`adros_usb::HostController`] for the UHCI driver: root ports, devices, endpoint 0,
//! configuration and bulk endpoints, on the queue machinery of `lib.rs`.

use super::*;

impl<H: Hal, M: Mmio> HostController for Uhci<H, M> {
    fn ports(&self) -> u8 {
        self.ports
    }

    fn port_status(&mut self, port: u8) -> PortStatus {
        if port == 0 || port > self.ports {
            return PortStatus::default();
        }
        let off = portsc(port);
        let sc = self.io.read16(off);
        if sc == u16::MAX {
            self.dead = true;
            return PortStatus::default();
        }
        let ch = sc & PORT_CHANGES;
        if ch != 0 {
            self.io.write16(off, (sc & PORT_PE) | ch);
        }
        PortStatus {
            connected: sc & PORT_CCS != 0,
            enabled: sc & PORT_PE != 0,
            changed: ch != 0,
        }
    }

    fn enable_port(&mut self, port: u8) -> Result<Speed, UsbError> {
        if port == 0 || port > self.ports {
            return Err(UsbError::NoDevice);
        }
        let off = portsc(port);
        if self.io.read16(off) & PORT_CCS == 0 {
            return Err(UsbError::NoDevice);
        }
        self.stats.port_resets += 1;
        self.io.write16(off, PORT_PR);
        self.hal.delay_us(50_000);
        self.io.write16(off, 0);
        self.hal.delay_us(100);
        // UHCI ports are enabled by software after the reset (as Linux's uhci-hub: up to
        // ten tries, acknowledging the changes the reset latched).
        let mut enabled = false;
        for _ in 0..10 {
            self.hal.delay_us(10_000);
            let sc = self.io.read16(off);
            if sc & PORT_CCS == 0 {
                break;
            }
            if sc & PORT_CHANGES != 0 {
                self.io.write16(off, (sc & PORT_PE) | (sc & PORT_CHANGES));
                continue;
            }
            if sc & PORT_PE != 0 {
                enabled = true;
                break;
            }
            self.io.write16(off, PORT_PE);
        }
        let sc = self.io.read16(off);
        if sc & PORT_CCS == 0 {
            return Err(UsbError::NoDevice);
        }
        if !enabled {
            return Err(UsbError::Timeout);
        }
        // Reset recovery (USB 2.0 §7.1.7.5: 10 ms).
        self.hal.delay_us(10_000);
        Ok(if sc & PORT_LSDA != 0 {
            Speed::Low
        } else {
            Speed::Full
        })
    }

    fn disable_port(&mut self, port: u8) {
        if port == 0 || port > self.ports {
            return;
        }
        self.io.write16(portsc(port), 0);
    }

    fn new_device(&mut self, port: u8, speed: Speed) -> Result<DeviceId, UsbError> {
        let low_speed = match speed {
            Speed::Low => true,
            Speed::Full => false,
            _ => return Err(UsbError::Unsupported),
        };
        let mut address = 0;
        for _ in 1..128 {
            let a = self.next_address;
            self.next_address = if a >= 127 { 1 } else { a + 1 };
            if self.devices[usize::from(a)].is_none() {
                address = a;
                break;
            }
        }
        if address == 0 {
            return Err(UsbError::NoResources);
        }
        // The device answers at address 0 until SET_ADDRESS (id = the address it gets).
        self.devices[usize::from(address)] = Some(Device {
            address: 0,
            port,
            low_speed,
            ep0_mps: speed.default_ep0_max_packet(),
            eps: Vec::new(),
        });
        let id = DeviceId(address);
        let r = self.control(
            id,
            Setup {
                request_type: req::OUT_STD_DEVICE,
                request: req::SET_ADDRESS,
                value: address.into(),
                index: 0,
                length: 0,
            },
            &mut [],
        );
        if let Err(e) = r {
            self.release_device(id);
            return Err(e);
        }
        // SET_ADDRESS recovery interval (USB 2.0 §9.2.6.3).
        self.hal.delay_us(2_000);
        if let Some(d) = self.devices[usize::from(address)].as_mut() {
            d.address = address;
        }
        Ok(id)
    }

    fn new_device_behind_hub(
        &mut self,
        hub: DeviceId,
        _hub_port: u8,
        speed: Speed,
    ) -> Result<DeviceId, UsbError> {
        // A full-speed hub repeats full- and low-speed traffic (low-speed TDs carry LS,
        // which makes the controller send the PRE preamble): nothing else to set up.
        let port = self.device(hub)?.port;
        self.new_device(port, speed)
    }

    fn release_device(&mut self, dev: DeviceId) {
        if let Some(d) = self.devices.get_mut(usize::from(dev.0)) {
            *d = None;
        }
    }

    fn set_ep0_max_packet(&mut self, dev: DeviceId, mps: u16) -> Result<(), UsbError> {
        if !(8..=64).contains(&mps) {
            return Err(UsbError::Unsupported);
        }
        match self
            .devices
            .get_mut(usize::from(dev.0))
            .and_then(|d| d.as_mut())
        {
            Some(d) => {
                d.ep0_mps = mps;
                Ok(())
            }
            None => Err(UsbError::NoDevice),
        }
    }

    fn control(&mut self, dev: DeviceId, s: Setup, data: &mut [u8]) -> Result<usize, UsbError> {
        let len = usize::from(s.length).min(data.len());
        if len > CTRL_BUF - 8 {
            return Err(UsbError::TooLarge);
        }
        let mps = usize::from(self.device(dev)?.ep0_mps.max(8));
        let dir_in = s.request_type & 0x80 != 0;
        let mut setup = [0u8; 8];
        setup[0] = s.request_type;
        setup[1] = s.request;
        setup[2..4].copy_from_slice(&s.value.to_le_bytes());
        setup[4..6].copy_from_slice(&s.index.to_le_bytes());
        setup[6..8].copy_from_slice(&(len as u16).to_le_bytes());
        // The SETUP packet at the end of the control buffer, the data stage at its start.
        self.ctrl.write(CTRL_BUF - 8, &setup);
        if !dir_in && len > 0 {
            self.ctrl.write(0, &data[..len]);
        }
        let base = self.ctrl.phys();
        let mut tds = alloc::vec![Td {
            pid: PID_SETUP,
            len: 8,
            toggle: false,
            buf: base + (CTRL_BUF - 8) as u64,
            data: false,
        }];
        let pid = if dir_in { PID_IN } else { PID_OUT };
        let mut toggle = true;
        let mut off = 0;
        while off < len {
            let n = mps.min(len - off);
            tds.push(Td {
                pid,
                len: n,
                toggle,
                buf: base + off as u64,
                data: true,
            });
            toggle = !toggle;
            off += n;
        }
        tds.push(Td {
            pid: if dir_in && len > 0 { PID_OUT } else { PID_IN },
            len: 0,
            toggle: true,
            buf: base,
            data: false,
        });
        let r = self.run(dev, 0, &tds, true, CONTROL_TIMEOUT_NS)?;
        let got = self.finish(r)?.min(len);
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
        let d = self
            .devices
            .get_mut(usize::from(dev.0))
            .and_then(|d| d.as_mut())
            .ok_or(UsbError::NoDevice)?;
        for e in eps {
            if !matches!(
                e.transfer_type(),
                TransferType::Bulk | TransferType::Interrupt
            ) {
                continue;
            }
            let mps = e.packet_size();
            // A TD moves at most 1023 bytes (full-speed isochronous); bulk is 8..=64.
            if mps == 0 || mps > 1023 {
                return Err(UsbError::Unsupported);
            }
            d.eps.retain(|x| x.address != e.address);
            d.eps.push(Endpoint {
                address: e.address,
                mps,
                toggle: false,
            });
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
        if ep & 0x7f == 0 {
            // EP0's toggles are fixed per stage.
            return self.device(dev).map(drop);
        }
        // The chain that stalled is off the schedule already (the QH's element pointer
        // rests on the stopped TD); the device restarts at DATA0 after the clear.
        self.endpoint(dev, ep)?.toggle = false;
        Ok(())
    }

    fn max_transfer(&self) -> usize {
        XFER_BUF
    }
}
