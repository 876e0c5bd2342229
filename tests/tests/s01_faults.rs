//! s01: every kind of kernel death is reported on serial and fails the run (QEMU status 37)
//! within the timeout, instead of hanging. `debug.crash=KIND` crashes on purpose after boot.

use std::time::Duration;

use adros_tests::{Boot, Transcript, qemu::STATUS_PANIC};

fn crash(kind: &str) -> Transcript {
    let t = Boot::new(&format!("s01_faults-{kind}"))
        .args(&format!("debug.crash={kind}"))
        .timeout(Duration::from_secs(90))
        .run();
    if t.out.timed_out {
        t.fail("the crash did not end the run before the timeout");
    }
    t.expect_status(&[STATUS_PANIC]);
    t.expect_contains(&format!("crashing on purpose (debug.crash={kind})"));
    t
}

fn expect_exception(t: &Transcript, name: &str) {
    t.expect_contains("!!! KERNEL EXCEPTION");
    t.expect_contains(name);
    t.expect_contains("rip");
    t.expect_contains("backtrace:");
    t.expect_contains("!!! end of report");
}

#[test]
fn panic_is_reported() {
    let t = crash("panic");
    t.expect_contains("!!! KERNEL PANIC");
    t.expect_contains("deliberate panic requested on the command line");
    t.expect_contains("backtrace:");
}

#[test]
fn page_fault_is_reported() {
    let t = crash("pagefault");
    expect_exception(&t, "page fault (#PF)");
    t.expect_contains("cr2");
}

#[test]
fn invalid_opcode_is_reported() {
    let t = crash("ud");
    expect_exception(&t, "invalid opcode (#UD)");
}

#[test]
fn stack_overflow_is_reported() {
    let t = crash("stackoverflow");
    t.expect_contains("!!! KERNEL EXCEPTION");
    t.expect_contains("STACK OVERFLOW");
    t.expect_contains("backtrace:");
}
