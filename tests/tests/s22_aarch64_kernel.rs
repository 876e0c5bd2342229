//! s22: the kernel itself (`adros-kernel`, not the core's test image of s20) on aarch64
//! (QEMU `virt`, GICv3, Cortex-A72), booted as an arm64 `Image` with an initrd holding
//! Debian's arm64 `busybox-static`: the device tree hands over the initrd, `adros.exec` runs
//! a command line with `/bin/sh -c` as process 1, and its output and exit status come back
//! on the PL011. The system calls arrive through `svc` with arm64's numbering; a pipe between
//! two forked processes, `uname`, a signal handler (returning through the kernel's
//! `rt_sigreturn` page, as glibc gives no `sa_restorer` there) and `/proc` are exercised,
//! on 2 and 4 CPUs. Devices: the PL011's receive interrupt (a GICv3 SPI from the device
//! tree) gives busybox init's shell its input, typed here over the serial line; an ext2
//! image made on the host is mounted from virtio-blk on virtio-mmio by the native driver,
//! read, written, unmounted and found clean by `e2fsck`; a device tree with malformed
//! device nodes gets them named and skipped while the rest boots; the wall clock comes
//! from the PL031. Skipped (not passed)
//! without `qemu-system-aarch64`, the image or the initrd (`cargo xtask test` builds both;
//! the initrd needs `apt-get` to fetch busybox), and the disk test without e2fsprogs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use adros_tests::qemu::{self, Arch, InputStep, Machine};
use adros_tests::sticks::{self, sbin};
use adros_tests::{Transcript, skip, test_dir};

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
    boot_with(
        name,
        smp,
        command,
        "",
        Duration::from_secs(180),
        setup,
        script,
    )
}

/// [`boot`] with `args` added to the kernel command line and a timeout of its own.
fn boot_with(
    name: &str,
    smp: u32,
    command: Option<&str>,
    args: &str,
    timeout: Duration,
    setup: impl FnOnce(&mut Machine),
    script: &[InputStep],
) -> Option<Transcript> {
    let (kernel, initrd) = images(name)?;
    let append = command.map_or(args.to_string(), |c| {
        let hex: String = c.bytes().map(|b| format!("{b:02x}")).collect();
        format!("{args} adros.exec={hex}").trim().to_string()
    });
    let mut m = Machine::aarch64(&kernel, &append);
    m.smp = smp;
    m.mem_mib = 512;
    if let Some(d) = m.direct.as_mut() {
        d.initrd = initrd;
    }
    setup(&mut m);
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

fn have_e2fsprogs(test: &str) -> bool {
    let ok = ["mke2fs", "e2fsck", "debugfs"]
        .iter()
        .all(|p| Command::new(p).arg("-V").output().is_ok());
    if !ok {
        skip(
            test,
            "e2fsprogs (mke2fs, e2fsck, debugfs) not installed on the host",
        );
    }
    ok
}

/// `dir/ext2.img`, an ext2 image of `size` made by `mke2fs` (filled from `src` with `-d`).
fn mkext2(dir: &Path, src: Option<&Path>, size: &str) -> PathBuf {
    let img = dir.join("ext2.img");
    let mut cmd = Command::new(sbin("mke2fs"));
    cmd.args(["-q", "-F", "-t", "ext2"]);
    if let Some(src) = src {
        cmd.arg("-d").arg(src);
    }
    sticks::run(cmd.arg(&img).arg(size));
    img
}

fn debugfs(img: &Path, req: &str) -> String {
    let out = Command::new("debugfs")
        .args(["-R", req])
        .arg(img)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A 64 MiB ext2 image made on the host (`mke2fs -d`), mounted from virtio-blk on a
/// virtio-mmio transport by the native ext2 driver: a known file reads back, a 1.5 MB file's
/// checksum matches the host's, a file and a directory are written; after `umount`,
/// `e2fsck -fn` finds the image clean and `debugfs` reads the written files. The disk's
/// interrupt line (the device tree's SPI) counts interrupts.
#[test]
fn s22_aarch64_kernel_ext2_on_virtio_mmio() {
    let name = "s22_aarch64_kernel-ext2";
    if images(name).is_none() || !have_e2fsprogs(name) {
        return;
    }
    let dir = test_dir().join("disks").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("hello.txt"), "hello from the host\n").unwrap();
    let big: Vec<u8> = (0..1_500_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    std::fs::write(src.join("sub/big.bin"), &big).unwrap();
    let img = mkext2(&dir, Some(&src), "64M");
    let host_md5 = sticks::run(Command::new("md5sum").arg(src.join("sub/big.bin")))
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let disk = img.clone();
    let Some(t) = boot(
        name,
        2,
        Some(
            "busybox mkdir -p /mnt && busybox mount -t ext2 /dev/vda /mnt && \
             busybox cat /mnt/hello.txt && busybox md5sum /mnt/sub/big.bin && \
             echo written on aarch64 > /mnt/new.txt && busybox mkdir /mnt/newdir && \
             busybox seq 1 20000 > /mnt/newdir/seq.txt && busybox umount /mnt && echo unmounted; \
             busybox grep virtio-blk /proc/drivers",
        ),
        |m| m.disks.push(disk),
        &[],
    ) else {
        return;
    };
    t.expect_contains("virtio-blk on virtio-mmio Modern");
    let out = output(&t);
    t.expect_contains("@@ADROS-EXEC-EXIT 0@@");
    if !out.contains("hello from the host") {
        t.fail("the known file did not read back");
    }
    if !out.contains(&format!("{host_md5}  /mnt/sub/big.bin")) {
        t.fail(&format!("big.bin's md5 should be {host_md5}"));
    }
    if !out.contains("unmounted") {
        t.fail("mount, write or umount failed");
    }
    // `irq gsi=<SPI> vector=… count=N owners=virtio-blk`, N > 0.
    let count = out
        .lines()
        .find(|l| l.starts_with("irq ") && l.contains("owners=virtio-blk"))
        .and_then(|l| l.split("count=").nth(1))
        .and_then(|c| c.split_whitespace().next())
        .and_then(|c| c.parse::<u64>().ok());
    if count.is_none_or(|n| n == 0) {
        t.fail(&format!(
            "the disk's interrupt line should have counted interrupts; /proc/drivers says {count:?}"
        ));
    }
    let fsck = Command::new("e2fsck")
        .arg("-fn")
        .arg(&img)
        .output()
        .unwrap();
    if !fsck.status.success() {
        t.fail(&format!(
            "e2fsck -fn is not clean:\n{}{}",
            String::from_utf8_lossy(&fsck.stdout),
            String::from_utf8_lossy(&fsck.stderr)
        ));
    }
    assert_eq!(debugfs(&img, "cat /new.txt"), "written on aarch64\n");
    let seq: String = (1..=20000).map(|i| format!("{i}\n")).collect();
    assert!(
        debugfs(&img, "cat /newdir/seq.txt") == seq,
        "/newdir/seq.txt on the image is not busybox seq 1 20000"
    );
}

/// QEMU's own tree with damaged device nodes (`kernel/core/src/testdata/virt-bad-devices.dtb`:
/// a virtio-mmio node without `reg`, one with a truncated `interrupts`, one with a window
/// smaller than the header, one whose window is the PL031's (a bad magic), and the PL011's
/// interrupt of an unknown type), given with `-dtb`: each is named and skipped, the boot
/// goes on, and the disk on an intact transport mounts.
#[test]
fn s22_aarch64_kernel_malformed_device_nodes_are_skipped() {
    let name = "s22_aarch64_kernel-bad-devices";
    if images(name).is_none() || !have_e2fsprogs(name) {
        return;
    }
    let dir = test_dir().join("disks").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let img = mkext2(&dir, None, "8M");
    let dtb = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../kernel/core/src/testdata/virt-bad-devices.dtb");
    let disk = img.clone();
    let Some(t) = boot(
        name,
        2,
        Some(
            "busybox mount -t ext2 /dev/vda /mnt && busybox ls /mnt && busybox umount /mnt && echo mounted",
        ),
        |m| {
            m.dtb = Some(dtb);
            m.disks.push(disk);
        },
        &[],
    ) else {
        return;
    };
    for line in [
        "virtio_mmio@a000000: no reg property; the device is skipped",
        "virtio_mmio@a000200: interrupts is not a list of three-cell GIC specifiers; the device is skipped",
        "virtio_mmio@a000400: reg is smaller than the virtio-mmio header (0x100 bytes); the device is skipped",
        "PL011: interrupt type is neither SPI (0) nor PPI (1); the device is skipped",
        // A well-formed node whose window is the PL031's: no virtio magic there.
        "virtio-mmio virtio_mmio@a000600 at 0x9010000: not brought up: Invalid magic value",
        "console input unavailable",
    ] {
        t.expect_contains(line);
    }
    let out = output(&t);
    if !out.contains("lost+found") || !out.contains("mounted") {
        t.fail("the disk on the intact transport did not mount");
    }
    t.expect_contains("@@ADROS-EXEC-EXIT 0@@");
}

/// The wall clock comes from the PL031 (QEMU sets it to the host's time): `date +%s` in the
/// guest is within two minutes of the host's clock at boot.
#[test]
fn s22_aarch64_kernel_wall_clock_from_the_pl031() {
    let name = "s22_aarch64_kernel-rtc";
    let host_before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let Some(t) = run(name, 1, "busybox date +%s") else {
        return;
    };
    t.expect_contains("@@ADROS-EXEC-EXIT 0@@");
    let out = output(&t);
    let Some(guest) = out.trim().parse::<u64>().ok() else {
        t.fail(&format!("date +%s printed {out:?}"));
    };
    if guest.abs_diff(host_before) > 120 {
        t.fail(&format!(
            "the guest's clock says {guest}, the host's said {host_before} at boot"
        ));
    }
}

/// The C suites of `tests/user/` (s09's on x86_64), cross-built from the same sources with
/// Debian's `aarch64-linux-gnu-gcc` (static glibc) into the same initrd paths: (program,
/// check area, the least number of checks it must pass on arm64 — s09's minimums less the
/// checks of x86_64-only system calls or hardware behaviour, each under an `#if` in its
/// suite: `signals.default_sigfpe` (arm64 does not trap on an integer division by zero),
/// `events.epoll.create_zero` (no `epoll_create` in asm-generic) and `time.time_matches` (no
/// `time`)).
const SUITES: &[(&str, &str, usize)] = &[
    ("t_files", "files", 181),
    ("t_pipes", "pipes", 50),
    ("t_signals", "signals", 72),
    ("t_proc", "proc", 80),
    ("t_mem", "mem", 78),
    ("t_time", "time", 57),
    ("t_dev", "dev", 45),
    ("t_events", "events", 84),
    ("t_unix", "unix", 83),
];

/// Suites with failures from kernel gaps on aarch64 not fixed yet: (program, the checks that
/// fail). They run to their summary and are reported, but are not asserted to pass; a
/// failing check not named here fails the test. None today (the arm64 vDSO,
/// `kernel/vdso/vdso-aarch64.c`, closed the last: `time.vdso.present`, `time.vdso.in_maps`).
const KNOWN_GAPS: &[(&str, &[&str])] = &[];

/// One suite's result in a transcript.
struct SuiteRun {
    passed: usize,
    failed: Vec<String>,
    summary: Option<String>,
    status: Option<i32>,
}

/// The lines of `out` from `prog`'s run (up to its `@@SUITE-EXIT prog N@@` marker).
fn suite_run(out: &str, prog: &str, area: &str) -> SuiteRun {
    let begin = format!("@@SUITE-BEGIN {prog}@@");
    let exit = format!("@@SUITE-EXIT {prog} ");
    let mut r = SuiteRun {
        passed: 0,
        failed: Vec::new(),
        summary: None,
        status: None,
    };
    let Some((_, body)) = out.split_once(&begin) else {
        return r;
    };
    let pass = format!("PASS: {area}.");
    for l in body.lines().map(str::trim) {
        if let Some(rest) = l.strip_prefix(&exit) {
            r.status = rest.trim_end_matches("@@").parse().ok();
            break;
        }
        if l.starts_with(&pass) {
            r.passed += 1;
        } else if l.starts_with("FAIL: ") {
            r.failed.push(l.to_string());
        } else if l.starts_with(&format!("SUMMARY: {area} ")) {
            r.summary = Some(l.to_string());
        }
    }
    r
}

/// Runs every suite of [`SUITES`] in one boot on `smp` CPUs, prints each one's counts and
/// failures, and fails unless every suite outside [`KNOWN_GAPS`] finished, exited 0, ran its
/// minimum number of checks and failed none (and the gaps' suites failed only what is named).
fn csuite(smp: u32) {
    let name = format!("s22_aarch64_kernel-csuite-{smp}cpu");
    let command: String = SUITES
        .iter()
        .map(|(p, _, _)| {
            format!("echo @@SUITE-BEGIN {p}@@; /usr/libexec/adros-tests/{p}; echo @@SUITE-EXIT {p} $?@@; ")
        })
        .collect();
    let Some(t) = boot_with(
        &name,
        smp,
        Some(&command),
        "loglevel=4",
        Duration::from_secs(900),
        |_| {},
        &[],
    ) else {
        return;
    };
    if let Some(report) = adros_tests::banner::crash_report(t.serial()) {
        t.fail(&format!("the kernel crashed:\n{report}"));
    }
    let out = output(&t);
    let mut problems = Vec::new();
    for (prog, area, min) in SUITES {
        let r = suite_run(&out, prog, area);
        println!(
            "aarch64 {smp} CPU(s): {prog}: {} passed, {} failed, exit {:?}",
            r.passed,
            r.failed.len(),
            r.status
        );
        for f in &r.failed {
            println!("  {f}");
        }
        let gaps = KNOWN_GAPS.iter().find(|(p, _)| p == prog).map(|(_, g)| *g);
        let unknown: Vec<&String> = r
            .failed
            .iter()
            .filter(|f| {
                let check = f
                    .trim_start_matches("FAIL: ")
                    .split(':')
                    .next()
                    .unwrap_or("");
                !gaps.is_some_and(|g| g.iter().any(|c| format!("{area}.{c}") == check))
            })
            .collect();
        if !unknown.is_empty() {
            problems.push(format!(
                "{prog}: {} failing checks:\n{}",
                unknown.len(),
                unknown
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("\n")
            ));
        }
        if gaps.is_some() {
            if r.summary.is_none() {
                problems.push(format!("{prog} did not reach its SUMMARY line"));
            }
            continue;
        }
        let summary = format!("SUMMARY: {area} {} passed 0 failed", r.passed);
        if r.summary.as_deref() != Some(summary.as_str()) {
            problems.push(format!(
                "{prog} did not finish with {summary:?} (its summary: {:?})",
                r.summary
            ));
        }
        if r.status != Some(0) {
            problems.push(format!("{prog} exited {:?}, not 0", r.status));
        }
        if r.passed < *min {
            problems.push(format!(
                "only {} {area} checks passed (need at least {min})",
                r.passed
            ));
        }
    }
    if !problems.is_empty() {
        t.fail(&problems.join("\n"));
    }
    t.expect_contains("@@ADROS-EXEC-EXIT 0@@");
}

#[test]
fn s22_aarch64_kernel_c_suites_pass_on_1_cpu() {
    csuite(1);
}

#[test]
fn s22_aarch64_kernel_c_suites_pass_on_2_cpus() {
    csuite(2);
}
