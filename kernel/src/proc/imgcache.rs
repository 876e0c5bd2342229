//! The executable image cache: the loaded pages of recently executed ELF files, shared
//! copy-on-write by every process that executes them — what Linux's page cache gives
//! `execve` — so that starting `/bin/busybox` again neither reads the 2 MB file nor copies
//! it into fresh pages: the new address space gets the cached frames read-only (copy-on-write
//! where the segment is writable) and faults in only the pages it writes.
//!
//! An image is built by loading the file once into a scratch address space with the ordinary
//! loader ([`elf::load`]) and keeping its frames (one extra owner each, so a process writing
//! one always gets its own copy). Only files on a tmpfs are cached — the root file system,
//! where the programs are — keyed by device, inode, size, mtime and ctime (nanoseconds; any
//! write or `utimensat` changes the ctime), and by the load address. At most
//! [`MAX_PAGES`] pages are kept; the least recently used images go first.

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::elf::{self, ElfInfo, Loaded};
use crate::errno::KResult;
use crate::fs::node::Stat;
use crate::mm::uspace::{AddressSpace, ImagePages};
use crate::sync::spin::IrqSpinLock;

/// Pages kept in the cache at most (64 MiB).
pub const MAX_PAGES: usize = 16384;

/// What identifies one version of one file, loaded at one base.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    dev: u64,
    ino: u64,
    size: i64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    base: u64,
}

impl Key {
    /// The key of a file with `st` on a file system named `fs`, loaded at `base` — `None`
    /// where the cache does not apply (not a tmpfs).
    pub fn of(fs: &str, st: &Stat, base: u64) -> Option<Key> {
        (fs == "tmpfs").then_some(Key {
            dev: st.dev,
            ino: st.ino,
            size: st.size,
            mtime: (st.mtime.sec, st.mtime.nsec),
            ctime: (st.ctime.sec, st.ctime.nsec),
            base,
        })
    }
}

/// One cached image.
pub struct Cached {
    key: Key,
    pub info: ElfInfo,
    loaded: Loaded,
    pages: ImagePages,
}

impl Cached {
    /// Maps the image into `aspace` (which must not have anything mapped where it goes).
    pub fn install(&self, aspace: &AddressSpace) -> KResult<Loaded> {
        aspace.map_image(&self.pages)?;
        Ok(self.loaded.clone())
    }
}

struct Cache {
    /// Most recently used last.
    images: Vec<Arc<Cached>>,
    pages: usize,
    hits: u64,
    misses: u64,
}

static CACHE: IrqSpinLock<Cache> = IrqSpinLock::new(Cache {
    images: Vec::new(),
    pages: 0,
    hits: 0,
    misses: 0,
});

/// The cached image for `key`, if any.
pub fn lookup(key: &Key) -> Option<Arc<Cached>> {
    let mut c = CACHE.lock();
    match c.images.iter().position(|i| i.key == *key) {
        Some(at) => {
            let img = c.images.remove(at);
            c.images.push(img.clone());
            c.hits += 1;
            Some(img)
        }
        None => {
            c.misses += 1;
            None
        }
    }
}

/// Loads `image` once into a scratch address space at `key`'s base, keeps its pages as the
/// cached image for `key` and returns it.
pub fn build(key: Key, image: &[u8], info: ElfInfo) -> KResult<Arc<Cached>> {
    let scratch = AddressSpace::new()?;
    let loaded = elf::load(&scratch, image, &info, key.base)?;
    let pages = scratch.take_image()?;
    drop(scratch);
    let img = Arc::new(Cached {
        key,
        info,
        loaded,
        pages,
    });
    let n = img.pages.len();
    let evicted: Vec<Arc<Cached>> = {
        let mut c = CACHE.lock();
        // Another exec may have built the same image meanwhile: keep one.
        c.images.retain(|i| i.key != key);
        c.pages = c.images.iter().map(|i| i.pages.len()).sum();
        let mut out = Vec::new();
        while c.pages + n > MAX_PAGES && !c.images.is_empty() {
            let old = c.images.remove(0);
            c.pages -= old.pages.len();
            out.push(old);
        }
        if n <= MAX_PAGES {
            c.images.push(img.clone());
            c.pages += n;
        }
        out
    };
    // Frames are released outside the cache lock (when the last user is gone).
    drop(evicted);
    Ok(img)
}

/// (images, pages, hits, misses), for `/proc/boottimes`-style reports and tests.
pub fn stats() -> (usize, usize, u64, u64) {
    let c = CACHE.lock();
    (c.images.len(), c.pages, c.hits, c.misses)
}
