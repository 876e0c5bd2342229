//! AF_UNIX sockets. A stream connection is two pipes, one per direction (the pipe layer
//! gives EOF, EPIPE, blocking and atomicity); datagram and seqpacket sockets queue whole
//! messages in the receiver's inbox. Each socket has one wait queue: it relays the queues of
//! its pipes (through [`Notify`]) and is woken directly by everything else (messages,
//! connections, shutdowns), so poll/epoll need only that queue. Names are file-system
//! nodes of type `S_IFSOCK` (found again by device and inode) or abstract (leading NUL).

use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::any::Any;

use crate::errno::{Errno, KResult};
use crate::fs::anon::AnonFile;
use crate::fs::consts::*;
use crate::fs::pipe::{End, Pipe};
use crate::fs::sync::{SpinLock, WaitQueue};
use crate::fs::{File, FsCtx};
use crate::sched::wait::Notify;

use super::epoll::EPOLLRDHUP;

pub const SOCK_STREAM: u32 = 1;
pub const SOCK_DGRAM: u32 = 2;
pub const SOCK_SEQPACKET: u32 = 5;

/// Bytes a datagram/seqpacket inbox holds before senders block.
const INBOX_BYTES: usize = 256 * 1024;
/// The largest datagram (Linux's default socket buffer).
pub const MAX_MSG: usize = 212_992;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Node(u64, u64),
    Abstract(Vec<u8>),
}

/// A socket name: the `sun_path` bytes as given (a path, or NUL + abstract name).
#[derive(Clone, Debug)]
pub struct Addr {
    pub path: Vec<u8>,
    key: Key,
}

static NAMES: SpinLock<BTreeMap<Key, Weak<Inner>>> = SpinLock::new(BTreeMap::new());

#[derive(Clone, Copy, Debug, Default)]
pub struct Cred {
    pub pid: u32,
    pub uid: u32,
    pub gid: u32,
}

pub struct Msg {
    pub data: Vec<u8>,
    pub from: Option<Vec<u8>>,
    pub rights: Vec<Arc<File>>,
}

enum Conn {
    None,
    Listening {
        backlog: VecDeque<Sock>,
        max: usize,
    },
    Stream {
        rx: Arc<Pipe>,
        tx: Arc<Pipe>,
        peer: Weak<Inner>,
    },
    /// Datagram (connected) or seqpacket peer.
    Packet {
        peer: Weak<Inner>,
    },
}

/// A connected stream's ends: (receive pipe, send pipe, the peer, read shut down, write shut
/// down).
type StreamEnds = (Arc<Pipe>, Arc<Pipe>, Weak<Inner>, bool, bool);

/// What one receive returns: (bytes copied, the message's full length, the sender's address,
/// passed descriptors).
type Received = (usize, usize, Option<Vec<u8>>, Vec<Arc<File>>);

struct State {
    bound: Option<Addr>,
    peer_name: Option<Vec<u8>>,
    conn: Conn,
    shut_rd: bool,
    shut_wr: bool,
    peer_cred: Option<Cred>,
}

struct Inbox {
    msgs: VecDeque<Msg>,
    bytes: usize,
    /// Seqpacket: the peer closed or shut down writing (reads return 0 once empty).
    eof: bool,
    /// Stream: descriptors sent with SCM_RIGHTS, taken by the next `recvmsg`.
    rights: VecDeque<Vec<Arc<File>>>,
}

struct Relay(Arc<WaitQueue>);

impl Notify for Relay {
    fn notify(&self) {
        self.0.wake_all();
    }
}

pub struct Inner {
    pub ty: u32,
    wq: Arc<WaitQueue>,
    relay: Arc<Relay>,
    st: SpinLock<State>,
    inbox: SpinLock<Inbox>,
    cred: Cred,
}

/// The handle a file holds: dropping it closes the socket.
pub struct Sock(pub Arc<Inner>);

fn wake(i: &Inner) {
    i.wq.wake_all();
}

impl Inner {
    pub fn new(ty: u32, cred: Cred) -> Arc<Inner> {
        let wq = Arc::new(WaitQueue::new());
        Arc::new(Inner {
            ty,
            relay: Arc::new(Relay(wq.clone())),
            wq,
            st: SpinLock::new(State {
                bound: None,
                peer_name: None,
                conn: Conn::None,
                shut_rd: false,
                shut_wr: false,
                peer_cred: None,
            }),
            inbox: SpinLock::new(Inbox {
                msgs: VecDeque::new(),
                bytes: 0,
                eof: false,
                rights: VecDeque::new(),
            }),
            cred,
        })
    }

    fn relay_weak(&self) -> Weak<dyn Notify> {
        let n: Arc<dyn Notify> = self.relay.clone();
        Arc::downgrade(&n)
    }

    fn is_packet(&self) -> bool {
        self.ty != SOCK_STREAM
    }

    pub fn local_name(&self) -> Option<Vec<u8>> {
        self.st.lock().bound.as_ref().map(|a| a.path.clone())
    }

    pub fn peer_name(&self) -> KResult<Option<Vec<u8>>> {
        let s = self.st.lock();
        match s.conn {
            Conn::Stream { .. } | Conn::Packet { .. } => Ok(s.peer_name.clone()),
            _ => Err(Errno::ENOTCONN),
        }
    }

    pub fn peer_cred(&self) -> Cred {
        self.st.lock().peer_cred.unwrap_or(Cred {
            pid: 0,
            uid: u32::MAX,
            gid: u32::MAX,
        })
    }

    pub fn is_listening(&self) -> bool {
        matches!(self.st.lock().conn, Conn::Listening { .. })
    }

    /// `bind`: `path` is `sun_path` up to the address length (trailing NULs of a path cut).
    pub fn bind(self: &Arc<Self>, ctx: &FsCtx, path: &[u8]) -> KResult<()> {
        if self.st.lock().bound.is_some() {
            return Err(Errno::EINVAL);
        }
        let key = if path.first() == Some(&0) {
            Key::Abstract(path.to_vec())
        } else {
            let p = core::str::from_utf8(path).map_err(|_| Errno::EINVAL)?;
            crate::fs::mknod(ctx, None, p, S_IFSOCK | 0o777, 0).map_err(|e| {
                if e == Errno::EEXIST {
                    Errno::EADDRINUSE
                } else {
                    e
                }
            })?;
            let st = crate::fs::stat(ctx, None, p, false)?;
            Key::Node(st.dev, st.ino)
        };
        {
            let mut names = NAMES.lock();
            if names.get(&key).is_some_and(|w| w.strong_count() > 0) {
                return Err(Errno::EADDRINUSE);
            }
            names.insert(key.clone(), Arc::downgrade(self));
        }
        self.st.lock().bound = Some(Addr {
            path: path.to_vec(),
            key,
        });
        Ok(())
    }

    fn lookup(ctx: &FsCtx, path: &[u8]) -> KResult<Arc<Inner>> {
        let key = if path.first() == Some(&0) {
            Key::Abstract(path.to_vec())
        } else {
            let p = core::str::from_utf8(path).map_err(|_| Errno::EINVAL)?;
            let st = crate::fs::stat(ctx, None, p, true)?;
            if st.file_type() != S_IFSOCK {
                return Err(Errno::ECONNREFUSED);
            }
            crate::fs::permission(ctx, &st, 2)?;
            Key::Node(st.dev, st.ino)
        };
        NAMES
            .lock()
            .get(&key)
            .and_then(Weak::upgrade)
            .ok_or(Errno::ECONNREFUSED)
    }

    pub fn listen(&self, backlog: i32) -> KResult<()> {
        if self.ty == SOCK_DGRAM {
            return Err(Errno::EOPNOTSUPP);
        }
        let mut s = self.st.lock();
        if s.bound.is_none() {
            return Err(Errno::EINVAL);
        }
        let max = backlog.clamp(1, 4096) as usize;
        match &mut s.conn {
            Conn::None => {
                s.conn = Conn::Listening {
                    backlog: VecDeque::new(),
                    max,
                }
            }
            Conn::Listening { max: m, .. } => *m = max,
            _ => return Err(Errno::EINVAL),
        }
        Ok(())
    }

    /// Joins `a` and `b` (socketpair, or connect's client and new server-side socket).
    fn join(a: &Arc<Inner>, b: &Arc<Inner>) {
        if a.ty == SOCK_STREAM {
            let (ab, ba) = (Pipe::new(), Pipe::new());
            ab.open_end(End::Write);
            ab.open_end(End::Read);
            ba.open_end(End::Write);
            ba.open_end(End::Read);
            for p in [&ab, &ba] {
                p.wait_queue().watch(a.relay_weak());
                p.wait_queue().watch(b.relay_weak());
            }
            a.st.lock().conn = Conn::Stream {
                rx: ba.clone(),
                tx: ab.clone(),
                peer: Arc::downgrade(b),
            };
            b.st.lock().conn = Conn::Stream {
                rx: ab,
                tx: ba,
                peer: Arc::downgrade(a),
            };
        } else {
            a.st.lock().conn = Conn::Packet {
                peer: Arc::downgrade(b),
            };
            b.st.lock().conn = Conn::Packet {
                peer: Arc::downgrade(a),
            };
        }
    }

    pub fn pair(ty: u32, cred: Cred) -> (Arc<Inner>, Arc<Inner>) {
        let (a, b) = (Inner::new(ty, cred), Inner::new(ty, cred));
        Inner::join(&a, &b);
        a.st.lock().peer_cred = Some(cred);
        b.st.lock().peer_cred = Some(cred);
        (a, b)
    }

    /// `connect`. Datagram sockets just remember their default destination.
    pub fn connect(self: &Arc<Self>, ctx: &FsCtx, path: &[u8], nonblock: bool) -> KResult<()> {
        let target = Inner::lookup(ctx, path)?;
        if target.ty != self.ty {
            return Err(Errno::EPROTOTYPE);
        }
        if self.ty == SOCK_DGRAM {
            let mut s = self.st.lock();
            s.conn = Conn::Packet {
                peer: Arc::downgrade(&target),
            };
            s.peer_name = Some(path.to_vec());
            return Ok(());
        }
        if !matches!(self.st.lock().conn, Conn::None) {
            return Err(Errno::EISCONN);
        }
        if Arc::ptr_eq(self, &target) {
            return Err(Errno::ECONNREFUSED);
        }
        let srv = Inner::new(self.ty, target.cred);
        {
            let ts = target.st.lock();
            let Conn::Listening { backlog, max } = &ts.conn else {
                return Err(Errno::ECONNREFUSED);
            };
            if backlog.len() >= *max {
                return Err(if nonblock {
                    Errno::EAGAIN
                } else {
                    Errno::ECONNREFUSED
                });
            }
            let mut ss = srv.st.lock();
            ss.bound = ts.bound.clone();
            ss.peer_name = self.local_name();
            ss.peer_cred = Some(self.cred);
        }
        Inner::join(self, &srv);
        {
            let mut s = self.st.lock();
            s.peer_name = Some(path.to_vec());
            s.peer_cred = Some(target.cred);
        }
        {
            let mut ts = target.st.lock();
            match &mut ts.conn {
                Conn::Listening { backlog, .. } => backlog.push_back(Sock(srv)),
                _ => return Err(Errno::ECONNREFUSED),
            }
        }
        wake(&target);
        wake(self);
        Ok(())
    }

    /// `accept`: the next queued connection.
    pub fn accept(&self, nonblock: bool) -> KResult<Sock> {
        let take = || {
            let mut s = self.st.lock();
            match &mut s.conn {
                Conn::Listening { backlog, .. } => Ok(backlog.pop_front()),
                _ => Err(Errno::EINVAL),
            }
        };
        if let Some(c) = take()? {
            return Ok(c);
        }
        if nonblock {
            return Err(Errno::EAGAIN);
        }
        let mut err = None;
        let r = super::wait_for(&self.wq, || match take() {
            Ok(c) => c,
            Err(e) => {
                err = Some(e);
                None
            }
        });
        if let Some(e) = err {
            return Err(e);
        }
        r
    }

    pub fn shutdown(&self, how: u32) -> KResult<()> {
        if how > 2 {
            return Err(Errno::EINVAL);
        }
        let (rd, wr) = (how == 0 || how == 2, how == 1 || how == 2);
        let peer;
        {
            let mut s = self.st.lock();
            let (was_rd, was_wr) = (s.shut_rd, s.shut_wr);
            match &s.conn {
                Conn::Stream { rx, tx, peer: p } => {
                    if rd && !was_rd {
                        rx.close_end(End::Read);
                    }
                    if wr && !was_wr {
                        tx.close_end(End::Write);
                    }
                    peer = p.upgrade();
                }
                Conn::Packet { peer: p } => {
                    peer = if self.ty == SOCK_DGRAM {
                        None
                    } else {
                        p.upgrade()
                    }
                }
                _ => return Err(Errno::ENOTCONN),
            }
            s.shut_rd |= rd;
            s.shut_wr |= wr;
        }
        if let Some(p) = peer {
            if wr && self.is_packet() {
                p.inbox.lock().eof = true;
            }
            wake(&p);
        }
        wake(self);
        Ok(())
    }

    fn stream(&self) -> KResult<StreamEnds> {
        let s = self.st.lock();
        match &s.conn {
            Conn::Stream { rx, tx, peer } => {
                Ok((rx.clone(), tx.clone(), peer.clone(), s.shut_rd, s.shut_wr))
            }
            _ => Err(Errno::ENOTCONN),
        }
    }

    /// Sends `data` (to `dest` for an unconnected datagram socket). EPIPE means the caller
    /// raises SIGPIPE unless MSG_NOSIGNAL.
    pub fn send(
        &self,
        ctx: &FsCtx,
        data: &[u8],
        dest: Option<&[u8]>,
        rights: Vec<Arc<File>>,
        nonblock: bool,
    ) -> KResult<usize> {
        if !self.is_packet() {
            if dest.is_some() && self.stream().is_err() {
                return Err(Errno::EOPNOTSUPP);
            }
            let (_, tx, peer, _, shut_wr) = self.stream()?;
            if shut_wr {
                return Err(Errno::EPIPE);
            }
            if !rights.is_empty() {
                let p = peer.upgrade().ok_or(Errno::EPIPE)?;
                p.inbox.lock().rights.push_back(rights);
            }
            return tx.write(data, nonblock);
        }
        if data.len() > MAX_MSG {
            return Err(Errno::EMSGSIZE);
        }
        let target = match dest {
            Some(d) if self.ty == SOCK_DGRAM => Inner::lookup(ctx, d)?,
            Some(_) => return Err(Errno::EISCONN),
            None => {
                let s = self.st.lock();
                if s.shut_wr {
                    return Err(Errno::EPIPE);
                }
                match &s.conn {
                    Conn::Packet { peer } => peer.upgrade().ok_or(if self.ty == SOCK_DGRAM {
                        Errno::ECONNREFUSED
                    } else {
                        Errno::EPIPE
                    })?,
                    _ => return Err(Errno::ENOTCONN),
                }
            }
        };
        if target.ty != self.ty {
            return Err(Errno::EPROTOTYPE);
        }
        let from = self.local_name();
        let mut msg = Some(Msg {
            data: data.to_vec(),
            from,
            rights,
        });
        let mut try_push = || {
            let mut ib = target.inbox.lock();
            if ib.bytes > 0 && ib.bytes + data.len() > INBOX_BYTES {
                return None;
            }
            ib.bytes += data.len();
            ib.msgs.push_back(msg.take()?);
            Some(())
        };
        if try_push().is_none() {
            if nonblock {
                return Err(Errno::EAGAIN);
            }
            super::wait_for(&target.wq, &mut try_push)?;
        }
        wake(&target);
        Ok(data.len())
    }

    /// Receives into `buf`: (bytes copied, full message length, sender name, descriptors).
    pub fn recv(&self, buf: &mut [u8], peek: bool, nonblock: bool) -> KResult<Received> {
        if !self.is_packet() {
            let (rx, _, _, shut_rd, _) = self.stream()?;
            if shut_rd {
                return Ok((0, 0, None, Vec::new()));
            }
            if peek {
                return Err(Errno::EOPNOTSUPP);
            }
            let n = rx.read(buf, nonblock)?;
            let rights = if n > 0 {
                self.inbox.lock().rights.pop_front().unwrap_or_default()
            } else {
                Vec::new()
            };
            return Ok((n, n, None, rights));
        }
        let take = || -> Option<Option<Msg>> {
            let mut ib = self.inbox.lock();
            if peek {
                if let Some(m) = ib.msgs.front() {
                    return Some(Some(Msg {
                        data: m.data.clone(),
                        from: m.from.clone(),
                        rights: Vec::new(),
                    }));
                }
            } else if let Some(m) = ib.msgs.pop_front() {
                ib.bytes -= m.data.len();
                return Some(Some(m));
            }
            (ib.eof || self.st.lock().shut_rd).then_some(None)
        };
        let got = match take() {
            Some(m) => m,
            None if nonblock => return Err(Errno::EAGAIN),
            None => super::wait_for(&self.wq, take)?,
        };
        wake(self);
        let Some(m) = got else {
            return Ok((0, 0, None, Vec::new()));
        };
        let n = m.data.len().min(buf.len());
        buf[..n].copy_from_slice(&m.data[..n]);
        Ok((n, m.data.len(), m.from, m.rights))
    }

    pub fn poll_bits(&self, events: u32) -> u32 {
        let s = self.st.lock();
        let mut r = 0;
        match &s.conn {
            Conn::None => {
                r |= POLLOUT | POLLWRNORM;
                if self.ty == SOCK_DGRAM {
                    if !self.inbox.lock().msgs.is_empty() {
                        r |= POLLIN | POLLRDNORM;
                    }
                } else {
                    r |= POLLHUP;
                }
            }
            Conn::Listening { backlog, .. } => {
                if !backlog.is_empty() {
                    r |= POLLIN | POLLRDNORM;
                }
            }
            Conn::Stream { rx, tx, .. } => {
                let rxb = rx.poll(End::Read, POLLIN);
                let txb = tx.poll(End::Write, POLLOUT);
                let rcv_shut = s.shut_rd || rxb & POLLHUP != 0;
                let send_shut = s.shut_wr || txb & POLLERR != 0;
                if rxb & POLLIN != 0 {
                    r |= POLLIN | POLLRDNORM;
                }
                if rcv_shut {
                    r |= POLLIN | POLLRDNORM | EPOLLRDHUP;
                }
                if rcv_shut && send_shut {
                    r |= POLLHUP;
                }
                if txb & POLLOUT != 0 || send_shut {
                    r |= POLLOUT | POLLWRNORM;
                }
            }
            Conn::Packet { peer } => {
                let ib = self.inbox.lock();
                if !ib.msgs.is_empty() {
                    r |= POLLIN | POLLRDNORM;
                }
                let peer = peer.upgrade();
                if self.ty == SOCK_SEQPACKET && (ib.eof || s.shut_rd) {
                    r |= POLLIN | POLLRDNORM | EPOLLRDHUP;
                    if peer.is_none() || s.shut_wr {
                        r |= POLLHUP;
                    }
                }
                drop(ib);
                if peer.is_none_or(|p| p.inbox.lock().bytes < INBOX_BYTES) {
                    r |= POLLOUT | POLLWRNORM;
                }
            }
        }
        r & (events | POLLHUP | POLLERR)
    }

    fn release(&self) {
        let mut peer = None;
        {
            let mut s = self.st.lock();
            if let Some(a) = s.bound.take() {
                let mut names = NAMES.lock();
                if names
                    .get(&a.key)
                    .is_some_and(|w| core::ptr::eq(w.as_ptr(), self))
                {
                    names.remove(&a.key);
                }
            }
            match core::mem::replace(&mut s.conn, Conn::None) {
                Conn::Stream { rx, tx, peer: p } => {
                    if !s.shut_rd {
                        rx.close_end(End::Read);
                    }
                    if !s.shut_wr {
                        tx.close_end(End::Write);
                    }
                    peer = p.upgrade();
                }
                Conn::Packet { peer: p } if self.ty == SOCK_SEQPACKET => peer = p.upgrade(),
                _ => {}
            }
        }
        // Descriptors in flight to us are closed with us.
        let _ = core::mem::take(&mut self.inbox.lock().rights);
        self.inbox.lock().msgs.clear();
        if let Some(p) = peer {
            p.inbox.lock().eof = true;
            wake(&p);
        }
    }
}

impl Drop for Sock {
    fn drop(&mut self) {
        self.0.release();
    }
}

impl AnonFile for Sock {
    fn name(&self) -> &'static str {
        "socket"
    }

    fn link_name(&self, ino: u64) -> alloc::string::String {
        alloc::format!("socket:[{ino}]")
    }

    fn file_type(&self) -> u32 {
        S_IFSOCK
    }

    fn read(&self, file: &File, buf: &mut [u8]) -> KResult<usize> {
        Ok(self.0.recv(buf, false, file.nonblock())?.0)
    }

    fn write(&self, file: &File, buf: &[u8]) -> KResult<usize> {
        let ctx = crate::proc::current_process()
            .map(|p| p.fs_ctx())
            .ok_or(Errno::ESRCH)?;
        self.0.send(&ctx, buf, None, Vec::new(), file.nonblock())
    }

    fn poll(&self, _file: &File, events: u32) -> u32 {
        self.0.poll_bits(events)
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.0.wq)
    }

    fn ioctl(&self, _file: &File, cmd: u32, _arg: u64) -> KResult<u64> {
        if cmd != FIONREAD {
            return Err(Errno::ENOTTY);
        }
        if let Ok((rx, ..)) = self.0.stream() {
            return Ok(rx.available() as u64);
        }
        Ok(self.0.inbox.lock().msgs.front().map_or(0, |m| m.data.len()) as u64)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
