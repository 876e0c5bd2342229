//! s04: user space — Debian's busybox and bash run unmodified as the kernel's first process
//! (the `--exec` path: `/bin/sh -c COMMAND` as pid 1, exit status reported by the kernel).

use std::time::Duration;

use adros_tests::{Boot, banner};

/// Runs `cmd` with /bin/sh -c in the guest; returns (output, exit status).
fn exec(name: &str, cmd: &str, smp: u32) -> (String, i32) {
    let hex: String = cmd.bytes().map(|b| format!("{b:02x}")).collect();
    let t = Boot::new(name)
        .smp(smp)
        .args(&format!("loglevel=3 adros.exec={hex}"))
        .timeout(Duration::from_secs(180))
        .run();
    if let Some(report) = banner::crash_report(t.serial()) {
        t.fail(&format!("the kernel crashed:\n{report}"));
    }
    let s = t.serial().replace('\r', "");
    let Some(b) = s.find("@@ADROS-EXEC-BEGIN@@\n") else {
        t.fail("the command never started (no BEGIN marker)")
    };
    let rest = &s[b + "@@ADROS-EXEC-BEGIN@@\n".len()..];
    let Some(e) = rest.find("\n@@ADROS-EXEC-EXIT ") else {
        t.fail("the command never finished (no EXIT marker)")
    };
    let status: i32 = rest[e + "\n@@ADROS-EXEC-EXIT ".len()..]
        .split("@@")
        .next()
        .and_then(|x| x.trim().parse().ok())
        .unwrap_or(-1);
    (rest[..e].to_string(), status)
}

#[test]
fn busybox_echo_and_exit_status() {
    let (out, st) = exec(
        "s04_userland-busybox_echo",
        "echo hello from busybox; exit 3",
        2,
    );
    assert_eq!(out.trim(), "hello from busybox", "output was {out:?}");
    assert_eq!(st, 3);
}

#[test]
fn pipes_fork_exec_and_files() {
    let (out, st) = exec(
        "s04_userland-pipes_files",
        "cd /tmp && echo one > f && echo two >> f && cat f | wc -l && busybox --list | wc -l > n && test $(cat n) -gt 100 && echo many-applets && uname -s",
        2,
    );
    assert_eq!(st, 0, "output was {out:?}");
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines, ["2", "many-applets", "Linux"], "output was {out:?}");
}

#[test]
fn bash_runs_a_script() {
    let (out, st) = exec(
        "s04_userland-bash",
        "bash -c 'a=(x y z); for i in \"${a[@]}\"; do printf \"%s-\" \"$i\"; done; echo; echo $((6*7)); f() { return 5; }; f; echo rc=$?'",
        2,
    );
    assert_eq!(st, 0, "output was {out:?}");
    assert_eq!(
        out.lines().map(str::trim).collect::<Vec<_>>(),
        ["x-y-z-", "42", "rc=5"],
        "output was {out:?}"
    );
}

#[test]
fn signals_and_wait_statuses() {
    let (out, st) = exec(
        "s04_userland-signals",
        "sleep 30 & kill -TERM $!; wait $!; echo status=$?; sh -c 'kill -9 $$'; echo kill9=$?",
        2,
    );
    assert_eq!(st, 0, "output was {out:?}");
    assert!(
        out.contains("status=143"),
        "a TERM-killed child must report 128+15, output was {out:?}"
    );
    assert!(
        out.contains("kill9=137"),
        "a KILLed child must report 128+9, output was {out:?}"
    );
}

#[test]
fn smp4_parallel_processes() {
    let (out, st) = exec(
        "s04_userland-smp4",
        "for i in 1 2 3 4 5 6 7 8; do (x=0; while [ $x -lt 300 ]; do x=$((x+1)); done; echo done$i) & done; wait; echo all",
        4,
    );
    assert_eq!(st, 0, "output was {out:?}");
    for i in 1..=8 {
        assert!(
            out.contains(&format!("done{i}")),
            "child {i} missing, output was {out:?}"
        );
    }
    assert!(out.trim_end().ends_with("all"), "output was {out:?}");
}

/// `cargo xtask run`'s boot: busybox init runs /etc/init.d/rcS and a root shell on the
/// console; a command typed at the prompt runs, `/proc/boottimes` records when the shell
/// first waited for input (printed, not judged: timings belong in benchmarks), and
/// `poweroff` ends the machine.
#[test]
fn interactive_boot_prompt_and_poweroff() {
    let t = Boot::new("s04_userland-interactive")
        .timeout(Duration::from_secs(180))
        .type_after("adros:/# ", "cat /proc/boottimes; echo typed-$((6*7))\n")
        .type_after("typed-42", "poweroff\n")
        .run();
    if let Some(report) = banner::crash_report(t.serial()) {
        t.fail(&format!("the kernel crashed:\n{report}"));
    }
    let s = t.serial().replace('\r', "");
    if !s.contains("typed-42") {
        t.fail("the command typed at the shell prompt did not run");
    }
    let Some(line) = s.lines().find(|l| l.starts_with("first_console_read_ms ")) else {
        t.fail("/proc/boottimes has no first_console_read_ms")
    };
    if line.ends_with(" -") {
        t.fail("the shell read the console but /proc/boottimes says it never did");
    }
    println!(
        "s04_userland-interactive: {line} (ms of kernel uptime when the shell first waited for input)"
    );
    if t.status() != Some(0) {
        t.fail("poweroff at the prompt did not power the machine off (exit status 0)");
    }
}
