//! Host doubles: a [`FakeHal`] whose DMA regions live in ordinary memory at made-up
//! physical addresses, visible to a fake device through [`FakeMemory`], and a clock that
//! advances only when the driver waits (so timeouts are deterministic and instant).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::{Dma, Hal, HalError, PhysAddr};

type Region = Arc<Mutex<Vec<u8>>>;

/// Every live fake DMA region by physical base address: what a fake device "sees" on the bus.
#[derive(Clone, Default)]
pub struct FakeMemory {
    regions: Arc<Mutex<BTreeMap<PhysAddr, Region>>>,
}

impl FakeMemory {
    fn find(&self, pa: PhysAddr, len: usize) -> Option<(Region, usize)> {
        let m = self.regions.lock().unwrap();
        let (&base, r) = m.range(..=pa).next_back()?;
        let off = (pa - base) as usize;
        let fits = off
            .checked_add(len)
            .is_some_and(|e| e <= r.lock().unwrap().len());
        fits.then(|| (r.clone(), off))
    }

    /// Device read of `dst.len()` bytes at `pa`; false (a bus error) outside every region.
    pub fn read(&self, pa: PhysAddr, dst: &mut [u8]) -> bool {
        match self.find(pa, dst.len()) {
            Some((r, off)) => {
                dst.copy_from_slice(&r.lock().unwrap()[off..off + dst.len()]);
                true
            }
            None => false,
        }
    }

    /// Device write; false outside every region.
    pub fn write(&self, pa: PhysAddr, src: &[u8]) -> bool {
        match self.find(pa, src.len()) {
            Some((r, off)) => {
                r.lock().unwrap()[off..off + src.len()].copy_from_slice(src);
                true
            }
            None => false,
        }
    }

    /// How many regions are allocated (leak checks).
    pub fn regions(&self) -> usize {
        self.regions.lock().unwrap().len()
    }
}

pub struct FakeDma {
    phys: PhysAddr,
    buf: Region,
    mem: FakeMemory,
}

impl Drop for FakeDma {
    fn drop(&mut self) {
        self.mem.regions.lock().unwrap().remove(&self.phys);
    }
}

impl Dma for FakeDma {
    fn phys(&self) -> PhysAddr {
        self.phys
    }
    fn len(&self) -> usize {
        self.buf.lock().unwrap().len()
    }
    fn read(&self, off: usize, dst: &mut [u8]) {
        dst.copy_from_slice(&self.buf.lock().unwrap()[off..off + dst.len()]);
    }
    fn write(&mut self, off: usize, src: &[u8]) {
        self.buf.lock().unwrap()[off..off + src.len()].copy_from_slice(src);
    }
    fn read_u32(&self, off: usize) -> u32 {
        assert_eq!(off % 4, 0);
        let mut b = [0; 4];
        self.read(off, &mut b);
        u32::from_le_bytes(b)
    }
    fn write_u32(&mut self, off: usize, v: u32) {
        assert_eq!(off % 4, 0);
        self.write(off, &v.to_le_bytes());
    }
    fn read_u64(&self, off: usize) -> u64 {
        assert_eq!(off % 8, 0);
        let mut b = [0; 8];
        self.read(off, &mut b);
        u64::from_le_bytes(b)
    }
    fn write_u64(&mut self, off: usize, v: u64) {
        assert_eq!(off % 8, 0);
        self.write(off, &v.to_le_bytes());
    }
}

/// The fake HAL: regions at increasing page-aligned addresses from 1 MiB, a clock that
/// `delay_us` advances.
#[derive(Clone)]
pub struct FakeHal {
    pub mem: FakeMemory,
    next: Arc<AtomicU64>,
    clock: Arc<AtomicU64>,
    /// Fails every allocation once this many have succeeded (None: never).
    pub alloc_limit: Option<u64>,
    allocs: Arc<AtomicU64>,
}

impl Default for FakeHal {
    fn default() -> Self {
        Self {
            mem: FakeMemory::default(),
            next: Arc::new(AtomicU64::new(1 << 20)),
            clock: Arc::new(AtomicU64::new(0)),
            alloc_limit: None,
            allocs: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl FakeHal {
    /// A HAL whose allocations fail after the first `n`.
    pub fn with_alloc_limit(n: u64) -> Self {
        Self {
            alloc_limit: Some(n),
            ..Self::default()
        }
    }
}

impl Hal for FakeHal {
    type Dma = FakeDma;
    fn dma_alloc(&self, len: usize) -> Result<FakeDma, HalError> {
        let n = self.allocs.fetch_add(1, Ordering::Relaxed);
        if self.alloc_limit.is_some_and(|l| n >= l) {
            return Err(HalError::NoMemory);
        }
        let size = len.max(1).next_multiple_of(4096);
        let phys = self.next.fetch_add(size as u64 + 4096, Ordering::Relaxed);
        let buf = Arc::new(Mutex::new(vec![0u8; size]));
        self.mem.regions.lock().unwrap().insert(phys, buf.clone());
        Ok(FakeDma {
            phys,
            buf,
            mem: self.mem.clone(),
        })
    }
    fn now_ns(&self) -> u64 {
        self.clock.load(Ordering::Relaxed)
    }
    fn delay_us(&self, us: u64) {
        self.clock.fetch_add(us * 1000, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_sees_driver_writes_by_physical_address() {
        let hal = FakeHal::default();
        let mut a = hal.dma_alloc(100).unwrap();
        let b = hal.dma_alloc(5000).unwrap();
        assert_eq!(a.len(), 4096);
        assert_eq!(b.len(), 8192);
        a.write_u32(8, 0xdead_beef);
        let mut w = [0; 4];
        assert!(hal.mem.read(a.phys() + 8, &mut w));
        assert_eq!(u32::from_le_bytes(w), 0xdead_beef);
        assert!(hal.mem.write(b.phys() + 8188, &[1, 2, 3, 4]));
        assert!(
            !hal.mem.write(b.phys() + 8190, &[1, 2, 3, 4]),
            "crosses the end"
        );
        let mut r = [0; 4];
        b.read(8188, &mut r);
        assert_eq!(r, [1, 2, 3, 4]);
        drop(a);
        assert_eq!(hal.mem.regions(), 1);
    }

    #[test]
    fn poll_until_times_out_on_the_fake_clock() {
        let hal = FakeHal::default();
        assert!(!crate::poll_until(&hal, 1000, 10, || false));
        assert!(hal.now_ns() >= 1_000_000);
        let mut n = 0;
        assert!(crate::poll_until(&hal, 1000, 10, || {
            n += 1;
            n == 3
        }));
    }
}
