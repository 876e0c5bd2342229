//! Socket system calls: AF_UNIX (`crate::ipc::unix`) here, AF_INET handed to
//! [`super::inet`] (`crate::net::inet`); other families get EAFNOSUPPORT.

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::inet;
use super::{Call, Table};
use crate::arch::uaccess::{copy_from_user, copy_to_user, read_val, write_val};
use crate::errno::{Errno, KResult};
use crate::fs::consts::{O_CLOEXEC, O_NONBLOCK, O_RDWR};
use crate::fs::{File, FsCtx};
use crate::ipc::unix::{Cred, Inner, MAX_MSG, SOCK_DGRAM, SOCK_SEQPACKET, SOCK_STREAM, Sock};
use crate::net::socket::InetSocket;
use crate::proc::current_process;

const AF_UNIX: u64 = 1;
const SOL_SOCKET: u64 = 1;
const SO_TYPE: u64 = 3;
const SO_ERROR: u64 = 4;
const SO_SNDBUF: u64 = 7;
const SO_RCVBUF: u64 = 8;
const SO_PEERCRED: u64 = 17;
const SO_ACCEPTCONN: u64 = 30;
const SO_PROTOCOL: u64 = 38;
const SO_DOMAIN: u64 = 39;
const SCM_RIGHTS: i32 = 1;

const MSG_PEEK: u32 = 2;
const MSG_CTRUNC: u32 = 8;
const MSG_TRUNC: u32 = 0x20;
const MSG_DONTWAIT: u32 = 0x40;
const MSG_NOSIGNAL: u32 = 0x4000;
const MSG_CMSG_CLOEXEC: u32 = 0x4000_0000;

/// The most one stream send or receive moves.
const STREAM_CHUNK: usize = 256 * 1024;
/// The most descriptors one SCM_RIGHTS message carries (Linux: SCM_MAX_FD).
const MAX_RIGHTS: usize = 253;

pub fn register(t: &mut Table) {
    t.add(41, "socket", socket);
    t.add(42, "connect", connect);
    t.add(43, "accept", accept);
    t.add(44, "sendto", sendto);
    t.add(45, "recvfrom", recvfrom);
    t.add(46, "sendmsg", sendmsg);
    t.add(47, "recvmsg", recvmsg);
    t.add(48, "shutdown", shutdown);
    t.add(49, "bind", bind);
    t.add(50, "listen", listen);
    t.add(51, "getsockname", getsockname);
    t.add(52, "getpeername", getpeername);
    t.add(53, "socketpair", socketpair);
    t.add(54, "setsockopt", setsockopt);
    t.add(55, "getsockopt", getsockopt);
    t.add(288, "accept4", accept4);
    t.add(299, "recvmmsg", recvmmsg);
    t.add(307, "sendmmsg", sendmmsg);
}

fn ctx() -> KResult<FsCtx> {
    Ok(current_process().ok_or(Errno::ESRCH)?.fs_ctx())
}

fn cred() -> Cred {
    current_process().map_or(Cred::default(), |p| {
        let c = *p.creds.lock();
        Cred {
            pid: p.pid,
            uid: c.euid,
            gid: c.egid,
        }
    })
}

/// (type, nonblock, cloexec) from socket()'s type argument.
fn parse_type(domain: u64, ty: u64, proto: u64) -> KResult<(u32, bool, bool)> {
    if domain != AF_UNIX {
        return Err(Errno::EAFNOSUPPORT);
    }
    let ty = ty as u32;
    if ty & !(0xf | O_NONBLOCK | O_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let base = ty & 0xf;
    if !matches!(base, SOCK_STREAM | SOCK_DGRAM | SOCK_SEQPACKET) {
        return Err(Errno::ESOCKTNOSUPPORT);
    }
    if proto != 0 && proto != AF_UNIX {
        return Err(Errno::EPROTONOSUPPORT);
    }
    Ok((base, ty & O_NONBLOCK != 0, ty & O_CLOEXEC != 0))
}

fn new_file(s: Sock, nonblock: bool) -> Arc<File> {
    File::new_anon(Arc::new(s), O_RDWR | if nonblock { O_NONBLOCK } else { 0 })
}

fn socket(c: &mut Call<'_>) -> KResult<u64> {
    if c.a0() == inet::AF_INET || c.a0() == inet::AF_INET6 {
        return inet::socket(c.a0(), c.a1(), c.a2());
    }
    let (ty, nb, ce) = parse_type(c.a0(), c.a1(), c.a2())?;
    super::events::install(new_file(Sock(Inner::new(ty, cred())), nb), ce)
}

fn socketpair(c: &mut Call<'_>) -> KResult<u64> {
    if c.a0() == inet::AF_INET || c.a0() == inet::AF_INET6 {
        // Linux: AF_INET/AF_INET6 sockets exist but cannot be made in pairs.
        return Err(Errno::EOPNOTSUPP);
    }
    let (ty, nb, ce) = parse_type(c.a0(), c.a1(), c.a2())?;
    let (a, b) = Inner::pair(ty, cred());
    let p = current_process().ok_or(Errno::ESRCH)?;
    let (fa, fb) = {
        let mut t = p.files.lock();
        let fa = t.insert(new_file(Sock(a), nb), ce)?;
        match t.insert(new_file(Sock(b), nb), ce) {
            Ok(fb) => (fa, fb),
            Err(e) => {
                let _ = t.remove(fa);
                return Err(e);
            }
        }
    };
    if let Err(e) = write_val(c.a3(), &[fa, fb]) {
        let mut t = p.files.lock();
        let _ = t.remove(fa);
        let _ = t.remove(fb);
        return Err(e);
    }
    Ok(0)
}

/// Runs `op` if `fd` is an AF_INET socket (None: it is not one).
fn on_inet<T>(
    fd: i32,
    op: impl FnOnce(&File, &dyn InetSocket) -> KResult<T>,
) -> KResult<Option<T>> {
    let f = current_process()
        .ok_or(Errno::ESRCH)?
        .files
        .lock()
        .get(fd)?;
    match inet::of(&f) {
        Some(s) => op(&f, s).map(Some),
        None => Ok(None),
    }
}

/// The socket behind `fd` (ENOTSOCK if it is not one).
fn sock(fd: i32) -> KResult<(Arc<File>, Arc<Inner>)> {
    let f = current_process()
        .ok_or(Errno::ESRCH)?
        .files
        .lock()
        .get(fd)?;
    let s = f
        .anon()
        .and_then(|a| a.as_any().downcast_ref::<Sock>())
        .map(|s| s.0.clone())
        .ok_or(Errno::ENOTSOCK)?;
    Ok((f, s))
}

/// `sun_path` from a `sockaddr_un` of `len` bytes: a path (cut at its first NUL) or an
/// abstract name (leading NUL, all `len - 2` bytes).
fn read_addr(addr: u64, len: u64) -> KResult<Vec<u8>> {
    if !(2..=110).contains(&len) {
        return Err(Errno::EINVAL);
    }
    let mut b = alloc::vec![0u8; len as usize];
    copy_from_user(&mut b, addr)?;
    if u16::from_le_bytes([b[0], b[1]]) as u64 != AF_UNIX {
        return Err(Errno::EINVAL);
    }
    let mut path = b.split_off(2);
    if path.first() != Some(&0)
        && let Some(n) = path.iter().position(|&c| c == 0)
    {
        path.truncate(n);
    }
    if path.is_empty() {
        return Err(Errno::EINVAL);
    }
    Ok(path)
}

/// Writes a `sockaddr_un` for `name` (None: unnamed) to `addr`, truncated to `*lenp`, and
/// the full length to `lenp`.
fn write_addr(addr: u64, lenp: u64, name: Option<&[u8]>) -> KResult<()> {
    if addr == 0 || lenp == 0 {
        return Ok(());
    }
    let cap: i32 = read_val(lenp)?;
    if cap < 0 {
        return Err(Errno::EINVAL);
    }
    let mut b = Vec::from((AF_UNIX as u16).to_le_bytes());
    if let Some(n) = name {
        b.extend_from_slice(n);
        if n.first() != Some(&0) {
            b.push(0);
        }
    }
    copy_to_user(addr, &b[..b.len().min(cap as usize)])?;
    write_val(lenp, &(b.len() as u32))
}

fn bind(c: &mut Call<'_>) -> KResult<u64> {
    if let Some(r) = on_inet(c.i32(0), |_, s| inet::bind(s, c))? {
        return Ok(r);
    }
    let (_, s) = sock(c.i32(0))?;
    let path = read_addr(c.a1(), c.a2())?;
    s.bind(&ctx()?, &path)?;
    Ok(0)
}

fn listen(c: &mut Call<'_>) -> KResult<u64> {
    if let Some(r) = on_inet(c.i32(0), |_, s| inet::listen(s, c))? {
        return Ok(r);
    }
    let (_, s) = sock(c.i32(0))?;
    s.listen(c.i32(1))?;
    Ok(0)
}

fn connect(c: &mut Call<'_>) -> KResult<u64> {
    if let Some(r) = on_inet(c.i32(0), |f, s| inet::connect(f, s, c))? {
        return Ok(r);
    }
    let (f, s) = sock(c.i32(0))?;
    let path = read_addr(c.a1(), c.a2())?;
    s.connect(&ctx()?, &path, f.nonblock())?;
    Ok(0)
}

fn do_accept(fd: i32, addr: u64, lenp: u64, flags: u32) -> KResult<u64> {
    if let Some(r) = on_inet(fd, |f, s| inet::accept(f, s, addr, lenp, flags))? {
        return Ok(r);
    }
    if flags & !(O_NONBLOCK | O_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let (f, s) = sock(fd)?;
    if s.ty == SOCK_DGRAM {
        return Err(Errno::EOPNOTSUPP);
    }
    let conn = s.accept(f.nonblock())?;
    let peer = conn.0.peer_name().ok().flatten();
    let nfd = super::events::install(
        new_file(conn, flags & O_NONBLOCK != 0),
        flags & O_CLOEXEC != 0,
    )?;
    if let Err(e) = write_addr(addr, lenp, peer.as_deref()) {
        if let Some(p) = current_process() {
            let _ = p.files.lock().remove(nfd as i32);
        }
        return Err(e);
    }
    Ok(nfd)
}

fn accept(c: &mut Call<'_>) -> KResult<u64> {
    do_accept(c.i32(0), c.a1(), c.a2(), 0)
}

fn accept4(c: &mut Call<'_>) -> KResult<u64> {
    do_accept(c.i32(0), c.a1(), c.a2(), c.a3() as u32)
}

fn shutdown(c: &mut Call<'_>) -> KResult<u64> {
    if let Some(r) = on_inet(c.i32(0), |_, s| inet::shutdown(s, c.a1()))? {
        return Ok(r);
    }
    let (_, s) = sock(c.i32(0))?;
    s.shutdown(c.a1() as u32)?;
    Ok(0)
}

fn getsockname(c: &mut Call<'_>) -> KResult<u64> {
    if let Some(r) = on_inet(c.i32(0), |_, s| inet::getsockname(s, c))? {
        return Ok(r);
    }
    let (_, s) = sock(c.i32(0))?;
    write_addr(c.a1(), c.a2(), s.local_name().as_deref())?;
    Ok(0)
}

fn getpeername(c: &mut Call<'_>) -> KResult<u64> {
    if let Some(r) = on_inet(c.i32(0), |_, s| inet::getpeername(s, c))? {
        return Ok(r);
    }
    let (_, s) = sock(c.i32(0))?;
    let n = s.peer_name()?;
    write_addr(c.a1(), c.a2(), n.as_deref())?;
    Ok(0)
}

fn getsockopt(c: &mut Call<'_>) -> KResult<u64> {
    if let Some(r) = on_inet(c.i32(0), |_, s| inet::getsockopt(s, c))? {
        return Ok(r);
    }
    let (_, s) = sock(c.i32(0))?;
    if c.a1() != SOL_SOCKET {
        return Err(Errno::ENOPROTOOPT);
    }
    let val: Vec<u8> = match c.a2() {
        SO_TYPE => Vec::from((s.ty as i32).to_le_bytes()),
        SO_ERROR => Vec::from(0i32.to_le_bytes()),
        SO_SNDBUF | SO_RCVBUF => Vec::from((MAX_MSG as i32).to_le_bytes()),
        SO_ACCEPTCONN => Vec::from((s.is_listening() as i32).to_le_bytes()),
        SO_DOMAIN => Vec::from((AF_UNIX as i32).to_le_bytes()),
        SO_PROTOCOL => Vec::from(0i32.to_le_bytes()),
        SO_PEERCRED => {
            let p = s.peer_cred();
            let mut v = Vec::from(p.pid.to_le_bytes());
            v.extend_from_slice(&p.uid.to_le_bytes());
            v.extend_from_slice(&p.gid.to_le_bytes());
            v
        }
        _ => return Err(Errno::ENOPROTOOPT),
    };
    let cap: i32 = read_val(c.a4())?;
    if cap < 0 {
        return Err(Errno::EINVAL);
    }
    let n = val.len().min(cap as usize);
    copy_to_user(c.a3(), &val[..n])?;
    write_val(c.a4(), &(n as u32))?;
    Ok(0)
}

fn setsockopt(c: &mut Call<'_>) -> KResult<u64> {
    if let Some(r) = on_inet(c.i32(0), |_, s| inet::setsockopt(s, c))? {
        return Ok(r);
    }
    let _ = sock(c.i32(0))?;
    if c.a1() != SOL_SOCKET {
        return Err(Errno::ENOPROTOOPT);
    }
    // Buffer sizes, SO_REUSEADDR, SO_PASSCRED…: accepted and ignored.
    Ok(0)
}

/// Raises SIGPIPE for EPIPE unless the caller passed MSG_NOSIGNAL.
fn sigpipe<T>(r: KResult<T>, flags: u32) -> KResult<T> {
    if let Err(Errno::EPIPE) = r
        && flags & MSG_NOSIGNAL == 0
        && let Some(t) = crate::proc::current_task()
    {
        crate::proc::signal::send_task(&t, crate::proc::signal::SIGPIPE);
    }
    r
}

fn do_send(
    fd: i32,
    data: &[u8],
    flags: u32,
    dest: Option<Vec<u8>>,
    rights: Vec<Arc<File>>,
) -> KResult<u64> {
    let (f, s) = sock(fd)?;
    let nb = f.nonblock() || flags & MSG_DONTWAIT != 0;
    let r = s.send(&ctx()?, data, dest.as_deref(), rights, nb);
    Ok(sigpipe(r, flags)? as u64)
}

fn send_cap(s_len: u64) -> usize {
    (s_len as usize).min(STREAM_CHUNK.max(MAX_MSG + 1))
}

fn sendto(c: &mut Call<'_>) -> KResult<u64> {
    let flags = c.a3() as u32;
    if let Some(r) = on_inet(c.i32(0), |f, s| {
        let data = inet::copy_in(c.a1(), inet::send_len(s, c.a2() as usize, STREAM_CHUNK)?)?;
        let dest = if c.a4() != 0 {
            Some(inet::read_dest(s, c.a4(), c.a5())?)
        } else {
            None
        };
        sigpipe(inet::send(f, s, &data, flags, dest), flags)
    })? {
        return Ok(r as u64);
    }
    let mut buf = alloc::vec![0u8; send_cap(c.a2())];
    copy_from_user(&mut buf, c.a1())?;
    let dest = if c.a4() != 0 {
        Some(read_addr(c.a4(), c.a5())?)
    } else {
        None
    };
    do_send(c.i32(0), &buf, c.a3() as u32, dest, Vec::new())
}

fn recvfrom(c: &mut Call<'_>) -> KResult<u64> {
    if let Some(r) = on_inet(c.i32(0), |f, s| {
        let flags = c.a3() as u32;
        let mut buf = alloc::vec![0u8; (c.a2() as usize).min(STREAM_CHUNK)];
        let (n, full, from) = inet::recv(f, s, &mut buf, flags)?;
        copy_to_user(c.a1(), &buf[..n])?;
        match from {
            Some(a) if c.a4() != 0 => inet::write_addr(s, c.a4(), c.a5(), a)?,
            None if c.a5() != 0 => write_val(c.a5(), &0u32)?,
            _ => {}
        }
        Ok(if flags & MSG_TRUNC != 0 { full } else { n } as u64)
    })? {
        return Ok(r);
    }
    let (f, s) = sock(c.i32(0))?;
    let flags = c.a3() as u32;
    let mut buf = alloc::vec![0u8; (c.a2() as usize).min(STREAM_CHUNK)];
    let (n, full, from, _rights) = s.recv(
        &mut buf,
        flags & MSG_PEEK != 0,
        f.nonblock() || flags & MSG_DONTWAIT != 0,
    )?;
    copy_to_user(c.a1(), &buf[..n])?;
    // An unnamed sender has a zero-length address (Linux); none at all for streams.
    match &from {
        Some(n) => write_addr(c.a4(), c.a5(), Some(n))?,
        None if c.a5() != 0 => write_val(c.a5(), &0u32)?,
        None => {}
    }
    Ok(if flags & MSG_TRUNC != 0 { full } else { n } as u64)
}

/// `struct msghdr` fields: (name, namelen, iov, iovlen, control, controllen).
fn msghdr(addr: u64) -> KResult<[u64; 6]> {
    let m: [u64; 7] = read_val(addr)?;
    Ok([m[0], m[1] & 0xffff_ffff, m[2], m[3], m[4], m[5]])
}

fn iovecs(addr: u64, n: u64) -> KResult<Vec<(u64, usize)>> {
    if n > 1024 {
        return Err(Errno::EMSGSIZE);
    }
    (0..n)
        .map(|i| {
            let v = read_val::<[u64; 2]>(addr + i * 16)?;
            // Linux: a length that is negative as an ssize_t is EINVAL.
            if (v[1] as i64) < 0 {
                return Err(Errno::EINVAL);
            }
            Ok((v[0], v[1] as usize))
        })
        .collect()
}

/// The most control data one sendmsg may pass (Linux: `net.core.optmem_max`).
const MAX_CONTROL: u64 = 128 * 1024;

/// Control data of an AF_INET sendmsg: copied in and its headers checked as Linux checks
/// them (ENOBUFS past [`MAX_CONTROL`], EFAULT, EINVAL for a malformed `cmsghdr` or a
/// socket-level message); what IP-level messages ask for is not acted on.
fn inet_control(addr: u64, len: u64) -> KResult<()> {
    if len == 0 {
        return Ok(());
    }
    if len > MAX_CONTROL {
        return Err(Errno::ENOBUFS);
    }
    let mut ctl = alloc::vec![0u8; len as usize];
    copy_from_user(&mut ctl, addr)?;
    let mut off = 0;
    while off + 16 <= ctl.len() {
        let clen = u64::from_le_bytes(ctl[off..off + 8].try_into().map_err(|_| Errno::EINVAL)?);
        let level = u32::from_le_bytes(
            ctl[off + 8..off + 12]
                .try_into()
                .map_err(|_| Errno::EINVAL)?,
        );
        if clen < 16 || clen > (ctl.len() - off) as u64 || u64::from(level) == SOL_SOCKET {
            return Err(Errno::EINVAL);
        }
        off += (clen as usize).next_multiple_of(8);
    }
    Ok(())
}

fn sendmsg(c: &mut Call<'_>) -> KResult<u64> {
    sendmsg_at(c.i32(0), c.a1(), c.a2() as u32)
}

fn sendmsg_at(fd: i32, maddr: u64, flags: u32) -> KResult<u64> {
    let m = msghdr(maddr)?;
    if let Some(r) = on_inet(fd, |f, s| {
        if m[5] > i32::MAX as u64 {
            return Err(Errno::ENOBUFS);
        }
        let iov = iovecs(m[2], m[3])?;
        let total = iov.iter().map(|v| v.1).fold(0usize, usize::saturating_add);
        let cap = inet::send_len(s, total, STREAM_CHUNK)?;
        let mut data = Vec::new();
        for (base, len) in iov {
            let take = len.min(cap - data.len());
            let start = data.len();
            data.resize(start + take, 0);
            copy_from_user(&mut data[start..], base)?;
        }
        let dest = if m[0] != 0 && m[1] != 0 {
            Some(inet::read_dest(s, m[0], m[1])?)
        } else {
            None
        };
        inet_control(m[4], m[5])?;
        sigpipe(inet::send(f, s, &data, flags, dest), flags)
    })? {
        return Ok(r as u64);
    }
    let mut data = Vec::new();
    for (base, len) in iovecs(m[2], m[3])? {
        let take = len.min(STREAM_CHUNK.max(MAX_MSG + 1) - data.len());
        let start = data.len();
        data.resize(start + take, 0);
        copy_from_user(&mut data[start..], base)?;
    }
    let dest = if m[0] != 0 && m[1] != 0 {
        Some(read_addr(m[0], m[1])?)
    } else {
        None
    };
    let mut rights = Vec::new();
    if m[4] != 0 && m[5] >= 16 {
        let mut ctl = alloc::vec![0u8; (m[5] as usize).min(4096)];
        copy_from_user(&mut ctl, m[4])?;
        let mut off = 0;
        while off + 16 <= ctl.len() {
            let len = u64::from_le_bytes(ctl[off..off + 8].try_into().map_err(|_| Errno::EINVAL)?)
                as usize;
            let level = i32::from_le_bytes(
                ctl[off + 8..off + 12]
                    .try_into()
                    .map_err(|_| Errno::EINVAL)?,
            );
            let ty = i32::from_le_bytes(
                ctl[off + 12..off + 16]
                    .try_into()
                    .map_err(|_| Errno::EINVAL)?,
            );
            if len < 16 || off + len > ctl.len() {
                return Err(Errno::EINVAL);
            }
            if level as u64 != SOL_SOCKET || ty != SCM_RIGHTS {
                return Err(Errno::EINVAL);
            }
            let p = current_process().ok_or(Errno::ESRCH)?;
            for ch in ctl[off + 16..off + len].chunks_exact(4) {
                let fd = i32::from_le_bytes([ch[0], ch[1], ch[2], ch[3]]);
                rights.push(p.files.lock().get(fd)?);
            }
            if rights.len() > MAX_RIGHTS {
                return Err(Errno::EINVAL);
            }
            off += len.next_multiple_of(8);
        }
    }
    do_send(fd, &data, flags, dest, rights)
}

fn recvmsg(c: &mut Call<'_>) -> KResult<u64> {
    recvmsg_at(c.i32(0), c.a1(), c.a2() as u32)
}

fn recvmsg_at(fd: i32, maddr: u64, flags: u32) -> KResult<u64> {
    let m = msghdr(maddr)?;
    if let Some(r) = on_inet(fd, |f, s| recvmsg_inet(maddr, &m, flags, f, s))? {
        return Ok(r);
    }
    let (f, s) = sock(fd)?;
    let iov = iovecs(m[2], m[3])?;
    let total = iov
        .iter()
        .map(|v| v.1)
        .fold(0usize, usize::saturating_add)
        .min(STREAM_CHUNK);
    let mut buf = alloc::vec![0u8; total];
    let (n, full, from, rights) = s.recv(
        &mut buf,
        flags & MSG_PEEK != 0,
        f.nonblock() || flags & MSG_DONTWAIT != 0,
    )?;
    let mut done = 0;
    for (base, len) in iov {
        if done >= n {
            break;
        }
        let k = len.min(n - done);
        copy_to_user(base, &buf[done..done + k])?;
        done += k;
    }
    let mut out_flags = 0u32;
    if full > n {
        out_flags |= MSG_TRUNC;
    }
    // Sender's name.
    if m[0] != 0 {
        let mut b = Vec::from((AF_UNIX as u16).to_le_bytes());
        if let Some(n) = &from {
            b.extend_from_slice(n);
            if n.first() != Some(&0) {
                b.push(0);
            }
        }
        let k = b.len().min(m[1] as usize);
        copy_to_user(m[0], &b[..k])?;
        write_val(
            maddr + 8,
            &(if from.is_some() { b.len() as u32 } else { 0 }),
        )?;
    }
    // Passed descriptors.
    let mut ctl_len = 0u64;
    if !rights.is_empty() {
        let room = if m[4] == 0 {
            0
        } else {
            (m[5] as usize).saturating_sub(16) / 4
        };
        let p = current_process().ok_or(Errno::ESRCH)?;
        let mut fds = Vec::new();
        for (i, r) in rights.into_iter().enumerate() {
            if i >= room {
                out_flags |= MSG_CTRUNC;
                break;
            }
            fds.push(p.files.lock().insert(r, flags & MSG_CMSG_CLOEXEC != 0)?);
        }
        if !fds.is_empty() {
            let len = 16 + 4 * fds.len();
            let mut b = Vec::with_capacity(len);
            b.extend_from_slice(&(len as u64).to_le_bytes());
            b.extend_from_slice(&(SOL_SOCKET as i32).to_le_bytes());
            b.extend_from_slice(&SCM_RIGHTS.to_le_bytes());
            for fd in &fds {
                b.extend_from_slice(&fd.to_le_bytes());
            }
            copy_to_user(m[4], &b)?;
            ctl_len = (len as u64).next_multiple_of(8).min(m[5]);
        }
    }
    write_val(maddr + 40, &ctl_len)?;
    write_val(maddr + 48, &out_flags)?;
    Ok(if flags & MSG_TRUNC != 0 { full } else { n } as u64)
}

fn recvmsg_inet(
    maddr: u64,
    m: &[u64; 6],
    flags: u32,
    f: &File,
    s: &dyn InetSocket,
) -> KResult<u64> {
    let iov = iovecs(m[2], m[3])?;
    let total = iov
        .iter()
        .map(|v| v.1)
        .fold(0usize, usize::saturating_add)
        .min(STREAM_CHUNK);
    let mut buf = alloc::vec![0u8; total];
    let (n, full, from) = inet::recv(f, s, &mut buf, flags)?;
    let mut done = 0;
    for (base, len) in iov {
        if done >= n {
            break;
        }
        let k = len.min(n - done);
        copy_to_user(base, &buf[done..done + k])?;
        done += k;
    }
    if m[0] != 0 {
        match from {
            Some(a) => {
                let b = inet::name_bytes(s, a);
                let k = b.len().min(m[1] as usize);
                copy_to_user(m[0], &b[..k])?;
                write_val(maddr + 8, &(b.len() as u32))?;
            }
            None => write_val(maddr + 8, &0u32)?,
        }
    }
    write_val(maddr + 40, &0u64)?;
    write_val(maddr + 48, &(if full > n { MSG_TRUNC } else { 0 }))?;
    Ok(if flags & MSG_TRUNC != 0 { full } else { n } as u64)
}

/// `struct mmsghdr`: a `msghdr` (56 bytes), then `msg_len`, padded to 64.
const MMSGHDR: u64 = 64;
/// Linux's UIO_MAXIOV: the most messages one sendmmsg/recvmmsg handles.
const MAX_MMSG: u64 = 1024;
const MSG_WAITFORONE: u32 = 0x10000;

/// sendmmsg(fd, msgvec, vlen, flags): sendmsg for each message in turn; the number sent,
/// or the first message's error when none was (Linux).
fn sendmmsg(c: &mut Call<'_>) -> KResult<u64> {
    let (fd, vec, flags) = (c.i32(0), c.a1(), c.a3() as u32);
    let n = (c.a2() as u32 as u64).min(MAX_MMSG);
    let mut done = 0;
    while done < n {
        let at = vec + done * MMSGHDR;
        match sendmsg_at(fd, at, flags) {
            Ok(k) => write_val(at + 56, &(k as u32))?,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
        done += 1;
    }
    Ok(done)
}

/// recvmmsg(fd, msgvec, vlen, flags, timeout): recvmsg for each message; with
/// MSG_WAITFORONE only the first waits. The timeout is checked (EFAULT, EINVAL) but not
/// enforced.
fn recvmmsg(c: &mut Call<'_>) -> KResult<u64> {
    let (fd, vec, flags, timeout) = (c.i32(0), c.a1(), c.a3() as u32, c.a4());
    if timeout != 0 {
        let [_, ns] = read_val::<[i64; 2]>(timeout)?;
        if !(0..1_000_000_000).contains(&ns) {
            return Err(Errno::EINVAL);
        }
    }
    let n = (c.a2() as u32 as u64).min(MAX_MMSG);
    let mut done = 0;
    while done < n {
        let at = vec + done * MMSGHDR;
        let f = if done > 0 && flags & MSG_WAITFORONE != 0 {
            flags | MSG_DONTWAIT
        } else {
            flags
        } & !MSG_WAITFORONE;
        match recvmsg_at(fd, at, f) {
            Ok(k) => write_val(at + 56, &(k as u32))?,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
        done += 1;
    }
    Ok(done)
}
