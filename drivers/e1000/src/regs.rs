//! 82540EM register offsets and bits (Intel PCI/PCI-X Family of Gigabit Ethernet
//! Controllers Software Developer's Manual, 8254x, §13), only those the driver uses.

pub const CTRL: usize = 0x0000;
pub const STATUS: usize = 0x0008;
pub const EERD: usize = 0x0014;
pub const ICR: usize = 0x00c0;
pub const IMS: usize = 0x00d0;
pub const IMC: usize = 0x00d8;
pub const RCTL: usize = 0x0100;
pub const TCTL: usize = 0x0400;
pub const TIPG: usize = 0x0410;
pub const RDBAL: usize = 0x2800;
pub const RDBAH: usize = 0x2804;
pub const RDLEN: usize = 0x2808;
pub const RDH: usize = 0x2810;
pub const RDT: usize = 0x2818;
pub const RDTR: usize = 0x2820;
pub const TDBAL: usize = 0x3800;
pub const TDBAH: usize = 0x3804;
pub const TDLEN: usize = 0x3808;
pub const TDH: usize = 0x3810;
pub const TDT: usize = 0x3818;
/// Multicast table array: 128 dwords.
pub const MTA: usize = 0x5200;
pub const RAL0: usize = 0x5400;
pub const RAH0: usize = 0x5404;

pub const CTRL_ASDE: u32 = 1 << 5;
pub const CTRL_SLU: u32 = 1 << 6;
pub const CTRL_ILOS: u32 = 1 << 7;
pub const CTRL_LRST: u32 = 1 << 3;
pub const CTRL_RST: u32 = 1 << 26;
pub const CTRL_VME: u32 = 1 << 30;
pub const CTRL_PHY_RST: u32 = 1 << 31;

pub const STATUS_FD: u32 = 1 << 0;
pub const STATUS_LU: u32 = 1 << 1;
pub const STATUS_SPEED_SHIFT: u32 = 6;

pub const EERD_START: u32 = 1 << 0;
pub const EERD_DONE: u32 = 1 << 4;

/// Interrupt causes (ICR/IMS/IMC).
pub const INT_TXDW: u32 = 1 << 0;
pub const INT_LSC: u32 = 1 << 2;
pub const INT_RXDMT0: u32 = 1 << 4;
pub const INT_RXO: u32 = 1 << 6;
pub const INT_RXT0: u32 = 1 << 7;

pub const RCTL_EN: u32 = 1 << 1;
pub const RCTL_BAM: u32 = 1 << 15;
/// Multicast promiscuous: IPv6 needs the all-nodes and solicited-node groups (router
/// advertisements, neighbour solicitations), and the filter table is not programmed.
pub const RCTL_MPE: u32 = 1 << 4;
/// Strip the Ethernet CRC from received frames.
pub const RCTL_SECRC: u32 = 1 << 26;
// BSIZE = 00 with BSEX = 0: 2048-byte receive buffers.

pub const TCTL_EN: u32 = 1 << 1;
pub const TCTL_PSP: u32 = 1 << 3;
pub const TCTL_CT_SHIFT: u32 = 4;
pub const TCTL_COLD_SHIFT: u32 = 12;
/// IPGT 10, IPGR1 8, IPGR2 6: the manual's values for IEEE 802.3 copper.
pub const TIPG_COPPER: u32 = 10 | (8 << 10) | (6 << 20);

pub const RAH_AV: u32 = 1 << 31;

/// Descriptor bits (the second quadword of both legacy descriptor formats).
pub const RXD_STAT_DD: u8 = 1 << 0;
pub const RXD_STAT_EOP: u8 = 1 << 1;
pub const TXD_CMD_EOP: u8 = 1 << 0;
pub const TXD_CMD_IFCS: u8 = 1 << 1;
pub const TXD_CMD_RS: u8 = 1 << 3;
pub const TXD_STAT_DD: u8 = 1 << 0;
