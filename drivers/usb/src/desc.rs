//! Standard descriptors (USB 2.0 §9.6), parsed defensively: every length is checked against
//! the buffer before it is used, and a device that lies gets a typed error, not a panic.

use alloc::string::String;
use alloc::vec::Vec;

pub const DT_DEVICE: u8 = 1;
pub const DT_CONFIG: u8 = 2;
pub const DT_STRING: u8 = 3;
pub const DT_INTERFACE: u8 = 4;
pub const DT_ENDPOINT: u8 = 5;

/// At most this many interface descriptors (all alternate settings) in a configuration.
pub const MAX_INTERFACES: usize = 32;
/// At most this many endpoints in one interface (15 IN + 15 OUT besides EP0).
pub const MAX_ENDPOINTS: usize = 30;
/// The largest configuration descriptor set the core reads.
pub const MAX_CONFIG_LEN: usize = 4096;

/// What was wrong with a descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DescError {
    /// The buffer holds fewer bytes than the descriptor needs.
    TooShort { need: usize, got: usize },
    /// A descriptor with bLength 0 or 1 (a parser walking by bLength would loop).
    ZeroLength { offset: usize },
    /// A descriptor's bLength runs past the end of the buffer.
    PastEnd {
        offset: usize,
        len: usize,
        buf: usize,
    },
    /// bDescriptorType is not the expected one.
    WrongType { expected: u8, got: u8 },
    /// A descriptor shorter than its type's fixed part.
    BadLength { offset: usize, ty: u8, len: usize },
    /// More interface descriptors than [`MAX_INTERFACES`].
    TooManyInterfaces,
    /// More endpoints in one interface than [`MAX_ENDPOINTS`].
    TooManyEndpoints { interface: u8 },
    /// An endpoint descriptor before any interface descriptor.
    OrphanEndpoint { offset: usize },
    /// Endpoint number 0 or a zero maximum packet size.
    BadEndpoint { address: u8 },
    /// wTotalLength smaller than the configuration descriptor itself or past
    /// [`MAX_CONFIG_LEN`].
    BadTotalLength(u16),
    /// A string descriptor with an odd length.
    OddString { len: usize },
}

/// The device descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceDescriptor {
    pub usb_version: u16,
    pub class: u8,
    pub subclass: u8,
    pub protocol: u8,
    pub max_packet_size0: u8,
    pub vendor: u16,
    pub product: u16,
    pub device_version: u16,
    pub manufacturer_index: u8,
    pub product_index: u8,
    pub serial_index: u8,
    pub num_configurations: u8,
}

fn le16(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

/// bMaxPacketSize0 from the first 8 bytes of a device descriptor (all a full-speed EP0 with
/// 8-byte packets returns before it is resized).
pub fn max_packet_size0(prefix: &[u8]) -> Result<u16, DescError> {
    if prefix.len() < 8 {
        return Err(DescError::TooShort {
            need: 8,
            got: prefix.len(),
        });
    }
    if prefix[1] != DT_DEVICE {
        return Err(DescError::WrongType {
            expected: DT_DEVICE,
            got: prefix[1],
        });
    }
    let usb = le16(prefix, 2);
    let m = prefix[7];
    // USB 3: 2^bMaxPacketSize0 (9 → 512).
    let mps = if usb >= 0x0300 && m == 9 {
        512
    } else {
        u16::from(m)
    };
    match mps {
        8 | 16 | 32 | 64 | 512 => Ok(mps),
        _ => Err(DescError::BadEndpoint { address: 0 }),
    }
}

impl DeviceDescriptor {
    pub fn parse(b: &[u8]) -> Result<Self, DescError> {
        if b.len() < 18 {
            return Err(DescError::TooShort {
                need: 18,
                got: b.len(),
            });
        }
        if b[0] < 18 {
            return Err(DescError::BadLength {
                offset: 0,
                ty: DT_DEVICE,
                len: b[0].into(),
            });
        }
        if b[1] != DT_DEVICE {
            return Err(DescError::WrongType {
                expected: DT_DEVICE,
                got: b[1],
            });
        }
        max_packet_size0(b)?;
        Ok(DeviceDescriptor {
            usb_version: le16(b, 2),
            class: b[4],
            subclass: b[5],
            protocol: b[6],
            max_packet_size0: b[7],
            vendor: le16(b, 8),
            product: le16(b, 10),
            device_version: le16(b, 12),
            manufacturer_index: b[14],
            product_index: b[15],
            serial_index: b[16],
            num_configurations: b[17],
        })
    }
}

/// Transfer type of an endpoint (bmAttributes bits 0–1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferType {
    Control,
    Isochronous,
    Bulk,
    Interrupt,
}

/// An endpoint descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndpointDescriptor {
    /// bEndpointAddress: number in bits 0–3, IN if bit 7.
    pub address: u8,
    pub attributes: u8,
    pub max_packet_size: u16,
    pub interval: u8,
    /// bMaxBurst from a following SuperSpeed companion descriptor (0 otherwise).
    pub max_burst: u8,
}

impl EndpointDescriptor {
    pub fn number(&self) -> u8 {
        self.address & 0x0f
    }
    pub fn is_in(&self) -> bool {
        self.address & 0x80 != 0
    }
    pub fn transfer_type(&self) -> TransferType {
        match self.attributes & 3 {
            0 => TransferType::Control,
            1 => TransferType::Isochronous,
            2 => TransferType::Bulk,
            _ => TransferType::Interrupt,
        }
    }
    /// wMaxPacketSize's size bits (10–0).
    pub fn packet_size(&self) -> u16 {
        self.max_packet_size & 0x7ff
    }
}

/// An interface descriptor (one alternate setting) with its endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    pub number: u8,
    pub alternate: u8,
    pub class: u8,
    pub subclass: u8,
    pub protocol: u8,
    pub endpoints: Vec<EndpointDescriptor>,
}

/// A configuration descriptor set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Configuration {
    pub value: u8,
    pub num_interfaces: u8,
    pub attributes: u8,
    pub max_power: u8,
    pub interfaces: Vec<Interface>,
}

/// wTotalLength of a configuration descriptor's first 9 bytes, checked.
pub fn config_total_length(head: &[u8]) -> Result<usize, DescError> {
    if head.len() < 9 {
        return Err(DescError::TooShort {
            need: 9,
            got: head.len(),
        });
    }
    if head[1] != DT_CONFIG {
        return Err(DescError::WrongType {
            expected: DT_CONFIG,
            got: head[1],
        });
    }
    let total = le16(head, 2);
    if usize::from(total) < 9 || usize::from(total) > MAX_CONFIG_LEN {
        return Err(DescError::BadTotalLength(total));
    }
    Ok(total.into())
}

impl Configuration {
    /// Parses a whole configuration descriptor set (`b` is what GET_DESCRIPTOR returned for
    /// wTotalLength bytes; it must hold all of them).
    pub fn parse(b: &[u8]) -> Result<Self, DescError> {
        let total = config_total_length(b)?;
        if b.len() < total {
            return Err(DescError::TooShort {
                need: total,
                got: b.len(),
            });
        }
        if b[0] < 9 {
            return Err(DescError::BadLength {
                offset: 0,
                ty: DT_CONFIG,
                len: b[0].into(),
            });
        }
        let b = &b[..total];
        let mut cfg = Configuration {
            value: b[5],
            num_interfaces: b[4],
            attributes: b[7],
            max_power: b[8],
            interfaces: Vec::new(),
        };
        let mut off = usize::from(b[0]);
        if off > b.len() {
            return Err(DescError::PastEnd {
                offset: 0,
                len: off,
                buf: b.len(),
            });
        }
        while off < b.len() {
            let rest = &b[off..];
            if rest.len() < 2 {
                return Err(DescError::TooShort {
                    need: off + 2,
                    got: b.len(),
                });
            }
            let len = usize::from(rest[0]);
            let ty = rest[1];
            if len < 2 {
                return Err(DescError::ZeroLength { offset: off });
            }
            if len > rest.len() {
                return Err(DescError::PastEnd {
                    offset: off,
                    len,
                    buf: b.len(),
                });
            }
            let d = &rest[..len];
            match ty {
                DT_INTERFACE => {
                    if len < 9 {
                        return Err(DescError::BadLength {
                            offset: off,
                            ty,
                            len,
                        });
                    }
                    if cfg.interfaces.len() >= MAX_INTERFACES {
                        return Err(DescError::TooManyInterfaces);
                    }
                    cfg.interfaces.push(Interface {
                        number: d[2],
                        alternate: d[3],
                        class: d[5],
                        subclass: d[6],
                        protocol: d[7],
                        endpoints: Vec::new(),
                    });
                }
                DT_ENDPOINT => {
                    if len < 7 {
                        return Err(DescError::BadLength {
                            offset: off,
                            ty,
                            len,
                        });
                    }
                    let Some(intf) = cfg.interfaces.last_mut() else {
                        return Err(DescError::OrphanEndpoint { offset: off });
                    };
                    if intf.endpoints.len() >= MAX_ENDPOINTS {
                        return Err(DescError::TooManyEndpoints {
                            interface: intf.number,
                        });
                    }
                    let ep = EndpointDescriptor {
                        address: d[2],
                        attributes: d[3],
                        max_packet_size: le16(d, 4),
                        interval: d[6],
                        max_burst: 0,
                    };
                    if ep.number() == 0 || ep.packet_size() == 0 {
                        return Err(DescError::BadEndpoint {
                            address: ep.address,
                        });
                    }
                    intf.endpoints.push(ep);
                }
                // SuperSpeed Endpoint Companion: bMaxBurst for the endpoint before it.
                0x30 if len >= 6 => {
                    if let Some(ep) = cfg
                        .interfaces
                        .last_mut()
                        .and_then(|i| i.endpoints.last_mut())
                    {
                        ep.max_burst = d[2].min(15);
                    }
                }
                _ => {} // class-specific, interface association, …: skipped
            }
            off += len;
        }
        Ok(cfg)
    }
}

/// The text of a string descriptor (UTF-16LE; unpaired surrogates become U+FFFD).
pub fn parse_string(b: &[u8]) -> Result<String, DescError> {
    let langs = string_units(b)?;
    Ok(char::decode_utf16(langs.iter().copied())
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect())
}

/// The language ids of string descriptor 0.
pub fn parse_langids(b: &[u8]) -> Result<Vec<u16>, DescError> {
    string_units(b)
}

fn string_units(b: &[u8]) -> Result<Vec<u16>, DescError> {
    if b.len() < 2 {
        return Err(DescError::TooShort {
            need: 2,
            got: b.len(),
        });
    }
    let len = usize::from(b[0]);
    if len < 2 {
        return Err(DescError::ZeroLength { offset: 0 });
    }
    if b[1] != DT_STRING {
        return Err(DescError::WrongType {
            expected: DT_STRING,
            got: b[1],
        });
    }
    if len > b.len() {
        return Err(DescError::PastEnd {
            offset: 0,
            len,
            buf: b.len(),
        });
    }
    if len % 2 != 0 {
        return Err(DescError::OddString { len });
    }
    Ok(b[2..len]
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect())
}
