//! In-kernel tests: run when the command line says `ktest` (all) or `ktest.run=FILTER`.
//! Each prints `ktest: PASS name (ms)` or `ktest: FAIL name: reason`; the run ends with
//! `ktest: summary: N passed, M failed` and a QEMU exit status (33 all passed, 35 some failed).
//! A test that brings the kernel down is reported by the panic handler, and the harness
//! counts every test that never reported as failed.

use alloc::string::String;

use crate::println;

pub type TestFn = fn() -> Result<(), String>;

/// Every in-kernel test, in run order.
pub fn all() -> alloc::vec::Vec<(&'static str, TestFn)> {
    let mut v = alloc::vec::Vec::new();
    crate::ktests::register(&mut v);
    v
}

/// A test running longer than this is declared hung: the watchdog panics, and the panic
/// report prints every CPU's backtrace.
const TEST_LIMIT_NS: u64 = 120_000_000_000;
static RUNNING_SINCE: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
static RUNNING_NAME: spin::Mutex<&'static str> = spin::Mutex::new("");

fn start_watchdog() {
    use core::sync::atomic::Ordering;
    crate::sched::spawn("ktest-watchdog", || {
        loop {
            crate::sched::sleep_ms(1000);
            let since = RUNNING_SINCE.load(Ordering::Relaxed);
            if since != 0 && crate::time::now_ns() - since > TEST_LIMIT_NS {
                let name = *RUNNING_NAME.lock();
                panic!(
                    "ktest watchdog: {name} has run for more than {} s (deadlock or lost wake-up?)",
                    TEST_LIMIT_NS / 1_000_000_000
                );
            }
        }
    });
}

pub fn run_all(filter: &str) -> ! {
    start_watchdog();
    let tests = all();
    let selected: alloc::vec::Vec<_> = tests
        .iter()
        .filter(|(n, _)| filter.is_empty() || n.contains(filter))
        .collect();
    println!("ktest: running {} tests", selected.len());
    for (name, _) in &selected {
        println!("ktest: LIST {name}");
    }
    let (mut pass, mut fail) = (0, 0);
    for (name, f) in selected {
        println!("ktest: RUN {name}");
        let t0 = crate::time::now_ns();
        *RUNNING_NAME.lock() = name;
        RUNNING_SINCE.store(t0, core::sync::atomic::Ordering::Relaxed);
        let r = f();
        RUNNING_SINCE.store(0, core::sync::atomic::Ordering::Relaxed);
        let ms = (crate::time::now_ns() - t0) / 1_000_000;
        match r {
            Ok(()) => {
                pass += 1;
                println!("ktest: PASS {name} ({ms} ms)");
            }
            Err(e) => {
                fail += 1;
                println!("ktest: FAIL {name}: {e} ({ms} ms)");
            }
        }
    }
    println!("ktest: summary: {pass} passed, {fail} failed");
    crate::arch::qemu_exit(if fail == 0 {
        crate::panic::EXIT_SUCCESS
    } else {
        crate::panic::EXIT_FAILURE
    })
}

/// `ensure!(cond, "fmt", args)` → early `Err(String)`.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        // A `match`, not `if !$cond`: negating a float comparison is its own clippy lint.
        match $cond {
            true => {}
            false => return Err(alloc::format!($($arg)*)),
        }
    };
}
