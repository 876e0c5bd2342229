//! `cargo xtask bench [SUITE…]`: the same benchmark program (bench/adros-bench.c, static
//! musl) run in AdrOS and in a Linux peer (Debian's kernel, same busybox) on the same QEMU
//! machine, alternating A/B/A/B over N fresh boots each; prints median (min–max) of each
//! figure for both guests and the AdrOS/Linux ratio, writes target/bench/<suite>.json and
//! target/bench/summary.svg. See docs/bench.md.

mod netpeer;
pub mod peer;
pub(crate) mod report;
pub mod rump;
mod suites;
mod usb;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use clap::Args;

use crate::build::{self, BuildArgs};
use crate::qemu::{self, Machine};
use crate::util::{Result, parse_mem, root, run_checked, spinner, target_dir, which};
use suites::{Step, suite};

/// Entries in the `fs` suite's ext2 directory.
const EXT2_ENTRIES: u32 = 10_000;

pub const SUITES: &[&str] = &["syscall", "boot", "fs", "smp", "net", "rump", "usb"];

#[derive(Args, Clone)]
pub struct BenchArgs {
    /// Suites to run: syscall, boot, fs, smp, net, usb (default: syscall boot), and rump (on the host, no
    /// QEMU: rumpuser-adros against NetBSD's librumpuser hosting the same rump components).
    /// `net` attaches an e1000 on QEMU's user network to both guests and measures TCP
    /// against servers xtask runs on 127.0.0.1 (`--net-stack` picks AdrOS's stack).
    pub suites: Vec<String>,
    /// Fresh boots of each guest (alternating AdrOS, Linux, AdrOS, …); for `rump`, runs of each host.
    #[arg(long, default_value_t = 3)]
    pub runs: u32,
    /// Virtual CPUs of both guests (the smp suite runs N processes on N vCPUs vs 1 vCPU).
    #[arg(long, default_value_t = 2)]
    pub smp: u32,
    /// Guest memory of both guests.
    #[arg(long, default_value = "1G")]
    pub mem: String,
    /// The AdrOS network stack the `net` suite measures (`net.stack=` on its command line).
    #[arg(long, default_value = "native", value_parser = ["native", "rump"])]
    pub net_stack: String,
    /// The AdrOS ext2 stack the `fs` suite's ext2 workload mounts with (`-o driver=`): the
    /// native Rust driver or NetBSD's ext2fs in the rump kernel.
    #[arg(long, default_value = "native", value_parser = ["native", "rump"])]
    pub ext2_driver: String,
    /// Boot AdrOS through SeaBIOS and GRUB from an ISO (Multiboot2) instead of QEMU's direct
    /// PVH boot (`-kernel`): what `boot.qemu_to_command` was before the PVH entry.
    #[arg(long)]
    pub iso: bool,
    /// Only AdrOS (no Linux peer; no ratios).
    #[arg(long)]
    pub no_peer: bool,
    #[command(flatten)]
    pub build: BuildArgs,
}

/// Lower or higher is better.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Better {
    Lower,
    Higher,
}

/// One figure a suite reports.
#[derive(Clone, Debug)]
pub struct Figure {
    pub suite: &'static str,
    pub name: String,
    pub unit: &'static str,
    pub better: Better,
    pub what: String,
}

/// The guest script (/bench/run.sh), identical in both guests.
fn script(steps: &[Step]) -> String {
    let mut s = String::from(
        "# cargo xtask bench: run identically in AdrOS and the Linux peer\n\
         read up rest < /proc/uptime && echo \"@B boot.uptime_at_command $up s\"\n",
    );
    for st in steps {
        let key = st.args.split_whitespace().next().unwrap_or("");
        s.push_str(&format!(
            "/bench/adros-bench {} || echo \"@X {key} $?\"\n",
            st.args
        ));
    }
    s
}

/// The command both guests run with `sh -c`.
const COMMAND: &str = "sh /bench/run.sh";
const BEGIN: &str = "@@ADROS-EXEC-BEGIN@@";
const EXIT: &str = "@@ADROS-EXEC-EXIT ";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Guest {
    AdrOS,
    Linux,
}

impl Guest {
    pub fn name(self) -> &'static str {
        match self {
            Guest::AdrOS => "AdrOS",
            Guest::Linux => "Linux",
        }
    }
}

/// What one boot produced: figure → value, or figure → why it is missing.
#[derive(Default, Debug)]
pub struct BootResult {
    pub values: Vec<(String, f64)>,
    pub failures: Vec<(String, String)>,
}

pub fn bench(a: BenchArgs) -> Result<i32> {
    let mut names: Vec<String> = if a.suites.is_empty() {
        vec!["syscall".into(), "boot".into()]
    } else {
        a.suites.clone()
    };
    names.dedup();
    for n in &names {
        if !SUITES.contains(&n.as_str()) {
            return Err(format!(
                "unknown suite {n:?}: choose from {}",
                SUITES.join(", ")
            ));
        }
    }
    if a.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    // The rump suite runs on the host (no guests): see rump.rs.
    if names.iter().any(|n| n == "rump") {
        names.retain(|n| n != "rump");
        rump::run(a.runs)?;
        if names.is_empty() {
            return Ok(0);
        }
    }
    // The usb suite boots one machine per controller and AdrOS stack: see usb.rs.
    if names.iter().any(|n| n == "usb") {
        names.retain(|n| n != "usb");
        usb::run(&a)?;
        if names.is_empty() {
            return Ok(0);
        }
    }
    if names.iter().any(|n| n == "smp") && a.smp < 2 {
        return Err("the smp suite compares N vCPUs with 1: use --smp 2 or more".into());
    }
    let Measured { rows, facts, peer } = measure(&a, &names)?;
    let out_dir = target_dir().join("bench");
    let log_dir = out_dir.join("logs");
    println!("{}", report::table(&rows, &facts, peer));
    for n in &names {
        // The rump stack's net figures go beside the native ones, not over them.
        let file = if n == "net" && a.net_stack != "native" {
            format!("net-{}", a.net_stack)
        } else if n == "fs" && a.ext2_driver != "native" {
            format!("fs-{}", a.ext2_driver)
        } else {
            n.clone()
        };
        let path = out_dir.join(format!("{file}.json"));
        let suite_rows: Vec<&report::Row> = rows
            .iter()
            .filter(|r| r.figure.suite == n.as_str())
            .collect();
        std::fs::write(&path, report::json(n, &suite_rows, &facts))
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    let svg = out_dir.join("summary.svg");
    std::fs::write(&svg, report::svg(&rows, &facts))
        .map_err(|e| format!("writing {}: {e}", svg.display()))?;
    eprintln!(
        "xtask bench: wrote {} and {} (serial logs in {})",
        names
            .iter()
            .map(|n| out_dir.join(format!("{n}.json")).display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        svg.display(),
        log_dir.display()
    );
    let failed = rows
        .iter()
        .filter(|r| r.adros.values.is_empty() || (peer && r.linux.values.is_empty()))
        .count();
    if failed > 0 {
        eprintln!(
            "xtask bench: {failed} figure(s) could not be measured in every guest; the reasons are in the table above"
        );
    }
    Ok(0)
}

/// What [`measure`] found: a row per figure, the facts of the run, and whether the Linux
/// peer ran.
pub struct Measured {
    pub rows: Vec<report::Row>,
    pub facts: report::Facts,
    pub peer: bool,
}

/// Boots AdrOS (and the Linux peer unless `--no-peer`) `a.runs` times each, alternating, with
/// the guest steps of the suites `names` (guest suites only: not `rump` or `usb`), and
/// aggregates the figures. `bench` prints and writes what this returns; `compare net` runs
/// it once per AdrOS network stack.
pub fn measure(a: &BenchArgs, names: &[String]) -> Result<Measured> {
    let mem_mib = parse_mem(&a.mem)?;
    crate::deps::ensure(true)?;

    let want_net = names.iter().any(|n| n == "net");
    // The fs suite's ext2 workload: one image, a fresh copy of it on virtio-blk for each boot.
    let ext2 = if names.iter().any(|n| n == "fs") {
        Some(ext2_image()?)
    } else {
        None
    };
    let servers = if want_net {
        Some(netpeer::start()?)
    } else {
        None
    };
    let mut figures: Vec<Figure> = Vec::new();
    let mut steps: Vec<Step> = Vec::new();
    for n in names {
        let (f, s) = suite(n, a.smp, servers.as_ref(), &a.ext2_driver);
        figures.extend(f);
        steps.extend(s);
    }
    let out_dir = target_dir().join("bench");
    let log_dir = out_dir.join("logs");
    std::fs::create_dir_all(&log_dir)
        .map_err(|e| format!("creating {}: {e}", log_dir.display()))?;

    // The benchmark program and the script, the same bytes in both guests.
    let prog = out_dir.join("adros-bench");
    compile(&root().join("bench/adros-bench.c"), &prog)?;
    let script_path = out_dir.join("run.sh");
    std::fs::write(&script_path, script(&steps))
        .map_err(|e| format!("writing {}: {e}", script_path.display()))?;

    // AdrOS: the kernel and an ISO whose initrd carries the program and script.
    let kernel = build::build_kernel(&a.build)?;
    let symbols = build::write_symbols(&kernel)?;
    let extras = vec![
        crate::initrd::parse_extra(&format!("{}:/bench/adros-bench", prog.display()))?,
        crate::initrd::parse_extra(&format!("{}:/bench/run.sh", script_path.display()))?,
    ];
    crate::initrd::build(&extras, &[])?;
    let hex: String = COMMAND.bytes().map(|b| format!("{b:02x}")).collect();
    let adros_cmdline = format!(
        "{} loglevel=3 net.stack={} {}adros.exec={hex}",
        build::DEFAULT_CMDLINE,
        a.net_stack,
        std::env::var("ADROS_BENCH_APPEND")
            .map(|s| format!("{s} "))
            .unwrap_or_default()
    );
    let iso = out_dir.join("adros-bench.iso");
    let mut adros = if a.iso {
        build::make_iso(&kernel, &symbols, &adros_cmdline, &iso)?;
        Machine::new(&iso)
    } else {
        let modules = out_dir.join("adros-bench.modules");
        build::make_modules(&symbols, &modules)?;
        Machine::pvh(&kernel, &modules, &adros_cmdline)
    };
    adros.smp = a.smp;
    adros.mem_mib = mem_mib;
    if let Some((_, work)) = &ext2 {
        adros.disks.push(work.clone());
    }
    if want_net {
        adros.net = Some(String::new());
    }

    // Linux: the cached Debian kernel and an initramfs with the same files.
    let (linux, linux_version) = if a.no_peer {
        (None, None)
    } else {
        let p = peer::kernel()?;
        let cpio = out_dir.join("linux-peer.cpio");
        let mut files = vec![
            ("/bench/adros-bench".to_string(), read(&prog)?, 0o755),
            ("/bench/run.sh".to_string(), read(&script_path)?, 0o644),
        ];
        let mut prelude = "";
        if want_net {
            for m in peer::NET_MODULES {
                files.push((
                    format!("/lib/{m}"),
                    read(&peer::modules_dir().join(m))?,
                    0o644,
                ));
            }
            prelude = peer::NET_PRELUDE;
        }
        let mut ext2_prelude = String::new();
        if ext2.is_some() {
            for m in peer::EXT2_MODULES {
                files.push((
                    format!("/lib/{m}"),
                    read(&peer::modules_dir().join(m))?,
                    0o644,
                ));
                ext2_prelude.push_str(&format!("insmod /lib/{m}\n"));
            }
        }
        let prelude = format!("{prelude}{ext2_prelude}");
        peer::initramfs(&cpio, &peer::init_script(COMMAND, &prelude), &files)?;
        let mut m = Machine::new(Path::new(""));
        m.smp = a.smp;
        m.mem_mib = mem_mib;
        if want_net {
            m.net = Some(String::new());
        }
        if let Some((_, work)) = &ext2 {
            m.disks.push(work.clone());
        }
        m.direct = Some(qemu::DirectBoot {
            kernel: p.vmlinuz.clone(),
            initrd: cpio,
            append: format!(
                "console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init {}",
                std::env::var("ADROS_BENCH_LINUX_APPEND").unwrap_or_default()
            )
            .trim_end()
            .to_string(),
        });
        (Some(m), Some(p.version))
    };

    let guests: Vec<(Guest, &Machine)> = std::iter::once((Guest::AdrOS, &adros))
        .chain(linux.as_ref().map(|m| (Guest::Linux, m)))
        .collect();
    let per_boot_timeout = Duration::from_secs(180 + 130 * steps.len() as u64);
    let mut results: Vec<(Guest, u32, BootResult)> = Vec::new();
    for run in 1..=a.runs {
        for (g, m) in &guests {
            if let Some((pristine, work)) = &ext2 {
                std::fs::copy(pristine, work)
                    .map_err(|e| format!("copying {}: {e}", pristine.display()))?;
            }
            let mut r = boot_once(
                *g,
                m,
                run,
                a.runs,
                &figures,
                &steps,
                per_boot_timeout,
                &log_dir,
            )?;
            if let Some((_, work)) = &ext2
                && let Err(why) = fsck(work)
            {
                eprintln!("xtask bench: run {run}: {}: {why}", g.name());
                r.values.retain(|(n, _)| !n.starts_with("fs.ext2_"));
                for f in figures.iter().filter(|f| f.name.starts_with("fs.ext2_")) {
                    r.failures.push((f.name.clone(), why.clone()));
                }
            }
            results.push((*g, run, r));
        }
    }

    let rows = report::aggregate(&figures, &results);
    let cmdline = format!(
        "cargo xtask bench {}{}{}{}{}{}",
        names.join(" "),
        if a.iso { " --iso" } else { "" },
        if want_net && a.net_stack != "native" {
            format!(" --net-stack {}", a.net_stack)
        } else {
            String::new()
        },
        if ext2.is_some() && a.ext2_driver != "native" {
            format!(" --ext2-driver {}", a.ext2_driver)
        } else {
            String::new()
        },
        if a.runs != 3 {
            format!(" --runs {}", a.runs)
        } else {
            String::new()
        },
        if a.smp != 2 {
            format!(" --smp {}", a.smp)
        } else {
            String::new()
        }
    );
    let facts = report::Facts::collect(a.smp, mem_mib, a.runs, linux_version.as_deref(), &cmdline);
    Ok(Measured {
        rows,
        facts,
        peer: linux.is_some(),
    })
}

/// The ext2 image of the fs suite (`mke2fs -t ext2`: 4 KiB blocks, `dir_index` and the other
/// defaults, inodes enough for the directory) and the path of the copy the guests get.
fn ext2_image() -> Result<(std::path::PathBuf, std::path::PathBuf)> {
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let pristine = dir.join("ext2-pristine.img");
    let _ = std::fs::remove_file(&pristine);
    let out = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext2", "-b", "4096", "-N"])
        .arg((EXT2_ENTRIES + 4096).to_string())
        .arg(&pristine)
        .arg("256M")
        .output()
        .map_err(|e| format!("cannot run mke2fs: {e} (install e2fsprogs)"))?;
    if !out.status.success() {
        return Err(format!("mke2fs: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok((pristine, dir.join("ext2-work.img")))
}

/// `e2fsck -fn`: the image a guest left must be clean.
fn fsck(img: &Path) -> std::result::Result<(), String> {
    let out = Command::new("e2fsck")
        .arg("-fn")
        .arg(img)
        .output()
        .map_err(|e| format!("cannot run e2fsck: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        let text = String::from_utf8_lossy(&out.stdout);
        Err(format!(
            "e2fsck -fn found the ext2 image not clean: {}",
            text.lines().take(8).collect::<Vec<_>>().join(" / ")
        ))
    }
}

fn read(p: &Path) -> Result<Vec<u8>> {
    std::fs::read(p).map_err(|e| format!("reading {}: {e}", p.display()))
}

/// musl-gcc -static -O2.
fn compile(src: &Path, out: &Path) -> Result<()> {
    if which("musl-gcc").is_none() {
        return Err("musl-gcc is missing: install musl-tools (`cargo xtask deps`)".into());
    }
    let pb = spinner(format!(
        "compiling {} (musl-gcc -static -O2)",
        src.file_name().unwrap_or_default().to_string_lossy()
    ));
    let r = run_checked(
        Command::new("musl-gcc")
            .args(["-static", "-O2", "-Wall", "-o"])
            .arg(out)
            .arg(src),
        "musl-gcc",
        "Fix the benchmark source (bench/adros-bench.c).",
    );
    pb.finish_and_clear();
    r
}

/// Boots `m` once, runs the script, and collects every figure (or why it is missing).
#[allow(clippy::too_many_arguments)]
fn boot_once(
    g: Guest,
    m: &Machine,
    run: u32,
    runs: u32,
    figures: &[Figure],
    steps: &[Step],
    timeout: Duration,
    log_dir: &Path,
) -> Result<BootResult> {
    let label = format!("run {run}/{runs}: {}", g.name());
    let pb = spinner(format!("{label}: booting"));
    let mut seen = String::new();
    let mut first_output: Option<Duration> = None;
    let start = Instant::now();
    let stop = |s: &str| {
        s.find(EXIT)
            .is_some_and(|i| s[i + EXIT.len()..].contains("@@"))
    };
    let out = qemu::run_headless(
        m,
        timeout,
        |b| {
            seen.push_str(&String::from_utf8_lossy(b).replace('\r', ""));
            if let Some(i) = seen.find(BEGIN) {
                let after = &seen[i + BEGIN.len()..];
                if first_output.is_none() && !after.trim_start_matches('\n').is_empty() {
                    first_output = Some(start.elapsed());
                }
                if let Some(last) = after
                    .lines()
                    .rev()
                    .find(|l| l.starts_with("@B ") || l.starts_with("@F "))
                {
                    pb.set_message(format!(
                        "{label}: {}",
                        last.trim_start_matches("@B ").trim_start_matches("@F ")
                    ));
                } else {
                    pb.set_message(format!("{label}: running the benchmarks"));
                }
            }
        },
        Some(&stop),
    );
    pb.finish_and_clear();
    let out = out?;
    let log = log_dir.join(format!("{}-{run}.log", g.name().to_lowercase()));
    let _ = std::fs::write(&log, &out.serial);
    let mut r = parse(&out.serial, steps);
    if let Some(t) = first_output {
        r.values
            .push(("boot.qemu_to_command".into(), t.as_secs_f64()));
    }
    // Whatever did not come back gets a reason.
    let ended = if !out.serial.contains(BEGIN) {
        format!(
            "the guest command never started ({}; see {})",
            why_ended(&out),
            log.display()
        )
    } else if !stop(&out.serial) {
        format!(
            "the guest ended before the script finished ({}; see {})",
            why_ended(&out),
            log.display()
        )
    } else {
        format!("no result printed (see {})", log.display())
    };
    for f in figures {
        if !r.values.iter().any(|(n, _)| *n == f.name)
            && !r.failures.iter().any(|(n, _)| *n == f.name)
        {
            r.failures.push((f.name.clone(), ended.clone()));
        }
    }
    let ok = figures
        .iter()
        .filter(|f| r.values.iter().any(|(n, _)| *n == f.name))
        .count();
    eprintln!(
        "xtask bench: {label}: {ok}/{} figures in {:.1} s",
        figures.len(),
        out.elapsed.as_secs_f64()
    );
    Ok(r)
}

fn why_ended(out: &qemu::Outcome) -> String {
    if out.timed_out {
        "timed out".into()
    } else {
        qemu::describe(out.status).to_string()
    }
}

/// Parses `@B name value unit`, `@F name reason` and `@X step status` lines.
fn parse(serial: &str, steps: &[Step]) -> BootResult {
    let mut r = BootResult::default();
    let body = serial.find(BEGIN).map(|i| &serial[i..]).unwrap_or("");
    for line in body.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("@B ") {
            let mut it = rest.split_whitespace();
            if let (Some(n), Some(v)) = (it.next(), it.next())
                && let Ok(v) = v.parse::<f64>()
            {
                r.values.push((n.to_string(), v));
            }
        } else if let Some(rest) = line.strip_prefix("@F ") {
            if let Some((n, why)) = rest.split_once(' ') {
                r.failures.push((n.to_string(), why.to_string()));
            }
        } else if let Some(rest) = line.strip_prefix("@X ") {
            let mut it = rest.split_whitespace();
            let (key, st) = (
                it.next().unwrap_or(""),
                it.next().and_then(|s| s.parse::<i32>().ok()).unwrap_or(-1),
            );
            let why = match st {
                142 => "timed out (SIGALRM after 120 s)".to_string(),
                127 => "could not be executed (status 127)".to_string(),
                s if s > 128 => format!("killed by signal {}", s - 128),
                s => format!("exited with status {s}"),
            };
            for step in steps
                .iter()
                .filter(|s| s.args.split_whitespace().next() == Some(key))
            {
                for f in &step.figures {
                    if !r.values.iter().any(|(n, _)| n == f)
                        && !r.failures.iter().any(|(n, _)| n == f)
                    {
                        r.failures
                            .push((f.clone(), format!("adros-bench {} {why}", step.args)));
                    }
                }
            }
        }
    }
    r
}
