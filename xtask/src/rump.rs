//! `cargo xtask rump …`: cross-building NetBSD rump components with buildrump.sh.
//! (Owned by the rumpuser-adros work; see issue 5 and docs/rump.md.)
//!
//! ## Where things are
//! * NetBSD source: `netbsd-src/` (if checked out), `$ADROS_NETBSD_SRC`, `~/.cache/adros/netbsd-src`.
//! * buildrump.sh: `buildrump/buildrump.sh/`, `$ADROS_BUILDRUMP`, `~/.cache/adros/buildrump.sh`.
//! * Output: `~/.cache/adros/rump/<netbsd commit>-<flags hash>/` (`$ADROS_RUMP_CACHE` overrides
//!   `~/.cache/adros/rump`), holding `dest/lib/*.a`, `dest/include/`, `build.log`,
//!   `components.txt` and a `.complete` stamp. The hash covers the target, the flags and
//!   buildrump.sh's commit; the stamp holds a hash of every file under `buildrump/` that is
//!   ours (component list, patches, makefiles), so changing one re-runs the incremental build
//!   in the same directory, and an unchanged second run is a cache hit.
//!
//! ## The contract with the tests
//! `ensure_host_build()` returns the `dest/` directory of the host build. `cargo xtask test`
//! exports it as **`ADROS_RUMP_HOST_DIR`** (`lib/` holds the component archives, `include/` the
//! headers). Tests that need rump components read that variable; when it is unset they fall
//! back to the same lookup (`rumpuser-adros/build.rs` finds a complete host build in the cache),
//! and without one they print `SKIPPED: no NetBSD source (see README)`.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use clap::{Args, Subcommand};

use crate::util::{Result, root, spinner};

/// The variable `cargo xtask test` sets for host tests: the host build's `dest/` directory.
pub const HOST_DIR_ENV: &str = "ADROS_RUMP_HOST_DIR";

#[derive(Args, Clone)]
pub struct RumpArgs {
    #[command(subcommand)]
    pub cmd: RumpCmd,
}

#[derive(Subcommand, Clone)]
pub enum RumpCmd {
    /// Build the rump components for a target.
    Build {
        /// host (for the hypercall tests), kernel (freestanding, linked into AdrOS) or posix
        /// (NetBSD's own POSIX librumpuser, for benchmark comparisons).
        #[arg(long, default_value = "host")]
        target: String,
        /// Rebuild even when the cache has a complete build.
        #[arg(long)]
        force: bool,
    },
    /// Print where the sources are and which builds are cached.
    Status,
    /// Alias of `cargo xtask bench rump`: the ext2 workload on rumpuser-adros and on NetBSD's
    /// own POSIX librumpuser (same components, same run, A/B alternated): prints medians and
    /// ratios, writes target/bench/rump.json.
    Bench {
        /// Runs of each host (alternating rumpuser-adros, NetBSD, rumpuser-adros, …).
        #[arg(long, default_value_t = 3)]
        runs: u32,
    },
}

pub fn rump(a: RumpArgs) -> Result<i32> {
    match a.cmd {
        RumpCmd::Build { target, force } => {
            let t = Target::parse(&target)?;
            let Some(src) = Sources::find() else {
                return Err(no_source_message());
            };
            let out = build(t, &src, force)?;
            if t == Target::Host {
                println!("export {HOST_DIR_ENV}={}", out.display());
            } else {
                println!("{}", out.display());
            }
            Ok(0)
        }
        RumpCmd::Bench { runs } => crate::bench::rump::run(runs),
        RumpCmd::Status => {
            match Sources::find() {
                Some(s) => {
                    println!(
                        "NetBSD source: {} ({})",
                        s.netbsd.display(),
                        s.netbsd_commit
                    );
                    println!(
                        "buildrump.sh:  {} ({})",
                        s.buildrump.display(),
                        s.buildrump_commit
                    );
                    for t in [Target::Host, Target::Kernel, Target::Posix] {
                        let d = cache_dir(t, &s)?;
                        let state = if d.join(".complete").exists() {
                            "built"
                        } else {
                            "not built"
                        };
                        println!("{:<7} {state:<10} {}", t.name(), d.display());
                    }
                }
                None => println!("{}", no_source_message()),
            }
            Ok(0)
        }
    }
}

/// The NetBSD source message for commands that cannot work without it.
pub fn no_source() -> String {
    no_source_message()
}

/// Used by `cargo xtask test`: builds (or finds cached) host rump components when NetBSD
/// source is available. `Ok(None)` means "no NetBSD source": rump tests are skipped.
pub fn ensure_host_build() -> Result<Option<PathBuf>> {
    match Sources::find() {
        None => Ok(None),
        Some(src) => build(Target::Host, &src, false).map(Some),
    }
}

/// The variable `cargo xtask build` sets for the kernel's build script: the kernel build's
/// `dest/` directory, whose archives are then linked into the kernel.
pub const KERNEL_DIR_ENV: &str = "ADROS_RUMP_KERNEL_DIR";

/// Used by `cargo xtask build`: the freestanding rump components to link into the kernel,
/// built (minutes, once) or found in the cache when NetBSD source is available. `Ok(None)`:
/// no NetBSD source, or `ADROS_RUMP=off` — the kernel is built native-only and says so.
pub fn ensure_kernel_build() -> Result<Option<PathBuf>> {
    if std::env::var("ADROS_RUMP").is_ok_and(|v| v == "off" || v == "0") {
        return Ok(None);
    }
    match Sources::find() {
        None => Ok(None),
        Some(src) => build(Target::Kernel, &src, false).map(Some),
    }
}

fn no_source_message() -> String {
    "no NetBSD source found. Rump components need the netbsd-src and buildrump.sh submodules \
     (git submodule update --init netbsd-src buildrump/buildrump.sh), or $ADROS_NETBSD_SRC and \
     $ADROS_BUILDRUMP, or checkouts in ~/.cache/adros/netbsd-src and ~/.cache/adros/buildrump.sh \
     (see README and docs/rump.md)"
        .into()
}

// ---------------------------------------------------------------------------------------
// Targets and flags

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Target {
    /// Linked into host test binaries with rumpuser-adros's std host.
    Host,
    /// Freestanding, for the AdrOS kernel.
    Kernel,
    /// NetBSD's own POSIX librumpuser (the benchmark peer).
    Posix,
}

impl Target {
    fn parse(s: &str) -> Result<Target> {
        match s {
            "host" => Ok(Target::Host),
            "kernel" => Ok(Target::Kernel),
            "posix" => Ok(Target::Posix),
            o => Err(format!(
                "unknown rump target {o:?}: use host, kernel or posix"
            )),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Target::Host => "host",
            Target::Kernel => "kernel",
            Target::Posix => "posix",
        }
    }

    /// Extra `-F` flags for buildrump.sh (besides the common ones).
    fn cflags(self) -> Vec<&'static str> {
        let mut f = vec![
            // GCC >= 10 defaults to -fno-common; the 2016 tree has tentative definitions.
            "-fcommon",
            // Warnings new since 2016 that NetBSD's own -Werror lists would trip on.
            "-Wno-error",
        ];
        if self == Target::Kernel {
            f.extend([
                "-mcmodel=kernel",
                "-mno-red-zone",
                "-fno-stack-protector",
                // No FPU/vector state in kernel code unless the kernel saves it on every switch.
                "-mgeneral-regs-only",
                "-fno-pic",
                "-fno-pie",
                "-fno-asynchronous-unwind-tables",
            ]);
        }
        f
    }

    /// `-V` make variables for buildrump.sh.
    fn make_vars(self) -> Vec<&'static str> {
        let mut v = vec![
            // -Werror off (CWARNFLAGS=-Wno-error is not enough: Makefile.rump re-adds -Werror).
            "NOGCCERROR=1",
        ];
        if self != Target::Posix {
            // curlwp through rumpuser_curlwp(): the kernel's %fs stays free.
            v.push("RUMP_CURLWP=hypercall");
        }
        if self == Target::Kernel {
            v.push("MKPIC=no");
        }
        v
    }

    fn kernel_only(self) -> bool {
        self != Target::Posix
    }
}

/// The component list (`buildrump/components.txt`): `(library name, targets)`.
fn components() -> Result<Vec<(String, Vec<String>)>> {
    let p = root().join("buildrump/components.txt");
    let text = fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut w = l.split_whitespace();
            let name = w.next().unwrap_or_default().to_string();
            let targets: Vec<String> = w.map(str::to_string).collect();
            (name, targets)
        })
        .collect())
}

fn components_for(t: Target) -> Result<Vec<String>> {
    Ok(components()?
        .into_iter()
        .filter(|(_, ts)| ts.is_empty() || ts.iter().any(|x| x == t.name()))
        .map(|(n, _)| n)
        .collect())
}

/// Component directories NetBSD's default rump build skips (the PCI drivers: they need a
/// platform header), relative to the NetBSD tree, built after the main pass.
const EXTRA_NETBSD_DIRS: &[&str] = &[
    "sys/rump/dev/lib/libpci",
    "sys/rump/dev/lib/libpci_usbhc",
    "sys/rump/dev/lib/libpci_if_wm",
    "sys/rump/dev/lib/libmiiphy",
    "sys/rump/dev/lib/libpci_hdaudio",
    "sys/rump/dev/lib/libhdaudio_hdafg",
];

/// Our own component directories under `buildrump/components/`.
const OUR_COMPONENTS: &[&str] = &["libpci_xhci"];

// ---------------------------------------------------------------------------------------
// Sources

pub struct Sources {
    netbsd: PathBuf,
    pub netbsd_commit: String,
    buildrump: PathBuf,
    buildrump_commit: String,
}

fn home_cache() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"))
        .join(".cache/adros")
}

fn first_existing(cands: Vec<Option<PathBuf>>, marker: &str) -> Option<PathBuf> {
    cands
        .into_iter()
        .flatten()
        .find(|p| p.join(marker).is_file())
}

fn git_commit(dir: &Path) -> String {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

impl Sources {
    pub fn find() -> Option<Sources> {
        let env = |v: &str| std::env::var_os(v).map(PathBuf::from);
        let netbsd = first_existing(
            vec![
                Some(root().join("netbsd-src")),
                env("ADROS_NETBSD_SRC"),
                Some(home_cache().join("netbsd-src")),
            ],
            "sys/rump/Makefile.rump",
        )?;
        let buildrump = first_existing(
            vec![
                Some(root().join("buildrump/buildrump.sh")),
                env("ADROS_BUILDRUMP"),
                Some(home_cache().join("buildrump.sh")),
            ],
            "buildrump.sh",
        )?;
        Some(Sources {
            netbsd_commit: git_commit(&netbsd),
            buildrump_commit: git_commit(&buildrump),
            netbsd,
            buildrump,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Cache key

/// FNV-1a: stable across Rust versions (unlike `DefaultHasher`'s algorithm).
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn add(&mut self, b: &[u8]) {
        for &x in b {
            self.0 ^= u64::from(x);
            self.0 = self.0.wrapping_mul(0x100_0000_01b3);
        }
        self.0 ^= 0xff;
        self.0 = self.0.wrapping_mul(0x100_0000_01b3);
    }
}

/// Our files under `buildrump/` (not the buildrump.sh submodule), sorted.
fn our_buildrump_files() -> Vec<PathBuf> {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p.file_name().is_some_and(|n| n == "buildrump.sh") {
                continue;
            }
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_none_or(|x| x != "md") {
                // Documentation does not change the build.
                out.push(p);
            }
        }
    }
    let mut v = Vec::new();
    walk(&root().join("buildrump"), &mut v);
    v.sort();
    v
}

/// Bump when the build procedure in this file changes in a way that changes the output.
const PROCEDURE_VERSION: &str = "3";

fn cache_dir(t: Target, s: &Sources) -> Result<PathBuf> {
    let mut h = Fnv::new();
    h.add(PROCEDURE_VERSION.as_bytes());
    h.add(t.name().as_bytes());
    h.add(s.buildrump_commit.as_bytes());
    for f in t.cflags().iter().chain(t.make_vars().iter()) {
        h.add(f.as_bytes());
    }
    let base = std::env::var_os("ADROS_RUMP_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| home_cache().join("rump"));
    let commit: String = s.netbsd_commit.chars().take(12).collect();
    Ok(base.join(format!("{commit}-{}-{:016x}", t.name(), h.0)))
}

/// The stamp a complete build writes: a hash of our `buildrump/` files. When they change, the
/// next run re-runs the (incremental) build in the same directory.
fn our_files_stamp() -> Result<String> {
    let mut h = Fnv::new();
    for f in our_buildrump_files() {
        let rel = f.strip_prefix(root()).unwrap_or(&f);
        h.add(rel.to_string_lossy().as_bytes());
        h.add(&fs::read(&f).map_err(|e| format!("{}: {e}", f.display()))?);
    }
    Ok(format!("{:016x}", h.0))
}

// ---------------------------------------------------------------------------------------
// Building

fn lib_path(dest: &Path, name: &str, t: Target) -> PathBuf {
    // Host test binaries are PIE: link the PIC archives there.
    let file = if t == Target::Kernel {
        format!("lib{name}.a")
    } else {
        format!("lib{name}_pic.a")
    };
    dest.join("lib").join(file)
}

fn missing_components(dest: &Path, t: Target) -> Result<Vec<String>> {
    Ok(components_for(t)?
        .into_iter()
        .filter(|c| !lib_path(dest, c, t).is_file())
        .collect())
}

/// Builds (or reuses) the components for `t`; returns the `dest/` directory.
pub fn build(t: Target, s: &Sources, force: bool) -> Result<PathBuf> {
    let dir = cache_dir(t, s)?;
    let dest = dir.join("dest");
    let stamp = our_files_stamp()?;
    let complete = fs::read_to_string(dir.join(".complete")).unwrap_or_default();
    if !force
        && complete.lines().next() == Some(stamp.as_str())
        && missing_components(&dest, t)?.is_empty()
    {
        eprintln!("rump {}: cache hit: {}", t.name(), dir.display());
        return Ok(dest);
    }
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let _ = fs::remove_file(dir.join(".complete"));
    let log_path = dir.join("build.log");
    let log = fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let t0 = Instant::now();
    eprintln!(
        "rump {}: building NetBSD {} with buildrump.sh {} into {} (this takes many minutes the first time; log: {})",
        t.name(),
        &s.netbsd_commit[..s.netbsd_commit.len().min(12)],
        &s.buildrump_commit[..s.buildrump_commit.len().min(12)],
        dir.display(),
        log_path.display()
    );
    let mut b = Builder {
        t,
        s,
        dir: dir.clone(),
        log,
    };
    b.run_buildrump(&["tools", "build"], "buildrump.sh tools build")?;
    if t.kernel_only() {
        b.build_extras()?;
    }
    b.run_buildrump(&["install"], "buildrump.sh install")?;
    let missing = missing_components(&dest, t)?;
    if !missing.is_empty() {
        return Err(format!(
            "rump {}: components missing after the build: {} (see {})",
            t.name(),
            missing.join(", "),
            log_path.display()
        ));
    }
    if t == Target::Kernel {
        check_no_stack_protector(&dest)?;
    }
    let comps = components_for(t)?;
    let mut manifest = String::new();
    for c in &comps {
        let sz = fs::metadata(lib_path(&dest, c, t))
            .map(|m| m.len())
            .unwrap_or(0);
        manifest.push_str(&format!("{c} {sz}\n"));
    }
    fs::write(dir.join("components.txt"), &manifest).map_err(|e| e.to_string())?;
    fs::write(
        dir.join(".complete"),
        format!("{stamp}\nbuilt in {:.0} s\n", t0.elapsed().as_secs_f64()),
    )
    .map_err(|e| e.to_string())?;
    let nlibs = fs::read_dir(dest.join("lib"))
        .map(|r| {
            r.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".a"))
                .count()
        })
        .unwrap_or(0);
    eprintln!(
        "rump {}: built in {:.0} s: {} archives; components: {}",
        t.name(),
        t0.elapsed().as_secs_f64(),
        nlibs,
        comps.join(" ")
    );
    Ok(dest)
}

struct Builder<'a> {
    t: Target,
    s: &'a Sources,
    dir: PathBuf,
    log: fs::File,
}

impl Builder<'_> {
    fn obj(&self) -> PathBuf {
        self.dir.join("obj")
    }
    fn tools(&self) -> PathBuf {
        self.dir.join("tools")
    }

    /// Runs a command, appending its output to build.log and showing progress.
    fn run_logged(&mut self, cmd: &mut Command, what: &str) -> Result<()> {
        let _ = writeln!(self.log, "==> {what}: {cmd:?}");
        let pb = spinner(format!("rump {}: {what}", self.t.name()));
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("{what}: cannot start {:?}: {e}", cmd.get_program()))?;
        let stderr = child.stderr.take().expect("piped");
        let mut log2 = self.log.try_clone().map_err(|e| e.to_string())?;
        let errt = std::thread::spawn(move || {
            let mut tail: Vec<String> = Vec::new();
            for l in BufReader::new(stderr)
                .lines()
                .map_while(std::result::Result::ok)
            {
                let _ = writeln!(log2, "{l}");
                tail.push(l);
                if tail.len() > 40 {
                    tail.remove(0);
                }
            }
            tail
        });
        let mut compiled = 0u64;
        let mut tail: Vec<String> = Vec::new();
        for l in BufReader::new(child.stdout.take().expect("piped"))
            .lines()
            .map_while(std::result::Result::ok)
        {
            let _ = writeln!(self.log, "{l}");
            let tl = l.trim_start();
            if tl.starts_with("compile")
                || tl.starts_with("build ")
                || tl.starts_with("create")
                || tl.starts_with("install")
            {
                compiled += 1;
                pb.set_message(format!(
                    "rump {}: {what}: {compiled} steps, {}",
                    self.t.name(),
                    tl.split_whitespace().last().unwrap_or("")
                ));
            } else if tl.starts_with(">>") || tl.starts_with("===>") {
                pb.set_message(format!("rump {}: {what}: {tl}", self.t.name()));
            }
            tail.push(l);
            if tail.len() > 40 {
                tail.remove(0);
            }
        }
        let status = child.wait().map_err(|e| e.to_string())?;
        let etail = errt.join().unwrap_or_default();
        pb.finish_and_clear();
        if status.success() {
            Ok(())
        } else {
            Err(format!(
                "{what} failed ({status}); last output:\n{}\n{}\nfull log: {}",
                tail.join("\n"),
                etail.join("\n"),
                self.dir.join("build.log").display()
            ))
        }
    }

    fn buildrump_cmd(&self) -> Command {
        let mut c = Command::new("sh");
        c.arg(self.s.buildrump.join("buildrump.sh"));
        if self.t.kernel_only() {
            c.arg("-k");
        }
        let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
        c.args(["-q", "-j", &jobs.to_string()]);
        c.arg("-s").arg(&self.s.netbsd);
        c.arg("-o").arg(self.obj());
        c.arg("-T").arg(self.tools());
        c.arg("-d").arg(self.dir.join("dest"));
        for v in self.t.make_vars() {
            c.args(["-V", v]);
        }
        for f in self.t.cflags() {
            c.arg("-F").arg(format!("CFLAGS={f}"));
        }
        // buildrump.sh refuses to run with these set; the nbmake bootstrap takes HOST_CFLAGS.
        c.env_remove("CFLAGS")
            .env_remove("LDFLAGS")
            .env_remove("AFLAGS")
            .env_remove("CPPFLAGS");
        c.env("HOST_CFLAGS", "-O -fcommon");
        c.current_dir(&self.dir);
        c
    }

    fn run_buildrump(&mut self, cmds: &[&str], what: &str) -> Result<()> {
        let mut c = self.buildrump_cmd();
        c.args(cmds);
        self.run_logged(&mut c, what)
    }

    /// `rumpmake` in `dir` with the main build's stage as include root and install target.
    fn rumpmake(&mut self, dir: &Path, args: &[String], what: &str) -> Result<()> {
        let stage = self.obj().join("dest.stage");
        let mut c = Command::new(self.tools().join("rumpmake"));
        c.current_dir(dir);
        c.arg(format!("BUILDRUMP_STAGE={}", stage.display()));
        c.arg(format!("DESTDIR={}", stage.display()));
        c.args(args);
        self.run_logged(&mut c, what)
    }

    /// The components NetBSD's default build skips (PCI drivers), our xHCI component, and
    /// libusb rebuilt with our USB.ioconf patch (usb at xhci).
    fn build_extras(&mut self) -> Result<()> {
        let ours = root().join("buildrump");
        let pci_mk = format!(
            "RUMPCOMP_MAKEFILEINC_rumpdev_pci={}",
            ours.join("pci.mk").display()
        );
        // Our components are copied into the cache (their objects are written next to them).
        let overlay = self.dir.join("overlay");
        let _ = fs::remove_dir_all(&overlay);
        for c in OUR_COMPONENTS {
            copy_dir(&ours.join("components").join(c), &overlay.join(c))?;
        }
        // libusb: NetBSD's USB.ioconf + our patch, used through IOCONFDIR.
        let usb_overlay = overlay.join("libusb-ioconf");
        fs::create_dir_all(&usb_overlay).map_err(|e| e.to_string())?;
        let orig = self.s.netbsd.join("sys/rump/dev/lib/libusb/USB.ioconf");
        fs::copy(&orig, usb_overlay.join("USB.ioconf"))
            .map_err(|e| format!("{}: {e}", orig.display()))?;
        let mut patch = Command::new("patch");
        patch
            .current_dir(&usb_overlay)
            .args(["-p0", "-s", "-i"])
            .arg(ours.join("patches/usb-ioconf-xhci.patch"));
        self.run_logged(&mut patch, "patch USB.ioconf for xhci")?;

        let mut dirs: Vec<(PathBuf, Vec<String>)> = EXTRA_NETBSD_DIRS
            .iter()
            .map(|d| (self.s.netbsd.join(d), vec![pci_mk.clone()]))
            .collect();
        let libusb = self.s.netbsd.join("sys/rump/dev/lib/libusb");
        // Force libusb's ioconf to be regenerated from the patched file.
        let usb_obj = self.obj().join("sys/rump/dev/lib/libusb");
        for f in [
            "ioconf.c",
            "ioconf.h",
            "ioconf.o",
            "ioconf.pico",
            "locators.h",
        ] {
            let _ = fs::remove_file(usb_obj.join(f));
        }
        dirs.push((libusb, vec![format!("IOCONFDIR={}", usb_overlay.display())]));
        for c in OUR_COMPONENTS {
            dirs.push((overlay.join(c), vec![pci_mk.clone()]));
        }
        for (d, vars) in dirs {
            let name = d
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            for step in ["obj", "dependall", "install"] {
                let mut args = vars.clone();
                args.push(step.into());
                self.rumpmake(&d, &args, &format!("{name} {step}"))?;
            }
        }
        Ok(())
    }
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    for e in fs::read_dir(from)
        .map_err(|e| format!("{}: {e}", from.display()))?
        .flatten()
    {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()))?;
        } else {
            fs::copy(&p, to.join(e.file_name())).map_err(|e| format!("{}: {e}", p.display()))?;
        }
    }
    Ok(())
}

/// The kernel build must not reference the stack protector's runtime.
fn check_no_stack_protector(dest: &Path) -> Result<()> {
    let mut bad = Vec::new();
    for e in fs::read_dir(dest.join("lib"))
        .map_err(|e| e.to_string())?
        .flatten()
    {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "a") {
            continue;
        }
        let out = Command::new("nm")
            .arg("-u")
            .arg(&p)
            .output()
            .map_err(|e| format!("nm: {e}"))?;
        if String::from_utf8_lossy(&out.stdout).contains("__stack_chk_fail") {
            bad.push(
                p.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    if bad.is_empty() {
        eprintln!("rump kernel: nm: no archive references __stack_chk_fail");
        Ok(())
    } else {
        Err(format!(
            "kernel rump archives reference __stack_chk_fail: {}",
            bad.join(", ")
        ))
    }
}
