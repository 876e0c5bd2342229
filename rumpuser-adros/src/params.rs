//! `rumpuser_getparam`: the two mandatory keys (`_RUMPUSER_NCPU`, `_RUMPUSER_HOSTNAME`),
//! other `_`-names rejected with `EINVAL`, and everything else (`RUMP_THREADS`,
//! `RUMP_VERBOSE`, `RUMP_MEMLIMIT`, …) looked up in the host's configuration (`ENOENT` when
//! unset). Values are NUL-terminated; a too-small buffer is `ERANGE`.

#![forbid(unsafe_code)]

use alloc::format;
use alloc::string::String;

use crate::errno::Errno;
use crate::host::Host;

pub const PARAM_NCPU: &str = "_RUMPUSER_NCPU";
pub const PARAM_HOSTNAME: &str = "_RUMPUSER_HOSTNAME";

pub fn lookup(host: &dyn Host, name: &str) -> Result<String, Errno> {
    match name {
        PARAM_NCPU => Ok(format!("{}", host.ncpu().max(1))),
        PARAM_HOSTNAME => Ok(host.hostname()),
        n if n.starts_with('_') => Err(Errno::EINVAL),
        n => host.getenv(n).ok_or(Errno::ENOENT),
    }
}

/// Copies the value of `name` into `buf` with a terminating NUL.
pub fn getparam(host: &dyn Host, name: &str, buf: &mut [u8]) -> Result<(), Errno> {
    let v = lookup(host, name)?;
    let b = v.as_bytes();
    if b.len() + 1 > buf.len() {
        return Err(Errno::ERANGE);
    }
    buf[..b.len()].copy_from_slice(b);
    buf[b.len()] = 0;
    Ok(())
}
