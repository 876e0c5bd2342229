//! Assembling QEMU command lines and running a guest with a timeout, capturing serial.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::util::Result;

#[derive(Clone, Debug)]
pub struct Machine {
    pub iso: PathBuf,
    pub smp: u32,
    pub mem_mib: u64,
    pub accel: String,
    pub disks: Vec<PathBuf>,
    pub usb_disks: Vec<PathBuf>,
}

impl Machine {
    pub fn new(iso: &Path) -> Self {
        Self { iso: iso.to_path_buf(), smp: 2, mem_mib: 1024, accel: "tcg".into(), disks: vec![], usb_disks: vec![] }
    }

    /// Arguments shared by every way of running the guest.
    pub fn args(&self) -> Vec<String> {
        let accel = if self.accel == "tcg" { "tcg,thread=multi".to_string() } else { self.accel.clone() };
        let mut a: Vec<String> = [
            "-machine", "q35", "-cpu", "max", "-accel", &accel, "-no-reboot",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-boot", "d",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(["-smp".into(), self.smp.to_string(), "-m".into(), format!("{}M", self.mem_mib)]);
        a.extend(["-cdrom".into(), self.iso.display().to_string()]);
        for (i, d) in self.disks.iter().enumerate() {
            a.extend(["-drive".into(), format!("file={},if=none,id=vd{i},format=raw", d.display())]);
            a.extend(["-device".into(), format!("virtio-blk-pci,drive=vd{i}")]);
        }
        if !self.usb_disks.is_empty() {
            a.extend(["-device".into(), "qemu-xhci,id=xhci".into()]);
            for (i, d) in self.usb_disks.iter().enumerate() {
                a.extend(["-drive".into(), format!("file={},if=none,id=ud{i},format=raw", d.display())]);
                a.extend(["-device".into(), format!("usb-storage,bus=xhci.0,drive=ud{i}")]);
            }
        }
        a
    }
}

/// What a headless run produced.
pub struct Outcome {
    pub serial: String,
    /// QEMU's exit status, None if we killed it at the timeout.
    pub status: Option<i32>,
    pub timed_out: bool,
    pub elapsed: Duration,
}

/// How the guest ended, from QEMU's status (isa-debug-exit writes `(code << 1) | 1`).
pub fn describe(status: Option<i32>) -> &'static str {
    match status {
        Some(0) => "powered off",
        Some(33) => "success",
        Some(35) => "failure reported by the kernel",
        Some(37) => "kernel panic or fatal exception",
        Some(255) => "boot stub failure",
        None => "timed out",
        _ => "QEMU error",
    }
}

/// Runs the guest headless, echoing serial output through `echo` as it arrives, until it
/// exits or `timeout` passes (then QEMU is killed). `stop_when` can end the run early when
/// the serial transcript satisfies it.
pub fn run_headless(
    m: &Machine,
    timeout: Duration,
    mut echo: impl FnMut(&[u8]),
    stop_when: Option<&dyn Fn(&str) -> bool>,
) -> Result<Outcome> {
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(m.args()).args(["-display", "none", "-serial", "stdio", "-monitor", "none"]);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let start = Instant::now();
    let mut child: Child = cmd.spawn().map_err(|e| format!("cannot start qemu-system-x86_64: {e}. Run `cargo xtask deps`."))?;
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut serial = Vec::new();
    let mut timed_out = false;
    let status = loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(chunk) => {
                echo(&chunk);
                serial.extend_from_slice(&chunk);
                if let Some(f) = stop_when {
                    if f(&String::from_utf8_lossy(&serial)) {
                        let _ = child.kill();
                        let _ = child.wait();
                        break None;
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {}
        }
        if let Ok(Some(st)) = child.try_wait() {
            // Drain what is left.
            while let Ok(chunk) = rx.recv_timeout(Duration::from_millis(200)) {
                echo(&chunk);
                serial.extend_from_slice(&chunk);
            }
            break st.code();
        }
        if start.elapsed() > timeout {
            timed_out = true;
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
    };
    let _ = reader.join();
    let qemu_err = err_reader.join().unwrap_or_default();
    let mut serial = String::from_utf8_lossy(&serial).replace('\r', "");
    if !qemu_err.trim().is_empty() {
        serial.push_str("\n[qemu stderr] ");
        serial.push_str(qemu_err.trim());
        serial.push('\n');
    }
    let _ = std::io::stdout().flush();
    Ok(Outcome { serial, status, timed_out, elapsed: start.elapsed() })
}
