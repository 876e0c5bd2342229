//! `cargo xtask compare audio` is in `compare_audio.rs`, `cargo xtask compare usb` in
//! `compare_usb.rs` (which shares this file's workload runner), `cargo xtask compare net` in
//! `compare_net.rs` (which runs `bench net`'s workloads on each stack).
//!
//! `cargo xtask compare ext2`: the same image and the same scripted workload on AdrOS's two
//! ext2 stacks — the native Rust driver and NetBSD's ext2fs in the rump kernel — in one run.
//!
//! The workload is `tests/user/ext2work.c` (in the initrd as
//! `/usr/libexec/adros-tests/ext2work`): a tree walk with checksums, 1,000 files created,
//! renamed, half unlinked and read back, a 64 MiB sequential write (to the disk: fsync +
//! unmount) and cold read (after a fresh mount), and a directory of 10,000 entries created,
//! listed with a stat of each, and removed. Each run boots AdrOS on a fresh copy of the same
//! image, alternating the stacks; afterwards `e2fsck -fn` must find the copy clean, and the
//! workload's digests must be identical on both stacks. Prints a table of medians and the
//! rump/native ratios and writes `target/bench/compare-ext2.json`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use clap::Args;

use crate::bench::report::Samples;
use crate::build::{self, BuildArgs};
use crate::qemu::{self, Machine};
use crate::util::{Result, spinner, target_dir};

#[derive(Args, Clone)]
pub struct CompareArgs {
    /// What to compare: `ext2` (the two ext2 stacks), `audio` (the two HD Audio stacks,
    /// see compare_audio.rs) or `usb` (the two USB stacks with their FAT drivers on one
    /// stick, see compare_usb.rs), `net` (the two network stacks beside Linux, see
    /// compare_net.rs) or `busybox` (busybox's testsuite on AdrOS and Linux, see
    /// compare_busybox.rs).
    pub what: String,
    /// Boots per stack (alternating native/rump).
    #[arg(long, default_value_t = 3)]
    pub runs: u32,
    /// Size of the sequential file in MiB.
    #[arg(long, default_value_t = 64)]
    pub big_mib: u32,
    /// Entries in the big directory (0: no big-directory phase). Default: 10,000 for ext2,
    /// 0 for usb (FAT directories are searched linearly on both stacks; 10,000 entries take
    /// many minutes on a stick).
    #[arg(long)]
    pub entries: Option<u32>,
    /// usb: the host controller the stick is on: `xhci` (qemu-xhci), `ehci` (usb-ehci) or
    /// `both`.
    #[arg(long, default_value = "both")]
    pub controller: String,
    /// Block size of the image (`mke2fs -b`). 4096 is what mke2fs picks for any file
    /// system of 512 MiB or more (a USB stick, a disk); 1024 is its choice for small ones,
    /// where every 256 KiB of a file needs an indirect block read on its own.
    #[arg(long, default_value_t = 4096)]
    pub block_size: u32,
    /// vCPUs of the guest.
    #[arg(long, default_value_t = 2)]
    pub smp: u32,
    /// busybox: boot the Linux peer again instead of using its cached results.
    #[arg(long)]
    pub rerun_linux: bool,
    /// Boot with `debug.profile=1`: the workload prints the kernel profile of each phase
    /// (`/proc/profile`) into the serial logs under target/bench/compare-ext2/.
    #[arg(long)]
    pub profile: bool,
    #[command(flatten)]
    pub build: BuildArgs,
}

/// (figure, unit, higher is better)
const FIGURES: &[(&str, &str, bool)] = &[
    ("mount", "ms", false),
    ("walk", "ms", false),
    ("files", "ms", false),
    ("seqwrite", "MiB/s", true),
    ("seqread", "MiB/s", true),
    ("dir_create", "ms", false),
    ("dir_list_stat", "ms", false),
    ("dir_unlink", "ms", false),
    ("umount", "ms", false),
];

pub(crate) struct RunResult {
    pub values: Vec<(String, f64)>,
    pub digests: Vec<String>,
}

pub(crate) fn median(v: &[f64]) -> Option<f64> {
    Samples {
        values: v.to_vec(),
        failures: Vec::new(),
    }
    .median()
}

/// A deterministic source tree: 30 directories of 20 files (0–64 KiB), nested a few levels,
/// and a symlink per directory — or, with `fat`, a file with a long name (spaces, mixed
/// case) per directory instead (FAT has no symlinks).
pub(crate) fn make_tree(root: &Path, fat: bool) -> Result<()> {
    let _ = std::fs::remove_dir_all(root);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for d in 0..30 {
        let dir = root.join(format!("tree/d{:02}/sub{}", d, d % 4));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for f in 0..20 {
            let len = (next() % 65536) as usize;
            let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            std::fs::write(dir.join(format!("file{f:02}.bin")), data).map_err(|e| e.to_string())?;
        }
        if fat {
            let len = (next() % 20_000) as usize;
            let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            std::fs::write(
                root.join(format!("tree/d{d:02}/A Long File Name {d}.Data")),
                data,
            )
            .map_err(|e| e.to_string())?;
        } else {
            std::os::unix::fs::symlink(
                format!("sub{}/file00.bin", d % 4),
                root.join(format!("tree/d{d:02}/link")),
            )
            .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// Boots `m` (whose `adros.exec` runs the workload) and collects its `RESULT` and `DIGEST`
/// lines; fails with the workload's `FAIL` line, or says it timed out or did not finish.
pub(crate) fn boot(m: &Machine, label: &str, timeout: Duration) -> Result<(RunResult, String)> {
    let pb = spinner(format!("{label}: booting"));
    let mut seen = String::new();
    let out = qemu::run_headless(
        m,
        timeout,
        |b| {
            seen.push_str(&String::from_utf8_lossy(b));
            if let Some(l) = seen.lines().rev().find(|l| l.starts_with("RESULT ")) {
                pb.set_message(format!("{label}: {}", l.trim_start_matches("RESULT ")));
            }
        },
        Some(&|s: &str| {
            s.contains("@@ADROS-EXEC-EXIT ")
                && s.rsplit("@@ADROS-EXEC-EXIT ")
                    .next()
                    .is_some_and(|t| t.contains("@@"))
        }),
    );
    pb.finish_and_clear();
    let out = out?;
    let s = out.serial.replace('\r', "");
    let mut r = RunResult {
        values: Vec::new(),
        digests: Vec::new(),
    };
    for l in s.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        match f.as_slice() {
            ["RESULT", name, v, _unit] => {
                if let Ok(v) = v.parse() {
                    r.values.push((name.to_string(), v));
                }
            }
            ["DIGEST", ..] => r.digests.push(l.trim().to_string()),
            _ => {}
        }
    }
    if !s.contains("\nDONE") {
        let why = s
            .lines()
            .find(|l| l.starts_with("FAIL "))
            .map(str::to_string)
            .unwrap_or_else(|| {
                if out.timed_out {
                    "timed out".into()
                } else {
                    "the workload did not finish".into()
                }
            });
        return Err(format!("{label}: {why}"));
    }
    Ok((r, s))
}

fn fsck(img: &Path) -> Result<()> {
    let out = Command::new("e2fsck")
        .arg("-fn")
        .arg(img)
        .output()
        .map_err(|e| format!("cannot run e2fsck: {e} (install e2fsprogs)"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "e2fsck -fn {} is not clean:\n{}",
            img.display(),
            String::from_utf8_lossy(&out.stdout)
        ))
    }
}

pub fn compare(a: CompareArgs) -> Result<i32> {
    if a.what == "audio" {
        return crate::compare_audio::compare(&a);
    }
    if a.what == "usb" {
        return crate::compare_usb::compare(&a);
    }
    if a.what == "net" {
        return crate::compare_net::compare(&a);
    }
    if a.what == "busybox" {
        return crate::compare_busybox::compare(&a);
    }
    if a.what != "ext2" {
        return Err(format!(
            "cargo xtask compare {}: `ext2`, `audio`, `usb`, `net` and `busybox` can be compared",
            a.what
        ));
    }
    let entries = a.entries.unwrap_or(10_000);
    if a.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    if ![1024, 2048, 4096].contains(&a.block_size) {
        return Err(format!(
            "--block-size {}: ext2 block sizes here are 1024, 2048 or 4096",
            a.block_size
        ));
    }
    crate::deps::ensure(true)?;
    let built = build::build(&a.build)?;
    let stacks: Vec<&str> = if built.rump_linked {
        vec!["native", "rump"]
    } else {
        vec!["native"]
    };
    if !built.rump_linked {
        eprintln!(
            "xtask compare: the kernel was built without NetBSD's rump components (no NetBSD source): only the native stack is measured"
        );
    }
    let dir = target_dir().join("bench/compare-ext2");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let src = dir.join("src");
    make_tree(&src, false)?;
    let pristine = dir.join("pristine.img");
    let size_mib = 128 + 2 * a.big_mib;
    let pb = spinner("making the image (mke2fs -t ext2 -d)");
    let out = Command::new("mke2fs")
        .args([
            "-q",
            "-F",
            "-t",
            "ext2",
            "-N",
            &(entries + 8192).to_string(),
            "-b",
            &a.block_size.to_string(),
            "-d",
        ])
        .arg(&src)
        .arg(&pristine)
        .arg(format!("{size_mib}M"))
        .output()
        .map_err(|e| format!("cannot run mke2fs: {e} (install e2fsprogs)"))?;
    pb.finish_and_clear();
    if !out.status.success() {
        return Err(format!("mke2fs: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let mut results: Vec<(&str, RunResult)> = Vec::new();
    let mut reference: Option<Vec<String>> = None;
    for run in 1..=a.runs {
        for &stack in &stacks {
            let img: PathBuf = dir.join(format!("{stack}.img"));
            std::fs::copy(&pristine, &img).map_err(|e| format!("copying the image: {e}"))?;
            let cmd = format!(
                "/usr/libexec/adros-tests/ext2work /dev/vda {stack} /mnt {} {}",
                a.big_mib, entries
            );
            let hex: String = cmd.bytes().map(|b| format!("{b:02x}")).collect();
            let modules = dir.join("compare.modules");
            build::make_modules(&built.symbols, &modules)?;
            let mut m = Machine::pvh(
                &built.kernel,
                &modules,
                &format!(
                    "{} loglevel=3{} adros.exec={hex}",
                    build::DEFAULT_CMDLINE,
                    if a.profile { " debug.profile=1" } else { "" }
                ),
            );
            m.smp = a.smp;
            m.disks.push(img.clone());
            let label = format!("run {run}/{}: {stack}", a.runs);
            let (r, serial) = boot(&m, &label, Duration::from_secs(1800))?;
            let _ = std::fs::write(dir.join(format!("{stack}-{run}.log")), &serial);
            fsck(&img).map_err(|e| format!("{label}: {e}"))?;
            match &reference {
                None => reference = Some(r.digests.clone()),
                Some(want) if *want != r.digests => {
                    return Err(format!(
                        "{label}: the workload's results differ between the stacks:\n  first: {want:?}\n  now:   {:?}",
                        r.digests
                    ));
                }
                _ => {}
            }
            eprintln!("xtask compare: {label}: done, e2fsck clean, results identical");
            results.push((stack, r));
        }
    }
    // The table.
    let mut t = String::new();
    let _ = writeln!(
        t,
        "\next2 ({}-byte blocks) on virtio-blk, {} runs per stack, -smp {}, {} MiB file, {} entries (median, min–max)\n",
        a.block_size, a.runs, a.smp, a.big_mib, entries
    );
    let _ = writeln!(
        t,
        "| figure | unit | native | rump (NetBSD ext2fs) | rump/native |"
    );
    let _ = writeln!(t, "|---|---|---|---|---|");
    let mut json_rows = Vec::new();
    for (name, unit, higher) in FIGURES {
        let vals = |s: &str| -> Vec<f64> {
            results
                .iter()
                .filter(|(st, _)| *st == s)
                .filter_map(|(_, r)| r.values.iter().find(|(n, _)| n == name).map(|(_, v)| *v))
                .collect()
        };
        let cell = |v: &[f64]| {
            let s = Samples {
                values: v.to_vec(),
                failures: Vec::new(),
            };
            match (s.median(), s.min(), s.max()) {
                (Some(m), Some(lo), Some(hi)) => format!("{m:.1} ({lo:.1}–{hi:.1})"),
                _ => "—".into(),
            }
        };
        let (nv, rv) = (vals("native"), vals("rump"));
        let ratio = median(&rv).zip(median(&nv)).map(|(r, n)| r / n);
        let _ = writeln!(
            t,
            "| {name} | {unit}{} | {} | {} | {} |",
            if *higher { " ↑" } else { " ↓" },
            cell(&nv),
            cell(&rv),
            ratio
                .map(|x| format!("{x:.2}"))
                .unwrap_or_else(|| "—".into())
        );
        json_rows.push(format!(
            "    {{\"figure\": \"{name}\", \"unit\": \"{unit}\", \"higher_is_better\": {higher}, \"native\": {nv:?}, \"rump\": {rv:?}, \"ratio_rump_over_native\": {}}}",
            ratio.map(|x| format!("{x:.4}")).unwrap_or_else(|| "null".into())
        ));
    }
    let _ = writeln!(
        t,
        "\nreference (issue 6): a 64 MiB cold read runs at ~56 MiB/s in a Linux 6.1 guest and 110–140 MiB/s in rumprun on this QEMU"
    );
    println!("{t}");
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let json = format!(
        "{{\n  \"suite\": \"compare-ext2\",\n  \"date\": \"{date}\",\n  \"runs\": {},\n  \"smp\": {},\n  \"big_mib\": {},\n  \"block_size\": {},\n  \"entries\": {},\n  \"digests\": {:?},\n  \"figures\": [\n{}\n  ]\n}}\n",
        a.runs,
        a.smp,
        a.big_mib,
        a.block_size,
        entries,
        reference.unwrap_or_default(),
        json_rows.join(",\n")
    );
    let path = target_dir().join("bench/compare-ext2.json");
    std::fs::write(&path, json).map_err(|e| format!("writing {}: {e}", path.display()))?;
    eprintln!(
        "xtask compare: wrote {} (serial logs in {})",
        path.display(),
        dir.display()
    );
    Ok(0)
}
