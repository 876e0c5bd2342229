//! Pipes and FIFOs: a 64 KiB ring, blocking on one wait queue (woken on every state change:
//! data in, space freed, an end opened or closed). Writes of at most `PIPE_BUF` bytes are
//! atomic. A read with no writers left returns 0 (EOF); a write with no readers left fails
//! with EPIPE (the caller raises SIGPIPE).

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec;

use super::consts::*;
use super::sync::{SpinLock, WaitQueue};
use crate::errno::{Errno, KResult};

pub struct Pipe {
    state: SpinLock<State>,
    wq: WaitQueue,
}

struct State {
    /// Allocated on first write.
    ring: Option<Box<[u8]>>,
    head: usize,
    len: usize,
    readers: usize,
    writers: usize,
    /// How many times each end was ever opened (a FIFO open waits for the other end).
    reader_opens: u64,
    writer_opens: u64,
}

/// Which end(s) of a pipe an open file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Read,
    Write,
    /// A FIFO opened `O_RDWR`.
    Both,
}

impl End {
    pub fn reads(self) -> bool {
        self != End::Write
    }
    pub fn writes(self) -> bool {
        self != End::Read
    }
}

impl Pipe {
    pub fn new() -> Arc<Pipe> {
        Arc::new(Pipe {
            state: SpinLock::new(State {
                ring: None,
                head: 0,
                len: 0,
                readers: 0,
                writers: 0,
                reader_opens: 0,
                writer_opens: 0,
            }),
            wq: WaitQueue::new(),
        })
    }

    pub fn wait_queue(&self) -> &WaitQueue {
        &self.wq
    }

    /// Registers an opened end (pipe creation and FIFO opens).
    pub fn open_end(&self, end: End) {
        let mut s = self.state.lock();
        if end.reads() {
            s.readers += 1;
            s.reader_opens += 1;
        }
        if end.writes() {
            s.writers += 1;
            s.writer_opens += 1;
        }
        drop(s);
        self.wq.wake_all();
    }

    /// Called when an open file holding `end` is dropped.
    pub fn close_end(&self, end: End) {
        let mut s = self.state.lock();
        if end.reads() {
            s.readers -= 1;
        }
        if end.writes() {
            s.writers -= 1;
        }
        if s.readers == 0 && s.writers == 0 {
            // A FIFO's buffer does not outlive its last opener (Linux discards it too).
            s.ring = None;
            s.len = 0;
            s.head = 0;
        }
        drop(s);
        self.wq.wake_all();
    }

    /// FIFO open semantics: a blocking open waits for the other end; a non-blocking write
    /// open with no reader fails with ENXIO.
    pub fn open_fifo(&self, end: End, nonblock: bool) -> KResult<()> {
        if end == End::Write && nonblock && self.state.lock().readers == 0 {
            return Err(Errno::ENXIO);
        }
        // A partner already open when we open is enough (Linux checks `writers`/`readers`
        // as it opens): waiting for one to be there when we look could miss a writer that
        // was waiting for us, woke at our open, wrote and closed before we looked — the
        // reader then slept forever (csuite_pipes' FIFO rendezvous, about 1 run in 30).
        let (r0, w0, partner) = {
            let s = self.state.lock();
            let partner = match end {
                End::Read => s.writers > 0,
                End::Write => s.readers > 0,
                End::Both => true,
            };
            (s.reader_opens, s.writer_opens, partner)
        };
        self.open_end(end);
        if nonblock || partner {
            return Ok(());
        }
        let mut intr = false;
        self.wq.wait_until(
            || {
                let s = self.state.lock();
                let ok = match end {
                    End::Read => s.writers > 0 || s.writer_opens != w0,
                    _ => s.readers > 0 || s.reader_opens != r0,
                };
                ok || {
                    intr = super::interrupted();
                    intr
                }
            },
            None,
        );
        if intr {
            self.close_end(end);
            return Err(Errno::ERESTARTSYS);
        }
        Ok(())
    }

    /// Bytes waiting to be read (`FIONREAD`).
    pub fn available(&self) -> usize {
        self.state.lock().len
    }

    pub fn read(&self, buf: &mut [u8], nonblock: bool) -> KResult<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            {
                let mut s = self.state.lock();
                if s.len > 0 {
                    let n = buf.len().min(s.len);
                    let (head, ring) = (s.head, s.ring.as_ref().ok_or(Errno::EIO)?);
                    let first = n.min(PIPE_SIZE - head);
                    buf[..first].copy_from_slice(&ring[head..head + first]);
                    buf[first..n].copy_from_slice(&ring[..n - first]);
                    s.head = (head + n) % PIPE_SIZE;
                    s.len -= n;
                    drop(s);
                    self.wq.wake_all();
                    return Ok(n);
                }
                if s.writers == 0 {
                    return Ok(0);
                }
                if nonblock {
                    return Err(Errno::EAGAIN);
                }
            }
            let mut intr = false;
            self.wq.wait_until(
                || {
                    let s = self.state.lock();
                    s.len > 0 || s.writers == 0 || {
                        intr = super::interrupted();
                        intr
                    }
                },
                None,
            );
            if intr && self.state.lock().len == 0 {
                return Err(Errno::ERESTARTSYS);
            }
        }
    }

    pub fn write(&self, buf: &[u8], nonblock: bool) -> KResult<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let atomic = buf.len() <= PIPE_BUF;
        let mut done = 0;
        loop {
            {
                let mut s = self.state.lock();
                if s.readers == 0 {
                    return if done > 0 {
                        Ok(done)
                    } else {
                        Err(Errno::EPIPE)
                    };
                }
                let space = PIPE_SIZE - s.len;
                let want = buf.len() - done;
                if space > 0 && (!atomic || space >= want) {
                    let n = want.min(space);
                    if s.ring.is_none() {
                        s.ring = Some(vec![0u8; PIPE_SIZE].into_boxed_slice());
                    }
                    let tail = (s.head + s.len) % PIPE_SIZE;
                    let first = n.min(PIPE_SIZE - tail);
                    if let Some(ring) = s.ring.as_mut() {
                        ring[tail..tail + first].copy_from_slice(&buf[done..done + first]);
                        ring[..n - first].copy_from_slice(&buf[done + first..done + n]);
                    }
                    s.len += n;
                    done += n;
                    drop(s);
                    self.wq.wake_all();
                    if done == buf.len() {
                        return Ok(done);
                    }
                    continue;
                }
                if nonblock {
                    return if done > 0 {
                        Ok(done)
                    } else {
                        Err(Errno::EAGAIN)
                    };
                }
            }
            let need = if atomic { buf.len() } else { 1 };
            let mut intr = false;
            self.wq.wait_until(
                || {
                    let s = self.state.lock();
                    PIPE_SIZE - s.len >= need || s.readers == 0 || {
                        intr = super::interrupted();
                        intr
                    }
                },
                None,
            );
            if intr {
                return if done > 0 {
                    Ok(done)
                } else {
                    Err(Errno::ERESTARTSYS)
                };
            }
        }
    }

    /// `poll` bits for an open file holding `end`.
    pub fn poll(&self, end: End, events: u32) -> u32 {
        let s = self.state.lock();
        let mut r = 0;
        if end.reads() {
            if s.len > 0 {
                r |= POLLIN | POLLRDNORM;
            }
            if s.writers == 0 && s.writer_opens > 0 {
                r |= POLLHUP;
            }
        }
        if end.writes() {
            if PIPE_SIZE - s.len >= PIPE_BUF {
                r |= POLLOUT | POLLWRNORM;
            }
            if s.readers == 0 {
                r |= POLLERR;
            }
        }
        r & (events | POLLHUP | POLLERR)
    }
}
