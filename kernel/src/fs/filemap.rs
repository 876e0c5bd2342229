//! Shared file mappings (`mmap(MAP_SHARED)` of a regular file).
//!
//! The file systems here have no page cache, so this module keeps one for mapped files: a
//! frame per mapped (file, page index), shared by every mapping of that page in every
//! process (`fork` keeps sharing it, as for shared anonymous memory). Two processes mapping
//! the same file see each other's stores at once. Coherence with read(2)/write(2):
//! - `write`/`pwrite` copy the written bytes into the cached pages too ([`written`]), so
//!   mappings see them at once;
//! - `read`/`pread` first write the file's cached pages back ([`flush_file`]), so they
//!   see stores made through mappings;
//! - pages are also written back on `msync`, `munmap` and process exit, and when a page no
//!   mapping uses any more leaves the cache ([`sweep`], at each shared mmap and munmap).
//!
//! Files are keyed by (device, inode number), not by inode object: a file system may hand
//! out a new inode object for each lookup. Write-back writes whole pages (no dirty
//! tracking), clamped to the file's current size, and only pages of files some mapper
//! opened read-write; mapped pages past the end of the file read as zeroes and are never
//! written back (Linux raises SIGBUS for whole pages past EOF). Truncating a mapped file
//! does not drop its cached pages past the new end.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::errno::KResult;
use crate::fs::node::InodeRef;
use crate::mm::uspace::{self, FileBacking, PAGE, Vma};
use crate::sync::spin::IrqSpinLock;

type Key = (u64, u64);

struct Entry {
    frame: u64,
    inode: InodeRef,
    /// A mapper opened the file read-write: the page is written back.
    write_back: bool,
}

/// (file key, page index) → cached page. The cache holds one ownership of each frame
/// (`uspace::frame_share`); every PTE mapping it holds another.
static CACHE: IrqSpinLock<BTreeMap<(Key, u64), Entry>> = IrqSpinLock::new(BTreeMap::new());
/// Entries in [`CACHE`]: read(2) and write(2) look no further while it is 0.
static CACHED: AtomicUsize = AtomicUsize::new(0);

/// The cache key of a file.
pub fn key_of(inode: &InodeRef) -> Key {
    let st = inode.stat();
    (st.dev, st.ino)
}

/// The frame caching page `idx` of `inode`, read from the file if it is not cached yet.
/// The caller receives one ownership of it (for the PTE it installs).
fn page(inode: &InodeRef, key: Key, idx: u64, write_back: bool) -> KResult<u64> {
    if let Some(e) = CACHE.lock().get_mut(&(key, idx)) {
        e.write_back |= write_back;
        uspace::frame_share(e.frame);
        return Ok(e.frame);
    }
    let mut buf = alloc::vec![0u8; PAGE as usize];
    let mut done = 0usize;
    while done < buf.len() {
        match inode.read_at(idx * PAGE + done as u64, &mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) => return Err(e),
        }
    }
    let frame = uspace::frame_alloc()?;
    uspace::frame_write(frame, 0, &buf[..done]);
    let mut g = CACHE.lock();
    if let Some(e) = g.get_mut(&(key, idx)) {
        // Another mapper got there first.
        e.write_back |= write_back;
        let other = e.frame;
        uspace::frame_share(other);
        drop(g);
        uspace::frame_release(frame);
        return Ok(other);
    }
    g.insert(
        (key, idx),
        Entry {
            frame,
            inode: inode.clone(),
            write_back,
        },
    );
    CACHED.fetch_add(1, Ordering::Relaxed);
    uspace::frame_share(frame);
    Ok(frame)
}

/// Maps `[start, start + len)` of `aspace` (a fresh VMA) to the file `inode` from offset
/// `off`: the VMA becomes shared and every page is the file's cached page.
pub fn map(
    aspace: &uspace::AddressSpace,
    start: u64,
    len: u64,
    inode: &InodeRef,
    off: u64,
    may_write: bool,
) -> KResult<()> {
    sweep();
    let key = key_of(inode);
    aspace.set_file(
        start,
        start + len,
        FileBacking {
            key,
            base: off.wrapping_sub(start),
            may_write,
        },
    )?;
    for i in 0..len / PAGE {
        let frame = page(inode, key, off / PAGE + i, may_write)?;
        aspace.install_frame(start + i * PAGE, frame)?;
    }
    Ok(())
}

/// Writes back the cached pages of file `key` with index in `[from, to)`. The first error.
fn write_back(key: Key, from: u64, to: u64) -> KResult<()> {
    // Pinned (one more ownership each) so they outlive the lock.
    let pages: Vec<(u64, u64, InodeRef)> = {
        let g = CACHE.lock();
        g.range((key, from)..(key, to))
            .filter(|(_, e)| e.write_back)
            .map(|(&(_, idx), e)| {
                uspace::frame_share(e.frame);
                (idx, e.frame, e.inode.clone())
            })
            .collect()
    };
    let mut first = Ok(());
    for (idx, frame, inode) in pages {
        let r = write_page(&inode, key, idx, frame);
        uspace::frame_release(frame);
        if first.is_ok() {
            first = r;
        }
    }
    first
}

/// Writes page `idx` of the file (held in `frame`) back, clamped to the file's size; a
/// page wholly past the end is not written. A failure is logged and returned.
fn write_page(inode: &InodeRef, key: Key, idx: u64, frame: u64) -> KResult<()> {
    let size = u64::try_from(inode.stat().size).unwrap_or(0);
    let off = idx * PAGE;
    if off >= size {
        return Ok(());
    }
    let mut data = alloc::vec![0u8; (size - off).min(PAGE) as usize];
    uspace::frame_read(frame, 0, &mut data);
    inode.write_at(off, &data).map(drop).inspect_err(|e| {
        log::warn!(
            "filemap: writing a mapped page back to dev {:#x} ino {} failed: {e:?}",
            key.0,
            key.1
        )
    })
}

/// read(2) is about to read `inode`: its mapped pages are written back first.
pub fn flush_file(inode: &InodeRef) {
    let _ = write_back_file(inode);
}

/// fsync(2), and read(2) through [`flush_file`]: writes back the mapped pages of `inode`.
/// The first error.
pub fn write_back_file(inode: &InodeRef) -> KResult<()> {
    if CACHED.load(Ordering::Relaxed) == 0 {
        return Ok(());
    }
    let key = key_of(inode);
    let any = CACHE
        .lock()
        .range((key, 0)..=(key, u64::MAX))
        .any(|(_, e)| e.write_back);
    if any {
        write_back(key, 0, u64::MAX)
    } else {
        Ok(())
    }
}

/// sync(2): writes back every mapped page (errors are the file systems' to log).
pub fn write_back_all() {
    if CACHED.load(Ordering::Relaxed) == 0 {
        return;
    }
    let mut keys: Vec<Key> = CACHE.lock().keys().map(|&(k, _)| k).collect();
    keys.dedup();
    for k in keys {
        let _ = write_back(k, 0, u64::MAX);
    }
}

/// write(2) wrote `data` at `off` of `inode`: mapped pages see it too.
pub fn written(inode: &InodeRef, off: u64, data: &[u8]) {
    if CACHED.load(Ordering::Relaxed) == 0 || data.is_empty() {
        return;
    }
    let key = key_of(inode);
    let g = CACHE.lock();
    let first = off / PAGE;
    let last = (off + data.len() as u64 - 1) / PAGE;
    for (&(_, idx), e) in g.range((key, first)..=(key, last)) {
        let page_start = idx * PAGE;
        let from = off.max(page_start);
        let to = (off + data.len() as u64).min(page_start + PAGE);
        uspace::frame_write(
            e.frame,
            (from - page_start) as usize,
            &data[(from - off) as usize..(to - off) as usize],
        );
    }
}

/// msync/munmap/exit: writes back the file pages the shared file VMAs among `vmas` map in
/// `[start, end)`. The first error.
pub fn flush_range(vmas: &[Vma], start: u64, end: u64) -> KResult<()> {
    let mut first = Ok(());
    for v in vmas {
        let Some(fb) = &v.file else { continue };
        let s = v.start.max(start);
        let e = v.end.min(end);
        if s >= e || !fb.may_write {
            continue;
        }
        let from = s.wrapping_add(fb.base) / PAGE;
        let to = (e - 1).wrapping_add(fb.base) / PAGE + 1;
        let r = write_back(fb.key, from, to);
        if first.is_ok() {
            first = r;
        }
    }
    first
}

/// Exit and exec: writes back every shared file page `aspace` maps.
pub fn flush_all(aspace: &uspace::AddressSpace) {
    if CACHED.load(Ordering::Relaxed) == 0 {
        return;
    }
    let _ = flush_range(&aspace.vmas(), 0, uspace::USER_TOP);
}

/// Drops cached pages no mapping uses any more, after writing them back.
pub fn sweep() {
    if CACHED.load(Ordering::Relaxed) == 0 {
        return;
    }
    let gone: Vec<((Key, u64), Entry)> = {
        let mut g = CACHE.lock();
        let keys: Vec<(Key, u64)> = g
            .iter()
            .filter(|(_, e)| uspace::frame_owners(e.frame) == 1)
            .map(|(&k, _)| k)
            .collect();
        keys.into_iter()
            .filter_map(|k| g.remove(&k).map(|e| (k, e)))
            .collect()
    };
    CACHED.fetch_sub(gone.len(), Ordering::Relaxed);
    for ((key, idx), e) in gone {
        if e.write_back {
            let _ = write_page(&e.inode, key, idx, e.frame);
        }
        uspace::frame_release(e.frame);
    }
}
