//! poll, ppoll, select and pselect6: readiness of many files at once, with a deadline and
//! (ppoll, pselect6) a temporary signal mask.

use super::*;

/// Waits until any of `fds` (fd, events) is ready; returns the revents per entry.
fn poll_files(fds: &[(i32, u32)], deadline: Option<u64>) -> KResult<Vec<u32>> {
    let p = me()?;
    let files: Vec<Option<Arc<File>>> = fds
        .iter()
        .map(|&(fd, _)| {
            if fd < 0 {
                None
            } else {
                p.files.lock().get(fd).ok()
            }
        })
        .collect();
    let check = |out: &mut Vec<u32>| -> usize {
        out.clear();
        let mut n = 0;
        for (i, &(fd, ev)) in fds.iter().enumerate() {
            let r = match (&files[i], fd < 0) {
                (_, true) => 0,
                (None, false) => POLLNVAL,
                (Some(f), false) => {
                    f.poll(ev | POLLHUP | POLLERR) & (ev | POLLHUP | POLLERR | POLLNVAL)
                }
            };
            if r != 0 {
                n += 1;
            }
            out.push(r);
        }
        n
    };
    let mut out = Vec::new();
    if check(&mut out) > 0 || deadline.is_some_and(|d| d <= crate::time::now_ns()) {
        return Ok(out);
    }
    let queues: Vec<&crate::sched::wait::WaitQueue> = files
        .iter()
        .flatten()
        .filter_map(|f| f.wait_queue())
        .collect();
    let mut intr = false;
    let _ = crate::sched::wait::wait_any(
        &queues,
        || {
            if crate::proc::signal::pending_for_current() {
                intr = true;
                return true;
            }
            check(&mut out) > 0
        },
        deadline,
    );
    if intr {
        return Err(Errno::ERESTARTSYS);
    }
    check(&mut out);
    Ok(out)
}

fn do_poll(addr: u64, n: u64, deadline: Option<u64>) -> KResult<u64> {
    if n > 4096 {
        return Err(Errno::EINVAL);
    }
    let mut fds = Vec::new();
    for i in 0..n {
        let p: abi::Pollfd = read_val(addr + i * size_of::<abi::Pollfd>() as u64)?;
        fds.push((p.fd, u32::from(p.events as u16)));
    }
    let rev = poll_files(&fds, deadline)?;
    let mut ready = 0;
    for (i, r) in rev.iter().enumerate() {
        let at = addr + (i * size_of::<abi::Pollfd>() + offset_of!(abi::Pollfd, revents)) as u64;
        write_val(at, &(*r as i16))?;
        if *r != 0 {
            ready += 1;
        }
    }
    Ok(ready)
}

pub(super) fn poll(c: &mut Call<'_>) -> KResult<u64> {
    let t = c.i32(2);
    let deadline = (t >= 0).then(|| crate::time::now_ns() + t as u64 * 1_000_000);
    do_poll(c.a0(), c.a1(), deadline)
}

fn ts_deadline(addr: u64) -> KResult<Option<u64>> {
    if addr == 0 {
        return Ok(None);
    }
    let ts: abi::Timespec = read_val(addr)?;
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return Err(Errno::EINVAL);
    }
    Ok(Some(
        crate::time::now_ns() + ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64,
    ))
}

pub(super) fn ppoll(c: &mut Call<'_>) -> KResult<u64> {
    let deadline = ts_deadline(c.a2())?;
    let (a, n, m, size) = (c.a0(), c.a1(), c.a3(), c.a4());
    crate::syscall::signal::with_sigmask(m, size, || do_poll(a, n, deadline)).map_err(|e| {
        if e == Errno::ERESTARTSYS {
            Errno::EINTR
        } else {
            e
        }
    })
}

fn do_select(n: u64, r: u64, w: u64, e: u64, deadline: Option<u64>) -> KResult<u64> {
    if n > 1024 {
        return Err(Errno::EINVAL);
    }
    let words = (n as usize).div_ceil(64);
    let read_set = |a: u64| -> KResult<Vec<u64>> {
        (0..words)
            .map(|i| {
                if a == 0 {
                    Ok(0)
                } else {
                    read_val(a + i as u64 * 8)
                }
            })
            .collect()
    };
    let (rs, ws, es) = (read_set(r)?, read_set(w)?, read_set(e)?);
    let mut fds = Vec::new();
    for fd in 0..n as usize {
        let bit = |s: &Vec<u64>| s[fd / 64] & (1 << (fd % 64)) != 0;
        let mut ev = 0;
        if bit(&rs) {
            ev |= POLLIN;
        }
        if bit(&ws) {
            ev |= POLLOUT;
        }
        if bit(&es) {
            ev |= POLLPRI;
        }
        if ev != 0 {
            fds.push((fd as i32, ev));
        }
    }
    let rev = poll_files(&fds, deadline)?;
    if rev.contains(&POLLNVAL) {
        return Err(Errno::EBADF);
    }
    let mut out = [
        alloc::vec![0u64; words],
        alloc::vec![0u64; words],
        alloc::vec![0u64; words],
    ];
    let mut count = 0;
    for (i, &(fd, ev)) in fds.iter().enumerate() {
        let got = rev[i];
        let fdu = fd as usize;
        for (k, mask) in [
            (0, POLLIN | POLLHUP | POLLERR),
            (1, POLLOUT | POLLERR),
            (2, POLLPRI),
        ] {
            let wanted = [POLLIN, POLLOUT, POLLPRI][k];
            if ev & wanted != 0 && got & mask != 0 {
                out[k][fdu / 64] |= 1 << (fdu % 64);
                count += 1;
            }
        }
    }
    for (k, a) in [r, w, e].iter().enumerate() {
        if *a != 0 {
            for (i, word) in out[k].iter().enumerate() {
                write_val(*a + i as u64 * 8, word)?;
            }
        }
    }
    Ok(count)
}

pub(super) fn select(c: &mut Call<'_>) -> KResult<u64> {
    let deadline = if c.a4() == 0 {
        None
    } else {
        let tv: abi::Timeval = read_val(c.a4())?;
        if tv.tv_sec < 0 || !(0..1_000_000).contains(&tv.tv_usec) {
            return Err(Errno::EINVAL);
        }
        Some(crate::time::now_ns() + tv.tv_sec as u64 * 1_000_000_000 + tv.tv_usec as u64 * 1000)
    };
    do_select(c.a0(), c.a1(), c.a2(), c.a3(), deadline)
}

pub(super) fn pselect6(c: &mut Call<'_>) -> KResult<u64> {
    let deadline = ts_deadline(c.a4())?;
    // The sixth argument points at `struct { const sigset_t *ss; size_t ss_len; }`.
    let (mask_addr, size) = if c.a5() != 0 {
        let [ss, len]: [u64; 2] = read_val(c.a5())?;
        (ss, len)
    } else {
        (0, 0)
    };
    let (n, r, w, e) = (c.a0(), c.a1(), c.a2(), c.a3());
    crate::syscall::signal::with_sigmask(mask_addr, size, || do_select(n, r, w, e, deadline))
        .map_err(|e| {
            if e == Errno::ERESTARTSYS {
                Errno::EINTR
            } else {
                e
            }
        })
}
