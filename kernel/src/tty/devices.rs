//! The device nodes over the terminals: `/dev/console` and `/dev/ttyS0`, `/dev/tty` (the
//! caller's controlling terminal), `/dev/ptmx` and the pty masters it makes, `/dev/pts/N`.

use super::*;

/// An open terminal (console or pty slave): the file's view of a [`Tty`]. For a pty slave,
/// dropping the last reference counts as a close.
struct TtyFile {
    tty: Arc<Tty>,
}

impl TtyFile {
    fn new(tty: Arc<Tty>) -> KResult<Arc<TtyFile>> {
        if let Some(p) = tty.pty() {
            if tty.hung_up.load(Ordering::Acquire) {
                return Err(Errno::EIO);
            }
            p.slave_opens.fetch_add(1, Ordering::AcqRel);
            p.slave_opened_once.store(true, Ordering::Release);
        }
        Ok(Arc::new(TtyFile { tty }))
    }
}

impl Drop for TtyFile {
    fn drop(&mut self) {
        if let Some(p) = self.tty.pty() {
            p.slave_opens.fetch_sub(1, Ordering::AcqRel);
            self.tty.wq.wake_all();
        }
    }
}

impl Device for TtyFile {
    fn read(&self, file: &File, buf: &mut [u8], _off: u64) -> KResult<usize> {
        self.tty
            .read(buf, file.flags() & crate::fs::consts::O_NONBLOCK != 0)
    }
    fn write(&self, file: &File, buf: &[u8], _off: u64) -> KResult<usize> {
        self.tty
            .write(buf, file.flags() & crate::fs::consts::O_NONBLOCK != 0)
    }
    fn poll(&self, _file: &File, events: u32) -> u32 {
        self.tty.poll_slave(events)
    }
    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.tty.wq)
    }
    fn ioctl(&self, _file: &File, cmd: u32, arg: u64) -> KResult<u64> {
        match cmd {
            TIOCGPTN => {
                let p = self.tty.pty().ok_or(Errno::ENOTTY)?;
                write_val(arg, &p.index)?;
                Ok(0)
            }
            _ => self.tty.ioctl(cmd, arg),
        }
    }
    fn open(self: Arc<Self>, _flags: u32) -> KResult<Arc<dyn Device>> {
        Ok(self)
    }
}

/// `/dev/console` (never becomes a controlling terminal by being opened, as on Linux) and
/// `/dev/ttyS0` (does).
struct ConsoleNode {
    acquire: bool,
}

impl Device for ConsoleNode {
    fn read(&self, _: &File, _: &mut [u8], _: u64) -> KResult<usize> {
        Err(Errno::EBADF)
    }
    fn write(&self, _: &File, _: &[u8], _: u64) -> KResult<usize> {
        Err(Errno::EBADF)
    }
    fn open(self: Arc<Self>, flags: u32) -> KResult<Arc<dyn Device>> {
        let t = console().clone();
        if self.acquire {
            t.maybe_acquire(flags);
        }
        Ok(TtyFile::new(t)?)
    }
}

/// `/dev/tty`: the caller's controlling terminal.
struct CttyNode;

impl Device for CttyNode {
    fn read(&self, _: &File, _: &mut [u8], _: u64) -> KResult<usize> {
        Err(Errno::EBADF)
    }
    fn write(&self, _: &File, _: &[u8], _: u64) -> KResult<usize> {
        Err(Errno::EBADF)
    }
    fn open(self: Arc<Self>, _flags: u32) -> KResult<Arc<dyn Device>> {
        let p = crate::proc::current_process().ok_or(Errno::ENXIO)?;
        let t = ctty_of(p.sid()).ok_or(Errno::ENXIO)?;
        Ok(TtyFile::new(t)?)
    }
}

/// `/dev/pts/N`: the slave side of pty N.
struct SlaveNode {
    tty: Weak<Tty>,
}

impl Device for SlaveNode {
    fn read(&self, _: &File, _: &mut [u8], _: u64) -> KResult<usize> {
        Err(Errno::EBADF)
    }
    fn write(&self, _: &File, _: &[u8], _: u64) -> KResult<usize> {
        Err(Errno::EBADF)
    }
    fn open(self: Arc<Self>, flags: u32) -> KResult<Arc<dyn Device>> {
        let t = self.tty.upgrade().ok_or(Errno::EIO)?;
        if t.pty().is_some_and(|p| p.locked.load(Ordering::Acquire)) {
            return Err(Errno::EIO);
        }
        let f = TtyFile::new(t.clone())?;
        t.maybe_acquire(flags);
        Ok(f)
    }
}

/// `/dev/ptmx`: each open makes a new pty and returns its master.
struct PtmxNode;

const PTS_MAJOR: u32 = 136;

impl Device for PtmxNode {
    fn read(&self, _: &File, _: &mut [u8], _: u64) -> KResult<usize> {
        Err(Errno::EBADF)
    }
    fn write(&self, _: &File, _: &[u8], _: u64) -> KResult<usize> {
        Err(Errno::EBADF)
    }
    fn open(self: Arc<Self>, _flags: u32) -> KResult<Arc<dyn Device>> {
        let (index, tty) = {
            let mut map = PTYS.lock();
            map.retain(|_, w| w.strong_count() > 0);
            let mut index = 0u32;
            while map.contains_key(&index) {
                index = index.checked_add(1).ok_or(Errno::ENOSPC)?;
            }
            let tty = Tty::new(Kind::Pty(PtyState {
                index,
                out: IrqSpinLock::new(VecDeque::new()),
                locked: AtomicBool::new(true),
                slave_opens: AtomicU32::new(0),
                slave_opened_once: AtomicBool::new(false),
            }));
            map.insert(index, Arc::downgrade(&tty));
            (index, tty)
        };
        let rdev = crate::fs::consts::makedev(PTS_MAJOR, index);
        devfs::register_device(
            DevKind::Char,
            rdev,
            Arc::new(SlaveNode {
                tty: Arc::downgrade(&tty),
            }),
        );
        let (uid, gid) = crate::proc::current_process().map_or((0, 0), |p| {
            let c = *p.creds.lock();
            (c.euid, c.egid)
        });
        devfs::add_pts_node(index, rdev, uid, gid);
        Ok(Arc::new(PtyMaster { tty }))
    }
}

/// An open master. Its last close hangs the slave up and removes `/dev/pts/N`.
struct PtyMaster {
    tty: Arc<Tty>,
}

impl PtyMaster {
    fn state(&self) -> &PtyState {
        match &self.tty.kind {
            Kind::Pty(p) => p,
            Kind::Serial => unreachable!("a pty master always has pty state"),
        }
    }

    fn slave_gone(&self) -> bool {
        let p = self.state();
        p.slave_opened_once.load(Ordering::Acquire) && p.slave_opens.load(Ordering::Acquire) == 0
    }
}

impl Drop for PtyMaster {
    fn drop(&mut self) {
        let t = &self.tty;
        t.hung_up.store(true, Ordering::Release);
        let sid = t.session.swap(0, Ordering::AcqRel);
        let fg = t.fg_pgrp.swap(0, Ordering::AcqRel);
        if fg != 0 {
            signal::send_pgrp(fg, SIGHUP);
            signal::send_pgrp(fg, SIGCONT);
        }
        if sid != 0
            && let Some(leader) = crate::proc::process(sid).filter(|p| p.alive())
        {
            signal::send_process(&leader, SIGHUP);
            signal::send_process(&leader, SIGCONT);
        }
        t.wq.wake_all();
        let index = self.state().index;
        devfs::remove_pts_node(index);
        devfs::unregister_device(DevKind::Char, crate::fs::consts::makedev(PTS_MAJOR, index));
        PTYS.lock().remove(&index);
    }
}

impl Device for PtyMaster {
    fn read(&self, file: &File, buf: &mut [u8], _off: u64) -> KResult<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let p = self.state();
        loop {
            {
                let mut o = p.out.lock();
                if !o.is_empty() {
                    let n = buf.len().min(o.len());
                    for (d, s) in buf.iter_mut().zip(o.drain(..n)) {
                        *d = s;
                    }
                    drop(o);
                    self.tty.wq.wake_all();
                    return Ok(n);
                }
            }
            if self.slave_gone() {
                return Err(Errno::EIO);
            }
            if file.flags() & crate::fs::consts::O_NONBLOCK != 0 {
                return Err(Errno::EAGAIN);
            }
            let mut intr = false;
            self.tty.wq.wait_until(
                || {
                    if signal::pending_for_current() {
                        intr = true;
                        return true;
                    }
                    !p.out.lock().is_empty() || self.slave_gone()
                },
                None,
            );
            if intr {
                return Err(Errno::ERESTARTSYS);
            }
        }
    }
    fn write(&self, _file: &File, buf: &[u8], _off: u64) -> KResult<usize> {
        for &b in buf {
            self.tty.receive(b);
        }
        Ok(buf.len())
    }
    fn poll(&self, _file: &File, events: u32) -> u32 {
        use crate::fs::consts::{POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
        let mut r = events & (POLLOUT | POLLWRNORM);
        if !self.state().out.lock().is_empty() {
            r |= events & (POLLIN | POLLRDNORM);
        }
        if self.slave_gone() {
            r |= POLLHUP;
        }
        r
    }
    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.tty.wq)
    }
    fn ioctl(&self, _file: &File, cmd: u32, arg: u64) -> KResult<u64> {
        let p = self.state();
        match cmd {
            TIOCGPTN => {
                write_val(arg, &p.index)?;
                Ok(0)
            }
            TIOCSPTLCK => {
                let v: i32 = read_val(arg)?;
                p.locked.store(v != 0, Ordering::Release);
                Ok(0)
            }
            TIOCGPTLCK => {
                write_val(arg, &i32::from(p.locked.load(Ordering::Acquire)))?;
                Ok(0)
            }
            // The foreground group and session as the master sees them (no ownership check).
            TIOCGPGRP => {
                write_val(arg, &self.tty.fg_pgrp.load(Ordering::Acquire))?;
                Ok(0)
            }
            TIOCGSID => {
                let s = self.tty.session.load(Ordering::Acquire);
                if s == 0 {
                    return Err(Errno::ENOTTY);
                }
                write_val(arg, &s)?;
                Ok(0)
            }
            FIONREAD => {
                write_val(arg, &(p.out.lock().len() as u32))?;
                Ok(0)
            }
            TIOCSCTTY | TIOCSPGRP | TIOCNOTTY => Err(Errno::ENOTTY),
            TCGETS | TCSETS | TCSETSW | TCSETSF | TCFLSH | TIOCGWINSZ | TIOCSWINSZ => {
                self.tty.ioctl(cmd, arg)
            }
            _ => Err(Errno::ENOTTY),
        }
    }
    fn open(self: Arc<Self>, _flags: u32) -> KResult<Arc<dyn Device>> {
        Ok(self)
    }
}

pub(super) fn register_devices() {
    devfs::register_device(DevKind::Char, devfs::TTY, Arc::new(CttyNode));
    devfs::register_device(
        DevKind::Char,
        devfs::CONSOLE_DEV,
        Arc::new(ConsoleNode { acquire: false }),
    );
    devfs::register_device(
        DevKind::Char,
        devfs::TTYS0,
        Arc::new(ConsoleNode { acquire: true }),
    );
    devfs::register_device(DevKind::Char, devfs::PTMX, Arc::new(PtmxNode));
}
