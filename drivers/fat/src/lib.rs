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
//!
//! Layout: this file holds the types, mounting and the node table and the namespace
//! operations; `geo` parses the boot sector, `table` is the allocation table, `dir` the
//! directory blocks and entries, `file` file data, `name` long and short names, `time`
//! FAT timestamps.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod dir;
mod file;
mod geo;
mod name;
mod table;
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
