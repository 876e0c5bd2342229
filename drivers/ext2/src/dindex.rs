//! The directory-entry cache: for each directory looked at, an in-memory index of every
//! name it holds (name → inode and the logical block the entry is in) and, per block, the
//! largest new entry that fits. Built by one pass over the directory the first time a
//! name in it is looked up, created or removed; from then on a lookup (found or not: the
//! index is complete, so a missing name is a negative entry) costs one search by the
//! name's hash, and an insertion goes straight to a block with room.
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

/// name → (inode, logical block of the entry), searched by a 64-bit hash of the name: a
/// lookup compares integers down the tree and the name's bytes once, not at every level
/// (names in one directory often share long prefixes).
#[derive(Default)]
pub struct Names {
    map: BTreeMap<u64, Bucket>,
    len: usize,
}

/// The names with one hash: almost always one.
enum Bucket {
    One(Vec<u8>, (u32, u32)),
    Many(Vec<(Vec<u8>, (u32, u32))>),
}

/// FNV-1a (64-bit).
fn hash(name: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in name {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl Names {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn get(&self, name: &[u8]) -> Option<&(u32, u32)> {
        self.get_at(hash(name), name)
    }

    fn get_at(&self, h: u64, name: &[u8]) -> Option<&(u32, u32)> {
        match self.map.get(&h)? {
            Bucket::One(n, v) => (n.as_slice() == name).then_some(v),
            Bucket::Many(all) => all
                .iter()
                .find(|(n, _)| n.as_slice() == name)
                .map(|(_, v)| v),
        }
    }

    pub fn get_mut(&mut self, name: &[u8]) -> Option<&mut (u32, u32)> {
        match self.map.get_mut(&hash(name))? {
            Bucket::One(n, v) => (n.as_slice() == name).then_some(v),
            Bucket::Many(all) => all
                .iter_mut()
                .find(|(n, _)| n.as_slice() == name)
                .map(|(_, v)| v),
        }
    }

    /// Adds `name` (replacing what it mapped to).
    pub fn insert(&mut self, name: Vec<u8>, v: (u32, u32)) {
        self.insert_at(hash(&name), name, v)
    }

    fn insert_at(&mut self, h: u64, name: Vec<u8>, v: (u32, u32)) {
        use alloc::collections::btree_map::Entry;
        match self.map.entry(h) {
            Entry::Vacant(e) => {
                e.insert(Bucket::One(name, v));
                self.len += 1;
            }
            Entry::Occupied(mut e) => {
                let b = e.get_mut();
                if let Bucket::One(n, old) = b {
                    if *n == name {
                        *old = v;
                        return;
                    }
                    *b = Bucket::Many(alloc::vec![(core::mem::take(n), *old)]);
                }
                if let Bucket::Many(all) = b {
                    match all.iter_mut().find(|(n, _)| *n == name) {
                        Some((_, old)) => *old = v,
                        None => {
                            all.push((name, v));
                            self.len += 1;
                        }
                    }
                }
            }
        }
    }

    pub fn remove(&mut self, name: &[u8]) -> Option<(u32, u32)> {
        self.remove_at(hash(name), name)
    }

    fn remove_at(&mut self, h: u64, name: &[u8]) -> Option<(u32, u32)> {
        let b = self.map.get_mut(&h)?;
        let v = match b {
            Bucket::One(n, v) => {
                if n.as_slice() != name {
                    return None;
                }
                let v = *v;
                self.map.remove(&h);
                v
            }
            Bucket::Many(all) => {
                let i = all.iter().position(|(n, _)| n.as_slice() == name)?;
                let (_, v) = all.swap_remove(i);
                if all.is_empty() {
                    self.map.remove(&h);
                }
                v
            }
        };
        self.len -= 1;
        Some(v)
    }
}

pub struct DirIndex {
    /// name → (inode, logical block of the entry).
    pub names: Names,
    /// Per logical block: the largest entry (bytes, 4-aligned) that fits in its slack; 0
    /// for a hole.
    pub room: Vec<u16>,
    stamp: u64,
}

impl DirIndex {
    pub fn new() -> Self {
        Self {
            names: Names::default(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_one_hash_are_kept_apart() {
        let mut n = Names::default();
        n.insert_at(7, b"a".to_vec(), (1, 0));
        n.insert_at(7, b"b".to_vec(), (2, 0));
        n.insert_at(7, b"c".to_vec(), (3, 1));
        n.insert_at(7, b"b".to_vec(), (4, 0));
        assert_eq!(n.len(), 3);
        assert_eq!(n.get_at(7, b"b"), Some(&(4, 0)));
        assert_eq!(n.get_at(7, b"d"), None);
        assert_eq!(n.get_at(8, b"a"), None);
        assert_eq!(n.remove_at(7, b"a"), Some((1, 0)));
        assert_eq!(n.remove_at(7, b"a"), None);
        assert_eq!(n.get_at(7, b"c"), Some(&(3, 1)));
        assert_eq!(n.remove_at(7, b"b"), Some((4, 0)));
        assert_eq!(n.remove_at(7, b"c"), Some((3, 1)));
        assert_eq!(n.len(), 0);
        assert!(n.map.is_empty());
    }

    #[test]
    fn names_by_their_own_hash() {
        let mut n = Names::default();
        for i in 0..1000u32 {
            n.insert(
                alloc::format!("entry-{i:06}").into_bytes(),
                (i + 11, i / 100),
            );
        }
        assert_eq!(n.len(), 1000);
        assert_eq!(n.get(b"entry-000512"), Some(&(523, 5)));
        n.get_mut(b"entry-000512").unwrap().0 = 9;
        assert_eq!(n.get(b"entry-000512"), Some(&(9, 5)));
        assert_eq!(n.remove(b"entry-000999"), Some((1010, 9)));
        assert_eq!(n.get(b"entry-000999"), None);
        assert_eq!(n.len(), 999);
    }
}
