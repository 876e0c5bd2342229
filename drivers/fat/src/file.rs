//! File data: the runs of contiguous clusters behind a byte range, reading and writing
//! through them, growing and truncating chains.

use super::*;

impl<D: BlockDevice> Fat<D> {
    pub(crate) fn file_node(&self, id: NodeId) -> Result<&Node> {
        let n = self.node(id)?;
        if n.dir { Err(Error::IsDir) } else { Ok(n) }
    }

    /// Calls `f(self, device offset, range of the request)` for each contiguous run of the
    /// file bytes `off..off+len`.
    pub(crate) fn runs(
        &mut self,
        chain: &[u32],
        off: u64,
        len: usize,
        mut f: impl FnMut(&mut Self, u64, core::ops::Range<usize>) -> Result<()>,
    ) -> Result<()> {
        let cb = self.g.cb;
        let mut done = 0usize;
        while done < len {
            let p = off + done as u64;
            let mut i = (p / cb) as usize;
            let within = p % cb;
            let c = *chain
                .get(i)
                .ok_or(Error::Corrupt("a file is longer than its cluster chain"))?;
            let start = self.g.cluster_off(c) + within;
            let mut run = cb - within;
            while ((done as u64 + run) < len as u64)
                && i + 1 < chain.len()
                && chain[i + 1] == chain[i] + 1
            {
                i += 1;
                run += cb;
            }
            let n = (run.min((len - done) as u64)) as usize;
            f(self, start, done..done + n)?;
            done += n;
        }
        Ok(())
    }

    /// Reads from a file at `off`; returns the count (0 at or past the end).
    pub fn read(&mut self, id: NodeId, off: u64, buf: &mut [u8]) -> Result<usize> {
        let size = ent_size(&self.file_node(id)?.ent) as u64;
        if off >= size || buf.is_empty() {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(size - off) as usize;
        let chain = self.take_chain(id)?;
        let r = self.runs(&chain, off, n, |fs, dev, range| {
            fs.dev_read(dev, &mut buf[range])
        });
        self.put_chain(id, chain);
        r?;
        if !self.ro && !self.unmounted {
            let (d, _) = self.now();
            let nd = self.node_mut(id)?;
            if nd.pos.is_some() && le16(&nd.ent, 18) as u16 != d {
                nd.ent[18..20].copy_from_slice(&d.to_le_bytes());
                self.store(id)?;
            }
        }
        Ok(n)
    }

    /// Grows the chain to `need` clusters; records a new first cluster in the entry.
    pub(crate) fn grow(&mut self, id: NodeId, chain: &mut Vec<u32>, need: usize) -> Result<()> {
        if need <= chain.len() {
            return Ok(());
        }
        let new = self.alloc(need - chain.len(), chain.last().copied())?;
        if chain.is_empty() {
            set_ent_cluster(&mut self.node_mut(id)?.ent, new[0]);
        }
        chain.extend_from_slice(&new);
        Ok(())
    }

    pub(crate) fn write_zeros(&mut self, chain: &[u32], mut off: u64, mut len: u64) -> Result<()> {
        let z = vec![0u8; 64 << 10];
        while len > 0 {
            let n = len.min(z.len() as u64) as usize;
            self.runs(chain, off, n, |fs, dev, r| fs.dev_write(dev, &z[r]))?;
            off += n as u64;
            len -= n as u64;
        }
        Ok(())
    }

    /// Writes to a file at `off` (a gap past the end is filled with zeros); returns the
    /// count.
    pub fn write(&mut self, id: NodeId, off: u64, data: &[u8]) -> Result<usize> {
        self.rw()?;
        let size = ent_size(&self.file_node(id)?.ent) as u64;
        if data.is_empty() {
            return Ok(0);
        }
        let end = off
            .checked_add(data.len() as u64)
            .filter(|&e| e <= u32::MAX as u64)
            .ok_or(Error::TooBig)?;
        let mut chain = self.take_chain(id)?;
        let cb = self.g.cb;
        let r = (|| {
            self.grow(id, &mut chain, end.div_ceil(cb) as usize)?;
            if off > size {
                self.write_zeros(&chain, size, off - size)?;
            }
            self.runs(&chain, off, data.len(), |fs, dev, r| {
                fs.dev_write(dev, &data[r])
            })
        })();
        self.put_chain(id, chain);
        if r.is_ok() && end > size {
            self.node_mut(id)?.ent[28..32].copy_from_slice(&(end as u32).to_le_bytes());
        }
        self.touch_mtime(id)?;
        r.map(|()| data.len())
    }

    /// Sets a file's size: shorter frees clusters past it, longer fills with zeros.
    pub fn truncate(&mut self, id: NodeId, len: u64) -> Result<()> {
        self.rw()?;
        let size = ent_size(&self.file_node(id)?.ent) as u64;
        if len > u32::MAX as u64 {
            return Err(Error::TooBig);
        }
        let mut chain = self.take_chain(id)?;
        let cb = self.g.cb;
        let keep = len.div_ceil(cb) as usize;
        let r = (|| {
            if len > size {
                self.grow(id, &mut chain, keep)?;
                self.write_zeros(&chain, size, len - size)?;
            } else if keep < chain.len() {
                let gone = chain.split_off(keep);
                if let Some(&l) = chain.last() {
                    let eoc = self.g.eoc();
                    self.fat_set(l, eoc)?;
                } else {
                    set_ent_cluster(&mut self.node_mut(id)?.ent, 0);
                }
                self.free_clusters(&gone)?;
            }
            Ok(())
        })();
        self.put_chain(id, chain);
        r?;
        self.node_mut(id)?.ent[28..32].copy_from_slice(&(len as u32).to_le_bytes());
        self.touch_mtime(id)
    }
}
