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
    /// Raw disk image attached as a USB stick on qemu-xhci (repeatable).
    #[arg(long = "usb-disk")]
    pub usb_disk: Vec<PathBuf>,
    /// No display window; serial on the terminal.
    #[arg(long)]
    pub headless: bool,
    /// Stop QEMU after this many seconds (exit status 124, like timeout(1)).
    #[arg(long)]
    pub timeout: Option<u64>,
    /// HOST_PATH:GUEST_PATH packed into the initrd (repeatable; needs user space).
    #[arg(long)]
    pub add: Vec<String>,
    /// Run COMMAND with /bin/sh -c in the guest and exit with its status (needs user space).
    #[arg(long)]
    pub exec: Option<String>,
    /// Accelerator: tcg (default) or kvm.
    #[arg(long, default_value = "tcg")]
    pub accel: String,
    #[command(flatten)]
    pub build: BuildArgs,
}

pub fn run(a: RunArgs) -> Result<i32> {
    if a.exec.is_some() || !a.add.is_empty() {
        return Err("--exec and --add need AdrOS's user space (initrd, /bin/sh), which is not built yet (issue 3). \
                    Boot without them, or use --cmdline."
            .into());
    }
    if !matches!(a.accel.as_str(), "tcg" | "kvm") {
        return Err(format!("--accel {}: use tcg or kvm", a.accel));
    }
    let built = build::build(&a.build)?;
    let iso = match &a.cmdline {
        None => built.iso.clone(),
        Some(c) => {
            let iso = target_dir().join("adros-run.iso");
            build::make_iso(&built.kernel, &built.symbols, c, &iso)?;
            iso
        }
    };
    let mut m = Machine::new(&iso);
    m.smp = a.smp;
    m.mem_mib = parse_mem(&a.mem)?;
    m.accel = a.accel.clone();
    m.disks = a.disk.clone();
    m.usb_disks = a.usb_disk.clone();
    for d in m.disks.iter().chain(m.usb_disks.iter()) {
        if !d.exists() {
            return Err(format!("disk image {} does not exist", d.display()));
        }
    }
    if a.headless || a.timeout.is_some() {
        let timeout = Duration::from_secs(a.timeout.unwrap_or(u64::MAX / 4));
        let out = qemu::run_headless(
            &m,
            timeout,
            |b| {
                let mut o = std::io::stdout().lock();
                let _ = o.write_all(b);
                let _ = o.flush();
            },
            None,
        )?;
        if out.timed_out {
            eprintln!("\nxtask: stopped QEMU after the {} s timeout", a.timeout.unwrap_or(0));
            return Ok(124);
        }
        eprintln!("\nxtask: guest {} (QEMU status {:?})", qemu::describe(out.status), out.status);
        return Ok(match out.status {
            Some(0) | Some(33) => 0,
            _ => 1,
        });
    }
    // Interactive: serial multiplexed with the QEMU monitor on this terminal (Ctrl-A X quits).
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(m.args()).args(["-serial", "mon:stdio"]);
    if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
        cmd.args(["-display", "none"]);
    }
    eprintln!("xtask: booting AdrOS (Ctrl-A X quits QEMU)");
    let st = cmd.status().map_err(|e| format!("cannot start qemu-system-x86_64: {e}. Run `cargo xtask deps`."))?;
    eprintln!("xtask: guest {} (QEMU status {:?})", qemu::describe(st.code()), st.code());
    Ok(match st.code() {
        Some(0) | Some(33) => 0,
        _ => 1,
    })
}
