//! TRB rings in DMA memory: a producer ring (command ring, transfer rings) closed by a Link
//! TRB with Toggle Cycle, and the consumer side of the event ring.

use adros_hal::{Dma, Hal, HalError, PhysAddr, dma_rmb, dma_wmb};
use xhci::ring::trb::Link;

/// TRBs per ring segment (one 4 KiB page); the last one of a producer ring is the Link TRB.
pub const TRBS: usize = 256;
pub const TRB_SIZE: usize = 16;
const CYCLE: u32 = 1;
const CHAIN: u32 = 1 << 4;

/// A producer ring: software writes TRBs, the controller consumes them.
pub struct Ring<D: Dma> {
    mem: D,
    enqueue: usize,
    cycle: bool,
}

impl<D: Dma> Ring<D> {
    pub fn new<H: Hal<Dma = D>>(hal: &H) -> Result<Self, HalError> {
        let mut mem = hal.dma_alloc(TRBS * TRB_SIZE)?;
        // The Link TRB back to the start, with Toggle Cycle; its cycle bit is written when
        // the producer reaches it.
        let mut link = Link::new();
        link.set_ring_segment_pointer(mem.phys()).set_toggle_cycle();
        let raw = link.into_raw();
        let off = (TRBS - 1) * TRB_SIZE;
        for (i, w) in raw.iter().enumerate() {
            mem.write_u32(off + 4 * i, w & !CYCLE);
        }
        Ok(Ring {
            mem,
            enqueue: 0,
            cycle: true,
        })
    }

    pub fn phys(&self) -> PhysAddr {
        self.mem.phys()
    }

    /// The producer cycle state (what the controller's dequeue cycle must be set to).
    pub fn cycle(&self) -> bool {
        self.cycle
    }

    /// The physical address the next TRB goes to.
    pub fn enqueue_ptr(&self) -> PhysAddr {
        self.mem.phys() + (self.enqueue * TRB_SIZE) as u64
    }

    /// Writes one TRB (its cycle bit replaced by the producer cycle state), the control
    /// word last so the controller never sees half a TRB; returns its address. Crossing
    /// the Link TRB hands it to the controller (chained when `trb` is chained, so a TD can
    /// span the wrap) and toggles the cycle state.
    pub fn push(&mut self, trb: [u32; 4]) -> PhysAddr {
        let off = self.enqueue * TRB_SIZE;
        let pa = self.mem.phys() + off as u64;
        let ctl = (trb[3] & !CYCLE) | u32::from(self.cycle);
        for (i, w) in trb.iter().take(3).enumerate() {
            self.mem.write_u32(off + 4 * i, *w);
        }
        dma_wmb();
        self.mem.write_u32(off + 12, ctl);
        self.enqueue += 1;
        if self.enqueue == TRBS - 1 {
            let loff = (TRBS - 1) * TRB_SIZE;
            let l = self.mem.read_u32(loff + 12) & !(CYCLE | CHAIN);
            dma_wmb();
            self.mem
                .write_u32(loff + 12, l | (trb[3] & CHAIN) | u32::from(self.cycle));
            self.enqueue = 0;
            self.cycle = !self.cycle;
        }
        pa
    }

    /// The raw TRB at ring index `i` (tests, diagnostics).
    pub fn trb(&self, i: usize) -> [u32; 4] {
        let off = i * TRB_SIZE;
        [0, 1, 2, 3].map(|w| self.mem.read_u32(off + 4 * w))
    }
}

/// The event ring (one segment) and its one-entry Event Ring Segment Table.
pub struct EventRing<D: Dma> {
    mem: D,
    erst: D,
    dequeue: usize,
    cycle: bool,
}

impl<D: Dma> EventRing<D> {
    pub fn new<H: Hal<Dma = D>>(hal: &H) -> Result<Self, HalError> {
        let mem = hal.dma_alloc(TRBS * TRB_SIZE)?;
        let mut erst = hal.dma_alloc(64)?;
        erst.write_u64(0, mem.phys());
        erst.write_u32(8, TRBS as u32);
        Ok(EventRing {
            mem,
            erst,
            dequeue: 0,
            cycle: true,
        })
    }

    pub fn erst_phys(&self) -> PhysAddr {
        self.erst.phys()
    }

    /// The dequeue pointer to report in ERDP.
    pub fn dequeue_ptr(&self) -> PhysAddr {
        self.mem.phys() + (self.dequeue * TRB_SIZE) as u64
    }

    /// The next event the controller wrote, if any.
    pub fn pop(&mut self) -> Option<[u32; 4]> {
        let off = self.dequeue * TRB_SIZE;
        let ctl = self.mem.read_u32(off + 12);
        if (ctl & CYCLE != 0) != self.cycle {
            return None;
        }
        dma_rmb();
        let trb = [
            self.mem.read_u32(off),
            self.mem.read_u32(off + 4),
            self.mem.read_u32(off + 8),
            ctl,
        ];
        self.dequeue += 1;
        if self.dequeue == TRBS {
            self.dequeue = 0;
            self.cycle = !self.cycle;
        }
        Some(trb)
    }
}
