#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
//! A USB core and the mass-storage class, independent of the host controller.
//!
//! * [`desc`]: descriptor parsers (device, configuration with its interfaces and endpoints,
//!   string) that reject malformed input with a typed [`desc::DescError`].
//! * [`HostController`]: what a host controller driver (xHCI today: `adros-xhci`) offers
//!   the core — ports, device slots, control and bulk transfers, endpoint recovery.
//! * [`enumerate`]: port → addressed, configured [`Device`].
//! * [`bot`] and [`scsi`]: USB mass storage, Bulk-Only Transport (with reset recovery) and
//!   the SCSI commands a stick needs; [`disk::ScsiDisk`] is one LUN as a block device.
//!
//! Nothing here touches hardware: host tests drive it with a fake controller and device
//! (`src/tests.rs`).

extern crate alloc;

pub mod bot;
pub mod desc;
pub mod disk;
mod enumerate;
pub mod hub;
#[cfg(test)]
mod hub_tests;
pub mod scsi;
#[cfg(test)]
mod tests;

pub use enumerate::{Device, enumerate};

/// Bus speed of a device, as the root port reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Speed {
    Low,
    Full,
    High,
    Super,
    SuperPlus,
}

impl Speed {
    /// EP0's maximum packet size before the device descriptor says otherwise.
    pub fn default_ep0_max_packet(self) -> u16 {
        match self {
            Speed::Low | Speed::Full => 8,
            Speed::High => 64,
            Speed::Super | Speed::SuperPlus => 512,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Speed::Low => "low-speed",
            Speed::Full => "full-speed",
            Speed::High => "high-speed",
            Speed::Super => "SuperSpeed",
            Speed::SuperPlus => "SuperSpeedPlus",
        }
    }
}

/// Why a USB operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsbError {
    /// The endpoint answered STALL (the host side is recovered by the controller driver;
    /// the device side needs CLEAR_FEATURE(ENDPOINT_HALT) on bulk endpoints).
    Stall,
    /// No completion within the deadline (the transfer was stopped).
    Timeout,
    /// The device sent more than asked for.
    Babble,
    /// A bus-level error (CRC, bit stuffing, no answer) after the controller's retries.
    Transaction,
    /// Nothing is connected, or the device went away.
    NoDevice,
    /// No DMA memory, or no free device slot.
    NoResources,
    /// A request larger than the controller's bounce buffer.
    TooLarge,
    /// The controller reported a completion code the driver does not expect.
    Controller(u8),
    /// A descriptor failed to parse.
    Descriptor(desc::DescError),
    /// The controller itself is dead (halted, host system error).
    HostDead,
    /// A device this controller does not drive (EHCI: a full/low-speed device, handed to
    /// a companion controller).
    Unsupported,
}

impl From<desc::DescError> for UsbError {
    fn from(e: desc::DescError) -> Self {
        UsbError::Descriptor(e)
    }
}

/// A control request's SETUP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setup {
    pub request_type: u8,
    pub request: u8,
    pub value: u16,
    pub index: u16,
    pub length: u16,
}

/// Standard requests and feature selectors (USB 2.0 §9.4).
pub mod req {
    pub const GET_STATUS: u8 = 0;
    pub const CLEAR_FEATURE: u8 = 1;
    pub const SET_ADDRESS: u8 = 5;
    pub const GET_DESCRIPTOR: u8 = 6;
    pub const SET_CONFIGURATION: u8 = 9;
    pub const ENDPOINT_HALT: u16 = 0;
    /// bmRequestType: device-to-host, standard, device.
    pub const IN_STD_DEVICE: u8 = 0x80;
    pub const OUT_STD_DEVICE: u8 = 0x00;
    pub const OUT_STD_ENDPOINT: u8 = 0x02;
    pub const OUT_CLASS_INTERFACE: u8 = 0x21;
    pub const IN_CLASS_INTERFACE: u8 = 0xa1;
}

/// A root-hub port's state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStatus {
    pub connected: bool,
    pub enabled: bool,
    /// A connect/enable/reset change was latched since the last look.
    pub changed: bool,
}

/// A device the controller has a slot for (xHCI: the slot id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DeviceId(pub u8);

/// What a host controller driver offers the core. Calls are synchronous: each returns when
/// the controller completed the work or a deadline passed (a device that never answers
/// gives [`UsbError::Timeout`], never a hang).
pub trait HostController {
    /// Number of root-hub ports (numbered 1..=ports).
    fn ports(&self) -> u8;
    /// Reads (and acknowledges the change bits of) a root port.
    fn port_status(&mut self, port: u8) -> PortStatus;
    /// Brings a connected port to the enabled state (a USB 2 port is reset; a USB 3 port
    /// trains by itself and is waited for) and returns the device's speed.
    fn enable_port(&mut self, port: u8) -> Result<Speed, UsbError>;
    /// Disables a port (a device that failed enumeration is left there, switched off).
    fn disable_port(&mut self, port: u8);
    /// Gives the device on an enabled port a slot and an address (xHCI: Enable Slot,
    /// Address Device), its EP0 sized for `speed`.
    fn new_device(&mut self, port: u8, speed: Speed) -> Result<DeviceId, UsbError>;
    /// Frees the device's slot (after a failed enumeration or a removal).
    fn release_device(&mut self, dev: DeviceId);
    /// Changes EP0's maximum packet size (from the device descriptor's first 8 bytes).
    fn set_ep0_max_packet(&mut self, dev: DeviceId, mps: u16) -> Result<(), UsbError>;
    /// A control transfer; `data` is the data stage (IN: filled, OUT: sent; its length is
    /// `setup.length`). Returns the bytes transferred.
    fn control(&mut self, dev: DeviceId, setup: Setup, data: &mut [u8]) -> Result<usize, UsbError>;
    /// Sets up the controller's side of these endpoints (xHCI: Configure Endpoint).
    fn configure_endpoints(
        &mut self,
        dev: DeviceId,
        eps: &[desc::EndpointDescriptor],
    ) -> Result<(), UsbError>;
    /// A bulk IN transfer into `buf`; returns the bytes received (short is not an error).
    fn bulk_in(&mut self, dev: DeviceId, ep: u8, buf: &mut [u8]) -> Result<usize, UsbError>;
    /// A bulk OUT transfer; returns the bytes sent.
    fn bulk_out(&mut self, dev: DeviceId, ep: u8, data: &[u8]) -> Result<usize, UsbError>;
    /// Host-side endpoint recovery after a stall or before a CLEAR_FEATURE(ENDPOINT_HALT):
    /// the endpoint is usable again and its data toggle / sequence starts over.
    fn reset_endpoint(&mut self, dev: DeviceId, ep: u8) -> Result<(), UsbError>;
    /// The largest single bulk transfer (bytes).
    fn max_transfer(&self) -> usize;
    /// Like [`HostController::new_device`] for the device on downstream port `hub_port`
    /// of hub `hub` (already reset through the hub). Controllers that cannot address
    /// devices behind hubs answer [`UsbError::Unsupported`].
    fn new_device_behind_hub(
        &mut self,
        hub: DeviceId,
        hub_port: u8,
        speed: Speed,
    ) -> Result<DeviceId, UsbError> {
        let _ = (hub, hub_port, speed);
        Err(UsbError::Unsupported)
    }
    /// Tells the controller `dev` is a hub with `ports` downstream ports (xHCI: the slot
    /// context's Hub flag and Number of Ports, set at the next Configure Endpoint).
    fn set_hub(&mut self, dev: DeviceId, ports: u8) -> Result<(), UsbError> {
        let _ = (dev, ports);
        Ok(())
    }
}

/// CLEAR_FEATURE(ENDPOINT_HALT) on the device plus the host side's endpoint reset.
pub fn clear_halt<H: HostController + ?Sized>(
    hc: &mut H,
    dev: DeviceId,
    ep: u8,
) -> Result<(), UsbError> {
    hc.reset_endpoint(dev, ep)?;
    hc.control(
        dev,
        Setup {
            request_type: req::OUT_STD_ENDPOINT,
            request: req::CLEAR_FEATURE,
            value: req::ENDPOINT_HALT,
            index: u16::from(ep),
            length: 0,
        },
        &mut [],
    )
    .map(drop)
}
