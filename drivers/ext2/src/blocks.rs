//! Block allocation (bitmaps, group counters) and block maps: direct, indirect, double
//! and triple indirect pointers, allocated on demand and freed on truncation.

use super::*;

impl<D: BlockDevice> Ext2<D> {
    pub(crate) fn check_block(&self, b: u32) -> Result<u64> {
        if b < self.first_data_block || b >= self.blocks_count {
            return Err(Error::Corrupt("block number out of range"));
        }
        Ok(b as u64)
    }

    /// Allocates a block, preferring `goal` and what follows it.
    pub(crate) fn alloc_block(&mut self, goal: u32) -> Result<u32> {
        self.check_rw()?;
        let ng = self.groups.len();
        let goal = if goal >= self.first_data_block && goal < self.blocks_count {
            goal
        } else {
            self.first_data_block
        };
        let g0 = ((goal - self.first_data_block) / self.blocks_per_group) as usize;
        for k in 0..=ng {
            let g = (g0 + k) % ng;
            if self.groups[g].free_blocks == 0 {
                continue;
            }
            let base = self.first_data_block + g as u32 * self.blocks_per_group;
            let n = (self.blocks_count - base).min(self.blocks_per_group) as usize;
            let start = if k == 0 { (goal - base) as usize } else { 0 };
            let bm = self.groups[g].block_bitmap as u64;
            let bitmap = self.cache.read(&self.dev, bm)?;
            let found = (start..n).chain(0..start).find(|&i| !bit(bitmap, i));
            if let Some(i) = found {
                let bitmap = self.cache.modify(&self.dev, bm)?;
                set_bit(bitmap, i, true);
                self.add_free_blocks(g, -1);
                let b = base + i as u32;
                self.cache.discard(b as u64);
                return Ok(b);
            }
            // The count said free but the bitmap disagrees; try the next group.
        }
        Err(Error::NoSpace)
    }

    pub(crate) fn free_block(&mut self, b: u32) -> Result<()> {
        let b = self.check_block(b)? as u32;
        let g = ((b - self.first_data_block) / self.blocks_per_group) as usize;
        let i = ((b - self.first_data_block) % self.blocks_per_group) as usize;
        let bm = self.groups[g].block_bitmap as u64;
        let bitmap = self.cache.modify(&self.dev, bm)?;
        if !bit(bitmap, i) {
            return Err(Error::Corrupt("freeing a free block"));
        }
        set_bit(bitmap, i, false);
        self.add_free_blocks(g, 1);
        self.cache.discard(b as u64);
        Ok(())
    }
    pub(crate) fn ptrs_per_block(&self) -> u64 {
        self.bs / 4
    }

    pub(crate) fn max_blocks(&self) -> u64 {
        let p = self.ptrs_per_block();
        12 + p + p * p + p * p * p
    }

    /// Physical block of logical block `lb` (0 = hole). With `alloc`, holes (and missing
    /// indirect blocks) are filled; `goal` guides where.
    pub(crate) fn bmap(
        &mut self,
        ino: &mut Inode,
        lb: u64,
        alloc: bool,
        goal: &mut u32,
    ) -> Result<u32> {
        let p = self.ptrs_per_block();
        if lb >= self.max_blocks() {
            return Err(Error::TooBig);
        }
        let sectors = self.bs / 512;
        let (slot, mut rest, levels) = if lb < 12 {
            (lb as usize, 0u64, 0u32)
        } else if lb < 12 + p {
            (12, lb - 12, 1)
        } else if lb < 12 + p + p * p {
            (13, lb - 12 - p, 2)
        } else {
            (14, lb - 12 - p - p * p, 3)
        };
        let mut cur = ino.block(slot);
        if cur == 0 {
            if !alloc {
                return Ok(0);
            }
            cur = self.alloc_block(*goal)?;
            if levels > 0 {
                self.cache.zeroed(&self.dev, cur as u64)?;
            }
            ino.set_block(slot, cur);
            ino.set_blocks512(ino.blocks512() + sectors);
        } else {
            self.check_block(cur)?;
        }
        for lvl in (0..levels).rev() {
            let span = p.pow(lvl);
            let idx = (rest / span) as usize;
            rest %= span;
            let blk = cur as u64;
            let next = r32(self.cache.read(&self.dev, blk)?, idx * 4);
            if next == 0 {
                if !alloc {
                    return Ok(0);
                }
                let nb = self.alloc_block(cur.wrapping_add(1))?;
                if lvl > 0 {
                    self.cache.zeroed(&self.dev, nb as u64)?;
                }
                w32(self.cache.modify(&self.dev, blk)?, idx * 4, nb);
                ino.set_blocks512(ino.blocks512() + sectors);
                cur = nb;
            } else {
                self.check_block(next)?;
                cur = next;
            }
        }
        *goal = cur.wrapping_add(1);
        Ok(cur)
    }

    /// Frees every block of `ino` at logical index `keep` and beyond.
    pub(crate) fn truncate_blocks(&mut self, ino: &mut Inode, keep: u64) -> Result<()> {
        let sectors = self.bs / 512;
        let mut freed = 0u64;
        for i in 0..12usize {
            let b = ino.block(i);
            if i as u64 >= keep && b != 0 {
                self.free_block(b)?;
                ino.set_block(i, 0);
                freed += 1;
            }
        }
        let p = self.ptrs_per_block();
        let mut base = 12u64;
        for (slot, level) in [(12usize, 1u32), (13, 2), (14, 3)] {
            let b = ino.block(slot);
            if b != 0 && self.trunc_ind(b, level, base, keep, &mut freed)? {
                self.free_block(b)?;
                ino.set_block(slot, 0);
                freed += 1;
            }
            base += p.pow(level);
        }
        ino.set_blocks512(ino.blocks512().saturating_sub(freed * sectors));
        Ok(())
    }

    /// Frees what lies at or beyond `keep` under indirect block `blk` (covering logical
    /// blocks from `base`); true when `blk` itself is now empty.
    pub(crate) fn trunc_ind(
        &mut self,
        blk: u32,
        level: u32,
        base: u64,
        keep: u64,
        freed: &mut u64,
    ) -> Result<bool> {
        let blk = self.check_block(blk)?;
        let p = self.ptrs_per_block();
        if keep >= base + p.pow(level) {
            return Ok(false);
        }
        let child = p.pow(level - 1);
        let mut ptrs: Vec<u32> = {
            let b = self.cache.read(&self.dev, blk)?;
            (0..p as usize).map(|i| r32(b, i * 4)).collect()
        };
        let mut changed = false;
        for (i, ptr) in ptrs.iter_mut().enumerate() {
            if *ptr == 0 {
                continue;
            }
            let cbase = base + i as u64 * child;
            let free = if level == 1 {
                cbase >= keep
            } else {
                self.trunc_ind(*ptr, level - 1, cbase, keep, freed)?
            };
            if free {
                self.free_block(*ptr)?;
                *freed += 1;
                *ptr = 0;
                changed = true;
            }
        }
        let empty = ptrs.iter().all(|&x| x == 0);
        if changed && !empty {
            let b = self.cache.modify(&self.dev, blk)?;
            for (i, x) in ptrs.iter().enumerate() {
                w32(b, i * 4, *x);
            }
        }
        Ok(empty)
    }
}
