//! The `rumpcomp_pci_*` hypercalls rump's PCI components call (`NB:sys/rump/dev/lib/libpci/
//! pci_user.h`, with the optional `DMAFREE` and `IOSPACE` features that our
//! `buildrump/rumpcomp_userfeatures_pci.h` enables). Each is a thin shim onto the
//! [`Host`](crate::Host)'s PCI methods; a host without PCI answers `ENOSYS`/NULL.

// Safety contract of every function here: called by the rump kernel (C) as rumpuser(3) /
// pci_user.h specify — pointers valid for the documented access, lock objects from the
// matching `*_init` and not yet destroyed.
#![allow(clippy::missing_safety_doc)]

use core::ffi::{c_int, c_uint, c_ulong, c_void};
use core::ptr;

use crate::errno::{Errno, ret};
use crate::host::{self, IrqHandler, PciAddr};

/// `struct rumpcomp_pci_dmaseg`.
#[repr(C)]
pub struct DmaSeg {
    pub ds_pa: c_ulong,
    pub ds_len: c_ulong,
    pub ds_vacookie: c_ulong,
}

fn addr(bus: c_uint, dev: c_uint, fun: c_uint) -> PciAddr {
    PciAddr { bus, dev, fun }
}

fn valid(a: PciAddr, reg: c_int) -> bool {
    a.dev < 32 && a.fun < 8 && a.bus < 256 && (0..4096).contains(&reg) && reg % 4 == 0
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpcomp_pci_confread(
    bus: c_uint,
    dev: c_uint,
    fun: c_uint,
    reg: c_int,
    val: *mut c_uint,
) -> c_int {
    let a = addr(bus, dev, fun);
    if val.is_null() || !valid(a, reg) {
        return Errno::EINVAL.code();
    }
    match host::host().pci_conf_read(a, reg as u32) {
        Ok(v) => {
            // SAFETY: non-null out-pointer from rump's pci code.
            unsafe { val.write(v) };
            0
        }
        Err(e) => {
            // SAFETY: as above; absent functions read as all-ones, like real hardware.
            unsafe { val.write(0xffff_ffff) };
            e.code()
        }
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpcomp_pci_confwrite(
    bus: c_uint,
    dev: c_uint,
    fun: c_uint,
    reg: c_int,
    val: c_uint,
) -> c_int {
    let a = addr(bus, dev, fun);
    if !valid(a, reg) {
        return Errno::EINVAL.code();
    }
    ret(host::host().pci_conf_write(a, reg as u32, val))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpcomp_pci_map(pa: c_ulong, len: c_ulong) -> *mut c_void {
    if len == 0 {
        return ptr::null_mut();
    }
    host::host()
        .pci_map(pa, len)
        .map_or(ptr::null_mut(), |p| p.as_ptr().cast())
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpcomp_pci_iospace_init() -> c_int {
    ret(host::host().pci_iospace_init())
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpcomp_pci_dmalloc(
    size: usize,
    align: usize,
    pap: *mut c_ulong,
    vap: *mut c_ulong,
) -> c_int {
    if pap.is_null() || vap.is_null() || size == 0 || (align != 0 && !align.is_power_of_two()) {
        return Errno::EINVAL.code();
    }
    match host::host().pci_dmalloc(size, align.max(1)) {
        Ok(b) => {
            // SAFETY: non-null out-pointers from rump's bus_dma code.
            unsafe {
                pap.write(b.pa);
                vap.write(b.va as c_ulong);
            }
            0
        }
        Err(e) => e.code(),
    }
}

/// `vacookie` is the *virtual* address from `rumpcomp_pci_dmalloc` (what rump's bus_dma passes).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpcomp_pci_dmafree(vacookie: c_ulong, size: usize) {
    host::host().pci_dmafree(vacookie as usize, size);
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpcomp_pci_dmamem_map(
    segs: *mut DmaSeg,
    nseg: usize,
    totlen: usize,
    vap: *mut *mut c_void,
) -> c_int {
    if segs.is_null() || nseg == 0 || vap.is_null() {
        return Errno::EINVAL.code();
    }
    // SAFETY: rump passes nseg segments.
    let segs = unsafe { core::slice::from_raw_parts(segs, nseg) };
    // Small fixed list: rump maps at most a handful of segments at once.
    let mut v: alloc::vec::Vec<(u64, u64)> = alloc::vec::Vec::with_capacity(nseg);
    v.extend(segs.iter().map(|s| (s.ds_pa, s.ds_len)));
    match host::host().pci_dmamem_map(&v, totlen) {
        Ok(p) => {
            // SAFETY: non-null out-pointer.
            unsafe { vap.write(p.as_ptr().cast()) };
            0
        }
        Err(e) => e.code(),
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpcomp_pci_virt_to_mach(va: *mut c_void) -> c_ulong {
    host::host().pci_virt_to_mach(va as usize)
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpcomp_pci_irq_map(
    bus: c_uint,
    dev: c_uint,
    fun: c_uint,
    intrline: c_int,
    cookie: c_uint,
) -> c_int {
    ret(host::host().pci_irq_map(addr(bus, dev, fun), intrline, cookie))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpcomp_pci_irq_establish(
    cookie: c_uint,
    handler: Option<IrqHandler>,
    arg: *mut c_void,
) -> *mut c_void {
    let Some(handler) = handler else {
        return ptr::null_mut();
    };
    host::host()
        .pci_irq_establish(cookie, handler, arg)
        .map_or(ptr::null_mut(), |p| p.as_ptr())
}
