#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
//! Intel 82540EM (QEMU's `e1000`, PCI 8086:100e): reset, MAC address from the EEPROM (or
//! the receive address registers when the EEPROM does not answer), legacy receive and
//! transmit descriptor rings, interrupt causes and link state — written against
//! [`adros_hal`], so the same code runs in the kernel and against the fake register file of
//! the host tests. [`phy`] makes it a `smoltcp` device.
//!
//! Rings: [`RX_RING`] receive descriptors with 2048-byte buffers (CRC stripped, no jumbo
//! frames: a frame always fits one buffer; a descriptor without end-of-packet, with an
//! error bit, or with an impossible length is counted and dropped), [`TX_RING`] transmit
//! descriptors with one 2048-byte buffer each (frames are copied in; the hardware adds the
//! CRC). Completed transmit descriptors are reclaimed lazily when a new frame needs room.
//!
//! Interrupts: the kernel's handler reads ICR itself through [`E1000::ack`] (read-to-clear
//! deasserts the level-triggered line) without the driver's lock, hands the cause to
//! [`E1000::note_interrupt`] later, and wakes the thread that services the rings.

extern crate alloc;

use alloc::vec::Vec;

use adros_hal::{Dma, Hal, HalError, Mmio, dma_rmb, dma_wmb, poll_until};

pub mod phy;
pub mod regs;
#[cfg(test)]
mod tests;

use regs::*;

pub const VENDOR_ID: u16 = 0x8086;
/// 82540EM: the only model QEMU's `-device e1000` emulates.
pub const DEVICE_ID: u16 = 0x100e;

pub const RX_RING: usize = 256;
pub const TX_RING: usize = 128;
const BUF: usize = 2048;
const DESC: usize = 16;
/// The longest frame handed to the hardware without its CRC (1500-byte MTU + header).
pub const MAX_FRAME: usize = 1514;
/// The shortest frame worth passing up (an Ethernet header).
const MIN_FRAME: usize = 14;
/// The interrupt causes the driver enables.
pub const INTERRUPTS: u32 = INT_LSC | INT_RXT0 | INT_RXDMT0 | INT_RXO | INT_TXDW;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The device did not come out of reset within 10 ms.
    ResetTimeout,
    /// Neither the EEPROM nor RAL/RAH hold a usable unicast address.
    NoMac,
    /// The register window is smaller than the 82540EM's 128 KiB.
    SmallBar,
    Dma(HalError),
}

impl From<HalError> for Error {
    fn from(e: HalError) -> Self {
        Error::Dma(e)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxError {
    /// Every descriptor is in use; try again after a TXDW interrupt.
    Full,
    /// Longer than [`MAX_FRAME`] or shorter than an Ethernet header.
    BadLength,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Link {
    pub up: bool,
    /// 10, 100 or 1000.
    pub mbps: u32,
    pub full_duplex: bool,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    /// Descriptors with an error bit, no end-of-packet or an impossible length.
    pub rx_dropped: u64,
    /// Receive overruns the device reported (RXO: the ring was full).
    pub rx_overruns: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// Frames refused because the ring was full or their length was wrong.
    pub tx_dropped: u64,
    pub interrupts: u64,
    pub link_changes: u64,
}

pub struct E1000<H: Hal, M: Mmio> {
    hal: H,
    regs: M,
    mac: [u8; 6],
    /// Where the MAC address came from: "eeprom" or "ral".
    mac_source: &'static str,
    rx_ring: H::Dma,
    rx_bufs: H::Dma,
    /// The next receive descriptor the device will complete.
    rx_next: usize,
    /// Dropping the rest of a frame that spans descriptors.
    rx_discard: bool,
    tx_ring: H::Dma,
    tx_bufs: H::Dma,
    /// The next free transmit descriptor (what TDT is set past).
    tx_tail: usize,
    /// The oldest descriptor not yet reclaimed.
    tx_clean: usize,
    tx_used: usize,
    link: Link,
    stats: Stats,
}

impl<H: Hal, M: Mmio> E1000<H, M> {
    /// Resets the device and brings it up: MAC address, rings, receiver and transmitter on,
    /// interrupts enabled. The caller has enabled memory decode and bus mastering.
    pub fn new(hal: H, regs: M) -> Result<Self, Error> {
        if regs.len() < 0x20000 {
            return Err(Error::SmallBar);
        }
        regs.write32(IMC, !0);
        regs.write32(CTRL, regs.read32(CTRL) | CTRL_RST);
        hal.delay_us(10);
        if !poll_until(&hal, 10_000, 10, || regs.read32(CTRL) & CTRL_RST == 0) {
            return Err(Error::ResetTimeout);
        }
        regs.write32(IMC, !0);
        let _ = regs.read32(ICR);

        let (mac, mac_source) = match read_eeprom_mac(&hal, &regs) {
            Some(m) if usable(&m) => (m, "eeprom"),
            _ => {
                let lo = regs.read32(RAL0).to_le_bytes();
                let hi = regs.read32(RAH0).to_le_bytes();
                let m = [lo[0], lo[1], lo[2], lo[3], hi[0], hi[1]];
                if !usable(&m) {
                    return Err(Error::NoMac);
                }
                (m, "ral")
            }
        };
        regs.write32(RAL0, u32::from_le_bytes([mac[0], mac[1], mac[2], mac[3]]));
        regs.write32(RAH0, u32::from(mac[4]) | (u32::from(mac[5]) << 8) | RAH_AV);
        for i in 0..128 {
            regs.write32(MTA + 4 * i, 0);
        }
        let ctrl = regs.read32(CTRL);
        regs.write32(
            CTRL,
            (ctrl | CTRL_SLU | CTRL_ASDE) & !(CTRL_LRST | CTRL_PHY_RST | CTRL_ILOS | CTRL_VME),
        );

        let mut rx_ring = hal.dma_alloc(RX_RING * DESC)?;
        let rx_bufs = hal.dma_alloc(RX_RING * BUF)?;
        for i in 0..RX_RING {
            rx_ring.write_u64(i * DESC, rx_bufs.phys() + (i * BUF) as u64);
            rx_ring.write_u64(i * DESC + 8, 0);
        }
        let mut tx_ring = hal.dma_alloc(TX_RING * DESC)?;
        let tx_bufs = hal.dma_alloc(TX_RING * BUF)?;
        for i in 0..TX_RING {
            tx_ring.write_u64(i * DESC, tx_bufs.phys() + (i * BUF) as u64);
            // Done, so the first reclaim pass sees free descriptors.
            tx_ring.write_u64(i * DESC + 8, u64::from(TXD_STAT_DD) << 32);
        }
        dma_wmb();

        regs.write32(RDBAL, rx_ring.phys() as u32);
        regs.write32(RDBAH, (rx_ring.phys() >> 32) as u32);
        regs.write32(RDLEN, (RX_RING * DESC) as u32);
        regs.write32(RDH, 0);
        regs.write32(RDT, (RX_RING - 1) as u32);
        regs.write32(RDTR, 0);
        regs.write32(RCTL, RCTL_EN | RCTL_BAM | RCTL_MPE | RCTL_SECRC);

        regs.write32(TDBAL, tx_ring.phys() as u32);
        regs.write32(TDBAH, (tx_ring.phys() >> 32) as u32);
        regs.write32(TDLEN, (TX_RING * DESC) as u32);
        regs.write32(TDH, 0);
        regs.write32(TDT, 0);
        regs.write32(TIPG, TIPG_COPPER);
        regs.write32(
            TCTL,
            TCTL_EN | TCTL_PSP | (0x10 << TCTL_CT_SHIFT) | (0x40 << TCTL_COLD_SHIFT),
        );

        let mut dev = Self {
            hal,
            regs,
            mac,
            mac_source,
            rx_ring,
            rx_bufs,
            rx_next: 0,
            rx_discard: false,
            tx_ring,
            tx_bufs,
            tx_tail: 0,
            tx_clean: 0,
            tx_used: 0,
            link: Link::default(),
            stats: Stats::default(),
        };
        dev.link = dev.read_link();
        dev.regs.write32(IMS, INTERRUPTS);
        Ok(dev)
    }

    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    pub fn mac_source(&self) -> &'static str {
        self.mac_source
    }

    pub fn link(&self) -> Link {
        self.link
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    pub fn hal(&self) -> &H {
        &self.hal
    }

    /// Reads and so clears the interrupt causes: what the interrupt handler calls (it needs
    /// only the register window, not the driver). 0: the interrupt was not ours.
    pub fn ack(regs: &M) -> u32 {
        regs.read32(ICR)
    }

    /// Accounts for causes read by [`E1000::ack`]: re-reads the link on LSC, counts
    /// overruns. Returns true if the link changed.
    pub fn note_interrupt(&mut self, icr: u32) -> bool {
        if icr == 0 {
            return false;
        }
        self.stats.interrupts += 1;
        if icr & INT_RXO != 0 {
            self.stats.rx_overruns += 1;
        }
        if icr & INT_LSC != 0 {
            let l = self.read_link();
            if l != self.link {
                self.link = l;
                self.stats.link_changes += 1;
                return true;
            }
        }
        false
    }

    fn read_link(&self) -> Link {
        let s = self.regs.read32(STATUS);
        Link {
            up: s & STATUS_LU != 0,
            mbps: match (s >> STATUS_SPEED_SHIFT) & 3 {
                0 => 10,
                1 => 100,
                _ => 1000,
            },
            full_duplex: s & STATUS_FD != 0,
        }
    }

    /// The next received frame (without CRC), if the device has completed one. Bad
    /// descriptors are recycled and skipped.
    pub fn receive(&mut self) -> Option<Vec<u8>> {
        loop {
            let i = self.rx_next;
            let hi = self.rx_ring.read_u64(i * DESC + 8);
            let status = (hi >> 32) as u8;
            if status & RXD_STAT_DD == 0 {
                return None;
            }
            dma_rmb();
            let len = (hi & 0xffff) as usize;
            let errors = (hi >> 40) as u8;
            let eop = status & RXD_STAT_EOP != 0;
            let good = eop && !self.rx_discard && errors == 0 && (MIN_FRAME..=BUF).contains(&len);
            let frame = good.then(|| {
                let mut v = alloc::vec![0u8; len];
                self.rx_bufs.read(i * BUF, &mut v);
                v
            });
            self.rx_discard = !eop;
            // Give the descriptor back: clear its status, then move the tail onto it.
            self.rx_ring.write_u64(i * DESC + 8, 0);
            dma_wmb();
            self.regs.write32(RDT, i as u32);
            self.rx_next = (i + 1) % RX_RING;
            match frame {
                Some(f) => {
                    self.stats.rx_packets += 1;
                    self.stats.rx_bytes += f.len() as u64;
                    return Some(f);
                }
                None => self.stats.rx_dropped += 1,
            }
        }
    }

    /// Whether a completed receive descriptor is waiting.
    pub fn rx_pending(&self) -> bool {
        (self.rx_ring.read_u64(self.rx_next * DESC + 8) >> 32) as u8 & RXD_STAT_DD != 0
    }

    /// Reclaims transmit descriptors the device has finished with.
    fn reclaim(&mut self) {
        while self.tx_used > 0 {
            let hi = self.tx_ring.read_u64(self.tx_clean * DESC + 8);
            if (hi >> 32) as u8 & TXD_STAT_DD == 0 {
                break;
            }
            self.tx_clean = (self.tx_clean + 1) % TX_RING;
            self.tx_used -= 1;
        }
    }

    /// Whether [`E1000::transmit`] has a free descriptor (one always stays empty so that
    /// head == tail means an idle ring).
    pub fn can_transmit(&mut self) -> bool {
        self.reclaim();
        self.tx_used < TX_RING - 1
    }

    /// Queues a frame of `len` bytes (Ethernet header onwards, no CRC) that `fill` writes.
    pub fn transmit<R>(
        &mut self,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<R, TxError> {
        if !(MIN_FRAME..=MAX_FRAME).contains(&len) {
            self.stats.tx_dropped += 1;
            return Err(TxError::BadLength);
        }
        if !self.can_transmit() {
            self.stats.tx_dropped += 1;
            return Err(TxError::Full);
        }
        let mut frame = alloc::vec![0u8; len];
        let r = fill(&mut frame);
        let i = self.tx_tail;
        self.tx_bufs.write(i * BUF, &frame);
        let cmd = TXD_CMD_EOP | TXD_CMD_IFCS | TXD_CMD_RS;
        self.tx_ring
            .write_u64(i * DESC + 8, len as u64 | (u64::from(cmd) << 24));
        dma_wmb();
        self.tx_tail = (i + 1) % TX_RING;
        self.tx_used += 1;
        self.regs.write32(TDT, self.tx_tail as u32);
        self.stats.tx_packets += 1;
        self.stats.tx_bytes += len as u64;
        Ok(r)
    }

    /// Masks every interrupt and stops both rings (before the memory is freed on drop).
    pub fn shutdown(&mut self) {
        self.regs.write32(IMC, !0);
        self.regs.write32(RCTL, 0);
        self.regs.write32(TCTL, 0);
        let _ = self.regs.read32(ICR);
    }
}

impl<H: Hal, M: Mmio> Drop for E1000<H, M> {
    fn drop(&mut self) {
        // The rings' memory is freed after this: the device must not touch it any more.
        self.shutdown();
        self.regs.write32(CTRL, self.regs.read32(CTRL) | CTRL_RST);
    }
}

/// A unicast, non-zero address.
fn usable(m: &[u8; 6]) -> bool {
    m.iter().any(|&b| b != 0) && m[0] & 1 == 0
}

/// Words 0–2 of the EEPROM through EERD; None if a read does not complete in 1 ms.
fn read_eeprom_mac<H: Hal, M: Mmio>(hal: &H, regs: &M) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    for w in 0..3u32 {
        regs.write32(EERD, (w << 8) | EERD_START);
        let mut v = 0;
        if !poll_until(hal, 1000, 1, || {
            v = regs.read32(EERD);
            v & EERD_DONE != 0
        }) {
            return None;
        }
        let word = (v >> 16) as u16;
        mac[w as usize * 2..w as usize * 2 + 2].copy_from_slice(&word.to_le_bytes());
    }
    Some(mac)
}
