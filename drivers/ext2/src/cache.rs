//! A write-back cache of metadata blocks (bitmaps, inode tables, indirect blocks,
//! directories, slow symlinks). Regular-file data bypasses it; a block that is freed or
//! written directly is discarded from it so a stale copy can never be written back over
//! somebody else's data.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::{BlockDevice, Error, Result};

/// The largest write [`Cache::flush`] sends at once.
const RUN_BYTES: usize = 256 << 10;

struct Entry {
    data: Vec<u8>,
    dirty: bool,
    stamp: u64,
}

pub struct Cache {
    map: BTreeMap<u64, Entry>,
    clock: u64,
    cap: usize,
    bs: usize,
}

impl Cache {
    pub fn new(bs: usize, cap: usize) -> Self {
        Self {
            map: BTreeMap::new(),
            clock: 0,
            cap: cap.max(8),
            bs,
        }
    }

    fn tick(&mut self) -> u64 {
        self.clock = self.clock.wrapping_add(1);
        self.clock
    }

    fn load<D: BlockDevice>(&mut self, dev: &D, blk: u64) -> Result<()> {
        if self.map.contains_key(&blk) {
            return Ok(());
        }
        self.evict(dev)?;
        let mut data = alloc::vec![0u8; self.bs];
        let off = blk
            .checked_mul(self.bs as u64)
            .ok_or(Error::Corrupt("block number overflows"))?;
        dev.read_at(off, &mut data)?;
        let stamp = self.tick();
        self.map.insert(
            blk,
            Entry {
                data,
                dirty: false,
                stamp,
            },
        );
        Ok(())
    }

    fn evict<D: BlockDevice>(&mut self, dev: &D) -> Result<()> {
        while self.map.len() >= self.cap {
            let victim = self
                .map
                .iter()
                .min_by_key(|(_, e)| e.stamp)
                .map(|(k, _)| *k);
            let Some(k) = victim else { break };
            if let Some(e) = self.map.remove(&k)
                && e.dirty
            {
                dev.write_at(k * self.bs as u64, &e.data)?;
            }
        }
        Ok(())
    }

    /// A copy-free view of block `blk`.
    pub fn read<D: BlockDevice>(&mut self, dev: &D, blk: u64) -> Result<&[u8]> {
        self.load(dev, blk)?;
        let stamp = self.tick();
        let e = self.map.get_mut(&blk).ok_or(Error::Io)?;
        e.stamp = stamp;
        Ok(&e.data)
    }

    /// Block `blk` for modification (marked dirty).
    pub fn modify<D: BlockDevice>(&mut self, dev: &D, blk: u64) -> Result<&mut [u8]> {
        self.load(dev, blk)?;
        let stamp = self.tick();
        let e = self.map.get_mut(&blk).ok_or(Error::Io)?;
        e.stamp = stamp;
        e.dirty = true;
        Ok(&mut e.data)
    }

    /// Block `blk` replaced by zeros without reading it (a newly allocated block).
    pub fn zeroed<D: BlockDevice>(&mut self, dev: &D, blk: u64) -> Result<&mut [u8]> {
        if !self.map.contains_key(&blk) {
            self.evict(dev)?;
        }
        let stamp = self.tick();
        let bs = self.bs;
        let e = self.map.entry(blk).or_insert_with(|| Entry {
            data: Vec::new(),
            dirty: true,
            stamp,
        });
        e.data.clear();
        e.data.resize(bs, 0);
        e.dirty = true;
        e.stamp = stamp;
        Ok(&mut e.data)
    }

    /// Writes block `blk` back if it is cached and dirty, and drops it.
    pub fn write_back<D: BlockDevice>(&mut self, dev: &D, blk: u64) -> Result<()> {
        if let Some(e) = self.map.remove(&blk)
            && e.dirty
        {
            dev.write_at(blk * self.bs as u64, &e.data)?;
        }
        Ok(())
    }

    pub fn discard(&mut self, blk: u64) {
        self.map.remove(&blk);
    }

    /// Writes every dirty block back, runs of consecutive blocks (inode tables, a
    /// directory's blocks) in one device request each, up to [`RUN_BYTES`].
    pub fn flush<D: BlockDevice>(&mut self, dev: &D) -> Result<()> {
        let bs = self.bs as u64;
        let dirty: Vec<u64> = self
            .map
            .iter()
            .filter(|(_, e)| e.dirty)
            .map(|(k, _)| *k)
            .collect();
        let per_run = (RUN_BYTES / self.bs).max(1);
        let mut i = 0;
        let mut run: Vec<u8> = Vec::new();
        while i < dirty.len() {
            let mut j = i + 1;
            while j < dirty.len() && dirty[j] == dirty[j - 1] + 1 && j - i < per_run {
                j += 1;
            }
            run.clear();
            for k in &dirty[i..j] {
                run.extend_from_slice(&self.map.get(k).ok_or(Error::Io)?.data);
            }
            dev.write_at(dirty[i] * bs, &run)?;
            // Clean only once written: a failed write leaves them dirty for the next try.
            for k in &dirty[i..j] {
                if let Some(e) = self.map.get_mut(k) {
                    e.dirty = false;
                }
            }
            i = j;
        }
        Ok(())
    }
}
