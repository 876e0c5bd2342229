//! rt_sigaction, rt_sigprocmask, rt_sigreturn, sigaltstack, kill, tgkill, tkill,
//! rt_sigpending, rt_sigsuspend, pause.

use core::sync::atomic::Ordering;

use super::abi::{SigInfoRt, StackT, Timespec};
use super::{Call, Table};
use crate::arch::uaccess::{read_val, write_val};
use crate::errno::{Errno, KResult};
use crate::proc::signal::{self as sig, SigAction};
use crate::proc::{self, current_task};

pub fn register(t: &mut Table) {
    t.add(13, "rt_sigaction", rt_sigaction);
    t.add(14, "rt_sigprocmask", rt_sigprocmask);
    t.add(15, "rt_sigreturn", rt_sigreturn);
    t.add(34, "pause", pause);
    t.add(62, "kill", kill);
    t.add(127, "rt_sigpending", rt_sigpending);
    t.add(130, "rt_sigsuspend", rt_sigsuspend);
    t.add(131, "sigaltstack", sigaltstack);
    t.add(128, "rt_sigtimedwait", rt_sigtimedwait);
    t.add(200, "tkill", tkill);
    t.add(234, "tgkill", tgkill);
    t.add(129, "rt_sigqueueinfo", rt_sigqueueinfo);
    t.add(297, "rt_tgsigqueueinfo", rt_tgsigqueueinfo);
}

fn rt_sigaction(c: &mut Call<'_>) -> KResult<u64> {
    let s = c.a0() as u32;
    if !sig::valid(s) || c.a3() != 8 {
        return Err(Errno::EINVAL);
    }
    let t = current_task().ok_or(Errno::EPERM)?;
    let old = t.process.sig.lock().get(s);
    if c.a1() != 0 {
        if s == sig::SIGKILL || s == sig::SIGSTOP {
            return Err(Errno::EINVAL);
        }
        let new: SigAction = read_val(c.a1())?;
        t.process.sig.lock().0[s as usize - 1] = new;
        // Setting an action that ignores the signal discards it where it is pending
        // (POSIX), even where it is blocked.
        if sig::action_ignores(&t.process, s) {
            for th in t.process.live_threads() {
                th.sig.lock().discard(1u64 << (s - 1));
            }
        }
    }
    if c.a2() != 0 {
        write_val(c.a2(), &old)?;
    }
    Ok(0)
}

fn rt_sigprocmask(c: &mut Call<'_>) -> KResult<u64> {
    if c.a3() != 8 {
        return Err(Errno::EINVAL);
    }
    let t = current_task().ok_or(Errno::EPERM)?;
    let old = t.sig.lock().mask;
    if c.a1() != 0 {
        let set: u64 = read_val(c.a1())?;
        let never = (1 << (sig::SIGKILL - 1)) | (1 << (sig::SIGSTOP - 1));
        let mut st = t.sig.lock();
        st.mask = match c.a0() {
            0 => st.mask | set,
            1 => st.mask & !set,
            2 => set,
            _ => return Err(Errno::EINVAL),
        } & !never;
    }
    if c.a2() != 0 {
        write_val(c.a2(), &old)?;
    }
    Ok(0)
}

fn rt_sigreturn(c: &mut Call<'_>) -> KResult<u64> {
    sig::sigreturn(c.frame)
}

fn rt_sigpending(c: &mut Call<'_>) -> KResult<u64> {
    let t = current_task().ok_or(Errno::EPERM)?;
    let p = t.sig.lock().pending;
    write_val(c.a0(), &p)?;
    Ok(0)
}

/// Sleeps until a signal is delivered (always "fails" with EINTR).
fn wait_for_signal() -> Errno {
    let t = current_task();
    let wq = crate::sched::wait::WaitQueue::new();
    wq.wait_until(sig::pending_for_current, None);
    drop(t);
    Errno::EINTR
}

fn pause(_c: &mut Call<'_>) -> KResult<u64> {
    Err(wait_for_signal())
}

fn rt_sigsuspend(c: &mut Call<'_>) -> KResult<u64> {
    let t = current_task().ok_or(Errno::EPERM)?;
    let set: u64 = read_val(c.a0())?;
    {
        let mut s = t.sig.lock();
        s.restore_mask = Some(s.mask);
        s.mask = set & !((1 << (sig::SIGKILL - 1)) | (1 << (sig::SIGSTOP - 1)));
    }
    // The old mask is restored by signal delivery on the way out (see `deliver`).
    Err(wait_for_signal())
}

fn sigaltstack(c: &mut Call<'_>) -> KResult<u64> {
    let t = current_task().ok_or(Errno::EPERM)?;
    let old = t.sig.lock().altstack;
    if c.a1() != 0 {
        let st = StackT {
            ss_sp: old.0,
            ss_flags: if old.1 == 0 { 2 } else { old.2 }, // SS_DISABLE
            __pad: 0,
            ss_size: old.1,
        };
        write_val(c.a1(), &st)?;
    }
    if c.a0() != 0 {
        let st: StackT = read_val(c.a0())?;
        let (sp, flags, size) = (st.ss_sp, st.ss_flags, st.ss_size);
        if flags & 2 != 0 {
            t.sig.lock().altstack = (0, 0, 2);
        } else {
            if size < 2048 {
                return Err(Errno::ENOMEM);
            }
            t.sig.lock().altstack = (sp, size, flags);
        }
    }
    Ok(0)
}

fn kill(c: &mut Call<'_>) -> KResult<u64> {
    let pid = c.i32(0);
    let s = c.a1() as u32;
    if s != 0 && !sig::valid(s) {
        return Err(Errno::EINVAL);
    }
    let me = proc::current_process().ok_or(Errno::EPERM)?;
    let targets: alloc::vec::Vec<_> = match pid {
        p if p > 0 => proc::process(p as u32).into_iter().collect(),
        0 => proc::all_processes()
            .into_iter()
            .filter(|p| p.pgid.load(Ordering::Relaxed) == me.pgid.load(Ordering::Relaxed))
            .collect(),
        -1 => proc::all_processes()
            .into_iter()
            .filter(|p| p.pid != 1 && p.pid != me.pid)
            .collect(),
        p => proc::all_processes()
            .into_iter()
            .filter(|x| x.pgid.load(Ordering::Relaxed) == (-p) as u32)
            .collect(),
    };
    // A zombie still exists until reaped: signalling it succeeds and does nothing.
    if targets.is_empty() {
        return Err(Errno::ESRCH);
    }
    let targets: alloc::vec::Vec<_> = targets
        .into_iter()
        .filter(|p| may_signal(&me, p, s))
        .collect();
    if targets.is_empty() {
        return Err(Errno::EPERM);
    }
    for p in targets.iter().filter(|p| !p.zombie.load(Ordering::Acquire)) {
        sig::send_process_info(p, sig::SigInfo::from_current(s, sig::SI_USER));
    }
    Ok(0)
}

/// May `me` send `s` to `target`? Root may signal anyone; others need their real or
/// effective uid to match the target's real or saved set-user-ID (POSIX, as Linux);
/// SIGCONT may go to any process of the same session.
fn may_signal(me: &proc::Process, target: &proc::Process, s: u32) -> bool {
    let a = *me.creds.lock();
    if a.euid == 0 || core::ptr::eq(me, target) {
        return true;
    }
    let b = *target.creds.lock();
    if [a.uid, a.euid].iter().any(|u| *u == b.uid || *u == b.suid) {
        return true;
    }
    s == sig::SIGCONT && me.sid.load(Ordering::Relaxed) == target.sid.load(Ordering::Relaxed)
}

/// The thread-directed kills check permission like `kill`.
fn may_signal_task(t: &proc::Task, s: u32) -> KResult<()> {
    let me = proc::current_process().ok_or(Errno::EPERM)?;
    if may_signal(&me, &t.process, s) {
        Ok(())
    } else {
        Err(Errno::EPERM)
    }
}

fn tkill(c: &mut Call<'_>) -> KResult<u64> {
    let t = proc::task(c.a0() as u32).ok_or(Errno::ESRCH)?;
    let s = c.a1() as u32;
    if s != 0 && !sig::valid(s) {
        return Err(Errno::EINVAL);
    }
    may_signal_task(&t, s)?;
    sig::send_task_info(&t, sig::SigInfo::from_current(s, sig::SI_TKILL));
    Ok(0)
}

fn tgkill(c: &mut Call<'_>) -> KResult<u64> {
    let t = proc::task(c.a1() as u32).ok_or(Errno::ESRCH)?;
    if t.process.pid != c.a0() as u32 {
        return Err(Errno::ESRCH);
    }
    let s = c.a2() as u32;
    if s != 0 && !sig::valid(s) {
        return Err(Errno::EINVAL);
    }
    may_signal_task(&t, s)?;
    sig::send_task_info(&t, sig::SigInfo::from_current(s, sig::SI_TKILL));
    Ok(0)
}

/// The siginfo a process asked rt_(tg)sigqueueinfo to send: only the kernel may claim
/// SI_USER or a positive si_code for another process (Linux: EPERM).
fn user_info(target_pid: u32, s: u32, at: u64) -> KResult<sig::SigInfo> {
    let raw: SigInfoRt = read_val(at)?;
    let mut info = sig::SigInfo::from_user(&raw);
    let me = proc::current_process().ok_or(Errno::EPERM)?;
    if (info.code >= 0 || info.code == sig::SI_TKILL) && target_pid != me.pid {
        return Err(Errno::EPERM);
    }
    info.signo = s;
    Ok(info)
}

/// `rt_sigqueueinfo(tgid, sig, info)`: a process-directed signal with the caller's
/// siginfo (sigqueue(3) sends SI_QUEUE with a value). EAGAIN when the queue is full.
fn rt_sigqueueinfo(c: &mut Call<'_>) -> KResult<u64> {
    let s = c.a1() as u32;
    if s != 0 && !sig::valid(s) {
        return Err(Errno::EINVAL);
    }
    let p = proc::process(c.a0() as u32).ok_or(Errno::ESRCH)?;
    let info = user_info(p.pid, s, c.a2())?;
    let me = proc::current_process().ok_or(Errno::EPERM)?;
    if !may_signal(&me, &p, s) {
        return Err(Errno::EPERM);
    }
    if s == 0 || p.zombie.load(Ordering::Acquire) {
        return Ok(0);
    }
    if sig::send_process_info(&p, info) {
        Ok(0)
    } else {
        Err(Errno::EAGAIN)
    }
}

/// `rt_tgsigqueueinfo(tgid, tid, sig, info)`: the same, to one thread.
fn rt_tgsigqueueinfo(c: &mut Call<'_>) -> KResult<u64> {
    let t = proc::task(c.a1() as u32).ok_or(Errno::ESRCH)?;
    if t.process.pid != c.a0() as u32 {
        return Err(Errno::ESRCH);
    }
    let s = c.a2() as u32;
    if s != 0 && !sig::valid(s) {
        return Err(Errno::EINVAL);
    }
    let info = user_info(t.process.pid, s, c.a3())?;
    may_signal_task(&t, s)?;
    if s == 0 {
        return Ok(0);
    }
    if sig::send_task_info(&t, info) {
        Ok(0)
    } else {
        Err(Errno::EAGAIN)
    }
}

/// Waits for one of the signals in `set` (normally blocked) and takes it without running a
/// handler. EAGAIN on timeout; EINTR if some other, unblocked signal arrives.
fn rt_sigtimedwait(c: &mut Call<'_>) -> KResult<u64> {
    if c.a3() != 8 {
        return Err(Errno::EINVAL);
    }
    let set: u64 = read_val(c.a0())?;
    let deadline = if c.a2() != 0 {
        let ts: Timespec = read_val(c.a2())?;
        if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
            return Err(Errno::EINVAL);
        }
        Some(crate::time::now_ns() + ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
    } else {
        None
    };
    let t = current_task().ok_or(Errno::EPERM)?;
    let ready = || {
        let s = t.sig.lock();
        s.pending & set != 0 || s.pending & !s.mask & !set != 0 || t.killed.load(Ordering::Acquire)
    };
    let wq = crate::sched::wait::WaitQueue::new();
    wq.wait_until(ready, deadline);
    let mut s = t.sig.lock();
    let hit = s.pending & set;
    if hit != 0 {
        let signo = hit.trailing_zeros() + 1;
        let info = s.take(signo);
        drop(s);
        if c.a1() != 0 {
            crate::arch::uaccess::copy_to_user(c.a1(), &info.to_bytes())?;
        }
        return Ok(u64::from(signo));
    }
    if s.pending & !s.mask != 0 {
        return Err(Errno::EINTR);
    }
    Err(Errno::EAGAIN)
}

/// Runs `f` with the signal mask at `mask_addr` (if any; `size` bytes, which must be 8 as
/// Linux's sigset_t) in place, SIGKILL and SIGSTOP never blocked; the old mask comes back
/// afterwards, or after the handler when a signal interrupted the call. The one copy for
/// `ppoll`, `pselect6`, `epoll_pwait` and `epoll_pwait2`.
pub(super) fn with_sigmask<T>(
    mask_addr: u64,
    size: u64,
    f: impl FnOnce() -> KResult<T>,
) -> KResult<T> {
    let Some(t) = current_task() else {
        return f();
    };
    if mask_addr == 0 {
        return f();
    }
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    let m: u64 = read_val(mask_addr)?;
    let keep = (1u64 << (sig::SIGKILL - 1)) | (1u64 << (sig::SIGSTOP - 1));
    let old = {
        let mut s = t.sig.lock();
        let o = s.mask;
        s.mask = m & !keep;
        o
    };
    let r = f();
    let mut s = t.sig.lock();
    if r.is_err() {
        s.restore_mask = Some(old);
    } else {
        s.mask = old;
    }
    r
}
