//! The hub class (USB 2.0 §11.23–11.24): the hub descriptor, port power, port reset and
//! port status through class requests on EP0, and enumeration of the device behind a hub
//! port. Status changes are found by polling `GET_STATUS(port)` (the caller decides when);
//! the hub's status-change interrupt endpoint is not used.

use crate::desc::DescError;
use crate::enumerate::{Device, configure};
use crate::{DeviceId, HostController, Setup, Speed, UsbError};

/// bDescriptorType of the (USB 2) hub descriptor.
pub const DT_HUB: u8 = 0x29;
/// bDeviceClass of a hub.
pub const CLASS_HUB: u8 = 9;
/// The most downstream ports AdrOS drives on one hub: xHCI's route string has 4 bits per
/// tier, so ports 1..=15.
pub const MAX_PORTS: u8 = 15;

/// Hub class request codes and port features (USB 2.0 Tables 11-15, 11-17).
pub mod feature {
    pub const PORT_ENABLE: u16 = 1;
    pub const PORT_RESET: u16 = 4;
    pub const PORT_POWER: u16 = 8;
    pub const C_PORT_CONNECTION: u16 = 16;
    pub const C_PORT_ENABLE: u16 = 17;
    pub const C_PORT_SUSPEND: u16 = 18;
    pub const C_PORT_OVER_CURRENT: u16 = 19;
    pub const C_PORT_RESET: u16 = 20;
}

const GET_STATUS: u8 = 0;
const CLEAR_FEATURE: u8 = 1;
const SET_FEATURE: u8 = 3;
const GET_DESCRIPTOR: u8 = 6;
/// bmRequestType: class, device recipient (IN); class, other (port) recipient.
const IN_CLASS_DEVICE: u8 = 0xa0;
const IN_CLASS_OTHER: u8 = 0xa3;
const OUT_CLASS_OTHER: u8 = 0x23;

/// The hub descriptor's fields the driver uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HubDescriptor {
    pub ports: u8,
    pub characteristics: u16,
    /// bPwrOn2PwrGood in milliseconds (the descriptor counts 2 ms units).
    pub power_on_ms: u16,
}

/// Why a hub descriptor was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HubError {
    Descriptor(DescError),
    /// No downstream ports, or more than [`MAX_PORTS`] (a hub reporting 255 ports).
    BadPortCount(u8),
}

impl HubDescriptor {
    pub fn parse(b: &[u8]) -> Result<Self, HubError> {
        let d = HubError::Descriptor;
        if b.len() < 7 {
            return Err(d(DescError::TooShort {
                need: 7,
                got: b.len(),
            }));
        }
        let len = usize::from(b[0]);
        if len < 2 {
            return Err(d(DescError::ZeroLength { offset: 0 }));
        }
        if len > b.len() {
            return Err(d(DescError::PastEnd {
                offset: 0,
                len,
                buf: b.len(),
            }));
        }
        if b[1] != DT_HUB {
            return Err(d(DescError::WrongType {
                expected: DT_HUB,
                got: b[1],
            }));
        }
        if len < 7 {
            return Err(d(DescError::BadLength {
                offset: 0,
                ty: DT_HUB,
                len,
            }));
        }
        let ports = b[2];
        if ports == 0 || ports > MAX_PORTS {
            return Err(HubError::BadPortCount(ports));
        }
        Ok(Self {
            ports,
            characteristics: u16::from_le_bytes([b[3], b[4]]),
            power_on_ms: u16::from(b[5]) * 2,
        })
    }
}

/// A hub port's wPortStatus / wPortChange (USB 2.0 Tables 11-21, 11-22).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortState {
    pub status: u16,
    pub change: u16,
}

impl PortState {
    pub fn parse(b: &[u8]) -> Option<Self> {
        (b.len() >= 4).then(|| Self {
            status: u16::from_le_bytes([b[0], b[1]]),
            change: u16::from_le_bytes([b[2], b[3]]),
        })
    }
    pub fn connected(&self) -> bool {
        self.status & 1 != 0
    }
    pub fn enabled(&self) -> bool {
        self.status & 2 != 0
    }
    pub fn resetting(&self) -> bool {
        self.status & (1 << 4) != 0
    }
    pub fn powered(&self) -> bool {
        self.status & (1 << 8) != 0
    }
    /// The attached device's speed (a USB 2 hub: low, high or else full).
    pub fn speed(&self) -> Speed {
        if self.status & (1 << 9) != 0 {
            Speed::Low
        } else if self.status & (1 << 10) != 0 {
            Speed::High
        } else {
            Speed::Full
        }
    }
}

/// A configured hub.
#[derive(Clone, Debug)]
pub struct Hub {
    pub dev: DeviceId,
    pub speed: Speed,
    pub descriptor: HubDescriptor,
}

fn port_request<H: HostController + ?Sized>(
    hc: &mut H,
    dev: DeviceId,
    request: u8,
    feature: u16,
    port: u8,
) -> Result<(), UsbError> {
    hc.control(
        dev,
        Setup {
            request_type: OUT_CLASS_OTHER,
            request,
            value: feature,
            index: port.into(),
            length: 0,
        },
        &mut [],
    )
    .map(drop)
}

/// Reads a configured hub's descriptor and powers every port; `sleep_ms` waits (for the
/// ports' power to be good).
pub fn init<H: HostController + ?Sized>(
    hc: &mut H,
    dev: &Device,
    mut sleep_ms: impl FnMut(u32),
) -> Result<Hub, UsbError> {
    let mut b = [0u8; 71];
    let n = hc.control(
        dev.id,
        Setup {
            request_type: IN_CLASS_DEVICE,
            request: GET_DESCRIPTOR,
            value: u16::from(DT_HUB) << 8,
            index: 0,
            length: b.len() as u16,
        },
        &mut b,
    )?;
    let descriptor = HubDescriptor::parse(&b[..n]).map_err(|e| match e {
        HubError::Descriptor(d) => UsbError::Descriptor(d),
        HubError::BadPortCount(_) => UsbError::Unsupported,
    })?;
    hc.set_hub(dev.id, descriptor.ports)?;
    for p in 1..=descriptor.ports {
        port_request(hc, dev.id, SET_FEATURE, feature::PORT_POWER, p)?;
    }
    sleep_ms(u32::from(descriptor.power_on_ms).max(20));
    Ok(Hub {
        dev: dev.id,
        speed: dev.speed,
        descriptor,
    })
}

impl Hub {
    /// GET_STATUS of downstream port `port`; the change bits it reports are acknowledged
    /// (cleared on the hub).
    pub fn port_state<H: HostController + ?Sized>(
        &self,
        hc: &mut H,
        port: u8,
    ) -> Result<PortState, UsbError> {
        let mut b = [0u8; 4];
        let n = hc.control(
            self.dev,
            Setup {
                request_type: IN_CLASS_OTHER,
                request: GET_STATUS,
                value: 0,
                index: port.into(),
                length: 4,
            },
            &mut b,
        )?;
        let st = PortState::parse(&b[..n]).ok_or(UsbError::Descriptor(DescError::TooShort {
            need: 4,
            got: n,
        }))?;
        for (bit, f) in [
            (0, feature::C_PORT_CONNECTION),
            (1, feature::C_PORT_ENABLE),
            (2, feature::C_PORT_SUSPEND),
            (3, feature::C_PORT_OVER_CURRENT),
            (4, feature::C_PORT_RESET),
        ] {
            if st.change & (1 << bit) != 0 {
                port_request(hc, self.dev, CLEAR_FEATURE, f, port)?;
            }
        }
        Ok(st)
    }

    /// Resets downstream port `port` and returns the speed of the device on it.
    pub fn reset_port<H: HostController + ?Sized>(
        &self,
        hc: &mut H,
        port: u8,
        mut sleep_ms: impl FnMut(u32),
    ) -> Result<Speed, UsbError> {
        if !self.port_state(hc, port)?.connected() {
            return Err(UsbError::NoDevice);
        }
        port_request(hc, self.dev, SET_FEATURE, feature::PORT_RESET, port)?;
        // USB 2 §7.1.7.5: at least 10 ms of reset; look every 10 ms for half a second.
        for _ in 0..50 {
            sleep_ms(10);
            let st = self.port_state(hc, port)?;
            if !st.connected() {
                return Err(UsbError::NoDevice);
            }
            if !st.resetting() && st.enabled() {
                // Reset recovery before the first request.
                sleep_ms(10);
                return Ok(st.speed());
            }
        }
        Err(UsbError::Timeout)
    }

    /// Disables downstream port `port` (a device that failed enumeration).
    pub fn disable_port<H: HostController + ?Sized>(&self, hc: &mut H, port: u8) {
        let _ = port_request(hc, self.dev, CLEAR_FEATURE, feature::PORT_ENABLE, port);
    }

    /// Enumerates the device on downstream port `port`: reset, a slot and an address below
    /// this hub, descriptors, configuration (as [`crate::enumerate`] does for root ports).
    /// On failure the slot is released and the port disabled.
    pub fn enumerate<H: HostController + ?Sized>(
        &self,
        hc: &mut H,
        port: u8,
        mut sleep_ms: impl FnMut(u32),
    ) -> Result<Device, UsbError> {
        let speed = self.reset_port(hc, port, &mut sleep_ms)?;
        let id = hc.new_device_behind_hub(self.dev, port, speed)?;
        match configure(hc, port, speed, id) {
            Ok(d) => Ok(d),
            Err(e) => {
                hc.release_device(id);
                self.disable_port(hc, port);
                Err(e)
            }
        }
    }
}
