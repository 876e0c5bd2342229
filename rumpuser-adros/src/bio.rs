//! Asynchronous block I/O (`rumpuser_bio`), as NetBSD's `rumpuser_bio.c` does it: the caller
//! releases its vCPU, queues the request and takes the vCPU back; a dedicated host thread with
//! its own rump lwp (`hyp_schedule` + `hyp_lwproc_newlwp(0)` once) performs the I/O and calls
//! the completion with a vCPU held (`backend_schedule` / `backend_unschedule` around it).

#![forbid(unsafe_code)]

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::ffi::c_void;
use core::ptr;

use crate::errno::Errno;
use crate::ffi::BioReq;
use crate::host;
use crate::hyp;
use crate::sync::Waiter;

enum Item {
    Io(BioReq),
    Fail(BioReq, Errno),
}

struct Queue {
    items: VecDeque<Item>,
    idle: Option<Arc<Waiter>>,
    started: bool,
}

static QUEUE: spin::Mutex<Queue> = spin::Mutex::new(Queue { items: VecDeque::new(), idle: None, started: false });

fn push(item: Item) {
    let h = host::host();
    hyp::without_vcpu(|| {
        let (start, wake) = {
            let mut q = QUEUE.lock();
            q.items.push_back(item);
            let start = !q.started;
            q.started = true;
            (start, q.idle.take())
        };
        if start && let Err(e) = h.thread_create(bio_thread, ptr::null_mut(), "rumpbio", false, -1) {
            h.console_write(b"rumpuser_bio: cannot start the bio thread\n");
            h.exit(e.code(), true);
        }
        if let Some(w) = wake {
            w.notify();
        }
    });
}

pub fn submit(req: BioReq) {
    push(Item::Io(req));
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
    loop {
        let item = loop {
            let w = {
                let mut q = QUEUE.lock();
                if let Some(it) = q.items.pop_front() {
                    break it;
                }
                let w = crate::sync::Waiter::new(h);
                q.idle = Some(w.clone());
                w
            };
            w.wait(h);
        };
        let (req, n, err) = match item {
            Item::Io(req) => {
                let (n, err) = req.perform();
                (req, n, err)
            }
            Item::Fail(req, e) => (req, 0, e.code()),
        };
        hyp::schedule(0, ptr::null_mut());
        req.complete(n, err);
        hyp::unschedule(ptr::null_mut());
    }
}
