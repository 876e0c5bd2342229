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

/// Our patches to NetBSD source files (unified diffs, `patch -p1` from the tree's root) and
/// `series`, which lists them in order with the targets that take each.
const NETBSD_PATCH_DIR: &str = "buildrump/patches/netbsd";

/// One NetBSD source patch from `series`.
struct NetbsdPatch {
    /// File name in `NETBSD_PATCH_DIR`.
    name: String,
    path: PathBuf,
    targets: Vec<String>,
}

/// All patches in `buildrump/patches/netbsd/series`, in order; checks that every listed file
/// exists, names real targets, and that no `.patch` file in the directory is left out.
fn netbsd_patch_series() -> Result<Vec<NetbsdPatch>> {
    let dir = root().join(NETBSD_PATCH_DIR);
    let series = dir.join("series");
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let text = fs::read_to_string(&series).map_err(|e| {
        format!(
            "{}: {e} (it lists the NetBSD patches in {} with the targets that take each)",
            series.display(),
            dir.display()
        )
    })?;
    let mut v = Vec::new();
    for (n, l) in text.lines().enumerate() {
        let l = l.split('#').next().unwrap_or("").trim();
        if l.is_empty() {
            continue;
        }
        let mut w = l.split_whitespace();
        let name = w.next().unwrap_or_default().to_string();
        let targets: Vec<String> = w.map(str::to_string).collect();
        let at = format!("{}:{}", series.display(), n + 1);
        if targets.is_empty() {
            return Err(format!(
                "{at}: {name} names no target: list the targets that take it (host, kernel, posix)"
            ));
        }
        for t in &targets {
            Target::parse(t).map_err(|e| format!("{at}: {e}"))?;
        }
        let path = dir.join(&name);
        if !path.is_file() {
            return Err(format!("{at}: {} does not exist", path.display()));
        }
        v.push(NetbsdPatch {
            name,
            path,
            targets,
        });
    }
    for e in fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
    {
        let f = e.file_name().to_string_lossy().into_owned();
        if f.ends_with(".patch") && !v.iter().any(|p| p.name == f) {
            return Err(format!(
                "{}: {f} is not listed: add it with the targets that take it (or delete it)",
                series.display()
            ));
        }
    }
    Ok(v)
}

/// The NetBSD source patches target `t` takes, in the order they are applied.
fn netbsd_patches(t: Target) -> Result<Vec<NetbsdPatch>> {
    Ok(netbsd_patch_series()?
        .into_iter()
        .filter(|p| p.targets.iter().any(|x| x == t.name()))
        .collect())
}

/// The files a `-p1` unified diff changes, relative to the tree's root (from its `+++` lines).
fn patched_files(p: &NetbsdPatch) -> Result<Vec<PathBuf>> {
    let text = fs::read_to_string(&p.path).map_err(|e| format!("{}: {e}", p.path.display()))?;
    let mut v = Vec::new();
    for l in text.lines() {
        let Some(rest) = l.strip_prefix("+++ ") else {
            continue;
        };
        let name = rest.split('\t').next().unwrap_or("").trim();
        if name == "/dev/null" {
            continue;
        }
        let rel: PathBuf = Path::new(name).components().skip(1).collect();
        if rel.as_os_str().is_empty()
            || rel
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(format!(
                "{}: bad file name {name:?} (expected a/… and b/… paths from the NetBSD tree's root, for patch -p1)",
                p.path.display()
            ));
        }
        if !v.contains(&rel) {
            v.push(rel);
        }
    }
    if v.is_empty() {
        return Err(format!(
            "{}: no `+++ b/<file>` line: not a unified diff",
            p.path.display()
        ));
    }
    Ok(v)
}

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

/// Builds (or reuses) the components for `t`; returns the `dest/` directory. The build is
/// made in `<cache dir>.partial` and published by renaming it only once [`check_build`]
/// accepts it; a lock serialises `xtask` processes that want the same build (see
/// [`crate::cache`]).
pub fn build(t: Target, s: &Sources, force: bool) -> Result<PathBuf> {
    let dir = cache_dir(t, s)?;
    let stamp = our_files_stamp(t)?;
    let dir = crate::cache::ensure(
        &dir,
        &format!("rump {}", t.name()),
        force,
        |d, fresh| check_build(t, d, &stamp, fresh),
        |work, _| build_into(t, s, work, &stamp),
    )?;
    Ok(dir.join("dest"))
}

/// Whether the build in `d` is complete and intact: its `.complete` stamp, every component
/// of `components.txt` present with the size the build recorded, and, for a kernel build
/// just made (`fresh`), no archive that needs the stack protector's runtime. A stamp made
/// from other files under `buildrump/` makes it stale (updated in place) rather than broken.
fn check_build(t: Target, d: &Path, stamp: &str, fresh: bool) -> crate::cache::Check {
    use crate::cache::Check;
    let complete = match fs::read_to_string(d.join(".complete")) {
        Ok(c) => c,
        Err(_) => return Check::Broken("no .complete stamp: the build never finished".into()),
    };
    let manifest = fs::read_to_string(d.join("components.txt")).unwrap_or_default();
    let comps = match components_for(t) {
        Ok(c) => c,
        Err(e) => return Check::Broken(e),
    };
    let dest = d.join("dest");
    for c in &comps {
        let p = lib_path(&dest, c, t);
        let Ok(m) = fs::metadata(&p) else {
            return Check::Broken(format!("{} is missing", p.display()));
        };
        let recorded = manifest
            .lines()
            .find_map(|l| l.strip_prefix(c.as_str())?.strip_prefix(' '))
            .and_then(|n| n.trim().parse::<u64>().ok());
        match recorded {
            Some(n) if n == m.len() => {}
            Some(n) => {
                return Check::Broken(format!(
                    "{} has {} bytes, the build made {n}",
                    p.display(),
                    m.len()
                ));
            }
            None if complete.lines().next() == Some(stamp) => {
                return Check::Broken(format!(
                    "{c} is not in {}",
                    d.join("components.txt").display()
                ));
            }
            // A component added to components.txt since: the update builds it.
            None => {}
        }
    }
    if t == Target::Kernel
        && fresh
        && let Err(e) = check_no_stack_protector(&dest)
    {
        return Check::Broken(e);
    }
    if complete.lines().next() != Some(stamp) {
        return Check::Stale("files under buildrump/ changed since it was built".into());
    }
    Check::Valid
}

/// Runs the build in `dir` (a fresh directory, or an earlier complete build to update).
fn build_into(t: Target, s: &Sources, dir: &Path, stamp: &str) -> Result<()> {
    let dest = dir.join("dest");
    let patches = netbsd_patches(t)?;
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
        src: s.netbsd.clone(),
        dir: dir.to_path_buf(),
        log,
    };
    let mut tree = None;
    if !patches.is_empty() {
        b.src = b.prepare_patched_tree(&patches)?;
        tree = Some(PatchedTree::check_untouched(&b.src, &s.netbsd)?);
    }
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
    if let Some(tree) = tree {
        tree.check_after_build(t, &b.obj(), &patches)?;
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
    Ok(())
}

struct Builder<'a> {
    t: Target,
    s: &'a Sources,
    /// The NetBSD tree buildrump.sh builds: the checkout, or the patched copy.
    src: PathBuf,
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
        c.arg("-s").arg(&self.src);
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
        let orig = self.src.join("sys/rump/dev/lib/libusb/USB.ioconf");
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
            .map(|d| (self.src.join(d), vec![pci_mk.clone()]))
            .collect();
        let libusb = self.src.join("sys/rump/dev/lib/libusb");
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

/// The kernel build must not reference the stack protector's runtime (one `nm -u` over every
/// archive: given several, it prints `<path>.a:` before each archive's members).
fn check_no_stack_protector(dest: &Path) -> Result<()> {
    let lib = dest.join("lib");
    let mut archives: Vec<PathBuf> = fs::read_dir(&lib)
        .map_err(|e| format!("{}: {e}", lib.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "a"))
        .collect();
    archives.sort();
    if archives.is_empty() {
        return Err(format!("no archives in {}", lib.display()));
    }
    let out = Command::new("nm")
        .arg("-u")
        .args(&archives)
        .output()
        .map_err(|e| format!("nm: {e} (install binutils)"))?;
    if !out.status.success() {
        return Err(format!(
            "nm -u failed on the archives in {}: {}",
            lib.display(),
            String::from_utf8_lossy(&out.stderr).trim_end()
        ));
    }
    let mut bad: Vec<String> = Vec::new();
    let mut current = String::new();
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some(a) = l.strip_suffix(".a:") {
            current = format!("{a}.a");
        } else if l.contains("__stack_chk_fail") {
            let name = Path::new(&current)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| current.clone());
            if !bad.contains(&name) {
                bad.push(name);
            }
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "kernel rump archives reference __stack_chk_fail: {}",
            bad.join(", ")
        ))
    }
}

// ---------------------------------------------------------------------------------------
// The patched NetBSD tree

/// Written last into a patched tree: the hash of the NetBSD commit and the patches applied.
const TREE_STAMP: &str = ".adros-netbsd-patches";

impl Builder<'_> {
    /// Makes (or reuses) `<cache dir>/src`: the NetBSD checkout without `.git`, every file a
    /// hard link to the checkout's (a copy where linking fails, e.g. across file systems),
    /// except the files the patches change: those are first replaced by real copies (so that
    /// patching them cannot write through the link into the checkout), then patched.
    fn prepare_patched_tree(&mut self, patches: &[NetbsdPatch]) -> Result<PathBuf> {
        let tn = self.t.name();
        let tree = self.dir.join("src");
        let names: Vec<&str> = patches.iter().map(|p| p.name.as_str()).collect();
        let mut h = Fnv::new();
        h.add(self.s.netbsd_commit.as_bytes());
        for p in patches {
            h.add(p.name.as_bytes());
            h.add(&fs::read(&p.path).map_err(|e| format!("{}: {e}", p.path.display()))?);
        }
        let want = format!("{:016x} {}\n", h.0, names.join(" "));
        if fs::read_to_string(tree.join(TREE_STAMP)).is_ok_and(|s| s == want) {
            eprintln!(
                "rump {tn}: NetBSD tree with {} patch(es), reused: {}",
                patches.len(),
                tree.display()
            );
            return Ok(tree);
        }
        if tree.exists() {
            fs::remove_dir_all(&tree).map_err(|e| {
                format!("{}: {e} (remove it by hand and run again)", tree.display())
            })?;
        }
        let t0 = Instant::now();
        eprintln!(
            "rump {tn}: NetBSD tree with patches {}: linking {} into {}",
            names.join(", "),
            self.s.netbsd.display(),
            tree.display()
        );
        let (mut linked, mut copied) = (0u64, 0u64);
        link_tree(&self.s.netbsd, &tree, true, &mut linked, &mut copied)?;
        for p in patches {
            let files = patched_files(p)?;
            for f in &files {
                let q = tree.join(f);
                if q.exists() {
                    unshare(&q)?;
                }
            }
            let mut c = Command::new("patch");
            c.current_dir(&tree)
                .args([
                    "-p1",
                    "--batch",
                    "--forward",
                    "--no-backup-if-mismatch",
                    "--reject-file=-",
                    "-i",
                ])
                .arg(&p.path);
            self.run_logged(&mut c, &format!("patch {}", p.name))
                .map_err(|e| {
                    format!(
                        "NetBSD patch {} does not apply to NetBSD {}: {e}\n\
                         Refresh it against this commit (see buildrump/README.md), or take it out of {NETBSD_PATCH_DIR}/series.",
                        p.path.display(),
                        self.s.netbsd_commit
                    )
                })?;
            for f in &files {
                let (q, orig) = (tree.join(f), self.s.netbsd.join(f));
                if !q.exists() || !orig.exists() {
                    continue;
                }
                use std::os::unix::fs::MetadataExt;
                let nlink = fs::metadata(&q).map(|m| m.nlink()).unwrap_or(0);
                if nlink != 1 || fs::read(&q).ok() == fs::read(&orig).ok() {
                    return Err(format!(
                        "patch {}: {} is unchanged or still shared with the checkout ({} links); check `git -C {} status` and delete {}",
                        p.name,
                        f.display(),
                        nlink,
                        self.s.netbsd.display(),
                        tree.display()
                    ));
                }
            }
            eprintln!(
                "rump {tn}: applied {}: {}",
                p.name,
                files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        fs::write(tree.join(TREE_STAMP), &want).map_err(|e| format!("{}: {e}", tree.display()))?;
        eprintln!(
            "rump {tn}: NetBSD tree ready in {:.1} s: {linked} files hard-linked, {copied} copied",
            t0.elapsed().as_secs_f64()
        );
        Ok(tree)
    }
}

/// Recreates `from` under `to`: directories made, symbolic links copied, files hard-linked
/// (copied when that fails). `top`: skip the checkout's `.git`.
fn link_tree(from: &Path, to: &Path, top: bool, linked: &mut u64, copied: &mut u64) -> Result<()> {
    fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    for e in fs::read_dir(from)
        .map_err(|e| format!("{}: {e}", from.display()))?
        .flatten()
    {
        if top && e.file_name() == ".git" {
            continue;
        }
        let (p, q) = (e.path(), to.join(e.file_name()));
        let ft = e.file_type().map_err(|e| format!("{}: {e}", p.display()))?;
        if ft.is_dir() {
            link_tree(&p, &q, false, linked, copied)?;
        } else if ft.is_symlink() {
            let l = fs::read_link(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            std::os::unix::fs::symlink(l, &q).map_err(|e| format!("{}: {e}", q.display()))?;
        } else if fs::hard_link(&p, &q).is_ok() {
            *linked += 1;
        } else {
            fs::copy(&p, &q).map_err(|e| format!("copying {}: {e}", p.display()))?;
            *copied += 1;
        }
    }
    Ok(())
}

/// Replaces a (hard-linked) file by a copy of itself, so that writing it leaves the other
/// links alone.
fn unshare(p: &Path) -> Result<()> {
    let err = |e: std::io::Error| format!("{}: {e}", p.display());
    let data = fs::read(p).map_err(err)?;
    let perm = fs::metadata(p).map_err(err)?.permissions();
    fs::remove_file(p).map_err(err)?;
    fs::write(p, data).map_err(err)?;
    fs::set_permissions(p, perm).map_err(err)
}

/// A patched tree in use, with the checks that it stays what it claims to be.
struct PatchedTree {
    tree: PathBuf,
    checkout: PathBuf,
    /// When the tree was finished (its stamp's mtime).
    since: std::time::SystemTime,
}

impl PatchedTree {
    /// Checks that no file the tree shares with the checkout has changed since the tree was
    /// made (a build writing into its source tree, or an edit of the checkout in place, would
    /// change both at once).
    fn check_untouched(tree: &Path, checkout: &Path) -> Result<PatchedTree> {
        let since = fs::metadata(tree.join(TREE_STAMP))
            .and_then(|m| m.modified())
            .map_err(|e| format!("{}: {e}", tree.join(TREE_STAMP).display()))?;
        let t = PatchedTree {
            tree: tree.to_path_buf(),
            checkout: checkout.to_path_buf(),
            since,
        };
        t.shared_files_unchanged()?;
        Ok(t)
    }

    fn shared_files_unchanged(&self) -> Result<()> {
        fn walk(d: &Path, since: std::time::SystemTime, out: &mut Vec<PathBuf>) {
            use std::os::unix::fs::MetadataExt;
            let Ok(rd) = fs::read_dir(d) else { return };
            for e in rd.flatten() {
                let Ok(m) = e.metadata() else { continue };
                if m.is_dir() {
                    walk(&e.path(), since, out);
                } else if m.is_file() && m.nlink() > 1 && m.modified().is_ok_and(|t| t > since) {
                    out.push(e.path());
                }
            }
        }
        let mut changed = Vec::new();
        walk(&self.tree, self.since, &mut changed);
        if changed.is_empty() {
            return Ok(());
        }
        Err(format!(
            "{} file(s) of the patched NetBSD tree {} that are hard links to the checkout {} changed after the tree was made, e.g. {}: the build wrote into its source tree or the checkout was edited in place (both are changed). Check `git -C {} status`, restore it, then delete {} so that it is made again.",
            changed.len(),
            self.tree.display(),
            self.checkout.display(),
            changed[0].display(),
            self.checkout.display(),
            self.tree.display()
        ))
    }

    /// After the build: nothing shared was written, no object was compiled from the unpatched
    /// checkout (the dependency files under `obj/` name every source and header used), and
    /// each patched C file was compiled from the patched tree.
    fn check_after_build(&self, t: Target, obj: &Path, patches: &[NetbsdPatch]) -> Result<()> {
        self.shared_files_unchanged()?;
        let canon = |p: &Path| {
            let c = fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
            format!("{}/", c.display())
        };
        let (tree, checkout) = (canon(&self.tree), canon(&self.checkout));
        let mut wanted: Vec<(String, Option<PathBuf>)> = Vec::new();
        for p in patches {
            for f in patched_files(p)? {
                if f.extension().is_some_and(|x| x == "c") {
                    wanted.push((format!("{tree}{}", f.display()), None));
                }
            }
        }
        let mut deps = Vec::new();
        find_files(obj, "d", &mut deps);
        let mut from_checkout = Vec::new();
        for d in &deps {
            let Ok(text) = fs::read(d) else { continue };
            let text = String::from_utf8_lossy(&text);
            if text.contains(&checkout) {
                from_checkout.push(d.clone());
            }
            for (w, found) in wanted.iter_mut() {
                if found.is_none() && text.contains(w.as_str()) {
                    *found = Some(d.clone());
                }
            }
        }
        if !from_checkout.is_empty() {
            return Err(format!(
                "{} dependency file(s) under {} name the unpatched checkout {checkout} (e.g. {}): part of the build did not use the patched tree {tree}. Delete {} and run again; if it persists, the build procedure in xtask/src/rump.rs passes the checkout somewhere.",
                from_checkout.len(),
                obj.display(),
                from_checkout[0].display(),
                obj.parent().unwrap_or(obj).display()
            ));
        }
        for (w, found) in &wanted {
            match found {
                Some(d) => eprintln!(
                    "rump {}: compiled from the patched tree: {w} (dependency file {})",
                    t.name(),
                    d.display()
                ),
                None => eprintln!(
                    "rump {}: note: the patched {w} was not compiled for this target (no dependency file names it): does this target need the patch?",
                    t.name()
                ),
            }
        }
        eprintln!(
            "rump {}: patched tree checked: no shared file written, none of {} dependency files names the checkout",
            t.name(),
            deps.len()
        );
        Ok(())
    }
}

/// Files under `d` whose extension is `ext`.
fn find_files(d: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(d) else { return };
    for e in rd.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(ft) if ft.is_dir() => find_files(&p, ext, out),
            Ok(ft) if ft.is_file() && p.extension().is_some_and(|x| x == ext) => out.push(p),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two archives made with the host's compiler, one needing the stack protector: the
    /// check names that one only.
    #[test]
    fn the_stack_protector_check_names_the_archives_that_need_it() {
        let d = std::env::temp_dir().join(format!("adros-xtask-ssp-{}", std::process::id()));
        let lib = d.join("lib");
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&lib).unwrap();
        let src = d.join("f.c");
        fs::write(
            &src,
            "void g(char *);\nint f(void) { char b[64]; g(b); return b[1]; }\n",
        )
        .unwrap();
        for (name, flag) in [
            ("good", "-fno-stack-protector"),
            ("bad", "-fstack-protector-all"),
        ] {
            let o = d.join(format!("{name}.o"));
            let ok = Command::new("cc")
                .args(["-c", "-O1", flag, "-o"])
                .arg(&o)
                .arg(&src)
                .status()
                .unwrap()
                .success();
            assert!(ok, "cc failed");
            let ok = Command::new("ar")
                .arg("rcs")
                .arg(lib.join(format!("lib{name}.a")))
                .arg(&o)
                .status()
                .unwrap()
                .success();
            assert!(ok, "ar failed");
        }
        let e = check_no_stack_protector(&d).unwrap_err();
        assert!(e.ends_with(": libbad.a"), "{e}");
        fs::remove_file(lib.join("libbad.a")).unwrap();
        check_no_stack_protector(&d).unwrap();
        let _ = fs::remove_dir_all(&d);
    }
}
