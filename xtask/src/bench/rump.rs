//! `cargo xtask bench rump` (alias `cargo xtask rump bench`): rumpuser-adros against NetBSD's
//! own POSIX `librumpuser`, hosting the same NetBSD rump components (ext2fs) on this machine.
//!
//! Builds `rump-host-tests`'s `ext2` bench twice — linked with the `host` components and
//! rumpuser-adros, and with the `posix` build's components and `librumpuser`
//! (`ADROS_RUMP_BENCH_POSIX_DIR`) — then runs the two binaries alternately (A/B/A/B…, `--runs`
//! times each, the first host alternating: the host is shared and noisy), prints the median
//! (min–max) of each workload for both, the ratio of the medians rumpuser-adros / NetBSD and
//! the spread of the per-run ratios (all figures are rates: higher is better, ≥ 1.0 is the
//! goal), the CPU time of each phase, the load average the runs saw, and writes
//! target/bench/rump.json.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::report::Samples;
use crate::rump::{self, HOST_DIR_ENV, Sources, Target};
use crate::util::{Result, root, spinner, target_dir};

/// (key in the bench's `BENCH {…}` line, unit, description). Rates: higher is better.
const FIGURES: &[(&str, &str, &str)] = &[
    (
        "read64_cold_mib_s",
        "MiB/s",
        "ext2: read a 64 MiB file, first read (through rumpuser_bio; rump allocates its page cache)",
    ),
    (
        "read64_remount_mib_s",
        "MiB/s",
        "ext2: read it again after unmount + mount (rump's page memory is reused), median of 5",
    ),
    (
        "read64_warm_mib_s",
        "MiB/s",
        "ext2: read the 64 MiB file again, from the rump kernel's cache, median of 5",
    ),
    (
        "create10k_per_s",
        "files/s",
        "ext2: create 10,000 empty files (2 synchronous metadata writes each: host pwrite + fsync)",
    ),
    (
        "stat10k_per_s",
        "files/s",
        "ext2: stat 10,000 files, median of 5 passes",
    ),
];

/// CPU time of all the bench's threads per phase (ms; lower is better): less sensitive than
/// the rates to other load on the machine, and shows where a host spends more work.
const CPU_FIGURES: &[(&str, &str)] = &[
    ("read64_cold_cpu_ms", "cold read"),
    ("read64_remount_cpu_ms", "read after remount (median)"),
    ("read64_warm_cpu_ms", "warm read (mean of 5)"),
    ("create10k_cpu_ms", "create 10,000"),
    ("stat10k_cpu_ms", "stat 10,000 (mean of 5 passes)"),
];

const OURS: &str = "rumpuser-adros";
const THEIRS: &str = "netbsd-librumpuser";

/// Builds the `ext2` bench for one host; returns the executable.
fn build_bench(label: &str, envs: &[(&str, &Path)], remove: &[&str]) -> Result<PathBuf> {
    let pb = spinner(format!(
        "bench rump: building the ext2 workload for {label}"
    ));
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root()).args([
        "bench",
        "--no-run",
        "--message-format=json",
        "-q",
        "-p",
        "rump-host-tests",
        "--bench",
        "ext2",
    ]);
    // One target directory per host: the two builds link different archives.
    c.env(
        "CARGO_TARGET_DIR",
        target_dir().join("bench-rump").join(label),
    );
    for (k, v) in envs {
        c.env(k, v);
    }
    for k in remove {
        c.env_remove(k);
    }
    let out = c.output().map_err(|e| format!("cargo bench: {e}"))?;
    pb.finish_and_clear();
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "building the bench for {label} failed:\n{text}{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    // The compiler-artifact message of the bench target carries `"executable":"…"`.
    text.lines()
        .filter(|l| {
            l.contains("\"reason\":\"compiler-artifact\"") && l.contains("\"name\":\"ext2\"")
        })
        .find_map(|l| {
            let i = l.find("\"executable\":\"")? + "\"executable\":\"".len();
            let end = l[i..].find('"')?;
            Some(PathBuf::from(&l[i..i + end]))
        })
        .ok_or_else(|| format!("cargo bench --no-run for {label} named no ext2 executable"))
}

/// Runs one bench binary once; returns its `BENCH` JSON object.
fn run_once(label: &str, exe: &Path, run: u32, runs: u32) -> Result<String> {
    let pb = spinner(format!("bench rump: run {run}/{runs} on {label}"));
    let out = Command::new(exe)
        .current_dir(root())
        .output()
        .map_err(|e| format!("{}: {e}", exe.display()));
    pb.finish_and_clear();
    let out = out?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        return Err(format!("bench on {label} failed ({}):\n{text}", out.status));
    }
    if let Some(l) = text.lines().find(|l| l.starts_with("SKIPPED:")) {
        return Err(format!("bench on {label}: {l}"));
    }
    text.lines()
        .find_map(|l| l.find("BENCH ").map(|i| l[i + 6..].trim().to_string()))
        .ok_or_else(|| format!("bench on {label} printed no BENCH line:\n{text}"))
}

fn json_num(obj: &str, key: &str) -> Option<f64> {
    let i = obj.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = &obj[i..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

fn num(v: Option<f64>) -> String {
    v.filter(|v| v.is_finite())
        .map(|v| format!("{v:.1}"))
        .unwrap_or_else(|| "—".into())
}

fn num2(v: Option<f64>) -> String {
    v.filter(|v| v.is_finite())
        .map(|v| format!("{v:.2}"))
        .unwrap_or_else(|| "—".into())
}

fn jnum(v: Option<f64>) -> String {
    v.filter(|v| v.is_finite())
        .map(|v| format!("{v}"))
        .unwrap_or_else(|| "null".into())
}

fn cell(s: &Samples) -> String {
    format!("{} ({}–{})", num(s.median()), num(s.min()), num(s.max()))
}

fn jsamples(s: &Samples) -> String {
    let j = jnum;
    format!(
        "{{\"samples\": [{}], \"median\": {}, \"min\": {}, \"max\": {}}}",
        s.values
            .iter()
            .map(|v| format!("{v}"))
            .collect::<Vec<_>>()
            .join(", "),
        j(s.median()),
        j(s.min()),
        j(s.max())
    )
}

pub fn run(runs: u32) -> Result<i32> {
    if runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    let Some(src) = Sources::find() else {
        return Err(rump::no_source());
    };
    let host = rump::build(Target::Host, &src, false)?;
    let posix = rump::build(Target::Posix, &src, false)?;
    let ours = build_bench(
        OURS,
        &[(HOST_DIR_ENV, &host)],
        &["ADROS_RUMP_BENCH_POSIX_DIR"],
    )?;
    let theirs = build_bench(
        THEIRS,
        &[("ADROS_RUMP_BENCH_POSIX_DIR", &posix)],
        &[HOST_DIR_ENV],
    )?;

    // One entry per run: each host's `BENCH` object and the 1-minute load average just
    // before it ran.
    let mut results: Vec<[(String, f64); 2]> = Vec::new();
    let mut raw = Vec::new();
    for run in 1..=runs {
        // Alternate which host goes first, so that a slow phase of the machine hits both.
        let order: [(&str, &PathBuf); 2] = if run % 2 == 1 {
            [(OURS, &ours), (THEIRS, &theirs)]
        } else {
            [(THEIRS, &theirs), (OURS, &ours)]
        };
        let mut pair: [(String, f64); 2] = Default::default();
        for (label, exe) in order {
            let load = loadavg();
            let obj = run_once(label, exe, run, runs)?;
            eprintln!("xtask bench rump: run {run}/{runs} {label} (load {load:.2}): {obj}");
            raw.push(format!(
                "{{\"run\": {run}, \"host\": \"{label}\", \"loadavg_1min\": {load}, \"result\": {obj}}}"
            ));
            pair[usize::from(label != OURS)] = (obj, load);
        }
        results.push(pair);
    }
    let series = |key: &str, side: usize| Samples {
        values: results
            .iter()
            .filter_map(|p| json_num(&p[side].0, key))
            .collect(),
        failures: Vec::new(),
    };
    // ours / theirs within each run (both ran back to back, so slow drifts of the machine
    // cancel better than in the ratio of the medians).
    let paired = |key: &str, invert: bool| Samples {
        values: results
            .iter()
            .filter_map(|p| {
                let (a, b) = (json_num(&p[0].0, key)?, json_num(&p[1].0, key)?);
                let r = if invert { b / a } else { a / b };
                r.is_finite().then_some(r)
            })
            .collect(),
        failures: Vec::new(),
    };
    let loads = Samples {
        values: results.iter().flat_map(|p| [p[0].1, p[1].1]).collect(),
        failures: Vec::new(),
    };

    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let commit = Command::new("git")
        .arg("-C")
        .arg(root())
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "\n`cargo xtask bench rump --runs {runs}` — {date} — NetBSD {} — {runs} runs of each host, alternated, {cores} host cores, 1-min load average before a run {} ({}–{})\n",
        &src.netbsd_commit[..src.netbsd_commit.len().min(12)],
        num2(loads.median()),
        num2(loads.min()),
        num2(loads.max()),
    );
    println!(
        "| workload (higher is better) | unit | rumpuser-adros median (min–max) | NetBSD librumpuser median (min–max) | adros/NetBSD (medians) | per run: median (min–max), runs ≥ 1 |"
    );
    println!("|---|---|---|---|---|---|");
    let ratio_of = |a: &Samples, b: &Samples| {
        a.median()
            .zip(b.median())
            .map(|(a, b)| a / b)
            .filter(|r| r.is_finite())
    };
    let won = |p: &Samples| p.values.iter().filter(|r| **r >= 1.0).count();
    let mut figs = Vec::new();
    for (k, unit, what) in FIGURES {
        let (a, b, p) = (series(k, 0), series(k, 1), paired(k, false));
        let ratio = ratio_of(&a, &b);
        println!(
            "| {k} | {unit} | {} | {} | {} | {} ({}–{}), {}/{} |",
            cell(&a),
            cell(&b),
            num2(ratio),
            num2(p.median()),
            num2(p.min()),
            num2(p.max()),
            won(&p),
            p.values.len()
        );
        figs.push(format!(
            "    {{\"name\": \"{k}\", \"what\": \"{what}\", \"unit\": \"{unit}\", \"better\": \"higher\", \"rumpuser_adros\": {}, \"netbsd_librumpuser\": {}, \"ratio_adros_over_netbsd\": {}, \"paired_ratios\": {}}}",
            jsamples(&a),
            jsamples(&b),
            jnum(ratio),
            jsamples(&p)
        ));
    }
    println!(
        "\n| CPU time of the phase (ms, lower is better) | rumpuser-adros median (min–max) | NetBSD librumpuser median (min–max) | NetBSD/adros (medians) | per run: median (min–max) |"
    );
    println!("|---|---|---|---|---|");
    for (k, what) in CPU_FIGURES {
        let (a, b, p) = (series(k, 0), series(k, 1), paired(k, true));
        if a.values.is_empty() && b.values.is_empty() {
            continue;
        }
        let ratio = ratio_of(&b, &a);
        println!(
            "| {what} | {} | {} | {} | {} ({}–{}) |",
            cell(&a),
            cell(&b),
            num2(ratio),
            num2(p.median()),
            num2(p.min()),
            num2(p.max()),
        );
        figs.push(format!(
            "    {{\"name\": \"{k}\", \"what\": \"CPU time of all threads: {what}\", \"unit\": \"ms\", \"better\": \"lower\", \"rumpuser_adros\": {}, \"netbsd_librumpuser\": {}, \"ratio_netbsd_over_adros\": {}, \"paired_ratios\": {}}}",
            jsamples(&a),
            jsamples(&b),
            jnum(ratio),
            jsamples(&p)
        ));
    }
    let json = format!(
        "{{\n  \"suite\": \"rump\",\n  \"command\": \"cargo xtask bench rump --runs {runs}\",\n  \"machine\": {{\"date\": \"{date}\", \"host_cores\": {cores}, \"runs\": {runs}, \"loadavg_1min\": {}, \"adros_commit\": \"{commit}\", \"netbsd_commit\": \"{}\"}},\n  \"figures\": [\n{}\n  ],\n  \"raw\": [\n    {}\n  ]\n}}\n",
        jsamples(&loads),
        src.netbsd_commit,
        figs.join(",\n"),
        raw.join(",\n    ")
    );
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join("rump.json");
    std::fs::write(&path, json).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("xtask bench rump: wrote {}", path.display());
    Ok(0)
}

/// The 1-minute load average (0 if unknown): recorded with every run, since other work on the
/// machine moves these figures a lot.
fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}
