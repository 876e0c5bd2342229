//! The directory-entry cache: for each directory looked at, an in-memory index of every
//! name it holds (name → inode and the logical block the entry is in) and, per block, the
//! largest new entry that fits. Built by one pass over the directory the first time a
//! name in it is looked up, created or removed; from then on a lookup (found or not: the
//! index is complete, so a missing name is a negative entry) costs one ordered-map search,
//! and an insertion goes straight to a block with room.
//!
//! Entries never move in this driver (an insertion splits a slack entry, a removal merges
//! into the previous one or clears the inode field), so (name, block) stays right until the
//! name is removed or the directory freed. Every change to a directory's entries goes
//! through `add_entry`, `remove_entry` and `set_entry_ino` (dir.rs), which keep the index
//! up to date; a freed directory inode drops its index (inodes.rs).
//!
//! Bounded: at most [`MAX_DIRS`] directories and [`MAX_NAMES`] names; the least recently
//! used directory's index goes first (it is rebuilt when needed again).

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// Directories indexed at once.
pub const MAX_DIRS: usize = 512;
/// Names held over all indexed directories (≈ 60 bytes each).
pub const MAX_NAMES: usize = 1 << 18;

pub struct DirIndex {
    /// name → (inode, logical block of the entry).
    pub names: BTreeMap<Vec<u8>, (u32, u32)>,
    /// Per logical block: the largest entry (bytes, 4-aligned) that fits in its slack; 0
    /// for a hole.
    pub room: Vec<u16>,
    stamp: u64,
}

impl DirIndex {
    pub fn new() -> Self {
        Self {
            names: BTreeMap::new(),
            room: Vec::new(),
            stamp: 0,
        }
    }
}

#[derive(Default)]
pub struct DirCache {
    dirs: BTreeMap<u32, DirIndex>,
    clock: u64,
    /// Lookups answered from an index (found or not), for tests and profiling.
    pub hits: u64,
    /// Indexes built by a scan of the directory.
    pub builds: u64,
}

impl DirCache {
    pub fn get(&mut self, dir: u32) -> Option<&mut DirIndex> {
        self.clock = self.clock.wrapping_add(1);
        let c = self.clock;
        let d = self.dirs.get_mut(&dir)?;
        d.stamp = c;
        Some(d)
    }

    /// Adds a freshly built index, evicting others to stay within the bounds.
    pub fn insert(&mut self, dir: u32, mut idx: DirIndex) {
        self.builds += 1;
        self.dirs.remove(&dir);
        while !self.dirs.is_empty()
            && (self.dirs.len() >= MAX_DIRS || self.names() + idx.names.len() > MAX_NAMES)
        {
            let victim = self
                .dirs
                .iter()
                .min_by_key(|(_, d)| d.stamp)
                .map(|(k, _)| *k);
            match victim {
                Some(k) => {
                    self.dirs.remove(&k);
                }
                None => break,
            }
        }
        self.clock = self.clock.wrapping_add(1);
        idx.stamp = self.clock;
        // A directory larger than the bound is still indexed (alone): its index costs
        // memory in proportion to its size on disk.
        self.dirs.insert(dir, idx);
    }

    fn names(&self) -> usize {
        self.dirs.values().map(|d| d.names.len()).sum()
    }

    /// Forgets `dir` (freed, or its index can no longer be trusted).
    pub fn drop_dir(&mut self, dir: u32) {
        self.dirs.remove(&dir);
    }

    pub fn contains(&self, dir: u32) -> bool {
        self.dirs.contains_key(&dir)
    }
}
