//! One logical unit of a BOT mass-storage device as a block device: bring-up (INQUIRY, TEST
//! UNIT READY until ready, READ CAPACITY (10, then 16 when needed), MODE SENSE for write
//! protection) and block I/O in runs as large as the controller allows.

use alloc::string::String;

use crate::bot::{BotError, Data, Transport};
use crate::scsi::{self, Capacity, Inquiry, Sense};
use crate::{HostController, UsbError};

/// Why a disk operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskError {
    Transport(BotError),
    /// The command failed with this sense data.
    Sense(Sense),
    /// The LUN is not a direct-access block device.
    NotADisk(u8),
    /// Never became ready.
    NotReady,
    /// A block size other than 512 bytes, or a capacity that does not parse.
    BadCapacity(Capacity),
    /// Out-of-range request or a buffer that is not whole blocks.
    Range,
    /// The medium is write protected.
    WriteProtected,
    /// The device moved fewer bytes than the command asked for.
    Short {
        expected: usize,
        got: usize,
    },
}

impl From<BotError> for DiskError {
    fn from(e: BotError) -> Self {
        DiskError::Transport(e)
    }
}

pub const BLOCK: usize = 512;

/// A SCSI direct-access LUN behind a BOT transport.
#[derive(Clone, Debug)]
pub struct ScsiDisk {
    pub lun: u8,
    pub blocks: u64,
    pub write_protected: bool,
    pub vendor: String,
    pub product: String,
    /// Largest run per READ/WRITE (bytes, a multiple of [`BLOCK`]).
    pub max_transfer: usize,
}

fn trim(b: &[u8]) -> String {
    String::from_utf8_lossy(b).trim().into()
}

/// A command; a failed status is turned into its sense data (REQUEST SENSE).
pub fn command<H: HostController + ?Sized>(
    t: &mut Transport,
    hc: &mut H,
    lun: u8,
    cdb: &scsi::Cdb,
    data: Data<'_>,
) -> Result<usize, DiskError> {
    match t.command(hc, lun, cdb.as_slice(), data) {
        Ok(n) => Ok(n),
        Err(BotError::CommandFailed) => {
            let mut s = [0u8; 18];
            let n = t.command(
                hc,
                lun,
                scsi::request_sense(18).as_slice(),
                Data::In(&mut s),
            )?;
            match Sense::parse(&s[..n]) {
                Some(sense) => Err(DiskError::Sense(sense)),
                None => Err(DiskError::Transport(BotError::CommandFailed)),
            }
        }
        Err(e) => Err(e.into()),
    }
}

impl ScsiDisk {
    /// Brings up `lun`. `delay_ms` waits between TEST UNIT READY tries (up to `tries`).
    pub fn probe<H: HostController + ?Sized>(
        t: &mut Transport,
        hc: &mut H,
        lun: u8,
        tries: u32,
        mut delay_ms: impl FnMut(u32),
    ) -> Result<Self, DiskError> {
        let mut inq = [0u8; 36];
        let n = command(t, hc, lun, &scsi::inquiry(36), Data::In(&mut inq))?;
        let inquiry = Inquiry::parse(&inq[..n]).ok_or(DiskError::Short {
            expected: 36,
            got: n,
        })?;
        if inquiry.device_type != 0 {
            return Err(DiskError::NotADisk(inquiry.device_type));
        }
        let mut ready = false;
        for _ in 0..tries.max(1) {
            match command(t, hc, lun, &scsi::test_unit_ready(), Data::None) {
                Ok(_) => {
                    ready = true;
                    break;
                }
                // Unit attention (power on / medium changed) and "becoming ready" are
                // answered by asking again.
                Err(DiskError::Sense(_)) => delay_ms(100),
                Err(e) => return Err(e),
            }
        }
        if !ready {
            return Err(DiskError::NotReady);
        }
        let mut c = [0u8; 8];
        let n = command(t, hc, lun, &scsi::read_capacity_10(), Data::In(&mut c))?;
        let mut cap = scsi::parse_capacity_10(&c[..n]).ok_or(DiskError::Short {
            expected: 8,
            got: n,
        })?;
        if cap.blocks > u64::from(u32::MAX) {
            let mut c = [0u8; 32];
            let n = command(t, hc, lun, &scsi::read_capacity_16(32), Data::In(&mut c))?;
            cap = scsi::parse_capacity_16(&c[..n]).ok_or(DiskError::Short {
                expected: 12,
                got: n,
            })?;
        }
        if cap.block_size as usize != BLOCK || cap.blocks == 0 {
            return Err(DiskError::BadCapacity(cap));
        }
        // Write protection: a device that does not know MODE SENSE(6) is taken as writable.
        let mut m = [0u8; 192];
        let write_protected = match command(t, hc, lun, &scsi::mode_sense_6(192), Data::In(&mut m))
        {
            Ok(n) => scsi::mode_sense_write_protected(&m[..n]).unwrap_or(false),
            Err(DiskError::Sense(_)) => false,
            Err(e) => return Err(e),
        };
        let max_transfer = (hc.max_transfer() / BLOCK).clamp(1, 0xffff) * BLOCK;
        Ok(ScsiDisk {
            lun,
            blocks: cap.blocks,
            write_protected,
            vendor: trim(&inquiry.vendor),
            product: trim(&inquiry.product),
            max_transfer,
        })
    }

    fn check(&self, lba: u64, len: usize) -> Result<(), DiskError> {
        if !len.is_multiple_of(BLOCK)
            || lba
                .checked_add((len / BLOCK) as u64)
                .is_none_or(|e| e > self.blocks)
        {
            return Err(DiskError::Range);
        }
        Ok(())
    }

    /// Reads whole blocks at `lba` (one READ per `max_transfer` run).
    pub fn read<H: HostController + ?Sized>(
        &self,
        t: &mut Transport,
        hc: &mut H,
        lba: u64,
        buf: &mut [u8],
    ) -> Result<(), DiskError> {
        self.check(lba, buf.len())?;
        let mut lba = lba;
        for chunk in buf.chunks_mut(self.max_transfer) {
            let blocks = (chunk.len() / BLOCK) as u32;
            let n = command(
                t,
                hc,
                self.lun,
                &scsi::rw(false, lba, blocks),
                Data::In(chunk),
            )?;
            if n != chunk.len() {
                return Err(DiskError::Short {
                    expected: chunk.len(),
                    got: n,
                });
            }
            lba += u64::from(blocks);
        }
        Ok(())
    }

    /// Writes whole blocks at `lba`.
    pub fn write<H: HostController + ?Sized>(
        &self,
        t: &mut Transport,
        hc: &mut H,
        lba: u64,
        buf: &[u8],
    ) -> Result<(), DiskError> {
        if self.write_protected {
            return Err(DiskError::WriteProtected);
        }
        self.check(lba, buf.len())?;
        let mut lba = lba;
        for chunk in buf.chunks(self.max_transfer) {
            let blocks = (chunk.len() / BLOCK) as u32;
            let n = command(
                t,
                hc,
                self.lun,
                &scsi::rw(true, lba, blocks),
                Data::Out(chunk),
            )?;
            if n != chunk.len() {
                return Err(DiskError::Short {
                    expected: chunk.len(),
                    got: n,
                });
            }
            lba += u64::from(blocks);
        }
        Ok(())
    }

    /// SYNCHRONIZE CACHE; a device without a cache (ILLEGAL REQUEST) has nothing to flush.
    pub fn flush<H: HostController + ?Sized>(
        &self,
        t: &mut Transport,
        hc: &mut H,
    ) -> Result<(), DiskError> {
        match command(t, hc, self.lun, &scsi::synchronize_cache(), Data::None) {
            Ok(_) => Ok(()),
            Err(DiskError::Sense(s)) if s.key == scsi::SENSE_ILLEGAL_REQUEST => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl DiskError {
    /// True when the device itself is gone or unusable (not just this request).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            DiskError::Transport(BotError::Usb(UsbError::NoDevice | UsbError::HostDead))
        )
    }
}
