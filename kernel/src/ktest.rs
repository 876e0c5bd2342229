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

pub fn run_all(filter: &str) -> ! {
    let tests = all();
    let selected: alloc::vec::Vec<_> = tests.iter().filter(|(n, _)| filter.is_empty() || n.contains(filter)).collect();
    println!("ktest: running {} tests", selected.len());
    for (name, _) in &selected {
        println!("ktest: LIST {name}");
    }
    let (mut pass, mut fail) = (0, 0);
    for (name, f) in selected {
        println!("ktest: RUN {name}");
        let t0 = crate::time::now_ns();
        let r = f();
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
    crate::arch::qemu_exit(if fail == 0 { crate::panic::EXIT_SUCCESS } else { crate::panic::EXIT_FAILURE })
}

/// `ensure!(cond, "fmt", args)` → early `Err(String)`.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            return Err(alloc::format!($($arg)*));
        }
    };
}
