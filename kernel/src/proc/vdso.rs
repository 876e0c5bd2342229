//! The vDSO every process gets, as on Linux: `kernel/vdso/vdso.c` (built by kernel/build.rs)
//! mapped read+execute at [`VDSO_AT`] with the clock page (`time::user_clock`) read-only
//! just below it, and announced in the auxiliary vector as `AT_SYSINFO_EHDR`; glibc and
//! musl then answer `clock_gettime`, `gettimeofday`, `time` and `getcpu` without a system
//! call. Both appear in `/proc/PID/maps` as `[vvar]` and `[vdso]`.

use crate::errno::KResult;
use crate::mm::uspace::{AddressSpace, ImagePages, PROT_EXEC, PROT_READ};

/// The vDSO as linked (at address 0).
#[cfg(target_arch = "x86_64")]
static IMAGE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/vdso.so"));
/// Whether [`IMAGE`] is an ELF vDSO with the clock page below it (`AT_SYSINFO_EHDR`).
#[cfg(target_arch = "x86_64")]
const IS_VDSO: bool = true;
/// No arm64 vDSO yet (kernel/build.rs would need an aarch64 cross compiler): processes make
/// system calls, as without `AT_SYSINFO_EHDR` on Linux. The page holds only the signal
/// return trampoline Linux keeps in its arm64 vDSO (`mov x8, #139` (rt_sigreturn);
/// `svc #0`), where handlers return when `sa_restorer` is not given — glibc never gives one
/// there ([`SIGRETURN_AT`]).
#[cfg(not(target_arch = "x86_64"))]
static IMAGE: &[u8] = &[0x68, 0x11, 0x80, 0xd2, 0x01, 0x00, 0x00, 0xd4];
#[cfg(not(target_arch = "x86_64"))]
const IS_VDSO: bool = false;

const PAGE: u64 = 4096;
/// Where the clock page goes; the vDSO follows it (the vDSO reaches it at -4096).
pub const VVAR_AT: u64 = 0x7fff_f7ff_0000;
pub const VDSO_AT: u64 = VVAR_AT + PAGE;
/// aarch64: the signal return trampoline, the page's first instruction (see [`IMAGE`]).
pub const SIGRETURN_AT: u64 = VDSO_AT;

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
/// vDSO's address for `AT_SYSINFO_EHDR`, or None (then the process uses system calls).
pub fn map(aspace: &AddressSpace) -> Option<u64> {
    if !IS_VDSO {
        // The trampoline page alone; no vDSO to announce.
        if let Some(img) = pages()
            && let Err(e) = aspace.map_image(img)
        {
            log::warn!("vdso: cannot map the signal return page ({e:?})");
        }
        return None;
    }
    let clock = crate::time::user_clock::frame()?;
    let img = pages()?;
    aspace.map_kernel_frame(VVAR_AT, clock, "[vvar]").ok()?;
    match aspace.map_image(img) {
        Ok(()) => Some(VDSO_AT),
        Err(e) => {
            log::warn!("vdso: cannot map it ({e:?})");
            let _ = aspace.unmap(VVAR_AT, VVAR_AT + PAGE);
            None
        }
    }
}
