//! Host files: `rumpuser_open`/`close`/`getfileinfo`, the synchronous vectored I/O
//! (`rumpuser_iovread`/`iovwrite`) and `rumpuser_syncfd`.
//!
//! Safety contract: as for every hypercall (see [`super`]).

use super::*;

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_open(
    path: *const c_char,
    ruflags: c_int,
    fdp: *mut c_int,
) -> c_int {
    let path = match path_arg(path) {
        Ok(p) => p,
        Err(e) => return e.code(),
    };
    let (read, write) = match ruflags & RUMPUSER_OPEN_ACCMODE {
        RUMPUSER_OPEN_RDONLY => (true, false),
        RUMPUSER_OPEN_WRONLY => (false, true),
        RUMPUSER_OPEN_RDWR => (true, true),
        _ => return Errno::EINVAL.code(),
    };
    let known =
        RUMPUSER_OPEN_ACCMODE | RUMPUSER_OPEN_CREATE | RUMPUSER_OPEN_EXCL | RUMPUSER_OPEN_BIO;
    if ruflags & !known != 0 {
        return Errno::EINVAL.code();
    }
    let flags = OpenFlags {
        read,
        write,
        create: ruflags & RUMPUSER_OPEN_CREATE != 0,
        excl: ruflags & RUMPUSER_OPEN_EXCL != 0,
        bio: ruflags & RUMPUSER_OPEN_BIO != 0,
    };
    match hyp::without_vcpu(|| host::host().open(path, flags)) {
        Ok(fd) => {
            put(fdp, fd);
            0
        }
        Err(e) => e.code(),
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_close(fd: c_int) -> c_int {
    ret(host::host().close(fd))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_getfileinfo(
    path: *const c_char,
    sizep: *mut u64,
    ftp: *mut c_int,
) -> c_int {
    let path = match path_arg(path) {
        Ok(p) => p,
        Err(e) => return e.code(),
    };
    match host::host().file_info(path) {
        Ok((size, ft)) => {
            put(sizep, size);
            put(ftp, ft as c_int);
            0
        }
        Err(e) => e.code(),
    }
}
fn iov_slices<'a>(iov: *const RumpuserIovec, n: usize) -> Result<&'a [RumpuserIovec], Errno> {
    if n == 0 {
        return Ok(&[]);
    }
    if iov.is_null() {
        return Err(Errno::EFAULT);
    }
    // SAFETY: rump passes an array of n iovecs.
    Ok(unsafe { core::slice::from_raw_parts(iov, n) })
}

fn iov_off(off: i64) -> Option<u64> {
    if off == RUMPUSER_IOV_NOSEEK {
        None
    } else {
        Some(off as u64)
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_iovread(
    fd: c_int,
    iov: *mut RumpuserIovec,
    n: usize,
    off: i64,
    retp: *mut usize,
) -> c_int {
    let iov = match iov_slices(iov, n) {
        Ok(v) => v,
        Err(e) => return e.code(),
    };
    let h = host::host();
    let r = hyp::without_vcpu(|| {
        let mut total = 0usize;
        let mut pos = iov_off(off);
        for v in iov {
            if v.iov_len == 0 {
                continue;
            }
            if v.iov_base.is_null() {
                return Err(Errno::EFAULT);
            }
            // SAFETY: each iovec describes a writable buffer (rump's promise).
            let buf =
                unsafe { core::slice::from_raw_parts_mut(v.iov_base.cast::<u8>(), v.iov_len) };
            let got = h.read_at(fd, buf, pos)?;
            total += got;
            pos = pos.map(|p| p + got as u64);
            if got < v.iov_len {
                break;
            }
        }
        Ok(total)
    });
    match r {
        Ok(t) => {
            put(retp, t);
            0
        }
        Err(e) => e.code(),
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_iovwrite(
    fd: c_int,
    iov: *const RumpuserIovec,
    n: usize,
    off: i64,
    retp: *mut usize,
) -> c_int {
    let iov = match iov_slices(iov, n) {
        Ok(v) => v,
        Err(e) => return e.code(),
    };
    let h = host::host();
    let r = hyp::without_vcpu(|| {
        let mut total = 0usize;
        let mut pos = iov_off(off);
        for v in iov {
            if v.iov_len == 0 {
                continue;
            }
            if v.iov_base.is_null() {
                return Err(Errno::EFAULT);
            }
            // SAFETY: each iovec describes a readable buffer (rump's promise).
            let buf = unsafe { core::slice::from_raw_parts(v.iov_base.cast::<u8>(), v.iov_len) };
            let put_n = h.write_at(fd, buf, pos)?;
            total += put_n;
            pos = pos.map(|p| p + put_n as u64);
            if put_n < v.iov_len {
                break;
            }
        }
        Ok(total)
    });
    match r {
        Ok(t) => {
            put(retp, t);
            0
        }
        Err(e) => e.code(),
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_syncfd(fd: c_int, flags: c_int, _start: u64, _len: u64) -> c_int {
    if flags & RUMPUSER_SYNCFD_BOTH == 0 {
        return Errno::EINVAL.code();
    }
    if flags & RUMPUSER_SYNCFD_WRITE == 0 {
        return 0;
    }
    let f = SyncFlags {
        read: flags & RUMPUSER_SYNCFD_READ != 0,
        write: true,
        barrier: flags & RUMPUSER_SYNCFD_BARRIER != 0,
        sync: flags & RUMPUSER_SYNCFD_SYNC != 0,
    };
    ret(hyp::without_vcpu(|| host::host().sync(fd, f)))
}
