//! clock_gettime, clock_getres, gettimeofday, time, nanosleep, clock_nanosleep, times.

use super::abi::{Timespec, Timeval, Tms};
use super::{Call, Table};
use crate::arch::uaccess::{read_val, write_val};
use crate::errno::{Errno, KResult};

pub fn register(t: &mut Table) {
    t.add(228, "clock_gettime", clock_gettime);
    t.add(229, "clock_getres", clock_getres);
    t.add(96, "gettimeofday", gettimeofday);
    t.add(201, "time", time);
    t.add(35, "nanosleep", nanosleep);
    t.add(230, "clock_nanosleep", clock_nanosleep);
    t.add(100, "times", times);
}

fn now(clock: u64) -> KResult<u64> {
    match clock {
        0 | 5 | 8 | 11 => Ok(crate::time::wall_clock_ns()), // REALTIME(_COARSE/_ALARM), TAI
        1 | 4 | 6 | 7 | 9 => Ok(crate::time::now_ns()),     // MONOTONIC*, BOOTTIME*
        2 => Ok(process_cpu_ns(
            &*crate::proc::current_process().ok_or(Errno::ESRCH)?,
        )), // PROCESS_CPUTIME_ID
        3 => Ok(thread_cpu_ns()),                           // THREAD_CPUTIME_ID
        _ => Err(Errno::EINVAL),
    }
}

/// CPU time of the calling thread, including its current slice.
pub(super) fn thread_cpu_ns() -> u64 {
    crate::sched::thread::current_cpu_ns(|th| th.run_ns.load(core::sync::atomic::Ordering::Relaxed))
}

/// CPU time of process `p` (the caller's), including the calling thread's current slice.
pub(super) fn process_cpu_ns(p: &crate::proc::Process) -> u64 {
    crate::sched::thread::current_cpu_ns(|_| p.cpu_ns())
}

fn clock_gettime(c: &mut Call<'_>) -> KResult<u64> {
    let ns = now(c.a0())?;
    write_val(c.a1(), &Timespec::from_ns(ns))?;
    Ok(0)
}

fn clock_getres(c: &mut Call<'_>) -> KResult<u64> {
    now(c.a0())?;
    if c.a1() != 0 {
        write_val(
            c.a1(),
            &Timespec {
                tv_sec: 0,
                tv_nsec: 1,
            },
        )?;
    }
    Ok(0)
}

fn gettimeofday(c: &mut Call<'_>) -> KResult<u64> {
    let ns = crate::time::wall_clock_ns();
    if c.a0() != 0 {
        write_val(c.a0(), &Timeval::from_ns(ns))?;
    }
    Ok(0)
}

fn time(c: &mut Call<'_>) -> KResult<u64> {
    let s = crate::time::wall_clock_ns() / 1_000_000_000;
    if c.a0() != 0 {
        write_val(c.a0(), &s)?;
    }
    Ok(s)
}

/// Sleeps until `deadline` (monotonic ns); EINTR (with the time left) if a signal arrives.
fn sleep_until(deadline: u64) -> Result<(), u64> {
    let wq = crate::sched::wait::WaitQueue::new();
    let mut intr = false;
    wq.wait_until(
        || {
            if crate::proc::signal::pending_for_current() {
                intr = true;
                return true;
            }
            crate::time::now_ns() >= deadline
        },
        Some(deadline),
    );
    if intr {
        Err(deadline.saturating_sub(crate::time::now_ns()))
    } else {
        Ok(())
    }
}

fn read_ts(addr: u64) -> KResult<u64> {
    let ts: Timespec = read_val(addr)?;
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return Err(Errno::EINVAL);
    }
    Ok((ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64))
}

fn nanosleep(c: &mut Call<'_>) -> KResult<u64> {
    let d = read_ts(c.a0())?;
    match sleep_until(crate::time::now_ns().saturating_add(d)) {
        Ok(()) => Ok(0),
        Err(left) => {
            if c.a1() != 0 {
                write_val(c.a1(), &Timespec::from_ns(left))?;
            }
            Err(Errno::EINTR)
        }
    }
}

fn clock_nanosleep(c: &mut Call<'_>) -> KResult<u64> {
    let clock = c.a0();
    now(clock)?;
    let t = read_ts(c.a2())?;
    let deadline = if c.a1() & 1 != 0 {
        // TIMER_ABSTIME
        let offset = now(clock)? as i64 - crate::time::now_ns() as i64;
        (t as i64 - offset).max(0) as u64
    } else {
        crate::time::now_ns().saturating_add(t)
    };
    match sleep_until(deadline) {
        Ok(()) => Ok(0),
        Err(left) => {
            // The time left goes to `rem` for a relative sleep only (as nanosleep; glibc's
            // nanosleep is clock_nanosleep(CLOCK_REALTIME, 0, …)).
            if c.a1() & 1 == 0 && c.a3() != 0 {
                write_val(c.a3(), &Timespec::from_ns(left))?;
            }
            Err(Errno::EINTR)
        }
    }
}

fn times(c: &mut Call<'_>) -> KResult<u64> {
    // clock_t in USER_HZ (100/s); CPU time is not split into user and system time.
    let ticks = crate::time::now_ns() / 10_000_000;
    if c.a0() != 0 {
        let p = crate::proc::current_process().ok_or(Errno::ESRCH)?;
        let me = process_cpu_ns(&p) / 10_000_000;
        let kids = p.children_ns.load(core::sync::atomic::Ordering::Relaxed) / 10_000_000;
        let t = Tms {
            tms_utime: me as i64,
            tms_cutime: kids as i64,
            ..Default::default()
        };
        write_val(c.a0(), &t)?;
    }
    Ok(ticks)
}
