//! The kernel's one implementation of [`adros_hal`]: DMA memory from `mm::dma` (below
//! 4 GiB, reached through the linear map), register windows from `pci::map_bar_regs`
//! (memory BARs) and [`IoBar`] (I/O-port BARs: UHCI),
//! events on the scheduler's wait queues, the monotonic clock. The volatile accessors below
//! are this module's only `unsafe`.

use core::sync::atomic::{AtomicBool, Ordering};

use adros_hal::{Dma, Event, Hal, HalError, Mmio, PhysAddr};

use crate::mm::dma::DmaBuffer;
use crate::pci::BarRegs;
use crate::sched::wait::WaitQueue;

/// Port I/O for [`IoBar`]: x86_64's `in`/`out`. aarch64 has no I/O space of its own (a PCI
/// host bridge maps one into memory, and there is no PCI there yet): `IoBar::new` refuses
/// every window there, and these accessors, never reached, read as an empty bus (all ones)
/// and drop writes.
#[cfg(target_arch = "x86_64")]
use crate::arch::port_io;
#[cfg(not(target_arch = "x86_64"))]
#[allow(clippy::missing_safety_doc)]
mod port_io {
    pub unsafe fn in32(_: u16) -> u32 {
        u32::MAX
    }
    pub unsafe fn in16(_: u16) -> u16 {
        u16::MAX
    }
    pub unsafe fn in8(_: u16) -> u8 {
        u8::MAX
    }
    pub unsafe fn out32(_: u16, _: u32) {}
    pub unsafe fn out16(_: u16, _: u16) {}
    pub unsafe fn out8(_: u16, _: u8) {}
}

pub struct KernelHal;

pub struct KernelDma {
    buf: DmaBuffer,
}

impl KernelDma {
    /// The virtual address of `off..off + len`, after checking it lies inside the region.
    fn at(&self, off: usize, len: usize, align: usize) -> usize {
        assert!(
            off.is_multiple_of(align) && off.checked_add(len).is_some_and(|e| e <= self.buf.len()),
            "DMA access at {off:#x} (+{len}) outside {:#x} bytes",
            self.buf.len()
        );
        self.buf.virt() as usize + off
    }
}

impl Dma for KernelDma {
    fn phys(&self) -> PhysAddr {
        self.buf.phys()
    }

    fn len(&self) -> usize {
        self.buf.len()
    }

    fn read(&self, off: usize, dst: &mut [u8]) {
        let va = self.at(off, dst.len(), 1);
        // SAFETY: `at` checked that `va..va + dst.len()` lies inside this region, which the
        // linear map keeps mapped and which we own until drop; the device may write other
        // parts of it concurrently, but the driver reads only bytes the device has handed
        // back (after a descriptor's done bit and `dma_rmb`). `dst` is ordinary memory that
        // cannot overlap DMA memory we own.
        unsafe { core::ptr::copy_nonoverlapping(va as *const u8, dst.as_mut_ptr(), dst.len()) }
    }

    fn write(&mut self, off: usize, src: &[u8]) {
        let va = self.at(off, src.len(), 1);
        // SAFETY: as for `read`; the driver writes only bytes the device does not own.
        unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), va as *mut u8, src.len()) }
    }

    fn read_u32(&self, off: usize) -> u32 {
        let va = self.at(off, 4, 4);
        // SAFETY: aligned and inside the region (checked by `at`); volatile because the
        // device writes descriptor words behind the compiler's back.
        u32::from_le(unsafe { core::ptr::read_volatile(va as *const u32) })
    }

    fn write_u32(&mut self, off: usize, v: u32) {
        let va = self.at(off, 4, 4);
        // SAFETY: as for `read_u32`.
        unsafe { core::ptr::write_volatile(va as *mut u32, v.to_le()) }
    }

    fn read_u64(&self, off: usize) -> u64 {
        let va = self.at(off, 8, 8);
        // SAFETY: as for `read_u32`.
        u64::from_le(unsafe { core::ptr::read_volatile(va as *const u64) })
    }

    fn write_u64(&mut self, off: usize, v: u64) {
        let va = self.at(off, 8, 8);
        // SAFETY: as for `read_u32`.
        unsafe { core::ptr::write_volatile(va as *mut u64, v.to_le()) }
    }
}

impl Hal for KernelHal {
    type Dma = KernelDma;

    fn dma_alloc(&self, len: usize) -> Result<KernelDma, HalError> {
        let mut buf = DmaBuffer::alloc(len.max(1), 4096, 1 << 32).ok_or(HalError::NoMemory)?;
        buf.as_mut_slice().fill(0);
        Ok(KernelDma { buf })
    }

    fn now_ns(&self) -> u64 {
        crate::time::now_ns()
    }

    fn delay_us(&self, us: u64) {
        if us >= 1000 {
            crate::sched::sleep_ms(us.div_ceil(1000));
        } else {
            crate::time::spin_ns(us * 1000);
        }
    }
}

/// A memory BAR as an [`Mmio`] window (bounds-checked by [`BarRegs`]).
#[derive(Clone, Copy)]
pub struct Bar(pub BarRegs);

impl Mmio for Bar {
    fn read32(&self, off: usize) -> u32 {
        self.0.read32(off as u64)
    }

    fn write32(&self, off: usize, v: u32) {
        self.0.write32(off as u64, v)
    }

    fn read8(&self, off: usize) -> u8 {
        self.0.read8(off as u64)
    }

    fn write8(&self, off: usize, v: u8) {
        self.0.write8(off as u64, v)
    }

    fn read16(&self, off: usize) -> u16 {
        self.0.read16(off as u64)
    }

    fn write16(&self, off: usize, v: u16) {
        self.0.write16(off as u64, v)
    }

    fn len(&self) -> usize {
        self.0.len() as usize
    }
}

/// An I/O-port BAR as a register window: each access is one `in`/`out` of the width
/// asked for, at the BAR's base plus the offset (bounds-checked).
#[derive(Clone, Copy, Debug)]
pub struct IoBar {
    base: u16,
    len: u16,
}

impl IoBar {
    /// The window of an I/O BAR of `len` bytes at port `base`; None if it does not fit in
    /// the 64 KiB port space or is unassigned.
    pub fn new(base: u64, len: u64) -> Option<Self> {
        if !cfg!(target_arch = "x86_64") {
            log::warn!("hal: no I/O port space on this architecture (BAR at {base:#x})");
            return None;
        }
        if base == 0 || len == 0 || base.checked_add(len)? > 0x1_0000 {
            return None;
        }
        Some(IoBar {
            base: base as u16,
            len: len as u16,
        })
    }

    /// The port of `off..off + width`, after checking it lies inside the window.
    fn port(&self, off: usize, width: usize) -> u16 {
        assert!(
            off.is_multiple_of(width) && off + width <= usize::from(self.len),
            "I/O access at {off:#x} (+{width}) outside {:#x} bytes",
            self.len
        );
        self.base + off as u16
    }
}

impl Mmio for IoBar {
    fn read32(&self, off: usize) -> u32 {
        let p = self.port(off, 4);
        // SAFETY: `p` lies inside an I/O BAR that PCI enumeration found and the caller
        // claimed for its driver (`pci::claim`); a port read has no effect on memory.
        unsafe { port_io::in32(p) }
    }

    fn write32(&self, off: usize, v: u32) {
        let p = self.port(off, 4);
        // SAFETY: as for `read32`; the device's own registers, which may start DMA only
        // into memory its driver gave it.
        unsafe { port_io::out32(p, v) }
    }

    fn read16(&self, off: usize) -> u16 {
        let p = self.port(off, 2);
        // SAFETY: as for `read32`.
        unsafe { port_io::in16(p) }
    }

    fn write16(&self, off: usize, v: u16) {
        let p = self.port(off, 2);
        // SAFETY: as for `write32`.
        unsafe { port_io::out16(p, v) }
    }

    fn read8(&self, off: usize) -> u8 {
        let p = self.port(off, 1);
        // SAFETY: as for `read32`.
        unsafe { port_io::in8(p) }
    }

    fn write8(&self, off: usize, v: u8) {
        let p = self.port(off, 1);
        // SAFETY: as for `write32`.
        unsafe { port_io::out8(p, v) }
    }

    fn len(&self) -> usize {
        usize::from(self.len)
    }
}

/// An [`Event`] on a wait queue: `notify` may be called from an interrupt handler.
#[derive(Default)]
pub struct KernelEvent {
    pending: AtomicBool,
    wq: WaitQueue,
}

impl Event for KernelEvent {
    fn wait(&self, deadline_ns: Option<u64>) -> bool {
        self.wq
            .wait_until(|| self.pending.swap(false, Ordering::AcqRel), deadline_ns)
    }

    fn notify(&self) {
        self.pending.store(true, Ordering::Release);
        self.wq.wake_all();
    }
}
