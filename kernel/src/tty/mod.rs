//! Terminals. One line discipline ([`Tty`]: canonical and raw modes, echo, erase/kill,
//! ^C/^\/^Z → signals to the foreground process group, ^D → end of file, ICRNL on input,
//! ONLCR on output, termios and window-size ioctls, job control) serves two kinds of
//! terminal:
//!
//! - the serial console (COM1, interrupt-driven input): `/dev/console`, `/dev/ttyS0`;
//! - pseudo-terminals: each open of `/dev/ptmx` makes a new master and a slave
//!   `/dev/pts/N`; master writes are the slave's input, slave output is what master reads.
//!
//! Job control: a terminal belongs to at most one session (its controlling terminal) and has
//! a foreground process group. A background group reading gets SIGTTIN (EIO if it ignores or
//! blocks it, or is orphaned); writing with TOSTOP, or changing terminal settings, gets
//! SIGTTOU. `/dev/tty` opens the caller's controlling terminal.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use crate::arch::uaccess::{read_val, write_val};
use crate::errno::{Errno, KResult};
use crate::fs::devfs::{self, DevKind, Device};
use crate::fs::file::File;
use crate::proc::signal::{self, SIGCONT, SIGHUP, SIGTTIN, SIGTTOU, SIGWINCH};
use crate::sched::wait::WaitQueue;
use crate::sync::spin::IrqSpinLock;

mod devices;
mod ioctl;

use devices::register_devices;

// termios flag bits (Linux)
const ICRNL: u32 = 0o000400;
const IXON: u32 = 0o002000;
const OPOST: u32 = 0o000001;
const ONLCR: u32 = 0o000004;
const ISIG: u32 = 0o000001;
const ICANON: u32 = 0o000002;
const ECHO: u32 = 0o000010;
const ECHOE: u32 = 0o000020;
const ECHOK: u32 = 0o000040;
const TOSTOP: u32 = 0o000400;
const ECHOCTL: u32 = 0o001000;
const IEXTEN: u32 = 0o100000;
const VINTR: usize = 0;
const VQUIT: usize = 1;
const VERASE: usize = 2;
const VKILL: usize = 3;
const VEOF: usize = 4;
const VMIN: usize = 6;
const VSUSP: usize = 10;
const VWERASE: usize = 14;

// ioctls
const TCGETS: u32 = 0x5401;
const TCSETS: u32 = 0x5402;
const TCSETSW: u32 = 0x5403;
const TCSETSF: u32 = 0x5404;
const TCFLSH: u32 = 0x540B;
const TIOCSCTTY: u32 = 0x540E;
const TIOCGPGRP: u32 = 0x540F;
const TIOCSPGRP: u32 = 0x5410;
const TIOCOUTQ: u32 = 0x5411;
const TIOCGWINSZ: u32 = 0x5413;
const TIOCSWINSZ: u32 = 0x5414;
const FIONREAD: u32 = 0x541B;
const TIOCNOTTY: u32 = 0x5422;
const TIOCGSID: u32 = 0x5429;
const TIOCGPTN: u32 = 0x8004_5430;
const TIOCSPTLCK: u32 = 0x4004_5431;
const TIOCGPTLCK: u32 = 0x8004_5439;

/// Bytes of unread slave output a pty master buffers before slave writers block.
const PTY_OUT_MAX: usize = 16 * 1024;
/// Bytes of unread input a terminal keeps; more are dropped.
const INPUT_MAX: usize = 64 * 1024;

pub use crate::syscall::abi::{Termios, Winsize};

impl Termios {
    fn sane() -> Self {
        let mut cc = [0u8; 19];
        cc[VINTR] = 3;
        cc[VQUIT] = 0x1c;
        cc[VERASE] = 0x7f;
        cc[VKILL] = 0x15;
        cc[VEOF] = 4;
        cc[VMIN] = 1;
        cc[VSUSP] = 0x1a;
        cc[VWERASE] = 0x17;
        Termios {
            c_iflag: ICRNL | IXON,
            c_oflag: OPOST | ONLCR,
            c_cflag: 0o000277 | 0o004000, // B38400 | CS8 | CREAD (approximately Linux's default)
            c_lflag: ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | IEXTEN,
            c_line: 0,
            c_cc: cc,
        }
    }
}

struct Input {
    /// The line being edited (canonical mode).
    line: Vec<u8>,
    /// Bytes ready for read().
    ready: VecDeque<u8>,
    /// Pending end-of-file markers (^D on an empty line).
    eofs: usize,
}

/// The pty-specific half of a terminal.
struct PtyState {
    index: u32,
    /// Slave output not yet read by the master.
    out: IrqSpinLock<VecDeque<u8>>,
    /// TIOCSPTLCK: the slave cannot be opened while locked (new masters start locked).
    locked: AtomicBool,
    /// Open slave files.
    slave_opens: AtomicU32,
    slave_opened_once: AtomicBool,
}

enum Kind {
    Serial,
    Pty(PtyState),
}

/// When a program first read the serial console (ns of uptime; 0: not yet) — with busybox
/// init, the moment the shell prompt is up. Shown in `/proc/boottimes`.
pub static FIRST_CONSOLE_READ_NS: core::sync::atomic::AtomicU64 =
    core::sync::atomic::AtomicU64::new(0);

pub struct Tty {
    termios: IrqSpinLock<Termios>,
    input: IrqSpinLock<Input>,
    /// Readers, writers waiting for room, pollers: woken on any change.
    wq: WaitQueue,
    winsize: IrqSpinLock<Winsize>,
    /// The foreground process group (0: none).
    fg_pgrp: AtomicU32,
    /// The session this is the controlling terminal of (0: none).
    session: AtomicU32,
    /// The master side went away: reads give end of file, writes EIO.
    hung_up: AtomicBool,
    kind: Kind,
}

static CONSOLE: spin::Once<Arc<Tty>> = spin::Once::new();
/// Live pseudo-terminals by index.
static PTYS: IrqSpinLock<BTreeMap<u32, Weak<Tty>>> = IrqSpinLock::new(BTreeMap::new());

pub fn console() -> &'static Arc<Tty> {
    CONSOLE.call_once(|| {
        let t = Tty::new(Kind::Serial);
        // Without a session, ^C/^Z still go to the boot shell's group (pid 1's).
        t.fg_pgrp.store(1, Ordering::Relaxed);
        t
    })
}

fn raw_out(b: &[u8]) {
    crate::klog::console_write(format_args!("{}", BytesAsStr(b)));
}

struct BytesAsStr<'a>(&'a [u8]);
impl core::fmt::Display for BytesAsStr<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for &b in self.0 {
            core::fmt::Write::write_char(f, b as char)?;
        }
        Ok(())
    }
}

/// Every terminal, for finding a session's controlling terminal.
fn all_ttys() -> Vec<Arc<Tty>> {
    let mut v: Vec<Arc<Tty>> = alloc::vec![console().clone()];
    v.extend(PTYS.lock().values().filter_map(|w| w.upgrade()));
    v
}

/// The controlling terminal of session `sid`.
pub fn ctty_of(sid: u32) -> Option<Arc<Tty>> {
    if sid == 0 {
        return None;
    }
    all_ttys()
        .into_iter()
        .find(|t| t.session.load(Ordering::Acquire) == sid)
}

/// A session leader exited: its controlling terminal's foreground group gets SIGHUP and the
/// terminal belongs to no session any more.
pub fn session_leader_exit(sid: u32) {
    if let Some(t) = ctty_of(sid) {
        let fg = t.fg_pgrp.swap(0, Ordering::AcqRel);
        t.session.store(0, Ordering::Release);
        if fg != 0 {
            signal::send_pgrp(fg, SIGHUP);
        }
        if !t.is_pty() {
            t.fg_pgrp.store(1, Ordering::Relaxed);
        }
    }
}

impl Tty {
    fn new(kind: Kind) -> Arc<Tty> {
        Arc::new(Tty {
            termios: IrqSpinLock::new(Termios::sane()),
            input: IrqSpinLock::new(Input {
                line: Vec::new(),
                ready: VecDeque::new(),
                eofs: 0,
            }),
            wq: WaitQueue::new(),
            winsize: IrqSpinLock::new(Winsize {
                ws_row: 25,
                ws_col: 80,
                ..Default::default()
            }),
            fg_pgrp: AtomicU32::new(0),
            session: AtomicU32::new(0),
            hung_up: AtomicBool::new(false),
            kind,
        })
    }

    fn is_pty(&self) -> bool {
        matches!(self.kind, Kind::Pty(_))
    }

    fn pty(&self) -> Option<&PtyState> {
        match &self.kind {
            Kind::Pty(p) => Some(p),
            Kind::Serial => None,
        }
    }

    /// Raw bytes toward the terminal's output (the serial port, or the master's buffer).
    /// Echo never blocks: beyond the master's buffer it is dropped.
    fn output(&self, b: &[u8]) {
        match &self.kind {
            Kind::Serial => raw_out(b),
            Kind::Pty(p) => {
                {
                    let mut o = p.out.lock();
                    let room = (PTY_OUT_MAX * 2).saturating_sub(o.len());
                    o.extend(b.iter().take(room));
                }
                self.wq.wake_all();
            }
        }
    }

    fn post_process(t: &Termios, buf: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(buf.len() + 8);
        let onlcr = t.c_oflag & OPOST != 0 && t.c_oflag & ONLCR != 0;
        for &b in buf {
            if onlcr && b == b'\n' {
                out.push(b'\r');
            }
            out.push(b);
        }
        out
    }

    /// write(2) on the terminal: job control, then output post-processing (ONLCR).
    pub fn write(&self, buf: &[u8], nonblock: bool) -> KResult<usize> {
        self.check_write()?;
        if self.hung_up.load(Ordering::Acquire) {
            return Err(Errno::EIO);
        }
        let Kind::Pty(p) = &self.kind else {
            let t = *self.termios.lock();
            raw_out(&Self::post_process(&t, buf));
            return Ok(buf.len());
        };
        // A pty: as much as fits in the master's buffer, blocking for room.
        let mut done = 0;
        while done < buf.len() {
            let mut intr = false;
            self.wq.wait_until(
                || {
                    if p.out.lock().len() < PTY_OUT_MAX
                        || self.hung_up.load(Ordering::Acquire)
                        || nonblock
                    {
                        return true;
                    }
                    intr = signal::pending_for_current();
                    intr
                },
                None,
            );
            if self.hung_up.load(Ordering::Acquire) {
                return if done > 0 { Ok(done) } else { Err(Errno::EIO) };
            }
            let t = *self.termios.lock();
            {
                let mut o = p.out.lock();
                let room = PTY_OUT_MAX.saturating_sub(o.len());
                if room == 0 {
                    drop(o);
                    if done > 0 {
                        return Ok(done);
                    }
                    return Err(if intr {
                        Errno::ERESTARTSYS
                    } else {
                        Errno::EAGAIN
                    });
                }
                let n = (buf.len() - done).min(room.div_ceil(2).max(1));
                o.extend(Self::post_process(&t, &buf[done..done + n]));
                done += n;
            }
            self.wq.wake_all();
        }
        Ok(done)
    }

    fn echo(&self, t: &Termios, b: u8) {
        if t.c_lflag & ECHO == 0 {
            return;
        }
        if b == b'\n' {
            self.output(b"\r\n");
        } else if b < 0x20 && b != b'\t' && t.c_lflag & ECHOCTL != 0 {
            self.output(&[b'^', b + 0x40]);
        } else {
            self.output(&[b]);
        }
    }

    fn erase_echo(&self, t: &Termios) {
        if t.c_lflag & ECHO != 0 && t.c_lflag & ECHOE != 0 {
            self.output(b"\x08 \x08");
        }
    }

    /// One input byte (from the serial interrupt, or a pty master's write).
    pub fn receive(&self, mut b: u8) {
        let t = *self.termios.lock();
        if t.c_iflag & ICRNL != 0 && b == b'\r' {
            b = b'\n';
        }
        if t.c_lflag & ISIG != 0 {
            let sig = if b == t.c_cc[VINTR] {
                Some(signal::SIGINT)
            } else if b == t.c_cc[VQUIT] {
                Some(signal::SIGQUIT)
            } else if b == t.c_cc[VSUSP] {
                Some(signal::SIGTSTP)
            } else {
                None
            };
            if let Some(s) = sig {
                self.echo(&t, b);
                {
                    let mut i = self.input.lock();
                    i.line.clear();
                    i.ready.clear();
                }
                let pg = self.fg_pgrp.load(Ordering::Relaxed);
                if pg != 0 {
                    signal::send_pgrp(pg, s);
                }
                self.wq.wake_all();
                return;
            }
        }
        let mut inp = self.input.lock();
        if inp.ready.len() + inp.line.len() >= INPUT_MAX {
            return;
        }
        if t.c_lflag & ICANON == 0 {
            inp.ready.push_back(b);
            drop(inp);
            self.echo(&t, b);
            self.wq.wake_all();
            return;
        }
        if b == t.c_cc[VERASE] || b == 8 {
            if inp.line.pop().is_some() {
                drop(inp);
                self.erase_echo(&t);
            }
            return;
        }
        if b == t.c_cc[VKILL] {
            let n = inp.line.len();
            inp.line.clear();
            drop(inp);
            for _ in 0..n {
                self.erase_echo(&t);
            }
            return;
        }
        if b == t.c_cc[VWERASE] {
            let mut n = 0;
            while inp.line.last() == Some(&b' ') {
                inp.line.pop();
                n += 1;
            }
            while inp.line.last().is_some_and(|&c| c != b' ') {
                inp.line.pop();
                n += 1;
            }
            drop(inp);
            for _ in 0..n {
                self.erase_echo(&t);
            }
            return;
        }
        if b == t.c_cc[VEOF] {
            if inp.line.is_empty() {
                inp.eofs += 1;
            } else {
                let l = core::mem::take(&mut inp.line);
                inp.ready.extend(l);
            }
            drop(inp);
            self.wq.wake_all();
            return;
        }
        inp.line.push(b);
        let done = b == b'\n';
        if done {
            let l = core::mem::take(&mut inp.line);
            inp.ready.extend(l);
        }
        drop(inp);
        self.echo(&t, b);
        if done {
            self.wq.wake_all();
        }
    }

    /// Whether the caller is in a background group of the session this terminal controls.
    fn caller_in_background(&self) -> Option<u32> {
        let p = crate::proc::current_process()?;
        let sid = self.session.load(Ordering::Acquire);
        if sid == 0 || p.sid() != sid {
            return None;
        }
        let pg = p.pgid();
        (pg != self.fg_pgrp.load(Ordering::Acquire)).then_some(pg)
    }

    /// A background read: SIGTTIN to the caller's group (the read restarts once it is
    /// continued in the foreground), or EIO if it ignores/blocks SIGTTIN or is orphaned.
    fn check_read(&self) -> KResult<()> {
        let Some(pg) = self.caller_in_background() else {
            return Ok(());
        };
        if signal::current_blocks_or_ignores(SIGTTIN) || crate::proc::pgrp_orphaned(pg) {
            return Err(Errno::EIO);
        }
        signal::send_pgrp(pg, SIGTTIN);
        Err(Errno::ERESTARTSYS)
    }

    /// A background write with TOSTOP (or a settings change, `always`): SIGTTOU, unless
    /// ignored or blocked (then it proceeds); EIO for an orphaned group.
    fn check_ttou(&self, always: bool) -> KResult<()> {
        if !always && self.termios.lock().c_lflag & TOSTOP == 0 {
            return Ok(());
        }
        let Some(pg) = self.caller_in_background() else {
            return Ok(());
        };
        if signal::current_blocks_or_ignores(SIGTTOU) {
            return Ok(());
        }
        if crate::proc::pgrp_orphaned(pg) {
            return Err(Errno::EIO);
        }
        signal::send_pgrp(pg, SIGTTOU);
        Err(Errno::ERESTARTSYS)
    }

    fn check_write(&self) -> KResult<()> {
        self.check_ttou(false)
    }

    /// read(2) on the terminal.
    pub fn read(&self, buf: &mut [u8], nonblock: bool) -> KResult<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.pty().is_none() && FIRST_CONSOLE_READ_NS.load(Ordering::Relaxed) == 0 {
            // The first program waiting for console input: the shell showing its prompt.
            let _ = FIRST_CONSOLE_READ_NS.compare_exchange(
                0,
                crate::time::now_ns().max(1),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
        self.check_read()?;
        loop {
            {
                let canon = self.termios.lock().c_lflag & ICANON != 0;
                let mut inp = self.input.lock();
                if !inp.ready.is_empty() {
                    let mut n = 0;
                    while n < buf.len() {
                        let Some(b) = inp.ready.pop_front() else {
                            break;
                        };
                        buf[n] = b;
                        n += 1;
                        if canon && b == b'\n' {
                            break;
                        }
                    }
                    return Ok(n);
                }
                if inp.eofs > 0 {
                    inp.eofs -= 1;
                    return Ok(0);
                }
            }
            if self.hung_up.load(Ordering::Acquire) {
                return Ok(0);
            }
            if nonblock {
                return Err(Errno::EAGAIN);
            }
            let mut intr = false;
            self.wq.wait_until(
                || {
                    if signal::pending_for_current() {
                        intr = true;
                        return true;
                    }
                    self.hung_up.load(Ordering::Acquire) || {
                        let i = self.input.lock();
                        !i.ready.is_empty() || i.eofs > 0
                    }
                },
                None,
            );
            if intr {
                return Err(Errno::ERESTARTSYS);
            }
        }
    }

    pub fn readable(&self) -> bool {
        let i = self.input.lock();
        !i.ready.is_empty() || i.eofs > 0 || self.hung_up.load(Ordering::Acquire)
    }

    pub fn wait_queue(&self) -> &WaitQueue {
        &self.wq
    }

    fn caller_owns(&self) -> bool {
        crate::proc::current_process().is_some_and(|p| {
            let s = self.session.load(Ordering::Acquire);
            s != 0 && p.sid() == s
        })
    }

    /// Makes this the controlling terminal of the caller's session if the caller is a
    /// session leader without one and the terminal is free (open without O_NOCTTY).
    fn maybe_acquire(&self, flags: u32) {
        if flags & crate::fs::consts::O_NOCTTY != 0 {
            return;
        }
        let Some(p) = crate::proc::current_process() else {
            return;
        };
        if p.pid != p.sid() || ctty_of(p.sid()).is_some() || self.hung_up.load(Ordering::Acquire) {
            return;
        }
        if self
            .session
            .compare_exchange(0, p.sid(), Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.fg_pgrp.store(p.pgid(), Ordering::Release);
        }
    }

    pub fn set_winsize(&self, rows: u16, cols: u16) {
        *self.winsize.lock() = Winsize {
            ws_row: rows,
            ws_col: cols,
            ..Default::default()
        };
    }

    fn poll_slave(&self, events: u32) -> u32 {
        use crate::fs::consts::{POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
        let mut r = 0;
        let writable = self.pty().is_none_or(|p| p.out.lock().len() < PTY_OUT_MAX);
        if writable {
            r |= events & (POLLOUT | POLLWRNORM);
        }
        if self.readable() {
            r |= events & (POLLIN | POLLRDNORM);
        }
        if self.hung_up.load(Ordering::Acquire) {
            r |= POLLHUP;
        }
        r
    }
}

/// Routes the console UART's receive interrupt to the terminal (COM1 on ISA IRQ 4 through
/// the IOAPIC on x86_64; see `arch::serial::enable_rx_interrupt`).
pub fn init() {
    register_devices();
    let t = console();
    let cmd = crate::boot::cmdline();
    if let (Some(r), Some(c)) = (
        cmd.param("tty.rows").and_then(|v| v.parse().ok()),
        cmd.param("tty.cols").and_then(|v| v.parse().ok()),
    ) {
        t.set_winsize(r, c);
    }
    if !crate::arch::serial::enable_rx_interrupt(serial_irq) {
        log::warn!("tty: could not route the console UART's interrupt; console input unavailable");
    }
}

fn serial_irq(_f: &mut crate::arch::TrapFrame) {
    while let Some(b) = crate::arch::serial::try_read() {
        console().receive(b);
    }
}
