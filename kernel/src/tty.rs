//! The serial console as a terminal: a line discipline (canonical and raw modes, echo,
//! erase/kill, ^C/^\/^Z → signals to the foreground process group, ^D → end of file,
//! ICRNL on input, ONLCR on output), termios and window-size ioctls, and interrupt-driven
//! input from COM1.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use crate::arch::uaccess::{read_val, write_val};
use crate::errno::{Errno, KResult};
use crate::sched::wait::WaitQueue;
use crate::sync::spin::IrqSpinLock;

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

/// Linux `struct termios` (the kernel's, as TCGETS uses: 36 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Termios {
    pub iflag: u32,
    pub oflag: u32,
    pub cflag: u32,
    pub lflag: u32,
    pub line: u8,
    pub cc: [u8; 19],
}

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
            iflag: ICRNL | IXON,
            oflag: OPOST | ONLCR,
            cflag: 0o000277 | 0o004000, // B38400 | CS8 | CREAD (approximately Linux's default)
            lflag: ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | IEXTEN,
            line: 0,
            cc,
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

pub struct Tty {
    termios: IrqSpinLock<Termios>,
    input: IrqSpinLock<Input>,
    readers: WaitQueue,
    winsize: IrqSpinLock<[u16; 4]>,
    fg_pgrp: AtomicU32,
    session: AtomicU32,
}

static CONSOLE: spin::Once<Tty> = spin::Once::new();

pub fn console() -> &'static Tty {
    CONSOLE.call_once(|| Tty {
        termios: IrqSpinLock::new(Termios::sane()),
        input: IrqSpinLock::new(Input { line: Vec::new(), ready: VecDeque::new(), eofs: 0 }),
        readers: WaitQueue::new(),
        winsize: IrqSpinLock::new([25, 80, 0, 0]),
        fg_pgrp: AtomicU32::new(1),
        session: AtomicU32::new(0),
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

impl Tty {
    /// Output post-processing (ONLCR) and write to the serial port.
    pub fn write(&self, buf: &[u8]) -> KResult<usize> {
        let t = *self.termios.lock();
        if t.oflag & OPOST != 0 && t.oflag & ONLCR != 0 {
            let mut out = Vec::with_capacity(buf.len() + 8);
            for &b in buf {
                if b == b'\n' {
                    out.push(b'\r');
                }
                out.push(b);
            }
            raw_out(&out);
        } else {
            raw_out(buf);
        }
        Ok(buf.len())
    }

    fn echo(&self, t: &Termios, b: u8) {
        if t.lflag & ECHO == 0 {
            return;
        }
        if b == b'\n' {
            raw_out(b"\r\n");
        } else if b < 0x20 && b != b'\t' && t.lflag & ECHOCTL != 0 {
            raw_out(&[b'^', b + 0x40]);
        } else {
            raw_out(&[b]);
        }
    }

    /// One received byte (interrupt context).
    pub fn receive(&self, mut b: u8) {
        let t = *self.termios.lock();
        if t.iflag & ICRNL != 0 && b == b'\r' {
            b = b'\n';
        }
        if t.lflag & ISIG != 0 {
            let sig = if b == t.cc[VINTR] {
                Some(crate::proc::signal::SIGINT)
            } else if b == t.cc[VQUIT] {
                Some(crate::proc::signal::SIGQUIT)
            } else if b == t.cc[VSUSP] {
                Some(crate::proc::signal::SIGTSTP)
            } else {
                None
            };
            if let Some(s) = sig {
                self.echo(&t, b);
                self.input.lock().line.clear();
                let pg = self.fg_pgrp.load(Ordering::Relaxed);
                for p in crate::proc::all_processes() {
                    if p.pgid.load(Ordering::Relaxed) == pg && !p.zombie.load(Ordering::Acquire) {
                        crate::proc::signal::send_process(&p, s);
                    }
                }
                self.readers.wake_all();
                return;
            }
        }
        let mut inp = self.input.lock();
        if t.lflag & ICANON == 0 {
            inp.ready.push_back(b);
            drop(inp);
            self.echo(&t, b);
            self.readers.wake_all();
            return;
        }
        if b == t.cc[VERASE] || b == 8 {
            if inp.line.pop().is_some() && t.lflag & ECHO != 0 && t.lflag & ECHOE != 0 {
                raw_out(b"\x08 \x08");
            }
            return;
        }
        if b == t.cc[VKILL] {
            let n = inp.line.len();
            inp.line.clear();
            if t.lflag & ECHO != 0 {
                for _ in 0..n {
                    raw_out(b"\x08 \x08");
                }
            }
            return;
        }
        if b == t.cc[VWERASE] {
            while inp.line.last() == Some(&b' ') {
                inp.line.pop();
                raw_out(b"\x08 \x08");
            }
            while inp.line.last().is_some_and(|&c| c != b' ') {
                inp.line.pop();
                raw_out(b"\x08 \x08");
            }
            return;
        }
        if b == t.cc[VEOF] {
            if inp.line.is_empty() {
                inp.eofs += 1;
            } else {
                let l = core::mem::take(&mut inp.line);
                inp.ready.extend(l);
            }
            drop(inp);
            self.readers.wake_all();
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
            self.readers.wake_all();
        }
    }

    /// read(2) on the terminal.
    pub fn read(&self, buf: &mut [u8], nonblock: bool) -> KResult<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            {
                let canon = self.termios.lock().lflag & ICANON != 0;
                let mut inp = self.input.lock();
                if !inp.ready.is_empty() {
                    let mut n = 0;
                    while n < buf.len() {
                        let Some(b) = inp.ready.pop_front() else { break };
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
            if nonblock {
                return Err(Errno::EAGAIN);
            }
            let mut intr = false;
            self.readers.wait_until(
                || {
                    if crate::proc::signal::pending_for_current() {
                        intr = true;
                        return true;
                    }
                    let i = self.input.lock();
                    !i.ready.is_empty() || i.eofs > 0
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
        !i.ready.is_empty() || i.eofs > 0
    }

    pub fn wait_queue(&self) -> &WaitQueue {
        &self.readers
    }

    pub fn ioctl(&self, cmd: u32, arg: u64) -> KResult<u64> {
        const TCGETS: u32 = 0x5401;
        const TCSETS: u32 = 0x5402;
        const TCSETSW: u32 = 0x5403;
        const TCSETSF: u32 = 0x5404;
        const TCFLSH: u32 = 0x540B;
        const TIOCSCTTY: u32 = 0x540E;
        const TIOCGPGRP: u32 = 0x540F;
        const TIOCSPGRP: u32 = 0x5410;
        const TIOCGWINSZ: u32 = 0x5413;
        const TIOCSWINSZ: u32 = 0x5414;
        const FIONREAD: u32 = 0x541B;
        const TIOCNOTTY: u32 = 0x5422;
        const TIOCGSID: u32 = 0x5429;
        match cmd {
            TCGETS => {
                let t = *self.termios.lock();
                write_val(arg, &t)?;
                Ok(0)
            }
            TCSETS | TCSETSW | TCSETSF => {
                let t: Termios = read_val(arg)?;
                *self.termios.lock() = t;
                if cmd == TCSETSF {
                    let mut i = self.input.lock();
                    i.ready.clear();
                    i.line.clear();
                }
                // Switching to raw mode releases a partly edited line.
                if t.lflag & ICANON == 0 {
                    let mut i = self.input.lock();
                    let l = core::mem::take(&mut i.line);
                    i.ready.extend(l);
                }
                self.readers.wake_all();
                Ok(0)
            }
            TCFLSH => {
                if arg == 0 || arg == 2 {
                    let mut i = self.input.lock();
                    i.ready.clear();
                    i.line.clear();
                }
                Ok(0)
            }
            TIOCGWINSZ => {
                let w = *self.winsize.lock();
                write_val(arg, &w)?;
                Ok(0)
            }
            TIOCSWINSZ => {
                let w: [u16; 4] = read_val(arg)?;
                *self.winsize.lock() = w;
                Ok(0)
            }
            TIOCGPGRP => {
                write_val(arg, &self.fg_pgrp.load(Ordering::Relaxed))?;
                Ok(0)
            }
            TIOCSPGRP => {
                let pg: u32 = read_val(arg)?;
                self.fg_pgrp.store(pg, Ordering::Relaxed);
                Ok(0)
            }
            TIOCSCTTY => {
                if let Some(p) = crate::proc::current_process() {
                    self.session.store(p.sid.load(Ordering::Relaxed), Ordering::Relaxed);
                    self.fg_pgrp.store(p.pgid.load(Ordering::Relaxed), Ordering::Relaxed);
                }
                Ok(0)
            }
            TIOCNOTTY => Ok(0),
            TIOCGSID => {
                write_val(arg, &self.session.load(Ordering::Relaxed))?;
                Ok(0)
            }
            FIONREAD => {
                let n = self.input.lock().ready.len() as u32;
                write_val(arg, &n)?;
                Ok(0)
            }
            _ => Err(Errno::ENOTTY),
        }
    }

    pub fn set_winsize(&self, rows: u16, cols: u16) {
        *self.winsize.lock() = [rows, cols, 0, 0];
    }
}

/// Routes COM1's receive interrupt (ISA IRQ 4) through the IOAPIC to the terminal.
pub fn init() {
    register_devices();
    let t = console();
    let cmd = crate::boot::cmdline();
    if let (Some(r), Some(c)) = (cmd.param("tty.rows").and_then(|v| v.parse().ok()), cmd.param("tty.cols").and_then(|v| v.parse().ok())) {
        t.set_winsize(r, c);
    }
    if !crate::arch::serial::enable_rx_interrupt(serial_irq) {
        log::warn!("tty: could not route the COM1 interrupt; console input unavailable");
    }
}

fn serial_irq(_f: &mut crate::arch::idt::TrapFrame) {
    while let Some(b) = crate::arch::serial::try_read() {
        console().receive(b);
    }
}

/// The terminal as `/dev/console`, `/dev/tty` and `/dev/ttyS0`.
struct TtyDevice;

impl crate::fs::devfs::Device for TtyDevice {
    fn read(&self, file: &crate::fs::file::File, buf: &mut [u8], _off: u64) -> KResult<usize> {
        console().read(buf, file.flags() & crate::fs::consts::O_NONBLOCK != 0)
    }
    fn write(&self, _file: &crate::fs::file::File, buf: &[u8], _off: u64) -> KResult<usize> {
        console().write(buf)
    }
    fn poll(&self, _file: &crate::fs::file::File, events: u32) -> u32 {
        use crate::fs::consts::{POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
        let mut r = events & (POLLOUT | POLLWRNORM);
        if console().readable() {
            r |= events & (POLLIN | POLLRDNORM);
        }
        r
    }
    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(console().wait_queue())
    }
    fn ioctl(&self, _file: &crate::fs::file::File, cmd: u32, arg: u64) -> KResult<u64> {
        console().ioctl(cmd, arg)
    }
    fn open(self: alloc::sync::Arc<Self>, _flags: u32) -> KResult<alloc::sync::Arc<dyn crate::fs::devfs::Device>> {
        Ok(self)
    }
}

fn register_devices() {
    use crate::fs::devfs::{self, DevKind};
    let d: alloc::sync::Arc<dyn devfs::Device> = alloc::sync::Arc::new(TtyDevice);
    for rdev in [devfs::TTY, devfs::CONSOLE_DEV, devfs::TTYS0] {
        devfs::register_device(DevKind::Char, rdev, d.clone());
    }
}
