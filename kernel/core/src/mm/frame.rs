//! Physical frame allocator: one bit per 4 KiB frame over all RAM the boot memory map
//! reports (no cap), next-fit for single frames and a first-fit scan for physically
//! contiguous, aligned runs under an address limit (DMA).

pub const FRAME_SIZE: u64 = 4096;

/// Bitmap over frames `0..nframes`; a set bit means "in use" (or not RAM).
pub struct FrameBitmap<S: AsMut<[u64]> + AsRef<[u64]>> {
    words: S,
    nframes: usize,
    free: usize,
    hint: usize,
}

impl<S: AsMut<[u64]> + AsRef<[u64]>> FrameBitmap<S> {
    /// Wraps `words` with every frame marked in use; callers then free the usable ranges.
    pub fn new_all_used(mut words: S, nframes: usize) -> Self {
        for w in words.as_mut().iter_mut() {
            *w = !0;
        }
        assert!(words.as_ref().len() * 64 >= nframes, "bitmap too small");
        Self {
            words,
            nframes,
            free: 0,
            hint: 0,
        }
    }

    /// Rebuilds the allocator view over storage that already holds a bitmap.
    pub fn from_parts(words: S, nframes: usize, free: usize, hint: usize) -> Self {
        Self {
            words,
            nframes,
            free,
            hint,
        }
    }

    /// (free count, next-fit hint), to store alongside the words.
    pub fn state(&self) -> (usize, usize) {
        (self.free, self.hint)
    }

    pub const fn words_for(nframes: usize) -> usize {
        nframes.div_ceil(64)
    }

    pub fn total_frames(&self) -> usize {
        self.nframes
    }

    pub fn free_frames(&self) -> usize {
        self.free
    }

    fn is_used(&self, f: usize) -> bool {
        match self.words.as_ref().get(f / 64) {
            Some(w) => w & (1 << (f % 64)) != 0,
            None => true,
        }
    }

    fn set(&mut self, f: usize, used: bool) {
        if let Some(w) = self.words.as_mut().get_mut(f / 64) {
            if used {
                *w |= 1 << (f % 64);
            } else {
                *w &= !(1 << (f % 64));
            }
        }
    }

    /// Marks frames `[first, first + count)` free (frames past the end are ignored).
    pub fn free_range(&mut self, first: usize, count: usize) {
        for f in first..first.saturating_add(count).min(self.nframes) {
            if self.is_used(f) {
                self.set(f, false);
                self.free += 1;
            }
        }
    }

    /// Marks frames `[first, first + count)` in use.
    pub fn reserve_range(&mut self, first: usize, count: usize) {
        for f in first..first.saturating_add(count).min(self.nframes) {
            if !self.is_used(f) {
                self.set(f, true);
                self.free -= 1;
            }
        }
    }

    /// One frame: the lowest free one at or after the hint, which a free lowers (so freed
    /// frames are reused first, lowest first, rather than the allocator sweeping through all
    /// of memory). Reusing recently used frames keeps the working set small: on hardware
    /// its cache lines and TLB entries are warm, and under an emulator every frame touched
    /// for the first time costs a host page fault (a cold rump read of 64 MiB took its pages
    /// from untouched memory and ran at half the speed of the next one).
    pub fn alloc(&mut self) -> Option<usize> {
        if self.free == 0 {
            return None;
        }
        let nwords = Self::words_for(self.nframes);
        let start = self.hint / 64;
        for i in 0..=nwords {
            let wi = (start + i) % nwords;
            let w = *self.words.as_ref().get(wi)?;
            if w != !0 {
                let bit = (!w).trailing_zeros() as usize;
                let f = wi * 64 + bit;
                if f < self.nframes {
                    self.set(f, true);
                    self.free -= 1;
                    self.hint = f;
                    return Some(f);
                }
            }
        }
        None
    }

    /// `count` contiguous frames whose first frame is a multiple of `align` (in frames) and
    /// whose last frame is below `limit` (a frame number).
    pub fn alloc_contig(&mut self, count: usize, align: usize, limit: usize) -> Option<usize> {
        if count == 0 || self.free < count {
            return None;
        }
        let align = align.max(1);
        let limit = limit.min(self.nframes);
        let mut base = 0;
        while base + count <= limit {
            match (base..base + count).rev().find(|&f| self.is_used(f)) {
                None => {
                    for f in base..base + count {
                        self.set(f, true);
                    }
                    self.free -= count;
                    return Some(base);
                }
                Some(used) => base = (used + 1).next_multiple_of(align),
            }
        }
        None
    }

    /// Frees one frame. Returns false (and changes nothing) on a double free.
    pub fn dealloc(&mut self, f: usize) -> bool {
        if f >= self.nframes || !self.is_used(f) {
            return false;
        }
        self.set(f, false);
        self.free += 1;
        self.hint = self.hint.min(f);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn bm(n: usize) -> FrameBitmap<alloc::vec::Vec<u64>> {
        let mut b = FrameBitmap::new_all_used(
            vec![0; FrameBitmap::<alloc::vec::Vec<u64>>::words_for(n)],
            n,
        );
        b.free_range(0, n);
        b
    }

    #[test]
    fn alloc_free_all() {
        let mut b = bm(1000);
        let mut got = alloc::vec::Vec::new();
        while let Some(f) = b.alloc() {
            got.push(f);
        }
        assert_eq!(got.len(), 1000);
        assert_eq!(b.free_frames(), 0);
        for f in got {
            assert!(b.dealloc(f));
        }
        assert_eq!(b.free_frames(), 1000);
        assert!(!b.dealloc(5) || b.free_frames() == 1000);
    }

    #[test]
    fn freed_frames_are_reused_lowest_first() {
        let mut b = bm(1000);
        let got: alloc::vec::Vec<usize> = (0..300).map(|_| b.alloc().unwrap()).collect();
        assert_eq!(got, (0..300).collect::<alloc::vec::Vec<_>>());
        assert!(b.dealloc(250));
        assert!(b.dealloc(17));
        assert!(b.dealloc(130));
        assert_eq!(b.alloc(), Some(17));
        assert_eq!(b.alloc(), Some(130));
        assert_eq!(b.alloc(), Some(250));
        assert_eq!(b.alloc(), Some(300));
    }

    #[test]
    fn double_free_refused() {
        let mut b = bm(64);
        let f = b.alloc().unwrap();
        assert!(b.dealloc(f));
        assert!(!b.dealloc(f));
        assert!(!b.dealloc(10_000));
    }

    #[test]
    fn contiguous_aligned_below_limit() {
        let mut b = bm(4096);
        b.reserve_range(0, 3);
        b.reserve_range(17, 1);
        let f = b.alloc_contig(16, 16, 4096).unwrap();
        assert_eq!(f % 16, 0);
        assert!(f >= 32, "must skip the used frame 17, got {f}");
        assert!(b.alloc_contig(8, 1, 8).is_none(), "frames 0..3 are used");
        assert!(b.alloc_contig(5000, 1, 4096).is_none());
        let before = b.free_frames();
        let g = b.alloc_contig(4, 4, 4096).unwrap();
        assert_eq!(b.free_frames(), before - 4);
        for x in g..g + 4 {
            assert!(b.dealloc(x));
        }
    }
}
