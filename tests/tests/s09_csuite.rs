//! s09: the C test suite (tests/user/t_*.c: files, pipes, signals, proc, mem, time, dev),
//! one AdrOS boot per program. Each check prints `PASS: area.name` or `FAIL: area.name:
//! reason`; every check must pass, the program must finish (its `SUMMARY:` line) and exit
//! 0, and each program must run at least its minimum number of checks (the minimums sum to
//! more than 200, so the suite as a whole runs over 200 named checks).

use std::time::Duration;

use adros_tests::{Boot, banner};

/// Boots AdrOS running `/usr/libexec/adros-tests/<prog>`; returns the number of PASS lines.
fn run(prog: &str, area: &str, min: usize) -> usize {
    let cmd = format!("/usr/libexec/adros-tests/{prog}");
    let hex: String = cmd.bytes().map(|b| format!("{b:02x}")).collect();
    let t = Boot::new(&format!("s09_csuite-{prog}"))
        .args(&format!("loglevel=4 adros.exec={hex}"))
        .timeout(Duration::from_secs(240))
        .run();
    if let Some(report) = banner::crash_report(t.serial()) {
        t.fail(&format!("the kernel crashed:\n{report}"));
    }
    let s = t.serial().replace('\r', "");
    let failed: Vec<&str> = s.lines().filter(|l| l.starts_with("FAIL: ")).collect();
    if !failed.is_empty() {
        t.fail(&format!(
            "{} failing checks:\n{}",
            failed.len(),
            failed.join("\n")
        ));
    }
    let prefix = format!("PASS: {area}.");
    let passed = s.lines().filter(|l| l.starts_with(&prefix)).count();
    let summary = format!("SUMMARY: {area} {passed} passed 0 failed");
    if !s.lines().any(|l| l == summary) {
        t.fail(&format!(
            "{prog} did not finish with {summary:?} ({passed} PASS lines seen)"
        ));
    }
    if !s.contains("@@ADROS-EXEC-EXIT 0@@") {
        t.fail(&format!("{prog} did not exit 0"));
    }
    println!("{prog}: {passed} checks passed");
    if passed < min {
        t.fail(&format!(
            "only {passed} {area} checks ran (need at least {min})"
        ));
    }
    passed
}

#[test]
fn csuite_files() {
    run("t_files", "files", 181);
}

#[test]
fn csuite_pipes() {
    run("t_pipes", "pipes", 50);
}

#[test]
fn csuite_signals() {
    run("t_signals", "signals", 73);
}

#[test]
fn csuite_proc() {
    run("t_proc", "proc", 80);
}

#[test]
fn csuite_mem() {
    run("t_mem", "mem", 78);
}

#[test]
fn csuite_time() {
    run("t_time", "time", 58);
}

#[test]
fn csuite_dev() {
    run("t_dev", "dev", 45);
}

#[test]
fn csuite_events() {
    run("t_events", "events", 85);
}

#[test]
fn csuite_unix() {
    run("t_unix", "unix", 83);
}
