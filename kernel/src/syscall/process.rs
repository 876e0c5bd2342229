//! Process and thread calls: ids, fork/vfork/clone, execve, exit, wait4, credentials,
//! sessions and groups, uname, set_tid_address, rlimits, affinity.

use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use super::abi::{Rlimit, Rusage, SigInfoChld, Utsname, set_cstr};
use super::{Call, Table};
use crate::arch::uaccess::{copy_to_user, read_cstr, read_val, write_val};
use crate::errno::{Errno, KResult};
use crate::proc::{self, ExitStatus, current_process, current_task};
use zerocopy::FromZeros;

pub fn register(t: &mut Table) {
    t.add(39, "getpid", getpid);
    t.add(186, "gettid", gettid);
    t.add(110, "getppid", getppid);
    t.add(57, "fork", fork);
    t.add(58, "vfork", vfork);
    t.add(56, "clone", clone);
    t.add(59, "execve", execve);
    t.add(322, "execveat", execveat);
    t.add(60, "exit", exit);
    t.add(231, "exit_group", exit_group);
    t.add(61, "wait4", wait4);
    t.add(247, "waitid", waitid);
    t.add(102, "getuid", getuid);
    t.add(104, "getgid", getgid);
    t.add(107, "geteuid", geteuid);
    t.add(108, "getegid", getegid);
    t.add(105, "setuid", setuid);
    t.add(106, "setgid", setgid);
    t.add(113, "setreuid", setreuid);
    t.add(114, "setregid", setregid);
    t.add(117, "setresuid", setresuid);
    t.add(119, "setresgid", setresgid);
    t.add(118, "getresuid", getresuid);
    t.add(120, "getresgid", getresgid);
    t.add(115, "getgroups", getgroups);
    t.add(116, "setgroups", setgroups);
    t.add(109, "setpgid", setpgid);
    t.add(121, "getpgid", getpgid);
    t.add(111, "getpgrp", getpgrp);
    t.add(112, "setsid", setsid);
    t.add(124, "getsid", getsid);
    t.add(63, "uname", uname);
    t.add(218, "set_tid_address", set_tid_address);
    t.add(97, "getrlimit", getrlimit);
    t.add(160, "setrlimit", setrlimit);
    t.add(302, "prlimit64", prlimit64);
    t.add(24, "sched_yield", sched_yield);
    t.add(203, "sched_setaffinity", sched_setaffinity);
    t.add(204, "sched_getaffinity", sched_getaffinity);
    t.add(157, "prctl", prctl);
    t.add(273, "set_robust_list", set_robust_list);
    t.add(334, "rseq", rseq);
}

fn getpid(_c: &mut Call<'_>) -> KResult<u64> {
    proc::with_current_task(|t| t.map(|t| u64::from(t.process.pid)).ok_or(Errno::ESRCH))
}
fn gettid(_c: &mut Call<'_>) -> KResult<u64> {
    proc::with_current_task(|t| t.map(|t| u64::from(t.tid)).ok_or(Errno::ESRCH))
}
fn getppid(_c: &mut Call<'_>) -> KResult<u64> {
    Ok(u64::from(
        current_process()
            .ok_or(Errno::ESRCH)?
            .ppid
            .load(Ordering::Relaxed),
    ))
}

fn fork(c: &mut Call<'_>) -> KResult<u64> {
    let (child, _) = proc::fork(c.frame, 0, None, proc::TidAddrs::default(), false)?;
    Ok(u64::from(child.pid))
}

/// vfork: the child runs in the parent's memory (on its stack, too) while the parent waits
/// until the child execs or exits.
fn vfork(c: &mut Call<'_>) -> KResult<u64> {
    let (child, task) = proc::fork(c.frame, 0, None, proc::TidAddrs::default(), true)?;
    let _ = task;
    let ch = child.clone();
    child.vfork_done.wait_until(
        || ch.vfork_released.load(Ordering::Acquire) || ch.zombie.load(Ordering::Acquire),
        None,
    );
    Ok(u64::from(child.pid))
}

const CLONE_VM: u64 = 0x100;
const CLONE_VFORK: u64 = 0x4000;
const CLONE_THREAD: u64 = 0x10000;
const CLONE_SETTLS: u64 = 0x80000;
const CLONE_PARENT_SETTID: u64 = 0x100000;
const CLONE_CHILD_CLEARTID: u64 = 0x200000;
const CLONE_CHILD_SETTID: u64 = 0x1000000;

fn clone(c: &mut Call<'_>) -> KResult<u64> {
    let flags = c.a0();
    let stack = c.a1();
    let ptid = c.a2();
    let ctid = c.arg(super::arch::CLONE_CHILD_TID_ARG);
    let tls = (flags & CLONE_SETTLS != 0).then_some(c.arg(super::arch::CLONE_TLS_ARG));
    let when = |flag: u64, addr: u64| if flags & flag != 0 { addr } else { 0 };
    let ids = proc::TidAddrs {
        parent_set: when(CLONE_PARENT_SETTID, ptid),
        child_set: when(CLONE_CHILD_SETTID, ctid),
        child_clear: when(CLONE_CHILD_CLEARTID, ctid),
    };
    if flags & CLONE_THREAD != 0 {
        if flags & CLONE_VM == 0 {
            return Err(Errno::EINVAL);
        }
        let t = proc::clone_thread(c.frame, stack, tls, ids)?;
        return Ok(u64::from(t.tid));
    }
    // A new process; with CLONE_VM (posix_spawn's vfork-style clone) it shares the
    // caller's memory, and with CLONE_VFORK the caller waits until it execs or exits.
    let (child, _task) = proc::fork(c.frame, stack, tls, ids, flags & CLONE_VM != 0)?;
    if flags & CLONE_VFORK != 0 {
        let ch = child.clone();
        child.vfork_done.wait_until(
            || ch.vfork_released.load(Ordering::Acquire) || ch.zombie.load(Ordering::Acquire),
            None,
        );
    }
    Ok(u64::from(child.pid))
}

fn read_str_array(addr: u64) -> KResult<Vec<Vec<u8>>> {
    let mut v = Vec::new();
    if addr == 0 {
        return Ok(v);
    }
    for i in 0..4096u64 {
        let p: u64 = read_val(addr + i * 8)?;
        if p == 0 {
            return Ok(v);
        }
        v.push(read_cstr(p, 128 * 1024)?);
    }
    Err(Errno::E2BIG)
}

fn execve(c: &mut Call<'_>) -> KResult<u64> {
    let path = read_cstr(c.a0(), 4096)?;
    let argv = read_str_array(c.a1())?;
    let envp = read_str_array(c.a2())?;
    let path = crate::fs::bytename::from_bytes(path);
    proc::exec::execve(c.frame, None, &path, argv, envp)?;
    Ok(0)
}

fn execveat(c: &mut Call<'_>) -> KResult<u64> {
    let path = read_cstr(c.a1(), 4096)?;
    let argv = read_str_array(c.a2())?;
    let envp = read_str_array(c.a3())?;
    let path = crate::fs::bytename::from_bytes(path);
    proc::exec::execve(c.frame, Some(c.i32(0)), &path, argv, envp)?;
    Ok(0)
}

fn exit(c: &mut Call<'_>) -> KResult<u64> {
    proc::exit_thread(ExitStatus::Exited(c.a0() as u8))
}

fn exit_group(c: &mut Call<'_>) -> KResult<u64> {
    proc::exit_group(ExitStatus::Exited(c.a0() as u8))
}

const WNOHANG: u64 = 1;
const WUNTRACED: u64 = 2; // WSTOPPED for waitid
const WEXITED: u64 = 4;
const WCONTINUED: u64 = 8;
const WNOWAIT: u64 = 0x0100_0000;
const WNOTHREAD: u64 = 0x2000_0000;
const WALL: u64 = 0x4000_0000;
const WCLONE: u64 = 0x8000_0000;

fn wait4(c: &mut Call<'_>) -> KResult<u64> {
    let pid = c.i32(0) as i64;
    let opts = c.a2();
    if opts & !(WNOHANG | WUNTRACED | WCONTINUED | WNOTHREAD | WALL | WCLONE) != 0 {
        return Err(Errno::EINVAL);
    }
    let o = proc::WaitOpts {
        nohang: opts & WNOHANG != 0,
        exited: true,
        stopped: opts & WUNTRACED != 0,
        continued: opts & WCONTINUED != 0,
        nowait: false,
    };
    match proc::wait_child(pid, o)? {
        None => Ok(0),
        Some((pid, ev)) => {
            if c.a1() != 0 {
                write_val(c.a1(), &ev.wstatus())?;
            }
            if c.a3() != 0 {
                write_val(c.a3(), &Rusage::default())?; // not accounted per child: zeros
            }
            Ok(u64::from(pid))
        }
    }
}

fn waitid(c: &mut Call<'_>) -> KResult<u64> {
    let opts = c.a3();
    if opts & !(WNOHANG | WUNTRACED | WEXITED | WCONTINUED | WNOWAIT | WNOTHREAD | WALL | WCLONE)
        != 0
        || opts & (WUNTRACED | WEXITED | WCONTINUED) == 0
    {
        return Err(Errno::EINVAL);
    }
    // idtype: 0 P_ALL, 1 P_PID, 2 P_PGID
    let pid = match c.a0() {
        0 => -1,
        1 if c.a1() as i32 > 0 => c.a1() as i32 as i64,
        2 if c.a1() as i32 >= 0 => -(c.a1() as i32 as i64),
        _ => return Err(Errno::EINVAL),
    };
    // (P_PGID with id 0 is the caller's group, as wait4(0).)
    let o = proc::WaitOpts {
        nohang: opts & WNOHANG != 0,
        exited: opts & WEXITED != 0,
        stopped: opts & WUNTRACED != 0,
        continued: opts & WCONTINUED != 0,
        nowait: opts & WNOWAIT != 0,
    };
    let r = proc::wait_child(pid, o)?;
    if c.a2() != 0 {
        let mut info = SigInfoChld::new_zeroed();
        if let Some((p, ev)) = r {
            info.head.si_signo = crate::proc::signal::SIGCHLD as i32;
            let (code, status) = match ev {
                proc::WaitEvent::Exited(ExitStatus::Exited(v)) => (1i32, i32::from(v)), // CLD_EXITED
                proc::WaitEvent::Exited(ExitStatus::Signaled(s)) => (2i32, i32::from(s)), // CLD_KILLED
                proc::WaitEvent::Stopped(s) => (5i32, s as i32), // CLD_STOPPED
                proc::WaitEvent::Continued => (6i32, crate::proc::signal::SIGCONT as i32), // CLD_CONTINUED
            };
            info.head.si_code = code;
            info.si_pid = p;
            info.si_status = status;
        }
        write_val(c.a2(), &info)?;
    }
    Ok(0)
}

fn creds() -> KResult<proc::Creds> {
    Ok(*current_process().ok_or(Errno::ESRCH)?.creds.lock())
}
fn getuid(_c: &mut Call<'_>) -> KResult<u64> {
    Ok(u64::from(creds()?.uid))
}
fn getgid(_c: &mut Call<'_>) -> KResult<u64> {
    Ok(u64::from(creds()?.gid))
}
fn geteuid(_c: &mut Call<'_>) -> KResult<u64> {
    Ok(u64::from(creds()?.euid))
}
fn getegid(_c: &mut Call<'_>) -> KResult<u64> {
    Ok(u64::from(creds()?.egid))
}

/// Which of the three ids a set*id call changes (None: unchanged).
#[derive(Clone, Copy)]
struct Ids {
    real: Option<u32>,
    eff: Option<u32>,
    saved: Option<u32>,
}

/// Applies `ids` to (real, effective, saved) under POSIX rules: with privilege (effective
/// uid 0) anything goes; without, each new id must be one of the current real, effective
/// or saved ids (`setreuid`'s real id: real or effective only).
fn change_ids(
    cur: (u32, u32, u32),
    ids: Ids,
    privileged: bool,
    reuid: bool,
) -> KResult<(u32, u32, u32)> {
    let (r, e, s) = cur;
    let allowed = |v: Option<u32>, real_only: bool| {
        v.is_none_or(|v| privileged || v == r || v == e || (!real_only && v == s))
    };
    if !allowed(ids.real, reuid) || !allowed(ids.eff, false) || !allowed(ids.saved, false) {
        return Err(Errno::EPERM);
    }
    let nr = ids.real.unwrap_or(r);
    let ne = ids.eff.unwrap_or(e);
    let mut ns = ids.saved.unwrap_or(s);
    // setreuid: setting the real id, or the effective id to something other than the old
    // real id, makes the saved id the new effective id.
    if reuid && (ids.real.is_some() || ids.eff.is_some_and(|v| v != r)) {
        ns = ne;
    }
    Ok((nr, ne, ns))
}

fn set_creds(f: impl FnOnce(&mut proc::Creds) -> KResult<()>) -> KResult<u64> {
    let p = current_process().ok_or(Errno::ESRCH)?;
    let mut c = p.creds.lock();
    let mut n = *c;
    f(&mut n)?;
    *c = n;
    if let Some(ctx) = p.fs.lock().as_mut() {
        n.apply(ctx);
    }
    Ok(0)
}

fn set_uids(ids: Ids, reuid: bool) -> KResult<u64> {
    set_creds(|c| {
        (c.uid, c.euid, c.suid) = change_ids((c.uid, c.euid, c.suid), ids, c.euid == 0, reuid)?;
        Ok(())
    })
}

fn set_gids(ids: Ids, reuid: bool) -> KResult<u64> {
    set_creds(|c| {
        (c.gid, c.egid, c.sgid) = change_ids((c.gid, c.egid, c.sgid), ids, c.euid == 0, reuid)?;
        Ok(())
    })
}

fn id_arg(v: u64) -> Option<u32> {
    (v as u32 != u32::MAX).then_some(v as u32)
}

/// setuid: privileged, all three ids; otherwise only the effective id, to the real or
/// saved id.
fn setuid(c: &mut Call<'_>) -> KResult<u64> {
    let v = c.a0() as u32;
    set_creds(|cr| {
        if cr.euid == 0 {
            (cr.uid, cr.euid, cr.suid) = (v, v, v);
        } else if v == cr.uid || v == cr.suid {
            cr.euid = v;
        } else {
            return Err(Errno::EPERM);
        }
        Ok(())
    })
}
fn setgid(c: &mut Call<'_>) -> KResult<u64> {
    let v = c.a0() as u32;
    set_creds(|cr| {
        if cr.euid == 0 {
            (cr.gid, cr.egid, cr.sgid) = (v, v, v);
        } else if v == cr.gid || v == cr.sgid {
            cr.egid = v;
        } else {
            return Err(Errno::EPERM);
        }
        Ok(())
    })
}
fn setreuid(c: &mut Call<'_>) -> KResult<u64> {
    set_uids(
        Ids {
            real: id_arg(c.a0()),
            eff: id_arg(c.a1()),
            saved: None,
        },
        true,
    )
}
fn setregid(c: &mut Call<'_>) -> KResult<u64> {
    set_gids(
        Ids {
            real: id_arg(c.a0()),
            eff: id_arg(c.a1()),
            saved: None,
        },
        true,
    )
}
fn setresuid(c: &mut Call<'_>) -> KResult<u64> {
    set_uids(
        Ids {
            real: id_arg(c.a0()),
            eff: id_arg(c.a1()),
            saved: id_arg(c.a2()),
        },
        false,
    )
}
fn setresgid(c: &mut Call<'_>) -> KResult<u64> {
    set_gids(
        Ids {
            real: id_arg(c.a0()),
            eff: id_arg(c.a1()),
            saved: id_arg(c.a2()),
        },
        false,
    )
}
fn getresuid(c: &mut Call<'_>) -> KResult<u64> {
    let cr = creds()?;
    write_val(c.a0(), &cr.uid)?;
    write_val(c.a1(), &cr.euid)?;
    write_val(c.a2(), &cr.suid)?;
    Ok(0)
}
fn getresgid(c: &mut Call<'_>) -> KResult<u64> {
    let cr = creds()?;
    write_val(c.a0(), &cr.gid)?;
    write_val(c.a1(), &cr.egid)?;
    write_val(c.a2(), &cr.sgid)?;
    Ok(0)
}
/// getgroups(size, list): size 0 asks for the count; a smaller size than the count is
/// EINVAL.
fn getgroups(c: &mut Call<'_>) -> KResult<u64> {
    let cr = creds()?;
    let g = cr.groups();
    let size = c.i32(0);
    if size < 0 {
        return Err(Errno::EINVAL);
    }
    if size == 0 {
        return Ok(g.len() as u64);
    }
    if (size as usize) < g.len() {
        return Err(Errno::EINVAL);
    }
    for (i, v) in g.iter().enumerate() {
        write_val(c.a1() + 4 * i as u64, v)?;
    }
    Ok(g.len() as u64)
}
/// setgroups(size, list): root only; at most NGROUPS groups.
fn setgroups(c: &mut Call<'_>) -> KResult<u64> {
    let n = usize::try_from(c.i32(0)).map_err(|_| Errno::EINVAL)?;
    if n > proc::NGROUPS {
        return Err(Errno::EINVAL);
    }
    let mut list = [0u32; proc::NGROUPS];
    for (i, slot) in list.iter_mut().enumerate().take(n) {
        *slot = read_val(c.a1() + 4 * i as u64)?;
    }
    set_creds(|cr| {
        if cr.euid != 0 {
            return Err(Errno::EPERM);
        }
        cr.groups = list;
        cr.ngroups = n;
        Ok(())
    })
}

fn setpgid(c: &mut Call<'_>) -> KResult<u64> {
    if c.i32(1) < 0 {
        return Err(Errno::EINVAL);
    }
    let me = current_process().ok_or(Errno::ESRCH)?;
    let pid = if c.a0() == 0 { me.pid } else { c.a0() as u32 };
    let p = proc::process(pid).ok_or(Errno::ESRCH)?;
    if p.pid != me.pid && p.ppid.load(Ordering::Relaxed) != me.pid {
        return Err(Errno::ESRCH);
    }
    if (c.a1() as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    let pg = if c.a1() == 0 { pid } else { c.a1() as u32 };
    // A session leader stays in its group; a child must be in our session; a group joined
    // must exist in our session.
    if p.pid == p.sid() || p.sid() != me.sid() {
        return Err(Errno::EPERM);
    }
    if pg != p.pid && proc::pgrp_in_session(pg, me.sid()) != Some(true) {
        return Err(Errno::EPERM);
    }
    p.pgid.store(pg, Ordering::Relaxed);
    Ok(0)
}
fn getpgid(c: &mut Call<'_>) -> KResult<u64> {
    let p = if c.a0() == 0 {
        current_process()
    } else {
        proc::process(c.a0() as u32)
    }
    .ok_or(Errno::ESRCH)?;
    Ok(u64::from(p.pgid.load(Ordering::Relaxed)))
}
fn getpgrp(_c: &mut Call<'_>) -> KResult<u64> {
    Ok(u64::from(
        current_process()
            .ok_or(Errno::ESRCH)?
            .pgid
            .load(Ordering::Relaxed),
    ))
}
fn setsid(_c: &mut Call<'_>) -> KResult<u64> {
    let p = current_process().ok_or(Errno::ESRCH)?;
    if p.pgid.load(Ordering::Relaxed) == p.pid && p.pid != 1 {
        return Err(Errno::EPERM);
    }
    p.sid.store(p.pid, Ordering::Relaxed);
    p.pgid.store(p.pid, Ordering::Relaxed);
    Ok(u64::from(p.pid))
}
fn getsid(c: &mut Call<'_>) -> KResult<u64> {
    let p = if c.a0() == 0 {
        current_process()
    } else {
        proc::process(c.a0() as u32)
    }
    .ok_or(Errno::ESRCH)?;
    Ok(u64::from(p.sid.load(Ordering::Relaxed)))
}

/// The kernel release `uname` reports (a Linux 6.1 ABI; glibc checks the major version).
pub const UNAME_RELEASE: &str = "6.1.0-adros";

fn uname(c: &mut Call<'_>) -> KResult<u64> {
    let mut u = Utsname::new_zeroed();
    let host = crate::syscall::misc::hostname();
    set_cstr(&mut u.sysname, b"Linux");
    set_cstr(&mut u.nodename, host.as_bytes());
    set_cstr(&mut u.release, UNAME_RELEASE.as_bytes());
    set_cstr(&mut u.version, b"#1 SMP AdrOS 0.1.0");
    set_cstr(&mut u.machine, super::arch::UNAME_MACHINE);
    set_cstr(&mut u.domainname, b"(none)");
    write_val(c.a0(), &u)?;
    Ok(0)
}

fn set_tid_address(c: &mut Call<'_>) -> KResult<u64> {
    let t = current_task().ok_or(Errno::ESRCH)?;
    t.clear_child_tid.store(c.a0(), Ordering::Relaxed);
    Ok(u64::from(t.tid))
}

const RLIM_INFINITY: u64 = u64::MAX;

fn rlimit_of(res: u64) -> KResult<(u64, u64)> {
    Ok(match res {
        3 => (8 << 20, RLIM_INFINITY), // RLIMIT_STACK
        7 => (1024, 4096),             // RLIMIT_NOFILE
        6 => (4096, 4096),             // RLIMIT_NPROC
        0..=15 => (RLIM_INFINITY, RLIM_INFINITY),
        _ => return Err(Errno::EINVAL),
    })
}

const RLIMIT_NOFILE: u64 = 7;

/// The limits of `p`: RLIMIT_NOFILE is stored (in the descriptor table); the others are
/// fixed.
fn rlimit_get(p: &proc::Process, res: u64) -> KResult<(u64, u64)> {
    if res == RLIMIT_NOFILE {
        return Ok(p.files.lock().nofile);
    }
    rlimit_of(res)
}

/// Sets a limit of `p`: the soft limit may not exceed the hard one (EINVAL), raising the
/// hard limit needs root (EPERM), RLIMIT_NOFILE may not exceed the descriptor table's
/// hard maximum (EPERM, as Linux's nr_open). Other limits are checked and not stored.
fn rlimit_set(p: &proc::Process, res: u64, cur: u64, max: u64) -> KResult<()> {
    let (_, old_max) = rlimit_get(p, res)?;
    if cur > max {
        return Err(Errno::EINVAL);
    }
    let root = current_process().ok_or(Errno::ESRCH)?.creds.lock().euid == 0;
    if max > old_max && !root {
        return Err(Errno::EPERM);
    }
    if res == RLIMIT_NOFILE {
        if max > proc::fd::NOFILE_DEFAULT.1 {
            return Err(Errno::EPERM);
        }
        p.files.lock().nofile = (cur, max);
    }
    Ok(())
}

fn getrlimit(c: &mut Call<'_>) -> KResult<u64> {
    let p = current_process().ok_or(Errno::ESRCH)?;
    let (cur, max) = rlimit_get(&p, c.a0())?;
    write_val(
        c.a1(),
        &Rlimit {
            rlim_cur: cur,
            rlim_max: max,
        },
    )?;
    Ok(0)
}
fn setrlimit(c: &mut Call<'_>) -> KResult<u64> {
    let p = current_process().ok_or(Errno::ESRCH)?;
    rlimit_get(&p, c.a0())?;
    let new: Rlimit = read_val(c.a1())?;
    rlimit_set(&p, c.a0(), new.rlim_cur, new.rlim_max)?;
    Ok(0)
}
fn prlimit64(c: &mut Call<'_>) -> KResult<u64> {
    let p = if c.a0() == 0 {
        current_process()
    } else {
        proc::process(c.a0() as u32)
    }
    .ok_or(Errno::ESRCH)?;
    let me = current_process().ok_or(Errno::ESRCH)?;
    if p.pid != me.pid && c.a2() != 0 && me.creds.lock().euid != 0 {
        return Err(Errno::EPERM);
    }
    let (cur, max) = rlimit_get(&p, c.a1())?;
    if c.a2() != 0 {
        let new: Rlimit = read_val(c.a2())?;
        rlimit_set(&p, c.a1(), new.rlim_cur, new.rlim_max)?;
    }
    if c.a3() != 0 {
        write_val(
            c.a3(),
            &Rlimit {
                rlim_cur: cur,
                rlim_max: max,
            },
        )?;
    }
    Ok(0)
}

fn sched_yield(_c: &mut Call<'_>) -> KResult<u64> {
    crate::sched::yield_now();
    Ok(0)
}

fn sched_setaffinity(c: &mut Call<'_>) -> KResult<u64> {
    let len = c.a1() as usize;
    if len < 8 {
        return Err(Errno::EINVAL);
    }
    let mask: u64 = read_val(c.a2())?;
    let online = crate::arch::smp::online_count();
    let valid = if online >= 64 {
        u64::MAX
    } else {
        (1u64 << online) - 1
    };
    if mask & valid == 0 {
        return Err(Errno::EINVAL);
    }
    let target = if c.a0() == 0 {
        current_task()
    } else {
        proc::task(c.a0() as u32)
    }
    .ok_or(Errno::ESRCH)?;
    let me = current_task().ok_or(Errno::ESRCH)?;
    if target.tid == me.tid {
        crate::sched::thread::set_current_affinity(mask & valid);
    } else {
        return Err(Errno::EPERM);
    }
    Ok(0)
}

fn sched_getaffinity(c: &mut Call<'_>) -> KResult<u64> {
    let len = c.a1() as usize;
    if len < 8 {
        return Err(Errno::EINVAL);
    }
    let t = if c.a0() == 0 {
        current_task()
    } else {
        proc::task(c.a0() as u32)
    }
    .ok_or(Errno::ESRCH)?;
    let th = t.thread().ok_or(Errno::ESRCH)?;
    let online = crate::arch::smp::online_count();
    let valid = if online >= 64 {
        u64::MAX
    } else {
        (1u64 << online) - 1
    };
    let mask = th.affinity() & valid;
    write_val(c.a2(), &mask)?;
    Ok(8)
}

fn prctl(c: &mut Call<'_>) -> KResult<u64> {
    const PR_SET_NAME: u64 = 15;
    const PR_GET_NAME: u64 = 16;
    let p = current_process().ok_or(Errno::ESRCH)?;
    match c.a0() {
        PR_SET_NAME => {
            // Longer names are truncated to 15 bytes, as on Linux.
            let n = read_cstr(c.a1(), 4096)?;
            *p.name.lock() =
                alloc::string::String::from_utf8_lossy(&n[..n.len().min(15)]).into_owned();
            Ok(0)
        }
        PR_GET_NAME => {
            let mut b = [0u8; 16];
            let n = p.name.lock().clone();
            let l = n.len().min(15);
            b[..l].copy_from_slice(&n.as_bytes()[..l]);
            copy_to_user(c.a1(), &b)?;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

fn set_robust_list(_c: &mut Call<'_>) -> KResult<u64> {
    Ok(0)
}

fn rseq(_c: &mut Call<'_>) -> KResult<u64> {
    Err(Errno::ENOSYS)
}
