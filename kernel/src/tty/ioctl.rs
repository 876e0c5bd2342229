//! The terminal ioctls: termios (TCGETS/TCSETS*), window size, foreground process group and
//! session, controlling terminal, queue sizes; pty masters pass theirs on to these.

use super::*;

impl Tty {
    /// The ioctls both a console/slave and (through it) a master understand.
    pub fn ioctl(&self, cmd: u32, arg: u64) -> KResult<u64> {
        match cmd {
            TCGETS => {
                let t = *self.termios.lock();
                write_val(arg, &t)?;
                Ok(0)
            }
            TCSETS | TCSETSW | TCSETSF => {
                self.check_ttou(true)?;
                let t: Termios = read_val(arg)?;
                *self.termios.lock() = t;
                if cmd == TCSETSF {
                    let mut i = self.input.lock();
                    i.ready.clear();
                    i.line.clear();
                }
                // Switching to raw mode releases a partly edited line.
                if t.c_lflag & ICANON == 0 {
                    let mut i = self.input.lock();
                    let l = core::mem::take(&mut i.line);
                    i.ready.extend(l);
                }
                self.wq.wake_all();
                Ok(0)
            }
            TCFLSH => {
                self.check_ttou(true)?;
                if arg == 0 || arg == 2 {
                    let mut i = self.input.lock();
                    i.ready.clear();
                    i.line.clear();
                }
                if (arg == 1 || arg == 2)
                    && let Some(p) = self.pty()
                {
                    p.out.lock().clear();
                    self.wq.wake_all();
                }
                match arg {
                    0..=2 => Ok(0),
                    _ => Err(Errno::EINVAL),
                }
            }
            TIOCGWINSZ => {
                let w = *self.winsize.lock();
                write_val(arg, &w)?;
                Ok(0)
            }
            TIOCSWINSZ => {
                let w: Winsize = read_val(arg)?;
                let changed = {
                    let mut cur = self.winsize.lock();
                    let c = *cur != w;
                    *cur = w;
                    c
                };
                let fg = self.fg_pgrp.load(Ordering::Acquire);
                if changed && fg != 0 && self.session.load(Ordering::Acquire) != 0 {
                    signal::send_pgrp(fg, SIGWINCH);
                }
                Ok(0)
            }
            TIOCGPGRP => {
                if !self.caller_owns() {
                    return Err(Errno::ENOTTY);
                }
                write_val(arg, &self.fg_pgrp.load(Ordering::Acquire))?;
                Ok(0)
            }
            TIOCSPGRP => {
                if !self.caller_owns() {
                    return Err(Errno::ENOTTY);
                }
                self.check_ttou(true)?;
                let pg: i32 = read_val(arg)?;
                if pg < 0 {
                    return Err(Errno::EINVAL);
                }
                match crate::proc::pgrp_in_session(pg as u32, self.session.load(Ordering::Acquire))
                {
                    None => Err(Errno::ESRCH),
                    Some(false) => Err(Errno::EPERM),
                    Some(true) => {
                        self.fg_pgrp.store(pg as u32, Ordering::Release);
                        Ok(0)
                    }
                }
            }
            TIOCSCTTY => {
                let p = crate::proc::current_process().ok_or(Errno::EPERM)?;
                let sid = p.sid();
                if self.session.load(Ordering::Acquire) == sid {
                    return Ok(0);
                }
                if p.pid != sid || ctty_of(sid).is_some() {
                    return Err(Errno::EPERM);
                }
                let cur = self.session.load(Ordering::Acquire);
                if cur != 0 {
                    // Stealing another session's terminal: root and arg 1 only.
                    if arg != 1 || p.creds.lock().euid != 0 {
                        return Err(Errno::EPERM);
                    }
                }
                self.session.store(sid, Ordering::Release);
                self.fg_pgrp.store(p.pgid(), Ordering::Release);
                Ok(0)
            }
            TIOCNOTTY => {
                if !self.caller_owns() {
                    return Err(Errno::ENOTTY);
                }
                let p = crate::proc::current_process().ok_or(Errno::ENOTTY)?;
                if p.pid == p.sid() {
                    let fg = self.fg_pgrp.load(Ordering::Acquire);
                    self.session.store(0, Ordering::Release);
                    self.fg_pgrp
                        .store(if self.is_pty() { 0 } else { 1 }, Ordering::Release);
                    if fg != 0 {
                        signal::send_pgrp(fg, SIGHUP);
                        signal::send_pgrp(fg, SIGCONT);
                    }
                }
                Ok(0)
            }
            TIOCGSID => {
                if !self.caller_owns() {
                    return Err(Errno::ENOTTY);
                }
                write_val(arg, &self.session.load(Ordering::Acquire))?;
                Ok(0)
            }
            FIONREAD => {
                let n = self.input.lock().ready.len() as u32;
                write_val(arg, &n)?;
                Ok(0)
            }
            TIOCOUTQ => {
                let n = self.pty().map_or(0, |p| p.out.lock().len()) as u32;
                write_val(arg, &n)?;
                Ok(0)
            }
            _ => Err(Errno::ENOTTY),
        }
    }
}
