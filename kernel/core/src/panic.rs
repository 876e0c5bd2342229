//! Panic and fatal-exception reporting: message, registers, symbolized backtrace, then a
//! failing QEMU exit status (`isa-debug-exit`) so a test run never hangs on a dead kernel.

use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::arch::idt::TrapFrame;
use crate::symbols::Sym;

/// QEMU exit statuses: `(code << 1) | 1`.
pub const EXIT_SUCCESS: u8 = 0x10; // QEMU exits 33
pub const EXIT_FAILURE: u8 = 0x11; // 35
pub const EXIT_PANIC: u8 = 0x12; // 37

/// The CPU reporting a panic (usize::MAX: none).
static PANIC_CPU: AtomicUsize = AtomicUsize::new(usize::MAX);
/// Other CPUs that have printed their state and stopped.
static STOPPED: AtomicUsize = AtomicUsize::new(0);
/// Serialises the stopped CPUs' reports.
static REPORT_LOCK: AtomicBool = AtomicBool::new(false);

pub fn is_panicking() -> bool {
    PANIC_CPU.load(Ordering::SeqCst) != usize::MAX
}

/// Claims the panic report for this CPU. A CPU that panics while another is reporting just
/// stops; a second panic on the reporting CPU ends the run at once.
pub fn begin() {
    crate::arch::irq::save_and_disable();
    let me = crate::arch::percpu::cpu_id();
    match PANIC_CPU.compare_exchange(usize::MAX, me, Ordering::SeqCst, Ordering::SeqCst) {
        Ok(_) => {}
        Err(c) if c == me => crate::arch::qemu_exit(EXIT_PANIC),
        Err(_) => crate::arch::halt_forever(),
    }
}

/// Stops every other CPU with an NMI; each prints where it was (see [`nmi_stop`]).
fn stop_other_cpus() {
    use crate::arch::{apic, percpu};
    if !percpu::is_ready() {
        return;
    }
    let me = percpu::cpu_id();
    let n = percpu::online_cpus().filter(|pc| pc.cpu_id != me).count();
    if n == 0 {
        return;
    }
    print(format_args!("    stopping {n} other CPU(s):\n"));
    for pc in percpu::online_cpus().filter(|pc| pc.cpu_id != me) {
        apic::send_raw_ipi(pc.apic_id, apic::ICR_NMI);
    }
    let t0 = crate::arch::cpu::rdtsc();
    let limit = crate::time::tsc_hz().max(1_000_000_000); // about a second
    while STOPPED.load(Ordering::SeqCst) < n && crate::arch::cpu::rdtsc() - t0 < limit {
        core::hint::spin_loop();
    }
    let s = STOPPED.load(Ordering::SeqCst);
    if s < n {
        print(format_args!(
            "    {} CPU(s) did not answer the stop NMI\n",
            n - s
        ));
    }
}

/// The NMI handler. During a panic report, the panicking CPU's stop request ([`nmi_stop`]);
/// otherwise one from outside (QEMU's monitor `nmi`, which the test harness sends to a guest
/// that timed out): the hang report ([`hang_report`]), after which the system goes on.
pub fn nmi(f: &TrapFrame) {
    if is_panicking() {
        nmi_stop(f);
    }
    hang_report(f);
}

/// Hang-report bookkeeping: the CPU printing the thread list, how many CPUs have printed
/// their own state, and a generation the others wait to see change before they resume.
static HANG_LEADER: AtomicUsize = AtomicUsize::new(usize::MAX);
static HANG_ARRIVED: AtomicUsize = AtomicUsize::new(0);
static HANG_GEN: AtomicUsize = AtomicUsize::new(0);

/// Every CPU that takes the NMI prints where it was (registers and backtrace); the first
/// one waits (about a second at most) for the others, then prints every thread with where it
/// is blocked ([`crate::sched::thread::dump_all`]) while they stay parked, and all resume.
fn hang_report(f: &TrapFrame) {
    let me = crate::arch::percpu::cpu_id();
    let r#gen = HANG_GEN.load(Ordering::SeqCst);
    while REPORT_LOCK.swap(true, Ordering::Acquire) {
        core::hint::spin_loop();
    }
    if f.from_user() {
        print(format_args!(
            "!!! hang report (NMI): CPU {me} was at {:#x} in user mode\n",
            f.rip
        ));
    } else {
        print(format_args!(
            "!!! hang report (NMI): CPU {me} was at {}\n",
            Sym(f.rip)
        ));
    }
    print_registers(f);
    if !f.from_user() {
        backtrace_from(f.rbp);
    }
    REPORT_LOCK.store(false, Ordering::Release);
    HANG_ARRIVED.fetch_add(1, Ordering::SeqCst);
    let second = crate::time::tsc_hz().max(1_000_000_000);
    let t0 = crate::arch::cpu::rdtsc();
    if HANG_LEADER
        .compare_exchange(usize::MAX, me, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok()
    {
        let cpus = crate::arch::percpu::online_cpus().count();
        let wait_until = |n: usize, ticks: u64| {
            while HANG_ARRIVED.load(Ordering::SeqCst) < n && crate::arch::cpu::rdtsc() - t0 < ticks
            {
                core::hint::spin_loop();
            }
        };
        // QEMU's `nmi` reaches each CPU through its LINT1 pin, which only the boot CPU has
        // set up for NMIs: the others that have not come after 50 ms are sent one.
        wait_until(cpus, second / 20);
        if HANG_ARRIVED.load(Ordering::SeqCst) < cpus {
            for pc in crate::arch::percpu::online_cpus().filter(|pc| pc.cpu_id != me) {
                crate::arch::apic::send_raw_ipi(pc.apic_id, crate::arch::apic::ICR_NMI);
            }
        }
        wait_until(cpus, second);
        crate::sched::thread::dump_all(print, backtrace_from);
        print(format_args!("!!! end of hang report; continuing\n"));
        HANG_ARRIVED.store(0, Ordering::SeqCst);
        HANG_LEADER.store(usize::MAX, Ordering::SeqCst);
        HANG_GEN.fetch_add(1, Ordering::SeqCst);
    } else {
        // Parked until the thread list is printed (bounded: a leader that never finishes
        // must not wedge this CPU).
        while HANG_GEN.load(Ordering::SeqCst) == r#gen
            && crate::arch::cpu::rdtsc() - t0 < 10 * second
        {
            core::hint::spin_loop();
        }
    }
}

/// Prints the hang report on demand (Linux's SysRq `t`, `/proc/sysrq-trigger`): an NMI to
/// this CPU, whose handler reports it and brings the other CPUs in as a watchdog NMI would.
pub fn request_hang_report() {
    let me = crate::arch::percpu::current();
    crate::arch::apic::send_raw_ipi(me.apic_id, crate::arch::apic::ICR_NMI);
}

/// NMI handler while a panic is being reported: print this CPU's state, then halt.
pub fn nmi_stop(f: &TrapFrame) -> ! {
    while REPORT_LOCK.swap(true, Ordering::Acquire) {
        core::hint::spin_loop();
    }
    print(format_args!(
        "  --- CPU {} was at {}\n",
        crate::arch::percpu::cpu_id(),
        Sym(f.rip)
    ));
    print_registers(f);
    backtrace_from(f.rbp);
    REPORT_LOCK.store(false, Ordering::Release);
    STOPPED.fetch_add(1, Ordering::SeqCst);
    crate::arch::halt_forever()
}

pub fn print(args: core::fmt::Arguments<'_>) {
    crate::arch::serial::panic_write_fmt(args);
}

pub fn print_registers(f: &TrapFrame) {
    print(format_args!(
        "    rax {:016x} rbx {:016x} rcx {:016x} rdx {:016x}\n    rsi {:016x} rdi {:016x} rbp {:016x} rsp {:016x}\n    r8  {:016x} r9  {:016x} r10 {:016x} r11 {:016x}\n    r12 {:016x} r13 {:016x} r14 {:016x} r15 {:016x}\n    cs {:#x} ss {:#x} rflags {:#x}\n",
        f.rax,
        f.rbx,
        f.rcx,
        f.rdx,
        f.rsi,
        f.rdi,
        f.rbp,
        f.rsp,
        f.r8,
        f.r9,
        f.r10,
        f.r11,
        f.r12,
        f.r13,
        f.r14,
        f.r15,
        f.cs,
        f.ss,
        f.rflags
    ));
}

/// Walks the frame-pointer chain (the kernel is built with frame pointers).
pub fn backtrace_from(rbp: u64) {
    crate::symbols::print_frame_chain(rbp, 8, 0xFFFF_8000_0000_0000, print);
}

#[inline(always)]
pub fn current_rbp() -> u64 {
    crate::arch::cpu::frame_pointer()
}

/// The caller's frame pointer, by the name both architectures' panic modules give it.
#[inline(always)]
pub fn current_fp() -> u64 {
    crate::arch::cpu::frame_pointer()
}

pub fn end() -> ! {
    stop_other_cpus();
    print(format_args!(
        "!!! end of report; stopping (QEMU exit status {})\n",
        (EXIT_PANIC << 1) | 1
    ));
    crate::arch::qemu_exit(EXIT_PANIC)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    begin();
    print(format_args!(
        "\n!!! KERNEL PANIC on CPU {}: {}\n",
        crate::arch::percpu::cpu_id(),
        info.message()
    ));
    if let Some(loc) = info.location() {
        print(format_args!(
            "    at {}:{}:{}\n",
            loc.file(),
            loc.line(),
            loc.column()
        ));
    }
    backtrace_from(current_rbp());
    end()
}
