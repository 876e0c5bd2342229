//! `rumpuser_bio`: a block I/O request from rump, checked and handed to the queue in
//! [`crate::bio`], and the batching the bio threads use: a run of requests that continue each
//! other on the disk done as one host I/O (straight, vectored, or through a bounce buffer).
//!
//! Safety contract: as for every hypercall (see [`super`]).

use super::*;

/// A queued block I/O request (raw pointers from rump, handed to the bio thread).
pub struct BioReq {
    pub fd: c_int,
    pub write: bool,
    pub sync: bool,
    pub data: *mut u8,
    pub len: usize,
    pub off: u64,
    pub done: BiodoneFn,
    pub arg: *mut c_void,
}

// SAFETY: the request's buffer and argument stay valid until `done` is called (rump's bio
// contract); exactly one thread (the bio thread) uses them after submission.
unsafe impl Send for BioReq {}

impl BioReq {
    /// Performs the I/O; returns (bytes, NetBSD errno).
    pub fn perform(&self) -> (usize, c_int) {
        bio_io(
            self.fd, self.write, self.sync, self.data, self.len, self.off,
        )
    }

    /// Whether `next` continues this request on the disk, in the same direction (its buffer
    /// may be anywhere), so that the two can be done as one I/O.
    pub fn followed_on_disk_by(&self, next: &BioReq) -> bool {
        self.fd == next.fd && self.write == next.write && self.off + self.len as u64 == next.off
    }

    /// Whether `next` continues this request both on the disk and in memory — NetBSD splits
    /// one mapped run of pages into MAXPHYS-sized bios like that — so that the two can be done
    /// as one I/O straight into (or from) rump's memory.
    pub fn continued_by(&self, next: &BioReq) -> bool {
        self.followed_on_disk_by(next) && self.data.wrapping_add(self.len) == next.data
    }

    /// Calls rump's completion callback (the caller holds a vCPU with its own lwp).
    pub fn complete(self, n: usize, error: c_int) {
        // SAFETY: rump's callback with its own argument, called once.
        unsafe { (self.done)(self.arg, n, error) }
    }
}

fn bio_io(
    fd: c_int,
    write: bool,
    sync: bool,
    data: *mut u8,
    len: usize,
    off: u64,
) -> (usize, c_int) {
    let h = host::host();
    let r = if write {
        // SAFETY: rump's buffer of len bytes (or a run of such buffers, one after the other:
        // `continued_by`), valid until completion.
        let buf = unsafe { core::slice::from_raw_parts(data, len) };
        if sync {
            h.write_sync_at(fd, buf, off)
        } else {
            h.write_at(fd, buf, Some(off))
        }
    } else {
        // SAFETY: as above, writable.
        let buf = unsafe { core::slice::from_raw_parts_mut(data, len) };
        h.read_at(fd, buf, Some(off))
    };
    match r {
        Ok(n) => (n, 0),
        Err(e) => (0, e.code()),
    }
}

/// Performs a run of requests, each `followed_on_disk_by` the one before, as one I/O: straight
/// into rump's memory when each also continues the one before there, else through a buffer from
/// the host (read-ahead comes as one 64 KiB request per separately mapped chunk, and one
/// device request per MiB beats sixteen). Returns each request's (bytes, NetBSD errno). If the
/// joint I/O fails, or no buffer can be had, every request is done alone, so each gets its own
/// result.
pub fn perform_run(run: &[BioReq]) -> alloc::vec::Vec<(usize, c_int)> {
    let Some(first) = run.first() else {
        return alloc::vec::Vec::new();
    };
    if run.len() == 1 {
        return alloc::vec![first.perform()];
    }
    let total: usize = run.iter().map(|r| r.len).sum();
    let sync = run.iter().any(|r| r.sync);
    let (mut n, err) = if run.windows(2).all(|w| w[0].continued_by(&w[1])) {
        bio_io(first.fd, first.write, sync, first.data, total, first.off)
    } else if let Some(r) = vectored(run, sync) {
        r
    } else {
        match bounce(run, total, sync) {
            Some(r) => r,
            None => return run.iter().map(BioReq::perform).collect(),
        }
    };
    if err != 0 {
        return run.iter().map(BioReq::perform).collect();
    }
    run.iter()
        .map(|r| {
            let k = n.min(r.len);
            n -= k;
            (k, 0)
        })
        .collect()
}

/// One vectored host I/O straight into (or from) the run's buffers; None if the host has none.
fn vectored(run: &[BioReq], sync: bool) -> Option<(usize, c_int)> {
    let h = host::host();
    let first = run.first()?;
    // Rump never has two requests in flight on the same memory; make sure before handing out
    // slices that exist at the same time.
    let mut spans: alloc::vec::Vec<(usize, usize)> = run
        .iter()
        .map(|r| (r.data as usize, r.data as usize + r.len))
        .collect();
    spans.sort_unstable();
    if spans.windows(2).any(|w| w[0].1 > w[1].0) {
        return None;
    }
    let r = if first.write {
        let bufs: alloc::vec::Vec<&[u8]> = run
            .iter()
            // SAFETY: rump's buffer of r.len bytes, valid until completion.
            .map(|r| unsafe { core::slice::from_raw_parts(r.data.cast_const(), r.len) })
            .collect();
        h.write_vectored_at(first.fd, &bufs, first.off, sync)?
    } else {
        let mut bufs: alloc::vec::Vec<&mut [u8]> = run
            .iter()
            // SAFETY: rump's writable buffer of r.len bytes, valid until completion; the
            // requests of a run do not overlap (they follow each other on the disk and each
            // buffer belongs to its own request).
            .map(|r| unsafe { core::slice::from_raw_parts_mut(r.data, r.len) })
            .collect();
        h.read_vectored_at(first.fd, &mut bufs, first.off)?
    };
    Some(match r {
        Ok(n) => (n, 0),
        Err(e) => (0, e.code()),
    })
}

/// One I/O for a run of requests through a page-aligned host buffer (the kernel host hands out
/// page multiples as physically contiguous memory, which the device reads and writes
/// directly). None if the host has no such buffer.
fn bounce(run: &[BioReq], total: usize, sync: bool) -> Option<(usize, c_int)> {
    const PAGE: usize = 4096;
    let h = host::host();
    let first = run.first()?;
    let size = total.next_multiple_of(PAGE);
    let p = h.alloc(size, PAGE).ok()?;
    // SAFETY: the host gave us `size` bytes, ours until the free below.
    let buf = unsafe { core::slice::from_raw_parts_mut(p.as_ptr(), size) };
    let r = if first.write {
        let mut at = 0;
        for r in run {
            // SAFETY: rump's buffer of r.len bytes, valid until completion.
            buf[at..at + r.len]
                .copy_from_slice(unsafe { core::slice::from_raw_parts(r.data, r.len) });
            at += r.len;
        }
        bio_io(first.fd, true, sync, buf.as_mut_ptr(), total, first.off)
    } else {
        let (n, err) = bio_io(first.fd, false, false, buf.as_mut_ptr(), total, first.off);
        if err == 0 {
            let (mut at, mut left) = (0, n);
            for r in run {
                let k = left.min(r.len);
                // SAFETY: rump's writable buffer of r.len bytes (k <= r.len), valid until
                // completion; it does not overlap ours.
                unsafe { core::slice::from_raw_parts_mut(r.data, k) }
                    .copy_from_slice(&buf[at..at + k]);
                at += r.len;
                left -= k;
            }
        }
        (n, err)
    };
    // SAFETY: allocated above with this size, no longer used.
    unsafe { h.free(p, size) };
    Some(r)
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_bio(
    fd: c_int,
    op: c_int,
    data: *mut c_void,
    dlen: usize,
    doff: i64,
    done: Option<BiodoneFn>,
    arg: *mut c_void,
) {
    let Some(done) = done else {
        host::host().console_write(b"rumpuser_bio: no completion callback\n");
        return;
    };
    let write = op & RUMPUSER_BIO_WRITE != 0;
    let bad = data.is_null()
        || doff < 0
        || (op & (RUMPUSER_BIO_READ | RUMPUSER_BIO_WRITE)) == 0
        || (op & RUMPUSER_BIO_READ != 0 && write);
    let req = BioReq {
        fd,
        write,
        sync: op & RUMPUSER_BIO_SYNC != 0,
        data: data.cast(),
        len: dlen,
        off: doff.max(0) as u64,
        done,
        arg,
    };
    if bad {
        // Complete with EINVAL in a rump context like any other completion.
        crate::bio::submit_error(req, Errno::EINVAL);
        return;
    }
    if req.write && req.sync && host::host().bio_sync_inline() {
        crate::bio::perform_inline(req);
        return;
    }
    crate::bio::submit(req);
}
