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
//!
//! This file holds the types, the superblock and group descriptors and mounting; the rest of
//! [`Ext2`] is in `blocks` (block allocation, block maps), `inodes`, `data` (file contents,
//! truncation, attributes) and `dir` (directories and the operations that change the tree).

extern crate alloc;

mod blocks;
mod cache;
mod data;
mod dindex;
mod dir;
mod htree;
mod inodes;
mod util;

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use cache::Cache;
use dindex::{DirCache, DirIndex};
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
    /// In memory only: no inode below this index in the group is free.
    ino_hint: u32,
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
    /// A symlink whose target lives in `i_block` (no data block besides an xattr block).
    fn is_fast_symlink(&self, bs: u64) -> bool {
        let ea = if self.file_acl() != 0 { bs / 512 } else { 0 };
        self.mode() & S_IFMT == S_IFLNK && self.blocks512() == ea && self.size() < 60
    }
}

/// Where a directory entry is: (inode, logical block, offset of the entry, offset of the
/// previous entry in that block).
type EntryAt = (u32, u64, usize, Option<usize>);

/// A mounted ext2 file system on `D`.
pub struct Ext2<D: BlockDevice> {
    dev: D,
    sb: Vec<u8>,
    bs: u64,
    groups: Vec<Group>,
    gdt_dirty: bool,
    sb_dirty: bool,
    cache: Cache,
    /// The directory-entry cache (dindex.rs).
    dcache: DirCache,
    /// Lookups answered through a directory's hash index (htree.rs).
    htree_lookups: u64,
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
                ino_hint: 0,
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
            dcache: DirCache::default(),
            htree_lookups: 0,
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

    /// Counters of the directory caches: (lookups answered by the entry cache, entry-cache
    /// indexes built by a directory scan, lookups answered through an htree index).
    pub fn dir_stats(&self) -> (u64, u64, u64) {
        (self.dcache.hits, self.dcache.builds, self.htree_lookups)
    }

    /// The directory hash of `name` with hash `version` (0 legacy, 1 half-MD4, 2 TEA; +3
    /// unsigned) and `seed`, as `debugfs dx_hash` prints it.
    pub fn dir_hash(name: &[u8], version: u8, seed: [u32; 4]) -> Option<u32> {
        htree::dirhash(name, version, seed)
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
