//! `cargo xtask test`: everything CI runs, at four levels, then one summary.
//!
//! 1. `deps`, then the ISO is built once.
//! 2. Lint level: `cargo xtask lint` (rustfmt, clippy -D warnings on host packages and the
//!    kernel); each step is one test.
//! 3. Host level: `cargo test` for every workspace package, one package at a time so that a
//!    package that does not compile fails alone (its compiler errors are shown).
//! 4. In-kernel level: the kernel boots with `ktest` and reports each test over serial.
//! 5. QEMU level: `cargo test -p adros-tests` boots the ISO for each integration test.
//!
//! Counting: libtest's `ignored` and tests that print `SKIPPED: <test>: <reason>` (and pass)
//! are skipped, never passed; a package that does not build, a crashed test binary, a kernel
//! that dies mid-run (every test it did not report counts as failed) are failures. The last
//! line is `N passed, N failed, N skipped`. See docs/testing.md.

use std::collections::{BTreeSet, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::ProgressBar;

use crate::build::{self, BuildArgs, DEFAULT_CMDLINE};
use crate::qemu::{self, Machine};
use crate::util::{Result, root, spinner, target_dir};

#[derive(Args, Clone)]
pub struct TestArgs {
    /// Run only these levels (repeatable): lint, host, kernel, qemu. Default: all four.
    #[arg(long = "level", value_parser = ["lint", "host", "kernel", "qemu"])]
    pub levels: Vec<String>,
    /// Overall timeout of the in-kernel test run, in seconds.
    #[arg(long, default_value_t = 300)]
    pub ktest_timeout: u64,
    /// Only in-kernel tests whose name contains this (`ktest.run=FILTER`).
    #[arg(long)]
    pub ktest_filter: Option<String>,
    /// QEMU integration tests run at most this many at a time.
    #[arg(long, default_value_t = 2)]
    pub qemu_threads: u32,
    /// Only QEMU integration tests whose name contains this (libtest filter).
    #[arg(long)]
    pub qemu_filter: Option<String>,
    #[command(flatten)]
    pub build: BuildArgs,
}

/// Counts for one level, and what failed.
#[derive(Default, Debug, Clone, PartialEq)]
pub struct Tally {
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
    /// One line per failure (with details indented below it).
    pub failures: Vec<String>,
    /// One line per skip with its reason, where known.
    pub skips: Vec<String>,
}

impl Tally {
    fn add(&mut self, o: Tally) {
        self.passed += o.passed;
        self.failed += o.failed;
        self.skipped += o.skipped;
        self.failures.extend(o.failures);
        self.skips.extend(o.skips);
    }
    fn fail(&mut self, what: String) {
        self.failed += 1;
        self.failures.push(what);
    }
    fn counts(&self) -> String {
        format!(
            "{} passed, {} failed, {} skipped",
            self.passed, self.failed, self.skipped
        )
    }
}

/// Prints a line without tearing the spinner (and also when the spinner is hidden, as in CI).
fn say(pb: &ProgressBar, msg: impl AsRef<str>) {
    pb.suspend(|| eprintln!("{}", msg.as_ref()));
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

pub fn test(a: TestArgs) -> Result<i32> {
    let start = Instant::now();
    let want = |l: &str| a.levels.is_empty() || a.levels.iter().any(|x| x == l);
    eprintln!("==> deps (host packages, Rust targets and components)");
    crate::deps::ensure(true)?;
    // One test run per target directory at a time: a run clears and fills test-logs/.
    let _running = crate::cache::lock_file(&target_dir().join("xtask-test.lock"), "xtask test")?;

    // Stale logs from an earlier run would be mistaken for this run's.
    let logs = target_dir().join("test-logs");
    let _ = std::fs::remove_dir_all(&logs);
    std::fs::create_dir_all(&logs).map_err(|e| format!("creating {}: {e}", logs.display()))?;

    let built = if want("kernel") || want("qemu") {
        eprintln!("==> building the ISO");
        match build::build(&a.build) {
            Ok(b) => Some(b),
            Err(e) => {
                eprintln!("xtask test: the build failed:\n{e}");
                None
            }
        }
    } else {
        None
    };

    let mut levels: Vec<(&str, Tally)> = Vec::new();
    if want("lint") {
        eprintln!("==> lint (cargo xtask lint: rustfmt, clippy -D warnings)");
        levels.push(("lint", lint_level()));
    }
    if want("host") {
        eprintln!("==> host tests (cargo test, per package)");
        levels.push(("host", host_level()));
    }
    if want("kernel") {
        eprintln!(
            "==> in-kernel tests (boot with `ktest`, timeout {} s)",
            a.ktest_timeout
        );
        let t = match &built {
            Some(b) => kernel_level(b, &a, &logs),
            None => failed_level("in-kernel tests not run: the build failed (see above)"),
        };
        levels.push(("in-kernel", t));
    }
    if want("qemu") {
        eprintln!(
            "==> QEMU integration tests (cargo test -p adros-tests, {} at a time)",
            a.qemu_threads
        );
        let t = match &built {
            Some(b) => qemu_level(b, &a, &logs),
            None => failed_level("QEMU tests not run: the build failed (see above)"),
        };
        levels.push(("QEMU", t));
    }

    let mut total = Tally::default();
    eprintln!("\n==> summary ({:.0} s)", start.elapsed().as_secs_f64());
    for (name, t) in &levels {
        eprintln!("  {:<10} {}", format!("{name}:"), t.counts());
    }
    for (name, t) in levels {
        for s in &t.skips {
            eprintln!("  skipped ({name}): {s}");
        }
        for f in &t.failures {
            eprintln!("  FAILED ({name}): {f}");
        }
        total.add(t);
    }
    if total.failed > 0 {
        eprintln!("  serial transcripts of failed boots: {}", logs.display());
    }
    let _ = std::io::stderr().flush();
    println!(
        "{} passed, {} failed, {} skipped",
        total.passed, total.failed, total.skipped
    );
    Ok(if total.failed > 0 { 1 } else { 0 })
}

fn lint_level() -> Tally {
    let mut t = Tally::default();
    match crate::lint::steps(false) {
        Err(e) => t.fail(format!("lint could not run: {e}")),
        Ok(steps) => {
            for s in steps {
                match s.failure {
                    None => {
                        eprintln!("  {}: ok", s.name);
                        t.passed += 1;
                    }
                    Some(f) => {
                        eprintln!("  {}: FAILED", s.name);
                        t.fail(format!(
                            "{} (fix: cargo xtask lint --fix):\n{}",
                            s.name,
                            indent(&f)
                        ));
                    }
                }
            }
        }
    }
    t
}

fn failed_level(why: &str) -> Tally {
    let mut t = Tally::default();
    t.fail(why.into());
    t
}

// ---------------------------------------------------------------------------------------
// Host level

/// A workspace package and how to test it on the host.
#[derive(Debug, PartialEq)]
struct HostPackage {
    name: String,
    /// Extra `cargo test` arguments.
    args: Vec<String>,
}

/// The workspace members, from the root Cargo.toml, with their test arguments: packages
/// with a `std` feature are tested with it (their host implementation), and `adros-tests`
/// only with `--lib` (its integration tests are the QEMU level).
fn host_packages(root: &Path) -> Result<Vec<HostPackage>> {
    let manifest = std::fs::read_to_string(root.join("Cargo.toml"))
        .map_err(|e| format!("reading Cargo.toml: {e}"))?;
    let mut out = Vec::new();
    for member in workspace_members(&manifest) {
        let path = root.join(&member).join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&path) else {
            // Cargo itself would refuse the workspace; say so as a failure below.
            out.push(HostPackage {
                name: member.clone(),
                args: vec![],
            });
            continue;
        };
        let (name, has_std) = package_info(&text);
        let name = name.unwrap_or(member);
        let mut args = Vec::new();
        if has_std {
            args.extend(["--features".to_string(), "std".to_string()]);
        }
        if name == "adros-tests" {
            args.push("--lib".into());
        }
        out.push(HostPackage { name, args });
    }
    Ok(out)
}

/// `members = [ "a", "b", … ]` of a workspace manifest (one or several lines).
fn workspace_members(manifest: &str) -> Vec<String> {
    let Some(i) = manifest.find("members") else {
        return vec![];
    };
    let rest = &manifest[i..];
    let (Some(open), Some(close)) = (rest.find('['), rest.find(']')) else {
        return vec![];
    };
    rest[open + 1..close]
        .split(',')
        .map(|s| {
            s.split('#')
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches('"')
                .to_string()
        })
        .filter(|s| !s.is_empty())
        .collect()
}

/// The package name and whether it has a `std` feature.
fn package_info(manifest: &str) -> (Option<String>, bool) {
    let mut section = String::new();
    let (mut name, mut has_std) = (None, false);
    for line in manifest.lines() {
        let l = line.trim();
        if l.starts_with('[') {
            section = l.trim_matches(|c| c == '[' || c == ']').trim().to_string();
            continue;
        }
        let key = l.split('=').next().unwrap_or("").trim();
        if section == "package" && key == "name" && name.is_none() {
            name = l
                .split_once('=')
                .map(|(_, v)| v.trim().trim_matches('"').to_string());
        }
        if section == "features" && key == "std" {
            has_std = true;
        }
    }
    (name, has_std)
}

fn host_level() -> Tally {
    let mut tally = Tally::default();
    let pb = spinner("host: building the rump components (if NetBSD source is present)");
    let mut env: Vec<(String, String)> = Vec::new();
    match crate::rump::ensure_host_build() {
        Ok(Some(dir)) => {
            say(&pb, format!("  rump host components: {}", dir.display()));
            env.push((crate::rump::HOST_DIR_ENV.into(), dir.display().to_string()));
        }
        Ok(None) => say(
            &pb,
            "  no NetBSD source: tests that need rump components skip (see README)",
        ),
        Err(e) => tally.fail(format!(
            "rump host build (cargo xtask rump build --target host):\n{}",
            indent(&e)
        )),
    }
    pb.finish_and_clear();
    let pkgs = match host_packages(&root()) {
        Ok(p) => p,
        Err(e) => {
            tally.fail(e);
            return tally;
        }
    };
    for p in pkgs {
        let pb = spinner(format!("host: {}", p.name));
        let t0 = Instant::now();
        let mut args: Vec<String> = vec![
            "test".into(),
            "-p".into(),
            p.name.clone(),
            "--no-fail-fast".into(),
        ];
        args.extend(p.args.iter().cloned());
        args.extend(["--".into(), "--show-output".into()]);
        let r = run_cargo_test(&args, &env, &pb, false);
        pb.finish_and_clear();
        let t = r.into_tally(
            &format!("host {}", p.name),
            &format!("cargo {}", args.join(" ")),
        );
        eprintln!(
            "  {:<20} {} ({:.0} s)",
            p.name,
            t.counts(),
            t0.elapsed().as_secs_f64()
        );
        tally.add(t);
    }
    tally
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("      {l}\n"))
        .collect::<String>()
        .trim_end()
        .to_string()
}

// ---------------------------------------------------------------------------------------
// Running `cargo test` and reading libtest's output

/// What one `cargo test` invocation reported.
#[derive(Default, Debug)]
struct CargoTest {
    passed: u64,
    failed: u64,
    ignored: u64,
    /// Whether any `test result:` line was seen.
    saw_result: bool,
    /// `SKIPPED:` lines printed by tests that passed.
    skipped_lines: BTreeSet<String>,
    failed_names: Vec<String>,
    ignored_names: Vec<String>,
    /// libtest's `failures:` sections (panic messages).
    failure_text: String,
    /// cargo's stderr (compiler errors, crashed binaries).
    stderr: String,
    exit_ok: bool,
}

#[derive(PartialEq, Clone, Copy)]
enum Section {
    Other,
    Successes,
    Failures,
}

/// Feeds one stdout line of libtest into `r`. `section` tracks libtest's `successes:` /
/// `failures:` blocks (the output of passing tests is shown with `--show-output`).
fn parse_libtest_line(r: &mut CargoTest, section: &mut Section, line: &str) {
    let l = line.trim_end();
    if l == "successes:" {
        *section = Section::Successes;
        return;
    }
    if l == "failures:" {
        *section = Section::Failures;
    }
    if let Some(rest) = l.strip_prefix("test result: ") {
        *section = Section::Other;
        r.saw_result = true;
        for part in rest.split(';') {
            let part = part
                .trim()
                .trim_start_matches("ok.")
                .trim_start_matches("FAILED.")
                .trim();
            let mut it = part.split_whitespace();
            let (Some(n), Some(what)) = (it.next().and_then(|n| n.parse::<u64>().ok()), it.next())
            else {
                continue;
            };
            match what {
                "passed" => r.passed += n,
                "failed" => r.failed += n,
                "ignored" => r.ignored += n,
                _ => {}
            }
        }
        return;
    }
    if let Some(rest) = l.strip_prefix("test ") {
        if let Some(name) = rest.strip_suffix(" ... FAILED") {
            r.failed_names.push(name.to_string());
        } else if let Some(i) = rest.find(" ... ignored") {
            r.ignored_names.push(rest[..i].to_string());
        }
    }
    if let Some(i) = l.find("SKIPPED: ") {
        if *section != Section::Failures {
            r.skipped_lines
                .insert(l[i + "SKIPPED: ".len()..].trim().to_string());
        }
        return;
    }
    if *section == Section::Failures {
        r.failure_text.push_str(l);
        r.failure_text.push('\n');
    }
}

impl CargoTest {
    fn into_tally(self, what: &str, cmd: &str) -> Tally {
        let mut t = Tally::default();
        let skipped_marked = (self.skipped_lines.len() as u64).min(self.passed);
        t.passed = self.passed - skipped_marked;
        t.skipped = self.ignored + skipped_marked;
        t.failed = self.failed;
        t.skips.extend(self.skipped_lines.iter().cloned());
        t.skips
            .extend(self.ignored_names.iter().map(|n| format!("{n} (ignored)")));
        for n in &self.failed_names {
            t.failures.push(format!("{what}: {n}"));
        }
        if t.failures.len() < self.failed as usize {
            t.failures.push(format!(
                "{what}: {} failing test(s)",
                self.failed as usize - t.failures.len()
            ));
        }
        if !self.failure_text.trim().is_empty()
            && let Some(first) = t.failures.first_mut()
        {
            first.push('\n');
            first.push_str(&indent(self.failure_text.trim()));
        }
        if !self.exit_ok && self.failed == 0 {
            // No test failed, yet cargo failed: the package did not build, or a test
            // binary died without a result. Show why.
            let built = self.saw_result || !self.stderr.contains("could not compile");
            let why = if built {
                "a test binary crashed or cargo failed"
            } else {
                "did not compile"
            };
            t.fail(format!(
                "{what}: {why} ({cmd}):\n{}",
                indent(&error_excerpt(&self.stderr))
            ));
        }
        t
    }
}

/// The interesting part of cargo's stderr: from the first error on, at most 60 lines.
fn error_excerpt(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| {
            !l.trim_start().starts_with("Compiling ") && !l.trim_start().starts_with("Blocking")
        })
        .collect();
    let first = lines
        .iter()
        .position(|l| l.starts_with("error") || l.contains("process didn't exit successfully"))
        .unwrap_or(lines.len().saturating_sub(30));
    let shown: Vec<&str> = lines[first..].iter().take(60).copied().collect();
    let mut s = shown.join("\n");
    if lines.len() - first > 60 {
        s.push_str("\n… (cut; run the command above to see everything)");
    }
    s
}

/// Runs `cargo <args>`, streaming libtest's output into a [`CargoTest`]. With `per_test`,
/// each finished test is printed as it completes (long QEMU tests); otherwise the spinner
/// shows the latest step.
fn run_cargo_test(
    args: &[String],
    env: &[(String, String)],
    pb: &ProgressBar,
    per_test: bool,
) -> CargoTest {
    let mut r = CargoTest::default();
    let mut cmd = Command::new(cargo());
    cmd.current_dir(root())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            r.stderr = format!("error: cannot run cargo: {e}");
            return r;
        }
    };
    // cargo names each test binary on stderr ("Running tests/s00_boot.rs (…)") before it
    // starts it; libtest then says "running N tests" on stdout. A queue pairs them up.
    let queued: Arc<Mutex<VecDeque<String>>> = Arc::new(Mutex::new(VecDeque::new()));
    let stderr = child.stderr.take().map(BufReader::new);
    let (pb2, q2) = (pb.clone(), queued.clone());
    let err_thread = std::thread::spawn(move || {
        let mut all = String::new();
        if let Some(stderr) = stderr {
            for line in stderr.lines().map_while(std::result::Result::ok) {
                let t = line.trim();
                let head = pb2.message().split(" — ").next().unwrap_or("").to_string();
                if let Some(rest) = t.strip_prefix("Running ") {
                    let src = rest.split(" (").next().unwrap_or(rest).to_string();
                    let stem = Path::new(&src)
                        .file_stem()
                        .map(|s| s.to_string_lossy().to_string())
                        .unwrap_or(src.clone());
                    q2.lock().unwrap_or_else(|e| e.into_inner()).push_back(stem);
                    pb2.set_message(format!("{head} — running {src}"));
                } else if let Some(rest) = t.strip_prefix("Doc-tests ") {
                    q2.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push_back(format!("{rest} (doc)"));
                    pb2.set_message(format!("{head} — {t}"));
                } else if t.starts_with("Compiling ") {
                    pb2.set_message(format!("{head} — {t}"));
                }
                all.push_str(&line);
                all.push('\n');
            }
        }
        all
    });
    let mut section = Section::Other;
    let mut binary = String::new();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out)
            .lines()
            .map_while(std::result::Result::ok)
        {
            if line.starts_with("running ") && line.ends_with(" test")
                || line.starts_with("running ") && line.ends_with(" tests")
            {
                let t0 = Instant::now();
                binary = loop {
                    if let Some(b) = queued.lock().unwrap_or_else(|e| e.into_inner()).pop_front() {
                        break b;
                    }
                    if t0.elapsed() > Duration::from_secs(2) {
                        break String::from("?");
                    }
                    std::thread::sleep(Duration::from_millis(20));
                };
            }
            if per_test {
                if let Some(rest) = line.strip_prefix("test ")
                    && rest.contains(" ... ")
                    && !rest.starts_with("result")
                {
                    say(pb, format!("  {binary}::{rest}"));
                }
                if line.contains("SKIPPED: ") && section != Section::Failures {
                    say(pb, format!("  {}", line.trim()));
                }
            }
            parse_libtest_line(&mut r, &mut section, &line);
        }
    }
    r.exit_ok = child.wait().map(|s| s.success()).unwrap_or(false);
    r.stderr = err_thread.join().unwrap_or_default();
    r
}

// ---------------------------------------------------------------------------------------
// In-kernel level

/// What the kernel reported for one `ktest` run.
#[derive(Debug, Default, PartialEq)]
struct Ktest {
    listed: Vec<String>,
    passed: Vec<String>,
    failed: Vec<(String, String)>,
    skipped: Vec<(String, String)>,
    /// The test that was running when the report stopped, if any.
    running: Option<String>,
    summary: bool,
}

fn parse_ktest(serial: &str) -> Ktest {
    let mut k = Ktest::default();
    for line in serial.lines() {
        let Some(i) = line.find("ktest: ") else {
            continue;
        };
        let rest = line[i + "ktest: ".len()..].trim_end();
        if let Some(n) = rest.strip_prefix("LIST ") {
            k.listed.push(n.trim().to_string());
        } else if let Some(n) = rest.strip_prefix("RUN ") {
            k.running = Some(n.trim().to_string());
        } else if let Some(n) = rest.strip_prefix("PASS ") {
            let name = n.split(" (").next().unwrap_or(n).trim().to_string();
            k.passed.push(name);
            k.running = None;
        } else if let Some(n) = rest.strip_prefix("FAIL ") {
            let (name, reason) = n.split_once(": ").unwrap_or((n, ""));
            k.failed.push((name.trim().to_string(), reason.to_string()));
            k.running = None;
        } else if let Some(n) = rest.strip_prefix("SKIP ") {
            let (name, reason) = n.split_once(": ").unwrap_or((n, ""));
            k.skipped
                .push((name.trim().to_string(), reason.to_string()));
            k.running = None;
        } else if rest.starts_with("summary:") {
            k.summary = true;
        }
    }
    k
}

/// Counts a `ktest` run. Any test that never reported is a failure, named after why: the
/// one running when the kernel died "crashed the kernel", the rest "never ran".
fn ktest_tally(k: &Ktest, status: Option<i32>, timed_out: bool, serial: &str) -> Tally {
    let mut t = Tally {
        passed: k.passed.len() as u64,
        skipped: k.skipped.len() as u64,
        ..Tally::default()
    };
    t.skips
        .extend(k.skipped.iter().map(|(n, r)| format!("{n}: {r}")));
    for (n, r) in &k.failed {
        t.fail(format!("{n}: {r}"));
    }
    let crash = adros_tests::banner::crash_report(serial);
    let ended = if timed_out {
        "the run timed out".to_string()
    } else if crash.is_some() {
        "the kernel crashed".to_string()
    } else {
        format!(
            "the guest ended: {} (QEMU status {status:?})",
            qemu::describe(status)
        )
    };
    if k.listed.is_empty() && k.passed.is_empty() && k.failed.is_empty() {
        t.fail(format!("the kernel never started its tests ({ended})"));
    }
    let reported: BTreeSet<&str> = k
        .passed
        .iter()
        .map(String::as_str)
        .chain(k.failed.iter().map(|(n, _)| n.as_str()))
        .chain(k.skipped.iter().map(|(n, _)| n.as_str()))
        .collect();
    let mut unreported = 0;
    for n in &k.listed {
        if reported.contains(n.as_str()) {
            continue;
        }
        unreported += 1;
        if k.running.as_deref() == Some(n.as_str()) {
            let report = crash
                .map(|c| c.lines().take(30).collect::<Vec<_>>().join("\n"))
                .unwrap_or_default();
            t.fail(format!(
                "{n}: was running when {ended}\n{}",
                indent(&report)
            ));
        } else {
            t.fail(format!("{n}: never ran: {ended} before it"));
        }
    }
    let clean_end = match status {
        Some(33) => k.failed.is_empty(),
        Some(35) => !k.failed.is_empty(),
        _ => false,
    };
    if unreported == 0 && (!clean_end || !k.summary) && !k.listed.is_empty() {
        t.fail(format!(
            "every test reported, but the run did not end cleanly: {ended}, summary line {}",
            if k.summary { "seen" } else { "missing" }
        ));
    }
    t
}

fn kernel_level(built: &build::Built, a: &TestArgs, logs: &Path) -> Tally {
    let word = match &a.ktest_filter {
        Some(f) => format!("ktest.run={f}"),
        None => "ktest".to_string(),
    };
    let m = Machine::pvh(
        &built.kernel,
        &built.modules,
        &format!("{DEFAULT_CMDLINE} {word}"),
    );
    let pb = spinner("in-kernel: booting");
    let mut pending = String::new();
    let pb2 = pb.clone();
    let echo = move |b: &[u8]| {
        pending.push_str(&String::from_utf8_lossy(b));
        while let Some(i) = pending.find('\n') {
            let line: String = pending.drain(..=i).collect();
            let line = line.trim_end();
            if let Some(j) = line.find("ktest: ") {
                let rest = &line[j + 7..];
                if rest.starts_with("PASS ")
                    || rest.starts_with("FAIL ")
                    || rest.starts_with("SKIP ")
                    || rest.starts_with("summary")
                {
                    say(&pb2, format!("  {rest}"));
                } else if let Some(n) = rest.strip_prefix("RUN ") {
                    pb2.set_message(format!("in-kernel: {n}"));
                }
            } else if line.contains("!!! ") {
                say(&pb2, format!("  {line}"));
            }
        }
    };
    let out = match qemu::run_headless(&m, Duration::from_secs(a.ktest_timeout), echo, None) {
        Ok(o) => o,
        Err(e) => {
            pb.finish_and_clear();
            return failed_level(&e);
        }
    };
    pb.finish_and_clear();
    let log = logs.join("ktest.log");
    let _ = std::fs::write(&log, &out.serial);
    let k = parse_ktest(&out.serial);
    let t = ktest_tally(&k, out.status, out.timed_out, &out.serial);
    eprintln!(
        "  in-kernel: {} in {:.0} s (serial: {})",
        t.counts(),
        out.elapsed.as_secs_f64(),
        log.display()
    );
    t
}

// ---------------------------------------------------------------------------------------
// QEMU level

/// The Debian packages of the dynamic-linking tests (s17), with their dependencies.
pub const TEST_DEBS: &[&str] = &["coreutils", "python3", "stress-ng"];

/// Builds `<target>/initrd-debs.tar.lz4` — the default initrd plus [`TEST_DEBS`] — for the
/// tests that run Debian's dynamically linked programs: `ADROS_DEBS_INITRD`, or
/// `ADROS_DEBS_SKIP` with the reason it cannot be had (those tests then count as skipped).
fn debs_initrd(built: &build::Built) -> (String, String) {
    let pkgs: Vec<String> = TEST_DEBS.iter().map(|s| s.to_string()).collect();
    let path = crate::util::target_dir().join("initrd-debs.tar.lz4");
    match crate::debs::stage(&pkgs)
        .and_then(|tree| crate::initrd::build_to(&built.extras, &[tree], &path))
    {
        Ok(_) => ("ADROS_DEBS_INITRD".into(), path.display().to_string()),
        Err(e) => {
            eprintln!("  Debian packages for the dynamic-linking tests: unavailable: {e}");
            (
                "ADROS_DEBS_SKIP".into(),
                format!("Debian packages unavailable: {e}"),
            )
        }
    }
}

/// The aarch64 images for the s20 and s22 tests (`ADROS_KERNEL_AARCH64`: the core's image;
/// `ADROS_KERNEL_AARCH64_IMG` and `ADROS_INITRD_AARCH64`: the kernel as an arm64 `Image`
/// and the initrd with Debian's arm64 busybox), or why there are none (`ADROS_AARCH64_SKIP`,
/// `ADROS_AARCH64_KERNEL_SKIP`: those tests are then skipped).
fn aarch64_images() -> Vec<(String, String)> {
    match build::build_kernel_aarch64(false) {
        Ok(k) => {
            let mut v = vec![("ADROS_KERNEL_AARCH64".into(), k.display().to_string())];
            match crate::initrd::build_aarch64() {
                Ok(p) => v.extend([
                    (
                        "ADROS_KERNEL_AARCH64_IMG".into(),
                        build::aarch64_kernel_image(false).display().to_string(),
                    ),
                    ("ADROS_INITRD_AARCH64".into(), p.path.display().to_string()),
                ]),
                Err(e) => {
                    eprintln!("  aarch64 initrd: not built: {e}");
                    v.push((
                        "ADROS_AARCH64_KERNEL_SKIP".into(),
                        format!("the aarch64 initrd did not build: {e}"),
                    ));
                }
            }
            v
        }
        Err(e) => {
            eprintln!("  aarch64 image: not built: {e}");
            vec![(
                "ADROS_AARCH64_SKIP".into(),
                format!("the aarch64 image did not build: {e}"),
            )]
        }
    }
}

fn qemu_level(built: &build::Built, a: &TestArgs, logs: &Path) -> Tally {
    let stage = built.iso.with_extension("d");
    let mut env: Vec<(String, String)> = vec![
        ("ADROS_ISO".into(), built.iso.display().to_string()),
        ("ADROS_ISO_STAGE".into(), stage.display().to_string()),
        ("ADROS_KERNEL".into(), built.kernel.display().to_string()),
        ("ADROS_MODULES".into(), built.modules.display().to_string()),
        (
            "ADROS_RUMP_LINKED".into(),
            if built.rump_linked { "1" } else { "0" }.into(),
        ),
        ("ADROS_TEST_DIR".into(), logs.display().to_string()),
        debs_initrd(built),
        // A failing QEMU test's message carries the serial tail; the host backtrace of the
        // assertion adds nothing.
        ("RUST_BACKTRACE".into(), "0".into()),
    ];
    // Built only when the filter can pick an aarch64 test (s20_aarch64_*, s22_aarch64_*):
    // the kernel crate for aarch64 takes minutes on a small machine.
    let aarch64 = a.qemu_filter.as_deref().is_none_or(|f| {
        ["s20_aarch64_", "s22_aarch64_"]
            .iter()
            .any(|p| p.contains(f) || f.starts_with(p))
    });
    if aarch64 {
        env.extend(aarch64_images());
    }
    env.extend(crate::compare_busybox::test_env(
        built,
        a.qemu_filter.as_deref(),
    ));
    let mut args: Vec<String> = [
        "test",
        "-p",
        "adros-tests",
        "--test",
        "*",
        "--no-fail-fast",
        "--",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(f) = &a.qemu_filter {
        args.push(f.clone());
    }
    args.extend([
        format!("--test-threads={}", a.qemu_threads.max(1)),
        "--show-output".into(),
    ]);
    let pb = spinner("QEMU");
    let t0 = Instant::now();
    let r = run_cargo_test(&args, &env, &pb, true);
    pb.finish_and_clear();
    let t = r.into_tally("QEMU", &format!("cargo {}", args.join(" ")));
    eprintln!(
        "  QEMU: {} in {:.0} s",
        t.counts(),
        t0.elapsed().as_secs_f64()
    );
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(text: &str) -> CargoTest {
        let mut r = CargoTest::default();
        let mut s = Section::Other;
        for l in text.lines() {
            parse_libtest_line(&mut r, &mut s, l);
        }
        r
    }

    #[test]
    fn libtest_counts_and_skips() {
        let out = "running 3 tests\ntest a ... ok\ntest b ... ignored, needs x\ntest c ... FAILED\n\nsuccesses:\n\n---- a stdout ----\nSKIPPED: a: no disk\n\nsuccesses:\n    a\n\n\
                   failures:\n\n---- c stdout ----\nSKIPPED: c: printed but then failed\nthread 'c' panicked at boom\n\nfailures:\n    c\n\n\
                   test result: FAILED. 1 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s\n";
        let r = feed(out);
        assert_eq!((r.passed, r.failed, r.ignored), (1, 1, 1));
        assert_eq!(r.skipped_lines.len(), 1);
        assert!(r.failure_text.contains("panicked at boom"));
        let t = r.into_tally("x", "cargo test");
        assert_eq!((t.passed, t.failed, t.skipped), (0, 1, 2));
        assert!(t.failures[0].contains("x: c"));
    }

    #[test]
    fn build_failure_is_a_failure() {
        let r = CargoTest {
            stderr: "   Compiling x\nerror[E0583]: file not found\nerror: could not compile `x`\n"
                .into(),
            ..CargoTest::default()
        };
        let t = r.into_tally("host x", "cargo test -p x");
        assert_eq!(t.failed, 1);
        assert!(t.failures[0].contains("did not compile"));
        assert!(t.failures[0].contains("E0583"));
    }

    #[test]
    fn ktest_crash_counts_unreported() {
        let s = "ktest: running 3 tests\nktest: LIST a\nktest: LIST b\nktest: LIST c\nktest: RUN a\nktest: PASS a (3 ms)\nktest: RUN b\n\n!!! KERNEL PANIC on CPU 0: oops\n";
        let k = parse_ktest(s);
        let t = ktest_tally(&k, Some(37), false, s);
        assert_eq!((t.passed, t.failed), (1, 2));
        assert!(t.failures[0].starts_with("b: was running when the kernel crashed"));
        assert!(t.failures[0].contains("oops"));
        assert!(t.failures[1].starts_with("c: never ran"));
    }

    #[test]
    fn ktest_clean_run() {
        let s = "ktest: running 2 tests\nktest: LIST a\nktest: LIST b\nktest: RUN a\nktest: PASS a (1 ms)\nktest: RUN b\nktest: FAIL b: wrong (2 ms)\nktest: summary: 1 passed, 1 failed\n";
        let t = ktest_tally(&parse_ktest(s), Some(35), false, s);
        assert_eq!((t.passed, t.failed, t.skipped), (1, 1, 0));
        assert_eq!(t.failures, vec!["b: wrong (2 ms)".to_string()]);
        let t = ktest_tally(&parse_ktest(""), None, true, "");
        assert_eq!(t.failed, 1);
    }

    #[test]
    fn members_and_features() {
        let m = "[workspace]\nmembers = [\"kernel\", \"xtask\",\n  \"drivers/pci\", # the bus\n]\n";
        assert_eq!(workspace_members(m), vec!["kernel", "xtask", "drivers/pci"]);
        let p = "[package]\nname = \"rumpuser-adros\"\n[features]\ndefault = []\nstd = []\n";
        assert_eq!(package_info(p), (Some("rumpuser-adros".into()), true));
    }
}
