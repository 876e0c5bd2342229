//! The NetBSD rump kernel inside AdrOS: started at boot on our hypercalls
//! (`rumpuser-adros` with [`host::KernelHost`]), serving `mount -t ext2` through the VFS
//! bridge in [`vfs`].
//!
//! The components are linked only when `cargo xtask build` found a freestanding rump build
//! (`cfg(rump_linked)`); otherwise the kernel is native-only and says so at boot. `rump_init`
//! runs in its own kernel thread so boot does not wait for it; the first rump mount waits for
//! it instead. A NetBSD panic (`rumpuser_exit(RUMPUSER_PANIC)`) is contained: the stack is
//! marked dead, its mounts answer EIO, and AdrOS carries on.

pub mod audio;
pub mod host;
pub mod net;
pub mod net6;
mod netif;
pub mod netsys;
pub mod pci;
pub mod sys;
pub mod usb;
pub mod vfs;

use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use crate::errno::{Errno, KResult};
use crate::sched::wait::WaitQueue;

const NOT_LINKED: u8 = 0;
const STARTING: u8 = 1;
const READY: u8 = 2;
const FAILED: u8 = 3;
const DEAD: u8 = 4;

static STATE: AtomicU8 = AtomicU8::new(NOT_LINKED);
static INIT_NS: AtomicU64 = AtomicU64::new(0);
static READY_Q: WaitQueue = WaitQueue::new();

/// Whether NetBSD's components are linked into this kernel.
pub const LINKED: bool = cfg!(rump_linked);

/// The components linked in (empty without rump).
pub fn components() -> &'static str {
    option_env!("ADROS_RUMP_COMPONENTS").unwrap_or("")
}

/// `rump` in `/proc/drivers` terms: "ready", "starting", "failed", "dead", "not linked".
pub fn state_name() -> &'static str {
    match STATE.load(Ordering::Acquire) {
        STARTING => "starting",
        READY => "ready",
        FAILED => "failed",
        DEAD => "dead (NetBSD panicked)",
        _ => "not linked",
    }
}

/// Whether the rump stack was started at boot (linked, and not `rump=off`): it then serves
/// mounts that do not name a driver.
pub fn started() -> bool {
    STATE.load(Ordering::Acquire) != NOT_LINKED
}

/// How long `rump_init` took (ns; 0 until it finished).
pub fn init_ns() -> u64 {
    INIT_NS.load(Ordering::Relaxed)
}

/// Starts the rump kernel in a thread (once the CPUs are up: `_RUMPUSER_NCPU` is their count).
pub fn start() {
    if !LINKED {
        log::info!(
            "rump: NetBSD components not linked: native drivers only (build with NetBSD sources to add them; see README)"
        );
        return;
    }
    if crate::boot::cmdline().param("rump") == Some("off") {
        log::info!("rump: disabled on the command line (rump=off)");
        return;
    }
    rumpuser_adros::set_host(&host::HOST);
    crate::sched::thread::RUMP_EXIT_HOOK.call_once(|| sys::thread_exit_hook);
    // PCI functions NetBSD's drivers are to own must be handed over before rump_init's
    // autoconfiguration walks the bus.
    usb::assign();
    net::assign();
    audio::assign();
    STATE.store(STARTING, Ordering::Release);
    crate::sched::thread::spawn("rump_init", || {
        let t0 = crate::time::now_ns();
        let r = sys::init();
        let dt = crate::time::now_ns() - t0;
        INIT_NS.store(dt.max(1), Ordering::Relaxed);
        match r {
            Ok(()) => {
                // A log line (not the console): it comes while user space may already run.
                log::info!(
                    "rump: {} up on {} CPUs in {} ms ({})",
                    sys::version(),
                    rumpuser_adros::Host::ncpu(&host::HOST),
                    dt / 1_000_000,
                    components()
                );
                let _ =
                    STATE.compare_exchange(STARTING, READY, Ordering::AcqRel, Ordering::Acquire);
                usb::start_discovery();
                net::start();
                audio::start();
            }
            Err(e) => {
                log::error!(
                    "rump: rump_init failed: NetBSD errno {e}; rump mounts are unavailable"
                );
                let _ =
                    STATE.compare_exchange(STARTING, FAILED, Ordering::AcqRel, Ordering::Acquire);
            }
        }
        READY_Q.wake_all();
    });
}

/// Waits (up to 60 s) for `rump_init` to finish; the stack's usability.
pub fn ready() -> KResult<()> {
    let deadline = crate::time::now_ns() + 60_000_000_000;
    READY_Q.wait_until(|| STATE.load(Ordering::Acquire) != STARTING, Some(deadline));
    match STATE.load(Ordering::Acquire) {
        READY => Ok(()),
        NOT_LINKED => Err(Errno::ENODEV),
        STARTING => Err(Errno::EAGAIN),
        _ => Err(Errno::EIO),
    }
}

/// Whether the stack has died (calls into it would never return).
pub fn is_dead() -> bool {
    matches!(STATE.load(Ordering::Acquire), DEAD | FAILED)
}

/// Whether NetBSD panicked or exited after it was up (not: `rump_init` failed, where its
/// own threads may still be parked waiting for work that never comes, harmlessly).
pub fn state_is_dead() -> bool {
    STATE.load(Ordering::Acquire) == DEAD
}

/// `rumpuser_exit`: called on the thread that panicked (or asked to exit).
fn died(code: i32, panic: bool) {
    STATE.store(DEAD, Ordering::Release);
    READY_Q.wake_all();
    if panic {
        crate::println!(
            "rump: the NetBSD kernel panicked; its mounts now fail with EIO (AdrOS keeps running)"
        );
    } else {
        crate::println!("rump: the NetBSD kernel exited ({code}); its mounts now fail with EIO");
    }
}
