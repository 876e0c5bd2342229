//! s06: SMP stress in user space at -smp 1, 2 and 4: CPU-bound processes, a fork/exec/wait
//! storm, pipe ping-pong across processes, futex contention between musl threads,
//! concurrent mmap/munmap/mprotect in threads of one process (TLB shootdowns), and signals
//! to busy threads and processes (tests/user/stress.c). A hang fails by timeout.

use std::time::Duration;

use adros_tests::{Boot, banner};

fn stress(smp: u32) {
    let cmd = "/usr/libexec/adros-tests/stress all";
    let hex: String = cmd.bytes().map(|b| format!("{b:02x}")).collect();
    let name = format!("s06_smp-stress_smp{smp}");
    let t = Boot::new(&name)
        .smp(smp)
        .args(&format!("loglevel=3 adros.exec={hex}"))
        .timeout(Duration::from_secs(300))
        .run();
    if let Some(report) = banner::crash_report(t.serial()) {
        t.fail(&format!("the kernel crashed:\n{report}"));
    }
    let s = t.serial().replace('\r', "");
    let Some(e) = s.find("@@ADROS-EXEC-EXIT ") else {
        t.fail("the stress run never finished (hang or crash)")
    };
    let status: i32 = s[e + 18..]
        .split("@@")
        .next()
        .and_then(|x| x.trim().parse().ok())
        .unwrap_or(-1);
    for test in [
        "cpu_bound",
        "fork_storm",
        "pipe_pingpong",
        "futex_threads",
        "mmap_threads",
        "signals_busy",
    ] {
        if !s.contains(&format!("PASS {test}")) {
            t.fail(&format!("{test} did not pass at -smp {smp}"));
        }
    }
    if status != 0 {
        t.fail(&format!("stress exited with status {status}"));
    }
}

#[test]
fn stress_smp1() {
    stress(1);
}

#[test]
fn stress_smp2() {
    stress(2);
}

#[test]
fn stress_smp4() {
    stress(4);
}

/// Issue 4: four CPUs are online and user space sees all four.
#[test]
fn nproc_sees_four_cpus() {
    let cmd = "nproc; grep -c ^processor /proc/cpuinfo";
    let hex: String = cmd.bytes().map(|b| format!("{b:02x}")).collect();
    let t = Boot::new("s06_smp-nproc_sees_four_cpus")
        .smp(4)
        .args(&format!("loglevel=3 adros.exec={hex}"))
        .timeout(Duration::from_secs(120))
        .run();
    if let Some(report) = banner::crash_report(t.serial()) {
        t.fail(&format!("the kernel crashed:\n{report}"));
    }
    let s = t.serial().replace('\r', "");
    let Some(b) = s.find("@@ADROS-EXEC-BEGIN@@\n") else {
        t.fail("the command never started")
    };
    let rest = &s[b + 21..];
    let Some(e) = rest.find("\n@@ADROS-EXEC-EXIT 0@@") else {
        t.fail("the command did not exit 0")
    };
    let lines: Vec<&str> = rest[..e].lines().map(str::trim).collect();
    if lines != ["4", "4"] {
        t.fail(&format!("expected 4 twice, got {lines:?}"));
    }
}
