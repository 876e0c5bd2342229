//! Enumeration: a connected root port becomes an addressed, configured [`Device`].

use alloc::string::String;
use alloc::vec::Vec;

use crate::desc::{self, Configuration, DeviceDescriptor, TransferType};
use crate::{DeviceId, HostController, Setup, Speed, UsbError, req};

/// An enumerated device in its first configuration.
#[derive(Clone, Debug)]
pub struct Device {
    pub id: DeviceId,
    pub port: u8,
    pub speed: Speed,
    pub descriptor: DeviceDescriptor,
    pub config: Configuration,
    pub manufacturer: String,
    pub product: String,
    pub serial: String,
}

fn get_descriptor<H: HostController + ?Sized>(
    hc: &mut H,
    dev: DeviceId,
    ty: u8,
    index: u8,
    lang: u16,
    buf: &mut [u8],
) -> Result<usize, UsbError> {
    let length = buf.len().min(usize::from(u16::MAX)) as u16;
    hc.control(
        dev,
        Setup {
            request_type: req::IN_STD_DEVICE,
            request: req::GET_DESCRIPTOR,
            value: (u16::from(ty) << 8) | u16::from(index),
            index: lang,
            length,
        },
        buf,
    )
}

fn string<H: HostController + ?Sized>(hc: &mut H, dev: DeviceId, index: u8, lang: u16) -> String {
    if index == 0 || lang == 0 {
        return String::new();
    }
    let mut b = [0u8; 255];
    match get_descriptor(hc, dev, desc::DT_STRING, index, lang, &mut b) {
        Ok(n) => desc::parse_string(&b[..n]).unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Enumerates the device on `port`: enable (reset) the port, address it, read its device
/// and first configuration descriptors (and its strings, best effort), configure the
/// controller's endpoints for every bulk/interrupt endpoint of each interface's alternate
/// setting 0, and SET_CONFIGURATION. On failure the slot is released and the port disabled.
pub fn enumerate<H: HostController + ?Sized>(hc: &mut H, port: u8) -> Result<Device, UsbError> {
    let speed = hc.enable_port(port)?;
    let id = hc.new_device(port, speed)?;
    match configure(hc, port, speed, id) {
        Ok(d) => Ok(d),
        Err(e) => {
            hc.release_device(id);
            hc.disable_port(port);
            Err(e)
        }
    }
}

pub(crate) fn configure<H: HostController + ?Sized>(
    hc: &mut H,
    port: u8,
    speed: Speed,
    id: DeviceId,
) -> Result<Device, UsbError> {
    // First 8 bytes: bMaxPacketSize0 (a full-speed device may have 8..64).
    let mut head = [0u8; 8];
    let n = get_descriptor(hc, id, desc::DT_DEVICE, 0, 0, &mut head)?;
    let mps = desc::max_packet_size0(&head[..n])?;
    if mps != speed.default_ep0_max_packet() {
        hc.set_ep0_max_packet(id, mps)?;
    }
    let mut d = [0u8; 18];
    let n = get_descriptor(hc, id, desc::DT_DEVICE, 0, 0, &mut d)?;
    let descriptor = DeviceDescriptor::parse(&d[..n])?;
    let mut c9 = [0u8; 9];
    let n = get_descriptor(hc, id, desc::DT_CONFIG, 0, 0, &mut c9)?;
    let total = desc::config_total_length(&c9[..n])?;
    let mut cbuf = alloc::vec![0u8; total];
    let n = get_descriptor(hc, id, desc::DT_CONFIG, 0, 0, &mut cbuf)?;
    let config = Configuration::parse(&cbuf[..n])?;

    let mut langbuf = [0u8; 255];
    let lang = match get_descriptor(hc, id, desc::DT_STRING, 0, 0, &mut langbuf) {
        Ok(n) => desc::parse_langids(&langbuf[..n])
            .ok()
            .and_then(|l| l.first().copied())
            .unwrap_or(0),
        Err(_) => 0,
    };
    let manufacturer = string(hc, id, descriptor.manufacturer_index, lang);
    let product = string(hc, id, descriptor.product_index, lang);
    let serial = string(hc, id, descriptor.serial_index, lang);

    let eps: Vec<_> = config
        .interfaces
        .iter()
        .filter(|i| i.alternate == 0)
        .flat_map(|i| i.endpoints.iter().copied())
        .filter(|e| {
            matches!(
                e.transfer_type(),
                TransferType::Bulk | TransferType::Interrupt
            )
        })
        .collect();
    hc.configure_endpoints(id, &eps)?;
    hc.control(
        id,
        Setup {
            request_type: req::OUT_STD_DEVICE,
            request: req::SET_CONFIGURATION,
            value: config.value.into(),
            index: 0,
            length: 0,
        },
        &mut [],
    )?;
    Ok(Device {
        id,
        port,
        speed,
        descriptor,
        config,
        manufacturer,
        product,
        serial,
    })
}
