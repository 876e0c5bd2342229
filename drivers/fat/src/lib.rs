//! A native FAT12/16/32 file system with VFAT long names, read-write, over any block
//! device given through [`BlockDevice`] (512-byte sectors). `no_std` + alloc, no unsafe.
//!
//! FAT has no inodes: a file is its directory entry. [`Fat`] keeps a table of the nodes
//! the caller has looked up ([`NodeId`]), each pointing at the position of its short entry
//! (updated by renames), so a caller can hold files open, rename and unlink them
//! (an unlinked node keeps its clusters until [`Fat::release`] or [`Fat::unmount`]).
//!
//! Everything read from the image is checked: the boot sector's geometry, cluster numbers
//! (inside the volume), chains (no loops, no free or bad clusters inside, not shorter than
//! the file), long-name slots (sequence and checksum; a bad one falls back to the short
//! name). Corruption gives [`Error::Corrupt`], never a panic or an endless walk.
//!
//! Metadata (FAT sectors, directory clusters) goes through a write-back cache written by
//! [`Fat::sync`] (every FAT copy, and FAT32's FSINFO free count and next-free hint); file
//! data goes straight to the device. A read-write mount sets the boot sector's dirty flag,
//! [`Fat::unmount`] clears it (unless it was set when mounted, as Linux does).

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod name;
mod time;

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

pub use time::{from_dos, to_dos};

/// The device's sector size; every FAT structure is aligned to it.
pub const SECTOR: u64 = 512;

/// A block device of 512-byte sectors.
pub trait BlockDevice {
    /// Size in 512-byte sectors.
    fn sectors(&self) -> u64;
    /// Reads `buf.len() / 512` whole sectors from `sector`.
    fn read_sectors(&self, sector: u64, buf: &mut [u8]) -> Result<()>;
    /// Writes `buf.len() / 512` whole sectors at `sector`.
    fn write_sectors(&self, sector: u64, buf: &[u8]) -> Result<()>;
    /// Makes everything written so far stable.
    fn flush(&self) -> Result<()>;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The device failed.
    Io,
    /// The image is inconsistent (what is wrong).
    Corrupt(&'static str),
    NotFound,
    Exists,
    NotDir,
    IsDir,
    NotEmpty,
    NoSpace,
    ReadOnly,
    NameTooLong,
    /// A name FAT cannot store (`"*/:<>?\|`, control characters, empty).
    InvalidName,
    /// Past FAT's 4 GiB - 1 file size.
    TooBig,
    Invalid,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io => write!(f, "I/O error"),
            Error::Corrupt(w) => write!(f, "corrupt file system: {w}"),
            Error::NotFound => write!(f, "no such file"),
            Error::Exists => write!(f, "file exists"),
            Error::NotDir => write!(f, "not a directory"),
            Error::IsDir => write!(f, "is a directory"),
            Error::NotEmpty => write!(f, "directory not empty"),
            Error::NoSpace => write!(f, "no space left"),
            Error::ReadOnly => write!(f, "read-only file system"),
            Error::NameTooLong => write!(f, "name too long"),
            Error::InvalidName => write!(f, "invalid name"),
            Error::TooBig => write!(f, "file too big"),
            Error::Invalid => write!(f, "invalid argument"),
        }
    }
}

pub type Result<T> = core::result::Result<T, Error>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FatType {
    Fat12,
    Fat16,
    Fat32,
}

/// A node the caller has looked up. The root is [`ROOT`].
pub type NodeId = u64;
pub const ROOT: NodeId = 1;

const ATTR_RO: u8 = 0x01;
const ATTR_VOLUME: u8 = 0x08;
const ATTR_DIR: u8 = 0x10;
const ATTR_ARCHIVE: u8 = 0x20;
const ATTR_LFN: u8 = 0x0F;
/// Directories hold at most 65,536 entries.
const MAX_DIR_BYTES: u64 = 65_536 * 32;
/// Metadata cached before it is written back and dropped.
const DIR_CACHE_MAX: usize = 4 << 20;
const FAT_CACHE_MAX: usize = 8 << 20;

fn le16(b: &[u8], o: usize) -> u32 {
    u16::from_le_bytes([b[o], b[o + 1]]) as u32
}
fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

/// The volume's geometry, from the boot sector.
#[derive(Clone, Debug)]
struct Geo {
    bps: u64,
    cb: u64,
    fat_start: u64,
    fat_sectors: u64,
    nfats: u32,
    /// FAT12/16 root directory region (bytes).
    root_start: u64,
    root_bytes: u64,
    data_start: u64,
    clusters: u32,
    ty: FatType,
    root_cluster: u32,
    fsinfo: Option<u64>,
    /// Some(n): FAT mirroring disabled, only FAT n is used.
    active_fat: Option<u32>,
    state_off: Option<usize>,
}

impl Geo {
    fn parse(b: &[u8], dev_sectors: u64) -> Result<Geo> {
        let bps = le16(b, 11) as u64;
        if !(512..=4096).contains(&bps) || !bps.is_power_of_two() {
            return Err(Error::Corrupt(
                "bytes per sector is not a power of two in 512..4096",
            ));
        }
        let spc = b[13] as u64;
        if spc == 0 || !spc.is_power_of_two() {
            return Err(Error::Corrupt(
                "sectors per cluster is zero or not a power of two",
            ));
        }
        let reserved = le16(b, 14) as u64;
        if reserved == 0 {
            return Err(Error::Corrupt("no reserved sectors"));
        }
        let nfats = b[16] as u32;
        if nfats == 0 {
            return Err(Error::Corrupt("no FATs"));
        }
        let root_entries = le16(b, 17) as u64;
        let total = match le16(b, 19) {
            0 => le32(b, 32),
            n => n,
        } as u64;
        if total == 0 {
            return Err(Error::Corrupt("total sectors is zero"));
        }
        if total * bps > dev_sectors * SECTOR {
            return Err(Error::Corrupt("total sectors past the end of the device"));
        }
        let fat16 = le16(b, 22) as u64;
        let is32 = fat16 == 0;
        let fat_sectors = if is32 { le32(b, 36) as u64 } else { fat16 };
        if fat_sectors == 0 {
            return Err(Error::Corrupt("FAT size is zero"));
        }
        if is32 && root_entries != 0 {
            return Err(Error::Corrupt("FAT32 with a fixed root directory"));
        }
        if !is32 && root_entries == 0 {
            return Err(Error::Corrupt("no root directory entries"));
        }
        let root_sectors = (root_entries * 32).div_ceil(bps);
        let root_sec = reserved + nfats as u64 * fat_sectors;
        let data_sec = root_sec + root_sectors;
        if data_sec >= total {
            return Err(Error::Corrupt("no room for a data area"));
        }
        let clusters = (total - data_sec) / spc;
        if clusters == 0 {
            return Err(Error::Corrupt("no clusters"));
        }
        let ty = if is32 {
            FatType::Fat32
        } else if clusters < 4085 {
            FatType::Fat12
        } else if clusters < 65_525 {
            FatType::Fat16
        } else {
            return Err(Error::Corrupt("too many clusters for FAT16"));
        };
        let clusters = clusters.min(0x0FFF_FFF5 - 1) as u32;
        let bits = match ty {
            FatType::Fat12 => 12,
            FatType::Fat16 => 16,
            FatType::Fat32 => 32,
        };
        if (clusters as u64 + 2) * bits > fat_sectors * bps * 8 {
            return Err(Error::Corrupt("the FAT is too small for the cluster count"));
        }
        let (mut root_cluster, mut fsinfo, mut active_fat) = (0, None, None);
        if is32 {
            root_cluster = le32(b, 44);
            if root_cluster < 2 || root_cluster > clusters + 1 {
                return Err(Error::Corrupt("root cluster outside the volume"));
            }
            let fi = le16(b, 48) as u64;
            if fi != 0 && fi < reserved {
                fsinfo = Some(fi * bps);
            }
            let flags = le16(b, 40);
            if flags & 0x80 != 0 {
                let a = flags & 0x0F;
                if a >= nfats {
                    return Err(Error::Corrupt("active FAT number past the FAT count"));
                }
                active_fat = Some(a);
            }
        }
        let (sig_off, state_off) = if is32 { (0x42, 0x41) } else { (0x26, 0x25) };
        let state_off = matches!(b[sig_off], 0x28 | 0x29).then_some(state_off);
        Ok(Geo {
            bps,
            cb: spc * bps,
            fat_start: reserved * bps,
            fat_sectors,
            nfats,
            root_start: root_sec * bps,
            root_bytes: root_sectors * bps,
            data_start: data_sec * bps,
            clusters,
            ty,
            root_cluster,
            fsinfo,
            active_fat,
            state_off,
        })
    }

    fn max_cluster(&self) -> u32 {
        self.clusters + 1
    }
    fn eoc(&self) -> u32 {
        match self.ty {
            FatType::Fat12 => 0xFFF,
            FatType::Fat16 => 0xFFFF,
            FatType::Fat32 => 0x0FFF_FFFF,
        }
    }
    fn eoc_min(&self) -> u32 {
        match self.ty {
            FatType::Fat12 => 0xFF8,
            FatType::Fat16 => 0xFFF8,
            FatType::Fat32 => 0x0FFF_FFF8,
        }
    }
    fn cluster_off(&self, c: u32) -> u64 {
        self.data_start + (c as u64 - 2) * self.cb
    }
    fn valid(&self, c: u32) -> bool {
        (2..=self.max_cluster()).contains(&c)
    }
    fn fixed_root(&self) -> bool {
        self.ty != FatType::Fat32
    }
}

/// A directory entry found by a scan.
#[derive(Clone, Debug)]
struct Found {
    name: String,
    short: [u8; 11],
    first_slot: u32,
    slot: u32,
    pos: u64,
    ent: [u8; 32],
}

fn ent_cluster(e: &[u8; 32], fat32: bool) -> u32 {
    let lo = le16(e, 26);
    let hi = if fat32 { le16(e, 20) } else { 0 };
    (hi << 16) | lo
}
fn set_ent_cluster(e: &mut [u8; 32], c: u32) {
    e[20..22].copy_from_slice(&((c >> 16) as u16).to_le_bytes());
    e[26..28].copy_from_slice(&(c as u16).to_le_bytes());
}
fn ent_size(e: &[u8; 32]) -> u32 {
    le32(e, 28)
}

struct Node {
    parent: NodeId,
    /// Byte position of the short entry; None for the root and unlinked nodes.
    pos: Option<u64>,
    ent: [u8; 32],
    dir: bool,
    chain: Option<Vec<u32>>,
    held: bool,
    children: u32,
}

/// What [`Fat::attr`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr {
    pub dir: bool,
    pub size: u64,
    /// Bytes allocated (whole clusters).
    pub allocated: u64,
    pub mtime: u64,
    pub atime: u64,
    pub crtime: u64,
    pub read_only: bool,
    pub first_cluster: u32,
}

/// One [`Fat::read_dir`] entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEnt {
    pub name: String,
    /// The node id a lookup of this name gives (while it is not renamed).
    pub id: NodeId,
    pub dir: bool,
    /// Offset to continue from after this entry.
    pub next: u64,
}

/// What [`Fat::statfs`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatFs {
    pub cluster_size: u64,
    pub clusters: u64,
    pub free: u64,
}

struct Block {
    data: Vec<u8>,
    dirty: bool,
}

/// A mounted FAT volume.
pub struct Fat<D: BlockDevice> {
    dev: D,
    g: Geo,
    ro: bool,
    boot: Vec<u8>,
    was_dirty: bool,
    fat_cache: BTreeMap<u64, Block>,
    dir_cache: BTreeMap<u64, Block>,
    dir_cache_bytes: usize,
    free: Option<u32>,
    disk_free: u32,
    disk_next: u32,
    next_free: u32,
    nodes: BTreeMap<NodeId, Node>,
    by_pos: BTreeMap<u64, NodeId>,
    next_id: u64,
    unmounted: bool,
    /// Wall clock, Unix seconds (timestamps of created and written files).
    pub clock: fn() -> u64,
}

fn zero_clock() -> u64 {
    0
}

impl<D: BlockDevice> Fat<D> {
    /// Mounts the volume on `dev`. A read-write mount marks the volume dirty until
    /// [`Fat::unmount`].
    pub fn mount(dev: D, read_only: bool) -> Result<Self> {
        let mut b0 = vec![0u8; SECTOR as usize];
        if dev.sectors() == 0 {
            return Err(Error::Corrupt("empty device"));
        }
        dev.read_sectors(0, &mut b0)?;
        let g = Geo::parse(&b0, dev.sectors())?;
        let mut boot = vec![0u8; g.bps as usize];
        dev.read_sectors(0, &mut boot)?;
        let mut root_ent = [0u8; 32];
        root_ent[11] = ATTR_DIR;
        set_ent_cluster(&mut root_ent, g.root_cluster);
        let mut nodes = BTreeMap::new();
        nodes.insert(
            ROOT,
            Node {
                parent: ROOT,
                pos: None,
                ent: root_ent,
                dir: true,
                chain: None,
                held: true,
                children: 0,
            },
        );
        let mut fs = Fat {
            dev,
            g,
            ro: read_only,
            boot,
            was_dirty: false,
            fat_cache: BTreeMap::new(),
            dir_cache: BTreeMap::new(),
            dir_cache_bytes: 0,
            free: None,
            disk_free: u32::MAX,
            disk_next: u32::MAX,
            next_free: 2,
            nodes,
            by_pos: BTreeMap::new(),
            next_id: 1 << 48,
            unmounted: false,
            clock: zero_clock,
        };
        if let Some(fi) = fs.g.fsinfo {
            let mut s = vec![0u8; fs.g.bps as usize];
            fs.dev_read(fi, &mut s)?;
            if le32(&s, 0) == 0x4161_5252 && le32(&s, 484) == 0x6141_7272 {
                fs.disk_free = le32(&s, 488);
                fs.disk_next = le32(&s, 492);
                if fs.g.valid(fs.disk_next) {
                    fs.next_free = fs.disk_next;
                }
            } else {
                fs.g.fsinfo = None;
            }
        }
        // The root directory must be readable.
        fs.dir_regions(ROOT)?;
        if !read_only {
            // The exact free count (FSINFO's may be stale; fsck checks it).
            fs.free_count()?;
            if let Some(off) = fs.g.state_off {
                fs.was_dirty = fs.boot[off] & 1 != 0;
                fs.boot[off] |= 1;
                let b = fs.boot.clone();
                fs.dev_write(0, &b)?;
                fs.dev.flush()?;
            }
        }
        Ok(fs)
    }

    pub fn fat_type(&self) -> FatType {
        self.g.ty
    }
    pub fn cluster_size(&self) -> u64 {
        self.g.cb
    }
    pub fn is_read_only(&self) -> bool {
        self.ro
    }
    /// Whether the volume was marked dirty (not cleanly unmounted) when mounted read-write.
    pub fn was_dirty(&self) -> bool {
        self.was_dirty
    }
    /// The device, e.g. to check what was written.
    pub fn device(&self) -> &D {
        &self.dev
    }

    // ---- device access -------------------------------------------------------------

    fn dev_read(&self, off: u64, buf: &mut [u8]) -> Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let end = off + buf.len() as u64;
        if end.div_ceil(SECTOR) > self.dev.sectors() {
            return Err(Error::Corrupt("access past the end of the device"));
        }
        if off.is_multiple_of(SECTOR) && (buf.len() as u64).is_multiple_of(SECTOR) {
            return self.dev.read_sectors(off / SECTOR, buf);
        }
        let s0 = off / SECTOR;
        let s1 = end.div_ceil(SECTOR);
        let mut tmp = vec![0u8; ((s1 - s0) * SECTOR) as usize];
        self.dev.read_sectors(s0, &mut tmp)?;
        let a = (off - s0 * SECTOR) as usize;
        buf.copy_from_slice(&tmp[a..a + buf.len()]);
        Ok(())
    }

    fn dev_write(&self, off: u64, data: &[u8]) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let end = off + data.len() as u64;
        if end.div_ceil(SECTOR) > self.dev.sectors() {
            return Err(Error::Corrupt("access past the end of the device"));
        }
        let mut pos = off;
        let mut d = data;
        // Head: a partial first sector.
        if !pos.is_multiple_of(SECTOR) {
            let s = pos / SECTOR;
            let a = (pos % SECTOR) as usize;
            let n = d.len().min(SECTOR as usize - a);
            let mut tmp = [0u8; SECTOR as usize];
            self.dev.read_sectors(s, &mut tmp)?;
            tmp[a..a + n].copy_from_slice(&d[..n]);
            self.dev.write_sectors(s, &tmp)?;
            pos += n as u64;
            d = &d[n..];
        }
        let whole = d.len() / SECTOR as usize * SECTOR as usize;
        if whole > 0 {
            self.dev.write_sectors(pos / SECTOR, &d[..whole])?;
            pos += whole as u64;
            d = &d[whole..];
        }
        if !d.is_empty() {
            let s = pos / SECTOR;
            let mut tmp = [0u8; SECTOR as usize];
            self.dev.read_sectors(s, &mut tmp)?;
            tmp[..d.len()].copy_from_slice(d);
            self.dev.write_sectors(s, &tmp)?;
        }
        Ok(())
    }

    // ---- the FAT ------------------------------------------------------------------

    fn fat_sector(&mut self, idx: u64) -> Result<&mut Block> {
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

    fn fat_byte(&mut self, at: u64) -> Result<u8> {
        let bps = self.g.bps;
        Ok(self.fat_sector(at / bps)?.data[(at % bps) as usize])
    }

    fn set_fat_byte(&mut self, at: u64, v: u8) -> Result<()> {
        let bps = self.g.bps;
        let b = self.fat_sector(at / bps)?;
        b.data[(at % bps) as usize] = v;
        b.dirty = true;
        Ok(())
    }

    /// The FAT entry of cluster `c` (a number in 2..=max).
    fn fat_get(&mut self, c: u32) -> Result<u32> {
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

    fn fat_set(&mut self, c: u32, v: u32) -> Result<()> {
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
    fn next_cluster(&mut self, c: u32) -> Result<Option<u32>> {
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
    fn walk(&mut self, first: u32, max: u64) -> Result<Vec<u32>> {
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

    fn free_count(&mut self) -> Result<u32> {
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
    fn count_free_wide(&mut self) -> Result<u32> {
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
    fn alloc(&mut self, n: usize, after: Option<u32>) -> Result<Vec<u32>> {
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
    fn free_clusters(&mut self, cs: &[u32]) -> Result<()> {
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

    fn dir_block(&mut self, off: u64, len: u64) -> Result<&mut Block> {
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
    fn new_dir_block(&mut self, c: u32) {
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
    fn cluster_regions(&mut self, first: u32) -> Result<Vec<(u64, u64)>> {
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

    fn chain_regions(&self, chain: &[u32]) -> Vec<(u64, u64)> {
        chain
            .iter()
            .map(|&c| (self.g.cluster_off(c), self.g.cb))
            .collect()
    }

    fn node(&self, id: NodeId) -> Result<&Node> {
        self.nodes.get(&id).ok_or(Error::Invalid)
    }
    fn node_mut(&mut self, id: NodeId) -> Result<&mut Node> {
        self.nodes.get_mut(&id).ok_or(Error::Invalid)
    }

    fn first_of(&self, id: NodeId) -> Result<u32> {
        Ok(ent_cluster(
            &self.node(id)?.ent,
            self.g.ty == FatType::Fat32,
        ))
    }

    /// Takes the node's cluster chain out of the table (loading it); give it back with
    /// [`Self::put_chain`].
    fn take_chain(&mut self, id: NodeId) -> Result<Vec<u32>> {
        if let Some(c) = self.node_mut(id)?.chain.take() {
            return Ok(c);
        }
        let n = self.node(id)?;
        let max = if n.dir {
            MAX_DIR_BYTES.div_ceil(self.g.cb)
        } else {
            u64::MAX
        };
        let first = self.first_of(id)?;
        self.walk(first, max)
    }

    fn put_chain(&mut self, id: NodeId, chain: Vec<u32>) {
        if let Some(n) = self.nodes.get_mut(&id) {
            n.chain = Some(chain);
        }
    }

    fn dir_regions(&mut self, dir: NodeId) -> Result<Vec<(u64, u64)>> {
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
    fn scan_regions(&mut self, regions: &[(u64, u64)]) -> Result<Vec<Found>> {
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

    fn scan(&mut self, dir: NodeId) -> Result<Vec<Found>> {
        let r = self.dir_regions(dir)?;
        self.scan_regions(&r)
    }

    fn find(&mut self, dir: NodeId, name: &str) -> Result<Option<Found>> {
        let want = name::strip(name);
        if want.is_empty() {
            return Ok(None);
        }
        Ok(self.scan(dir)?.into_iter().find(|f| {
            name::name_eq(&f.name, want) || name::name_eq(&name::short_display(&f.short, 0), want)
        }))
    }

    /// Writes one 32-byte slot at byte position `pos` (through the cache).
    fn write_slot(&mut self, pos: u64, e: &[u8; 32]) -> Result<()> {
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

    fn slot_pos(regions: &[(u64, u64)], slot: u32) -> Option<u64> {
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
    fn remove_slots(&mut self, regions: &[(u64, u64)], a: u32, b: u32) -> Result<()> {
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
    fn insert_slots(&mut self, dir: NodeId, slots: &[[u8; 32]]) -> Result<(u64, u32)> {
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

    fn node_for(&mut self, parent: NodeId, f: &Found) -> Result<NodeId> {
        if let Some(&id) = self.by_pos.get(&f.pos) {
            self.node_mut(id)?.held = true;
            return Ok(id);
        }
        let fat32 = self.g.ty == FatType::Fat32;
        let c = ent_cluster(&f.ent, fat32);
        let dir = f.ent[11] & ATTR_DIR != 0;
        if c != 0 && !self.g.valid(c) {
            return Err(Error::Corrupt(
                "a directory entry with a start cluster outside the volume",
            ));
        }
        if dir && c == 0 {
            return Err(Error::Corrupt("a directory entry without a start cluster"));
        }
        let mut id = f.pos / 32;
        if self.nodes.contains_key(&id) {
            id = self.next_id;
            self.next_id += 1;
        }
        self.nodes.insert(
            id,
            Node {
                parent,
                pos: Some(f.pos),
                ent: f.ent,
                dir,
                chain: None,
                held: true,
                children: 0,
            },
        );
        self.by_pos.insert(f.pos, id);
        self.node_mut(parent)?.children += 1;
        Ok(id)
    }

    /// The caller no longer uses `id`: it leaves the table (an unlinked node's clusters are
    /// freed now).
    pub fn release(&mut self, id: NodeId) -> Result<()> {
        if let Some(n) = self.nodes.get_mut(&id) {
            n.held = false;
        }
        self.collect(id)
    }

    fn collect(&mut self, mut id: NodeId) -> Result<()> {
        while id != ROOT {
            let Some(n) = self.nodes.get(&id) else {
                return Ok(());
            };
            if n.held || n.children > 0 {
                return Ok(());
            }
            let n = self.nodes.remove(&id).expect("present");
            match n.pos {
                Some(p) => {
                    self.by_pos.remove(&p);
                }
                None if !self.ro => {
                    let first = ent_cluster(&n.ent, self.g.ty == FatType::Fat32);
                    let chain = match n.chain {
                        Some(c) => c,
                        None => self.walk(first, u64::MAX)?,
                    };
                    self.free_clusters(&chain)?;
                }
                None => {}
            }
            let p = n.parent;
            if let Some(pn) = self.nodes.get_mut(&p) {
                pn.children = pn.children.saturating_sub(1);
            }
            id = p;
        }
        Ok(())
    }

    fn store(&mut self, id: NodeId) -> Result<()> {
        let n = self.node(id)?;
        if let Some(p) = n.pos {
            let e = n.ent;
            self.write_slot(p, &e)?;
        }
        Ok(())
    }

    fn rw(&self) -> Result<()> {
        if self.ro || self.unmounted {
            Err(Error::ReadOnly)
        } else {
            Ok(())
        }
    }

    fn now(&self) -> (u16, u16) {
        time::to_dos((self.clock)())
    }

    fn touch_mtime(&mut self, id: NodeId) -> Result<()> {
        let (d, t) = self.now();
        let n = self.node_mut(id)?;
        if n.pos.is_none() && id == ROOT {
            return Ok(());
        }
        n.ent[22..24].copy_from_slice(&t.to_le_bytes());
        n.ent[24..26].copy_from_slice(&d.to_le_bytes());
        n.ent[18..20].copy_from_slice(&d.to_le_bytes());
        if !n.dir {
            n.ent[11] |= ATTR_ARCHIVE;
        }
        self.store(id)
    }

    // ---- the public operations ----------------------------------------------------------

    /// `name` in directory `dir` (`.` and `..` too; names compare case-insensitively and
    /// match short aliases).
    pub fn lookup(&mut self, dir: NodeId, name: &str) -> Result<NodeId> {
        if !self.node(dir)?.dir {
            return Err(Error::NotDir);
        }
        match name {
            "." => return Ok(dir),
            ".." => return Ok(self.node(dir)?.parent),
            _ => {}
        }
        let f = self.find(dir, name)?.ok_or(Error::NotFound)?;
        self.node_for(dir, &f)
    }

    pub fn attr(&mut self, id: NodeId) -> Result<Attr> {
        let n = self.node(id)?;
        let e = n.ent;
        let dir = n.dir;
        let cb = self.g.cb;
        let (size, allocated) = if dir {
            let len = if id == ROOT && self.g.fixed_root() {
                self.g.root_bytes
            } else {
                // A broken chain shows as an empty directory here; listing it reports
                // the corruption.
                match self.take_chain(id) {
                    Ok(c) => {
                        let l = c.len() as u64 * cb;
                        self.put_chain(id, c);
                        l
                    }
                    Err(_) => 0,
                }
            };
            (len, len)
        } else {
            let s = ent_size(&e) as u64;
            (s, s.div_ceil(cb) * cb)
        };
        let (mtime, atime, crtime) = if id == ROOT {
            (0, 0, 0)
        } else {
            (
                time::from_dos(le16(&e, 24) as u16, le16(&e, 22) as u16),
                time::from_dos(le16(&e, 18) as u16, 0),
                time::from_dos(le16(&e, 16) as u16, le16(&e, 14) as u16),
            )
        };
        Ok(Attr {
            dir,
            size,
            allocated,
            mtime,
            atime,
            crtime,
            read_only: e[11] & ATTR_RO != 0,
            first_cluster: ent_cluster(&e, self.g.ty == FatType::Fat32),
        })
    }

    /// Up to `max` entries from `offset` (0 is `.`, 1 is `..`).
    pub fn read_dir(&mut self, dir: NodeId, offset: u64, max: usize) -> Result<Vec<DirEnt>> {
        let parent = self.node(dir)?.parent;
        let mut out = Vec::new();
        if offset == 0 && out.len() < max {
            out.push(DirEnt {
                name: ".".into(),
                id: dir,
                dir: true,
                next: 1,
            });
        }
        if offset <= 1 && out.len() < max {
            out.push(DirEnt {
                name: "..".into(),
                id: parent,
                dir: true,
                next: 2,
            });
        }
        if out.len() >= max {
            return Ok(out);
        }
        let from = offset.saturating_sub(2);
        for f in self.scan(dir)? {
            if (f.slot as u64) < from {
                continue;
            }
            if out.len() >= max {
                break;
            }
            out.push(DirEnt {
                id: self.by_pos.get(&f.pos).copied().unwrap_or(f.pos / 32),
                dir: f.ent[11] & ATTR_DIR != 0,
                name: f.name,
                next: f.slot as u64 + 3,
            });
        }
        Ok(out)
    }

    fn file_node(&self, id: NodeId) -> Result<&Node> {
        let n = self.node(id)?;
        if n.dir { Err(Error::IsDir) } else { Ok(n) }
    }

    /// Calls `f(self, device offset, range of the request)` for each contiguous run of the
    /// file bytes `off..off+len`.
    fn runs(
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
    fn grow(&mut self, id: NodeId, chain: &mut Vec<u32>, need: usize) -> Result<()> {
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

    fn write_zeros(&mut self, chain: &[u32], mut off: u64, mut len: u64) -> Result<()> {
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

    /// Sets access and/or modification time (Unix seconds; FAT keeps 2 s resolution for
    /// mtime and the date only for atime).
    pub fn set_times(&mut self, id: NodeId, atime: Option<u64>, mtime: Option<u64>) -> Result<()> {
        self.rw()?;
        if id == ROOT {
            return Ok(());
        }
        let n = self.node_mut(id)?;
        if let Some(a) = atime {
            let (d, _) = time::to_dos(a);
            n.ent[18..20].copy_from_slice(&d.to_le_bytes());
        }
        if let Some(m) = mtime {
            let (d, t) = time::to_dos(m);
            n.ent[22..24].copy_from_slice(&t.to_le_bytes());
            n.ent[24..26].copy_from_slice(&d.to_le_bytes());
        }
        self.store(id)
    }

    /// The entries (long-name slots and short entry) for `name` in `dir`, the short entry
    /// made from `template`.
    fn entry_slots(
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

    /// Creates a file or (with `dir`) a directory `name` in `dir`.
    pub fn create(&mut self, dir: NodeId, name: &str, is_dir: bool) -> Result<NodeId> {
        self.rw()?;
        if !self.node(dir)?.dir {
            return Err(Error::NotDir);
        }
        let name = name::strip(name);
        name::long_units(name)?;
        if self.find(dir, name)?.is_some() {
            return Err(Error::Exists);
        }
        let (d, t) = self.now();
        let mut e = [0u8; 32];
        e[11] = if is_dir { ATTR_DIR } else { ATTR_ARCHIVE };
        for o in [14, 22] {
            e[o..o + 2].copy_from_slice(&t.to_le_bytes());
        }
        for o in [16, 18, 24] {
            e[o..o + 2].copy_from_slice(&d.to_le_bytes());
        }
        let slots_template = e;
        let mut slots = self.entry_slots(dir, name, slots_template)?;
        let mut cl = None;
        if is_dir {
            let c = self.alloc(1, None)?[0];
            cl = Some(c);
            self.new_dir_block(c);
            let parent_cluster = if dir == ROOT { 0 } else { self.first_of(dir)? };
            let mut dot = e;
            dot[..11].copy_from_slice(&name::DOT);
            set_ent_cluster(&mut dot, c);
            let mut dotdot = e;
            dotdot[..11].copy_from_slice(&name::DOTDOT);
            set_ent_cluster(&mut dotdot, parent_cluster);
            let off = self.g.cluster_off(c);
            self.write_slot(off, &dot)?;
            self.write_slot(off + 32, &dotdot)?;
            let last = slots.last_mut().expect("short entry");
            set_ent_cluster(last, c);
        }
        let (pos, slot) = match self.insert_slots(dir, &slots) {
            Ok(p) => p,
            Err(err) => {
                if let Some(c) = cl {
                    self.free_clusters(&[c])?;
                }
                return Err(err);
            }
        };
        let f = Found {
            name: name.into(),
            short: [0; 11],
            first_slot: slot,
            slot,
            pos,
            ent: *slots.last().expect("short entry"),
        };
        let id = self.node_for(dir, &f)?;
        self.touch_mtime(dir)?;
        Ok(id)
    }

    /// Whether the directory whose first cluster is `first` has no entries.
    fn dir_empty(&mut self, first: u32) -> Result<bool> {
        let r = self.cluster_regions(first)?;
        Ok(self.scan_regions(&r)?.is_empty())
    }

    /// Takes the entry `f` of `dir` off the disk; its node (if held) becomes unlinked and
    /// keeps its clusters until released, else they are freed now.
    fn drop_entry(&mut self, dir: NodeId, f: &Found) -> Result<()> {
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

    /// Removes `name` from `dir`: a file (IsDir for a directory) or, with `want_dir`, an
    /// empty directory (NotDir / NotEmpty otherwise).
    pub fn unlink(&mut self, dir: NodeId, name: &str, want_dir: bool) -> Result<()> {
        self.rw()?;
        if !self.node(dir)?.dir {
            return Err(Error::NotDir);
        }
        let f = self.find(dir, name)?.ok_or(Error::NotFound)?;
        let is_dir = f.ent[11] & ATTR_DIR != 0;
        match (want_dir, is_dir) {
            (true, false) => return Err(Error::NotDir),
            (false, true) => return Err(Error::IsDir),
            _ => {}
        }
        if is_dir && !self.dir_empty(ent_cluster(&f.ent, self.g.ty == FatType::Fat32))? {
            return Err(Error::NotEmpty);
        }
        self.drop_entry(dir, &f)?;
        self.touch_mtime(dir)
    }

    /// Moves `oname` in `odir` to `nname` in `ndir`, replacing a file by a file or an empty
    /// directory by a directory.
    pub fn rename(&mut self, odir: NodeId, oname: &str, ndir: NodeId, nname: &str) -> Result<()> {
        self.rw()?;
        if !self.node(odir)?.dir || !self.node(ndir)?.dir {
            return Err(Error::NotDir);
        }
        let nname = name::strip(nname);
        name::long_units(nname)?;
        let f = self.find(odir, oname)?.ok_or(Error::NotFound)?;
        let fat32 = self.g.ty == FatType::Fat32;
        let src_dir = f.ent[11] & ATTR_DIR != 0;
        let src_cluster = ent_cluster(&f.ent, fat32);
        if src_dir && src_cluster != 0 {
            // Not into itself or below (the caller's VFS checks this too).
            let mut p = ndir;
            for depth in 0.. {
                if p != ROOT && self.first_of(p)? == src_cluster {
                    return Err(Error::Invalid);
                }
                if p == ROOT {
                    break;
                }
                if depth > self.nodes.len() {
                    return Err(Error::Corrupt("directory ancestry loops"));
                }
                p = self.node(p)?.parent;
            }
        }
        let mut same_entry = false;
        if let Some(t) = self.find(ndir, nname)? {
            if odir == ndir && t.pos == f.pos {
                if t.name == nname {
                    return Ok(());
                }
                same_entry = true;
            } else {
                let t_dir = t.ent[11] & ATTR_DIR != 0;
                match (src_dir, t_dir) {
                    (true, false) => return Err(Error::NotDir),
                    (false, true) => return Err(Error::IsDir),
                    _ => {}
                }
                if t_dir && !self.dir_empty(ent_cluster(&t.ent, fat32))? {
                    return Err(Error::NotEmpty);
                }
                self.drop_entry(ndir, &t)?;
            }
        }
        let oregions = self.dir_regions(odir)?;
        if same_entry {
            self.remove_slots(&oregions, f.first_slot, f.slot)?;
        }
        let slots = self.entry_slots(ndir, nname, f.ent)?;
        let (pos, _) = self.insert_slots(ndir, &slots)?;
        if !same_entry {
            // The old directory may have grown? No: only ndir grows, and slot numbers of
            // existing entries never change.
            self.remove_slots(&oregions, f.first_slot, f.slot)?;
        }
        let new_ent = *slots.last().expect("short entry");
        if let Some(id) = self.by_pos.remove(&f.pos) {
            self.by_pos.insert(pos, id);
            let old_parent = self.node(id)?.parent;
            let n = self.node_mut(id)?;
            n.pos = Some(pos);
            n.ent = new_ent;
            if old_parent != ndir {
                n.parent = ndir;
                self.node_mut(ndir)?.children += 1;
                if let Some(p) = self.nodes.get_mut(&old_parent) {
                    p.children = p.children.saturating_sub(1);
                }
                self.collect(old_parent)?;
            }
        }
        if src_dir && odir != ndir {
            let parent_cluster = if ndir == ROOT {
                0
            } else {
                self.first_of(ndir)?
            };
            let r = self.cluster_regions(src_cluster)?;
            if let Some(p) = Self::slot_pos(&r, 1) {
                let (off, len) = r[0];
                let blk = self.dir_block(off, len)?;
                let o = (p - off) as usize;
                let mut e = [0u8; 32];
                e.copy_from_slice(&blk.data[o..o + 32]);
                if e[..11] == name::DOTDOT {
                    set_ent_cluster(&mut e, parent_cluster);
                    self.write_slot(p, &e)?;
                }
            }
        }
        self.touch_mtime(odir)?;
        if ndir != odir {
            self.touch_mtime(ndir)?;
        }
        Ok(())
    }

    pub fn statfs(&mut self) -> Result<StatFs> {
        Ok(StatFs {
            cluster_size: self.g.cb,
            clusters: self.g.clusters as u64,
            free: self.free_count()? as u64,
        })
    }

    fn flush_dirs(&mut self) -> Result<()> {
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

    fn flush_fat(&mut self) -> Result<()> {
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

    /// Writes back cached metadata (directories, every FAT copy, FSINFO) and flushes the
    /// device.
    pub fn sync(&mut self) -> Result<()> {
        if self.ro || self.unmounted {
            return Ok(());
        }
        self.flush_dirs()?;
        self.flush_fat()?;
        if let (Some(fi), Some(free)) = (self.g.fsinfo, self.free) {
            let next = self.next_free;
            if free != self.disk_free || next != self.disk_next {
                let mut s = vec![0u8; self.g.bps as usize];
                self.dev_read(fi, &mut s)?;
                s[488..492].copy_from_slice(&free.to_le_bytes());
                s[492..496].copy_from_slice(&next.to_le_bytes());
                self.dev_write(fi, &s)?;
                self.disk_free = free;
                self.disk_next = next;
            }
        }
        self.dev.flush()
    }

    /// Frees the clusters of unlinked nodes still held, writes everything back and marks
    /// the volume clean. Later calls do nothing; the volume is read-only afterwards.
    pub fn unmount(&mut self) -> Result<()> {
        if self.unmounted {
            return Ok(());
        }
        if !self.ro {
            let orphans: Vec<NodeId> = self
                .nodes
                .iter()
                .filter(|(id, n)| **id != ROOT && n.pos.is_none())
                .map(|(id, _)| *id)
                .collect();
            for id in orphans {
                if let Some(n) = self.nodes.get_mut(&id) {
                    n.held = false;
                    n.children = 0;
                }
                self.collect(id)?;
            }
            self.sync()?;
            if let Some(off) = self.g.state_off
                && !self.was_dirty
            {
                self.boot[off] &= !1;
                let b = self.boot.clone();
                self.dev_write(0, &b)?;
                self.dev.flush()?;
            }
        }
        self.unmounted = true;
        Ok(())
    }
}
