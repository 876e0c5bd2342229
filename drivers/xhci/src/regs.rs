//! Register offsets and bits (xHCI 1.2 §5). Capability registers are at the window's start,
//! operational registers at CAPLENGTH, runtime registers at RTSOFF, doorbells at DBOFF.

pub const CAPLENGTH: usize = 0x00;
pub const HCSPARAMS1: usize = 0x04;
pub const HCSPARAMS2: usize = 0x08;
pub const HCCPARAMS1: usize = 0x10;
pub const DBOFF: usize = 0x14;
pub const RTSOFF: usize = 0x18;
pub const HCCPARAMS1_CSZ: u32 = 1 << 2;

// Operational.
pub const USBCMD: usize = 0x00;
pub const USBSTS: usize = 0x04;
pub const PAGESIZE: usize = 0x08;
pub const CRCR: usize = 0x18;
pub const DCBAAP: usize = 0x30;
pub const CONFIG: usize = 0x38;
pub const PORTSC_BASE: usize = 0x400;

pub const USBCMD_RS: u32 = 1 << 0;
pub const USBCMD_HCRST: u32 = 1 << 1;
pub const USBCMD_INTE: u32 = 1 << 2;
pub const USBSTS_HCH: u32 = 1 << 0;
pub const USBSTS_HSE: u32 = 1 << 2;
pub const USBSTS_EINT: u32 = 1 << 3;
pub const USBSTS_CNR: u32 = 1 << 11;
pub const USBSTS_HCE: u32 = 1 << 12;
pub const CRCR_CA: u64 = 1 << 2;

pub const PORTSC_CCS: u32 = 1 << 0;
pub const PORTSC_PED: u32 = 1 << 1;
pub const PORTSC_PR: u32 = 1 << 4;
pub const PORTSC_PP: u32 = 1 << 9;
pub const PORTSC_WPR: u32 = 1 << 31;
/// CSC, PEC, WRC, OCC, PRC, PLC, CEC: write 1 to clear.
pub const PORTSC_CHANGES: u32 = 0x00fe_0000;
/// The bits written back unchanged when writing PORTSC (Linux's `xhci_port_state_to_neutral`:
/// read-only and read/write-preserve bits — CCS, OCA, speed, DR, PLS, PP, PIC, the wake
/// enables); PED and the change bits are deliberately 0 (writing 1 disables / clears).
pub const PORTSC_KEEP: u32 =
    (1 << 0) | (1 << 3) | (0xf << 10) | (1 << 30) | (0xf << 5) | (1 << 9) | (3 << 14) | (7 << 25);

// Interrupter register set (runtime + 0x20 + 32 × n).
pub const IMAN: usize = 0x00;
pub const IMOD: usize = 0x04;
pub const ERSTSZ: usize = 0x08;
pub const ERSTBA: usize = 0x10;
pub const ERDP: usize = 0x18;
pub const IMAN_IP: u32 = 1 << 0;
pub const IMAN_IE: u32 = 1 << 1;
pub const ERDP_EHB: u64 = 1 << 3;

// Extended capability ids.
pub const XECP_LEGACY: u32 = 1;
pub const XECP_PROTOCOL: u32 = 2;
pub const LEGSUP_BIOS_OWNED: u32 = 1 << 16;
pub const LEGSUP_OS_OWNED: u32 = 1 << 24;
