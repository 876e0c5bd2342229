//! SCSI command blocks (SPC-4/SBC-3) a USB stick needs, and their answers' parsers.

pub const TEST_UNIT_READY: u8 = 0x00;
pub const REQUEST_SENSE: u8 = 0x03;
pub const INQUIRY: u8 = 0x12;
pub const MODE_SENSE_6: u8 = 0x1a;
pub const READ_CAPACITY_10: u8 = 0x25;
pub const READ_10: u8 = 0x28;
pub const WRITE_10: u8 = 0x2a;
pub const SYNCHRONIZE_CACHE_10: u8 = 0x35;
pub const READ_16: u8 = 0x88;
pub const WRITE_16: u8 = 0x8a;
pub const SERVICE_ACTION_IN_16: u8 = 0x9e;
pub const SA_READ_CAPACITY_16: u8 = 0x10;

/// A command descriptor block (6, 10 or 16 bytes used).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cdb {
    pub bytes: [u8; 16],
    pub len: u8,
}

impl Cdb {
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
    fn new(len: u8, op: u8) -> Self {
        let mut bytes = [0u8; 16];
        bytes[0] = op;
        Cdb { bytes, len }
    }
}

pub fn test_unit_ready() -> Cdb {
    Cdb::new(6, TEST_UNIT_READY)
}

pub fn request_sense(alloc: u8) -> Cdb {
    let mut c = Cdb::new(6, REQUEST_SENSE);
    c.bytes[4] = alloc;
    c
}

pub fn inquiry(alloc: u8) -> Cdb {
    let mut c = Cdb::new(6, INQUIRY);
    c.bytes[4] = alloc;
    c
}

/// MODE SENSE(6), all pages (0x3f), current values.
pub fn mode_sense_6(alloc: u8) -> Cdb {
    let mut c = Cdb::new(6, MODE_SENSE_6);
    c.bytes[2] = 0x3f;
    c.bytes[4] = alloc;
    c
}

pub fn read_capacity_10() -> Cdb {
    Cdb::new(10, READ_CAPACITY_10)
}

pub fn read_capacity_16(alloc: u32) -> Cdb {
    let mut c = Cdb::new(16, SERVICE_ACTION_IN_16);
    c.bytes[1] = SA_READ_CAPACITY_16;
    c.bytes[10..14].copy_from_slice(&alloc.to_be_bytes());
    c
}

pub fn synchronize_cache() -> Cdb {
    Cdb::new(10, SYNCHRONIZE_CACHE_10)
}

/// READ/WRITE of `blocks` blocks at `lba`: the 10-byte form when it fits (LBA < 2³², at
/// most 65535 blocks), else the 16-byte form.
pub fn rw(write: bool, lba: u64, blocks: u32) -> Cdb {
    if lba + u64::from(blocks) <= 1 << 32 && blocks <= 0xffff {
        let mut c = Cdb::new(10, if write { WRITE_10 } else { READ_10 });
        c.bytes[2..6].copy_from_slice(&(lba as u32).to_be_bytes());
        c.bytes[7..9].copy_from_slice(&(blocks as u16).to_be_bytes());
        c
    } else {
        let mut c = Cdb::new(16, if write { WRITE_16 } else { READ_16 });
        c.bytes[2..10].copy_from_slice(&lba.to_be_bytes());
        c.bytes[10..14].copy_from_slice(&blocks.to_be_bytes());
        c
    }
}

/// Standard INQUIRY data (the parts worth logging).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inquiry {
    /// Peripheral device type (0: direct-access block device).
    pub device_type: u8,
    pub removable: bool,
    pub vendor: [u8; 8],
    pub product: [u8; 16],
    pub revision: [u8; 4],
}

impl Inquiry {
    pub fn parse(b: &[u8]) -> Option<Self> {
        if b.len() < 36 {
            return None;
        }
        let mut vendor = [0u8; 8];
        let mut product = [0u8; 16];
        let mut revision = [0u8; 4];
        vendor.copy_from_slice(&b[8..16]);
        product.copy_from_slice(&b[16..32]);
        revision.copy_from_slice(&b[32..36]);
        Some(Inquiry {
            device_type: b[0] & 0x1f,
            removable: b[1] & 0x80 != 0,
            vendor,
            product,
            revision,
        })
    }
}

/// Capacity: last LBA + 1 and the block size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capacity {
    pub blocks: u64,
    pub block_size: u32,
}

/// READ CAPACITY(10) data; `blocks == 2³²` means "ask READ CAPACITY(16)".
pub fn parse_capacity_10(b: &[u8]) -> Option<Capacity> {
    if b.len() < 8 {
        return None;
    }
    let last = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let bs = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
    Some(Capacity {
        blocks: u64::from(last) + 1,
        block_size: bs,
    })
}

pub fn parse_capacity_16(b: &[u8]) -> Option<Capacity> {
    if b.len() < 12 {
        return None;
    }
    let last = u64::from_be_bytes(b[0..8].try_into().ok()?);
    let bs = u32::from_be_bytes(b[8..12].try_into().ok()?);
    Some(Capacity {
        blocks: last.checked_add(1)?,
        block_size: bs,
    })
}

/// Fixed-format sense data: key, additional sense code and qualifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sense {
    pub key: u8,
    pub asc: u8,
    pub ascq: u8,
}

pub const SENSE_NOT_READY: u8 = 0x2;
pub const SENSE_MEDIUM_ERROR: u8 = 0x3;
pub const SENSE_ILLEGAL_REQUEST: u8 = 0x5;
pub const SENSE_UNIT_ATTENTION: u8 = 0x6;
pub const SENSE_DATA_PROTECT: u8 = 0x7;

impl Sense {
    pub fn parse(b: &[u8]) -> Option<Self> {
        if b.len() < 14 {
            return None;
        }
        match b[0] & 0x7f {
            0x70 | 0x71 => Some(Sense {
                key: b[2] & 0xf,
                asc: b[12],
                ascq: b[13],
            }),
            // Descriptor format.
            0x72 | 0x73 => Some(Sense {
                key: b[1] & 0xf,
                asc: b[2],
                ascq: b[3],
            }),
            _ => None,
        }
    }
}

/// The write-protect bit of a MODE SENSE(6) header (device-specific parameter, bit 7).
pub fn mode_sense_write_protected(b: &[u8]) -> Option<bool> {
    if b.len() < 4 {
        return None;
    }
    Some(b[2] & 0x80 != 0)
}
