//! Asynchronous block I/O (`rumpuser_bio`), as NetBSD's `rumpuser_bio.c` does it: the caller
//! releases its vCPU, queues the request and takes the vCPU back; a dedicated host thread with
//! its own rump lwp (`hyp_schedule` + `hyp_lwproc_newlwp(0)` once) performs the I/O and calls
//! the completion with a vCPU held (`backend_schedule` / `backend_unschedule` around it).
//!
//! Unlike NetBSD's host, queued requests that continue each other on the disk
//! (NetBSD splits one mapped run of pages into MAXPHYS = 64 KiB bios) are joined into one host
//! I/O of up to [`MAX_RUN`] bytes, and [`Host::bio_threads`](crate::host::Host::bio_threads)
//! threads (4 unless the host says otherwise) serve the queue, so a device that keeps several
//! requests in flight gets them.

#![forbid(unsafe_code)]

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ffi::c_void;
use core::ptr;

use crate::CacheAligned;
use crate::errno::Errno;
use crate::ffi::{BioReq, perform_run};
use crate::host;
use crate::hyp;
use crate::sync::Waiter;

enum Item {
    /// A request and when it was queued (monotonic ns).
    Io(BioReq, u64),
    Fail(BioReq, Errno),
}

/// Counters over every request since boot: how many, bytes, and where their time went.
#[derive(Clone, Copy, Debug, Default)]
pub struct BioStats {
    pub requests: u64,
    /// Host I/O calls (contiguous requests are joined into one).
    pub ios: u64,
    pub bytes: u64,
    /// Sum of queued → picked up by a bio thread.
    pub queue_ns: u64,
    /// Sum of the host I/O calls (per call, not per request).
    pub io_ns: u64,
    /// Sum of the completion callbacks (vCPU taken, `biodone`, vCPU released).
    pub done_ns: u64,
    /// The part of `done_ns` spent waiting for a vCPU.
    pub vcpu_ns: u64,
    /// The most requests queued at once.
    pub max_queued: u64,
}

static STATS: CacheAligned<spin::Mutex<BioStats>> = CacheAligned(spin::Mutex::new(BioStats {
    requests: 0,
    ios: 0,
    bytes: 0,
    queue_ns: 0,
    io_ns: 0,
    done_ns: 0,
    vcpu_ns: 0,
    max_queued: 0,
}));

pub fn stats() -> BioStats {
    *STATS.lock()
}

struct Queue {
    items: VecDeque<Item>,
    /// Threads asleep, waiting for work.
    idle: Vec<Arc<Waiter>>,
    /// Threads on their way to the queue: woken and not yet looked at it, or done with their
    /// completions and heading back. While one is, more requests only queue up (and get
    /// joined) instead of waking a thread each; in particular a synchronous reader's next
    /// request, queued as soon as the previous completion wakes it, is taken by the thread
    /// that completed it.
    waking: usize,
    started: bool,
}

/// The most bytes joined into one host I/O.
const MAX_RUN: usize = 1 << 20;

static QUEUE: CacheAligned<spin::Mutex<Queue>> = CacheAligned(spin::Mutex::new(Queue {
    items: VecDeque::new(),
    idle: Vec::new(),
    waking: 0,
    started: false,
}));

/// Set when a request is queued, cleared when a thread releases its vCPU ([`unplug`]): while
/// it is set, the thread that queued is probably still issuing a burst (NetBSD issues one
/// bio per 64 KiB, and read-ahead a run of them, all before it waits), so a woken bio
/// thread gives it up to [`Host::bio_plug_ns`](crate::host::Host::bio_plug_ns) (200 µs unless the host says
/// otherwise) to finish before it takes and joins what is queued —
/// Linux's block "plug", flushed when the submitter blocks.
static PLUGGED: CacheAligned<core::sync::atomic::AtomicBool> =
    CacheAligned(core::sync::atomic::AtomicBool::new(false));

/// The caller (a thread about to release its vCPU: it is going to block, or leaves the rump
/// kernel) has finished issuing requests for now.
pub fn unplug() {
    // Every vCPU release comes here: write the shared line only when there is a plug to pull.
    if PLUGGED.load(core::sync::atomic::Ordering::Relaxed) {
        PLUGGED.store(false, core::sync::atomic::Ordering::Release);
    }
}

/// Wakes an idle thread unless one is already on its way (queue locked).
fn wake_one(q: &mut Queue) -> Option<Arc<Waiter>> {
    if q.waking > 0 {
        return None;
    }
    let w = q.idle.pop()?;
    q.waking += 1;
    Some(w)
}

/// Queues a request. The caller keeps its vCPU: the queue lock is only ever held for a few
/// instructions and waking a thread does not block (NetBSD's host releases the vCPU here
/// because its queue lock is a pthread mutex). Only starting the threads, once, may block.
fn push(item: Item) {
    let h = host::host();
    let (start, wake) = {
        let mut q = QUEUE.lock();
        q.items.push_back(item);
        let depth = q.items.len() as u64;
        let mut st = STATS.lock();
        st.max_queued = st.max_queued.max(depth);
        drop(st);
        let start = !q.started;
        q.started = true;
        PLUGGED.store(true, core::sync::atomic::Ordering::Release);
        (start, wake_one(&mut q))
    };
    if start {
        hyp::without_vcpu(|| {
            for _ in 0..h.bio_threads().max(1) {
                if let Err(e) = h.thread_create(bio_thread, ptr::null_mut(), "rumpbio", false, -1) {
                    h.console_write(b"rumpuser_bio: cannot start the bio thread\n");
                    h.exit(e.code(), true);
                }
            }
        });
    }
    if let Some(w) = wake {
        w.notify();
    }
}

/// A synchronous write done by the calling thread
/// ([`Host::bio_sync_inline`](crate::host::Host::bio_sync_inline)), as NetBSD's host does
/// without bio threads (`dobio` with `RUMP_THREADS=0`): the vCPU is released around the I/O,
/// the completion runs holding a vCPU but no giant lock, then the caller's locks are taken
/// back. To everyone else this is the interleaving in which a bio thread finished the request
/// before the caller got to `biowait`.
pub fn perform_inline(req: BioReq) {
    let h = host::host();
    let nlocks = hyp::unschedule(ptr::null_mut());
    let t0 = h.monotonic_ns();
    let (n, err) = req.perform();
    let t1 = h.monotonic_ns();
    let len = req.len as u64;
    hyp::schedule(0, ptr::null_mut());
    let tv = h.monotonic_ns();
    req.complete(n, err);
    hyp::unschedule(ptr::null_mut());
    let t2 = h.monotonic_ns();
    hyp::schedule(nlocks, ptr::null_mut());
    let mut st = STATS.lock();
    st.requests += 1;
    st.ios += 1;
    st.bytes += len;
    st.io_ns += t1 - t0;
    st.done_ns += t2 - t1;
    st.vcpu_ns += tv - t1;
}

pub fn submit(req: BioReq) {
    push(Item::Io(req, host::host().monotonic_ns()));
}

pub fn submit_error(req: BioReq, e: Errno) {
    push(Item::Fail(req, e));
}

extern "C-unwind" fn bio_thread(_arg: *mut c_void) -> *mut c_void {
    let h = host::host();
    hyp::hyp_schedule();
    let rv = hyp::lwproc_newlwp(0);
    assert_eq!(rv, 0, "bio thread: hyp_lwproc_newlwp failed");
    hyp::hyp_unschedule();
    // Counted in `waking` (by whoever woke this thread, or by itself after its completions).
    let mut on_the_way = false;
    loop {
        let first = loop {
            {
                let mut q = QUEUE.lock();
                if core::mem::take(&mut on_the_way) {
                    q.waking -= 1;
                }
                if let Some(it) = q.items.pop_front() {
                    break it;
                }
            }
            // Allocated without the queue's (spinning) lock held.
            let w = Waiter::new(h);
            {
                let mut q = QUEUE.lock();
                if let Some(it) = q.items.pop_front() {
                    break it;
                }
                q.idle.push(w.clone());
            }
            w.wait(h);
            on_the_way = true;
            // Let the burst that woke us finish, so that it can be joined.
            let plug = h.bio_plug_ns();
            if plug > 0 {
                let until = h.monotonic_ns() + plug;
                while PLUGGED.load(core::sync::atomic::Ordering::Acquire)
                    && h.monotonic_ns() < until
                {
                    h.yield_now();
                }
            }
        };
        let t0 = h.monotonic_ns();
        let mut queued_ns = 0u64;
        let mut done: Vec<(BioReq, usize, i32)> = Vec::new();
        match first {
            Item::Fail(req, e) => done.push((req, 0, e.code())),
            Item::Io(req, queued) => {
                // Take the requests that continue this one on the disk: one mapped run of
                // pages comes as many MAXPHYS-sized bios, read-ahead as one per 64 KiB chunk.
                queued_ns += t0.saturating_sub(queued);
                let mut run = alloc::vec![req];
                let mut bytes = run[0].len;
                {
                    let mut q = QUEUE.lock();
                    while let Some(Item::Io(next, _)) = q.items.front() {
                        let last = run.last().expect("run is never empty");
                        if bytes + next.len > MAX_RUN || !last.followed_on_disk_by(next) {
                            break;
                        }
                        bytes += next.len;
                        let Some(Item::Io(next, queued)) = q.items.pop_front() else {
                            unreachable!()
                        };
                        queued_ns += t0.saturating_sub(queued);
                        run.push(next);
                    }
                    // More work than this thread takes: hand it to another one.
                    if !q.items.is_empty()
                        && let Some(w) = wake_one(&mut q)
                    {
                        drop(q);
                        w.notify();
                    }
                }
                let results = perform_run(&run);
                done.extend(run.into_iter().zip(results).map(|(r, (n, e))| (r, n, e)));
            }
        }
        let t1 = h.monotonic_ns();
        let count = done.len() as u64;
        let len: u64 = done.iter().map(|d| d.0.len as u64).sum();
        hyp::schedule(0, ptr::null_mut());
        let tv = h.monotonic_ns();
        for (req, n, err) in done {
            req.complete(n, err);
        }
        // The waiters are woken; from here this thread goes straight back to the queue.
        QUEUE.lock().waking += 1;
        on_the_way = true;
        hyp::unschedule(ptr::null_mut());
        let t2 = h.monotonic_ns();
        let mut st = STATS.lock();
        st.requests += count;
        st.ios += 1;
        st.bytes += len;
        st.queue_ns += queued_ns;
        st.io_ns += t1 - t0;
        st.done_ns += t2 - t1;
        st.vcpu_ns += tv - t1;
    }
}
