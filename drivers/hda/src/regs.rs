//! Controller registers (HD Audio 1.0a, section 3.3): offsets into the memory BAR and the
//! bits the driver uses. Sizes matter: QEMU's `intel-hda` decodes each register at its own
//! offset and width, so byte registers are accessed as bytes.

pub const GCAP: usize = 0x00; // 16
pub const VMAJ: usize = 0x03; // 8
pub const GCTL: usize = 0x08; // 32
pub const STATESTS: usize = 0x0e; // 16
pub const INTCTL: usize = 0x20; // 32
pub const INTSTS: usize = 0x24; // 32
pub const CORBLBASE: usize = 0x40;
pub const CORBUBASE: usize = 0x44;
pub const CORBWP: usize = 0x48; // 16
pub const CORBRP: usize = 0x4a; // 16
pub const CORBCTL: usize = 0x4c; // 8
pub const CORBSIZE: usize = 0x4e; // 8
pub const RIRBLBASE: usize = 0x50;
pub const RIRBUBASE: usize = 0x54;
pub const RIRBWP: usize = 0x58; // 16
pub const RINTCNT: usize = 0x5a; // 16
pub const RIRBCTL: usize = 0x5c; // 8
pub const RIRBSTS: usize = 0x5d; // 8
pub const RIRBSIZE: usize = 0x5e; // 8

pub const GCTL_CRST: u32 = 1 << 0;
pub const INTCTL_GIE: u32 = 1 << 31;
pub const CORBRP_RST: u16 = 1 << 15;
pub const CORBCTL_RUN: u8 = 1 << 1;
pub const RIRBWP_RST: u16 = 1 << 15;
/// RIRBCTL: interrupt on response count (RINTCTL) and DMA enable.
pub const RIRBCTL_RINTCTL: u8 = 1 << 0;
pub const RIRBCTL_DMAEN: u8 = 1 << 1;
/// RIRBSTS: response interrupt flag and overrun, both write-1-to-clear.
pub const RIRBSTS_CLEAR: u8 = 0x05;

/// Stream descriptor `i` (inputs first, then outputs, then bidirectional).
pub const fn sd(i: usize) -> usize {
    0x80 + 0x20 * i
}
pub const SD_CTL: usize = 0x00; // 24 bits (accessed as 32 with the status byte zero)
pub const SD_STS: usize = 0x03; // 8
pub const SD_LPIB: usize = 0x04;
pub const SD_CBL: usize = 0x08;
pub const SD_LVI: usize = 0x0c; // 16
pub const SD_FMT: usize = 0x12; // 16
pub const SD_BDPL: usize = 0x18;
pub const SD_BDPU: usize = 0x1c;

pub const SD_CTL_SRST: u32 = 1 << 0;
pub const SD_CTL_RUN: u32 = 1 << 1;
pub const SD_CTL_IOCE: u32 = 1 << 2;
pub const SD_CTL_FEIE: u32 = 1 << 3;
pub const SD_CTL_DEIE: u32 = 1 << 4;
pub const SD_CTL_STRM_SHIFT: u32 = 20;
pub const SD_STS_BCIS: u8 = 1 << 2;
pub const SD_STS_FIFOE: u8 = 1 << 3;
pub const SD_STS_DESE: u8 = 1 << 4;
pub const SD_STS_ALL: u8 = SD_STS_BCIS | SD_STS_FIFOE | SD_STS_DESE;

/// The register window must reach the last stream descriptor the driver may use.
pub const MIN_WINDOW: usize = 0x80;
