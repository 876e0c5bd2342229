//! Host tests of the hub class driver against a fake controller carrying a 4-port hub on
//! root port 1 (device 1) and, when connected, a device on one of its ports (device 2).

extern crate std;

use alloc::vec;
use alloc::vec::Vec;

use crate::desc::{DescError, EndpointDescriptor};
use crate::hub::{self, HubDescriptor, HubError, PortState};
use crate::{DeviceId, HostController, PortStatus, Setup, Speed, UsbError};

fn hub_desc(ports: u8) -> Vec<u8> {
    // bLength, type, ports, characteristics (2), PwrOn2PwrGood (×2 ms), current, removable, power mask
    vec![9, 0x29, ports, 0x09, 0x00, 50, 0, 0, 0xff]
}

struct FakeHub {
    hub_desc: Vec<u8>,
    /// wPortStatus / wPortChange by hub port (index 1..=4).
    ports: [PortState; 5],
    /// A device on this hub port (full-speed unless `high`).
    child_port: u8,
    high: bool,
    /// The port's reset never finishes.
    stuck_reset: bool,
    /// GET_STATUS reads since the reset was asked for.
    reset_reads: u32,
    set_hub: Option<(DeviceId, u8)>,
    behind: Vec<(DeviceId, u8, Speed)>,
    requests: Vec<(u8, u8, u16, u16)>,
    configured: Vec<DeviceId>,
    released: Vec<DeviceId>,
}

impl FakeHub {
    fn new(child_port: u8) -> Self {
        Self {
            hub_desc: hub_desc(4),
            ports: [PortState::default(); 5],
            child_port,
            high: false,
            stuck_reset: false,
            reset_reads: 0,
            set_hub: None,
            behind: Vec::new(),
            requests: Vec::new(),
            configured: Vec::new(),
            released: Vec::new(),
        }
    }
}

fn device_desc(class: u8) -> Vec<u8> {
    vec![
        18, 1, 0x00, 0x02, class, 0, 0, 64, 0x09, 0x04, 0x01, 0x00, 0, 0, 0, 0, 0, 1,
    ]
}

fn config_desc(hub: bool) -> Vec<u8> {
    let mut c = vec![9, 2, 0, 0, 1, 1, 0, 0xe0, 0];
    if hub {
        c.extend_from_slice(&[9, 4, 0, 0, 1, 9, 0, 0, 0]);
        c.extend_from_slice(&[7, 5, 0x81, 3, 0x01, 0x00, 0xff]);
    } else {
        c.extend_from_slice(&[9, 4, 0, 0, 0, 0xff, 0, 0, 0]);
    }
    let n = c.len() as u16;
    c[2..4].copy_from_slice(&n.to_le_bytes());
    c
}

impl HostController for FakeHub {
    fn ports(&self) -> u8 {
        1
    }
    fn port_status(&mut self, _port: u8) -> PortStatus {
        PortStatus {
            connected: true,
            enabled: true,
            changed: false,
        }
    }
    fn enable_port(&mut self, _port: u8) -> Result<Speed, UsbError> {
        Ok(Speed::Full)
    }
    fn disable_port(&mut self, _port: u8) {}
    fn new_device(&mut self, _port: u8, _speed: Speed) -> Result<DeviceId, UsbError> {
        Ok(DeviceId(1))
    }
    fn release_device(&mut self, dev: DeviceId) {
        self.released.push(dev);
    }
    fn set_ep0_max_packet(&mut self, _dev: DeviceId, _mps: u16) -> Result<(), UsbError> {
        Ok(())
    }
    fn control(&mut self, dev: DeviceId, s: Setup, data: &mut [u8]) -> Result<usize, UsbError> {
        let reply = |data: &mut [u8], src: &[u8]| {
            let n = src.len().min(data.len());
            data[..n].copy_from_slice(&src[..n]);
            Ok(n)
        };
        if !(s.request_type == 0x80 && s.request == 6) {
            self.requests
                .push((s.request_type, s.request, s.value, s.index));
        }
        let port = usize::from(s.index as u8);
        match (s.request_type, s.request) {
            (0x80, 6) => match (s.value >> 8) as u8 {
                1 => reply(data, &device_desc(if dev.0 == 1 { 9 } else { 0 })),
                2 => reply(data, &config_desc(dev.0 == 1)),
                _ => Err(UsbError::Stall),
            },
            (0x00, 9) => {
                self.configured.push(dev);
                Ok(0)
            }
            (0xa0, 6) if dev.0 == 1 => {
                let d = self.hub_desc.clone();
                reply(data, &d)
            }
            (0x23, 3) if (1..=4).contains(&port) => {
                let p = &mut self.ports[port];
                match s.value {
                    hub::feature::PORT_POWER => {
                        p.status |= 1 << 8;
                        if port == usize::from(self.child_port) {
                            p.status |= 1;
                            p.change |= 1;
                        }
                    }
                    hub::feature::PORT_RESET => {
                        p.status |= 1 << 4;
                        self.reset_reads = 0;
                    }
                    _ => return Err(UsbError::Stall),
                }
                Ok(0)
            }
            (0x23, 1) if (1..=4).contains(&port) => {
                let p = &mut self.ports[port];
                match s.value {
                    16..=20 => p.change &= !(1 << (s.value - 16)),
                    hub::feature::PORT_ENABLE => p.status &= !2,
                    _ => return Err(UsbError::Stall),
                }
                Ok(0)
            }
            (0xa3, 0) if (1..=4).contains(&port) => {
                let p = &mut self.ports[port];
                if p.status & (1 << 4) != 0 && !self.stuck_reset {
                    self.reset_reads += 1;
                    if self.reset_reads >= 2 {
                        p.status &= !(1 << 4);
                        p.status |= 2 | if self.high { 1 << 10 } else { 0 };
                        p.change |= 1 << 4;
                    }
                }
                let b = [
                    p.status as u8,
                    (p.status >> 8) as u8,
                    p.change as u8,
                    (p.change >> 8) as u8,
                ];
                reply(data, &b)
            }
            _ => Err(UsbError::Stall),
        }
    }
    fn configure_endpoints(
        &mut self,
        _dev: DeviceId,
        _eps: &[EndpointDescriptor],
    ) -> Result<(), UsbError> {
        Ok(())
    }
    fn bulk_in(&mut self, _dev: DeviceId, _ep: u8, _buf: &mut [u8]) -> Result<usize, UsbError> {
        Err(UsbError::Stall)
    }
    fn bulk_out(&mut self, _dev: DeviceId, _ep: u8, _data: &[u8]) -> Result<usize, UsbError> {
        Err(UsbError::Stall)
    }
    fn reset_endpoint(&mut self, _dev: DeviceId, _ep: u8) -> Result<(), UsbError> {
        Ok(())
    }
    fn max_transfer(&self) -> usize {
        4096
    }
    fn new_device_behind_hub(
        &mut self,
        hub: DeviceId,
        hub_port: u8,
        speed: Speed,
    ) -> Result<DeviceId, UsbError> {
        self.behind.push((hub, hub_port, speed));
        Ok(DeviceId(2))
    }
    fn set_hub(&mut self, dev: DeviceId, ports: u8) -> Result<(), UsbError> {
        self.set_hub = Some((dev, ports));
        Ok(())
    }
}

#[test]
fn hub_descriptors_parse_and_bad_ones_are_refused() {
    let d = HubDescriptor::parse(&hub_desc(4)).unwrap();
    assert_eq!((d.ports, d.power_on_ms, d.characteristics), (4, 100, 9));
    let e = |b: &[u8]| HubDescriptor::parse(b).unwrap_err();
    assert_eq!(
        e(&[9, 0x29, 4]),
        HubError::Descriptor(DescError::TooShort { need: 7, got: 3 })
    );
    assert_eq!(
        e(&[0, 0x29, 4, 0, 0, 0, 0]),
        HubError::Descriptor(DescError::ZeroLength { offset: 0 })
    );
    assert_eq!(
        e(&[12, 0x29, 4, 0, 0, 0, 0, 0]),
        HubError::Descriptor(DescError::PastEnd {
            offset: 0,
            len: 12,
            buf: 8
        })
    );
    assert_eq!(
        e(&[9, 0x2a, 4, 0, 0, 0, 0, 0, 0]),
        HubError::Descriptor(DescError::WrongType {
            expected: 0x29,
            got: 0x2a
        })
    );
    assert_eq!(
        e(&[5, 0x29, 4, 0, 0, 0, 0]),
        HubError::Descriptor(DescError::BadLength {
            offset: 0,
            ty: 0x29,
            len: 5
        })
    );
    assert_eq!(e(&hub_desc(0)), HubError::BadPortCount(0));
    assert_eq!(e(&hub_desc(255)), HubError::BadPortCount(255));
    assert_eq!(e(&hub_desc(16)), HubError::BadPortCount(16));
    assert!(HubDescriptor::parse(&hub_desc(15)).is_ok());
}

#[test]
fn port_status_bits() {
    let s = PortState::parse(&[0x03, 0x03, 0x01, 0x00]).unwrap();
    assert!(s.connected() && s.enabled() && s.powered() && s.speed() == Speed::Low);
    assert_eq!(s.change, 1);
    let s = PortState::parse(&[0x03, 0x05, 0, 0]).unwrap();
    assert_eq!(s.speed(), Speed::High);
    assert_eq!(
        PortState::parse(&[0x03, 0x01, 0, 0]).unwrap().speed(),
        Speed::Full
    );
    assert!(PortState::parse(&[1, 2, 3]).is_none());
}

#[test]
fn a_hub_is_powered_and_the_device_behind_it_enumerated() {
    let mut hc = FakeHub::new(3);
    let d = crate::enumerate(&mut hc, 1).unwrap();
    assert_eq!(d.descriptor.class, hub::CLASS_HUB);
    let mut slept = 0;
    let h = hub::init(&mut hc, &d, |ms| slept += ms).unwrap();
    assert_eq!(h.descriptor.ports, 4);
    assert_eq!(hc.set_hub, Some((DeviceId(1), 4)));
    assert!(slept >= 100, "waited {slept} ms for power good");
    for p in 1..=4 {
        assert!(hc.ports[p].powered(), "port {p} not powered");
    }
    // Port 3 shows the device (its connection change is acknowledged); port 1 is empty.
    let st = h.port_state(&mut hc, 3).unwrap();
    assert!(st.connected() && st.change & 1 != 0);
    assert_eq!(hc.ports[3].change, 0, "C_PORT_CONNECTION cleared");
    assert!(!h.port_state(&mut hc, 1).unwrap().connected());
    let child = h.enumerate(&mut hc, 3, |_| {}).unwrap();
    assert_eq!(child.id, DeviceId(2));
    assert_eq!(child.speed, Speed::Full);
    assert_eq!(hc.behind, [(DeviceId(1), 3, Speed::Full)]);
    assert!(hc.configured.contains(&DeviceId(2)));
    assert!(
        hc.requests
            .contains(&(0x23, 3, hub::feature::PORT_RESET, 3))
    );
    assert_eq!(hc.ports[3].change, 0, "C_PORT_RESET cleared");
    // An empty port is NoDevice, without a reset.
    assert_eq!(
        h.enumerate(&mut hc, 1, |_| {}).unwrap_err(),
        UsbError::NoDevice
    );
    assert!(
        !hc.requests
            .contains(&(0x23, 3, hub::feature::PORT_RESET, 1))
    );
}

#[test]
fn a_high_speed_device_behind_a_hub_keeps_its_speed() {
    let mut hc = FakeHub::new(2);
    hc.high = true;
    let d = crate::enumerate(&mut hc, 1).unwrap();
    let h = hub::init(&mut hc, &d, |_| {}).unwrap();
    let child = h.enumerate(&mut hc, 2, |_| {}).unwrap();
    assert_eq!(child.speed, Speed::High);
    assert_eq!(hc.behind, [(DeviceId(1), 2, Speed::High)]);
}

#[test]
fn a_hub_port_whose_reset_never_ends_times_out() {
    let mut hc = FakeHub::new(2);
    hc.stuck_reset = true;
    let d = crate::enumerate(&mut hc, 1).unwrap();
    let h = hub::init(&mut hc, &d, |_| {}).unwrap();
    let mut slept = 0;
    assert_eq!(
        h.enumerate(&mut hc, 2, |ms| slept += ms).unwrap_err(),
        UsbError::Timeout
    );
    assert!(
        hc.behind.is_empty(),
        "no slot for a device that never reset"
    );
    assert!((400..=1000).contains(&slept), "gave up after {slept} ms");
}

#[test]
fn a_hub_claiming_255_ports_is_refused() {
    let mut hc = FakeHub::new(2);
    hc.hub_desc = hub_desc(255);
    let d = crate::enumerate(&mut hc, 1).unwrap();
    assert!(hub::init(&mut hc, &d, |_| {}).is_err());
    assert_eq!(hc.set_hub, None);
    assert!(
        !hc.requests.iter().any(|r| r.1 == 3),
        "no port was powered: {:?}",
        hc.requests
    );
}
