//! `cargo xtask rump …`: cross-building NetBSD rump components with buildrump.sh.
//! (Owned by the rumpuser-adros work; see issue 5 and docs/rump.md.)
//!
//! ## Where things are
//! * NetBSD source: `netbsd-src/` (if checked out), `$ADROS_NETBSD_SRC`, `~/.cache/adros/netbsd-src`.
//! * buildrump.sh: `buildrump/buildrump.sh/`, `$ADROS_BUILDRUMP`, `~/.cache/adros/buildrump.sh`.
//! * Output: `~/.cache/adros/rump/<netbsd commit>-<flags hash>/` (`$ADROS_RUMP_CACHE` overrides
//!   `~/.cache/adros/rump`), holding `dest/lib/*.a`, `dest/include/`, `build.log`,
//!   `components.txt` and a `.complete` stamp. The hash covers the target, the flags,
//!   buildrump.sh's commit and the NetBSD source patches the target takes; the stamp holds a
//!   hash of the files under `buildrump/` that are ours (component list, makefiles, the USB
//!   ioconf patch, and that target's NetBSD source patches), so changing one re-runs the
//!   incremental build in the same directory, and an unchanged second run is a cache hit.
//! * NetBSD source patches: `buildrump/patches/netbsd/series` lists each patch with the
//!   targets that take it. A target with patches builds from `<cache dir>/src/`, a hard-link
//!   copy of the checkout (without `.git`) in which only the patched files are real copies;
//!   the checkout itself is never written to. A target without patches builds from the
//!   checkout, as before.
//!
//! ## The contract with the tests
//! `ensure_host_build()` returns the `dest/` directory of the host build. `cargo xtask test`
//! exports it as **`ADROS_RUMP_HOST_DIR`** (`lib/` holds the component archives, `include/` the
//! headers). Tests that need rump components read that variable; when it is unset they fall
//! back to the same lookup (`rumpuser-adros/build.rs` finds a complete host build in the cache),
//! and without one they print `SKIPPED: no NetBSD source (see README)`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::{Args, Subcommand};

use crate::util::{Result, root};

mod build;
mod patches;

pub use build::build;
use patches::{NETBSD_PATCH_DIR, netbsd_patches};

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
                        let patches: Vec<String> =
                            netbsd_patches(t)?.into_iter().map(|p| p.name).collect();
                        let patches = if patches.is_empty() {
                            String::new()
                        } else {
                            format!(" (NetBSD patches: {})", patches.join(", "))
                        };
                        println!("{:<7} {state:<10} {}{patches}", t.name(), d.display());
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

pub(crate) fn no_source_message() -> String {
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

/// Our files under `buildrump/` (not the buildrump.sh submodule, not the NetBSD source
/// patches: each target's stamp adds the ones it takes), sorted.
fn our_buildrump_files() -> Vec<PathBuf> {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = fs::read_dir(d) else { return };
        let patches = root().join(NETBSD_PATCH_DIR);
        for e in rd.flatten() {
            let p = e.path();
            if p.file_name().is_some_and(|n| n == "buildrump.sh") || p == patches {
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
    // A target with NetBSD patches builds from a different (patched) tree: its own directory,
    // a clean build. Targets without patches keep the key they always had.
    let patches = netbsd_patches(t)?;
    if !patches.is_empty() {
        h.add(b"netbsd-patches");
        for p in &patches {
            h.add(p.name.as_bytes());
            h.add(&fs::read(&p.path).map_err(|e| format!("{}: {e}", p.path.display()))?);
        }
    }
    let base = std::env::var_os("ADROS_RUMP_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| home_cache().join("rump"));
    let commit: String = s.netbsd_commit.chars().take(12).collect();
    Ok(base.join(format!("{commit}-{}-{:016x}", t.name(), h.0)))
}

/// The stamp a complete build writes: a hash of our `buildrump/` files and of the NetBSD
/// patches `t` takes. When they change, the next run re-runs the (incremental) build in the
/// same directory. (A target without NetBSD patches hashes exactly what it did before they
/// existed, so adding a patch for one target leaves the others' caches valid.)
fn our_files_stamp(t: Target) -> Result<String> {
    let mut h = Fnv::new();
    let files = our_buildrump_files()
        .into_iter()
        .chain(netbsd_patches(t)?.into_iter().map(|p| p.path));
    for f in files {
        let rel = f.strip_prefix(root()).unwrap_or(&f);
        h.add(rel.to_string_lossy().as_bytes());
        h.add(&fs::read(&f).map_err(|e| format!("{}: {e}", f.display()))?);
    }
    Ok(format!("{:016x}", h.0))
}
