//! `cargo xtask run`: boot AdrOS in QEMU.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use clap::Args;

use crate::build::{self, BuildArgs};
use crate::qemu::{self, Machine};
use crate::util::{Result, parse_mem, target_dir};

#[derive(Args, Clone)]
pub struct RunArgs {
    /// Number of virtual CPUs.
    #[arg(long, default_value_t = 2)]
    pub smp: u32,
    /// Guest memory, e.g. 512M, 1G, 8G.
    #[arg(long, default_value = "1G")]
    pub mem: String,
    /// Kernel command line (replaces the default "console=ttyS0 loglevel=6").
    #[arg(long)]
    pub cmdline: Option<String>,
    /// Raw disk image attached as virtio-blk (repeatable).
    #[arg(long)]
    pub disk: Vec<PathBuf>,
    /// Raw disk image attached as a USB stick (repeatable), driven by NetBSD's USB stack in
    /// the rump kernel (`usb.driver=rump`, the default when it is linked).
    #[arg(long = "usb-disk")]
    pub usb_disk: Vec<PathBuf>,
    /// The USB controller the sticks are on: xhci (qemu-xhci) or ehci (ICH9 EHCI with
    /// three companion UHCIs: USB 2.0, full/low-speed devices on the UHCIs).
    #[arg(long = "usb-controller", default_value = "xhci")]
    pub usb_controller: String,
    /// A QEMU human monitor on this unix socket, for hot-plug by hand: e.g.
    /// `socat - UNIX-CONNECT:SOCKET`, then `device_del stick0` pulls the first stick and
    /// `drive_add 0 if=none,id=d9,file=IMG,format=raw` + `device_add usb-storage,bus=xhci.0,drive=d9,id=s9`
    /// plugs one in.
    #[arg(long, value_name = "SOCKET")]
    pub monitor: Option<PathBuf>,
    /// Put the USB sticks behind a QEMU usb-hub (on root port 1).
    #[arg(long = "usb-hub")]
    pub usb_hub: bool,
    /// Network: `none` (default) or `user[,OPTS]`: an e1000 on QEMU's user-mode network,
    /// OPTS as QEMU spells them (`user,hostfwd=tcp::8080-:80`); forwards bind 127.0.0.1.
    #[arg(long, default_value = "none")]
    pub net: String,
    /// Sound: an Intel HD Audio controller (`intel-hda` + `hda-duplex`) on a QEMU audiodev:
    /// `wav:FILE[,OPTS]` records what the guest plays into FILE, `none`, `alsa`, `oss`, `pa`
    /// (whatever this QEMU has; `qemu-system-x86_64 -audiodev help`). Default: no sound card.
    #[arg(long)]
    pub audio: Option<String>,
    /// No display window; serial on the terminal.
    #[arg(long)]
    pub headless: bool,
    /// Stop QEMU after this many seconds (exit status 124, like timeout(1)).
    #[arg(long)]
    pub timeout: Option<u64>,
    /// HOST_PATH:GUEST_PATH packed into the initrd (repeatable; needs user space).
    #[arg(long)]
    pub add: Vec<String>,
    /// A Debian package, with everything it depends on, unpacked into the initrd (repeatable;
    /// fetched with apt-get download, never installed on the host): e.g. `--add-deb coreutils
    /// --add-deb python3` for dynamically linked programs with their own glibc.
    #[arg(long, value_name = "PACKAGE")]
    pub add_deb: Vec<String>,
    /// Run COMMAND with /bin/sh -c in the guest and exit with its status (needs user space).
    #[arg(long)]
    pub exec: Option<String>,
    /// Start QEMU's gdb stub on 127.0.0.1:PORT (default 1234) with the CPUs stopped, write
    /// target/adros.gdb (symbols, attach, run to `kmain`) and print the gdb command to use.
    #[arg(long, value_name = "PORT", num_args = 0..=1, default_missing_value = "1234")]
    pub gdb: Option<u16>,
    /// Boot through SeaBIOS and GRUB from the ISO (Multiboot2, as on a real machine)
    /// instead of QEMU's direct PVH boot of the kernel (`-kernel`/`-initrd`/`-append`).
    #[arg(long)]
    pub iso: bool,
    /// Accelerator: tcg (default) or kvm.
    #[arg(long, default_value = "tcg")]
    pub accel: String,
    /// With `--arch aarch64`: boot the core's own test image (`adros-aarch64`, s20's)
    /// instead of the kernel.
    #[arg(long = "core-image")]
    pub core_image: bool,
    #[command(flatten)]
    pub build: BuildArgs,
}

pub fn run(a: RunArgs) -> Result<i32> {
    if !matches!(a.accel.as_str(), "tcg" | "kvm") {
        return Err(format!("--accel {}: use tcg or kvm", a.accel));
    }
    if a.build.arch()? == qemu::Arch::Aarch64 {
        return run_aarch64(&a);
    }
    let built = build::build_with(&a.build, &a.add, &a.add_deb)?;
    let mut cmdline = a.cmdline.clone();
    if let Some(e) = &a.exec {
        // The command travels hex-encoded (any bytes survive GRUB and the kernel's word
        // splitting); boot messages are kept quiet so its output stays clean.
        let hex: String = e.bytes().map(|b| format!("{b:02x}")).collect();
        let base = cmdline
            .clone()
            .unwrap_or_else(|| build::DEFAULT_CMDLINE.to_string());
        cmdline = Some(format!("{base} loglevel=3 adros.exec={hex}"));
    }
    if cmdline.is_none() && !(a.add.is_empty() && a.add_deb.is_empty()) {
        cmdline = Some(build::DEFAULT_CMDLINE.to_string());
    }
    let too_long = cmdline
        .as_ref()
        .is_some_and(|c| c.len() > adros_tests::qemu::PVH_CMDLINE_MAX);
    if too_long && !a.iso {
        eprintln!(
            "xtask run: the command line is longer than QEMU's PVH loader takes ({} bytes): booting the GRUB ISO",
            adros_tests::qemu::PVH_CMDLINE_MAX
        );
    }
    let mut m = if a.iso || too_long {
        let iso = match &cmdline {
            None => built.iso.clone(),
            Some(c) => {
                let iso = target_dir().join("adros-run.iso");
                build::make_iso(&built.kernel, &built.symbols, c, &iso)?;
                iso
            }
        };
        Machine::new(&iso)
    } else {
        Machine::pvh(
            &built.kernel,
            &built.modules,
            cmdline.as_deref().unwrap_or(build::DEFAULT_CMDLINE),
        )
    };
    m.smp = a.smp;
    m.mem_mib = parse_mem(&a.mem)?;
    m.accel = a.accel.clone();
    m.disks = a.disk.clone();
    m.usb_disks = a.usb_disk.clone();
    if !matches!(a.usb_controller.as_str(), "xhci" | "ehci") {
        return Err(format!(
            "--usb-controller {}: use xhci or ehci",
            a.usb_controller
        ));
    }
    m.usb_controller = a.usb_controller.clone();
    m.monitor = a.monitor.clone();
    m.usb_hub = a.usb_hub;
    m.net = match a.net.as_str() {
        "none" => None,
        "user" => Some(String::new()),
        n => match n.strip_prefix("user,") {
            Some(opts) => Some(opts.to_string()),
            None => return Err(format!("--net {n}: use none or user[,OPTS]")),
        },
    };
    if let Some(b) = &a.audio {
        adros_tests::qemu::audio_args(b)?;
        m.audio = Some(b.clone());
    }
    if let Some(port) = a.gdb {
        m.gdb = Some(port);
        let script = target_dir().join("adros.gdb");
        crate::util::write_atomic(&script, qemu::gdb_script(&built.kernel, port))?;
        eprintln!(
            "xtask run: QEMU waits for gdb on 127.0.0.1:{port}. In another terminal:\n    gdb -x {}\n\
             (it loads the kernel's symbols, attaches and stops in kmain; `continue` boots on)",
            script.display()
        );
    }
    for d in m.disks.iter().chain(m.usb_disks.iter()) {
        if !d.exists() {
            return Err(format!("disk image {} does not exist", d.display()));
        }
    }
    if a.exec.is_some() {
        return run_exec(&m, a.timeout.unwrap_or(600));
    }
    if a.headless || a.timeout.is_some() {
        return headless(&m, a.timeout);
    }
    // Interactive: serial multiplexed with the QEMU monitor on this terminal (Ctrl-A X quits).
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(m.args()).args(["-serial", "mon:stdio"]);
    if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
        cmd.args(["-display", "none"]);
    }
    interactive(cmd, "qemu-system-x86_64", "AdrOS")
}

/// Runs QEMU on this terminal until it quits; 0 for a clean guest exit.
fn interactive(mut cmd: Command, qemu_bin: &str, what: &str) -> Result<i32> {
    eprintln!("xtask: booting {what} (Ctrl-A X quits QEMU)");
    let st = cmd
        .status()
        .map_err(|e| format!("cannot start {qemu_bin}: {e}. Run `cargo xtask deps`."))?;
    eprintln!(
        "xtask: guest {} (QEMU status {:?})",
        qemu::describe(st.code()),
        st.code()
    );
    Ok(match st.code() {
        Some(0) | Some(33) => 0,
        _ => 1,
    })
}

/// `--arch aarch64`: the kernel (its arm64 `Image`, with the arm64 initrd: Debian's busybox)
/// on QEMU `virt` (GICv3, Cortex-A72), `--cmdline` as the device tree's bootargs, `--disk`
/// images as virtio-blk on virtio-mmio: busybox init and a shell on the PL011, or with
/// `--exec` the command as process 1 as on x86_64. `--core-image` boots the core's test
/// image instead. What needs devices aarch64 lacks (USB, network, sound, the ISO) is refused
/// with a reason.
fn run_aarch64(a: &RunArgs) -> Result<i32> {
    let x86_only = [
        (!a.usb_disk.is_empty(), "--usb-disk"),
        (a.net != "none", "--net"),
        (a.audio.is_some(), "--audio"),
        (!a.add.is_empty(), "--add"),
        (!a.add_deb.is_empty(), "--add-deb"),
        (a.iso, "--iso"),
        (a.monitor.is_some(), "--monitor"),
    ];
    if let Some((_, flag)) = x86_only.iter().find(|(used, _)| *used) {
        return Err(format!(
            "{flag} is not available with --arch aarch64 yet: no such devices or x86_64 userland there (docs/arch.md)"
        ));
    }
    for d in &a.disk {
        if !d.exists() {
            return Err(format!("disk image {} does not exist", d.display()));
        }
    }
    crate::deps::ensure(true)?;
    let core = build::build_kernel_aarch64(a.build.debug)?;
    let mut m = if a.core_image {
        if !a.disk.is_empty() || a.exec.is_some() {
            return Err(
                "--core-image boots the core's test image: no --disk or --exec there".into(),
            );
        }
        Machine::aarch64(&core, a.cmdline.as_deref().unwrap_or(""))
    } else {
        let mut cmdline = String::from(a.cmdline.as_deref().unwrap_or(""));
        if let Some(e) = &a.exec {
            let hex: String = e.bytes().map(|b| format!("{b:02x}")).collect();
            cmdline = format!("{cmdline} loglevel=3 adros.exec={hex}");
        }
        let initrd = crate::initrd::build_aarch64()?;
        let mut m = Machine::aarch64(&build::aarch64_kernel_image(a.build.debug), cmdline.trim());
        if let Some(d) = m.direct.as_mut() {
            d.initrd = initrd.path;
        }
        m.disks = a.disk.clone();
        m
    };
    m.smp = a.smp;
    m.mem_mib = parse_mem(&a.mem)?;
    m.accel = a.accel.clone();
    if a.exec.is_some() {
        return run_exec(&m, a.timeout.unwrap_or(600));
    }
    m.gdb = a.gdb;
    if let Some(port) = a.gdb {
        eprintln!(
            "xtask run: QEMU waits for gdb on 127.0.0.1:{port}: gdb-multiarch {} -ex 'target remote 127.0.0.1:{port}'",
            core.with_file_name("adros-kernel").display()
        );
    }
    if a.headless || a.timeout.is_some() {
        return headless(&m, a.timeout);
    }
    let q = m.arch.qemu();
    let mut cmd = Command::new(q);
    cmd.args(m.args()).arg("-nographic");
    interactive(cmd, q, "AdrOS on aarch64")
}

/// `--headless`/`--timeout`: serial to stdout, no monitor; exit 124 on the timeout, as
/// timeout(1) does, else 0 for a clean guest exit.
fn headless(m: &Machine, timeout_s: Option<u64>) -> Result<i32> {
    let timeout = Duration::from_secs(timeout_s.unwrap_or(u64::MAX / 4));
    let out = qemu::run_headless(
        m,
        timeout,
        |b| {
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(b);
            let _ = o.flush();
        },
        None,
    )?;
    if out.timed_out {
        eprintln!(
            "\nxtask: stopped QEMU after the {} s timeout",
            timeout_s.unwrap_or(0)
        );
        return Ok(124);
    }
    eprintln!(
        "\nxtask: guest {} (QEMU status {:?})",
        qemu::describe(out.status),
        out.status
    );
    Ok(match out.status {
        Some(0) | Some(33) => 0,
        _ => 1,
    })
}

/// `--exec`: stream what the command prints (between the kernel's markers) to stdout, keep
/// the boot log in target/exec-boot.log, and return the command's exit status.
fn run_exec(m: &Machine, timeout_s: u64) -> Result<i32> {
    const BEGIN: &str = "@@ADROS-EXEC-BEGIN@@\n";
    const EXIT: &str = "@@ADROS-EXEC-EXIT ";
    let log_path = target_dir().join("exec-boot.log");
    let mut seen = String::new();
    let mut printed = 0usize; // bytes of the command's output already written
    let mut in_cmd = false;
    let mut status: Option<i32> = None;
    let out = qemu::run_headless(
        m,
        Duration::from_secs(timeout_s),
        |b| {
            seen.push_str(&String::from_utf8_lossy(b).replace('\r', ""));
            if !in_cmd && let Some(i) = seen.find(BEGIN) {
                in_cmd = true;
                printed = i + BEGIN.len();
            }
            if in_cmd && status.is_none() {
                // Print everything up to a possible (partial) marker.
                let tail = &seen[printed..];
                let safe = match tail.find("\n@@ADROS-EXEC-EXIT") {
                    Some(i) => i,
                    None => tail.len().saturating_sub(EXIT.len() + 1),
                };
                let safe = (0..=safe)
                    .rev()
                    .find(|&i| tail.is_char_boundary(i))
                    .unwrap_or(0);
                if safe > 0 {
                    let mut o = std::io::stdout().lock();
                    let _ = o.write_all(&tail.as_bytes()[..safe]);
                    let _ = o.flush();
                    printed += safe;
                }
                if let Some(i) = seen.find(EXIT) {
                    let rest = &seen[i + EXIT.len()..];
                    if let Some(end) = rest.find("@@") {
                        status = rest[..end].trim().parse().ok();
                    }
                }
            }
        },
        None,
    )?;
    let _ = std::fs::write(&log_path, &out.serial);
    if let Some(code) = status {
        return Ok(code);
    }
    if out.timed_out {
        eprintln!(
            "xtask: the command did not finish within {timeout_s} s; boot log in {}",
            log_path.display()
        );
        return Ok(124);
    }
    eprintln!(
        "xtask: the guest ended ({}) without reporting the command's status; boot log in {}",
        qemu::describe(out.status),
        log_path.display()
    );
    Ok(125)
}
