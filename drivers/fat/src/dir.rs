//! Directories: their regions (FAT12/16's fixed root, cluster chains), the directory-block
//! cache, scanning entries with their long names, finding, inserting and removing the slots of
//! an entry, and writing the cache back.

use super::*;

impl<D: BlockDevice> Fat<D> {
    pub(crate) fn dir_block(&mut self, off: u64, len: u64) -> Result<&mut Block> {
        if !self.dir_cache.contains_key(&off) {
            if self.dir_cache_bytes >= DIR_CACHE_MAX {
                self.flush_dirs()?;
                self.dir_cache.clear();
                self.dir_cache_bytes = 0;
            }
            let mut data = vec![0u8; len as usize];
            self.dev_read(off, &mut data)?;
            self.dir_cache.insert(off, Block { data, dirty: false });
            self.dir_cache_bytes += len as usize;
        }
        Ok(self.dir_cache.get_mut(&off).expect("just inserted"))
    }

    /// A freshly allocated directory cluster: zeros, dirty.
    pub(crate) fn new_dir_block(&mut self, c: u32) {
        let off = self.g.cluster_off(c);
        let cb = self.g.cb as usize;
        if self
            .dir_cache
            .insert(
                off,
                Block {
                    data: vec![0u8; cb],
                    dirty: true,
                },
            )
            .is_none()
        {
            self.dir_cache_bytes += cb;
        }
    }

    /// The (offset, length) pieces of the directory whose first cluster is `first`
    /// (0: the FAT12/16 root region).
    pub(crate) fn cluster_regions(&mut self, first: u32) -> Result<Vec<(u64, u64)>> {
        if first == 0 {
            if self.g.fixed_root() {
                return Ok(vec![(self.g.root_start, self.g.root_bytes)]);
            }
            return Err(Error::Corrupt("a directory without clusters"));
        }
        let max = MAX_DIR_BYTES.div_ceil(self.g.cb);
        let chain = self.walk(first, max)?;
        Ok(self.chain_regions(&chain))
    }

    pub(crate) fn chain_regions(&self, chain: &[u32]) -> Vec<(u64, u64)> {
        chain
            .iter()
            .map(|&c| (self.g.cluster_off(c), self.g.cb))
            .collect()
    }

    pub(crate) fn dir_regions(&mut self, dir: NodeId) -> Result<Vec<(u64, u64)>> {
        if !self.node(dir)?.dir {
            return Err(Error::NotDir);
        }
        if dir == ROOT && self.g.fixed_root() {
            return Ok(vec![(self.g.root_start, self.g.root_bytes)]);
        }
        let chain = self.take_chain(dir)?;
        if chain.is_empty() {
            return Err(Error::Corrupt("a directory without clusters"));
        }
        let r = self.chain_regions(&chain);
        self.put_chain(dir, chain);
        Ok(r)
    }

    /// Every live entry of the directory made of `regions` (no `.`/`..`, no volume label).
    pub(crate) fn scan_regions(&mut self, regions: &[(u64, u64)]) -> Result<Vec<Found>> {
        struct Lfn {
            chk: u8,
            next: u8,
            buf: Vec<u16>,
            first: u32,
        }
        let mut out = Vec::new();
        let mut lfn: Option<Lfn> = None;
        let mut slot = 0u32;
        let fat32 = self.g.ty == FatType::Fat32;
        'outer: for &(off, len) in regions {
            let blk = self.dir_block(off, len)?;
            for i in 0..(len / 32) as usize {
                let mut e = [0u8; 32];
                e.copy_from_slice(&blk.data[i * 32..i * 32 + 32]);
                let s = slot;
                slot += 1;
                if e[0] == 0 {
                    break 'outer;
                }
                if e[0] == 0xE5 {
                    lfn = None;
                    continue;
                }
                if e[11] == ATTR_LFN {
                    let ord = e[0];
                    let seq = ord & 0x1F;
                    if ord & 0x40 != 0 {
                        lfn = (1..=20).contains(&seq).then(|| {
                            let mut buf = vec![0u16; 13 * seq as usize];
                            let k = (seq as usize - 1) * 13;
                            buf[k..k + 13].copy_from_slice(&name::lfn_chars(&e));
                            Lfn {
                                chk: e[13],
                                next: seq - 1,
                                buf,
                                first: s,
                            }
                        });
                    } else {
                        match lfn.as_mut() {
                            Some(l) if seq != 0 && seq == l.next && e[13] == l.chk => {
                                let k = (seq as usize - 1) * 13;
                                l.buf[k..k + 13].copy_from_slice(&name::lfn_chars(&e));
                                l.next -= 1;
                            }
                            _ => lfn = None,
                        }
                    }
                    continue;
                }
                let pending = lfn.take();
                if e[11] & ATTR_VOLUME != 0 {
                    continue;
                }
                let mut short = [0u8; 11];
                short.copy_from_slice(&e[..11]);
                if short == name::DOT || short == name::DOTDOT {
                    continue;
                }
                let long = match pending {
                    Some(l) if l.next == 0 && l.chk == name::checksum(&short) => {
                        name::decode_long(&l.buf).map(|n| (n, l.first))
                    }
                    _ => None,
                };
                let (name, first_slot) =
                    long.unwrap_or_else(|| (name::short_display(&short, e[12]), s));
                let _ = fat32;
                out.push(Found {
                    name,
                    short,
                    first_slot,
                    slot: s,
                    pos: off + i as u64 * 32,
                    ent: e,
                });
            }
        }
        Ok(out)
    }

    pub(crate) fn scan(&mut self, dir: NodeId) -> Result<Vec<Found>> {
        let r = self.dir_regions(dir)?;
        self.scan_regions(&r)
    }

    pub(crate) fn find(&mut self, dir: NodeId, name: &str) -> Result<Option<Found>> {
        let want = name::strip(name);
        if want.is_empty() {
            return Ok(None);
        }
        Ok(self.scan(dir)?.into_iter().find(|f| {
            name::name_eq(&f.name, want) || name::name_eq(&name::short_display(&f.short, 0), want)
        }))
    }

    /// Writes one 32-byte slot at byte position `pos` (through the cache).
    pub(crate) fn write_slot(&mut self, pos: u64, e: &[u8; 32]) -> Result<()> {
        let (off, len) = if pos < self.g.data_start {
            (self.g.root_start, self.g.root_bytes)
        } else {
            let rel = (pos - self.g.data_start) % self.g.cb;
            (pos - rel, self.g.cb)
        };
        let b = self.dir_block(off, len)?;
        let o = (pos - off) as usize;
        b.data[o..o + 32].copy_from_slice(e);
        b.dirty = true;
        Ok(())
    }

    pub(crate) fn slot_pos(regions: &[(u64, u64)], slot: u32) -> Option<u64> {
        let mut s = slot as u64;
        for &(off, len) in regions {
            let n = len / 32;
            if s < n {
                return Some(off + s * 32);
            }
            s -= n;
        }
        None
    }

    /// Marks slots `a..=b` of the directory deleted.
    pub(crate) fn remove_slots(&mut self, regions: &[(u64, u64)], a: u32, b: u32) -> Result<()> {
        for s in a..=b {
            let pos =
                Self::slot_pos(regions, s).ok_or(Error::Corrupt("directory slot out of range"))?;
            let (off, len) = if pos < self.g.data_start {
                (self.g.root_start, self.g.root_bytes)
            } else {
                let rel = (pos - self.g.data_start) % self.g.cb;
                (pos - rel, self.g.cb)
            };
            let blk = self.dir_block(off, len)?;
            blk.data[(pos - off) as usize] = 0xE5;
            blk.dirty = true;
        }
        Ok(())
    }

    /// Writes `slots` into the first run of free slots of `dir` (growing it by zeroed
    /// clusters when needed); returns (position, slot index) of the last one.
    pub(crate) fn insert_slots(&mut self, dir: NodeId, slots: &[[u8; 32]]) -> Result<(u64, u32)> {
        let n = slots.len() as u32;
        let mut regions = self.dir_regions(dir)?;
        let mut run = 0u32;
        let mut start = 0u32;
        let mut idx = 0u32;
        let mut found = None;
        'outer: for &(off, len) in &regions {
            let blk = self.dir_block(off, len)?;
            for i in 0..(len / 32) as usize {
                let b = blk.data[i * 32];
                if b == 0 || b == 0xE5 {
                    if run == 0 {
                        start = idx;
                    }
                    run += 1;
                    if run == n {
                        found = Some(start);
                        break 'outer;
                    }
                } else {
                    run = 0;
                }
                idx += 1;
            }
        }
        let start = match found {
            Some(s) => s,
            None => {
                if dir == ROOT && self.g.fixed_root() {
                    return Err(Error::NoSpace);
                }
                let missing = (n - run) as u64 * 32;
                let add = missing.div_ceil(self.g.cb) as usize;
                let total = (regions.len() + add) as u64 * self.g.cb;
                if total > MAX_DIR_BYTES {
                    return Err(Error::NoSpace);
                }
                let mut chain = self.take_chain(dir)?;
                let last = *chain
                    .last()
                    .ok_or(Error::Corrupt("a directory without clusters"))?;
                let new = match self.alloc(add, Some(last)) {
                    Ok(v) => v,
                    Err(e) => {
                        self.put_chain(dir, chain);
                        return Err(e);
                    }
                };
                for &c in &new {
                    self.new_dir_block(c);
                }
                chain.extend_from_slice(&new);
                regions = self.chain_regions(&chain);
                self.put_chain(dir, chain);
                if run == 0 { idx } else { start }
            }
        };
        let mut last = (0, 0);
        for (k, s) in slots.iter().enumerate() {
            let si = start + k as u32;
            let pos = Self::slot_pos(&regions, si).ok_or(Error::Corrupt("slot out of range"))?;
            self.write_slot(pos, s)?;
            last = (pos, si);
        }
        Ok(last)
    }

    // ---- the node table -------------------------------------------------------------

    /// The entries (long-name slots and short entry) for `name` in `dir`, the short entry
    /// made from `template`.
    pub(crate) fn entry_slots(
        &mut self,
        dir: NodeId,
        name: &str,
        template: [u8; 32],
    ) -> Result<Vec<[u8; 32]>> {
        let units = name::long_units(name)?;
        let shorts: BTreeSet<[u8; 11]> = self.scan(dir)?.into_iter().map(|f| f.short).collect();
        let (short, need_lfn) = name::make_short(name, |s| shorts.contains(s))?;
        let mut e = template;
        e[..11].copy_from_slice(&short);
        e[12] = 0;
        let mut v = if need_lfn {
            name::lfn_slots(&units, name::checksum(&short))
        } else {
            Vec::new()
        };
        v.push(e);
        Ok(v)
    }

    /// Whether the directory whose first cluster is `first` has no entries.
    pub(crate) fn dir_empty(&mut self, first: u32) -> Result<bool> {
        let r = self.cluster_regions(first)?;
        Ok(self.scan_regions(&r)?.is_empty())
    }

    /// Takes the entry `f` of `dir` off the disk; its node (if held) becomes unlinked and
    /// keeps its clusters until released, else they are freed now.
    pub(crate) fn drop_entry(&mut self, dir: NodeId, f: &Found) -> Result<()> {
        let regions = self.dir_regions(dir)?;
        self.remove_slots(&regions, f.first_slot, f.slot)?;
        match self.by_pos.remove(&f.pos) {
            Some(id) => {
                self.node_mut(id)?.pos = None;
                self.collect(id)
            }
            None => {
                let c = ent_cluster(&f.ent, self.g.ty == FatType::Fat32);
                let chain = self.walk(c, u64::MAX)?;
                self.free_clusters(&chain)
            }
        }
    }

    pub(crate) fn flush_dirs(&mut self) -> Result<()> {
        let dirty: Vec<u64> = self
            .dir_cache
            .iter()
            .filter(|(_, b)| b.dirty)
            .map(|(k, _)| *k)
            .collect();
        for off in dirty {
            let b = self.dir_cache.get_mut(&off).expect("present");
            b.dirty = false;
            let data = core::mem::take(&mut b.data);
            let r = self.dev_write(off, &data);
            self.dir_cache.get_mut(&off).expect("present").data = data;
            r?;
        }
        Ok(())
    }
}
