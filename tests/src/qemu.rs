//! The one place that knows how AdrOS is booted in QEMU: the machine (q35, `-cpu max`,
//! TCG multi-threaded by default, `isa-debug-exit`), its disks, and a headless run with a
//! timeout that captures the serial console. `cargo xtask run` and the integration tests
//! both use it, so the guest a user boots is the guest the tests boot.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// QEMU's status when the kernel wrote `0x10` to `isa-debug-exit` (`(code << 1) | 1`).
pub const STATUS_SUCCESS: i32 = 33;
/// The kernel reported a failure (e.g. an in-kernel test failed).
pub const STATUS_FAILURE: i32 = 35;
/// Kernel panic or fatal exception.
pub const STATUS_PANIC: i32 = 37;
/// ACPI power-off (S5): QEMU exits 0.
pub const STATUS_POWEROFF: i32 = 0;
/// The boot stub gave up (not Multiboot2, no long mode, …).
pub const STATUS_BOOT_STUB: i32 = 255;

/// The guest's CPU architecture (`cargo xtask run --arch`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Arch {
    /// q35, `-cpu max`, `isa-debug-exit` (the default).
    #[default]
    X86_64,
    /// QEMU `virt` with a GICv3, a Cortex-A72, the ELF loaded by `-kernel`; semihosting for
    /// the exit status (the same statuses as `isa-debug-exit`).
    Aarch64,
}

impl Arch {
    /// `x86_64` or `aarch64`; anything else is refused with the list.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "x86_64" => Ok(Self::X86_64),
            "aarch64" | "arm64" => Ok(Self::Aarch64),
            "riscv64" => Err("--arch riscv64: not yet (issue 19); use x86_64 or aarch64".into()),
            _ => Err(format!("--arch {s}: use x86_64 or aarch64")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::X86_64 => "x86_64",
            Self::Aarch64 => "aarch64",
        }
    }

    /// The QEMU system emulator for it.
    pub fn qemu(self) -> &'static str {
        match self {
            Self::X86_64 => "qemu-system-x86_64",
            Self::Aarch64 => "qemu-system-aarch64",
        }
    }

    /// The Rust target the kernel is built for.
    pub fn kernel_target(self) -> &'static str {
        match self {
            Self::X86_64 => "x86_64-unknown-none",
            Self::Aarch64 => "aarch64-unknown-none-softfloat",
        }
    }
}

/// Whether this machine's QEMU can run `arch` (its system emulator is on PATH).
pub fn qemu_available(arch: Arch) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(arch.qemu()).is_file()))
}

#[derive(Clone, Debug)]
pub struct Machine {
    /// The CPU architecture; everything below but `smp`, `mem_mib`, `accel`, `direct`,
    /// `dtb` and `gdb` is x86_64-only for now.
    pub arch: Arch,
    /// aarch64: a device tree for QEMU to pass instead of its own (`-dtb`), for the tests of
    /// malformed trees.
    pub dtb: Option<PathBuf>,
    pub iso: PathBuf,
    pub smp: u32,
    pub mem_mib: u64,
    /// `tcg` (default; run multi-threaded) or `kvm`.
    pub accel: String,
    /// Raw images attached as virtio-blk-pci.
    pub disks: Vec<PathBuf>,
    /// Raw images attached as usb-storage sticks on one USB controller, with QEMU device ids
    /// `stick0`, `stick1`… (so a monitor command can pull them: `device_del stick0`).
    pub usb_disks: Vec<PathBuf>,
    /// Raw images QEMU opens at start as drives `spare0`, `spare1`… without plugging them in:
    /// a monitor command plugs one later (`device_add usb-storage,bus=xhci.0,drive=spare0,id=plug0`).
    /// The USB controller is present when this or `usb_disks` is not empty.
    pub usb_spare: Vec<PathBuf>,
    /// Put the sticks behind one QEMU `usb-hub` (id `hub0`) instead of on root ports.
    pub usb_hub: bool,
    /// A QEMU human monitor (HMP) on this unix socket (`-monitor unix:PATH,server=on,wait=off`).
    pub monitor: Option<PathBuf>,
    /// The controller the sticks are on: `xhci` (QEMU's `qemu-xhci`, the default) or `ehci`
    /// (USB 2.0 as on an Intel ICH9: `ich9-usb-ehci1` with id `ehci` at 00:1d.7 and its three
    /// companion UHCIs `ich9-usb-uhci1/2/3` at 00:1d.0-2, two of its six ports each;
    /// high-speed sticks stay on the EHCI, full/low-speed devices such as `usb-hub` are
    /// handed to a UHCI).
    pub usb_controller: String,
    /// `None`: no network card (`-nic none`). `Some(opts)`: an e1000 (82540EM) on QEMU's
    /// user-mode network, `opts` being what follows `user` in `--net user[,…]`, as QEMU spells
    /// it (`hostfwd=tcp::8080-:80`). Host forwards always bind 127.0.0.1 (see [`net_args`]).
    pub net: Option<String>,
    /// With `net`: frames a host program writes reach the e1000 too, and it hears what the
    /// guest sends (see [`net_args`] and [`crate::netinject`]). `None` for every ordinary boot.
    pub net_inject: Option<NetInject>,
    /// `None`: no sound card. `Some(backend)`: QEMU's `intel-hda` with an `hda-duplex`
    /// codec on an audiodev (see [`audio_args`]): `wav:FILE[,OPTS]`, `none`, `alsa`, `oss`,
    /// `pa`, … as `--audio` takes them.
    pub audio: Option<String>,
    /// Boot this kernel directly (`-kernel`/`-initrd`/`-append`) instead of the ISO: AdrOS
    /// by default (PVH entry, the module bundle as the initrd; see [`Machine::pvh`]), and the
    /// Linux peer of `cargo xtask bench` on the same machine.
    pub direct: Option<DirectBoot>,
    /// `Some(port)`: QEMU's gdb stub listens on 127.0.0.1:port and the CPUs start stopped
    /// (`-S`) until a debugger continues them.
    pub gdb: Option<u16>,
}

/// The longest kernel command line the direct (PVH) boot can pass: QEMU 7.2's PVH option ROM
/// (`pvh.bin`) copies `-append` into a 4096-byte buffer without checking its length, and a
/// longer one overwrites the `hvm_start_info` behind it (the kernel then stops: "the
/// hvm_start_info magic is not 0x336ec578"). Longer command lines boot the GRUB ISO.
pub const PVH_CMDLINE_MAX: usize = 4000;

/// A kernel QEMU loads itself (`-kernel`, `-initrd`, `-append`), no ISO, no GRUB.
#[derive(Clone, Debug)]
pub struct DirectBoot {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub append: String,
}

impl Machine {
    /// The default machine: 2 CPUs, 1 GiB, TCG.
    pub fn new(iso: &Path) -> Self {
        Self {
            arch: Arch::X86_64,
            dtb: None,
            iso: iso.to_path_buf(),
            smp: 2,
            mem_mib: 1024,
            accel: "tcg".into(),
            disks: vec![],
            usb_disks: vec![],
            usb_spare: vec![],
            usb_hub: false,
            monitor: None,
            usb_controller: "xhci".into(),
            net: None,
            net_inject: None,
            audio: None,
            direct: None,
            gdb: None,
        }
    }

    /// The default machine booting AdrOS directly: QEMU loads the ELF `kernel` itself and
    /// enters it through its PVH note, with the module bundle `modules` (symbols + initrd,
    /// see [`crate::bundle`]) as the one module and `cmdline` as the command line — no
    /// firmware boot menu, no GRUB, no CD image to read.
    pub fn pvh(kernel: &Path, modules: &Path, cmdline: &str) -> Self {
        let mut m = Self::new(Path::new(""));
        m.direct = Some(DirectBoot {
            kernel: kernel.to_path_buf(),
            initrd: modules.to_path_buf(),
            append: cmdline.to_string(),
        });
        m
    }

    /// The aarch64 machine booting `kernel` (an ELF, through `-kernel`) with `append` as
    /// the device tree's `/chosen/bootargs`: `virt` with a GICv3, a Cortex-A72, 2 CPUs,
    /// 512 MiB.
    pub fn aarch64(kernel: &Path, append: &str) -> Self {
        let mut m = Self::new(Path::new(""));
        m.arch = Arch::Aarch64;
        m.mem_mib = 512;
        m.direct = Some(DirectBoot {
            kernel: kernel.to_path_buf(),
            initrd: PathBuf::new(),
            append: append.to_string(),
        });
        m
    }

    /// `-accel`'s value: TCG with a thread per vCPU, or what `accel` names.
    fn accel_arg(&self) -> String {
        if self.accel == "tcg" {
            "tcg,thread=multi".to_string()
        } else {
            self.accel.clone()
        }
    }

    /// `qemu-system-aarch64 -M virt,gic-version=3 -cpu cortex-a72 …`
    fn aarch64_args(&self) -> Vec<String> {
        let accel = self.accel_arg();
        let mut a: Vec<String> = [
            "-machine",
            "virt,gic-version=3",
            "-cpu",
            "cortex-a72",
            "-accel",
            &accel,
            "-no-reboot",
            "-semihosting-config",
            "enable=on,target=native",
            "-nic",
            "none",
            // Modern (version 2) virtio-mmio transports, as the kernel's driver expects.
            "-global",
            "virtio-mmio.force-legacy=false",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend([
            "-smp".into(),
            self.smp.to_string(),
            "-m".into(),
            format!("{}M", self.mem_mib),
        ]);
        // virtio-blk on the `virt` machine's virtio-mmio transports (QEMU fills them from
        // the top: the first disk is the device tree's last `virtio,mmio` node).
        for (i, d) in self.disks.iter().enumerate() {
            a.extend([
                "-drive".into(),
                format!("file={},if=none,id=vd{i},format=raw", d.display()),
            ]);
            a.extend(["-device".into(), format!("virtio-blk-device,drive=vd{i}")]);
        }
        if let Some(d) = &self.direct {
            a.extend(["-kernel".into(), d.kernel.display().to_string()]);
            if !d.initrd.as_os_str().is_empty() {
                a.extend(["-initrd".into(), d.initrd.display().to_string()]);
            }
            if !d.append.is_empty() {
                a.extend(["-append".into(), d.append.clone()]);
            }
        }
        if let Some(dtb) = &self.dtb {
            a.extend(["-dtb".into(), dtb.display().to_string()]);
        }
        if let Some(port) = self.gdb {
            a.extend(["-gdb".into(), format!("tcp:127.0.0.1:{port}"), "-S".into()]);
        }
        a
    }

    /// Arguments shared by every way of running the guest (interactive or headless).
    pub fn args(&self) -> Vec<String> {
        if self.arch == Arch::Aarch64 {
            return self.aarch64_args();
        }
        let accel = self.accel_arg();
        let mut a: Vec<String> = [
            "-machine",
            "q35",
            "-cpu",
            "max",
            "-accel",
            &accel,
            "-no-reboot",
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=0x04",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend([
            "-smp".into(),
            self.smp.to_string(),
            "-m".into(),
            format!("{}M", self.mem_mib),
        ]);
        match &self.direct {
            None => a.extend([
                "-boot".into(),
                "d".into(),
                "-cdrom".into(),
                self.iso.display().to_string(),
            ]),
            Some(d) => a.extend([
                "-kernel".into(),
                d.kernel.display().to_string(),
                "-initrd".into(),
                d.initrd.display().to_string(),
                "-append".into(),
                d.append.clone(),
            ]),
        }
        for (i, d) in self.disks.iter().enumerate() {
            a.extend([
                "-drive".into(),
                format!("file={},if=none,id=vd{i},format=raw", d.display()),
            ]);
            a.extend(["-device".into(), format!("virtio-blk-pci,drive=vd{i}")]);
        }
        if !self.usb_disks.is_empty() || !self.usb_spare.is_empty() {
            let id = match self.usb_controller.as_str() {
                "ehci" => {
                    // QEMU's ich9-ehci-uhci.cfg layout: function 0 must be multifunction,
                    // the EHCI comes first (its companions name its bus).
                    a.extend([
                        "-device".into(),
                        "ich9-usb-ehci1,id=ehci,addr=1d.7,multifunction=on".into(),
                    ]);
                    for (i, first) in [(1, 0), (2, 2), (3, 4)] {
                        a.extend([
                            "-device".into(),
                            format!(
                                "ich9-usb-uhci{i},masterbus=ehci.0,firstport={first},addr=1d.{},multifunction=on",
                                i - 1
                            ),
                        ]);
                    }
                    "ehci"
                }
                _ => {
                    a.extend(["-device".into(), "qemu-xhci,id=xhci".into()]);
                    "xhci"
                }
            };
            let bus = if self.usb_hub {
                a.extend([
                    "-device".into(),
                    format!("usb-hub,bus={id}.0,port=1,id=hub0"),
                ]);
                // QEMU's hub hangs off root port 1; its ports are 1.1 … 1.8.
                Some(1)
            } else {
                None
            };
            for (i, d) in self.usb_disks.iter().enumerate() {
                a.extend([
                    "-drive".into(),
                    format!("file={},if=none,id=ud{i},format=raw", d.display()),
                ]);
                let port = bus.map_or(String::new(), |h| format!(",port={h}.{}", i + 1));
                a.extend([
                    "-device".into(),
                    format!("usb-storage,bus={id}.0,drive=ud{i},id=stick{i}{port}"),
                ]);
            }
            for (i, d) in self.usb_spare.iter().enumerate() {
                a.extend([
                    "-drive".into(),
                    format!("file={},if=none,id=spare{i},format=raw", d.display()),
                ]);
            }
        }
        if let Some(m) = &self.monitor {
            a.extend([
                "-monitor".into(),
                format!("unix:{},server=on,wait=off", m.display()),
            ]);
        }
        match &self.net {
            None => a.extend(["-nic".into(), "none".into()]),
            Some(opts) => a.extend(net_args_with(opts, self.net_inject)),
        }
        if let Some(backend) = &self.audio {
            // Checked when the option was parsed; a bad one here is a test's bug.
            a.extend(audio_args(backend).unwrap_or_default());
        }
        if let Some(port) = self.gdb {
            a.extend(["-gdb".into(), format!("tcp:127.0.0.1:{port}"), "-S".into()]);
        }
        a
    }

    /// The USB bus sticks are plugged into (`xhci.0` or `ehci.0`), for `device_add`.
    pub fn usb_bus(&self) -> &'static str {
        match self.usb_controller.as_str() {
            "ehci" => "ehci.0",
            _ => "xhci.0",
        }
    }

    /// Extra arguments for a headless run: no display, serial on stdout, no monitor.
    pub fn headless_args() -> [&'static str; 6] {
        ["-display", "none", "-serial", "stdio", "-monitor", "none"]
    }
}

/// A gdb script that loads `kernel`'s symbols, attaches to QEMU's gdb stub on
/// 127.0.0.1:`port` and runs to the kernel's Rust entry (`kmain`). The boot stub starts in
/// 32-bit mode, so the break is a hardware one and the architecture is set by hand; gdb then
/// follows the CPU into long mode. `cargo xtask run --gdb` writes it and prints
/// `gdb -x FILE`; the gdb test drives it in batch mode.
pub fn gdb_script(kernel: &Path, port: u16) -> String {
    format!(
        "set pagination off\nset confirm off\nfile {}\nset architecture i386:x86-64\n\
         target remote 127.0.0.1:{port}\nhbreak kmain\ncontinue\ndelete 1\n",
        kernel.display()
    )
}

/// `-netdev user,id=n0,OPTS -device e1000,netdev=n0` for `--net user[,OPTS]`'s `OPTS`
/// (may be empty). Every `hostfwd=` rule's host address is forced to 127.0.0.1: an empty
/// one (`hostfwd=tcp::8080-:80`, which QEMU would bind to every interface) becomes
/// `127.0.0.1`, any other address is replaced and a note printed.
pub fn net_args(opts: &str) -> Vec<String> {
    net_args_with(opts, None)
}

/// A second way into the guest's network for frame-injection tests: QEMU's `dgram` netdev
/// on 127.0.0.1 (UDP, one Ethernet frame per datagram, no framing) and the user network
/// joined on one QEMU hub with the e1000. Every frame the host program sends from
/// 127.0.0.1:`host_port` to 127.0.0.1:`qemu_port` reaches the e1000 (and QEMU's user
/// network, which ignores what is not for it); every frame the guest sends reaches both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetInject {
    /// The UDP port QEMU's `dgram` netdev binds (127.0.0.1).
    pub qemu_port: u16,
    /// The UDP port of the host program (127.0.0.1), where QEMU sends the guest's frames.
    pub host_port: u16,
}

/// [`net_args`], and with `inject` the hub described at [`NetInject`]:
/// `-netdev user,id=n0,… -netdev dgram,id=inj,… -netdev hubport,…` for each of them and
/// `-device e1000,netdev=` a third hub port.
pub fn net_args_with(opts: &str, inject: Option<NetInject>) -> Vec<String> {
    let mut netdev = String::from("user,id=n0");
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        netdev.push(',');
        match o.strip_prefix("hostfwd=") {
            Some(rule) => netdev.push_str(&format!("hostfwd={}", loopback_rule(rule))),
            None => netdev.push_str(o),
        }
    }
    let Some(inj) = inject else {
        return vec![
            "-netdev".into(),
            netdev,
            "-device".into(),
            "e1000,netdev=n0".into(),
        ];
    };
    vec![
        "-netdev".into(),
        netdev,
        "-netdev".into(),
        format!(
            "dgram,id=inj,local.type=inet,local.host=127.0.0.1,local.port={},remote.type=inet,remote.host=127.0.0.1,remote.port={}",
            inj.qemu_port, inj.host_port
        ),
        "-netdev".into(),
        "hubport,id=hub-user,hubid=0,netdev=n0".into(),
        "-netdev".into(),
        "hubport,id=hub-inj,hubid=0,netdev=inj".into(),
        "-netdev".into(),
        "hubport,id=hub-nic,hubid=0".into(),
        "-device".into(),
        "e1000,netdev=hub-nic".into(),
    ]
}

/// `-audiodev … -device intel-hda -device hda-duplex,audiodev=snd0` for `--audio BACKEND`:
/// `wav:FILE[,OPTS]` records everything the guest plays into FILE (OPTS as QEMU spells
/// them, e.g. `out.frequency=48000`); any other word (`none`, `alsa`, `oss`, `pa`, …,
/// optionally `,OPTS`) is passed to QEMU as the audiodev driver.
///
/// With `wav:` the codec runs with `use-timer=false`: it then fetches from the guest's
/// DMA ring exactly when the backend consumes, instead of on its own timer into an 8 KiB
/// buffer that QEMU 7.2 throws away whole when the backend falls behind (which happens
/// under TCG on a loaded host and cut 2048 frames out of a test signal). Live backends
/// keep QEMU's default (the timer smooths their jitter).
pub fn audio_args(backend: &str) -> Result<Vec<String>, String> {
    let mut codec = String::from("hda-duplex,audiodev=snd0");
    let audiodev = if let Some(rest) = backend.strip_prefix("wav:") {
        codec.push_str(",use-timer=false");
        let (path, opts) = match rest.split_once(',') {
            Some((p, o)) => (p, Some(o)),
            None => (rest, None),
        };
        if path.is_empty() {
            return Err("--audio wav:FILE needs a file name".into());
        }
        if path.contains(',') || path.contains('=') {
            return Err(format!(
                "--audio wav:{path}: the file name may not contain ',' or '='"
            ));
        }
        let mut a = format!("wav,id=snd0,path={path}");
        if let Some(o) = opts.filter(|o| !o.is_empty()) {
            a.push(',');
            a.push_str(o);
        }
        a
    } else {
        let (driver, opts) = match backend.split_once(',') {
            Some((d, o)) => (d, Some(o)),
            None => (backend, None),
        };
        if driver.is_empty() || !driver.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!(
                "--audio {backend}: use wav:FILE, none, alsa, oss or pa (optionally ,OPTS)"
            ));
        }
        let mut a = format!("{driver},id=snd0");
        if let Some(o) = opts.filter(|o| !o.is_empty()) {
            a.push(',');
            a.push_str(o);
        }
        a
    };
    Ok(vec![
        "-audiodev".into(),
        audiodev,
        "-device".into(),
        "intel-hda".into(),
        "-device".into(),
        codec,
    ])
}

/// `[tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport` with hostaddr = 127.0.0.1.
fn loopback_rule(rule: &str) -> String {
    let (proto, rest) = match rule.split_once(':') {
        Some((p, r)) if p == "tcp" || p == "udp" || p.is_empty() => (p, r),
        _ => ("", rule),
    };
    let Some((host, guest)) = rest.split_once('-') else {
        return rule.to_string();
    };
    let port = host.rsplit_once(':').map_or(host, |(addr, port)| {
        if !addr.is_empty() && addr != "127.0.0.1" {
            eprintln!("qemu: hostfwd host address {addr} replaced by 127.0.0.1");
        }
        port
    });
    format!("{proto}:127.0.0.1:{port}-{guest}")
}

/// What a headless run produced.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The serial transcript (CRs removed), followed by QEMU's stderr if it said anything.
    pub serial: String,
    /// QEMU's exit status; None if we killed it (timeout or `stop_when`).
    pub status: Option<i32>,
    pub timed_out: bool,
    /// Whether `stop_when` ended the run.
    pub stopped: bool,
    pub elapsed: Duration,
    /// Every monitor command sent ([`InputStep::monitor`]) and what the monitor answered.
    pub monitor: String,
}

/// How the guest ended, from QEMU's status.
pub fn describe(status: Option<i32>) -> &'static str {
    match status {
        Some(STATUS_POWEROFF) => "powered off",
        Some(STATUS_SUCCESS) => "success",
        Some(STATUS_FAILURE) => "failure reported by the kernel",
        Some(STATUS_PANIC) => "kernel panic or fatal exception",
        Some(STATUS_BOOT_STUB) => "boot stub failure",
        None => "stopped (timeout or by the harness)",
        _ => "QEMU error",
    }
}

/// Runs the guest headless, passing serial output to `echo` as it arrives, until QEMU exits
/// or `timeout` passes (then QEMU is killed). `stop_when` can end the run early (QEMU is
/// killed) once the transcript so far satisfies it.
pub fn run_headless(
    m: &Machine,
    timeout: Duration,
    echo: impl FnMut(&[u8]),
    stop_when: Option<&dyn Fn(&str) -> bool>,
) -> Result<Outcome, String> {
    run_headless_with_input(m, timeout, echo, stop_when, &[])
}

/// One step of typing into the guest's serial console: once `expect` appears in the
/// transcript (after where the previous step's `expect` matched), `send` is written to the
/// serial input.
#[derive(Clone, Debug)]
pub struct InputStep {
    pub expect: String,
    pub send: Vec<u8>,
    /// `send` is a QEMU monitor (HMP) command line for [`Machine::monitor`], not serial input.
    pub monitor: bool,
}

/// The line that ends the kernel's hang report (`adros_kernel::panic::hang_report`).
pub const HANG_REPORT_END: &str = "!!! end of hang report";

/// A connection to QEMU's human monitor on a unix socket.
struct Monitor {
    sock: std::os::unix::net::UnixStream,
}

impl Monitor {
    /// Connects (QEMU creates the socket as it starts: retried for 10 s) and reads the banner.
    fn connect(path: &Path) -> Result<Self, String> {
        let t0 = Instant::now();
        let sock = loop {
            match std::os::unix::net::UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) if t0.elapsed() > Duration::from_secs(10) => {
                    return Err(format!("monitor {}: {e}", path.display()));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        let _ = sock.set_read_timeout(Some(Duration::from_millis(200)));
        let mut m = Self { sock };
        m.until_prompt(Duration::from_secs(10));
        Ok(m)
    }

    /// What the monitor prints up to its next `(qemu) ` prompt (or `limit`).
    fn until_prompt(&mut self, limit: Duration) -> String {
        let t0 = Instant::now();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while t0.elapsed() < limit && !got.ends_with(b"(qemu) ") {
            match self.sock.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
        }
        String::from_utf8_lossy(&got).into_owned()
    }

    /// Sends one command line; returns the monitor's answer (the echo and escape sequences
    /// removed).
    fn command(&mut self, cmd: &str) -> String {
        use std::io::Write;
        if self
            .sock
            .write_all(format!("{}\n", cmd.trim_end()).as_bytes())
            .is_err()
        {
            return String::from("(monitor connection lost)");
        }
        let raw = self.until_prompt(Duration::from_secs(30));
        // HMP's readline echoes the command with terminal escapes; keep the lines after it.
        let clean: String = strip_escapes(&raw).replace('\r', "");
        clean
            .lines()
            .skip(1)
            .filter(|l| !l.starts_with("(qemu)"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn strip_escapes(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\x1b' {
            // CSI: ESC [ params final-byte
            if it.peek() == Some(&'[') {
                it.next();
                for d in it.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// [`run_headless`], typing `script` into the serial console step by step.
pub fn run_headless_with_input(
    m: &Machine,
    timeout: Duration,
    mut echo: impl FnMut(&[u8]),
    stop_when: Option<&dyn Fn(&str) -> bool>,
    script: &[InputStep],
) -> Result<Outcome, String> {
    use std::io::Write;
    let qemu = m.arch.qemu();
    let mut cmd = Command::new(qemu);
    cmd.args(m.args()).args(Machine::headless_args());
    cmd.stdin(if script.is_empty() {
        Stdio::null()
    } else {
        Stdio::piped()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child: Child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {qemu}: {e}. Run `cargo xtask deps`."))?;
    let mut stdin = child.stdin.take();
    let (mut step, mut matched_to) = (0usize, 0usize);
    let mut monitor: Option<Monitor> = None;
    let mut monitor_log = String::new();
    let mut stdout = child.stdout.take().ok_or("qemu stdout not piped")?;
    let mut stderr = child.stderr.take().ok_or("qemu stderr not piped")?;
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
    let (mut timed_out, mut stopped) = (false, false);
    let status = loop {
        if let Ok(chunk) = rx.recv_timeout(Duration::from_millis(50)) {
            echo(&chunk);
            serial.extend_from_slice(&chunk);
            while let Some(st) = script.get(step) {
                let hay = &serial[matched_to..];
                let Some(at) = hay
                    .windows(st.expect.len().max(1))
                    .position(|w| w == st.expect.as_bytes())
                else {
                    break;
                };
                matched_to += at + st.expect.len();
                if st.monitor {
                    let cmd = String::from_utf8_lossy(&st.send).into_owned();
                    if monitor.is_none() {
                        match m.monitor.as_deref().map(Monitor::connect) {
                            Some(Ok(c)) => monitor = Some(c),
                            Some(Err(e)) => monitor_log.push_str(&format!("{e}\n")),
                            None => monitor_log.push_str("no monitor socket configured\n"),
                        }
                    }
                    let answer = monitor
                        .as_mut()
                        .map_or_else(|| String::from("(no monitor)"), |c| c.command(&cmd));
                    monitor_log.push_str(&format!(
                        "[{:.1} s] (qemu) {cmd}\n{answer}\n",
                        start.elapsed().as_secs_f64()
                    ));
                } else if let Some(w) = stdin.as_mut() {
                    let _ = w.write_all(&st.send).and_then(|_| w.flush());
                }
                step += 1;
            }
            if let Some(f) = stop_when
                && f(&String::from_utf8_lossy(&serial))
            {
                stopped = true;
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
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
            // Before killing a guest that ran out of time, ask it where it is: an NMI makes
            // the kernel print every CPU and every thread with its kernel backtrace (the
            // hang report, docs/debugging.md). Best effort, a few seconds at most.
            if let Some(path) = m.monitor.as_deref() {
                if monitor.is_none() {
                    monitor = Monitor::connect(path).ok();
                }
                if let Some(c) = monitor.as_mut() {
                    let answer = c.command("nmi");
                    monitor_log.push_str(&format!(
                        "[{:.1} s] (qemu) nmi   (sent by the harness: the guest timed out)\n{answer}\n",
                        start.elapsed().as_secs_f64()
                    ));
                    let t0 = Instant::now();
                    while t0.elapsed() < Duration::from_secs(5) {
                        if let Ok(chunk) = rx.recv_timeout(Duration::from_millis(100)) {
                            echo(&chunk);
                            serial.extend_from_slice(&chunk);
                        }
                        let tail = &serial[serial.len().saturating_sub(256)..];
                        if tail
                            .windows(HANG_REPORT_END.len())
                            .any(|w| w == HANG_REPORT_END.as_bytes())
                        {
                            break;
                        }
                    }
                }
            }
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
    Ok(Outcome {
        serial,
        status,
        timed_out,
        stopped,
        elapsed: start.elapsed(),
        monitor: monitor_log,
    })
}

#[cfg(test)]
mod audio_tests {
    use super::audio_args;

    #[test]
    fn audio_backends_become_an_audiodev_and_an_hda_pair() {
        assert_eq!(
            audio_args("wav:/tmp/o.wav").unwrap(),
            [
                "-audiodev",
                "wav,id=snd0,path=/tmp/o.wav",
                "-device",
                "intel-hda",
                "-device",
                "hda-duplex,audiodev=snd0,use-timer=false"
            ]
        );
        assert_eq!(
            audio_args("wav:o.wav,out.frequency=8000").unwrap()[1],
            "wav,id=snd0,path=o.wav,out.frequency=8000"
        );
        assert_eq!(audio_args("none").unwrap()[1], "none,id=snd0");
        assert_eq!(audio_args("none").unwrap()[5], "hda-duplex,audiodev=snd0");
        assert_eq!(audio_args("pa").unwrap()[1], "pa,id=snd0");
        assert!(audio_args("wav:").is_err());
        assert!(audio_args("").is_err());
        assert!(audio_args("a=b").is_err());
    }
}

#[cfg(test)]
mod net_tests {
    use super::net_args;

    #[test]
    fn host_forwards_bind_loopback_only() {
        assert_eq!(
            net_args("hostfwd=tcp::8080-:80"),
            [
                "-netdev",
                "user,id=n0,hostfwd=tcp:127.0.0.1:8080-:80",
                "-device",
                "e1000,netdev=n0"
            ]
        );
        assert_eq!(
            net_args("hostfwd=udp:0.0.0.0:5353-10.0.2.15:53,hostfwd=tcp:127.0.0.1:2222-:22")[1],
            "user,id=n0,hostfwd=udp:127.0.0.1:5353-10.0.2.15:53,hostfwd=tcp:127.0.0.1:2222-:22"
        );
        assert_eq!(net_args("")[1], "user,id=n0");
    }
}
