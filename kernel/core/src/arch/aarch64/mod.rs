//! aarch64 on QEMU `virt` (GICv3): the boot stub (EL2→EL1, translation tables, higher half),
//! EL1 exception vectors with a decoded fault report, the PL011 console, the GICv3, the
//! generic timer, page tables, per-CPU data (TPIDR_EL1) and the context switch — behind the
//! names the x86_64 side exports (see `arch/mod.rs` and docs/arch.md). No user mode yet.

pub mod boot;
pub mod cpu;
pub(crate) mod escape_asm;
pub mod esr;
pub mod exceptions;
pub mod gic;
pub mod paging;
pub mod panic;
pub mod percpu;
pub mod psci;
pub mod rtc;
pub mod serial;
pub mod smp;
pub mod switch;
pub mod timer;
pub mod tlb;
pub mod uaccess;
pub mod upt;
pub mod user;

mod boot_stub {
    core::arch::global_asm!(include_str!("boot.S"));
}

pub use exceptions::TrapFrame;
pub use timer::{tick_idle, tick_resume};

/// The top of the boot stub's linear map of RAM (physical 1..4 GiB at PHYS_OFFSET): the
/// frame allocator's bitmap goes below it, and RAM above it is not used yet.
pub const BOOT_MAPPED_TOP: u64 = 4 << 30;

/// Local interrupt mask (PSTATE.I).
pub mod irq {
    /// Disables IRQs and returns whether they were enabled.
    #[inline]
    pub fn save_and_disable() -> bool {
        let daif: u64;
        // SAFETY: reads PSTATE.DAIF and masks IRQs on this CPU; no memory is touched.
        unsafe {
            core::arch::asm!("mrs {}, daif", "msr daifset, #2", out(reg) daif, options(nostack, preserves_flags));
        }
        daif & (1 << 7) == 0
    }

    #[inline]
    pub fn restore(was_enabled: bool) {
        if was_enabled {
            enable();
        }
    }

    #[inline]
    pub fn enabled() -> bool {
        let daif: u64;
        // SAFETY: reads PSTATE.DAIF.
        unsafe {
            core::arch::asm!("mrs {}, daif", out(reg) daif, options(nomem, nostack, preserves_flags))
        };
        daif & (1 << 7) == 0
    }

    #[inline]
    pub fn enable() {
        // SAFETY: unmasks IRQs on this CPU; the vectors are installed before anything
        // enables them.
        unsafe { core::arch::asm!("msr daifclr, #2", options(nostack, preserves_flags)) };
    }

    /// Waits for the next interrupt, then takes it: `wfi` runs with IRQs still masked
    /// (a pending one wakes it all the same), so one arriving in between is never lost.
    #[inline]
    pub fn enable_and_halt() {
        // SAFETY: as in `enable`; `wfi` only waits.
        unsafe {
            core::arch::asm!(
                "msr daifset, #2",
                "wfi",
                "msr daifclr, #2",
                options(nostack, preserves_flags)
            )
        };
    }
}

/// The monotonic clock's counter: the generic timer's virtual count (CNTVCT_EL0).
#[inline]
pub fn clock_counter() -> u64 {
    cpu::counter()
}

/// Asks CPU `pc` to reschedule: a GICv3 software-generated interrupt.
pub fn send_resched_ipi(pc: &percpu::PerCpu) {
    gic::send_sgi(pc.mpidr, gic::SGI_RESCHED);
}

/// Ends the QEMU run with status `(code << 1) | 1`, as `isa-debug-exit` does on x86_64
/// (semihosting `SYS_EXIT`, which QEMU honours with `-semihosting-config enable=on`);
/// without semihosting, PSCI `SYSTEM_OFF` (QEMU exits 0), then halts.
pub fn qemu_exit(code: u8) -> ! {
    static EXITING: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
    if !EXITING.swap(true, core::sync::atomic::Ordering::SeqCst) && exceptions::vectors_installed()
    {
        // ADP_Stopped_ApplicationExit with the status as the subcode.
        let block: [u64; 2] = [0x20026, (u64::from(code) << 1) | 1];
        // SAFETY: `hlt #0xf000` is the AArch64 semihosting trap; QEMU reads the two-word
        // block and exits. Without semihosting it is an undefined instruction, which the
        // vectors report and which ends here again (EXITING is set), so it is tried once.
        unsafe {
            core::arch::asm!("hlt #0xf000", in("x0") 0x18u64, in("x1") block.as_ptr(), options(nostack));
        }
    }
    psci::system_off();
    halt_forever()
}

/// Stops this CPU for good.
/// Restarts the machine: PSCI `SYSTEM_RESET`; without PSCI, stops here.
pub fn reset_machine() -> ! {
    psci::system_reset();
    log::error!("reset: PSCI SYSTEM_RESET unavailable or refused; halting");
    halt_forever()
}

pub fn halt_forever() -> ! {
    loop {
        // SAFETY: masks every exception and waits; nothing else.
        unsafe { core::arch::asm!("msr daifset, #0xf", "wfi", options(nostack, nomem)) };
    }
}
