//! The blocks right after a data run, read with it ("track buffer"), for the rump host's
//! block I/O (kernel/src/rump/host.rs).
//!
//! On a file system with 1 KiB blocks NetBSD's ext2fs needs an indirect block for every
//! 256 KiB of a file. It reads it synchronously through its buffer cache, and ext2 puts it
//! on the disk right after the data it follows, so a sequential read goes: a run of data
//! blocks (read-ahead), then a 1 KiB read exactly where that run ended, with the reader
//! waiting for the whole round trip to the device. Reading [`TAIL`] more bytes together with
//! every run of at least [`MIN_RUN`] bytes (one more request in the same batch) and keeping
//! them here turns that round trip into a copy.
//!
//! Coherence: entries are keyed by device handle and byte offset; every write through the
//! rump host drops the entries it overlaps and bumps a generation, before it is issued and
//! after it completes, and a tail whose read overlapped any write in time is not kept.
//! Only [`ENTRIES`] tails are kept, oldest dropped first.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

/// Bytes read after a run.
pub const TAIL: usize = 16 * 1024;
/// Runs at least this long bring their tail.
pub const MIN_RUN: usize = 64 * 1024;
const ENTRIES: usize = 8;

struct Entry {
    fd: i32,
    off: u64,
    data: Vec<u8>,
}

static CACHE: spin::Mutex<VecDeque<Entry>> = spin::Mutex::new(VecDeque::new());
/// Bumped by every write (see the module comment).
static WRITES: AtomicU64 = AtomicU64::new(0);
static HITS: AtomicU64 = AtomicU64::new(0);
static TAILS: AtomicU64 = AtomicU64::new(0);

/// (tails read, reads served from a tail).
pub fn stats() -> (u64, u64) {
    (TAILS.load(Ordering::Relaxed), HITS.load(Ordering::Relaxed))
}

/// The write generation, taken before a tail is read.
pub fn generation() -> u64 {
    WRITES.load(Ordering::Acquire)
}

/// Fills `buf` from a kept tail that holds all of `[off, off + buf.len())`. False if none
/// does.
pub fn take(fd: i32, off: u64, buf: &mut [u8]) -> bool {
    let c = CACHE.lock();
    let Some(e) = c.iter().find(|e| {
        e.fd == fd && off >= e.off && off + buf.len() as u64 <= e.off + e.data.len() as u64
    }) else {
        return false;
    };
    let start = (off - e.off) as usize;
    buf.copy_from_slice(&e.data[start..start + buf.len()]);
    drop(c);
    HITS.fetch_add(1, Ordering::Relaxed);
    true
}

/// Keeps a tail read at `off`, unless a write happened since `generation`.
pub fn keep(fd: i32, off: u64, data: Vec<u8>, generation: u64) {
    let mut c = CACHE.lock();
    // Checked under the lock that `written` takes: a write either bumped the generation
    // before this check (the tail is dropped) or drops the entry after it is in.
    if WRITES.load(Ordering::Acquire) != generation {
        return;
    }
    if c.len() == ENTRIES {
        c.pop_front();
    }
    c.push_back(Entry { fd, off, data });
    TAILS.fetch_add(1, Ordering::Relaxed);
}

/// A write of `[off, off + len)` is about to be issued or has completed (or the handle is
/// closed: 0, u64::MAX): drop what it overlaps.
pub fn written(fd: i32, off: u64, len: u64) {
    let mut c = CACHE.lock();
    WRITES.fetch_add(1, Ordering::AcqRel);
    let end = off.saturating_add(len);
    c.retain(|e| e.fd != fd || e.off + e.data.len() as u64 <= off || e.off >= end);
}

#[cfg(test)]
mod tests {
    use super::*;

    // The cache and its write generation are global, and tests run in parallel: one test,
    // in steps.
    #[test]
    fn tails_are_served_dropped_by_writes_and_not_kept_across_one() {
        a_kept_tail_serves_reads_inside_it_only();
        a_write_drops_what_it_overlaps();
        a_tail_read_across_a_write_is_not_kept();
    }

    fn a_kept_tail_serves_reads_inside_it_only() {
        let data: Vec<u8> = (0..TAIL).map(|i| i as u8).collect();
        keep(9001, 1 << 20, data, generation());
        let mut b = [0u8; 1024];
        assert!(take(9001, (1 << 20) + 4096, &mut b));
        assert_eq!(b[0], 0);
        assert_eq!(b[1], 1);
        // Past its end, another device, before it.
        assert!(!take(9001, (1 << 20) + TAIL as u64 - 512, &mut b));
        assert!(!take(9002, (1 << 20) + 4096, &mut b));
        assert!(!take(9001, (1 << 20) - 512, &mut b));
    }

    fn a_write_drops_what_it_overlaps() {
        keep(9003, 0, alloc::vec![7u8; TAIL], generation());
        keep(9003, 1 << 20, alloc::vec![8u8; TAIL], generation());
        written(9003, 4096, 512);
        let mut b = [0u8; 512];
        assert!(!take(9003, 0, &mut b));
        assert!(take(9003, 1 << 20, &mut b));
        assert_eq!(b, [8u8; 512]);
        // Closing the handle drops the rest.
        written(9003, 0, u64::MAX);
        assert!(!take(9003, 1 << 20, &mut b));
    }

    fn a_tail_read_across_a_write_is_not_kept() {
        let g = generation();
        written(9004, 1 << 30, 4096); // anywhere: the generation moved
        keep(9004, 0, alloc::vec![1u8; TAIL], g);
        let mut b = [0u8; 512];
        assert!(!take(9004, 0, &mut b));
    }
}
