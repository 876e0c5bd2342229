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
.arch_extension fp
.global adros_el0_switch
adros_el0_switch:
    mov     x19, x0             // this thread's marker
    mov     x8, #172            // getpid: "started"
    svc     #0
    msr     tpidr_el0, x19
    fmov    d8, x19
    fmov    d31, x19
    mov     x1, #0x500000       // a data page: each address space has its own
    str     x19, [x1]
    movz    x21, #0x300, lsl #16
5:  subs    x21, x21, #1        // spin through timer ticks: the other thread runs between
    b.ne    5b
    ldr     x2, [x1]
    fmov    x3, d8
    fmov    x4, d31
    mrs     x5, tpidr_el0
    mov     x0, #0
    cmp     x2, x19
    b.eq    6f
    orr     x0, x0, #1          // memory: another address space's page
6:  cmp     x3, x19
    b.eq    7f
    orr     x0, x0, #2          // d8 lost
7:  cmp     x4, x19
    b.eq    8f
    orr     x0, x0, #4          // d31 lost
8:  cmp     x5, x19
    b.eq    9f
    orr     x0, x0, #8          // TPIDR_EL0 lost
9:  mov     x8, #93
    svc     #0
    brk     #3
.global adros_el0_end
adros_el0_end:
"#
);

unsafe extern "C" {
    static adros_el0_prog: u8;
    static adros_el0_bad: u8;
    static adros_el0_switch: u8;
    static adros_el0_end: u8;
}

const CODE: u64 = 0x40_0000;

/// Every address space of the check, found by the root loaded in TTBR0.
static SPACES: IrqSpinLock<Vec<&'static AddressSpace>> = IrqSpinLock::new(Vec::new());
/// (thread id, when it started, when it exited, exit status) of the switching threads.
static RUNS: IrqSpinLock<Vec<(u64, u64, u64, u64)>> = IrqSpinLock::new(Vec::new());
static OUTPUT: IrqSpinLock<String> = IrqSpinLock::new(String::new());
static EXIT: AtomicU64 = AtomicU64::new(u64::MAX);
static SYSCALLS: AtomicU64 = AtomicU64::new(0);
static FAULTS_RESOLVED: AtomicU64 = AtomicU64::new(0);
static RETURNS: AtomicU64 = AtomicU64::new(0);
static BAD: IrqSpinLock<Option<(u64, u64, u64)>> = IrqSpinLock::new(None);

fn space() -> &'static AddressSpace {
    let root = upt::active_root();
    SPACES
        .lock()
        .iter()
        .copied()
        .find(|s| s.pml4() == root)
        .expect("the EL0 thread's address space is loaded")
}

fn run_entry(id: u64) -> usize {
    let mut r = RUNS.lock();
    match r.iter().position(|e| e.0 == id) {
        Some(i) => i,
        None => {
            r.push((id, 0, 0, u64::MAX));
            r.len() - 1
        }
    }
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
            let me = sched::thread::current();
            if me.task.get().is_some() {
                let i = run_entry(me.id);
                let mut r = RUNS.lock();
                r[i].2 = adros_core::time::now_ns();
                r[i].3 = f.x[0];
            } else {
                EXIT.store(f.x[0], Ordering::SeqCst);
            }
            drop(me);
            sched::thread::exit_current();
        }
        172 => {
            let me = sched::thread::current();
            let i = run_entry(me.id);
            RUNS.lock()[i].1 = adros_core::time::now_ns();
            f.x[0] = me.id;
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
    let (prog, bad, switch, end) = (
        &raw const adros_el0_prog as u64,
        &raw const adros_el0_bad as u64,
        &raw const adros_el0_switch as u64,
        &raw const adros_el0_end as u64,
    );
    // SAFETY: [prog, end) is the assembled programs, in this image's read-only data.
    let code = unsafe { core::slice::from_raw_parts(prog as *const u8, (end - prog) as usize) };
    let space = user_space(code, None)?;
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
        Some((esr, 0, elr)) if (esr >> 26) & 0x3f == 0x24 && elr == bad_entry + 4 => {}
        _ => return Err(summary),
    }
    let switching = two_user_threads(code, CODE + (switch - prog))?;
    Ok(alloc::format!("{summary}\n{switching}"))
}

/// A new address space (kept for good) with the programs at `CODE`, 16 stack pages, and a
/// present data page at `data`; registered for the fault hook.
fn user_space(code: &[u8], data: Option<u64>) -> Result<&'static AddressSpace, String> {
    let space: &'static AddressSpace = alloc::boxed::Box::leak(alloc::boxed::Box::new(
        AddressSpace::new().map_err(|e| alloc::format!("address space: {e:?}"))?,
    ));
    let rw = PROT_READ | PROT_WRITE;
    space
        .map_anon(CODE, CODE + PAGE, PROT_READ | PROT_EXEC, "el0-code")
        .and_then(|_| space.write_bytes(CODE, code))
        .and_then(|_| space.map_anon(STACK_TOP - 16 * PAGE, STACK_TOP, rw, "[stack]"))
        .and_then(|_| match data {
            Some(d) => space
                .map_anon(d, d + PAGE, rw, "data")
                .and_then(|_| space.write_bytes(d, &[0; 8])),
            None => Ok(()),
        })
        .map_err(|e| alloc::format!("mapping the programs: {e:?}"))?;
    SPACES.lock().push(space);
    Ok(space)
}

struct TestTask(&'static str);

impl sched::thread::UserTask for TestTask {
    fn describe(&self, print: fn(core::fmt::Arguments<'_>)) {
        print(format_args!(" el0 check {}", self.0));
    }
}

/// Two user threads, each in its own address space, on one CPU at once: each keeps a
/// marker in its data page, in d8 and d31 and in TPIDR_EL0 while the timer switches
/// between them, and exits 0 only if all four still hold it.
fn two_user_threads(code: &[u8], entry: u64) -> Result<String, String> {
    const DATA: u64 = 0x50_0000;
    let markers = [0x1111_2222_3333_4444u64, 0x5555_6666_7777_8888];
    let names = ["el0-a", "el0-b"];
    let old_affinity = sched::thread::current().affinity();
    sched::thread::set_current_affinity(1);
    let mut threads = Vec::new();
    for (marker, name) in markers.into_iter().zip(names) {
        let space = user_space(code, Some(DATA))?;
        let mut frame = user::user_frame(entry, STACK_TOP);
        frame.x[0] = marker;
        let t = sched::Thread::new_user(name, &frame, user::FpuState::initial())
            .ok_or("no memory for a user thread")?;
        t.task.call_once(|| alloc::sync::Arc::new(TestTask(name)));
        t.cr3.store(space.pml4(), Ordering::Release);
        threads.push(t);
    }
    space_code_sync(&threads);
    for t in &threads {
        sched::start_user_thread(t);
    }
    sched::thread::set_current_affinity(old_affinity);
    let deadline = adros_core::time::now_ns() + 60_000_000_000;
    while threads.iter().any(|t| !t.has_exited()) {
        if adros_core::time::now_ns() > deadline {
            return Err(String::from(
                "el0: the two user threads did not finish in 60 s",
            ));
        }
        sched::sleep_ms(10);
    }
    let runs = RUNS.lock().clone();
    let line = alloc::format!(
        "el0: two user threads on CPU 0, each in its own address space: exit statuses {:?}, overlapping: {}",
        runs.iter().map(|r| r.3).collect::<Vec<_>>(),
        overlap(&runs)
    );
    if runs.len() != 2 || runs.iter().any(|r| r.3 != 0) || !overlap(&runs) {
        return Err(line);
    }
    Ok(alloc::format!(
        "{line}; memory, d8, d31 and TPIDR_EL0 kept across switches"
    ))
}

/// Both threads had started before either exited.
fn overlap(runs: &[(u64, u64, u64, u64)]) -> bool {
    runs.len() == 2 && runs.iter().all(|r| r.1 != 0 && r.2 != 0) && {
        let last_start = runs.iter().map(|r| r.1).max().unwrap_or(0);
        let first_end = runs.iter().map(|r| r.2).min().unwrap_or(0);
        last_start < first_end
    }
}

/// The code pages were written through the kernel's mappings: make them visible to
/// instruction fetch in each thread's address space.
fn space_code_sync(threads: &[sched::thread::ThreadRef]) {
    let saved = upt::active_root();
    for t in threads {
        upt::activate(t.cr3.load(Ordering::Acquire));
        adros_core::arch::aarch64::cpu::sync_icache(CODE, PAGE);
    }
    upt::activate(saved);
}
