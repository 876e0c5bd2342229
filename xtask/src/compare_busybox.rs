//! `cargo xtask compare busybox`: busybox's upstream testsuite on AdrOS and on Linux 6.1
//! (the bench's Linux peer, see `bench/peer.rs`), the same files and the same command in
//! both guests, compared case by case (issue 20).
//!
//! The testsuite is `testsuite/` of the busybox source Debian's installed `busybox-static`
//! was built from: its `.dsc`, `.orig.tar.*` and `.debian.tar.*` are fetched from the pool
//! directory of the configured Debian mirror (the one `apt-get download --print-uris`
//! names for the binary package; no `deb-src` line is needed), checked against the `.dsc`'s
//! `Checksums-Sha256` (and the `.dsc`'s signature with `gpgv` when `debian-keyring` is
//! installed), and only `testsuite/` and the static flavour's configuration
//! (`debian/config/os/linux` + `debian/config/pkg/static`, concatenated as `debian/rules`
//! does) are kept, in `~/.cache/adros/busybox-testsuite/`. Nothing of it is committed.
//!
//! The staged copy differs from upstream in one line: `runtest` prints
//! `@@BBT-APPLET <applet>` as its loop starts each applet, so every case is known by its
//! applet. The guests get `/bbtest.tar` and `/bbtest.sh` (`adros_tests::bbtest::SCRIPT`).
//!
//! The Linux side's output is cached under the cache directory by busybox version, kernel
//! version and a hash of what both guests run: it is always what a real boot of the peer
//! printed (`--rerun-linux` boots it again).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use adros_tests::bbtest::{self, Outcome, Results};

use crate::bench::peer;
use crate::build::{self, Built};
use crate::compare::CompareArgs;
use crate::qemu::{self, Machine};
use crate::util::{Result, spinner, target_dir, which};

/// The Debian package whose busybox the guests run (`/bin/busybox`, see initrd.rs).
const PACKAGE: &str = "busybox-static";

/// The QEMU tests of `tests/tests/s21_busybox_testsuite.rs` (for `--qemu-filter`).
pub const TEST_NAMES: &[&str] = &[
    "s21_busybox_testsuite_passes_what_linux_passes_part1",
    "s21_busybox_testsuite_passes_what_linux_passes_part2",
];

/// The guests' memory and CPUs (the same on both).
const MEM_MIB: u64 = 1024;
const SMP: u32 = 2;

/// How long one guest may take for the whole testsuite under TCG.
const RUN_TIMEOUT: Duration = Duration::from_secs(3600);

fn cache_dir() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".cache/adros/busybox-testsuite")
}

/// The staged testsuite: `dir/bin/.config` and `dir/bin/testsuite/`.
pub struct Testsuite {
    pub dir: PathBuf,
    /// The binary package's version (`1:1.35.0-4+deb12u1+b1`).
    pub binary_version: String,
    /// The source package and its version (`busybox`, `1:1.35.0-4+deb12u1`).
    pub source: String,
    pub source_version: String,
}

/// FNV-1a, 64 bits: a hash that stays the same across Rust releases (cache keys).
fn fnv64(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.iter().chain(&[0xffu8]) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn output(cmd: &mut Command, what: &str) -> Result<String> {
    let out = cmd
        .output()
        .map_err(|e| format!("{what}: cannot run {:?}: {e}", cmd.get_program()))?;
    if !out.status.success() {
        return Err(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `1:1.35.0-4+deb12u1` → `1.35.0-4+deb12u1` (file names carry no epoch).
fn no_epoch(v: &str) -> &str {
    v.split_once(':').map_or(v, |(_, r)| r)
}

/// The `Checksums-Sha256` entries of a `.dsc`: (sha256, size, file name).
pub fn dsc_files(dsc: &str) -> Vec<(String, u64, String)> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in dsc.lines() {
        if line.starts_with("Checksums-Sha256:") {
            inside = true;
            continue;
        }
        if inside {
            if !line.starts_with(' ') {
                break;
            }
            let f: Vec<&str> = line.split_whitespace().collect();
            if let [sum, size, name] = f[..]
                && let Ok(size) = size.parse()
            {
                out.push((sum.to_string(), size, name.to_string()));
            }
        }
    }
    out
}

fn sha256(path: &Path) -> Result<String> {
    let out = output(Command::new("sha256sum").arg(path), "sha256sum")?;
    out.split_whitespace()
        .next()
        .map(str::to_string)
        .ok_or_else(|| format!("sha256sum {} printed nothing", path.display()))
}

/// Downloads `url` to `dest` (through a private name) with curl or wget.
fn fetch(url: &str, dest: &Path) -> Result<()> {
    let tmp = crate::util::private_sibling(dest, "part");
    let mut cmd = if which("curl").is_some() {
        let mut c = Command::new("curl");
        c.args(["-fsSL", "--retry", "3", "-o"]).arg(&tmp).arg(url);
        c
    } else if which("wget").is_some() {
        let mut c = Command::new("wget");
        c.args(["-q", "-O"]).arg(&tmp).arg(url);
        c
    } else {
        return Err("fetching the busybox source needs curl or wget: install curl".into());
    };
    let out = cmd
        .output()
        .map_err(|e| format!("running the download of {url}: {e}"))?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!(
            "downloading {url} failed: {} (the Debian mirror must be reachable; see docs/testing.md)",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    std::fs::rename(&tmp, dest).map_err(|e| format!("renaming {}: {e}", tmp.display()))
}

/// Percent-encodes what a Debian pool file name may hold beyond URL-safe characters.
fn url_name(name: &str) -> String {
    name.replace('%', "%25")
        .replace('+', "%2b")
        .replace(':', "%3a")
}

/// Fetches (once) and stages the testsuite of the installed `busybox-static`.
pub fn testsuite() -> Result<Testsuite> {
    for tool in ["dpkg-query", "apt-get", "tar", "sha256sum"] {
        if which(tool).is_none() {
            return Err(format!(
                "the busybox testsuite is fetched with Debian's tools and {tool} is missing: run on Debian"
            ));
        }
    }
    let q = output(
        Command::new("dpkg-query").args([
            "-W",
            "-f=${Version}\t${source:Package}\t${source:Version}",
            PACKAGE,
        ]),
        "dpkg-query -W busybox-static",
    )
    .map_err(|e| format!("{e} (install busybox-static: `cargo xtask deps`)"))?;
    let f: Vec<&str> = q.trim().split('\t').collect();
    let [binary_version, source, source_version] = f[..] else {
        return Err(format!("dpkg-query printed {q:?} for {PACKAGE}"));
    };
    let ts = Testsuite {
        dir: cache_dir().join(format!("{source}_{}", no_epoch(source_version))),
        binary_version: binary_version.to_string(),
        source: source.to_string(),
        source_version: source_version.to_string(),
    };
    let done = ts.dir.join("complete");
    if done.is_file() {
        return Ok(ts);
    }
    let pb = spinner(format!(
        "busybox testsuite: locating the source of {PACKAGE} {binary_version}"
    ));
    let r = stage(&ts, &pb);
    pb.finish_and_clear();
    r?;
    std::fs::write(&done, format!("{source} {source_version}\n"))
        .map_err(|e| format!("writing {}: {e}", done.display()))?;
    eprintln!(
        "xtask: busybox testsuite of {source} {source_version} staged in {}",
        ts.dir.display()
    );
    Ok(ts)
}

fn stage(ts: &Testsuite, pb: &indicatif::ProgressBar) -> Result<()> {
    // The pool directory of the binary package on the configured mirror is the source's.
    let tmp_dir = std::env::temp_dir();
    let uris = output(
        Command::new("apt-get")
            .args(["download", "--print-uris"])
            .arg(format!("{PACKAGE}={}", ts.binary_version))
            .current_dir(&tmp_dir),
        "apt-get download --print-uris busybox-static",
    )
    .map_err(|e| {
        format!(
            "{e} (apt must know {PACKAGE} {}: run `apt-get update`)",
            ts.binary_version
        )
    })?;
    let url = uris
        .split('\'')
        .nth(1)
        .ok_or_else(|| format!("apt-get --print-uris printed no URL: {uris:?}"))?;
    let pool = &url[..url.rfind('/').ok_or("a URL without '/'")? + 1];
    let src_dir = cache_dir().join("src");
    std::fs::create_dir_all(&src_dir).map_err(|e| format!("{}: {e}", src_dir.display()))?;
    let dsc_name = format!("{}_{}.dsc", ts.source, no_epoch(&ts.source_version));
    let dsc_path = src_dir.join(&dsc_name);
    if !dsc_path.is_file() {
        pb.set_message(format!("busybox testsuite: downloading {dsc_name}"));
        fetch(&format!("{pool}{}", url_name(&dsc_name)), &dsc_path)?;
    }
    let dsc = std::fs::read_to_string(&dsc_path)
        .map_err(|e| format!("reading {}: {e}", dsc_path.display()))?;
    check_signature(&dsc_path)?;
    let files = dsc_files(&dsc);
    if files.is_empty() {
        let _ = std::fs::remove_file(&dsc_path);
        return Err(format!(
            "{dsc_name} lists no Checksums-Sha256 files (a truncated download? it was removed; try again)"
        ));
    }
    for (sum, size, name) in &files {
        let p = src_dir.join(name);
        if p.is_file() && sha256(&p)? == *sum {
            continue;
        }
        pb.set_message(format!(
            "busybox testsuite: downloading {name} ({:.1} MB)",
            *size as f64 / 1e6
        ));
        fetch(&format!("{pool}{}", url_name(name)), &p)?;
        let got = sha256(&p)?;
        let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        if got != *sum || len != *size {
            let _ = std::fs::remove_file(&p);
            return Err(format!(
                "{name}: sha256 {got} ({len} bytes), but {dsc_name} says {sum} ({size} bytes): the download was removed; try again"
            ));
        }
    }
    let find = |pat: &str| {
        files
            .iter()
            .map(|(_, _, n)| n)
            .find(|n| n.contains(pat))
            .map(|n| src_dir.join(n))
            .ok_or_else(|| format!("{dsc_name} has no {pat}* file"))
    };
    let orig = find(".orig.tar.")?;
    let debian = find(".debian.tar.")?;
    pb.set_message("busybox testsuite: unpacking testsuite/ and debian/config/");
    let work = crate::util::private_sibling(&ts.dir, "new");
    let _ = std::fs::remove_dir_all(&work);
    let bin = work.join("bin");
    std::fs::create_dir_all(&bin).map_err(|e| format!("{}: {e}", bin.display()))?;
    crate::util::run_checked(
        Command::new("tar")
            .arg("-xf")
            .arg(&orig)
            .arg("-C")
            .arg(&bin)
            .args(["--strip-components=1", "--wildcards", "*/testsuite/*"]),
        "unpacking testsuite/ from the busybox source",
        "",
    )?;
    let deb = work.join("debian-src");
    std::fs::create_dir_all(&deb).map_err(|e| format!("{}: {e}", deb.display()))?;
    crate::util::run_checked(
        Command::new("tar")
            .arg("-xf")
            .arg(&debian)
            .arg("-C")
            .arg(&deb)
            .arg("debian/config"),
        "unpacking debian/config from the Debian source",
        "",
    )?;
    // debian/rules: `cat debian/config/os/$(DEB_HOST_ARCH_OS) debian/config/pkg/$flavour`.
    let mut config = Vec::new();
    for part in ["debian/config/os/linux", "debian/config/pkg/static"] {
        let p = deb.join(part);
        config.extend(std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?);
    }
    std::fs::write(bin.join(".config"), config).map_err(|e| format!("writing .config: {e}"))?;
    let _ = std::fs::remove_dir_all(&deb);
    mark_applets(&bin.join("testsuite/runtest"))?;
    crate::util::replace_dir(&work, &ts.dir)
}

/// Verifies the `.dsc`'s OpenPGP signature when the Debian developers' keyring is installed
/// (`debian-keyring`); says so when it is not (the files are still checked against the
/// `.dsc`'s checksums).
fn check_signature(dsc: &Path) -> Result<()> {
    let rings: Vec<&str> = [
        "/usr/share/keyrings/debian-keyring.gpg",
        "/usr/share/keyrings/debian-nonupload.gpg",
        "/usr/share/keyrings/debian-maintainers.gpg",
    ]
    .into_iter()
    .filter(|r| Path::new(r).is_file())
    .collect();
    if rings.is_empty() || which("gpgv").is_none() {
        eprintln!(
            "xtask: the signature of {} is not checked (install debian-keyring and gpgv to check it); its files are checked against its sha256 sums",
            dsc.display()
        );
        return Ok(());
    }
    let mut cmd = Command::new("gpgv");
    for r in &rings {
        cmd.arg("--keyring").arg(r);
    }
    let out = cmd
        .arg(dsc)
        .output()
        .map_err(|e| format!("running gpgv: {e}"))?;
    if !out.status.success() {
        let _ = std::fs::remove_file(dsc);
        return Err(format!(
            "gpgv rejects the signature of {} (removed): {}",
            dsc.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// Makes the staged `runtest` print [`bbtest::APPLET_MARKER`] as its loop starts each
/// applet (the one change to upstream's files).
fn mark_applets(runtest: &Path) -> Result<()> {
    let s = std::fs::read_to_string(runtest)
        .map_err(|e| format!("reading {}: {e}", runtest.display()))?;
    let lp = "for applet in $applets; do\n";
    if s.matches(lp).count() != 1 {
        return Err(format!(
            "{}: expected one line `for applet in $applets; do` to mark applets in (another busybox version?)",
            runtest.display()
        ));
    }
    let s = s.replace(
        lp,
        &format!("{lp}\techo \"{}$applet\"\n", bbtest::APPLET_MARKER),
    );
    std::fs::write(runtest, s).map_err(|e| format!("writing {}: {e}", runtest.display()))
}

/// The two files both guests get: `/bbtest.tar` (written to `<target>/bbtest/`) and
/// `/bbtest.sh`.
pub struct GuestFiles {
    pub tar: PathBuf,
    pub script: PathBuf,
}

pub fn guest_files(ts: &Testsuite) -> Result<GuestFiles> {
    let dir = target_dir().join("bbtest");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut b = tar::Builder::new(Vec::new());
    b.mode(tar::HeaderMode::Deterministic);
    b.follow_symlinks(false);
    pack(&mut b, &ts.dir.join("bin"), "bbtest/bin")
        .map_err(|e| format!("packing the testsuite: {e}"))?;
    let data = b
        .into_inner()
        .map_err(|e| format!("packing the testsuite: {e}"))?;
    let tar = dir.join("bbtest.tar");
    if std::fs::read(&tar).ok().as_deref() != Some(&data[..]) {
        crate::util::write_atomic(&tar, &data)?;
    }
    let script = dir.join("bbtest.sh");
    if std::fs::read_to_string(&script).ok().as_deref() != Some(bbtest::SCRIPT) {
        crate::util::write_atomic(&script, bbtest::SCRIPT)?;
    }
    Ok(GuestFiles { tar, script })
}

/// Appends `dir` as `name` to `b`, entries in name order (the same bytes every time).
fn pack(b: &mut tar::Builder<Vec<u8>>, dir: &Path, name: &str) -> std::io::Result<()> {
    b.append_path_with_name(dir, name)?;
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let n = format!("{name}/{}", e.file_name().to_string_lossy());
        if e.file_type()?.is_dir() {
            pack(b, &e.path(), &n)?;
        } else {
            b.append_path_with_name(e.path(), &n)?;
        }
    }
    Ok(())
}

/// The AdrOS initrd for the testsuite: the default one (with `extras`) plus the two files,
/// at `<target>/initrd-bbtest.tar.lz4`.
pub fn adros_initrd(built: &Built, g: &GuestFiles) -> Result<PathBuf> {
    let mut extras = built.extras.clone();
    extras.push(crate::initrd::parse_extra(&format!(
        "{}:/bbtest.tar",
        g.tar.display()
    ))?);
    extras.push(crate::initrd::parse_extra(&format!(
        "{}:/bbtest.sh",
        g.script.display()
    ))?);
    let path = target_dir().join("initrd-bbtest.tar.lz4");
    crate::initrd::build_to(&extras, &[], &path)?;
    Ok(path)
}

fn exec_done(s: &str) -> bool {
    s.rfind("@@ADROS-EXEC-EXIT ")
        .is_some_and(|i| s[i + "@@ADROS-EXEC-EXIT ".len()..].contains("@@"))
}

/// Boots `m`, which runs [`bbtest::command`], showing the applet being tested; the serial
/// output goes to `live` as it comes (`tail -f` it to follow a run).
fn boot(m: &Machine, label: &str, live: &Path) -> Result<qemu::Outcome> {
    use std::io::Write as _;
    let pb = spinner(format!("{label}: booting (serial in {})", live.display()));
    let mut log = std::fs::File::create(live).map_err(|e| format!("{}: {e}", live.display()))?;
    let mut seen = String::new();
    let mut cases = 0usize;
    let out = qemu::run_headless(
        m,
        RUN_TIMEOUT,
        |b| {
            let _ = log.write_all(b);
            seen.push_str(&String::from_utf8_lossy(b));
            // Keep only the unfinished last line.
            while let Some(i) = seen.find('\n') {
                let line: String = seen.drain(..=i).collect();
                let line = line.trim_end();
                if let Some(a) = line.strip_prefix(bbtest::APPLET_MARKER) {
                    pb.set_message(format!("{label}: {a} ({cases} cases so far)"));
                } else if ["PASS: ", "FAIL: ", "SKIPPED: ", "UNTESTED: "]
                    .iter()
                    .any(|p| line.starts_with(p))
                {
                    cases += 1;
                }
            }
        },
        Some(&exec_done),
    );
    pb.finish_and_clear();
    out
}

/// Where the Linux peer's output for `applets` (all when empty) is cached.
fn linux_file(ts: &Testsuite, g: &GuestFiles, p: &peer::Peer, applets: &[&str]) -> Result<PathBuf> {
    let tar = std::fs::read(&g.tar).map_err(|e| format!("{}: {e}", g.tar.display()))?;
    let cmd = bbtest::command(applets);
    let key = fnv64(&[
        &tar,
        bbtest::SCRIPT.as_bytes(),
        cmd.as_bytes(),
        &std::fs::read(crate::initrd::BUSYBOX).unwrap_or_default(),
        format!("{MEM_MIB} {SMP}").as_bytes(),
    ]);
    let dir = cache_dir().join("linux");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let kernel_id = p.version.replace(' ', "_");
    let file = dir.join(format!(
        "{}_{}_{kernel_id}_{key:016x}.log",
        ts.source,
        no_epoch(&ts.binary_version)
    ));
    Ok(file)
}

/// The applets `runtest` runs with no argument (`busybox` first, then what busybox has),
/// less those the QEMU test leaves to `compare busybox` ([`bbtest::LEFT_TO_COMPARE`]).
fn test_applets() -> Result<Vec<String>> {
    let out = output(
        Command::new(crate::initrd::BUSYBOX).arg("--list"),
        "busybox --list",
    )?;
    Ok(std::iter::once("busybox")
        .chain(out.lines().map(str::trim))
        .filter(|a| !a.is_empty() && !bbtest::LEFT_TO_COMPARE.iter().any(|(l, _)| l == a))
        .map(str::to_string)
        .collect())
}

/// The Linux peer's results for `applets` (all when empty): from the cache, or by booting
/// the peer (always with `rerun`). Returns the file holding the peer's serial output.
pub fn linux_results(
    ts: &Testsuite,
    g: &GuestFiles,
    applets: &[&str],
    rerun: bool,
) -> Result<PathBuf> {
    let p = peer::kernel()?;
    let file = linux_file(ts, g, &p, applets)?;
    if file.is_file() && !rerun {
        return Ok(file);
    }
    let tar = std::fs::read(&g.tar).map_err(|e| format!("{}: {e}", g.tar.display()))?;
    let cmd = bbtest::command(applets);
    // The same /etc as AdrOS's initrd (users, groups, host name), at the peer's root.
    let mut files = vec![
        ("/bbtest.tar".to_string(), tar, 0o644),
        (
            "/bbtest.sh".to_string(),
            bbtest::SCRIPT.as_bytes().to_vec(),
            0o755,
        ),
    ];
    let etc = crate::util::root().join("initrd/etc");
    for e in std::fs::read_dir(&etc)
        .map_err(|e| format!("{}: {e}", etc.display()))?
        .flatten()
    {
        if e.path().is_file() {
            let data =
                std::fs::read(e.path()).map_err(|err| format!("{}: {err}", e.path().display()))?;
            files.push((
                format!("/etc/{}", e.file_name().to_string_lossy()),
                data,
                0o644,
            ));
        }
    }
    let cpio = target_dir().join("bbtest/linux-peer.cpio");
    peer::initramfs(&cpio, &peer::init_script(&cmd, ""), &files)?;
    let mut m = Machine::new(Path::new(""));
    m.smp = SMP;
    m.mem_mib = MEM_MIB;
    m.direct = Some(qemu::DirectBoot {
        kernel: p.vmlinuz.clone(),
        initrd: cpio,
        append: "console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init".into(),
    });
    let t0 = Instant::now();
    let out = boot(
        &m,
        &format!("Linux ({})", p.version),
        &target_dir().join("bbtest/linux-live.log"),
    )?;
    let r = bbtest::parse(&out.serial);
    if r.end.is_none() {
        let log = target_dir().join("bbtest/linux-failed.log");
        let _ = std::fs::write(&log, &out.serial);
        return Err(format!(
            "the Linux peer did not finish the testsuite ({}; {} cases printed, last applet {:?}; serial in {})",
            if out.timed_out {
                "timed out"
            } else {
                qemu::describe(out.status)
            },
            r.cases.len(),
            r.last_applet,
            log.display()
        ));
    }
    let header = format!(
        "# busybox testsuite on the Linux peer {}, produced by booting it in QEMU (TCG, -smp {SMP}, {MEM_MIB} MiB) in {:.0} s: {} passed, {} failed, {} skipped\n",
        p.version,
        t0.elapsed().as_secs_f64(),
        r.count(Outcome::Pass),
        r.count(Outcome::Fail),
        r.count(Outcome::Skipped)
    );
    crate::util::write_atomic(&file, header + &out.serial)?;
    eprintln!("xtask: Linux peer results cached in {}", file.display());
    Ok(file)
}

/// The environment `cargo xtask test` gives the QEMU tests for s21: `ADROS_BBTEST_INITRD`
/// (the AdrOS initrd with the testsuite) and `ADROS_BBTEST_LINUX` (the Linux peer's output),
/// or `ADROS_BBTEST_SKIP` with the reason they cannot be had.
pub fn test_env(built: &Built, filter: Option<&str>) -> Vec<(String, String)> {
    if filter.is_some_and(|f| !TEST_NAMES.iter().any(|n| n.contains(f))) {
        return vec![(
            "ADROS_BBTEST_SKIP".into(),
            "not selected by --qemu-filter".into(),
        )];
    }
    let r = testsuite().and_then(|ts| {
        let g = guest_files(&ts)?;
        // The whole suite's Linux run when cached (a superset), else one of the applets
        // the test runs.
        let p = peer::kernel()?;
        let full = linux_file(&ts, &g, &p, &[])?;
        let linux = if full.is_file() {
            full
        } else {
            let applets = test_applets()?;
            let names: Vec<&str> = applets.iter().map(String::as_str).collect();
            linux_results(&ts, &g, &names, false)?
        };
        let initrd = adros_initrd(built, &g)?;
        Ok((initrd, linux))
    });
    match r {
        Ok((initrd, linux)) => vec![
            ("ADROS_BBTEST_INITRD".into(), initrd.display().to_string()),
            ("ADROS_BBTEST_LINUX".into(), linux.display().to_string()),
        ],
        Err(e) => {
            eprintln!("  busybox testsuite (s21): unavailable: {e}");
            vec![(
                "ADROS_BBTEST_SKIP".into(),
                format!("busybox testsuite unavailable: {e}"),
            )]
        }
    }
}

/// `cargo xtask compare busybox`.
pub fn compare(a: &CompareArgs) -> Result<i32> {
    crate::deps::ensure(true)?;
    let built = build::build(&a.build)?;
    let ts = testsuite()?;
    let g = guest_files(&ts)?;
    let linux_file = linux_results(&ts, &g, &[], a.rerun_linux)?;
    let linux_log = std::fs::read_to_string(&linux_file)
        .map_err(|e| format!("{}: {e}", linux_file.display()))?;
    let linux = bbtest::parse(&linux_log);

    let initrd = adros_initrd(&built, &g)?;
    let dir = target_dir().join("bbtest");
    let modules = dir.join("adros.modules");
    adros_tests::bundle::write(
        &[("symbols", &built.symbols), ("initrd", &initrd)],
        &modules,
    )?;
    let hex: String = bbtest::command(&[])
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut m = Machine::pvh(
        &built.kernel,
        &modules,
        &format!("{} loglevel=3 adros.exec={hex}", build::DEFAULT_CMDLINE),
    );
    m.smp = SMP;
    m.mem_mib = MEM_MIB;
    let t0 = Instant::now();
    let out = boot(&m, "AdrOS", &dir.join("adros-live.log"))?;
    let adros_secs = t0.elapsed().as_secs_f64();
    let log = dir.join("adros.log");
    std::fs::write(&log, &out.serial).map_err(|e| format!("{}: {e}", log.display()))?;
    let adros = bbtest::parse(&out.serial);
    let c = bbtest::compare(&adros, &linux);

    let mut t = String::new();
    let _ = writeln!(
        t,
        "\nbusybox {} testsuite ({} cases), -smp {SMP}, {MEM_MIB} MiB, TCG\n",
        ts.source_version,
        linux.cases.len()
    );
    let _ = writeln!(
        t,
        "| | AdrOS | Linux ({}) |",
        linux.kernel.as_deref().unwrap_or("?")
    );
    let _ = writeln!(t, "|---|---|---|");
    for (what, o) in [
        ("passed", Outcome::Pass),
        ("failed", Outcome::Fail),
        ("skipped", Outcome::Skipped),
    ] {
        let _ = writeln!(t, "| {what} | {} | {} |", adros.count(o), linux.count(o));
    }
    let status = |r: &Results| match r.end {
        Some(s) => format!("finished (runtest status {s})"),
        None => format!("did not finish (last applet {:?})", r.last_applet),
    };
    let _ = writeln!(t, "| run | {} | {} |", status(&adros), status(&linux));
    let _ = writeln!(t, "| wall time | {adros_secs:.0} s | (cached) |");
    let mut list = |title: &str, v: &[bbtest::Case], detail: bool| {
        if v.is_empty() {
            return;
        }
        let _ = writeln!(t, "\n{title} ({}):", v.len());
        for n in v {
            let _ = writeln!(t, "  [{}] {}", n.applet, n.name);
            if detail {
                for l in bbtest::failure_detail(&out.serial, n).lines().take(12) {
                    let _ = writeln!(t, "      {l}");
                }
            }
        }
    };
    list("Passing on Linux, failing on AdrOS", &c.regressions, true);
    list(
        "Passing on Linux, skipped on AdrOS",
        &c.skipped_on_adros,
        false,
    );
    list(
        "Passing on Linux, never reached on AdrOS",
        &c.missing_on_adros,
        false,
    );
    list(
        "Failing or skipped on Linux, passing on AdrOS",
        &c.better_on_adros,
        false,
    );
    println!("{t}");
    eprintln!(
        "xtask compare: AdrOS serial in {}, Linux's in {}",
        log.display(),
        linux_file.display()
    );
    Ok(if c.ok() { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsc_checksums() {
        let dsc = "Format: 3.0 (quilt)\nChecksums-Sha1:\n 36a1 2480624 busybox_1.35.0.orig.tar.bz2\nChecksums-Sha256:\n faee 2480624 busybox_1.35.0.orig.tar.bz2\n 1cac 68028 busybox_1.35.0-4+deb12u1.debian.tar.xz\nFiles:\n 5859 2480624 busybox_1.35.0.orig.tar.bz2\n";
        assert_eq!(
            dsc_files(dsc),
            vec![
                ("faee".into(), 2480624, "busybox_1.35.0.orig.tar.bz2".into()),
                (
                    "1cac".into(),
                    68028,
                    "busybox_1.35.0-4+deb12u1.debian.tar.xz".into()
                ),
            ]
        );
        assert_eq!(no_epoch("1:1.35.0-4"), "1.35.0-4");
        assert_eq!(
            url_name("busybox_1.35.0-4+deb12u1.dsc"),
            "busybox_1.35.0-4%2bdeb12u1.dsc"
        );
    }

    #[test]
    fn fnv_is_stable() {
        assert_eq!(fnv64(&[]), 0xcbf2_9ce4_8422_2325);
        assert_ne!(fnv64(&[b"a", b"b"]), fnv64(&[b"ab"]));
    }
}
