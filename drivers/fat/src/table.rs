//! The file allocation table: reading and writing entries through the FAT sector cache,
//! following and checking chains, counting free clusters, allocating and freeing, and
//! writing the cache back to every FAT copy (and FAT32's FSINFO).

use super::*;

impl<D: BlockDevice> Fat<D> {
    pub(crate) fn fat_sector(&mut self, idx: u64) -> Result<&mut Block> {
        if !self.fat_cache.contains_key(&idx) {
            if self.fat_cache.len() as u64 * self.g.bps >= FAT_CACHE_MAX as u64 {
                self.flush_fat()?;
                self.fat_cache.clear();
            }
            let copy = self.g.active_fat.unwrap_or(0) as u64;
            let off = self.g.fat_start + (copy * self.g.fat_sectors + idx) * self.g.bps;
            let mut data = vec![0u8; self.g.bps as usize];
            self.dev_read(off, &mut data)?;
            self.fat_cache.insert(idx, Block { data, dirty: false });
        }
        Ok(self.fat_cache.get_mut(&idx).expect("just inserted"))
    }

    pub(crate) fn fat_byte(&mut self, at: u64) -> Result<u8> {
        let bps = self.g.bps;
        Ok(self.fat_sector(at / bps)?.data[(at % bps) as usize])
    }

    pub(crate) fn set_fat_byte(&mut self, at: u64, v: u8) -> Result<()> {
        let bps = self.g.bps;
        let b = self.fat_sector(at / bps)?;
        b.data[(at % bps) as usize] = v;
        b.dirty = true;
        Ok(())
    }

    /// The FAT entry of cluster `c` (a number in 2..=max).
    pub(crate) fn fat_get(&mut self, c: u32) -> Result<u32> {
        let bps = self.g.bps;
        match self.g.ty {
            FatType::Fat12 => {
                let at = c as u64 + c as u64 / 2;
                let v = self.fat_byte(at)? as u32 | (self.fat_byte(at + 1)? as u32) << 8;
                Ok(if c & 1 != 0 { v >> 4 } else { v & 0xFFF })
            }
            FatType::Fat16 => {
                let at = c as u64 * 2;
                let b = self.fat_sector(at / bps)?;
                Ok(le16(&b.data, (at % bps) as usize))
            }
            FatType::Fat32 => {
                let at = c as u64 * 4;
                let b = self.fat_sector(at / bps)?;
                Ok(le32(&b.data, (at % bps) as usize) & 0x0FFF_FFFF)
            }
        }
    }

    pub(crate) fn fat_set(&mut self, c: u32, v: u32) -> Result<()> {
        let bps = self.g.bps;
        match self.g.ty {
            FatType::Fat12 => {
                let at = c as u64 + c as u64 / 2;
                let old = self.fat_byte(at)? as u32 | (self.fat_byte(at + 1)? as u32) << 8;
                let new = if c & 1 != 0 {
                    (old & 0x000F) | (v & 0xFFF) << 4
                } else {
                    (old & 0xF000) | (v & 0xFFF)
                };
                self.set_fat_byte(at, new as u8)?;
                self.set_fat_byte(at + 1, (new >> 8) as u8)
            }
            FatType::Fat16 => {
                let at = c as u64 * 2;
                let b = self.fat_sector(at / bps)?;
                let o = (at % bps) as usize;
                b.data[o..o + 2].copy_from_slice(&(v as u16).to_le_bytes());
                b.dirty = true;
                Ok(())
            }
            FatType::Fat32 => {
                let at = c as u64 * 4;
                let b = self.fat_sector(at / bps)?;
                let o = (at % bps) as usize;
                let keep = le32(&b.data, o) & 0xF000_0000;
                b.data[o..o + 4].copy_from_slice(&(keep | (v & 0x0FFF_FFFF)).to_le_bytes());
                b.dirty = true;
                Ok(())
            }
        }
    }

    /// The next cluster after `c`, None at the end of the chain.
    pub(crate) fn next_cluster(&mut self, c: u32) -> Result<Option<u32>> {
        let v = self.fat_get(c)?;
        if v >= self.g.eoc_min() {
            Ok(None)
        } else if v == 0 {
            Err(Error::Corrupt("a cluster chain runs into a free cluster"))
        } else if !self.g.valid(v) {
            Err(Error::Corrupt("a cluster chain points outside the volume"))
        } else {
            Ok(Some(v))
        }
    }

    /// The whole chain starting at `first` (empty for 0), at most `max` clusters.
    pub(crate) fn walk(&mut self, first: u32, max: u64) -> Result<Vec<u32>> {
        let mut v = Vec::new();
        if first == 0 {
            return Ok(v);
        }
        if !self.g.valid(first) {
            return Err(Error::Corrupt("start cluster outside the volume"));
        }
        let mut c = first;
        let mut check_at = 64usize;
        loop {
            v.push(c);
            if v.len() as u64 > max || v.len() > self.g.clusters as usize {
                return Err(Error::Corrupt("a cluster chain loops or is too long"));
            }
            if v.len() == check_at {
                check_at *= 2;
                let mut s = v.clone();
                s.sort_unstable();
                if s.windows(2).any(|w| w[0] == w[1]) {
                    return Err(Error::Corrupt("a cluster chain loops"));
                }
            }
            match self.next_cluster(c)? {
                Some(n) => c = n,
                None => break,
            }
        }
        let mut s = v.clone();
        s.sort_unstable();
        if s.windows(2).any(|w| w[0] == w[1]) {
            return Err(Error::Corrupt("a cluster chain loops"));
        }
        Ok(v)
    }

    pub(crate) fn free_count(&mut self) -> Result<u32> {
        if let Some(f) = self.free {
            return Ok(f);
        }
        let n = if self.g.ty == FatType::Fat12 {
            let mut n = 0;
            for c in 2..=self.g.max_cluster() {
                if self.fat_get(c)? == 0 {
                    n += 1;
                }
            }
            n
        } else {
            self.count_free_wide()?
        };
        self.free = Some(n);
        Ok(n)
    }

    /// Counts free FAT16/32 entries reading the FAT in large pieces straight from the
    /// device (cached sectors, which may be newer, take precedence) rather than entry by
    /// entry through the cache: a big volume's FAT is megabytes.
    pub(crate) fn count_free_wide(&mut self) -> Result<u32> {
        let width: u64 = if self.g.ty == FatType::Fat32 { 4 } else { 2 };
        let end = (self.g.max_cluster() as u64 + 1) * width;
        let copy = self.g.active_fat.unwrap_or(0) as u64;
        let base = self.g.fat_start + copy * self.g.fat_sectors * self.g.bps;
        let chunk = (256u64 << 10).max(self.g.bps);
        let mut buf = vec![0u8; chunk as usize];
        let mut n = 0u32;
        let mut at = 0u64;
        while at < end {
            let len = chunk.min(end - at).div_ceil(self.g.bps) * self.g.bps;
            let piece = &mut buf[..len as usize];
            self.dev_read(base + at, piece)?;
            for (idx, b) in self
                .fat_cache
                .range(at / self.g.bps..(at + len) / self.g.bps)
            {
                let o = (idx * self.g.bps - at) as usize;
                piece[o..o + b.data.len()].copy_from_slice(&b.data);
            }
            let first = at.max(2 * width);
            let last = (at + len).min(end);
            let mut e = first;
            while e < last {
                let o = (e - at) as usize;
                let v = if width == 4 {
                    le32(piece, o) & 0x0FFF_FFFF
                } else {
                    le16(piece, o)
                };
                if v == 0 {
                    n += 1;
                }
                e += width;
            }
            at += len;
        }
        Ok(n)
    }

    /// Allocates `n` clusters as one chain (linked after `after` when given), from the
    /// next-free hint on.
    pub(crate) fn alloc(&mut self, n: usize, after: Option<u32>) -> Result<Vec<u32>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let free = self.free_count()?;
        if n as u64 > free as u64 {
            return Err(Error::NoSpace);
        }
        let mut got = Vec::with_capacity(n);
        let mut c = self.next_free;
        if !self.g.valid(c) {
            c = 2;
        }
        let mut scanned = 0u64;
        while got.len() < n {
            if scanned > self.g.clusters as u64 {
                self.free = None;
                return Err(Error::Corrupt("the free cluster count is wrong"));
            }
            if self.fat_get(c)? == 0 {
                got.push(c);
            }
            scanned += 1;
            c = if c >= self.g.max_cluster() { 2 } else { c + 1 };
        }
        let eoc = self.g.eoc();
        for i in 0..n {
            let v = if i + 1 < n { got[i + 1] } else { eoc };
            self.fat_set(got[i], v)?;
        }
        if let Some(a) = after {
            self.fat_set(a, got[0])?;
        }
        self.free = Some(free - n as u32);
        self.next_free = c;
        Ok(got)
    }

    /// Marks the clusters free (their cached directory blocks are dropped: they may be
    /// reused for file data, which bypasses the cache).
    pub(crate) fn free_clusters(&mut self, cs: &[u32]) -> Result<()> {
        for &c in cs {
            self.fat_set(c, 0)?;
            let off = self.g.cluster_off(c);
            if self.dir_cache.remove(&off).is_some() {
                self.dir_cache_bytes -= self.g.cb as usize;
            }
        }
        if let Some(f) = self.free.as_mut() {
            *f += cs.len() as u32;
        }
        Ok(())
    }

    // ---- directory blocks -----------------------------------------------------------

    pub(crate) fn flush_fat(&mut self) -> Result<()> {
        let copies: Vec<u64> = match self.g.active_fat {
            Some(a) => vec![a as u64],
            None => (0..self.g.nfats as u64).collect(),
        };
        let dirty: Vec<u64> = self
            .fat_cache
            .iter()
            .filter(|(_, b)| b.dirty)
            .map(|(k, _)| *k)
            .collect();
        for idx in dirty {
            let b = self.fat_cache.get_mut(&idx).expect("present");
            b.dirty = false;
            let data = core::mem::take(&mut b.data);
            let mut r = Ok(());
            for &copy in &copies {
                let off = self.g.fat_start + (copy * self.g.fat_sectors + idx) * self.g.bps;
                r = r.and(self.dev_write(off, &data));
            }
            self.fat_cache.get_mut(&idx).expect("present").data = data;
            r?;
        }
        Ok(())
    }
}
