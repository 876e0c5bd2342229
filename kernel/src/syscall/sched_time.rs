//! alarm, setitimer/getitimer (ITIMER_REAL), getrusage, getpriority/setpriority and the
//! scheduler-policy queries.

use core::sync::atomic::Ordering;

use super::abi::{Itimerval, Rusage, Timeval};
use super::{Call, Table};
use crate::arch::uaccess::{read_val, write_val};
use crate::errno::{Errno, KResult};
use crate::proc::{self, Process, current_process};

pub fn register(t: &mut Table) {
    t.add(37, "alarm", alarm);
    t.add(36, "getitimer", getitimer);
    t.add(38, "setitimer", setitimer);
    t.add(98, "getrusage", getrusage);
    t.add(140, "getpriority", getpriority);
    t.add(141, "setpriority", setpriority);
    t.add(145, "sched_getscheduler", sched_getscheduler);
    t.add(146, "sched_get_priority_max", sched_get_priority_max);
    t.add(147, "sched_get_priority_min", sched_get_priority_min);
}

/// Arms ITIMER_REAL: SIGALRM after `value` ns, then every `interval` ns (0: once). A kernel
/// thread sleeps until each expiry; re-arming bumps the generation so old threads retire.
fn arm(p: &alloc::sync::Arc<Process>, value: u64, interval: u64) -> (u64, u64) {
    let now = crate::time::now_ns();
    let (old_gen, old_deadline, old_interval) = *p.itimer.lock();
    let _ = old_gen;
    let remaining = old_deadline.saturating_sub(now);
    let sgen = {
        let mut it = p.itimer.lock();
        it.0 += 1;
        it.1 = if value == 0 { 0 } else { now + value };
        it.2 = interval;
        it.0
    };
    if value != 0 {
        let weak = alloc::sync::Arc::downgrade(p);
        crate::sched::spawn("itimer", move || {
            loop {
                let Some(p) = weak.upgrade() else { return };
                let (g, deadline, interval) = *p.itimer.lock();
                if g != sgen || deadline == 0 || p.zombie.load(Ordering::Acquire) {
                    return;
                }
                drop(p);
                crate::sched::sleep_until(deadline);
                let Some(p) = weak.upgrade() else { return };
                let fire = {
                    let mut it = p.itimer.lock();
                    if it.0 != sgen || it.1 != deadline {
                        false
                    } else {
                        it.1 = if interval == 0 {
                            0
                        } else {
                            deadline + interval
                        };
                        true
                    }
                };
                if !fire {
                    return;
                }
                proc::signal::send_process(&p, proc::signal::SIGALRM);
                if interval == 0 {
                    return;
                }
            }
        });
    }
    (if old_deadline == 0 { 0 } else { remaining }, old_interval)
}

fn alarm(c: &mut Call<'_>) -> KResult<u64> {
    let p = current_process().ok_or(Errno::ESRCH)?;
    let (rem, _) = arm(&p, c.a0() * 1_000_000_000, 0);
    Ok(rem.div_ceil(1_000_000_000))
}

fn tv(ns: u64) -> Timeval {
    Timeval::from_ns(ns)
}

fn getitimer(c: &mut Call<'_>) -> KResult<u64> {
    if c.a0() != 0 {
        return Err(Errno::EINVAL); // only ITIMER_REAL
    }
    let p = current_process().ok_or(Errno::ESRCH)?;
    let (_, deadline, interval) = *p.itimer.lock();
    let rem = deadline.saturating_sub(crate::time::now_ns());
    let v = Itimerval {
        it_interval: tv(interval),
        it_value: tv(if deadline == 0 { 0 } else { rem }),
    };
    write_val(c.a1(), &v)?;
    Ok(0)
}

fn setitimer(c: &mut Call<'_>) -> KResult<u64> {
    if c.a0() != 0 {
        return Err(Errno::EINVAL); // only ITIMER_REAL
    }
    let v: Itimerval = read_val(c.a1())?;
    let ns = |t: Timeval| -> KResult<u64> {
        if t.tv_sec < 0 || !(0..1_000_000).contains(&t.tv_usec) {
            return Err(Errno::EINVAL);
        }
        Ok(t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000)
    };
    let (interval, value) = (ns(v.it_interval)?, ns(v.it_value)?);
    let p = current_process().ok_or(Errno::ESRCH)?;
    let (rem, old_interval) = arm(&p, value, interval);
    if c.a2() != 0 {
        let old = Itimerval {
            it_interval: tv(old_interval),
            it_value: tv(rem),
        };
        write_val(c.a2(), &old)?;
    }
    Ok(0)
}

fn getrusage(c: &mut Call<'_>) -> KResult<u64> {
    let p = current_process().ok_or(Errno::ESRCH)?;
    let ns = match c.i32(0) {
        0 => super::time::process_cpu_ns(&p),        // RUSAGE_SELF
        -1 => p.children_ns.load(Ordering::Relaxed), // RUSAGE_CHILDREN
        1 => super::time::thread_cpu_ns(),           // RUSAGE_THREAD
        _ => return Err(Errno::EINVAL),
    };
    // CPU time is not split into user and system time: it is all reported as user time.
    let r = Rusage {
        ru_utime: tv(ns),
        ..Default::default()
    };
    write_val(c.a1(), &r)?;
    Ok(0)
}

fn target(which: u64, who: u64) -> KResult<alloc::sync::Arc<Process>> {
    if which != 0 {
        return Err(Errno::EINVAL); // PRIO_PROCESS only
    }
    if who == 0 {
        current_process()
    } else {
        proc::process(who as u32)
    }
    .ok_or(Errno::ESRCH)
}

fn getpriority(c: &mut Call<'_>) -> KResult<u64> {
    let p = target(c.a0(), c.a1())?;
    // The kernel returns 20 - nice (1..40), libc converts.
    Ok((20 - p.nice.load(Ordering::Relaxed)) as u64)
}

fn setpriority(c: &mut Call<'_>) -> KResult<u64> {
    let p = target(c.a0(), c.a1())?;
    let nice = (c.a2() as i32).clamp(-20, 19);
    let me = current_process().ok_or(Errno::ESRCH)?;
    if nice < p.nice.load(Ordering::Relaxed) && me.creds.lock().euid != 0 {
        return Err(Errno::EACCES);
    }
    p.nice.store(nice, Ordering::Relaxed);
    Ok(0)
}

fn sched_getscheduler(c: &mut Call<'_>) -> KResult<u64> {
    if c.a0() != 0 && proc::process(c.a0() as u32).is_none() {
        return Err(Errno::ESRCH);
    }
    Ok(0) // SCHED_OTHER: the only policy
}

fn sched_get_priority_max(c: &mut Call<'_>) -> KResult<u64> {
    match c.a0() {
        0 | 3 | 5 => Ok(0),
        1 | 2 => Ok(99),
        _ => Err(Errno::EINVAL),
    }
}

fn sched_get_priority_min(c: &mut Call<'_>) -> KResult<u64> {
    match c.a0() {
        0 | 3 | 5 => Ok(0),
        1 | 2 => Ok(1),
        _ => Err(Errno::EINVAL),
    }
}
