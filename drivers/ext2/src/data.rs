//! File data: reads and writes through the block map, truncation, attributes, symlinks.

use super::*;

impl<D: BlockDevice> Ext2<D> {
    /// Reads from a regular file (or any inode's data) at `off`; returns the count (0 at
    /// or past the end).
    pub fn read(&mut self, ino: u32, off: u64, buf: &mut [u8]) -> Result<usize> {
        let mut i = self.live_inode(ino)?;
        if i.is_dir() {
            return Err(Error::IsDir);
        }
        self.read_inode_data(&mut i, off, buf)
    }

    pub(crate) fn read_inode_data(
        &mut self,
        i: &mut Inode,
        off: u64,
        buf: &mut [u8],
    ) -> Result<usize> {
        let size = i.size();
        if off >= size {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(size - off) as usize;
        let bs = self.bs;
        let mut done = 0usize;
        let mut goal = 0u32;
        // Whole-block runs read straight from the device: (disk byte offset, buf range),
        // increasing and disjoint; issued together at the end so the device overlaps them.
        let mut runs: Vec<(u64, usize, usize)> = Vec::new();
        while done < n {
            let pos = off + done as u64;
            let lb = pos / bs;
            let boff = (pos % bs) as usize;
            let pb = self.bmap(i, lb, false, &mut goal)?;
            let chunk = ((bs as usize) - boff).min(n - done);
            let Some(dst) = buf.get_mut(done..done + chunk) else {
                break;
            };
            if pb == 0 {
                dst.fill(0);
                done += chunk;
                continue;
            }
            if boff == 0 && chunk == bs as usize {
                // Whole blocks: coalesce a physically contiguous run into one read.
                let mut run = 1u64;
                while (done as u64 + (run + 1) * bs) <= n as u64 && run * bs < MAX_RUN {
                    let nb = self.bmap(i, lb + run, false, &mut goal)?;
                    if nb as u64 != pb as u64 + run {
                        break;
                    }
                    run += 1;
                }
                let len = (run * bs) as usize;
                self.cache.flush_range(&self.dev, pb as u64, run)?;
                runs.push((pb as u64 * bs, done, len));
                done += len;
            } else {
                let b = self.cache.read(&self.dev, pb as u64)?;
                dst.copy_from_slice(b.get(boff..boff + chunk).ok_or(Error::Io)?);
                done += chunk;
            }
        }
        if !runs.is_empty() {
            let mut reqs: Vec<(u64, &mut [u8])> = Vec::with_capacity(runs.len());
            let mut rest = buf.get_mut(..n).ok_or(Error::Io)?;
            let mut at = 0usize;
            for &(o, s, l) in &runs {
                let (_, tail) = rest
                    .split_at_mut_checked(s.checked_sub(at).ok_or(Error::Io)?)
                    .ok_or(Error::Io)?;
                let (dst, tail) = tail.split_at_mut_checked(l).ok_or(Error::Io)?;
                reqs.push((o, dst));
                rest = tail;
                at = s + l;
            }
            self.dev.read_many(&mut reqs)?;
        }
        Ok(n)
    }

    /// Writes to a regular file at `off`, growing it as needed.
    pub fn write(&mut self, ino: u32, off: u64, data: &[u8]) -> Result<usize> {
        self.check_rw()?;
        let mut i = self.live_inode(ino)?;
        if i.is_dir() {
            return Err(Error::IsDir);
        }
        let r = self.write_inode_data(&mut i, off, data);
        let t = self.now();
        i.set_mtime(t);
        i.set_ctime(t);
        self.put_inode(&i)?;
        r
    }

    pub(crate) fn write_inode_data(
        &mut self,
        i: &mut Inode,
        off: u64,
        data: &[u8],
    ) -> Result<usize> {
        let bs = self.bs;
        let end = off.checked_add(data.len() as u64).ok_or(Error::TooBig)?;
        if end.div_ceil(bs) > self.max_blocks()
            || (end > 0x7fff_ffff && (self.rev == 0 || !i.is_reg()))
        {
            return Err(Error::TooBig);
        }
        let mut goal = self.inode_goal(i.ino);
        let mut done = 0usize;
        let mut err = None;
        while done < data.len() {
            let pos = off + done as u64;
            let lb = pos / bs;
            let boff = (pos % bs) as usize;
            let chunk = ((bs as usize) - boff).min(data.len() - done);
            if lb > 0 && goal == self.inode_goal(i.ino) {
                let mut g = 0;
                let prev = self.bmap(i, lb - 1, false, &mut g)?;
                if prev != 0 {
                    goal = prev + 1;
                }
            }
            let existed = self.bmap(i, lb, false, &mut 0)? != 0;
            let pb = match self.bmap(i, lb, true, &mut goal) {
                Ok(b) => b,
                Err(e) => {
                    err = Some(e);
                    break;
                }
            };
            if chunk == bs as usize {
                // Whole blocks: allocate on along the file and write each physically
                // contiguous run with one request (a block at a time would be one device
                // request per KiB). A block allocated here but not contiguous is simply
                // found allocated by the next iteration.
                let mut run = 1u64;
                while run < 256 && done as u64 + (run + 1) * bs <= data.len() as u64 {
                    let nb = match self.bmap(i, lb + run, true, &mut goal) {
                        Ok(b) => b,
                        Err(e) => {
                            err = Some(e);
                            break;
                        }
                    };
                    if nb as u64 != pb as u64 + run {
                        break;
                    }
                    run += 1;
                }
                let len = (run * bs) as usize;
                let src = data.get(done..done + len).ok_or(Error::Io)?;
                for k in 0..run {
                    self.cache.discard(pb as u64 + k);
                }
                self.dev.write_at(pb as u64 * bs, src)?;
                done += len;
                if err.is_some() {
                    break;
                }
                continue;
            }
            let src = data.get(done..done + chunk).ok_or(Error::Io)?;
            {
                let b = if existed {
                    self.cache.modify(&self.dev, pb as u64)?
                } else {
                    self.cache.zeroed(&self.dev, pb as u64)?
                };
                b.get_mut(boff..boff + chunk)
                    .ok_or(Error::Io)?
                    .copy_from_slice(src);
            }
            done += chunk;
        }
        let new_end = off + done as u64;
        if new_end > i.size() {
            if new_end > 0x7fff_ffff && (self.rev == 0 || !i.is_reg()) {
                return Err(Error::TooBig);
            }
            if i.is_reg() && new_end > 0x7fff_ffff {
                self.set_large_file();
            }
            i.set_size(new_end);
        }
        match (done, err) {
            (0, Some(e)) => Err(e),
            _ => Ok(done),
        }
    }

    pub(crate) fn set_large_file(&mut self) {
        let ro = r32(&self.sb, 100);
        if ro & RO_COMPAT_LARGE_FILE == 0 && self.rev >= 1 {
            w32(&mut self.sb, 100, ro | RO_COMPAT_LARGE_FILE);
            self.sb_dirty = true;
        }
    }

    pub(crate) fn inode_goal(&self, ino: u32) -> u32 {
        let g = (ino.saturating_sub(1)) / self.inodes_per_group;
        self.first_data_block + g * self.blocks_per_group
    }

    /// Sets a regular file's size: shrinking frees blocks, growing leaves a hole.
    pub fn truncate(&mut self, ino: u32, len: u64) -> Result<()> {
        self.check_rw()?;
        let mut i = self.live_inode(ino)?;
        if i.is_dir() {
            return Err(Error::IsDir);
        }
        if !i.is_reg() {
            return Err(Error::Invalid);
        }
        if len.div_ceil(self.bs) > self.max_blocks() || (len > 0x7fff_ffff && self.rev == 0) {
            return Err(Error::TooBig);
        }
        let old = i.size();
        if len < old {
            // Zero the tail of the last kept block so a later extension reads zeros.
            let boff = (len % self.bs) as usize;
            if boff != 0 {
                let pb = self.bmap(&mut i, len / self.bs, false, &mut 0)?;
                if pb != 0 {
                    let b = self.cache.modify(&self.dev, pb as u64)?;
                    if let Some(t) = b.get_mut(boff..) {
                        t.fill(0);
                    }
                    let data = b.to_vec();
                    self.dev.write_at(pb as u64 * self.bs, &data)?;
                    self.cache.discard(pb as u64);
                }
            }
            self.truncate_blocks(&mut i, len.div_ceil(self.bs))?;
        }
        if len > 0x7fff_ffff {
            self.set_large_file();
        }
        i.set_size(len);
        let t = self.now();
        i.set_mtime(t);
        i.set_ctime(t);
        self.put_inode(&i)
    }

    pub fn set_attr(&mut self, ino: u32, a: &SetAttr) -> Result<()> {
        self.check_rw()?;
        let mut i = self.live_inode(ino)?;
        if let Some(p) = a.perm {
            let m = (i.mode() & S_IFMT) | (p & 0o7777);
            w16(&mut i.raw, 0, m);
        }
        if let Some(u) = a.uid {
            i.set_uid(u);
        }
        if let Some(g) = a.gid {
            i.set_gid(g);
        }
        if let Some(t) = a.atime {
            w32(&mut i.raw, 8, t);
        }
        if let Some(t) = a.mtime {
            i.set_mtime(t);
        }
        i.set_ctime(self.now());
        self.put_inode(&i)
    }

    pub fn readlink(&mut self, ino: u32) -> Result<Vec<u8>> {
        let mut i = self.live_inode(ino)?;
        if i.mode() & S_IFMT != S_IFLNK {
            return Err(Error::Invalid);
        }
        let size = i.size();
        if size > self.bs || size > 4096 {
            return Err(Error::Corrupt("symlink too long"));
        }
        if i.is_fast_symlink(self.bs) {
            return Ok(i.raw.get(40..40 + size as usize).ok_or(Error::Io)?.to_vec());
        }
        let mut v = vec![0u8; size as usize];
        self.read_inode_data(&mut i, 0, &mut v)?;
        Ok(v)
    }
}
