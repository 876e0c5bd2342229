//! Inodes: locating, reading and writing inode records, allocation and freeing.

use super::*;

impl<D: BlockDevice> Ext2<D> {
    pub(crate) fn inode_loc(&self, ino: u32) -> Result<(u64, usize)> {
        if ino == 0 || ino > self.inodes_count {
            return Err(Error::Corrupt("inode number out of range"));
        }
        let g = ((ino - 1) / self.inodes_per_group) as usize;
        let idx = ((ino - 1) % self.inodes_per_group) as u64;
        let gr = self
            .groups
            .get(g)
            .ok_or(Error::Corrupt("inode group out of range"))?;
        let byte = idx * self.inode_size;
        Ok((
            gr.inode_table as u64 + byte / self.bs,
            (byte % self.bs) as usize,
        ))
    }

    pub(crate) fn inode(&mut self, ino: u32) -> Result<Inode> {
        let (blk, off) = self.inode_loc(ino)?;
        let isz = self.inode_size as usize;
        let b = self.cache.read(&self.dev, blk)?;
        let raw = b
            .get(off..off + isz)
            .ok_or(Error::Corrupt("inode outside its block"))?
            .to_vec();
        Ok(Inode { ino, raw })
    }

    pub(crate) fn put_inode(&mut self, i: &Inode) -> Result<()> {
        self.check_rw()?;
        let (blk, off) = self.inode_loc(i.ino)?;
        let b = self.cache.modify(&self.dev, blk)?;
        let dst = b
            .get_mut(off..off + i.raw.len())
            .ok_or(Error::Corrupt("inode outside its block"))?;
        dst.copy_from_slice(&i.raw);
        Ok(())
    }

    /// An in-use inode (mode and link count nonzero, or ino is the root).
    pub(crate) fn live_inode(&mut self, ino: u32) -> Result<Inode> {
        let i = self.inode(ino)?;
        if i.mode() == 0 || (i.links() == 0 && r32(&i.raw, 20) != 0) {
            return Err(Error::Corrupt("reference to a deleted inode"));
        }
        Ok(i)
    }

    /// An in-use inode's attributes, read in place from the cached inode table block.
    pub fn attr(&mut self, ino: u32) -> Result<Attr> {
        let (blk, off) = self.inode_loc(ino)?;
        let isz = self.inode_size as usize;
        let b = self.cache.read(&self.dev, blk)?;
        let raw = b
            .get(off..off + isz)
            .ok_or(Error::Corrupt("inode outside its block"))?;
        let mode = r16(raw, 0);
        let links = r16(raw, 26);
        if mode == 0 || (links == 0 && r32(raw, 20) != 0) {
            return Err(Error::Corrupt("reference to a deleted inode"));
        }
        let kind = mode & S_IFMT;
        let lo = r32(raw, 4) as u64;
        let rdev = if kind == S_IFCHR || kind == S_IFBLK {
            let old = r32(raw, 40);
            if old != 0 {
                ((old >> 8) & 0xff, old & 0xff)
            } else {
                let n = r32(raw, 44);
                ((n & 0xfff00) >> 8, (n & 0xff) | ((n >> 12) & 0xfff00))
            }
        } else {
            (0, 0)
        };
        Ok(Attr {
            ino,
            mode,
            uid: r16(raw, 2) as u32 | (r16(raw, 120) as u32) << 16,
            gid: r16(raw, 24) as u32 | (r16(raw, 122) as u32) << 16,
            size: if kind == S_IFREG {
                lo | (r32(raw, 108) as u64) << 32
            } else {
                lo
            },
            nlink: links,
            blocks: r32(raw, 28) as u64,
            atime: r32(raw, 8),
            mtime: r32(raw, 16),
            ctime: r32(raw, 12),
            rdev,
            flags: r32(raw, 32),
        })
    }

    pub(crate) fn alloc_inode(&mut self, parent: u32, dir: bool) -> Result<u32> {
        self.check_rw()?;
        let ng = self.groups.len();
        let pg = ((parent.max(1) - 1) / self.inodes_per_group) as usize % ng;
        // Directories: spread out (the group with the most free inodes among those with
        // free blocks); files: near their directory.
        let start = if dir {
            (0..ng)
                .max_by_key(|&g| (self.groups[g].free_blocks > 0, self.groups[g].free_inodes))
                .unwrap_or(pg)
        } else {
            pg
        };
        for k in 0..ng {
            let g = (start + k) % ng;
            if self.groups[g].free_inodes == 0 {
                continue;
            }
            let bm = self.groups[g].inode_bitmap as u64;
            let first = if g == 0 {
                self.first_ino as usize - 1
            } else {
                0
            }
            .max(self.groups[g].ino_hint as usize);
            let n = self.inodes_per_group as usize;
            let bitmap = self.cache.read(&self.dev, bm)?;
            if let Some(i) = (first..n).find(|&i| !bit(bitmap, i)) {
                let ino = g as u32 * self.inodes_per_group + i as u32 + 1;
                if ino > self.inodes_count {
                    continue;
                }
                let bitmap = self.cache.modify(&self.dev, bm)?;
                set_bit(bitmap, i, true);
                self.groups[g].ino_hint = i as u32 + 1;
                self.add_free_inodes(g, -1, dir);
                // A stale directory index under a reused number must not survive.
                self.dcache.drop_dir(ino);
                return Ok(ino);
            }
            // The count said free but nothing was from the hint on: search from the start
            // next time.
            self.groups[g].ino_hint = 0;
        }
        Err(Error::NoSpace)
    }

    pub(crate) fn free_inode(&mut self, ino: u32, dir: bool) -> Result<()> {
        self.inode_loc(ino)?;
        let g = ((ino - 1) / self.inodes_per_group) as usize;
        let i = ((ino - 1) % self.inodes_per_group) as usize;
        let bm = self.groups[g].inode_bitmap as u64;
        let bitmap = self.cache.modify(&self.dev, bm)?;
        if !bit(bitmap, i) {
            return Err(Error::Corrupt("freeing a free inode"));
        }
        set_bit(bitmap, i, false);
        let h = &mut self.groups[g].ino_hint;
        *h = (*h).min(i as u32);
        self.add_free_inodes(g, 1, dir);
        if dir {
            self.dcache.drop_dir(ino);
        }
        Ok(())
    }
}
