//! Device nodes: the device registry (a node's `S_IFCHR`/`S_IFBLK` type and `rdev` select a
//! [`Device`]), the memory devices (`null`, `zero`, `full`, `random`, `urandom`), the
//! console, and `/dev` itself — a tmpfs instance (`devtmpfs`) populated at boot.
//!
//! The console here is deliberately dumb: writes go to the kernel console, reads take what
//! [`console_input`] queued. The TTY layer (line discipline, termios) replaces it by
//! registering its own devices for `tty` (5:0), `console` (5:1) and `ttyS0` (4:64) with
//! [`register_device`].

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::sync::Arc;

use super::File;
use super::consts::*;
use super::node::{FileSystem, InodeRef, NodeKind};
use super::sync::{SpinLock, WaitQueue};
use super::tmpfs::TmpFs;
use crate::errno::{Errno, KResult};

/// A character (or block) device as open files see it. `off` is the file offset (devices
/// that ignore it may); `file` gives the open flags (`O_NONBLOCK`).
pub trait Device: Send + Sync {
    fn read(&self, file: &File, buf: &mut [u8], off: u64) -> KResult<usize>;
    fn write(&self, file: &File, buf: &[u8], off: u64) -> KResult<usize>;
    /// Ready bits among `events`.
    fn poll(&self, _file: &File, events: u32) -> u32 {
        events & (POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM)
    }
    /// The queue woken when readiness may have changed (`None`: always ready).
    fn wait_queue(&self) -> Option<&WaitQueue> {
        None
    }
    fn ioctl(&self, _file: &File, _cmd: u32, _arg: u64) -> KResult<u64> {
        Err(Errno::ENOTTY)
    }
    /// Called at open: may return a different device for this open (e.g. `/dev/ptmx`
    /// returning a fresh master).
    fn open(self: Arc<Self>, _flags: u32) -> KResult<Arc<dyn Device>>;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DevKind {
    Char,
    Block,
}

static DEVICES: SpinLock<BTreeMap<(DevKind, u64), Arc<dyn Device>>> =
    SpinLock::new(BTreeMap::new());

/// Registers (or replaces) the device behind `kind` nodes with number `rdev`
/// ([`consts::makedev`](super::consts::makedev)).
pub fn register_device(kind: DevKind, rdev: u64, dev: Arc<dyn Device>) {
    DEVICES.lock().insert((kind, rdev), dev);
}

/// Forgets the device behind `kind` nodes with number `rdev` (a pty that went away).
pub fn unregister_device(kind: DevKind, rdev: u64) {
    DEVICES.lock().remove(&(kind, rdev));
}

pub fn device(kind: DevKind, rdev: u64) -> Option<Arc<dyn Device>> {
    DEVICES.lock().get(&(kind, rdev)).cloned()
}

macro_rules! self_open {
    () => {
        fn open(self: Arc<Self>, _flags: u32) -> KResult<Arc<dyn Device>> {
            Ok(self)
        }
    };
}

/// `/dev/null`: reads EOF, writes vanish.
pub struct Null;
impl Device for Null {
    fn read(&self, _: &File, _: &mut [u8], _: u64) -> KResult<usize> {
        Ok(0)
    }
    fn write(&self, _: &File, buf: &[u8], _: u64) -> KResult<usize> {
        Ok(buf.len())
    }
    self_open!();
}

/// `/dev/zero`: zeros; writes vanish.
pub struct Zero;
impl Device for Zero {
    fn read(&self, _: &File, buf: &mut [u8], _: u64) -> KResult<usize> {
        buf.fill(0);
        Ok(buf.len())
    }
    fn write(&self, _: &File, buf: &[u8], _: u64) -> KResult<usize> {
        Ok(buf.len())
    }
    self_open!();
}

/// `/dev/full`: zeros; every write fails with ENOSPC.
pub struct Full;
impl Device for Full {
    fn read(&self, _: &File, buf: &mut [u8], _: u64) -> KResult<usize> {
        buf.fill(0);
        Ok(buf.len())
    }
    fn write(&self, _: &File, buf: &[u8], _: u64) -> KResult<usize> {
        if buf.is_empty() {
            Ok(0)
        } else {
            Err(Errno::ENOSPC)
        }
    }
    self_open!();
}

/// `/dev/random` and `/dev/urandom` (never block: the generator is seeded at first use).
pub struct Random;
impl Device for Random {
    fn read(&self, _: &File, buf: &mut [u8], _: u64) -> KResult<usize> {
        super::random::fill(buf);
        Ok(buf.len())
    }
    fn write(&self, _: &File, buf: &[u8], _: u64) -> KResult<usize> {
        Ok(buf.len())
    }
    self_open!();
}

/// The boot console until the TTY layer registers its own: writes go to the kernel
/// console, reads return bytes queued by [`console_input`] (no echo, no line editing).
pub struct Console {
    input: SpinLock<VecDeque<u8>>,
    wq: WaitQueue,
}

static CONSOLE: spin::Once<Arc<Console>> = spin::Once::new();

pub fn console() -> Arc<Console> {
    CONSOLE
        .call_once(|| {
            Arc::new(Console {
                input: SpinLock::new(VecDeque::new()),
                wq: WaitQueue::new(),
            })
        })
        .clone()
}

/// Queues console input (from the serial receive path) for readers of `/dev/console`.
/// Drops bytes beyond 4 KiB of unread input.
pub fn console_input(bytes: &[u8]) {
    let c = console();
    {
        let mut q = c.input.lock();
        for &b in bytes {
            if q.len() < 4096 {
                q.push_back(b);
            }
        }
    }
    c.wq.wake_all();
}

/// Writes bytes to the kernel console (invalid UTF-8 is shown as U+FFFD).
pub fn console_write_bytes(buf: &[u8]) {
    let s = String::from_utf8_lossy(buf);
    crate::klog::console_write(format_args!("{s}"));
}

impl Device for Console {
    fn read(&self, file: &File, buf: &mut [u8], _: u64) -> KResult<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            {
                let mut q = self.input.lock();
                if !q.is_empty() {
                    let n = buf.len().min(q.len());
                    for (d, s) in buf.iter_mut().zip(q.drain(..n)) {
                        *d = s;
                    }
                    return Ok(n);
                }
            }
            if file.flags() & O_NONBLOCK != 0 {
                return Err(Errno::EAGAIN);
            }
            let mut intr = false;
            self.wq.wait_until(
                || {
                    !self.input.lock().is_empty() || {
                        intr = super::interrupted();
                        intr
                    }
                },
                None,
            );
            if intr && self.input.lock().is_empty() {
                return Err(Errno::ERESTARTSYS);
            }
        }
    }
    fn write(&self, _: &File, buf: &[u8], _: u64) -> KResult<usize> {
        console_write_bytes(buf);
        Ok(buf.len())
    }
    fn poll(&self, _: &File, events: u32) -> u32 {
        let mut r = POLLOUT | POLLWRNORM;
        if !self.input.lock().is_empty() {
            r |= POLLIN | POLLRDNORM;
        }
        r & events
    }
    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.wq)
    }
    self_open!();
}

pub const NULL: u64 = makedev(1, 3);
pub const ZERO: u64 = makedev(1, 5);
pub const FULL: u64 = makedev(1, 7);
pub const RANDOM: u64 = makedev(1, 8);
pub const URANDOM: u64 = makedev(1, 9);
pub const TTY: u64 = makedev(5, 0);
pub const CONSOLE_DEV: u64 = makedev(5, 1);
pub const TTYS0: u64 = makedev(4, 64);
pub const PTMX: u64 = makedev(5, 2);

/// Registers the built-in devices (idempotent).
pub fn register_builtin() {
    let mut d = DEVICES.lock();
    let c = console();
    let mut put = |n: u64, dev: Arc<dyn Device>| {
        d.entry((DevKind::Char, n)).or_insert(dev);
    };
    put(NULL, Arc::new(Null));
    put(ZERO, Arc::new(Zero));
    put(FULL, Arc::new(Full));
    put(RANDOM, Arc::new(Random));
    put(URANDOM, Arc::new(Random));
    put(TTY, c.clone());
    put(CONSOLE_DEV, c.clone());
    put(TTYS0, c);
}

static DEVFS: spin::Once<Arc<TmpFs>> = spin::Once::new();

/// The one devtmpfs instance (every `mount -t devtmpfs` shows the same tree, as on Linux).
pub fn devfs() -> Arc<TmpFs> {
    DEVFS
        .call_once(|| {
            register_builtin();
            let fs = TmpFs::new("devtmpfs", 0o755);
            let root: InodeRef = fs.root();
            let nodes: [(&str, u64, u32); 9] = [
                ("null", NULL, 0o666),
                ("zero", ZERO, 0o666),
                ("full", FULL, 0o666),
                ("random", RANDOM, 0o666),
                ("urandom", URANDOM, 0o666),
                ("tty", TTY, 0o666),
                ("console", CONSOLE_DEV, 0o600),
                ("ttyS0", TTYS0, 0o660),
                ("ptmx", PTMX, 0o666),
            ];
            for (name, rdev, perm) in nodes {
                let _ = root.create(name, NodeKind::CharDev(rdev), perm, 0, 0);
            }
            for (name, target) in [
                ("fd", "/proc/self/fd"),
                ("stdin", "/proc/self/fd/0"),
                ("stdout", "/proc/self/fd/1"),
                ("stderr", "/proc/self/fd/2"),
            ] {
                let _ = root.create(name, NodeKind::Symlink(target), 0o777, 0, 0);
            }
            let _ = root.create("pts", NodeKind::Directory, 0o755, 0, 0);
            let _ = root.create("shm", NodeKind::Directory, 0o1777, 0, 0);
            fs
        })
        .clone()
}

/// Adds `/dev/pts/INDEX` (a pty slave, mode 0620, owned by whoever opened the master).
pub fn add_pts_node(index: u32, rdev: u64, uid: u32, gid: u32) {
    if let Ok(pts) = devfs().root().lookup("pts") {
        let name = alloc::format!("{index}");
        let _ = pts.unlink(&name, false);
        let _ = pts.create(&name, NodeKind::CharDev(rdev), 0o620, uid, gid);
    }
}

/// Removes `/dev/pts/INDEX` (its master was closed).
pub fn remove_pts_node(index: u32) {
    if let Ok(pts) = devfs().root().lookup("pts") {
        let _ = pts.unlink(&alloc::format!("{index}"), false);
    }
}
