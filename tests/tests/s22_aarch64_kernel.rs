//! s22: the kernel itself (`adros-kernel`, not the core's test image of s20) on aarch64
//! (QEMU `virt`, GICv3, Cortex-A72), booted as an arm64 `Image` with an initrd holding
//! Debian's arm64 `busybox-static`: the device tree hands over the initrd, `adros.exec` runs
//! a command line with `/bin/sh -c` as process 1, and its output and exit status come back
//! on the PL011. The system calls arrive through `svc` with arm64's numbering; a pipe between
//! two forked processes, `uname`, a signal handler (returning through the kernel's
//! `rt_sigreturn` page, as glibc gives no `sa_restorer` there) and `/proc` are exercised,
//! on 2 and 4 CPUs. Devices: the PL011's receive interrupt (a GICv3 SPI from the device
//! tree) gives busybox init's shell its input, typed here over the serial line. Skipped
//! (not passed) without `qemu-system-aarch64`, the image or the initrd (`cargo xtask test`
//! builds both; the initrd needs `apt-get` to fetch busybox).

use std::path::PathBuf;
use std::time::Duration;

use adros_tests::qemu::{self, Arch, InputStep, Machine};
use adros_tests::{Transcript, skip};

/// The kernel Image and the initrd, or why the tests cannot run (then they are skipped).
fn images(test: &str) -> Option<(PathBuf, PathBuf)> {
    if !qemu::qemu_available(Arch::Aarch64) {
        skip(
            test,
            "qemu-system-aarch64 is not installed (`cargo xtask deps` installs qemu-system-arm)",
        );
        return None;
    }
    for var in ["ADROS_AARCH64_SKIP", "ADROS_AARCH64_KERNEL_SKIP"] {
        if let Ok(why) = std::env::var(var) {
            skip(test, &why);
            return None;
        }
    }
    let (Some(k), Some(i)) = (
        std::env::var_os("ADROS_KERNEL_AARCH64_IMG").map(PathBuf::from),
        std::env::var_os("ADROS_INITRD_AARCH64").map(PathBuf::from),
    ) else {
        skip(
            test,
            "ADROS_KERNEL_AARCH64_IMG / ADROS_INITRD_AARCH64 not set: run through `cargo xtask test`",
        );
        return None;
    };
    if !k.exists() || !i.exists() {
        skip(
            test,
            &format!("{} or {} does not exist", k.display(), i.display()),
        );
        return None;
    }
    Some((k, i))
}

/// Boots with `command` as process 1 (`adros.exec`, hex-encoded as `xtask run --exec` does).
fn run(name: &str, smp: u32, command: &str) -> Option<Transcript> {
    boot(name, smp, Some(command), |_| {}, &[])
}

/// Boots the kernel with `command` as process 1, or busybox init without one; `setup` adds
/// devices; `script` is typed into the console.
fn boot(
    name: &str,
    smp: u32,
    command: Option<&str>,
    setup: impl FnOnce(&mut Machine),
    script: &[InputStep],
) -> Option<Transcript> {
    let (kernel, initrd) = images(name)?;
    let append = command.map_or(String::new(), |c| {
        let hex: String = c.bytes().map(|b| format!("{b:02x}")).collect();
        format!("adros.exec={hex}")
    });
    let mut m = Machine::aarch64(&kernel, &append);
    m.smp = smp;
    m.mem_mib = 512;
    if let Some(d) = m.direct.as_mut() {
        d.initrd = initrd;
    }
    setup(&mut m);
    let timeout = Duration::from_secs(180);
    let out = qemu::run_headless_with_input(&m, timeout, |_| {}, None, script)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    Some(Transcript {
        name: name.to_string(),
        cmdline: command.unwrap_or("(busybox init)").to_string(),
        machine: m,
        timeout,
        out,
    })
}

/// The lines between the exec markers (the command's own output).
fn output(t: &Transcript) -> String {
    let s = t.serial().replace('\r', "");
    let Some((_, rest)) = s.split_once("@@ADROS-EXEC-BEGIN@@") else {
        t.fail("no @@ADROS-EXEC-BEGIN@@: process 1 was not started")
    };
    let Some((body, _)) = rest.split_once("@@ADROS-EXEC-EXIT") else {
        t.fail("no @@ADROS-EXEC-EXIT: process 1 did not finish")
    };
    body.lines()
        .filter(|l| !l.starts_with('['))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn s22_aarch64_kernel_runs_busybox_as_process_1() {
    let name = "s22_aarch64_kernel-busybox";
    let Some(t) = run(
        name,
        2,
        "echo hello; busybox uname -m; echo hi | busybox tr a-z A-Z",
    ) else {
        return;
    };
    t.expect_contains("AdrOS 0.1.0 starting (aarch64)");
    t.expect_contains("fs: initrd ");
    t.expect_contains("init: started /bin/sh as pid 1");
    let out = output(&t);
    let lines: Vec<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines != ["hello", "aarch64", "HI"] {
        t.fail(&format!(
            "expected hello, aarch64, HI from process 1; got {lines:?}"
        ));
    }
    t.expect_contains("@@ADROS-EXEC-EXIT 0@@");
}

#[test]
fn s22_aarch64_kernel_signals_pipes_and_proc_on_4_cpus() {
    let name = "s22_aarch64_kernel-4cpus";
    let Some(t) = run(
        name,
        4,
        "trap 'echo got USR1' USR1; kill -USR1 $$; \
         busybox seq 1 200 | busybox wc -l; \
         busybox grep -c '^processor' /proc/cpuinfo; \
         busybox sh -c 'exit 7'; echo status $?",
    ) else {
        return;
    };
    let out = output(&t);
    let lines: Vec<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines != ["got USR1", "200", "4", "status 7"] {
        t.fail(&format!(
            "expected the handler's line, 200 lines through the pipe, 4 CPUs in /proc/cpuinfo and status 7; got {lines:?}"
        ));
    }
    t.expect_contains("@@ADROS-EXEC-EXIT 0@@");
}

fn typed(expect: &str, send: &str) -> InputStep {
    InputStep {
        expect: expect.to_string(),
        send: send.as_bytes().to_vec(),
        monitor: false,
    }
}

/// No `adros.exec`: busybox init runs rcS and a shell on the console, and what the test
/// types over the serial line reaches it through the PL011's receive interrupt (an SPI the
/// GIC routes): the shell computes `6*7` (the echo of the typed line shows only the
/// expression) and reads the machine name, then `poweroff` ends QEMU.
#[test]
fn s22_aarch64_kernel_console_input_reaches_the_shell() {
    let name = "s22_aarch64_kernel-console";
    let Some(t) = boot(
        name,
        2,
        None,
        |_| {},
        &[
            typed(
                "Enter 'help'",
                "echo typed $((6*7)) on $(busybox uname -m)\n",
            ),
            typed("typed 42 on", "poweroff\n"),
        ],
    ) else {
        return;
    };
    t.expect_contains("AdrOS: rcS done");
    t.expect_contains("typed 42 on aarch64");
    t.expect_contains("reboot: power down");
    if t.serial().contains("console input unavailable") {
        t.fail("the kernel said console input is unavailable");
    }
    if t.status() != Some(0) {
        t.fail(&format!(
            "poweroff should end QEMU with status 0 (PSCI SYSTEM_OFF); got {:?}",
            t.status()
        ));
    }
}
