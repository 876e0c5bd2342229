//! `adros-tests`: QEMU integration tests for AdrOS, and the harness they (and `cargo xtask`)
//! share.
//!
//! - [`bundle`]: the module bundle (symbol table + initrd in one file) the PVH direct boot
//!   passes as QEMU's `-initrd`.
//! - [`qemu`]: the machine definition and a headless run with a timeout — the single source
//!   of AdrOS's QEMU command line (`cargo xtask run` uses it too).
//! - [`Boot`]: a test boots the kernel directly (PVH: `-kernel`, `-initrd` = the module
//!   bundle, `-append` = its command line) or, with [`Boot::iso`], the GRUB ISO, with a
//!   command line, memory, CPUs and disks, gets a
//!   [`Transcript`], and asserts on it. When the test fails, the transcript is kept under
//!   `<target>/test-logs/<test>.log` and its tail is part of the failure message.
//! - [`netinject`]: raw Ethernet frames into the guest's e1000 ([`Boot::net_inject`]).
//! - [`banner`]: parsers for the boot banner (memory, CPUs, PCI lines).
//! - [`skip`]: the skip convention (`SKIPPED: <test>: <reason>` on stdout), which
//!   `cargo xtask test` counts as skipped, never as passed (see docs/testing.md).
//!
//! The integration tests find the build through environment variables set by
//! `cargo xtask test`: `ADROS_KERNEL` and `ADROS_MODULES` (the kernel and its module bundle,
//! for the default direct boot), `ADROS_ISO` (the default ISO), `ADROS_ISO_STAGE` (its GRUB
//! staging directory, used to make ISOs with other command lines) and `ADROS_TEST_DIR`
//! (where per-test ISOs, disk images and logs go). Without them they fall back to what
//! `cargo xtask build` writes: `<target>/x86_64-unknown-none/release/adros-kernel`,
//! `<target>/adros.modules` and `<target>/adros.iso`.

pub mod banner;
pub mod bbtest;
pub mod bundle;
pub mod netinject;
pub mod qemu;
pub mod sticks;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use qemu::{InputStep, Machine, Outcome, describe};

/// The default kernel command line of the built ISO (`xtask/src/build.rs`).
pub const DEFAULT_CMDLINE: &str = "console=ttyS0 loglevel=6";

/// Default per-test timeout: generous for TCG on a loaded 2-core host.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// Prints the skip marker `cargo xtask test` counts. Call it, then return from the test.
pub fn skip(test: &str, reason: &str) {
    println!("SKIPPED: {test}: {reason}");
}

/// Whether the kernel under test has NetBSD's rump components linked in (`cargo xtask test`
/// says so in `ADROS_RUMP_LINKED`; otherwise the kernel's symbols are asked).
pub fn rump_linked() -> bool {
    if let Ok(v) = std::env::var("ADROS_RUMP_LINKED") {
        return v == "1";
    }
    let kernel = std::env::var_os("ADROS_KERNEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("x86_64-unknown-none/release/adros-kernel"));
    kernel_has_rump(&kernel)
}

/// Whether a built kernel contains the rump components (their `rump_init`).
pub fn kernel_has_rump(kernel: &Path) -> bool {
    Command::new("nm")
        .arg("--defined-only")
        .arg(kernel)
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.ends_with(" rump_init"))
        })
}

/// The workspace's target directory (honours `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .unwrap_or(Path::new("."))
                .join("target")
        })
}

/// Where this run's ISOs, disk images and logs live.
pub fn test_dir() -> PathBuf {
    std::env::var_os("ADROS_TEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("test-logs"))
}

/// The initrd with Debian's dynamically linked packages (`coreutils`, `python3`, `stress-ng`
/// and their libraries) that `cargo xtask test` builds beside the default one, or why there
/// is none (the Debian archive unreachable, no apt) — the caller skips then.
pub fn debs_initrd() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("ADROS_DEBS_INITRD") {
        return Ok(PathBuf::from(p));
    }
    Err(std::env::var("ADROS_DEBS_SKIP").unwrap_or_else(|_| {
        "ADROS_DEBS_INITRD is not set: run the tests with `cargo xtask test`".into()
    }))
}

/// The ISO with the default command line.
pub fn default_iso() -> PathBuf {
    let iso = std::env::var_os("ADROS_ISO")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("adros.iso"));
    assert!(
        iso.exists(),
        "{} does not exist: run the tests with `cargo xtask test` (or `cargo xtask build` first)",
        iso.display()
    );
    iso
}

/// The kernel the direct boot loads (`ADROS_KERNEL`, else the release build).
pub fn default_kernel() -> PathBuf {
    std::env::var_os("ADROS_KERNEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("x86_64-unknown-none/release/adros-kernel"))
}

/// The module bundle (symbols + initrd) the direct boot passes as `-initrd`
/// (`ADROS_MODULES`, else `<target>/adros.modules`).
pub fn default_modules() -> PathBuf {
    let p = std::env::var_os("ADROS_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("adros.modules"));
    assert!(
        p.exists(),
        "{} does not exist: run the tests with `cargo xtask test` (or `cargo xtask build` first)",
        p.display()
    );
    p
}

/// A module bundle with the default symbol table and `initrd` in place of the default
/// initrd (for [`Boot::initrd`] on the direct boot). Cached by the files' sizes and times.
pub fn modules_with(initrd: &Path) -> Result<PathBuf, String> {
    let symbols = stage_dir().join("boot/adros.sym");
    let mut h = DefaultHasher::new();
    initrd.hash(&mut h);
    for f in [&symbols, &initrd.to_path_buf()] {
        let m = std::fs::metadata(f).map_err(|e| format!("{}: {e}", f.display()))?;
        m.len().hash(&mut h);
        m.modified().ok().hash(&mut h);
    }
    let dir = test_dir().join("bundles");
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let out = dir.join(format!("{:016x}.modules", h.finish()));
    if !out.exists() {
        bundle::write(&[("symbols", &symbols), ("initrd", initrd)], &out)?;
    }
    Ok(out)
}

/// The default machine booting AdrOS directly (PVH) with `cmdline`.
pub fn direct_machine(cmdline: &str) -> Machine {
    Machine::pvh(&default_kernel(), &default_modules(), cmdline)
}

fn stage_dir() -> PathBuf {
    std::env::var_os("ADROS_ISO_STAGE")
        .map(PathBuf::from)
        .unwrap_or_else(|| default_iso().with_extension("d"))
}

static UNIQUE: AtomicU64 = AtomicU64::new(0);

/// An ISO booting the same kernel (and modules) as the default ISO with `cmdline`: a copy of
/// the default ISO's GRUB staging directory whose `multiboot2` line gets the new command
/// line, packed with `grub-mkrescue`. Cached by command line for the run.
pub fn iso_with_cmdline(cmdline: &str) -> Result<PathBuf, String> {
    iso_with(cmdline, None)
}

/// [`iso_with_cmdline`], with `initrd` (if given) in place of the default ISO's initrd.
pub fn iso_with(cmdline: &str, initrd: Option<&Path>) -> Result<PathBuf, String> {
    if cmdline == DEFAULT_CMDLINE && initrd.is_none() && std::env::var_os("ADROS_ISO").is_some() {
        return Ok(default_iso());
    }
    if cmdline.contains('\n') || cmdline.contains('}') {
        return Err("a kernel command line may not contain newlines or '}'".into());
    }
    let mut h = DefaultHasher::new();
    cmdline.hash(&mut h);
    initrd.hash(&mut h);
    // A rebuilt kernel or initrd must not be served from an ISO cached by an earlier build.
    let initrd_now = initrd.map_or_else(
        || stage_dir().join("boot/initrd.tar.lz4"),
        Path::to_path_buf,
    );
    for f in [stage_dir().join("boot/adros-kernel"), initrd_now] {
        if let Ok(m) = std::fs::metadata(f) {
            m.len().hash(&mut h);
            m.modified().ok().hash(&mut h);
        }
    }
    let dir = test_dir().join("isos");
    let iso = dir.join(format!("{:016x}.iso", h.finish()));
    if iso.exists() {
        return Ok(iso);
    }
    let stage = stage_dir();
    let cfg_path = stage.join("boot/grub/grub.cfg");
    let cfg = std::fs::read_to_string(&cfg_path).map_err(|e| {
        format!(
            "reading {}: {e} (build the ISO with `cargo xtask build`)",
            cfg_path.display()
        )
    })?;
    let mut found = false;
    let new_cfg: String = cfg
        .lines()
        .map(|l| {
            let t = l.trim_start();
            if let Some(rest) = t.strip_prefix("multiboot2 ") {
                found = true;
                let kernel = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or("/boot/adros-kernel");
                format!("{}multiboot2 {kernel} {cmdline}\n", &l[..l.len() - t.len()])
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    if !found {
        return Err(format!("{} has no multiboot2 line", cfg_path.display()));
    }
    let n = UNIQUE.fetch_add(1, Ordering::Relaxed);
    let tmp_stage = dir.join(format!("stage-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp_stage);
    copy_dir(&stage, &tmp_stage)?;
    if let Some(i) = initrd {
        std::fs::copy(i, tmp_stage.join("boot/initrd.tar.lz4"))
            .map_err(|e| format!("copying {}: {e}", i.display()))?;
    }
    std::fs::write(tmp_stage.join("boot/grub/grub.cfg"), new_cfg)
        .map_err(|e| format!("writing grub.cfg: {e}"))?;
    let tmp_iso = dir.join(format!("tmp-{}-{n}.iso", std::process::id()));
    let out = Command::new("grub-mkrescue")
        .arg("-o")
        .arg(&tmp_iso)
        .arg(&tmp_stage)
        .output()
        .map_err(|e| format!("cannot run grub-mkrescue: {e}"))?;
    let _ = std::fs::remove_dir_all(&tmp_stage);
    if !out.status.success() {
        return Err(format!(
            "grub-mkrescue failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    // Atomic: a concurrent test asking for the same command line sees a whole ISO or none.
    std::fs::rename(&tmp_iso, &iso).map_err(|e| format!("renaming {}: {e}", tmp_iso.display()))?;
    Ok(iso)
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("creating {}: {e}", to.display()))?;
    for e in std::fs::read_dir(from).map_err(|e| format!("reading {}: {e}", from.display()))? {
        let e = e.map_err(|e| e.to_string())?;
        let dst = to.join(e.file_name());
        if e.file_type().map_err(|e| e.to_string())?.is_dir() {
            copy_dir(&e.path(), &dst)?;
        } else {
            std::fs::copy(e.path(), &dst)
                .map_err(|err| format!("copying {}: {err}", e.path().display()))?;
        }
    }
    Ok(())
}

/// A zero-filled raw disk image of `mib` MiB for this run, named after the test.
pub fn scratch_disk(name: &str, mib: u64) -> PathBuf {
    let dir = test_dir().join("disks");
    std::fs::create_dir_all(&dir).expect("creating the disk directory");
    let p = dir.join(format!("{name}.img"));
    let f = std::fs::File::create(&p).expect("creating a disk image");
    f.set_len(mib << 20).expect("sizing a disk image");
    p
}

/// One boot of AdrOS for a test.
#[derive(Clone, Debug)]
pub struct Boot {
    name: String,
    cmdline: String,
    machine: Machine,
    timeout: Duration,
    until_banner: bool,
    input: Vec<InputStep>,
    initrd: Option<PathBuf>,
    iso: bool,
}

impl Boot {
    /// `name` names the transcript file (use the test's name).
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            cmdline: DEFAULT_CMDLINE.to_string(),
            machine: Machine::new(Path::new("")),
            timeout: DEFAULT_TIMEOUT,
            until_banner: false,
            input: Vec::new(),
            initrd: None,
            iso: false,
        }
    }
    /// Boot through SeaBIOS and GRUB from an ISO (Multiboot2), as a real machine does,
    /// instead of QEMU's direct PVH boot. (A command line longer than
    /// [`qemu::PVH_CMDLINE_MAX`] always does.)
    pub fn iso(mut self) -> Self {
        self.iso = true;
        self
    }
    /// Words appended to the default command line.
    pub fn args(mut self, words: &str) -> Self {
        self.cmdline = format!("{DEFAULT_CMDLINE} {words}");
        self
    }
    pub fn mem_mib(mut self, mib: u64) -> Self {
        self.machine.mem_mib = mib;
        self
    }
    pub fn smp(mut self, n: u32) -> Self {
        self.machine.smp = n;
        self
    }
    pub fn disk(mut self, img: PathBuf) -> Self {
        self.machine.disks.push(img);
        self
    }
    pub fn usb_disk(mut self, img: PathBuf) -> Self {
        self.machine.usb_disks.push(img);
        self
    }

    /// The USB controller the sticks are on: `xhci` (default) or `ehci`.
    pub fn usb_controller(mut self, c: &str) -> Self {
        self.machine.usb_controller = c.into();
        self
    }
    /// An e1000 on QEMU's user-mode network; `opts` as for `--net user,OPTS` (may be "").
    pub fn net(mut self, opts: &str) -> Self {
        self.machine.net = Some(opts.to_string());
        self
    }
    /// Frame injection (issue 17's bad-input tests): the e1000, QEMU's user network (as
    /// [`Boot::net`] sets it up; an empty one if `net` was not called) and QEMU's `dgram`
    /// netdev of a [`netinject::Injector`] on one hub, so the test program's frames reach
    /// the guest and the guest's frames reach it (see [`qemu::NetInject`]).
    pub fn net_inject(mut self, ports: qemu::NetInject) -> Self {
        if self.machine.net.is_none() {
            self.machine.net = Some(String::new());
        }
        self.machine.net_inject = Some(ports);
        self
    }
    /// A sound card (`intel-hda` + `hda-duplex`) on an audiodev; `backend` as for
    /// `--audio` (`wav:FILE[,OPTS]` records what the guest plays into FILE).
    pub fn audio(mut self, backend: &str) -> Self {
        self.machine.audio = Some(backend.to_string());
        self
    }
    /// Boots with this initrd instead of the default one (e.g. [`debs_initrd`]).
    pub fn initrd(mut self, path: PathBuf) -> Self {
        self.initrd = Some(path);
        self
    }
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }
    /// Stop (kill QEMU) as soon as the boot banner is complete, instead of waiting for the
    /// guest to exit. A guest that idles after boot needs this.
    pub fn until_banner(mut self) -> Self {
        self.until_banner = true;
        self
    }

    /// Types `send` into the serial console once `expect` appears in the output (after the
    /// previous step's match). Steps run in order; an interactive test is a list of them.
    pub fn type_after(mut self, expect: &str, send: &str) -> Self {
        self.input.push(InputStep {
            expect: expect.to_string(),
            send: send.as_bytes().to_vec(),
            monitor: false,
        });
        self
    }

    /// Sends `command` to QEMU's human monitor once `expect` appears in the output (a step
    /// like [`Boot::type_after`]'s, in the same sequence): `device_del stick0` pulls the
    /// first stick, `device_add usb-storage,bus=xhci.0,drive=spare0,id=plug0` plugs in a
    /// [`Boot::usb_spare_disk`]. Gives the machine a monitor socket; what the monitor
    /// answered is in the transcript's `out.monitor`.
    pub fn monitor_after(mut self, expect: &str, command: &str) -> Self {
        self.with_monitor();
        self.input.push(InputStep {
            expect: expect.to_string(),
            send: command.as_bytes().to_vec(),
            monitor: true,
        });
        self
    }

    /// Gives the machine a QEMU monitor socket (every boot has one: the harness sends `nmi`
    /// through it to a guest that timed out, for the kernel's hang report).
    fn with_monitor(&mut self) {
        if self.machine.monitor.is_none() {
            let n = UNIQUE.fetch_add(1, Ordering::Relaxed);
            // Unix socket paths are short (108 bytes): not under the target directory.
            self.machine.monitor = Some(
                std::env::temp_dir().join(format!("adros-mon-{}-{n}.sock", std::process::id())),
            );
        }
    }

    /// A raw image QEMU opens as drive `spare<N>` (N counting from 0) without plugging it
    /// in; [`Boot::monitor_after`] plugs it with `device_add`.
    pub fn usb_spare_disk(mut self, img: PathBuf) -> Self {
        self.machine.usb_spare.push(img);
        self
    }

    /// Puts the sticks behind a QEMU `usb-hub` (on root port 1) instead of on root ports.
    pub fn usb_hub(mut self) -> Self {
        self.machine.usb_hub = true;
        self
    }

    /// Boots and returns the transcript. Panics (failing the test) only if QEMU cannot run.
    pub fn run(mut self) -> Transcript {
        self.with_monitor();
        // A command line too long for QEMU's PVH option ROM goes through GRUB.
        if self.iso || self.cmdline.len() > qemu::PVH_CMDLINE_MAX {
            self.machine.iso = iso_with(&self.cmdline, self.initrd.as_deref())
                .unwrap_or_else(|e| panic!("{}: cannot make the ISO: {e}", self.name));
        } else {
            let modules = match &self.initrd {
                None => default_modules(),
                Some(i) => modules_with(i).unwrap_or_else(|e| {
                    panic!("{}: cannot make the module bundle: {e}", self.name)
                }),
            };
            self.machine.direct = Some(qemu::DirectBoot {
                kernel: default_kernel(),
                initrd: modules,
                append: self.cmdline.clone(),
            });
        }
        let stop: &dyn Fn(&str) -> bool = &|s: &str| banner::complete(s);
        let out = qemu::run_headless_with_input(
            &self.machine,
            self.timeout,
            |_| {},
            if self.until_banner { Some(stop) } else { None },
            &self.input,
        )
        .unwrap_or_else(|e| panic!("{}: {e}", self.name));
        if let Some(m) = &self.machine.monitor {
            let _ = std::fs::remove_file(m);
        }
        Transcript {
            name: self.name,
            cmdline: self.cmdline,
            machine: self.machine,
            timeout: self.timeout,
            out,
        }
    }
}

/// What one boot printed and how it ended. If the test panics while this is alive, the
/// transcript is written to `<test dir>/<name>.log`.
pub struct Transcript {
    pub name: String,
    pub cmdline: String,
    pub machine: Machine,
    pub timeout: Duration,
    pub out: Outcome,
}

impl Transcript {
    pub fn serial(&self) -> &str {
        &self.out.serial
    }
    pub fn status(&self) -> Option<i32> {
        self.out.status
    }

    /// The output and exit status of the `adros.exec` command (what the guest printed
    /// between `@@ADROS-EXEC-BEGIN@@` and `@@ADROS-EXEC-EXIT N@@`, `\r` removed; status -1
    /// when unreadable). Fails the test when either marker is missing.
    pub fn exec_result(&self) -> (String, i32) {
        const BEGIN: &str = "@@ADROS-EXEC-BEGIN@@\n";
        const EXIT: &str = "\n@@ADROS-EXEC-EXIT ";
        let s = self.serial().replace('\r', "");
        let Some(b) = s.find(BEGIN) else {
            self.fail("the command never started (no BEGIN marker)")
        };
        let rest = &s[b + BEGIN.len()..];
        let Some(e) = rest.find(EXIT) else {
            self.fail("the command never finished (no EXIT marker)")
        };
        let status = rest[e + EXIT.len()..]
            .split("@@")
            .next()
            .and_then(|x| x.trim().parse().ok())
            .unwrap_or(-1);
        (rest[..e].to_string(), status)
    }

    /// The last `n` lines of the transcript, for failure messages.
    pub fn tail(&self, n: usize) -> String {
        let lines: Vec<&str> = self.out.serial.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// For a failure message: the last `n` lines before the kernel's hang report and then
    /// the report (at most 200 lines), if the guest timed out and gave one; else [`Self::tail`].
    fn tail_with_hang_report(&self, n: usize) -> String {
        let s = &self.out.serial;
        let Some(report) = banner::hang_report(s) else {
            return self.tail(n);
        };
        let at = s.find("!!! hang report").unwrap_or(0);
        let before: Vec<&str> = s[..at].lines().collect();
        let report: Vec<&str> = report.lines().take(200).collect();
        format!(
            "{}\n  --- hang report (NMI sent by the harness at the timeout) ---\n{}",
            before[before.len().saturating_sub(n)..].join("\n"),
            report.join("\n")
        )
    }

    /// Fails the test with `msg`, how the guest ended and the transcript's tail.
    pub fn fail(&self, msg: &str) -> ! {
        let monitor = if self.out.monitor.is_empty() {
            String::new()
        } else {
            format!("\n  --- QEMU monitor ---\n{}", self.out.monitor.trim_end())
        };
        panic!(
            "{}: {msg}{monitor}\n  command line: {}\n  machine: -smp {} -m {}M, {} virtio disk(s), {} usb disk(s)\n  guest: {} (status {:?}){} after {:.1} s\n  --- last lines of serial ---\n{}\n  ---",
            self.name,
            self.cmdline,
            self.machine.smp,
            self.machine.mem_mib,
            self.machine.disks.len(),
            self.machine.usb_disks.len(),
            describe(self.out.status),
            self.out.status,
            if self.out.timed_out {
                format!(", TIMED OUT at {} s", self.timeout.as_secs())
            } else {
                String::new()
            },
            self.out.elapsed.as_secs_f64(),
            self.tail_with_hang_report(40)
        )
    }

    /// The guest must have booted to a complete banner without crashing.
    pub fn expect_banner(&self) {
        if let Some(report) = banner::crash_report(&self.out.serial) {
            self.fail(&format!("the kernel crashed:\n{report}"));
        }
        if self.out.timed_out {
            self.fail("no complete boot banner before the timeout");
        }
        if !banner::complete(&self.out.serial) {
            self.fail("the boot banner is incomplete");
        }
    }

    /// The guest must have ended with one of `statuses`.
    pub fn expect_status(&self, statuses: &[i32]) {
        match self.out.status {
            Some(s) if statuses.contains(&s) => {}
            _ => self.fail(&format!("expected QEMU status {statuses:?}")),
        }
    }

    /// The transcript must contain `needle`.
    pub fn expect_contains(&self, needle: &str) {
        if !self.out.serial.contains(needle) {
            self.fail(&format!("the serial output lacks {needle:?}"));
        }
    }

    pub fn write_log(&self) -> PathBuf {
        let dir = test_dir();
        let _ = std::fs::create_dir_all(&dir);
        let p = dir.join(format!("{}.log", self.name.replace(['/', ':'], "_")));
        let _ = std::fs::write(
            &p,
            format!(
                "# {}\n# command line: {}\n# qemu {}\n# ended: {} (status {:?}), timed out: {}, {:.1} s\n{}",
                self.name,
                self.cmdline,
                self.machine.args().join(" "),
                describe(self.out.status),
                self.out.status,
                self.out.timed_out,
                self.out.elapsed.as_secs_f64(),
                self.out.serial
            ) + &if self.out.monitor.is_empty() {
                String::new()
            } else {
                format!("\n# QEMU monitor\n{}", self.out.monitor)
            },
        );
        p
    }
}

impl Drop for Transcript {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let p = self.write_log();
            eprintln!("{}: serial transcript kept in {}", self.name, p.display());
        }
    }
}
