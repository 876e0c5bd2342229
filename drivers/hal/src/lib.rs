#![cfg_attr(not(any(test, feature = "fake")), no_std)]
#![forbid(unsafe_code)]
//! The hardware a native driver may touch, as one small set of traits the kernel implements
//! once (`kernel/src/hal.rs` today) and host tests implement with fake register files.
//!
//! The shape follows `virtio-drivers`' `Hal` (which the kernel implements for virtio-blk in
//! `kernel/src/block/virtio/`): DMA memory with physical addresses, register access, time
//! — plus a wait/notify pair for interrupts. Unlike that trait it has no `unsafe fn`: a
//! driver never sees a raw pointer. DMA memory is reached through bounds-checked copies and
//! volatile little-endian word accessors ([`Dma`]), registers through [`Mmio`], so driver
//! crates can `forbid(unsafe_code)` and run their tests on the host.
//!
//! What is deliberately missing: sharing arbitrary caller memory with a device (drivers copy
//! into DMA memory they allocated: a packet or a USB transfer is small next to the cost of
//! pinning and translating pages), cache maintenance (x86 DMA is coherent; an architecture
//! that needs it would add `sync_for_device`/`sync_for_cpu` here), and MSI (INTx only).
//!
//! Ordering: [`Dma`] word writes are volatile and [`Mmio`] accesses are device accesses; a
//! driver that hands memory to the device writes the memory first and the doorbell register
//! second, with [`dma_wmb`] between them (a compiler/CPU fence; on x86 a store fence is not
//! needed for write-back memory against uncached MMIO, but the fence keeps the compiler from
//! reordering and documents the intent for other architectures).

use core::sync::atomic::{Ordering, fence};

/// A physical address as a device sees it (bus address; equal to the CPU's physical address
/// on the machines AdrOS runs on: no IOMMU).
pub type PhysAddr = u64;

/// Why a HAL request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HalError {
    /// No DMA memory (or none below the device's address limit).
    NoMemory,
}

/// Physically contiguous memory a device may read and write: zeroed when allocated, freed
/// when dropped. Offsets are checked: an access outside the region panics in the caller's
/// logic (a driver bug, never input-dependent when the driver validates device-supplied
/// indices first).
pub trait Dma: Send {
    /// The bus address of byte 0.
    fn phys(&self) -> PhysAddr;
    /// Size in bytes (at least what was asked for).
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Copies `dst.len()` bytes from offset `off` into `dst`.
    fn read(&self, off: usize, dst: &mut [u8]);
    /// Copies `src` to offset `off`.
    fn write(&mut self, off: usize, src: &[u8]);
    /// A volatile little-endian load of the naturally aligned word at `off` (descriptor
    /// fields the device writes behind our back).
    fn read_u32(&self, off: usize) -> u32;
    fn write_u32(&mut self, off: usize, v: u32);
    /// As [`Dma::read_u32`], 64 bits (8-byte aligned).
    fn read_u64(&self, off: usize) -> u64;
    fn write_u64(&mut self, off: usize, v: u64);
}

/// A device's register window: a memory BAR, or an I/O-port BAR (UHCI), where each
/// access is one port access of its width. Offsets are bytes from the window's start; an
/// access outside it panics (a driver bug).
pub trait Mmio: Send + Sync {
    fn read32(&self, off: usize) -> u32;
    fn write32(&self, off: usize, v: u32);
    /// An 8-bit register (HD Audio's CORBCTL, stream descriptor control bytes …). The
    /// default reads the aligned 32-bit word and extracts the byte: right for host fakes
    /// and for registers without read side effects; the kernel's BAR window overrides it
    /// with a real byte access.
    fn read8(&self, off: usize) -> u8 {
        (self.read32(off & !3) >> ((off & 3) * 8)) as u8
    }
    /// As [`Mmio::read8`], 16 bits at an even offset.
    fn read16(&self, off: usize) -> u16 {
        (self.read32(off & !3) >> ((off & 2) * 8)) as u16
    }
    /// An 8-bit register write. The default is a read-modify-write of the aligned word,
    /// which is wrong for neighbours with write-1-to-clear bits: implementations that talk
    /// to hardware override it with a real byte access (the kernel's does).
    fn write8(&self, off: usize, v: u8) {
        let shift = (off & 3) * 8;
        let w = self.read32(off & !3) & !(0xff << shift);
        self.write32(off & !3, w | (u32::from(v) << shift));
    }
    /// As [`Mmio::write8`], 16 bits at an even offset.
    fn write16(&self, off: usize, v: u16) {
        let shift = (off & 2) * 8;
        let w = self.read32(off & !3) & !(0xffff << shift);
        self.write32(off & !3, w | (u32::from(v) << shift));
    }
    /// Size of the window in bytes.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A wake-up source for a driver's service thread: the interrupt handler (or anyone with
/// work for the device) calls [`Event::notify`]; the thread blocks in [`Event::wait`].
/// A notify with nobody waiting is remembered until the next wait returns.
pub trait Event: Send + Sync {
    /// Blocks until notified or until the monotonic clock passes `deadline_ns` (None: no
    /// deadline). True if notified.
    fn wait(&self, deadline_ns: Option<u64>) -> bool;
    fn notify(&self);
}

/// The services a driver gets from the kernel (or from a host test).
pub trait Hal: Send + Sync {
    type Dma: Dma;
    /// `len` bytes of zeroed, physically contiguous DMA memory, page-aligned, entirely below
    /// 4 GiB (every device AdrOS drives so far can address that; 64-bit-capable devices
    /// lose nothing).
    fn dma_alloc(&self, len: usize) -> Result<Self::Dma, HalError>;
    /// The monotonic clock in nanoseconds.
    fn now_ns(&self) -> u64;
    /// Waits at least `us` microseconds (may sleep; drivers call it only outside interrupt
    /// context).
    fn delay_us(&self, us: u64);
}

/// Orders the driver's writes to DMA memory before a following doorbell register write.
pub fn dma_wmb() {
    fence(Ordering::Release);
}

/// Orders a read of a device-written status (a descriptor's done bit) before the reads of
/// the data it guards.
pub fn dma_rmb() {
    fence(Ordering::Acquire);
}

/// Upper limit of a controller's register handshakes (halt, reset, start, port reset, an
/// async-advance doorbell): microseconds on hardware, but an emulated controller on a loaded
/// host can take far longer (QEMU's EHCI missed a 100 ms start limit under load). Polling
/// ends as soon as the condition holds, so the long limit costs nothing when all is well.
pub const HANDSHAKE_US: u64 = 1_000_000;

/// Polls `cond` until it holds or `timeout_us` passes, sleeping `step_us` between tries.
/// True if it held. For short register handshakes (reset, EEPROM reads).
pub fn poll_until<H: Hal + ?Sized>(
    hal: &H,
    timeout_us: u64,
    step_us: u64,
    mut cond: impl FnMut() -> bool,
) -> bool {
    let deadline = hal.now_ns().saturating_add(timeout_us.saturating_mul(1000));
    loop {
        if cond() {
            return true;
        }
        if hal.now_ns() >= deadline {
            return cond();
        }
        hal.delay_us(step_us.max(1));
    }
}

/// A [`Dma`] region in ordinary memory with a made-up physical address, for host tests of
/// drivers (a fake device reads and writes it by physical address through [`FakeMemory`]).
#[cfg(any(test, feature = "fake"))]
pub mod fake;
