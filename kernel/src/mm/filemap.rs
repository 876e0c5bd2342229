//! Shared file mappings (`mmap(MAP_SHARED)` of a regular file).
//!
//! File systems here have no page cache, so this module keeps one: a frame per mapped
//! (inode, page index), shared by every mapping of that page in every process (fork keeps
//! sharing it, as for shared anonymous memory). Coherence with read(2)/write(2):
//! - `write`/`pwrite` copy the written bytes into the cached pages too ([`written`]), so
//!   mappings see them at once;
//! - `read`/`pread` first write the file's cached pages back to the file ([`flush_inode`]),
//!   so they see stores made through mappings;
//! - pages are also written back on `msync`, `munmap` and process exit, and when a page
//!   no mapping uses any more leaves the cache ([`sweep`], run at each shared mmap and
//!   munmap).
//!
//! Write-back writes whole pages (no dirty tracking), clamped to the file's current size;
//! mapped pages beyond the end of the file read as zeroes and are never written back
//! (Linux would raise SIGBUS for whole pages past EOF). Truncating a mapped file does not
//! drop the cached pages past the new end.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::phys::{self, phys_to_virt};
use super::uspace::{self, PAGE};
use crate::errno::{Errno, KResult};
use crate::fs::node::InodeRef;
use crate::sync::spin::IrqSpinLock;

struct Entry {
    frame: u64,
    inode: InodeRef,
    /// Some mapping of it could write (only such pages are ever written back).
    dirty_ok: bool,
}

/// (inode address, page index) → cached page. The cache holds one ownership of each
/// frame (see `uspace::share`); every PTE mapping it holds another.
static CACHE: IrqSpinLock<BTreeMap<(usize, u64), Entry>> = IrqSpinLock::new(BTreeMap::new());

pub fn inode_key(i: &InodeRef) -> usize {
    Arc::as_ptr(i) as *const u8 as usize
}

fn frame_bytes(frame: u64) -> &'static mut [u8] {
    // SAFETY: `frame` is a whole page frame the caller keeps alive (the cache's or a pin's
    // ownership), reached through the linear map; concurrent user stores to it are plain
    // byte races on shared memory, as with any shared mapping.
    unsafe { core::slice::from_raw_parts_mut(phys_to_virt(frame) as *mut u8, PAGE as usize) }
}

/// The frame caching page `idx` of `inode`, read from `f` if it is not cached yet. The
/// caller receives one ownership of it (for the PTE it installs).
/// `writable`: the mapping may write to it.
pub fn page(f: &crate::fs::File, inode: &InodeRef, idx: u64, writable: bool) -> KResult<u64> {
    let k = inode_key(inode);
    if let Some(e) = CACHE.lock().get_mut(&(k, idx)) {
        e.dirty_ok |= writable;
        uspace::share(e.frame);
        return Ok(e.frame);
    }
    let frame = phys::alloc_frame().ok_or(Errno::ENOMEM)?;
    let mut buf = alloc::vec![0u8; PAGE as usize];
    let mut done = 0usize;
    while done < buf.len() {
        match f.pread(&mut buf[done..], idx * PAGE + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) => {
                phys::free_frame(frame);
                return Err(e);
            }
        }
    }
    frame_bytes(frame).copy_from_slice(&buf);
    let mut g = CACHE.lock();
    if let Some(e) = g.get_mut(&(k, idx)) {
        // Another mapper got there first.
        e.dirty_ok |= writable;
        let other = e.frame;
        uspace::share(other);
        drop(g);
        phys::free_frame(frame);
        return Ok(other);
    }
    g.insert((k, idx), Entry { frame, inode: inode.clone(), dirty_ok: writable });
    uspace::share(frame);
    Ok(frame)
}

/// Writes cached pages back to their file: those of `inode` with index in `[from, to)`.
fn write_back(k: usize, from: u64, to: u64) {
    // Pin the pages (one more ownership each) so they outlive the lock.
    let pages: Vec<(u64, u64, InodeRef)> = {
        let g = CACHE.lock();
        g.range((k, from)..(k, to))
            .filter(|(_, e)| e.dirty_ok)
            .map(|(&(_, idx), e)| {
                uspace::share(e.frame);
                (idx, e.frame, e.inode.clone())
            })
            .collect()
    };
    for (idx, frame, inode) in pages {
        let size = u64::try_from(inode.stat().size).unwrap_or(0);
        let off = idx * PAGE;
        if off < size {
            let n = (size - off).min(PAGE) as usize;
            let data: Vec<u8> = frame_bytes(frame)[..n].to_vec();
            let _ = inode.write_at(off, &data);
        }
        uspace::release(frame);
    }
}

/// read(2) is about to read `inode`: write its mapped pages back first.
pub fn flush_inode(inode: &InodeRef) {
    let k = inode_key(inode);
    let any = CACHE.lock().range((k, 0)..(k, u64::MAX)).any(|(_, e)| e.dirty_ok);
    if any {
        write_back(k, 0, u64::MAX);
    }
}

/// write(2) wrote `data` at `off` of `inode`: mapped pages see it too.
pub fn written(inode: &InodeRef, off: u64, data: &[u8]) {
    let k = inode_key(inode);
    let g = CACHE.lock();
    if data.is_empty() {
        return;
    }
    let first = off / PAGE;
    let last = (off + data.len() as u64 - 1) / PAGE;
    for (&(_, idx), e) in g.range((k, first)..=(k, last)) {
        let page_start = idx * PAGE;
        let from = off.max(page_start);
        let to = (off + data.len() as u64).min(page_start + PAGE);
        let dst = &mut frame_bytes(e.frame)[(from - page_start) as usize..(to - page_start) as usize];
        dst.copy_from_slice(&data[(from - off) as usize..(to - off) as usize]);
    }
}

/// msync/munmap/exit: writes back the file pages mapped by `vmas` within `[start, end)`.
pub fn flush_range(vmas: &[uspace::Vma], start: u64, end: u64) {
    for v in vmas {
        let Some((inode, base, true)) = &v.file else { continue };
        let s = v.start.max(start);
        let e = v.end.min(end);
        if s >= e {
            continue;
        }
        let from = s.wrapping_add(*base) / PAGE;
        let to = (e - 1).wrapping_add(*base) / PAGE + 1;
        write_back(inode_key(inode), from, to);
    }
}

/// Drops cached pages no mapping uses any more, after writing them back.
pub fn sweep() {
    let gone: Vec<((usize, u64), Entry)> = {
        let mut g = CACHE.lock();
        let keys: Vec<(usize, u64)> = g.iter().filter(|(_, e)| uspace::owners(e.frame) == 1).map(|(&k, _)| k).collect();
        keys.into_iter().filter_map(|k| g.remove(&k).map(|e| (k, e))).collect()
    };
    for ((_, idx), e) in gone {
        let size = u64::try_from(e.inode.stat().size).unwrap_or(0);
        let off = idx * PAGE;
        if off < size && e.dirty_ok {
            let n = (size - off).min(PAGE) as usize;
            let data: Vec<u8> = frame_bytes(e.frame)[..n].to_vec();
            let _ = e.inode.write_at(off, &data);
        }
        uspace::release(e.frame);
    }
}
