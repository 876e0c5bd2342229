//! [`adros_usb::HostController`] for the EHCI driver: root ports, devices, endpoint 0,
//! configuration and bulk endpoints, on the queue machinery of `lib.rs`.

use super::*;

impl<H: Hal, M: Mmio> HostController for Ehci<H, M> {
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
        let ch = sc & PORT_CHANGES;
        if ch != 0 {
            self.mmio
                .write32(off, (sc & !PORT_CHANGES & !PORT_PE) | ch | (sc & PORT_PE));
        }
        PortStatus {
            // A port handed to a companion is not ours.
            connected: sc & PORT_CCS != 0 && sc & PORT_OWNER == 0,
            enabled: sc & PORT_PE != 0,
            changed: ch != 0,
        }
    }

    fn enable_port(&mut self, port: u8) -> Result<Speed, UsbError> {
        if port == 0 || port > self.ports {
            return Err(UsbError::NoDevice);
        }
        let off = self.portsc(port);
        let m = &self.mmio;
        let sc = m.read32(off);
        if sc & PORT_CCS == 0 || sc & PORT_OWNER != 0 {
            return Err(UsbError::NoDevice);
        }
        if sc & PORT_LS_MASK == PORT_LS_K {
            // Low-speed: the companion's.
            m.write32(off, (sc & !PORT_CHANGES & !PORT_PE) | PORT_OWNER);
            self.stats.companion_handoffs += 1;
            return Err(UsbError::Unsupported);
        }
        m.write32(off, (sc & !PORT_CHANGES & !PORT_PE) | PORT_PR);
        self.hal.delay_us(50_000);
        let sc = m.read32(off);
        m.write32(off, sc & !PORT_CHANGES & !PORT_PE & !PORT_PR);
        let done = poll_until(&self.hal, HANDSHAKE_US, 100, || {
            m.read32(off) & PORT_PR == 0
        });
        let sc = m.read32(off);
        if !done {
            return Err(UsbError::Timeout);
        }
        if sc & PORT_CCS == 0 {
            return Err(UsbError::NoDevice);
        }
        if sc & PORT_PE == 0 {
            // Full-speed: the companion's.
            m.write32(off, (sc & !PORT_CHANGES & !PORT_PE) | PORT_OWNER);
            self.stats.companion_handoffs += 1;
            return Err(UsbError::Unsupported);
        }
        self.hal.delay_us(10_000);
        Ok(Speed::High)
    }

    fn disable_port(&mut self, port: u8) {
        if port == 0 || port > self.ports {
            return;
        }
        let off = self.portsc(port);
        let sc = self.mmio.read32(off);
        self.mmio.write32(off, sc & !PORT_CHANGES & !PORT_PE);
    }

    fn new_device(&mut self, port: u8, speed: Speed) -> Result<DeviceId, UsbError> {
        if speed != Speed::High {
            return Err(UsbError::Unsupported);
        }
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
        let q = self.new_qh(0, 0, 64, true)?;
        // Temporarily the device at address 0 (id = the address it is about to get).
        self.devices[usize::from(address)] = Some(Device {
            address: 0,
            port,
            ep0: q,
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
        self.hal.delay_us(2_000);
        let o = q * QH_SIZE;
        let c = self.qh.read_u32(o + 4) & !0x7f;
        self.qh.write_u32(o + 4, c | u32::from(address));
        if let Some(d) = self.devices[usize::from(address)].as_mut() {
            d.address = address;
        }
        Ok(id)
    }

    fn release_device(&mut self, dev: DeviceId) {
        let Some(d) = self
            .devices
            .get_mut(usize::from(dev.0))
            .and_then(|d| d.take())
        else {
            return;
        };
        self.free_qh(d.ep0);
        for (_, q) in d.eps {
            self.free_qh(q);
        }
    }

    fn set_ep0_max_packet(&mut self, dev: DeviceId, mps: u16) -> Result<(), UsbError> {
        let q = self.device(dev)?.ep0;
        let o = q * QH_SIZE;
        let c = self.qh.read_u32(o + 4) & !(0x7ff << 16);
        self.qh.write_u32(o + 4, c | (u32::from(mps) << 16));
        Ok(())
    }

    fn control(&mut self, dev: DeviceId, s: Setup, data: &mut [u8]) -> Result<usize, UsbError> {
        let len = usize::from(s.length).min(data.len());
        if len > CTRL_BUF - 8 {
            return Err(UsbError::TooLarge);
        }
        let q = self.device(dev)?.ep0;
        self.cur_port = self.device(dev)?.port;
        let dir_in = s.request_type & 0x80 != 0;
        let mut setup = [0u8; 8];
        setup[0] = s.request_type;
        setup[1] = s.request;
        setup[2..4].copy_from_slice(&s.value.to_le_bytes());
        setup[4..6].copy_from_slice(&s.index.to_le_bytes());
        setup[6..8].copy_from_slice(&(len as u16).to_le_bytes());
        // Setup packet at the end of the control buffer, data at its start.
        self.ctrl.write(CTRL_BUF - 8, &setup);
        if !dir_in && len > 0 {
            self.ctrl.write(0, &data[..len]);
        }
        let base = self.ctrl.phys();
        let mut tds = alloc::vec![(
            token(8, PID_SETUP, false, false),
            base + (CTRL_BUF - 8) as u64
        )];
        if len > 0 {
            let pid = if dir_in { PID_IN } else { PID_OUT };
            tds.push((token(len, pid, true, false), base));
        }
        let st_pid = if dir_in && len > 0 { PID_OUT } else { PID_IN };
        tds.push((token(0, st_pid, true, true), base));
        let r = self.run(q, &tds, false, CONTROL_TIMEOUT_NS)?;
        let n = self.finish(r)?;
        let got = n.saturating_sub(8).min(len);
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
        let address = self.device(dev)?.address;
        let mut new = Vec::new();
        for e in eps {
            if e.transfer_type() != TransferType::Bulk {
                continue; // no periodic schedule
            }
            let q = self.new_qh(address, e.number(), e.packet_size(), false)?;
            new.push((e.address, q));
        }
        if let Some(d) = self.devices[usize::from(dev.0)].as_mut() {
            d.eps.extend(new);
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
        // Clear the QH's halt and its data toggle (the device's toggle restarts at DATA0
        // after CLEAR_FEATURE(ENDPOINT_HALT)); the QH is idle (halted or done).
        let q = self.ep_qh(dev, ep)?;
        let o = q * QH_SIZE;
        if self.qh.read_u32(o + 24) & TOK_HALTED == 0 {
            // Not halted: the QH may be live; its toggle is reset by taking it off the
            // schedule first.
            self.unlink_qh(q);
            self.park(q, &[], false);
            self.qh.write_u32(o + 24, 0);
            let head_next = self.qh.read_u32(0);
            self.qh.write_u32(o, head_next);
            dma_wmb();
            self.qh.write_u32(0, self.qh_phys(q) as u32 | TYP_QH);
            return Ok(());
        }
        self.qh.write_u32(o + 12, 0);
        self.qh.write_u32(o + 16, self.qtd_phys(self.qh_dummy[q]));
        self.qh.write_u32(o + 20, T);
        dma_wmb();
        self.qh.write_u32(o + 24, 0);
        Ok(())
    }

    fn max_transfer(&self) -> usize {
        XFER_BUF
    }
}
