//! The vDSO every process gets, as on Linux: `kernel/vdso/vdso.c` (built by kernel/build.rs)
//! mapped read+execute at [`VDSO_AT`] with the clock page (`time::user_clock`) read-only
//! just below it, and announced in the auxiliary vector as `AT_SYSINFO_EHDR`; glibc and
//! musl then answer `clock_gettime`, `gettimeofday`, `time` and `getcpu` without a system
//! call. Both appear in `/proc/PID/maps` as `[vvar]` and `[vdso]`.

use crate::errno::KResult;
use crate::mm::uspace::{AddressSpace, ImagePages, PROT_EXEC, PROT_READ};

/// The vDSO as linked (at address 0): `kernel/vdso/vdso.c` on x86_64,
/// `kernel/vdso/vdso-aarch64.c` on aarch64 (Linux's arm64 names: `__kernel_clock_gettime`,
/// … and the signal return trampoline `__kernel_rt_sigreturn` at [`SIGRETURN_AT`], where
/// handlers return when `sa_restorer` is not given — glibc never gives one there).
static IMAGE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/vdso.so"));

const PAGE: u64 = 4096;
/// Where the clock page goes; the vDSO follows it (the vDSO reaches it at -4096).
pub const VVAR_AT: u64 = 0x7fff_f7ff_0000;
pub const VDSO_AT: u64 = VVAR_AT + PAGE;
/// aarch64: the signal return trampoline, `__kernel_rt_sigreturn`, which
/// `vdso/vdso-aarch64.lds` places at offset 0x1000 (see [`IMAGE`]).
pub const SIGRETURN_AT: u64 = VDSO_AT + 0x1000;

/// The vDSO's code pages, loaded once and shared by every process (copy-on-write).
static PAGES: spin::Once<Option<ImagePages>> = spin::Once::new();

fn load() -> KResult<ImagePages> {
    let scratch = AddressSpace::new()?;
    let end = VDSO_AT + (IMAGE.len() as u64).div_ceil(PAGE) * PAGE;
    scratch.map_anon(VDSO_AT, end, PROT_READ | PROT_EXEC, "[vdso]")?;
    scratch.write_bytes(VDSO_AT, IMAGE)?;
    scratch.take_image()
}

fn pages() -> Option<&'static ImagePages> {
    PAGES
        .call_once(|| {
            load()
                .inspect_err(|e| log::warn!("vdso: cannot load it ({e:?}); processes get none"))
                .ok()
        })
        .as_ref()
}

/// Maps the clock page and the vDSO into a fresh address space (`execve`); returns the
/// vDSO's address for `AT_SYSINFO_EHDR`, or None (then the process uses system calls). The
/// code stays mapped without the clock page: on aarch64 it holds the signal trampoline.
pub fn map(aspace: &AddressSpace) -> Option<u64> {
    let img = pages()?;
    if let Err(e) = aspace.map_image(img) {
        log::warn!("vdso: cannot map it ({e:?})");
        return None;
    }
    let clock = crate::time::user_clock::frame()?;
    match aspace.map_kernel_frame(VVAR_AT, clock, "[vvar]") {
        Ok(_) => Some(VDSO_AT),
        Err(e) => {
            log::warn!("vdso: cannot map the clock page ({e:?}); no AT_SYSINFO_EHDR");
            None
        }
    }
}
