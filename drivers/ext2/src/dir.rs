//! Directories: entries, lookup, listing, and the operations that change the tree
//! (create, link, unlink, rename).

use super::*;

impl<D: BlockDevice> Ext2<D> {
    pub(crate) fn dir_block(&mut self, dir: &mut Inode, lb: u64) -> Result<Option<u64>> {
        let pb = self.bmap(dir, lb, false, &mut 0)?;
        Ok(if pb == 0 { None } else { Some(pb as u64) })
    }

    /// Validates one entry at `off` in a block: returns (inode, rec_len, name_len, type).
    pub(crate) fn entry_at(&self, b: &[u8], off: usize) -> Result<(u32, usize, usize, u8)> {
        parse_entry(b, off, self.bs as usize, self.filetype, self.inodes_count)
    }

    /// Up to `max` live entries from byte offset `offset` (0 = the start; `.` and `..`
    /// included as stored).
    pub fn read_dir(&mut self, dir: u32, offset: u64, max: usize) -> Result<Vec<DirEntry>> {
        let mut d = self.live_inode(dir)?;
        if !d.is_dir() {
            return Err(Error::NotDir);
        }
        let size = d.size();
        let bs = self.bs;
        let mut out = Vec::new();
        let mut pos = offset;
        while pos < size && out.len() < max {
            let lb = pos / bs;
            let Some(pb) = self.dir_block(&mut d, lb)? else {
                pos = (lb + 1) * bs;
                continue;
            };
            let b = self.cache.read(&self.dev, pb)?.to_vec();
            let mut off = (pos % bs) as usize;
            // Resuming mid-block: only at entry boundaries; re-walk from the block start.
            if off != 0 {
                let mut o = 0usize;
                while o < off {
                    let (_, rec, _, _) = self.entry_at(&b, o)?;
                    o += rec;
                }
                off = o;
            }
            while off < bs as usize && out.len() < max {
                let (ino, rec, nl, ft) = self.entry_at(&b, off)?;
                let next = lb * bs + (off + rec) as u64;
                if ino != 0 {
                    let name = b.get(off + 8..off + 8 + nl).ok_or(Error::Io)?.to_vec();
                    out.push(DirEntry {
                        ino,
                        name,
                        file_type: ft,
                        next,
                    });
                }
                off += rec;
                pos = next;
            }
        }
        Ok(out)
    }

    /// The directory-entry index of `d` (see dindex.rs), built by one pass over its blocks
    /// when it is not cached.
    pub(crate) fn dindex(&mut self, d: &mut Inode) -> Result<&mut DirIndex> {
        if !self.dcache.contains(d.ino) {
            let nblocks = d.size().div_ceil(self.bs);
            let mut idx = DirIndex::new();
            let (bs, ft, ic) = (self.bs as usize, self.filetype, self.inodes_count);
            for lb in 0..nblocks {
                let Some(pb) = self.dir_block(d, lb)? else {
                    idx.room.push(0);
                    continue;
                };
                let b = self.cache.read(&self.dev, pb)?;
                let mut off = 0usize;
                let mut room = 0usize;
                while off < bs {
                    let (ino, rec, nl, _) = parse_entry(b, off, bs, ft, ic)?;
                    if ino != 0 {
                        let name = b.get(off + 8..off + 8 + nl).ok_or(Error::Io)?;
                        idx.names.insert(name.to_vec(), (ino, lb as u32));
                    }
                    room = room.max(rec - used_len(ino, nl));
                    off += rec;
                }
                idx.room.push(room as u16);
            }
            self.dcache.insert(d.ino, idx);
        } else {
            self.dcache.hits += 1;
        }
        self.dcache.get(d.ino).ok_or(Error::Io)
    }

    /// The largest entry that fits in the slack of directory block `b`.
    fn block_room(&self, b: &[u8]) -> Result<u16> {
        room_of(b, self.bs as usize, self.filetype, self.inodes_count)
    }

    /// Finds `name` in `dir`: (inode, logical block, offset of the entry, offset of the
    /// previous entry in that block). The index says which block; that block is read to
    /// find the entry's offset.
    pub(crate) fn find_entry(&mut self, d: &mut Inode, name: &[u8]) -> Result<Option<EntryAt>> {
        let Some(&(ino, lb)) = self.dindex(d)?.names.get(name) else {
            return Ok(None);
        };
        let lb = lb as u64;
        let pb = self
            .dir_block(d, lb)?
            .ok_or(Error::Corrupt("indexed directory block is a hole"))?;
        let (bs, ft, ic) = (self.bs as usize, self.filetype, self.inodes_count);
        let b = self.cache.read(&self.dev, pb)?;
        let mut off = 0usize;
        let mut prev = None;
        while off < bs {
            let (eino, rec, nl, _) = parse_entry(b, off, bs, ft, ic)?;
            if eino != 0 && nl == name.len() && b.get(off + 8..off + 8 + nl) == Some(name) {
                if eino != ino {
                    break;
                }
                return Ok(Some((ino, lb, off, prev)));
            }
            prev = Some(off);
            off += rec;
        }
        // The index disagrees with the block: forget it (the next call rebuilds it).
        self.dcache.drop_dir(d.ino);
        Err(Error::Corrupt("directory index out of date"))
    }

    pub fn lookup(&mut self, dir: u32, name: &[u8]) -> Result<u32> {
        // A directory in the entry cache is a live directory (a freed one leaves it): the
        // cache answers without reading the inode.
        if let Some(idx) = self.dcache.get(dir) {
            let found = idx.names.get(name).map(|&(ino, _)| ino);
            self.dcache.hits += 1;
            return found.ok_or(Error::NotFound);
        }
        let mut d = self.live_inode(dir)?;
        if !d.is_dir() {
            return Err(Error::NotDir);
        }
        // A hash-indexed directory not in the entry cache: two or three blocks through its
        // index instead of building the cache from all of them.
        if d.flags() & INDEX_FL != 0
            && !self.dcache.contains(dir)
            && d.size() > self.bs
            && let Some(found) = self.htree_lookup(&mut d, name)?
        {
            self.htree_lookups += 1;
            return found.ok_or(Error::NotFound);
        }
        // The entry cache answers by itself (hits and misses); only changes read the block.
        match self.dindex(&mut d)?.names.get(name) {
            Some(&(ino, _)) => Ok(ino),
            None => Err(Error::NotFound),
        }
    }

    pub(crate) fn ft_of(mode: u16) -> u8 {
        match mode & S_IFMT {
            S_IFREG => 1,
            S_IFDIR => 2,
            S_IFCHR => 3,
            S_IFBLK => 4,
            S_IFIFO => 5,
            S_IFSOCK => 6,
            S_IFLNK => 7,
            _ => 0,
        }
    }

    pub(crate) fn write_entry(
        &self,
        b: &mut [u8],
        off: usize,
        ino: u32,
        rec: usize,
        name: &[u8],
        mode: u16,
    ) {
        w32(b, off, ino);
        w16(b, off + 4, rec as u16);
        if self.filetype {
            w8(b, off + 6, name.len() as u8);
            w8(b, off + 7, Self::ft_of(mode));
        } else {
            w16(b, off + 6, name.len() as u16);
        }
        if let Some(dst) = b.get_mut(off + 8..off + 8 + name.len()) {
            dst.copy_from_slice(name);
        }
    }

    /// Clears the htree flag of a directory about to change (its index would go stale).
    pub(crate) fn unindex(d: &mut Inode) {
        let f = d.flags();
        if f & INDEX_FL != 0 {
            w32(&mut d.raw, 32, f & !INDEX_FL);
        }
    }

    pub(crate) fn add_entry(
        &mut self,
        d: &mut Inode,
        name: &[u8],
        ino: u32,
        mode: u16,
    ) -> Result<()> {
        if name.is_empty() || name.len() > 255 {
            return Err(Error::NameTooLong);
        }
        let need = (8 + name.len()).next_multiple_of(4);
        let bs = self.bs as usize;
        let nblocks = d.size().div_ceil(self.bs);
        Self::unindex(d);
        let target = {
            let idx = self.dindex(d)?;
            idx.room.iter().position(|&r| r as usize >= need)
        };
        if let Some(lb) = target {
            let lb = lb as u64;
            let pb = self
                .dir_block(d, lb)?
                .ok_or(Error::Corrupt("indexed directory block is a hole"))?;
            let (ft, ic) = (self.filetype, self.inodes_count);
            let mut nb = self.cache.read(&self.dev, pb)?.to_vec();
            let mut off = 0usize;
            let mut done = false;
            while off < bs {
                let (eino, rec, nl, _) = parse_entry(&nb, off, bs, ft, ic)?;
                let used = used_len(eino, nl);
                if rec >= used + need {
                    if eino == 0 {
                        self.write_entry(&mut nb, off, ino, rec, name, mode);
                    } else {
                        w16(&mut nb, off + 4, used as u16);
                        self.write_entry(&mut nb, off + used, ino, rec - used, name, mode);
                    }
                    done = true;
                    break;
                }
                off += rec;
            }
            if !done {
                self.dcache.drop_dir(d.ino);
                return Err(Error::Corrupt("directory index out of date"));
            }
            let room = self.block_room(&nb)?;
            self.cache.modify(&self.dev, pb)?.copy_from_slice(&nb);
            let idx = self.dindex(d)?;
            idx.room[lb as usize] = room;
            idx.names.insert(name.to_vec(), (ino, lb as u32));
            return Ok(());
        }
        // No room: a new block.
        let mut goal = 0;
        let pb = self.bmap(d, nblocks, true, &mut goal)? as u64;
        let mut nb = vec![0u8; bs];
        self.write_entry(&mut nb, 0, ino, bs, name, mode);
        let room = self.block_room(&nb)?;
        self.cache.zeroed(&self.dev, pb)?.copy_from_slice(&nb);
        d.set_size((nblocks + 1) * self.bs);
        let idx = self.dindex(d)?;
        idx.room.resize(nblocks as usize, 0);
        idx.room.push(room);
        idx.names.insert(name.to_vec(), (ino, nblocks as u32));
        Ok(())
    }

    /// Removes the entry `name` found at (`lb`, `off`, `prev`) by [`Self::find_entry`].
    pub(crate) fn remove_entry(
        &mut self,
        d: &mut Inode,
        name: &[u8],
        lb: u64,
        off: usize,
        prev: Option<usize>,
    ) -> Result<()> {
        let pb = self.dir_block(d, lb)?.ok_or(Error::Io)?;
        Self::unindex(d);
        let (bs, ft, ic) = (self.bs as usize, self.filetype, self.inodes_count);
        let b = self.cache.modify(&self.dev, pb)?;
        let rec = r16(b, off + 4);
        match prev {
            Some(p) => {
                let prec = r16(b, p + 4);
                w16(b, p + 4, prec + rec);
            }
            None => w32(b, off, 0),
        }
        let room = room_of(b, bs, ft, ic)?;
        if let Some(idx) = self.dcache.get(d.ino) {
            idx.names.remove(name);
            if let Some(r) = idx.room.get_mut(lb as usize) {
                *r = room;
            }
        }
        Ok(())
    }

    /// Points the entry `name` at (`lb`, `off`) to `ino`.
    pub(crate) fn set_entry_ino(
        &mut self,
        d: &mut Inode,
        name: &[u8],
        lb: u64,
        off: usize,
        ino: u32,
        mode: u16,
    ) -> Result<()> {
        let pb = self.dir_block(d, lb)?.ok_or(Error::Io)?;
        let filetype = self.filetype;
        let b = self.cache.modify(&self.dev, pb)?;
        w32(b, off, ino);
        if filetype {
            w8(b, off + 7, Self::ft_of(mode));
        }
        if let Some(idx) = self.dcache.get(d.ino)
            && let Some(e) = idx.names.get_mut(name)
        {
            e.0 = ino;
        }
        Ok(())
    }

    pub(crate) fn dir_is_empty(&mut self, d: &mut Inode) -> Result<bool> {
        let ents = self.read_dir_inode(d, 3)?;
        Ok(ents.iter().all(|e| e.name == b"." || e.name == b".."))
    }

    pub(crate) fn read_dir_inode(&mut self, d: &mut Inode, max: usize) -> Result<Vec<DirEntry>> {
        self.read_dir(d.ino, 0, max)
    }

    /// Creates `name` in `dir`; returns the new inode number.
    pub fn create(
        &mut self,
        dir: u32,
        name: &[u8],
        kind: Kind<'_>,
        perm: u16,
        uid: u32,
        gid: u32,
    ) -> Result<u32> {
        self.check_rw()?;
        if name.is_empty() || name.len() > 255 {
            return Err(Error::NameTooLong);
        }
        if name.contains(&b'/') || name.contains(&0) || name == b"." || name == b".." {
            return Err(Error::Invalid);
        }
        let mut d = self.live_inode(dir)?;
        if !d.is_dir() {
            return Err(Error::NotDir);
        }
        if self.find_entry(&mut d, name)?.is_some() {
            return Err(Error::Exists);
        }
        let is_dir = matches!(kind, Kind::Directory);
        if is_dir && d.links() >= LINK_MAX {
            return Err(Error::TooManyLinks);
        }
        let ino = self.alloc_inode(dir, is_dir)?;
        let t = self.now();
        let type_bits = match kind {
            Kind::Regular => S_IFREG,
            Kind::Directory => S_IFDIR,
            Kind::Symlink(_) => S_IFLNK,
            Kind::CharDev(..) => S_IFCHR,
            Kind::BlockDev(..) => S_IFBLK,
            Kind::Fifo => S_IFIFO,
            Kind::Socket => S_IFSOCK,
        };
        let mode = type_bits | (perm & 0o7777);
        let mut i = Inode {
            ino,
            raw: vec![0u8; self.inode_size as usize],
        };
        w16(&mut i.raw, 0, mode);
        i.set_uid(uid);
        i.set_gid(gid);
        w32(&mut i.raw, 8, t);
        i.set_ctime(t);
        i.set_mtime(t);
        i.set_links(if is_dir { 2 } else { 1 });
        self.generation = self.generation.wrapping_add(1);
        w32(&mut i.raw, 100, self.generation ^ t);
        if self.inode_size > 128 {
            // i_extra_isize: the fields up to i_crtime_extra, as mke2fs writes them.
            w16(&mut i.raw, 128, 32);
        }
        let r = self.init_inode(&mut i, &mut d, kind);
        if let Err(e) = r {
            let _ = self.truncate_blocks(&mut i, 0);
            let _ = self.free_inode(ino, is_dir);
            return Err(e);
        }
        if let Err(e) = self.add_entry(&mut d, name, ino, mode) {
            let _ = self.truncate_blocks(&mut i, 0);
            let _ = self.free_inode(ino, is_dir);
            return Err(e);
        }
        if is_dir {
            d.set_links(d.links() + 1);
        }
        d.set_mtime(t);
        d.set_ctime(t);
        self.put_inode(&i)?;
        self.put_inode(&d)?;
        Ok(ino)
    }

    pub(crate) fn init_inode(
        &mut self,
        i: &mut Inode,
        parent: &mut Inode,
        kind: Kind<'_>,
    ) -> Result<()> {
        match kind {
            Kind::Directory => {
                let mut goal = self.inode_goal(i.ino);
                let pb = self.bmap(i, 0, true, &mut goal)? as u64;
                let bs = self.bs as usize;
                let mut b = vec![0u8; bs];
                self.write_entry(&mut b, 0, i.ino, 12, b".", S_IFDIR);
                self.write_entry(&mut b, 12, parent.ino, bs - 12, b"..", S_IFDIR);
                self.cache.zeroed(&self.dev, pb)?.copy_from_slice(&b);
                i.set_size(self.bs);
            }
            Kind::Symlink(target) => {
                if target.is_empty() || target.len() >= self.bs as usize || target.len() > 4095 {
                    return Err(Error::NameTooLong);
                }
                if target.len() < 60 {
                    if let Some(d) = i.raw.get_mut(40..40 + target.len()) {
                        d.copy_from_slice(target);
                    }
                    i.set_size(target.len() as u64);
                } else {
                    self.write_inode_data(i, 0, target)?;
                }
            }
            Kind::CharDev(ma, mi) | Kind::BlockDev(ma, mi) => {
                if ma < 256 && mi < 256 {
                    i.set_block(0, (ma << 8) | mi);
                } else {
                    i.set_block(1, (mi & 0xff) | (ma << 8) | ((mi & !0xff) << 12));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// A new name for the non-directory `ino` in `dir`.
    pub fn link(&mut self, dir: u32, name: &[u8], ino: u32) -> Result<()> {
        self.check_rw()?;
        if name.is_empty() || name.len() > 255 {
            return Err(Error::NameTooLong);
        }
        let mut d = self.live_inode(dir)?;
        if !d.is_dir() {
            return Err(Error::NotDir);
        }
        let mut i = self.live_inode(ino)?;
        if i.is_dir() {
            return Err(Error::IsDir);
        }
        if i.links() >= LINK_MAX {
            return Err(Error::TooManyLinks);
        }
        if self.find_entry(&mut d, name)?.is_some() {
            return Err(Error::Exists);
        }
        self.add_entry(&mut d, name, ino, i.mode())?;
        i.set_links(i.links() + 1);
        let t = self.now();
        i.set_ctime(t);
        d.set_mtime(t);
        d.set_ctime(t);
        self.put_inode(&i)?;
        self.put_inode(&d)
    }

    /// Removes `name` from `dir` (a directory only when `is_dir`, and only if empty).
    /// Returns the inode and whether its last link went: the caller then calls
    /// [`Ext2::evict`] once nothing uses it any more.
    pub fn unlink(&mut self, dir: u32, name: &[u8], is_dir: bool) -> Result<(u32, bool)> {
        self.check_rw()?;
        let mut d = self.live_inode(dir)?;
        if !d.is_dir() {
            return Err(Error::NotDir);
        }
        if name == b"." || name == b".." {
            return Err(Error::Invalid);
        }
        let (ino, lb, off, prev) = self.find_entry(&mut d, name)?.ok_or(Error::NotFound)?;
        let mut i = self.live_inode(ino)?;
        if is_dir != i.is_dir() {
            return Err(if is_dir { Error::NotDir } else { Error::IsDir });
        }
        if is_dir && !self.dir_is_empty(&mut i)? {
            return Err(Error::NotEmpty);
        }
        self.remove_entry(&mut d, name, lb, off, prev)?;
        let t = self.now();
        if is_dir {
            i.set_links(0);
            d.set_links(d.links().saturating_sub(1));
        } else {
            i.set_links(i.links().saturating_sub(1));
        }
        i.set_ctime(t);
        d.set_mtime(t);
        d.set_ctime(t);
        self.put_inode(&i)?;
        self.put_inode(&d)?;
        Ok((ino, i.links() == 0))
    }

    /// Frees an inode whose last link is gone (no-op otherwise).
    pub fn evict(&mut self, ino: u32) -> Result<()> {
        if self.read_only {
            return Ok(());
        }
        let mut i = self.inode(ino)?;
        if i.links() != 0 || i.mode() == 0 {
            return Ok(());
        }
        let dir = i.is_dir();
        let fast = i.is_fast_symlink(self.bs);
        let kind = i.mode() & S_IFMT;
        if !fast && (kind == S_IFREG || kind == S_IFDIR || kind == S_IFLNK) {
            self.truncate_blocks(&mut i, 0)?;
        }
        let acl = i.file_acl();
        if acl != 0 {
            self.release_xattr_block(acl)?;
            w32(&mut i.raw, 104, 0);
        }
        // i_dtime: a small value would read as an orphan-list link to e2fsck.
        w32(
            &mut i.raw,
            20,
            self.now().max(self.inodes_count.saturating_add(1)),
        );
        i.set_size(0);
        i.set_blocks512(0);
        self.put_inode(&i)?;
        self.free_inode(ino, dir)
    }

    pub(crate) fn release_xattr_block(&mut self, b: u32) -> Result<()> {
        let blk = self.check_block(b)?;
        let buf = self.cache.read(&self.dev, blk)?;
        if r32(buf, 0) != 0xEA02_0000 {
            return Err(Error::Corrupt("bad extended attribute block"));
        }
        let refs = r32(buf, 4);
        if refs <= 1 {
            self.free_block(b)
        } else {
            w32(self.cache.modify(&self.dev, blk)?, 4, refs - 1);
            Ok(())
        }
    }

    /// Moves `old` in `odir` to `new` in `ndir`, replacing a compatible target (a file by a
    /// file, a directory by an empty directory). Returns a replaced inode whose last link
    /// went (to [`Ext2::evict`]). The caller rules out moving a directory into itself.
    pub fn rename(&mut self, odir: u32, old: &[u8], ndir: u32, new: &[u8]) -> Result<Option<u32>> {
        self.check_rw()?;
        if new.is_empty() || new.len() > 255 {
            return Err(Error::NameTooLong);
        }
        if old == b"." || old == b".." || new == b"." || new == b".." {
            return Err(Error::Invalid);
        }
        let mut od = self.live_inode(odir)?;
        if !od.is_dir() {
            return Err(Error::NotDir);
        }
        let (ino, ..) = self.find_entry(&mut od, old)?.ok_or(Error::NotFound)?;
        let mut src = self.live_inode(ino)?;
        let mut nd = self.live_inode(ndir)?;
        if !nd.is_dir() {
            return Err(Error::NotDir);
        }
        let t = self.now();
        let mut gone = None;
        match self.find_entry(&mut nd, new)? {
            Some((tino, _, _, _)) if tino == ino => return Ok(None),
            Some((tino, lb, off, _)) => {
                let mut tgt = self.live_inode(tino)?;
                if src.is_dir() && !tgt.is_dir() {
                    return Err(Error::NotDir);
                }
                if !src.is_dir() && tgt.is_dir() {
                    return Err(Error::IsDir);
                }
                if tgt.is_dir() && !self.dir_is_empty(&mut tgt)? {
                    return Err(Error::NotEmpty);
                }
                self.set_entry_ino(&mut nd, new, lb, off, ino, src.mode())?;
                if tgt.is_dir() {
                    tgt.set_links(0);
                    nd.set_links(nd.links().saturating_sub(1));
                } else {
                    tgt.set_links(tgt.links().saturating_sub(1));
                }
                tgt.set_ctime(t);
                self.put_inode(&tgt)?;
                if tgt.links() == 0 {
                    gone = Some(tino);
                }
            }
            None => {
                if src.is_dir() && odir != ndir && nd.links() >= LINK_MAX {
                    return Err(Error::TooManyLinks);
                }
                self.add_entry(&mut nd, new, ino, src.mode())?;
            }
        }
        if odir == ndir {
            od = nd.clone();
        }
        // Remove the old name (re-find: adding may have moved nothing, but be exact).
        let (_, lb, off, prev) = self
            .find_entry(&mut od, old)?
            .ok_or(Error::Corrupt("renamed entry vanished"))?;
        self.remove_entry(&mut od, old, lb, off, prev)?;
        if src.is_dir() && odir != ndir {
            // Point `..` at the new parent.
            if let Some((_, lb, off, _)) = self.find_entry(&mut src, b"..")? {
                self.set_entry_ino(&mut src, b"..", lb, off, ndir, S_IFDIR)?;
            }
            od.set_links(od.links().saturating_sub(1));
            nd.set_links(nd.links() + 1);
        }
        src.set_ctime(t);
        od.set_mtime(t);
        od.set_ctime(t);
        self.put_inode(&src)?;
        if odir == ndir {
            self.put_inode(&od)?;
        } else {
            nd.set_mtime(t);
            nd.set_ctime(t);
            self.put_inode(&od)?;
            self.put_inode(&nd)?;
        }
        Ok(gone)
    }

    /// The parent of directory `dir` (its `..` entry).
    pub fn parent(&mut self, dir: u32) -> Result<u32> {
        self.lookup(dir, b"..")
    }
}

/// Bytes an entry needs (0 for an unused one, whose whole record is slack).
fn used_len(ino: u32, name_len: usize) -> usize {
    if ino == 0 {
        0
    } else {
        (8 + name_len).next_multiple_of(4)
    }
}

/// Validates one entry at `off` in a directory block of `bs` bytes: returns (inode,
/// rec_len, name_len, type).
pub(crate) fn parse_entry(
    b: &[u8],
    off: usize,
    bs: usize,
    filetype: bool,
    inodes_count: u32,
) -> Result<(u32, usize, usize, u8)> {
    if off + 8 > bs {
        return Err(Error::Corrupt("directory entry header crosses the block"));
    }
    let ino = r32(b, off);
    let rec = r16(b, off + 4) as usize;
    let (nl, ft) = if filetype {
        (r8(b, off + 6) as usize, r8(b, off + 7))
    } else {
        (r16(b, off + 6) as usize, 0)
    };
    if rec < 8 || !rec.is_multiple_of(4) || off + rec > bs || (ino != 0 && 8 + nl > rec) {
        return Err(Error::Corrupt("bad directory entry length"));
    }
    if ino > inodes_count {
        return Err(Error::Corrupt("directory entry inode out of range"));
    }
    Ok((ino, rec, nl, ft))
}

/// The largest entry that fits in the slack of directory block `b`.
fn room_of(b: &[u8], bs: usize, filetype: bool, inodes_count: u32) -> Result<u16> {
    let mut off = 0usize;
    let mut room = 0usize;
    while off < bs {
        let (ino, rec, nl, _) = parse_entry(b, off, bs, filetype, inodes_count)?;
        room = room.max(rec - used_len(ino, nl));
        off += rec;
    }
    Ok(room as u16)
}
