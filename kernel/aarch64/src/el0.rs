//! The user-mode check of the aarch64 milestone: a thread enters EL0 with its own address
//! space (the core's `mm::uspace` on TTBR0) and runs a small program assembled into this
//! image. Its `svc` calls reach the registered hooks (`write` to fd 1, `exit`), its first
//! touch of a stack page is a data abort the fault hook resolves (demand-zero), and it
//! spins long enough for timer interrupts to arrive at EL0. A second program reads
//! address 0: the fault hook refuses, and the exception hook ends that thread.

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use adros_core::arch::TrapFrame;
use adros_core::arch::aarch64::{exceptions, upt, user};
use adros_core::arch::hooks::{UserHooks, register};
use adros_core::mm::uspace::{AddressSpace, PAGE, PROT_EXEC, PROT_READ, PROT_WRITE, STACK_TOP};
use adros_core::sched;
use adros_core::sync::spin::IrqSpinLock;

core::arch::global_asm!(
    r#"
.section .rodata.adros_el0, "a"
.balign 4096
.global adros_el0_prog
adros_el0_prog:
    mov     x0, #1
    adr     x1, 2f
    mov     x2, #15
    mov     x8, #64             // write(1, "hello from EL0\n", 15)
    svc     #0
    mov     x19, x0
    sub     sp, sp, #8192       // a stack page nothing has touched: demand-zero
    str     x19, [sp]
    ldr     x20, [sp]
    add     sp, sp, #8192
    movz    x21, #0x400, lsl #16
4:  subs    x21, x21, #1        // spin: timer interrupts arrive at EL0
    b.ne    4b
    add     x0, x19, x20        // exit(15 + 15)
    mov     x8, #93
    svc     #0
    brk     #1                  // exit does not return
2:  .ascii  "hello from EL0\n"
    .balign 4
.global adros_el0_bad
adros_el0_bad:
    mov     x1, #0
    ldr     x0, [x1]            // address 0: never mapped
    brk     #2
.global adros_el0_end
adros_el0_end:
"#
);

unsafe extern "C" {
    static adros_el0_prog: u8;
    static adros_el0_bad: u8;
    static adros_el0_end: u8;
}

const CODE: u64 = 0x40_0000;

static SPACE: IrqSpinLock<Option<&'static AddressSpace>> = IrqSpinLock::new(None);
static OUTPUT: IrqSpinLock<String> = IrqSpinLock::new(String::new());
static EXIT: AtomicU64 = AtomicU64::new(u64::MAX);
static SYSCALLS: AtomicU64 = AtomicU64::new(0);
static FAULTS_RESOLVED: AtomicU64 = AtomicU64::new(0);
static RETURNS: AtomicU64 = AtomicU64::new(0);
static BAD: IrqSpinLock<Option<(u64, u64, u64)>> = IrqSpinLock::new(None);

fn space() -> &'static AddressSpace {
    SPACE.lock().expect("the EL0 thread's address space")
}

fn syscall(f: &mut TrapFrame) {
    SYSCALLS.fetch_add(1, Ordering::Relaxed);
    match f.x[8] {
        64 => {
            let (fd, buf, len) = (f.x[0], f.x[1], f.x[2].min(4096));
            if fd != 1 || !space().check_range(buf, len, false) {
                f.x[0] = (-14i64) as u64; // EFAULT
                return;
            }
            let mut bytes = Vec::with_capacity(len as usize);
            for i in 0..len {
                // SAFETY: `check_range` found [buf, buf + len) inside readable VMAs of the
                // address space loaded in TTBR0; a page not present yet faults and is
                // filled by the fault hook, as for a user access.
                bytes.push(unsafe { ((buf + i) as *const u8).read_volatile() });
            }
            OUTPUT.lock().push_str(&String::from_utf8_lossy(&bytes));
            f.x[0] = len;
        }
        93 => {
            EXIT.store(f.x[0], Ordering::SeqCst);
            sched::thread::exit_current();
        }
        _ => f.x[0] = (-38i64) as u64, // ENOSYS
    }
}

fn return_to_user(_f: &mut TrapFrame) {
    RETURNS.fetch_add(1, Ordering::Relaxed);
}

fn user_fault(addr: u64, write: bool, exec: bool) -> bool {
    let ok = space().handle_fault(addr, write, exec).is_ok();
    if ok {
        FAULTS_RESOLVED.fetch_add(1, Ordering::Relaxed);
    }
    ok
}

fn user_exception(f: &mut TrapFrame) {
    *BAD.lock() = Some((f.esr, f.far, f.elr));
    sched::thread::exit_current();
}

/// Runs both programs; returns a line saying what happened, or why it failed.
pub fn check() -> Result<String, String> {
    register(UserHooks {
        syscall,
        return_to_user,
        user_fault,
        user_exception,
    });
    // Addresses only: nothing is read through these yet.
    let (prog, bad, end) = (
        &raw const adros_el0_prog as u64,
        &raw const adros_el0_bad as u64,
        &raw const adros_el0_end as u64,
    );
    // SAFETY: [prog, end) is the assembled programs, in this image's read-only data.
    let code = unsafe { core::slice::from_raw_parts(prog as *const u8, (end - prog) as usize) };
    let space: &'static AddressSpace = alloc::boxed::Box::leak(alloc::boxed::Box::new(
        AddressSpace::new().map_err(|e| alloc::format!("address space: {e:?}"))?,
    ));
    space
        .map_anon(CODE, CODE + PAGE, PROT_READ | PROT_EXEC, "el0-code")
        .and_then(|_| space.write_bytes(CODE, code))
        .and_then(|_| {
            space.map_anon(
                STACK_TOP - 16 * PAGE,
                STACK_TOP,
                PROT_READ | PROT_WRITE,
                "[stack]",
            )
        })
        .map_err(|e| alloc::format!("mapping the programs: {e:?}"))?;
    *SPACE.lock() = Some(space);
    let saved = upt::active_root();
    let irqs0 = exceptions::irqs_from_el0();
    let run = |entry: u64| {
        sched::thread::spawn_on("el0", 0, move || {
            space.activate();
            adros_core::arch::aarch64::cpu::sync_icache(CODE, PAGE);
            user::enter(&user::user_frame(entry, STACK_TOP))
        })
        .join()
    };
    let bad_entry = CODE + (bad - prog);
    run(CODE);
    run(bad_entry);
    upt::activate(saved);
    let out = OUTPUT.lock().clone();
    let exit = EXIT.load(Ordering::SeqCst);
    let (calls, faults, returns, irqs) = (
        SYSCALLS.load(Ordering::Relaxed),
        FAULTS_RESOLVED.load(Ordering::Relaxed),
        RETURNS.load(Ordering::Relaxed),
        exceptions::irqs_from_el0() - irqs0,
    );
    let reported = *BAD.lock();
    let summary = alloc::format!(
        "el0: wrote {out:?}, exit status {exit}; {calls} system calls, {faults} faults resolved, {returns} returns to EL0, {irqs} interrupts taken at EL0; address 0 read: {}",
        reported.map_or(
            String::from("not reported"),
            |(esr, far, elr)| alloc::format!(
                "exception class {:#x} at {far:#x} (pc {elr:#x}), thread ended",
                (esr >> 26) & 0x3f
            )
        )
    );
    if out != "hello from EL0\n" || exit != 30 || calls != 2 || faults == 0 || irqs == 0 {
        return Err(summary);
    }
    // The load at address 0 is the second instruction of the bad program: a data abort
    // from EL0 (class 0x24) at FAR 0.
    match reported {
        Some((esr, 0, elr)) if (esr >> 26) & 0x3f == 0x24 && elr == bad_entry + 4 => Ok(summary),
        _ => Err(summary),
    }
}
