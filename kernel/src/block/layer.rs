use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::errno::{Errno, KResult};
use crate::fs::File;
use crate::fs::consts::makedev;
use crate::fs::devfs::{self, DevKind, Device};
use crate::fs::node::{FileSystem, NodeKind};
use crate::sync::spin::IrqSpinLock;

pub const SECTOR: u64 = 512;
pub const VD_MAJOR: u32 = 254;

pub const BLKGETSIZE: u32 = 0x1260;
pub const BLKSSZGET: u32 = 0x1268;
pub const BLKFLSBUF: u32 = 0x1261;
pub const BLKGETSIZE64: u32 = 0x8008_1272;

/// A disk or a partition: whole 512-byte sectors. `buf.len()` is a multiple of 512.
pub trait BlockDev: Send + Sync {
    fn name(&self) -> &str;
    fn sectors(&self) -> u64;
    fn read_sectors(&self, lba: u64, buf: &mut [u8]) -> KResult<()>;
    fn write_sectors(&self, lba: u64, buf: &[u8]) -> KResult<()>;
    fn flush(&self) -> KResult<()>;
    /// Reads several `(lba, buf)` ranges; a device that keeps several requests in flight
    /// overlaps them. The default reads them one after another.
    fn read_sectors_many(&self, reqs: &mut [(u64, &mut [u8])]) -> KResult<()> {
        for (lba, buf) in reqs.iter_mut() {
            self.read_sectors(*lba, buf)?;
        }
        Ok(())
    }
    fn read_only(&self) -> bool {
        false
    }
    /// Which driver serves it (for `/proc/drivers`-style listings).
    fn driver(&self) -> &'static str;
}

/// A window of a parent device.
pub struct PartitionDev {
    name: String,
    parent: Arc<dyn BlockDev>,
    start: u64,
    len: u64,
}

impl PartitionDev {
    fn check(&self, lba: u64, bytes: usize) -> KResult<u64> {
        let n = bytes as u64 / SECTOR;
        if lba.checked_add(n).is_none_or(|e| e > self.len) {
            return Err(Errno::EIO);
        }
        Ok(self.start + lba)
    }
}

impl BlockDev for PartitionDev {
    fn name(&self) -> &str {
        &self.name
    }
    fn sectors(&self) -> u64 {
        self.len
    }
    fn read_sectors(&self, lba: u64, buf: &mut [u8]) -> KResult<()> {
        let l = self.check(lba, buf.len())?;
        self.parent.read_sectors(l, buf)
    }
    fn write_sectors(&self, lba: u64, buf: &[u8]) -> KResult<()> {
        let l = self.check(lba, buf.len())?;
        self.parent.write_sectors(l, buf)
    }
    fn flush(&self) -> KResult<()> {
        self.parent.flush()
    }
    fn read_sectors_many(&self, reqs: &mut [(u64, &mut [u8])]) -> KResult<()> {
        for (lba, buf) in reqs.iter_mut() {
            *lba = self.check(*lba, buf.len())?;
        }
        self.parent.read_sectors_many(reqs)
    }
    fn read_only(&self) -> bool {
        self.parent.read_only()
    }
    fn driver(&self) -> &'static str {
        self.parent.driver()
    }
}

struct Registered {
    rdev: u64,
    dev: Arc<dyn BlockDev>,
}

static DEVICES: IrqSpinLock<Vec<Registered>> = IrqSpinLock::new(Vec::new());
static NEXT_DISK: IrqSpinLock<u32> = IrqSpinLock::new(0);

/// The block device behind `rdev`.
pub fn by_rdev(rdev: u64) -> Option<Arc<dyn BlockDev>> {
    DEVICES
        .lock()
        .iter()
        .find(|r| r.rdev == rdev)
        .map(|r| r.dev.clone())
}

/// Every registered device: (name, rdev, sectors, driver).
pub fn list() -> Vec<(String, u64, u64, &'static str)> {
    DEVICES
        .lock()
        .iter()
        .map(|r| {
            (
                String::from(r.dev.name()),
                r.rdev,
                r.dev.sectors(),
                r.dev.driver(),
            )
        })
        .collect()
}

/// The next disk name (`vda`, `vdb`, …, `vdz`, `vdaa`…) and its index.
pub fn next_disk_name() -> (u32, String) {
    let mut n = NEXT_DISK.lock();
    let i = *n;
    *n += 1;
    let name = if i < 26 {
        format!("vd{}", (b'a' + i as u8) as char)
    } else {
        format!(
            "vd{}{}",
            (b'a' + (i / 26 - 1) as u8) as char,
            (b'a' + (i % 26) as u8) as char
        )
    };
    (i, name)
}

fn register_node(name: &str, rdev: u64, dev: Arc<dyn BlockDev>) {
    devfs::register_device(
        DevKind::Block,
        rdev,
        Arc::new(BlockNode { dev: dev.clone() }),
    );
    DEVICES.lock().push(Registered { rdev, dev });
    let root = devfs::devfs().root();
    let _ = root.unlink(name, false);
    if let Err(e) = root.create(name, NodeKind::BlockDev(rdev), 0o660, 0, 6) {
        log::warn!("block: cannot create /dev/{name}: {e:?}");
    }
}

/// Linux's SCSI disk major (`/dev/sda`: USB sticks).
pub const SD_MAJOR: u32 = 8;

/// SCSI disk indices in use (bit i: `sd` + 'a' + i).
static SD_USED: IrqSpinLock<u32> = IrqSpinLock::new(0);

/// The lowest free SCSI disk name (`sda`, `sdb`, …, `sdz`) and its index, taken until
/// [`release_sd_name`] (a stick pulled out frees its name for the next one, as on Linux).
pub fn next_sd_name() -> Option<(u32, String)> {
    let mut used = SD_USED.lock();
    let i = (!*used).trailing_zeros();
    if i >= 26 {
        return None;
    }
    *used |= 1 << i;
    Some((i, format!("sd{}", (b'a' + i as u8) as char)))
}

/// Gives SCSI disk index `index` back (after [`remove_disk_major`]).
pub fn release_sd_name(index: u32) {
    if index < 26 {
        *SD_USED.lock() &= !(1 << index);
    }
}

/// Unregisters disk number `index` of `major` and its partitions: their `/dev` nodes go
/// away and their numbers stop resolving (a later open or mount gets ENXIO/ENOENT). Files
/// already open and mounted file systems keep their `Arc` of the device, whose driver
/// answers EIO once its hardware is gone.
pub fn remove_disk_major(major: u32, index: u32) {
    let first = makedev(major, index * 16);
    let ours = |rdev: u64| (0..16).any(|p| rdev == makedev(major, index * 16 + p));
    let gone: Vec<Registered> = {
        let mut devs = DEVICES.lock();
        let (gone, keep): (Vec<_>, Vec<_>) = devs.drain(..).partition(|r| ours(r.rdev));
        *devs = keep;
        gone
    };
    let root = devfs::devfs().root();
    for r in &gone {
        devfs::unregister_device(DevKind::Block, r.rdev);
        let _ = root.unlink(r.dev.name(), false);
    }
    if let Some(r) = gone.iter().find(|r| r.rdev == first) {
        log::info!(
            "block: /dev/{} removed ({} node(s))",
            r.dev.name(),
            gone.len()
        );
    }
}

/// Registers disk number `index` as `/dev/<name>` and its partitions as `/dev/<name>N`.
pub fn add_disk(index: u32, dev: Arc<dyn BlockDev>) {
    add_disk_major(VD_MAJOR, index, dev)
}

/// [`add_disk`] with another major number (minor = 16 × index + partition).
pub fn add_disk_major(major: u32, index: u32, dev: Arc<dyn BlockDev>) {
    let name = String::from(dev.name());
    let sectors = dev.sectors();
    register_node(&name, makedev(major, index * 16), dev.clone());
    let parts = part::scan(sectors, |lba, buf| dev.read_sectors(lba, buf).is_ok());
    let mut names = Vec::new();
    for p in parts {
        if p.number > 15 {
            continue;
        }
        let pname = format!("{name}{}", p.number);
        let pd: Arc<dyn BlockDev> = Arc::new(PartitionDev {
            name: pname.clone(),
            parent: dev.clone(),
            start: p.start,
            len: p.sectors,
        });
        register_node(&pname, makedev(major, index * 16 + p.number), pd);
        names.push(format!(
            "{pname} ({} MiB at sector {})",
            (p.sectors * SECTOR) >> 20,
            p.start
        ));
    }
    log::info!(
        "block: /dev/{name}: {} sectors ({} MiB), {}{}{}",
        sectors,
        (sectors * SECTOR) >> 20,
        dev.driver(),
        if names.is_empty() {
            ""
        } else {
            "; partitions "
        },
        names.join(", ")
    );
}

use super::part;

/// Byte-granular read (read-modify-write at unaligned edges is in [`write_bytes`]).
/// Returns the count (short at the end of the device).
pub fn read_bytes(dev: &dyn BlockDev, off: u64, buf: &mut [u8]) -> KResult<usize> {
    let size = dev.sectors() * SECTOR;
    if off >= size {
        return Ok(0);
    }
    let n = (buf.len() as u64).min(size - off) as usize;
    let buf = &mut buf[..n];
    let mut done = 0usize;
    while done < n {
        let pos = off + done as u64;
        let lba = pos / SECTOR;
        let skip = (pos % SECTOR) as usize;
        if skip == 0 && n - done >= SECTOR as usize {
            let whole = ((n - done) / SECTOR as usize) * SECTOR as usize;
            dev.read_sectors(lba, &mut buf[done..done + whole])?;
            done += whole;
        } else {
            let mut s = [0u8; SECTOR as usize];
            dev.read_sectors(lba, &mut s)?;
            let c = (SECTOR as usize - skip).min(n - done);
            buf[done..done + c].copy_from_slice(&s[skip..skip + c]);
            done += c;
        }
    }
    Ok(n)
}

/// Reads several `(byte offset, buf)` ranges, all of which must lie inside the device: as
/// one batch of sector requests when every range is sector-aligned, else one by one.
pub fn read_bytes_many(dev: &dyn BlockDev, reqs: &mut [(u64, &mut [u8])]) -> KResult<()> {
    let size = dev.sectors() * SECTOR;
    let aligned = reqs
        .iter()
        .all(|(off, b)| off.is_multiple_of(SECTOR) && (b.len() as u64).is_multiple_of(SECTOR));
    if !aligned {
        for (off, b) in reqs.iter_mut() {
            if read_bytes(dev, *off, b)? != b.len() {
                return Err(Errno::EIO);
            }
        }
        return Ok(());
    }
    if reqs
        .iter()
        .any(|(off, b)| off.checked_add(b.len() as u64).is_none_or(|e| e > size))
    {
        return Err(Errno::EIO);
    }
    let mut v: Vec<(u64, &mut [u8])> = reqs
        .iter_mut()
        .filter(|(_, b)| !b.is_empty())
        .map(|(off, b)| (*off / SECTOR, &mut **b))
        .collect();
    dev.read_sectors_many(&mut v)
}

pub fn write_bytes(dev: &dyn BlockDev, off: u64, buf: &[u8]) -> KResult<usize> {
    if dev.read_only() {
        return Err(Errno::EROFS);
    }
    let size = dev.sectors() * SECTOR;
    if off >= size {
        return if buf.is_empty() {
            Ok(0)
        } else {
            Err(Errno::ENOSPC)
        };
    }
    let n = (buf.len() as u64).min(size - off) as usize;
    let mut done = 0usize;
    while done < n {
        let pos = off + done as u64;
        let lba = pos / SECTOR;
        let skip = (pos % SECTOR) as usize;
        if skip == 0 && n - done >= SECTOR as usize {
            let whole = ((n - done) / SECTOR as usize) * SECTOR as usize;
            dev.write_sectors(lba, &buf[done..done + whole])?;
            done += whole;
        } else {
            let mut s = [0u8; SECTOR as usize];
            dev.read_sectors(lba, &mut s)?;
            let c = (SECTOR as usize - skip).min(n - done);
            s[skip..skip + c].copy_from_slice(&buf[done..done + c]);
            dev.write_sectors(lba, &s)?;
            done += c;
        }
    }
    Ok(n)
}

/// `/dev/vdX` as an open file sees it.
struct BlockNode {
    dev: Arc<dyn BlockDev>,
}

impl Device for BlockNode {
    fn read(&self, _file: &File, buf: &mut [u8], off: u64) -> KResult<usize> {
        read_bytes(&*self.dev, off, buf)
    }
    fn write(&self, _file: &File, buf: &[u8], off: u64) -> KResult<usize> {
        write_bytes(&*self.dev, off, buf)
    }
    fn ioctl(&self, _file: &File, cmd: u32, arg: u64) -> KResult<u64> {
        use crate::arch::uaccess::write_val;
        match cmd {
            BLKGETSIZE64 => write_val(arg, &(self.dev.sectors() * SECTOR)).map(|_| 0),
            BLKGETSIZE => write_val(arg, &self.dev.sectors()).map(|_| 0),
            BLKSSZGET => write_val(arg, &(SECTOR as i32)).map(|_| 0),
            BLKFLSBUF => self.dev.flush().map(|_| 0),
            _ => Err(Errno::ENOTTY),
        }
    }
    fn open(self: Arc<Self>, _flags: u32) -> KResult<Arc<dyn Device>> {
        Ok(self)
    }
}

/// Finds the block device a mount source names (a `/dev/…` path to a block node).
pub fn open_source(source: &str) -> KResult<Arc<dyn BlockDev>> {
    let ctx = crate::fs::FsCtx::kernel();
    let st = crate::fs::stat(&ctx, None, source, true)?;
    if st.file_type() != crate::fs::consts::S_IFBLK {
        return Err(Errno::ENOTBLK);
    }
    by_rdev(st.rdev).ok_or(Errno::ENXIO)
}

/// Brings up every block device (virtio-blk today) and registers `mount -t ext2`. Called
/// once after `fs::init`.
pub fn init() {
    super::virtio::probe_all();
    crate::ext2_vfs::init();
    crate::fat_vfs::init();
}
