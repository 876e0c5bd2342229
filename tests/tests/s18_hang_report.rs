//! s18: the hang report. An NMI (QEMU's monitor `nmi`, which the harness sends to every
//! guest that times out) makes the kernel print every CPU and every thread with the kernel
//! backtrace it is blocked in — then the system goes on. Here a shell's `cat` blocks
//! opening a FIFO nobody writes yet; the report must name it, blocked in the FIFO open, and
//! the `cat` must still finish normally once a writer comes. The same report on demand from
//! user space: `echo t > /proc/sysrq-trigger`, as Linux's SysRq show-tasks.

use std::time::Duration;

use adros_tests::{Boot, Transcript, banner};

#[test]
fn nmi_hang_report_names_blocked_threads_and_the_system_goes_on() {
    // The marker comes from a subshell a second after `cat` started (and blocked).
    let script = "mkfifo /tmp/hang; (sleep 10; echo unblocked > /tmp/hang) & \
                  (sleep 1; echo WAITING-ON-FIFO) & cat /tmp/hang; echo AFTER-THE-REPORT";
    let hex: String = script.bytes().map(|b| format!("{b:02x}")).collect();
    let t = Boot::new("s18_hang_report")
        .smp(2)
        .args(&format!("loglevel=4 adros.exec={hex}"))
        .monitor_after("WAITING-ON-FIFO", "nmi")
        .timeout(Duration::from_secs(120))
        .run();
    check_report(&t, "");
}

#[test]
fn sysrq_t_from_user_space_prints_the_same_report() {
    let script = "mkfifo /tmp/hang; (sleep 10; echo unblocked > /tmp/hang) & \
                  (sleep 1; echo t > /proc/sysrq-trigger; echo \"SYSRQ rc=$?\"; \
                   cat /proc/sysrq-trigger 2>/dev/null; echo \"READ rc=$?\") & \
                  cat /tmp/hang; echo AFTER-THE-REPORT";
    let hex: String = script.bytes().map(|b| format!("{b:02x}")).collect();
    let t = Boot::new("s18_sysrq")
        .smp(2)
        .args(&format!("loglevel=4 adros.exec={hex}"))
        .timeout(Duration::from_secs(120))
        .run();
    // The write succeeds; the file is write-only (a read fails, as on Linux).
    check_report(&t, "SYSRQ rc=0\nREAD rc=1");
}

/// The report lists both CPUs and the blocked `cat` in its FIFO open, and the guest's
/// output afterwards has `unblocked`, `AFTER-THE-REPORT` and `also`.
fn check_report(t: &Transcript, also: &str) {
    if let Some(report) = banner::crash_report(t.serial()) {
        t.fail(&format!("the kernel crashed:\n{report}"));
    }
    let Some(report) = banner::hang_report(t.serial()) else {
        t.fail("no hang report after the NMI");
    };
    for cpu in 0..2 {
        if !report.contains(&format!("CPU {cpu} was at")) {
            t.fail(&format!("the hang report does not show CPU {cpu}"));
        }
    }
    // The `cat` process's thread: blocked, with a backtrace through the FIFO open.
    let cat = report.split("\n  thread ").find(|th| {
        th.lines()
            .next()
            .is_some_and(|l| l.contains(" pid ") && l.ends_with("\"cat\""))
    });
    let Some(cat) = cat else {
        t.fail("the hang report lists no thread of the blocked `cat`");
    };
    if !cat.contains(": blocked") {
        t.fail(&format!(
            "`cat` is not reported as a blocked process thread:\n{cat}"
        ));
    }
    if !cat.contains("open_fifo") {
        t.fail(&format!(
            "`cat`'s backtrace does not show the FIFO open:\n{cat}"
        ));
    }
    if !report.ends_with("!!! end of hang report; continuing") {
        t.fail("the hang report is not finished");
    }
    let (out, status) = t.exec_result();
    if status != 0
        || !out.contains("unblocked")
        || !out.contains("AFTER-THE-REPORT")
        || !out.contains(also)
    {
        t.fail(&format!(
            "the system did not go on after the report (status {status}):\n{out}"
        ));
    }
}
