//! s04: user space — Debian's busybox and bash run unmodified as the kernel's first process
//! (the `--exec` path: `/bin/sh -c COMMAND` as pid 1, exit status reported by the kernel).

use std::time::Duration;

use adros_tests::{Boot, banner};

/// Runs `cmd` with /bin/sh -c in the guest; returns (output, exit status).
fn exec(name: &str, cmd: &str, smp: u32) -> (String, i32) {
    exec_with(name, "", cmd, smp)
}

/// `exec` with more kernel command-line words.
fn exec_with(name: &str, args: &str, cmd: &str, smp: u32) -> (String, i32) {
    let hex: String = cmd.bytes().map(|b| format!("{b:02x}")).collect();
    let t = Boot::new(name)
        .smp(smp)
        .args(&format!("loglevel=3 {args} adros.exec={hex}"))
        .timeout(Duration::from_secs(180))
        .run();
    if let Some(report) = banner::crash_report(t.serial()) {
        t.fail(&format!("the kernel crashed:\n{report}"));
    }
    let (out, status) = t.exec_result();
    (out, status)
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

/// The executable image cache (`kernel/src/proc/imgcache.rs`) serves a program's pages to
/// every exec after the first, and must never serve an old version: a file rewritten in place
/// (same inode), replaced under its name, or with its time set back runs as it is now; a
/// process writing into its (copy-on-write) data pages does not change what the next one sees.
#[test]
fn exec_image_cache_runs_what_the_file_holds_now() {
    let (out, st) = exec(
        "s04_userland-exec_image_cache",
        concat!(
            "cp /bin/bash /tmp/echo && /tmp/echo -c 'echo first-bash'; ",
            "cat /bin/busybox > /tmp/echo; /tmp/echo busybox-in-place; ",
            "cat /bin/bash > /tmp/echo; touch -d '2020-01-01 00:00:00' /tmp/echo; /tmp/echo -c 'echo bash-again'; ",
            "rm /tmp/echo; cp /bin/busybox /tmp/echo; /tmp/echo busybox-by-new-inode; ",
            "for i in 1 2 3; do v=$(/tmp/echo run$i); echo $v; done; ",
            "grep -q '^hits [1-9]' /proc/execcache && echo cache-used"
        ),
        2,
    );
    assert_eq!(
        out.trim(),
        "first-bash\nbusybox-in-place\nbash-again\nbusybox-by-new-inode\nrun1\nrun2\nrun3\ncache-used",
        "output was {out:?}"
    );
    assert_eq!(st, 0);
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

/// `debug.profile=1`: the timer tick samples where each CPU is, and /proc/profile names the
/// kernel functions (then starts afresh). A copy-heavy workload (dd through /dev/zero and
/// /dev/null, 1 MiB at a time) must show up as kernel time in named kernel functions. (Which
/// function gets the samples is TCG's business: it takes interrupts after a long `rep movs`
/// ends, so the copy's time can land just after it.)
#[test]
fn kernel_profiler_names_the_busy_functions() {
    let (out, status) = exec_with(
        "s04_profile",
        "debug.profile=1",
        "cat /proc/profile >/dev/null; dd if=/dev/zero of=/dev/null bs=1M count=400 2>/dev/null; echo FIRST; cat /proc/profile; echo SECOND; cat /proc/profile",
        1,
    );
    assert_eq!(status, 0, "{out}");
    let first = out
        .split("FIRST\n")
        .nth(1)
        .and_then(|r| r.split("SECOND\n").next())
        .unwrap_or_else(|| panic!("no report:\n{out}"));
    let second = out
        .split("SECOND\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no second report:\n{out}"));
    let head = |r: &str| -> (u64, u64) {
        let l = r.lines().next().unwrap_or("");
        let num = |key: &str| {
            l.split(key)
                .nth(1)
                .and_then(|x| x.split_whitespace().next())
                .and_then(|x| x.parse().ok())
        };
        match (num("samples "), num("kernel ")) {
            (Some(t), Some(k)) => (t, k),
            _ => panic!("bad report header {l:?}:\n{r}"),
        }
    };
    let (total, kernel) = head(first);
    assert!(
        kernel >= 20,
        "dd of 400 MiB spent only {kernel} of {total} samples in the kernel:\n{first}"
    );
    // "   521  33.4% name": the busiest function is named and has a real share.
    let top = first.lines().nth(1).unwrap_or("");
    let f: Vec<&str> = top.split_whitespace().collect();
    let n: u64 = f.first().and_then(|x| x.parse().ok()).unwrap_or(0);
    assert!(
        f.len() >= 3 && !top.contains("(no symbol)") && n * 10 >= kernel,
        "the top line does not name a function with >= 10% of the kernel samples:\n{first}"
    );
    // Reading restarts the counts: the second report covers only the `cat` in between.
    let (total2, _) = head(second);
    assert!(
        total2 < total,
        "the counters were not reset: {total2} samples after {total}:\n{second}"
    );
    // Without the switch there is no sampling, and the file says how to turn it on.
    let (off, status) = exec("s04_profile_off", "cat /proc/profile", 1);
    assert_eq!(status, 0, "{off}");
    assert!(
        off.contains("profile: off (boot with debug.profile=1)"),
        "{off}"
    );
}

/// Process 1 ignores signals it has no handler for, as on Linux (SIGNAL_UNKILLABLE):
/// tests/user/initsig.c runs as pid 1 and survives a child's kill, tgkill, rt_sigqueueinfo
/// and rt_tgsigqueueinfo of SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGQUIT, SIGALRM, SIGKILL,
/// SIGSTOP and a real-time signal, and its own raise(SIGINT/SIGTERM); a blocked one stays
/// pending and is ignored when unblocked; a handled one reaches its handler (Linux 6.1
/// passes the same checks). Then pid 1 becomes a shell (busybox ash, which catches SIGINT
/// itself and exits on it — on Linux too — so the shell's half uses the others) and
/// survives `kill -TERM/-HUP/-USR1/-QUIT/-KILL/-STOP 1` while a `trap` still runs.
/// And `/proc/self/exe` is the absolute, symlink-resolved path: Debian's static-glibc
/// busybox run by a relative name through a symlink (`./busybox-x`, `./readlink` with a
/// relative link target) works — its `_dl_get_origin` asserts the link starts with '/' —
/// and reads `/bin/busybox` there. (A link named `x` would say "x: applet not found", on
/// Linux too: busybox picks the applet by its name.)
#[test]
fn pid1_ignores_unhandled_signals_and_proc_self_exe_is_absolute() {
    let (out, st) = exec(
        "s04_userland-pid1_signals_and_exe",
        "exec /usr/libexec/adros-tests/initsig \"\
         kill -TERM 1; kill -HUP 1; kill -USR1 1; kill -QUIT 1; kill -KILL 1; kill -STOP 1; \
         echo survived; trap 'echo caught-usr2' USR2; kill -USR2 1; \
         ln -s /bin/busybox /tmp/busybox-x && ln -s ../bin/busybox /tmp/readlink && cd /tmp && \
         ./busybox-x echo ok-relative && ./busybox-x readlink /proc/self/exe && \
         ./readlink /proc/self/exe && \
         readlink /proc/self/exe && cd /bin && ./busybox readlink /proc/self/exe; echo end=\\$?\"",
        2,
    );
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    let failed: Vec<&&str> = lines.iter().filter(|l| l.starts_with("FAIL")).collect();
    assert!(
        failed.is_empty(),
        "initsig checks failed: {failed:?}\n{out}"
    );
    for check in [
        "child_sent_all",
        "survived_children_signals",
        "survived_own_signals",
        "blocked_term_is_queued",
        "unblocked_term_is_ignored",
        "handled_usr2_is_delivered",
    ] {
        assert!(
            lines.contains(&format!("PASS: initsig.{check}").as_str()),
            "initsig.{check} did not pass (pid 1 died under it?): {out:?}"
        );
    }
    assert_eq!(st, 0, "pid 1 did not survive to the end: {out:?}");
    let tail: Vec<&str> = lines
        .iter()
        .skip_while(|l| !l.starts_with("SUMMARY: initsig"))
        .skip(1)
        .copied()
        .collect();
    assert_eq!(
        tail,
        [
            "survived",
            "caught-usr2",
            "ok-relative",
            "/bin/busybox",
            "/bin/busybox",
            "/bin/busybox",
            "/bin/busybox",
            "end=0"
        ],
        "output was {out:?}"
    );
}
