//! USB Mass Storage Bulk-Only Transport (BOT 1.0): CBW → data → CSW, with the spec's error
//! handling — a stalled data phase is cleared and the CSW still read; a stalled CSW is
//! cleared and read once more; an invalid CSW (short, oversized, wrong signature or tag,
//! impossible residue) or a phase error leads to reset recovery (Bulk-Only Mass Storage
//! Reset, then CLEAR_FEATURE(ENDPOINT_HALT) on both bulk endpoints), after which the
//! command is sent again, up to [`COMMAND_ATTEMPTS`] times in all.

use crate::desc::{Interface, TransferType};
use crate::{DeviceId, HostController, Setup, UsbError, clear_halt, req};

pub const CLASS_MASS_STORAGE: u8 = 0x08;
pub const SUBCLASS_SCSI: u8 = 0x06;
pub const PROTOCOL_BOT: u8 = 0x50;

const CBW_SIG: u32 = 0x4342_5355;
const CSW_SIG: u32 = 0x5342_5355;
pub const CBW_LEN: usize = 31;
pub const CSW_LEN: usize = 13;
const REQ_MASS_STORAGE_RESET: u8 = 0xff;
const REQ_GET_MAX_LUN: u8 = 0xfe;
/// How often one command is sent when its transport fails (a stall, a bad CSW, a phase
/// error) and reset recovery succeeds in between.
pub const COMMAND_ATTEMPTS: u32 = 3;

/// Why a BOT command failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BotError {
    /// The transport failed (after reset recovery was tried).
    Usb(UsbError),
    /// The CSW was not valid: short or oversized, bad signature, wrong tag (reset recovery
    /// was done).
    BadCsw(CswFault),
    /// The device reported a phase error (reset recovery was done).
    PhaseError,
    /// The command failed (CSW status 1): ask REQUEST SENSE.
    CommandFailed,
}

/// What was wrong with a CSW.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CswFault {
    Length(usize),
    Signature(u32),
    Tag { expected: u32, got: u32 },
    Residue { residue: u32, expected: u32 },
    Status(u8),
}

impl From<UsbError> for BotError {
    fn from(e: UsbError) -> Self {
        BotError::Usb(e)
    }
}

/// The data phase of a command.
pub enum Data<'a> {
    None,
    In(&'a mut [u8]),
    Out(&'a [u8]),
}

impl Data<'_> {
    fn len(&self) -> usize {
        match self {
            Data::None => 0,
            Data::In(b) => b.len(),
            Data::Out(b) => b.len(),
        }
    }
}

/// Encodes a Command Block Wrapper.
pub fn cbw(tag: u32, transfer_len: u32, dir_in: bool, lun: u8, cdb: &[u8]) -> [u8; CBW_LEN] {
    let mut b = [0u8; CBW_LEN];
    b[0..4].copy_from_slice(&CBW_SIG.to_le_bytes());
    b[4..8].copy_from_slice(&tag.to_le_bytes());
    b[8..12].copy_from_slice(&transfer_len.to_le_bytes());
    b[12] = if dir_in { 0x80 } else { 0 };
    b[13] = lun & 0xf;
    let n = cdb.len().min(16);
    b[14] = n as u8;
    b[15..15 + n].copy_from_slice(&cdb[..n]);
    b
}

/// A decoded, validated Command Status Wrapper: (residue, status).
pub fn parse_csw(b: &[u8], tag: u32, expected: u32) -> Result<(u32, u8), CswFault> {
    if b.len() != CSW_LEN {
        return Err(CswFault::Length(b.len()));
    }
    let sig = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    if sig != CSW_SIG {
        return Err(CswFault::Signature(sig));
    }
    let got = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    if got != tag {
        return Err(CswFault::Tag { expected: tag, got });
    }
    let residue = u32::from_le_bytes([b[8], b[9], b[10], b[11]]);
    let status = b[12];
    if status > 2 {
        return Err(CswFault::Status(status));
    }
    if residue > expected && status != 2 {
        return Err(CswFault::Residue { residue, expected });
    }
    Ok((residue, status))
}

/// One BOT interface of a device.
#[derive(Clone, Debug)]
pub struct Transport {
    pub dev: DeviceId,
    pub interface: u8,
    pub ep_in: u8,
    pub ep_out: u8,
    tag: u32,
    /// Reset recoveries done so far (for `/proc` style reports).
    pub resets: u32,
    /// Commands sent again after a transport failure and reset recovery.
    pub retries: u32,
}

impl Transport {
    /// The BOT transport of a mass-storage interface (SCSI transparent command set, BOT
    /// protocol) with one bulk IN and one bulk OUT endpoint; None for anything else.
    pub fn from_interface(dev: DeviceId, i: &Interface) -> Option<Self> {
        if i.class != CLASS_MASS_STORAGE
            || i.subclass != SUBCLASS_SCSI
            || i.protocol != PROTOCOL_BOT
        {
            return None;
        }
        let bulk = |dir_in: bool| {
            i.endpoints
                .iter()
                .find(|e| e.transfer_type() == TransferType::Bulk && e.is_in() == dir_in)
                .map(|e| e.address)
        };
        Some(Transport {
            dev,
            interface: i.number,
            ep_in: bulk(true)?,
            ep_out: bulk(false)?,
            tag: 0,
            resets: 0,
            retries: 0,
        })
    }

    /// GET MAX LUN (a stall means one LUN, as the spec allows); at most 15.
    pub fn max_lun<H: HostController + ?Sized>(&mut self, hc: &mut H) -> u8 {
        let mut b = [0u8; 1];
        let r = hc.control(
            self.dev,
            Setup {
                request_type: req::IN_CLASS_INTERFACE,
                request: REQ_GET_MAX_LUN,
                value: 0,
                index: self.interface.into(),
                length: 1,
            },
            &mut b,
        );
        match r {
            Ok(1) => b[0].min(15),
            _ => 0,
        }
    }

    /// Reset recovery (BOT §5.3.4).
    pub fn reset_recovery<H: HostController + ?Sized>(
        &mut self,
        hc: &mut H,
    ) -> Result<(), UsbError> {
        self.resets += 1;
        hc.control(
            self.dev,
            Setup {
                request_type: req::OUT_CLASS_INTERFACE,
                request: REQ_MASS_STORAGE_RESET,
                value: 0,
                index: self.interface.into(),
                length: 0,
            },
            &mut [],
        )?;
        clear_halt(hc, self.dev, self.ep_in)?;
        clear_halt(hc, self.dev, self.ep_out)
    }

    /// Runs one command; returns the data bytes actually transferred (the expected length
    /// minus the CSW's residue, and never more than what crossed the bus).
    pub fn command<H: HostController + ?Sized>(
        &mut self,
        hc: &mut H,
        lun: u8,
        cdb: &[u8],
        mut data: Data<'_>,
    ) -> Result<usize, BotError> {
        let mut attempt = 1;
        loop {
            let r = self.command_once(hc, lun, cdb, &mut data);
            let e = match r {
                Err(BotError::CommandFailed) | Ok(_) => return r,
                Err(e) => e,
            };
            // A dead or vanished device is not reset again and again, and a device that let
            // a whole timeout pass is not given another one.
            if matches!(
                e,
                BotError::Usb(UsbError::NoDevice | UsbError::HostDead | UsbError::Timeout)
            ) {
                return Err(e);
            }
            // The command's outcome is unknown: after a successful reset recovery the device
            // is back in its command state and the same command is sent again, as Linux's
            // SCSI layer retries a command its transport aborted (READ and WRITE of the
            // same blocks are idempotent).
            if self.reset_recovery(hc).is_err() || attempt >= COMMAND_ATTEMPTS {
                return Err(e);
            }
            attempt += 1;
            self.retries += 1;
        }
    }

    fn command_once<H: HostController + ?Sized>(
        &mut self,
        hc: &mut H,
        lun: u8,
        cdb: &[u8],
        data: &mut Data<'_>,
    ) -> Result<usize, BotError> {
        self.tag = self.tag.wrapping_add(1);
        let tag = self.tag;
        let expected = data.len() as u32;
        let block = cbw(tag, expected, matches!(data, Data::In(_)), lun, cdb);
        match hc.bulk_out(self.dev, self.ep_out, &block) {
            Ok(CBW_LEN) => {}
            Ok(_) => return Err(BotError::Usb(UsbError::Transaction)),
            Err(e) => return Err(e.into()),
        }
        let moved = match data {
            Data::None => 0,
            Data::In(b) => match hc.bulk_in(self.dev, self.ep_in, b) {
                Ok(n) => n,
                Err(UsbError::Stall) => {
                    clear_halt(hc, self.dev, self.ep_in)?;
                    0
                }
                Err(e) => return Err(e.into()),
            },
            Data::Out(b) => match hc.bulk_out(self.dev, self.ep_out, b) {
                Ok(n) => n,
                Err(UsbError::Stall) => {
                    clear_halt(hc, self.dev, self.ep_out)?;
                    0
                }
                Err(e) => return Err(e.into()),
            },
        };
        // A CSW buffer one byte too big lets an oversized CSW show (it would otherwise be
        // babble on some controllers, or silently truncated).
        let mut csw = [0u8; CSW_LEN + 1];
        let n = match hc.bulk_in(self.dev, self.ep_in, &mut csw) {
            Ok(n) => n,
            Err(UsbError::Stall) => {
                clear_halt(hc, self.dev, self.ep_in)?;
                hc.bulk_in(self.dev, self.ep_in, &mut csw)?
            }
            Err(e) => return Err(e.into()),
        };
        let (residue, status) = parse_csw(&csw[..n], tag, expected).map_err(BotError::BadCsw)?;
        match status {
            0 => Ok(moved.min((expected - residue.min(expected)) as usize)),
            1 => Err(BotError::CommandFailed),
            _ => Err(BotError::PhaseError),
        }
    }
}
