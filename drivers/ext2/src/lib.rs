#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
//! A native ext2 driver: read-write, revision 0 and 1, generic over a [`BlockDevice`].
//!
//! Supported: direct, indirect, double and triple indirect blocks; sparse files; large
//! files (`i_size_high`, `LARGE_FILE`); linear directories, htree directories read as
//! linear ones (their index blocks look like empty entries) and un-indexed when modified
//! (the `INDEX` flag is cleared, as Linux's ext2 does); fast and slow symlinks; hard links;
//! device nodes, FIFOs and sockets. The features `mke2fs -t ext2` sets (`ext_attr
//! resize_inode dir_index filetype sparse_super large_file`) are handled. An unknown
//! incompatible feature refuses the mount ([`Error::Unsupported`]); an unknown
//! read-only-compatible feature forces a read-only mount.
//!
//! Every number read from the image is bounds-checked: a corrupt image gives
//! [`Error::Corrupt`], never a panic. All operations take `&mut self`; the caller
//! serialises access (the kernel puts the file system behind one sleeping lock).
//! Metadata goes through a write-back cache; call [`Ext2::sync`] (or [`Ext2::unmount`]) to
//! write it out.

extern crate alloc;

mod cache;
mod util;

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use cache::Cache;
use util::*;

/// Storage the file system lives on: byte-addressed reads and writes (the offsets and
/// lengths this crate uses are always multiples of 512).
/// The longest run of contiguous whole blocks read in one device request.
const MAX_RUN: u64 = 4 << 20;

pub trait BlockDevice {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<()>;
    fn write_at(&self, off: u64, buf: &[u8]) -> Result<()>;
    fn flush(&self) -> Result<()> {
        Ok(())
    }
    /// Reads several disjoint ranges, `(byte offset, buffer)`; a device that can keep
    /// several requests in flight overlaps them. The default reads them one after another.
    fn read_many(&self, reqs: &mut [(u64, &mut [u8])]) -> Result<()> {
        for (off, buf) in reqs.iter_mut() {
            self.read_at(*off, buf)?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    Io,
    /// The image is inconsistent; the text says what was wrong.
    Corrupt(&'static str),
    /// Incompatible features this driver does not know (the `s_feature_incompat` bits).
    Unsupported(u32),
    NotFound,
    Exists,
    NotDir,
    IsDir,
    NotEmpty,
    NoSpace,
    ReadOnly,
    NameTooLong,
    TooBig,
    Invalid,
    TooManyLinks,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io => write!(f, "I/O error"),
            Error::Corrupt(s) => write!(f, "corrupt file system: {s}"),
            Error::Unsupported(b) => write!(f, "unsupported incompatible features {b:#x}"),
            e => write!(f, "{e:?}"),
        }
    }
}

pub type Result<T> = core::result::Result<T, Error>;

pub const ROOT_INO: u32 = 2;
const MAGIC: u16 = 0xEF53;

pub const INCOMPAT_FILETYPE: u32 = 0x2;
const INCOMPAT_KNOWN: u32 = INCOMPAT_FILETYPE;
pub const RO_COMPAT_SPARSE_SUPER: u32 = 0x1;
pub const RO_COMPAT_LARGE_FILE: u32 = 0x2;
const RO_COMPAT_KNOWN: u32 = RO_COMPAT_SPARSE_SUPER | RO_COMPAT_LARGE_FILE | 0x4;

const INDEX_FL: u32 = 0x1000;

pub const S_IFMT: u16 = 0o170000;
pub const S_IFSOCK: u16 = 0o140000;
pub const S_IFLNK: u16 = 0o120000;
pub const S_IFREG: u16 = 0o100000;
pub const S_IFBLK: u16 = 0o060000;
pub const S_IFDIR: u16 = 0o040000;
pub const S_IFCHR: u16 = 0o020000;
pub const S_IFIFO: u16 = 0o010000;

const LINK_MAX: u16 = 32000;

/// What to create.
#[derive(Clone, Copy, Debug)]
pub enum Kind<'a> {
    Regular,
    Directory,
    Symlink(&'a [u8]),
    CharDev(u32, u32),
    BlockDev(u32, u32),
    Fifo,
    Socket,
}

/// An inode's attributes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attr {
    pub ino: u32,
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub nlink: u16,
    /// 512-byte sectors.
    pub blocks: u64,
    pub atime: u32,
    pub mtime: u32,
    pub ctime: u32,
    /// (major, minor) of a device node.
    pub rdev: (u32, u32),
    pub flags: u32,
}

impl Attr {
    pub fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }
    pub fn is_reg(&self) -> bool {
        self.mode & S_IFMT == S_IFREG
    }
    pub fn is_symlink(&self) -> bool {
        self.mode & S_IFMT == S_IFLNK
    }
}

/// One directory entry as [`Ext2::read_dir`] returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub ino: u32,
    pub name: Vec<u8>,
    /// `EXT2_FT_*` (0 when the file system has no `filetype` feature).
    pub file_type: u8,
    /// Byte offset of the entry after this one.
    pub next: u64,
}

/// What [`Ext2::set_attr`] changes (`None`: unchanged).
#[derive(Clone, Copy, Debug, Default)]
pub struct SetAttr {
    pub perm: Option<u16>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub atime: Option<u32>,
    pub mtime: Option<u32>,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct StatFs {
    pub block_size: u32,
    pub blocks: u64,
    pub free_blocks: u64,
    pub avail_blocks: u64,
    pub inodes: u64,
    pub free_inodes: u64,
}

#[derive(Clone, Copy, Debug)]
struct Group {
    block_bitmap: u32,
    inode_bitmap: u32,
    inode_table: u32,
    free_blocks: u16,
    free_inodes: u16,
    used_dirs: u16,
}

/// An on-disk inode (the whole record, so unknown fields survive a rewrite).
#[derive(Clone)]
struct Inode {
    ino: u32,
    raw: Vec<u8>,
}

impl Inode {
    fn mode(&self) -> u16 {
        r16(&self.raw, 0)
    }
    fn is_dir(&self) -> bool {
        self.mode() & S_IFMT == S_IFDIR
    }
    fn is_reg(&self) -> bool {
        self.mode() & S_IFMT == S_IFREG
    }
    fn size(&self) -> u64 {
        let lo = r32(&self.raw, 4) as u64;
        if self.is_reg() {
            lo | (r32(&self.raw, 108) as u64) << 32
        } else {
            lo
        }
    }
    fn set_size(&mut self, s: u64) {
        w32(&mut self.raw, 4, s as u32);
        if self.is_reg() {
            w32(&mut self.raw, 108, (s >> 32) as u32);
        }
    }
    fn links(&self) -> u16 {
        r16(&self.raw, 26)
    }
    fn set_links(&mut self, n: u16) {
        w16(&mut self.raw, 26, n);
    }
    fn blocks512(&self) -> u64 {
        r32(&self.raw, 28) as u64
    }
    fn set_blocks512(&mut self, n: u64) {
        w32(&mut self.raw, 28, n as u32);
    }
    fn flags(&self) -> u32 {
        r32(&self.raw, 32)
    }
    fn block(&self, i: usize) -> u32 {
        r32(&self.raw, 40 + 4 * i)
    }
    fn set_block(&mut self, i: usize, v: u32) {
        w32(&mut self.raw, 40 + 4 * i, v);
    }
    fn file_acl(&self) -> u32 {
        r32(&self.raw, 104)
    }
    fn uid(&self) -> u32 {
        r16(&self.raw, 2) as u32 | (r16(&self.raw, 120) as u32) << 16
    }
    fn gid(&self) -> u32 {
        r16(&self.raw, 24) as u32 | (r16(&self.raw, 122) as u32) << 16
    }
    fn set_uid(&mut self, u: u32) {
        w16(&mut self.raw, 2, u as u16);
        w16(&mut self.raw, 120, (u >> 16) as u16);
    }
    fn set_gid(&mut self, g: u32) {
        w16(&mut self.raw, 24, g as u16);
        w16(&mut self.raw, 122, (g >> 16) as u16);
    }
    fn set_ctime(&mut self, t: u32) {
        w32(&mut self.raw, 12, t);
    }
    fn set_mtime(&mut self, t: u32) {
        w32(&mut self.raw, 16, t);
    }
    fn rdev(&self) -> (u32, u32) {
        let old = self.block(0);
        if old != 0 {
            ((old >> 8) & 0xff, old & 0xff)
        } else {
            let n = self.block(1);
            ((n & 0xfff00) >> 8, (n & 0xff) | ((n >> 12) & 0xfff00))
        }
    }
    /// A symlink whose target lives in `i_block` (no data block besides an xattr block).
    fn is_fast_symlink(&self, bs: u64) -> bool {
        let ea = if self.file_acl() != 0 { bs / 512 } else { 0 };
        self.mode() & S_IFMT == S_IFLNK && self.blocks512() == ea && self.size() < 60
    }
}

/// A mounted ext2 file system on `D`.
pub struct Ext2<D: BlockDevice> {
    dev: D,
    sb: Vec<u8>,
    bs: u64,
    groups: Vec<Group>,
    gdt_dirty: bool,
    sb_dirty: bool,
    cache: Cache,
    read_only: bool,
    inode_size: u64,
    inodes_per_group: u32,
    blocks_per_group: u32,
    first_data_block: u32,
    blocks_count: u32,
    inodes_count: u32,
    first_ino: u32,
    filetype: bool,
    rev: u32,
    /// Seconds since the epoch, for timestamps.
    pub clock: fn() -> u32,
    generation: u32,
}

fn zero_clock() -> u32 {
    0
}

impl<D: BlockDevice> Ext2<D> {
    /// Reads and checks the superblock and group descriptors. `read_only` forces a
    /// read-only mount; unknown read-only-compatible features force one too.
    pub fn open(dev: D, read_only: bool) -> Result<Self> {
        let mut sb = vec![0u8; 1024];
        dev.read_at(1024, &mut sb)?;
        if r16(&sb, 56) != MAGIC {
            return Err(Error::Corrupt("bad superblock magic (not ext2)"));
        }
        let rev = r32(&sb, 76);
        if rev > 1 {
            return Err(Error::Corrupt("unknown revision level"));
        }
        let log = r32(&sb, 24);
        if log > 6 {
            return Err(Error::Corrupt("block size out of range"));
        }
        let bs = 1024u64 << log;
        let (incompat, ro_compat) = if rev >= 1 {
            (r32(&sb, 96), r32(&sb, 100))
        } else {
            (0, 0)
        };
        if incompat & !INCOMPAT_KNOWN != 0 {
            return Err(Error::Unsupported(incompat & !INCOMPAT_KNOWN));
        }
        let read_only = read_only || ro_compat & !RO_COMPAT_KNOWN != 0;
        let (inode_size, first_ino) = if rev >= 1 {
            (r16(&sb, 88) as u64, r32(&sb, 84))
        } else {
            (128, 11)
        };
        if inode_size < 128 || !inode_size.is_power_of_two() || inode_size > bs {
            return Err(Error::Corrupt("inode size out of range"));
        }
        let blocks_count = r32(&sb, 4);
        let inodes_count = r32(&sb, 0);
        let first_data_block = r32(&sb, 20);
        let bpg = r32(&sb, 32);
        let ipg = r32(&sb, 40);
        if bpg == 0 || bpg as u64 > 8 * bs || ipg == 0 || ipg as u64 > 8 * bs {
            return Err(Error::Corrupt("blocks or inodes per group out of range"));
        }
        if first_data_block != (if bs == 1024 { 1 } else { 0 }) || blocks_count <= first_data_block
        {
            return Err(Error::Corrupt("bad first data block or block count"));
        }
        let ngroups = (blocks_count - first_data_block).div_ceil(bpg) as u64;
        if (ngroups * ipg as u64) < inodes_count as u64
            || inodes_count < first_ino
            || first_ino < 11
        {
            return Err(Error::Corrupt("inode count inconsistent with groups"));
        }
        if dev_size_hint(&dev, blocks_count as u64 * bs).is_err() {
            return Err(Error::Corrupt("file system larger than the device"));
        }
        let gdt_blocks = (ngroups * 32).div_ceil(bs);
        if first_data_block as u64 + 1 + gdt_blocks > blocks_count as u64 {
            return Err(Error::Corrupt("group descriptors beyond the end"));
        }
        let mut gdt = vec![0u8; (gdt_blocks * bs) as usize];
        dev.read_at((first_data_block as u64 + 1) * bs, &mut gdt)?;
        let itable_blocks = (ipg as u64 * inode_size).div_ceil(bs);
        let mut groups = Vec::with_capacity(ngroups as usize);
        for g in 0..ngroups as usize {
            let o = g * 32;
            let gr = Group {
                block_bitmap: r32(&gdt, o),
                inode_bitmap: r32(&gdt, o + 4),
                inode_table: r32(&gdt, o + 8),
                free_blocks: r16(&gdt, o + 12),
                free_inodes: r16(&gdt, o + 14),
                used_dirs: r16(&gdt, o + 16),
            };
            let ok = |b: u32, n: u64| b >= first_data_block && b as u64 + n <= blocks_count as u64;
            if !ok(gr.block_bitmap, 1)
                || !ok(gr.inode_bitmap, 1)
                || !ok(gr.inode_table, itable_blocks)
            {
                return Err(Error::Corrupt(
                    "group descriptor points outside the file system",
                ));
            }
            groups.push(gr);
        }
        let filetype = incompat & INCOMPAT_FILETYPE != 0;
        let mut fs = Ext2 {
            dev,
            sb,
            bs,
            groups,
            gdt_dirty: false,
            sb_dirty: false,
            cache: Cache::new(bs as usize, ((4 << 20) / bs) as usize),
            read_only,
            inode_size,
            inodes_per_group: ipg,
            blocks_per_group: bpg,
            first_data_block,
            blocks_count,
            inodes_count,
            first_ino,
            filetype,
            rev,
            clock: zero_clock,
            generation: 0,
        };
        let root = fs.inode(ROOT_INO)?;
        if !root.is_dir() {
            return Err(Error::Corrupt("root inode is not a directory"));
        }
        if !fs.read_only {
            // Mounted: not cleanly unmounted until unmount() says so (as Linux does).
            let st = r16(&fs.sb, 58);
            w16(&mut fs.sb, 58, st & !1);
            let mc = r16(&fs.sb, 52);
            w16(&mut fs.sb, 52, mc.wrapping_add(1));
            fs.sb_dirty = true;
            fs.write_super()?;
            fs.sb_dirty = true;
        }
        Ok(fs)
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    pub fn block_size(&self) -> u32 {
        self.bs as u32
    }

    pub fn revision(&self) -> u32 {
        self.rev
    }

    pub fn device(&self) -> &D {
        &self.dev
    }

    pub fn statfs(&self) -> StatFs {
        let free = r32(&self.sb, 12) as u64;
        let r = r32(&self.sb, 8) as u64;
        StatFs {
            block_size: self.bs as u32,
            blocks: self.blocks_count as u64,
            free_blocks: free,
            avail_blocks: free.saturating_sub(r),
            inodes: self.inodes_count as u64,
            free_inodes: r32(&self.sb, 16) as u64,
        }
    }

    fn now(&self) -> u32 {
        (self.clock)()
    }

    fn check_rw(&self) -> Result<()> {
        if self.read_only {
            Err(Error::ReadOnly)
        } else {
            Ok(())
        }
    }

    // ---------------------------------------------------------------------------------
    // Superblock and group descriptors

    fn write_super(&mut self) -> Result<()> {
        if self.sb_dirty {
            let t = self.now();
            w32(&mut self.sb, 48, t);
            self.dev.write_at(1024, &self.sb)?;
            self.sb_dirty = false;
        }
        if self.gdt_dirty {
            let gdt_blocks = (self.groups.len() as u64 * 32).div_ceil(self.bs);
            let mut gdt = vec![0u8; (gdt_blocks * self.bs) as usize];
            let start = (self.first_data_block as u64 + 1) * self.bs;
            self.dev.read_at(start, &mut gdt)?;
            for (g, gr) in self.groups.iter().enumerate() {
                let o = g * 32;
                w32(&mut gdt, o, gr.block_bitmap);
                w32(&mut gdt, o + 4, gr.inode_bitmap);
                w32(&mut gdt, o + 8, gr.inode_table);
                w16(&mut gdt, o + 12, gr.free_blocks);
                w16(&mut gdt, o + 14, gr.free_inodes);
                w16(&mut gdt, o + 16, gr.used_dirs);
            }
            self.dev.write_at(start, &gdt)?;
            self.gdt_dirty = false;
        }
        Ok(())
    }

    /// Writes every dirty metadata block, the group descriptors and the superblock.
    pub fn sync(&mut self) -> Result<()> {
        if self.read_only {
            return Ok(());
        }
        self.cache.flush(&self.dev)?;
        self.write_super()?;
        self.dev.flush()
    }

    /// Syncs and marks the file system cleanly unmounted.
    pub fn unmount(&mut self) -> Result<()> {
        if self.read_only {
            return Ok(());
        }
        let st = r16(&self.sb, 58);
        w16(&mut self.sb, 58, st | 1);
        self.sb_dirty = true;
        self.sync()
    }

    fn add_free_blocks(&mut self, g: usize, d: i32) {
        if let Some(gr) = self.groups.get_mut(g) {
            gr.free_blocks = (gr.free_blocks as i32 + d) as u16;
        }
        let f = r32(&self.sb, 12) as i64 + d as i64;
        w32(&mut self.sb, 12, f as u32);
        self.gdt_dirty = true;
        self.sb_dirty = true;
    }

    fn add_free_inodes(&mut self, g: usize, d: i32, dir: bool) {
        if let Some(gr) = self.groups.get_mut(g) {
            gr.free_inodes = (gr.free_inodes as i32 + d) as u16;
            if dir {
                gr.used_dirs = (gr.used_dirs as i32 - d) as u16;
            }
        }
        let f = r32(&self.sb, 16) as i64 + d as i64;
        w32(&mut self.sb, 16, f as u32);
        self.gdt_dirty = true;
        self.sb_dirty = true;
    }

    // ---------------------------------------------------------------------------------
    // Blocks

    fn check_block(&self, b: u32) -> Result<u64> {
        if b < self.first_data_block || b >= self.blocks_count {
            return Err(Error::Corrupt("block number out of range"));
        }
        Ok(b as u64)
    }

    /// Allocates a block, preferring `goal` and what follows it.
    fn alloc_block(&mut self, goal: u32) -> Result<u32> {
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

    fn free_block(&mut self, b: u32) -> Result<()> {
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

    // ---------------------------------------------------------------------------------
    // Inodes

    fn inode_loc(&self, ino: u32) -> Result<(u64, usize)> {
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

    fn inode(&mut self, ino: u32) -> Result<Inode> {
        let (blk, off) = self.inode_loc(ino)?;
        let isz = self.inode_size as usize;
        let b = self.cache.read(&self.dev, blk)?;
        let raw = b
            .get(off..off + isz)
            .ok_or(Error::Corrupt("inode outside its block"))?
            .to_vec();
        Ok(Inode { ino, raw })
    }

    fn put_inode(&mut self, i: &Inode) -> Result<()> {
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
    fn live_inode(&mut self, ino: u32) -> Result<Inode> {
        let i = self.inode(ino)?;
        if i.mode() == 0 || (i.links() == 0 && r32(&i.raw, 20) != 0) {
            return Err(Error::Corrupt("reference to a deleted inode"));
        }
        Ok(i)
    }

    pub fn attr(&mut self, ino: u32) -> Result<Attr> {
        let i = self.live_inode(ino)?;
        let kind = i.mode() & S_IFMT;
        Ok(Attr {
            ino,
            mode: i.mode(),
            uid: i.uid(),
            gid: i.gid(),
            size: i.size(),
            nlink: i.links(),
            blocks: i.blocks512(),
            atime: r32(&i.raw, 8),
            mtime: r32(&i.raw, 16),
            ctime: r32(&i.raw, 12),
            rdev: if kind == S_IFCHR || kind == S_IFBLK {
                i.rdev()
            } else {
                (0, 0)
            },
            flags: i.flags(),
        })
    }

    fn alloc_inode(&mut self, parent: u32, dir: bool) -> Result<u32> {
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
            };
            let n = self.inodes_per_group as usize;
            let bitmap = self.cache.read(&self.dev, bm)?;
            if let Some(i) = (first..n).find(|&i| !bit(bitmap, i)) {
                let ino = g as u32 * self.inodes_per_group + i as u32 + 1;
                if ino > self.inodes_count {
                    continue;
                }
                let bitmap = self.cache.modify(&self.dev, bm)?;
                set_bit(bitmap, i, true);
                self.add_free_inodes(g, -1, dir);
                return Ok(ino);
            }
        }
        Err(Error::NoSpace)
    }

    fn free_inode(&mut self, ino: u32, dir: bool) -> Result<()> {
        self.inode_loc(ino)?;
        let g = ((ino - 1) / self.inodes_per_group) as usize;
        let i = ((ino - 1) % self.inodes_per_group) as usize;
        let bm = self.groups[g].inode_bitmap as u64;
        let bitmap = self.cache.modify(&self.dev, bm)?;
        if !bit(bitmap, i) {
            return Err(Error::Corrupt("freeing a free inode"));
        }
        set_bit(bitmap, i, false);
        self.add_free_inodes(g, 1, dir);
        Ok(())
    }

    // ---------------------------------------------------------------------------------
    // Block maps

    fn ptrs_per_block(&self) -> u64 {
        self.bs / 4
    }

    fn max_blocks(&self) -> u64 {
        let p = self.ptrs_per_block();
        12 + p + p * p + p * p * p
    }

    /// Physical block of logical block `lb` (0 = hole). With `alloc`, holes (and missing
    /// indirect blocks) are filled; `goal` guides where.
    fn bmap(&mut self, ino: &mut Inode, lb: u64, alloc: bool, goal: &mut u32) -> Result<u32> {
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
    fn truncate_blocks(&mut self, ino: &mut Inode, keep: u64) -> Result<()> {
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
    fn trunc_ind(
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

    // ---------------------------------------------------------------------------------
    // File data

    /// Reads from a regular file (or any inode's data) at `off`; returns the count (0 at
    /// or past the end).
    pub fn read(&mut self, ino: u32, off: u64, buf: &mut [u8]) -> Result<usize> {
        let mut i = self.live_inode(ino)?;
        if i.is_dir() {
            return Err(Error::IsDir);
        }
        self.read_inode_data(&mut i, off, buf)
    }

    fn read_inode_data(&mut self, i: &mut Inode, off: u64, buf: &mut [u8]) -> Result<usize> {
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

    fn write_inode_data(&mut self, i: &mut Inode, off: u64, data: &[u8]) -> Result<usize> {
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

    fn set_large_file(&mut self) {
        let ro = r32(&self.sb, 100);
        if ro & RO_COMPAT_LARGE_FILE == 0 && self.rev >= 1 {
            w32(&mut self.sb, 100, ro | RO_COMPAT_LARGE_FILE);
            self.sb_dirty = true;
        }
    }

    fn inode_goal(&self, ino: u32) -> u32 {
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

    // ---------------------------------------------------------------------------------
    // Directories

    fn dir_block(&mut self, dir: &mut Inode, lb: u64) -> Result<Option<u64>> {
        let pb = self.bmap(dir, lb, false, &mut 0)?;
        Ok(if pb == 0 { None } else { Some(pb as u64) })
    }

    /// Validates one entry at `off` in a block: returns (inode, rec_len, name_len, type).
    fn entry_at(&self, b: &[u8], off: usize) -> Result<(u32, usize, usize, u8)> {
        let bs = self.bs as usize;
        if off + 8 > bs {
            return Err(Error::Corrupt("directory entry header crosses the block"));
        }
        let ino = r32(b, off);
        let rec = r16(b, off + 4) as usize;
        let (nl, ft) = if self.filetype {
            (r8(b, off + 6) as usize, r8(b, off + 7))
        } else {
            (r16(b, off + 6) as usize, 0)
        };
        if rec < 8 || rec % 4 != 0 || off + rec > bs || (ino != 0 && 8 + nl > rec) {
            return Err(Error::Corrupt("bad directory entry length"));
        }
        if ino > self.inodes_count {
            return Err(Error::Corrupt("directory entry inode out of range"));
        }
        Ok((ino, rec, nl, ft))
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

    /// Finds `name` in `dir`: (inode, logical block, offset of the entry, offset of the
    /// previous entry in that block).
    fn find_entry(
        &mut self,
        d: &mut Inode,
        name: &[u8],
    ) -> Result<Option<(u32, u64, usize, Option<usize>)>> {
        let nblocks = d.size().div_ceil(self.bs);
        for lb in 0..nblocks {
            let Some(pb) = self.dir_block(d, lb)? else {
                continue;
            };
            let b = self.cache.read(&self.dev, pb)?.to_vec();
            let mut off = 0usize;
            let mut prev = None;
            while off < self.bs as usize {
                let (ino, rec, nl, _) = self.entry_at(&b, off)?;
                if ino != 0 && nl == name.len() && b.get(off + 8..off + 8 + nl) == Some(name) {
                    return Ok(Some((ino, lb, off, prev)));
                }
                prev = Some(off);
                off += rec;
            }
        }
        Ok(None)
    }

    pub fn lookup(&mut self, dir: u32, name: &[u8]) -> Result<u32> {
        let mut d = self.live_inode(dir)?;
        if !d.is_dir() {
            return Err(Error::NotDir);
        }
        match self.find_entry(&mut d, name)? {
            Some((ino, ..)) => Ok(ino),
            None => Err(Error::NotFound),
        }
    }

    fn ft_of(mode: u16) -> u8 {
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

    fn write_entry(&self, b: &mut [u8], off: usize, ino: u32, rec: usize, name: &[u8], mode: u16) {
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
    fn unindex(d: &mut Inode) {
        let f = d.flags();
        if f & INDEX_FL != 0 {
            w32(&mut d.raw, 32, f & !INDEX_FL);
        }
    }

    fn add_entry(&mut self, d: &mut Inode, name: &[u8], ino: u32, mode: u16) -> Result<()> {
        if name.is_empty() || name.len() > 255 {
            return Err(Error::NameTooLong);
        }
        let need = (8 + name.len()).next_multiple_of(4);
        let bs = self.bs as usize;
        let nblocks = d.size().div_ceil(self.bs);
        Self::unindex(d);
        for lb in 0..nblocks {
            let Some(pb) = self.dir_block(d, lb)? else {
                continue;
            };
            let b = self.cache.read(&self.dev, pb)?.to_vec();
            let mut off = 0usize;
            while off < bs {
                let (eino, rec, nl, _) = self.entry_at(&b, off)?;
                let used = if eino == 0 {
                    0
                } else {
                    (8 + nl).next_multiple_of(4)
                };
                if rec >= used + need {
                    let mut nb = b.clone();
                    if eino == 0 {
                        self.write_entry(&mut nb, off, ino, rec, name, mode);
                    } else {
                        w16(&mut nb, off + 4, used as u16);
                        self.write_entry(&mut nb, off + used, ino, rec - used, name, mode);
                    }
                    self.cache.modify(&self.dev, pb)?.copy_from_slice(&nb);
                    return Ok(());
                }
                off += rec;
            }
        }
        // No room: a new block.
        let mut goal = 0;
        let pb = self.bmap(d, nblocks, true, &mut goal)? as u64;
        let mut nb = vec![0u8; bs];
        self.write_entry(&mut nb, 0, ino, bs, name, mode);
        self.cache.zeroed(&self.dev, pb)?.copy_from_slice(&nb);
        d.set_size((nblocks + 1) * self.bs);
        Ok(())
    }

    fn remove_entry(
        &mut self,
        d: &mut Inode,
        lb: u64,
        off: usize,
        prev: Option<usize>,
    ) -> Result<()> {
        let pb = self.dir_block(d, lb)?.ok_or(Error::Io)?;
        Self::unindex(d);
        let b = self.cache.modify(&self.dev, pb)?;
        let rec = r16(b, off + 4);
        match prev {
            Some(p) => {
                let prec = r16(b, p + 4);
                w16(b, p + 4, prec + rec);
            }
            None => w32(b, off, 0),
        }
        Ok(())
    }

    fn set_entry_ino(
        &mut self,
        d: &mut Inode,
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
        Ok(())
    }

    fn dir_is_empty(&mut self, d: &mut Inode) -> Result<bool> {
        let ents = self.read_dir_inode(d, 3)?;
        Ok(ents.iter().all(|e| e.name == b"." || e.name == b".."))
    }

    fn read_dir_inode(&mut self, d: &mut Inode, max: usize) -> Result<Vec<DirEntry>> {
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

    fn init_inode(&mut self, i: &mut Inode, parent: &mut Inode, kind: Kind<'_>) -> Result<()> {
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
        self.remove_entry(&mut d, lb, off, prev)?;
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

    fn release_xattr_block(&mut self, b: u32) -> Result<()> {
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
                self.set_entry_ino(&mut nd, lb, off, ino, src.mode())?;
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
        self.remove_entry(&mut od, lb, off, prev)?;
        if src.is_dir() && odir != ndir {
            // Point `..` at the new parent.
            if let Some((_, lb, off, _)) = self.find_entry(&mut src, b"..")? {
                self.set_entry_ino(&mut src, lb, off, ndir, S_IFDIR)?;
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

fn dev_size_hint<D: BlockDevice>(dev: &D, fs_bytes: u64) -> Result<()> {
    // The last block of the file system must be readable.
    let mut b = [0u8; 512];
    dev.read_at(fs_bytes.saturating_sub(512), &mut b)
}

impl Cache {
    /// Writes back (and drops) cached copies of `n` blocks from `first`, before a direct
    /// read of them.
    fn flush_range<D: BlockDevice>(&mut self, dev: &D, first: u64, n: u64) -> Result<()> {
        for b in first..first + n {
            self.write_back(dev, b)?;
        }
        Ok(())
    }
}

/// A block device over an in-memory image (tests, tools).
pub struct MemDevice(pub core::cell::RefCell<Vec<u8>>);

impl BlockDevice for MemDevice {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<()> {
        let v = self.0.borrow();
        let s = usize::try_from(off).map_err(|_| Error::Io)?;
        let src = v
            .get(s..s.checked_add(buf.len()).ok_or(Error::Io)?)
            .ok_or(Error::Io)?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn write_at(&self, off: u64, buf: &[u8]) -> Result<()> {
        let mut v = self.0.borrow_mut();
        let s = usize::try_from(off).map_err(|_| Error::Io)?;
        let dst = v
            .get_mut(s..s.checked_add(buf.len()).ok_or(Error::Io)?)
            .ok_or(Error::Io)?;
        dst.copy_from_slice(buf);
        Ok(())
    }
}

/// Keep `String` in the public surface for names callers want as text.
pub fn name_str(n: &[u8]) -> String {
    String::from_utf8_lossy(n).into_owned()
}
