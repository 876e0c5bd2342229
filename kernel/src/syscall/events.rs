//! epoll, eventfd, timerfd and signalfd system calls (the objects are in `crate::ipc`).

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::abi::{Itimerspec, Timespec};
use super::arch::EpollEvent;
use super::{Call, Table};
use crate::arch::uaccess::{read_val, write_val};
use crate::errno::{Errno, KResult};
use crate::fs::File;
use crate::fs::consts::{O_CLOEXEC, O_NONBLOCK, O_RDONLY, O_RDWR};
use crate::ipc::epoll::Epoll;
use crate::ipc::eventfd::{EFD_SEMAPHORE, EventFd};
use crate::ipc::signalfd::SignalFd;
use crate::ipc::timerfd::{TFD_TIMER_ABSTIME, TFD_TIMER_CANCEL_ON_SET, TimerFd};
use crate::proc::current_process;
use core::mem::size_of;

pub fn register(t: &mut Table) {
    t.add(213, "epoll_create", epoll_create);
    t.add(232, "epoll_wait", epoll_wait);
    t.add(233, "epoll_ctl", epoll_ctl);
    t.add(281, "epoll_pwait", epoll_pwait);
    t.add(282, "signalfd", signalfd);
    t.add(283, "timerfd_create", timerfd_create);
    t.add(284, "eventfd", eventfd);
    t.add(286, "timerfd_settime", timerfd_settime);
    t.add(287, "timerfd_gettime", timerfd_gettime);
    t.add(289, "signalfd4", signalfd4);
    t.add(290, "eventfd2", eventfd2);
    t.add(291, "epoll_create1", epoll_create1);
    t.add(441, "epoll_pwait2", epoll_pwait2);
}

fn file(fd: i32) -> KResult<Arc<File>> {
    current_process().ok_or(Errno::ESRCH)?.files.lock().get(fd)
}

/// Installs a new anonymous file; `flags` may hold O_NONBLOCK and O_CLOEXEC.
pub(super) fn install(f: Arc<File>, cloexec: bool) -> KResult<u64> {
    let p = current_process().ok_or(Errno::ESRCH)?;
    let fd = p.files.lock().insert(f, cloexec)?;
    Ok(fd as u64)
}

fn anon<T: 'static>(f: &File) -> Option<&T> {
    f.anon().and_then(|a| a.as_any().downcast_ref::<T>())
}

// ---- epoll ----------------------------------------------------------------------------

fn new_epoll(cloexec: bool) -> KResult<u64> {
    install(File::new_anon(Epoll::new(), O_RDWR), cloexec)
}

fn epoll_create(c: &mut Call<'_>) -> KResult<u64> {
    if c.i32(0) <= 0 {
        return Err(Errno::EINVAL);
    }
    new_epoll(false)
}

fn epoll_create1(c: &mut Call<'_>) -> KResult<u64> {
    let flags = c.a0() as u32;
    if flags & !O_CLOEXEC != 0 {
        return Err(Errno::EINVAL);
    }
    new_epoll(flags & O_CLOEXEC != 0)
}

fn epoll_ctl(c: &mut Call<'_>) -> KResult<u64> {
    let ef = file(c.i32(0))?;
    let fd = c.i32(2);
    let target = file(fd)?;
    let ep = anon::<Epoll>(&ef).ok_or(Errno::EINVAL)?;
    let op = c.a1() as u32;
    let (events, data) = if op == crate::ipc::epoll::EPOLL_CTL_DEL {
        (0, 0)
    } else {
        let e: EpollEvent = read_val(c.a3())?;
        (e.events, e.data)
    };
    ep.ctl(&ef, op, fd, &target, events, data)?;
    Ok(0)
}

/// The wait shared by epoll_wait/epoll_pwait/epoll_pwait2 (`deadline`: monotonic ns).
fn do_epoll_wait(epfd: i32, addr: u64, max: i32, deadline: Option<u64>) -> KResult<u64> {
    if max <= 0 || max as usize > (i32::MAX as usize) / size_of::<EpollEvent>() {
        return Err(Errno::EINVAL);
    }
    let ef = file(epfd)?;
    let ep = anon::<Epoll>(&ef).ok_or(Errno::EINVAL)?;
    let max = (max as usize).min(1024);
    let mut out = Vec::new();
    let mut intr = false;
    crate::sched::wait::wait_any(
        &[ep.queue()],
        || {
            out = ep.scan(true, max);
            if !out.is_empty() {
                return true;
            }
            intr = crate::proc::signal::pending_for_current();
            intr
        },
        deadline,
    );
    if out.is_empty() && intr {
        return Err(Errno::EINTR);
    }
    let evs: Vec<EpollEvent> = out
        .iter()
        .map(|&(events, data)| super::arch::epoll_event(events, data))
        .collect();
    write_val(addr, evs.as_slice())?;
    Ok(out.len() as u64)
}

fn ms_deadline(ms: i32) -> Option<u64> {
    (ms >= 0).then(|| crate::time::now_ns() + ms as u64 * 1_000_000)
}

fn epoll_wait(c: &mut Call<'_>) -> KResult<u64> {
    do_epoll_wait(c.i32(0), c.a1(), c.i32(2), ms_deadline(c.i32(3)))
}

fn epoll_pwait(c: &mut Call<'_>) -> KResult<u64> {
    let (epfd, addr, max, deadline) = (c.i32(0), c.a1(), c.i32(2), ms_deadline(c.i32(3)));
    super::signal::with_sigmask(c.a4(), c.a5(), || do_epoll_wait(epfd, addr, max, deadline))
}

fn epoll_pwait2(c: &mut Call<'_>) -> KResult<u64> {
    let deadline = if c.a3() == 0 {
        None
    } else {
        let ts: Timespec = read_val(c.a3())?;
        Some(crate::time::now_ns().saturating_add(ts_ns(ts)?))
    };
    let (epfd, addr, max) = (c.i32(0), c.a1(), c.i32(2));
    super::signal::with_sigmask(c.a4(), c.a5(), || do_epoll_wait(epfd, addr, max, deadline))
}

// ---- eventfd --------------------------------------------------------------------------

fn do_eventfd(init: u64, flags: u32) -> KResult<u64> {
    if flags & !(O_CLOEXEC | O_NONBLOCK | EFD_SEMAPHORE) != 0 {
        return Err(Errno::EINVAL);
    }
    let f = File::new_anon(
        EventFd::new(init & 0xffff_ffff, flags & EFD_SEMAPHORE != 0),
        O_RDWR | (flags & O_NONBLOCK),
    );
    install(f, flags & O_CLOEXEC != 0)
}

fn eventfd(c: &mut Call<'_>) -> KResult<u64> {
    do_eventfd(c.a0(), 0)
}

fn eventfd2(c: &mut Call<'_>) -> KResult<u64> {
    do_eventfd(c.a0(), c.a1() as u32)
}

// ---- timerfd --------------------------------------------------------------------------

fn timerfd_create(c: &mut Call<'_>) -> KResult<u64> {
    let flags = c.a1() as u32;
    if flags & !(O_CLOEXEC | O_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    let t = TimerFd::new(c.a0() as u32)?;
    install(
        File::new_anon(t, O_RDONLY | (flags & O_NONBLOCK)),
        flags & O_CLOEXEC != 0,
    )
}

/// A validated `timespec` in nanoseconds (EINVAL if negative or not normalized).
fn ts_ns(v: Timespec) -> KResult<u64> {
    if v.tv_sec < 0 || !(0..1_000_000_000).contains(&v.tv_nsec) {
        return Err(Errno::EINVAL);
    }
    Ok((v.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(v.tv_nsec as u64))
}

fn timerfd_settime(c: &mut Call<'_>) -> KResult<u64> {
    let f = file(c.i32(0))?;
    let t = anon::<TimerFd>(&f).ok_or(Errno::EINVAL)?;
    let flags = c.a1() as u32;
    if flags & !(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET) != 0 {
        return Err(Errno::EINVAL);
    }
    let v: Itimerspec = read_val(c.a2())?;
    let interval = ts_ns(v.it_interval)?;
    let value = ts_ns(v.it_value)?;
    let (left, ival) = t.set(flags, value, interval);
    if c.a3() != 0 {
        let old = Itimerspec {
            it_interval: Timespec::from_ns(ival),
            it_value: Timespec::from_ns(left),
        };
        write_val(c.a3(), &old)?;
    }
    Ok(0)
}

fn timerfd_gettime(c: &mut Call<'_>) -> KResult<u64> {
    let f = file(c.i32(0))?;
    let t = anon::<TimerFd>(&f).ok_or(Errno::EINVAL)?;
    let (left, ival) = t.get();
    let cur = Itimerspec {
        it_interval: Timespec::from_ns(ival),
        it_value: Timespec::from_ns(left),
    };
    write_val(c.a1(), &cur)?;
    Ok(0)
}

// ---- signalfd -------------------------------------------------------------------------

fn do_signalfd(fd: i32, mask_addr: u64, size: u64, flags: u32) -> KResult<u64> {
    if flags & !(O_CLOEXEC | O_NONBLOCK) != 0 || size != 8 {
        return Err(Errno::EINVAL);
    }
    let mask: u64 = read_val(mask_addr)?;
    if fd == -1 {
        return install(
            File::new_anon(SignalFd::new(mask), O_RDONLY | (flags & O_NONBLOCK)),
            flags & O_CLOEXEC != 0,
        );
    }
    let f = file(fd)?;
    anon::<SignalFd>(&f).ok_or(Errno::EINVAL)?.set_mask(mask);
    Ok(fd as u64)
}

fn signalfd(c: &mut Call<'_>) -> KResult<u64> {
    do_signalfd(c.i32(0), c.a1(), c.a2(), 0)
}

fn signalfd4(c: &mut Call<'_>) -> KResult<u64> {
    do_signalfd(c.i32(0), c.a1(), c.a2(), c.a3() as u32)
}
