//! `cargo xtask compare usb`: AdrOS's two USB stacks on the same stick and workload — the
//! native Rust stack (`usb.driver=native`: adros-xhci / adros-ehci, the USB core, Bulk-Only
//! mass storage) with the native FAT driver (`mount -t vfat -o driver=native`), and NetBSD's
//! stack in the rump kernel (`usb.driver=rump`: xhci / ehci, usb, umass, sd) with NetBSD's
//! msdosfs (`-o driver=rump`) — on qemu-xhci and EHCI (ich9-usb-ehci1, see `Machine`).
//!
//! The stick is what users carry: an MBR with one FAT32 partition (type 0x0c, at sector
//! 2048) made by `mkfs.vfat` on the host, holding a small source tree (`mcopy`). The
//! workload is `tests/user/ext2work.c` run with `-t vfat`: a tree walk with checksums,
//! 1,000 small files created, renamed, half unlinked and read back, a 64 MiB sequential
//! write + fsync + unmount and a cold read after a fresh mount (`-d sda`: the stick must
//! move at least the file's bytes during that read, so neither stack's cache served it);
//! the big-directory phase is off unless `--entries N`. Each run boots AdrOS on a fresh copy
//! of the image, alternating the stacks; afterwards `fsck.vfat -n` must find the partition
//! clean (no dirty bit either) and every run's digests must equal the first run's, whatever
//! the stack and controller. Prints a table of medians per controller with the rump/native
//! ratios and writes `target/bench/compare-usb.json`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::bench::report::Samples;
use crate::build;
use crate::compare::{CompareArgs, RunResult, boot, make_tree, median};
use crate::qemu::Machine;
use crate::util::{Result, spinner, target_dir};
use adros_tests::sticks::sbin;

/// (figure, unit, higher is better); the `dir_*` figures only with `--entries`.
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

/// Partition 1 starts here (sectors), as mkfs tools and partitioners put it.
const PART_START: u64 = 2048;

fn run_tool(c: &mut Command, what: &str) -> Result<()> {
    let out = c
        .env("MTOOLS_SKIP_CHECK", "1")
        .output()
        .map_err(|e| format!("cannot run {what}: {e} (install dosfstools and mtools)"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Writes an MBR with one primary partition (`start`, `count` sectors, type `ty`): the
/// layout of `adros_tests::sticks::write_mbr`, returning an error instead of panicking.
fn write_mbr(img: &Path, start: u32, count: u32, ty: u8) -> Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    let mut mbr = [0u8; 512];
    let e = &mut mbr[446..462];
    e[1..4].copy_from_slice(&[0xfe, 0xff, 0xff]);
    e[4] = ty;
    e[5..8].copy_from_slice(&[0xfe, 0xff, 0xff]);
    e[8..12].copy_from_slice(&start.to_le_bytes());
    e[12..16].copy_from_slice(&count.to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(img)
        .map_err(|e| format!("{}: {e}", img.display()))?;
    f.seek(SeekFrom::Start(0))
        .and_then(|_| f.write_all(&mbr))
        .map_err(|e| format!("{}: {e}", img.display()))
}

/// The stick: `mib` MiB, MBR, partition 1 FAT32 with 4 KiB clusters holding `src/tree`.
fn make_stick(img: &Path, src: &Path, mib: u64) -> Result<()> {
    let _ = std::fs::remove_file(img);
    let f = std::fs::File::create(img).map_err(|e| format!("{}: {e}", img.display()))?;
    f.set_len(mib << 20)
        .map_err(|e| format!("{}: {e}", img.display()))?;
    drop(f);
    let count = (mib << 20) / 512 - PART_START;
    write_mbr(img, PART_START as u32, count as u32, 0x0c)?;
    run_tool(
        Command::new(sbin("mkfs.vfat"))
            .args(["-F", "32", "-s", "8", "-n", "ADROSCMP", "--offset"])
            .arg(PART_START.to_string())
            .arg(img)
            .arg((count / 2).to_string()),
        "mkfs.vfat",
    )?;
    run_tool(
        Command::new("mcopy")
            .args(["-s", "-Q", "-i"])
            .arg(format!("{}@@{}", img.display(), PART_START * 512))
            .arg(src.join("tree"))
            .arg("::/"),
        "mcopy",
    )
}

/// `fsck.vfat -n` on the stick's partition (copied out: fsck.vfat has no offset option).
fn fsck(img: &Path) -> Result<()> {
    let data = std::fs::read(img).map_err(|e| format!("{}: {e}", img.display()))?;
    let vol = img.with_extension("vol");
    std::fs::write(&vol, &data[(PART_START * 512) as usize..])
        .map_err(|e| format!("{}: {e}", vol.display()))?;
    drop(data);
    let out = Command::new(sbin("fsck.vfat"))
        .arg("-n")
        .arg(&vol)
        .output()
        .map_err(|e| format!("cannot run fsck.vfat: {e} (install dosfstools)"))?;
    let _ = std::fs::remove_file(&vol);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && !text.to_lowercase().contains("dirty bit") {
        Ok(())
    } else {
        Err(format!(
            "fsck.vfat -n on the partition of {} is not clean:\n{text}",
            img.display()
        ))
    }
}

/// The `COLD seqread …` line of a run's serial output.
fn cold_line(serial: &str) -> Option<String> {
    serial
        .lines()
        .find(|l| l.starts_with("COLD "))
        .map(|l| l.trim().to_string())
}

pub fn compare(a: &CompareArgs) -> Result<i32> {
    if a.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    let controllers: Vec<&str> = match a.controller.as_str() {
        "both" => vec!["xhci", "ehci"],
        "xhci" => vec!["xhci"],
        "ehci" => vec!["ehci"],
        c => {
            return Err(format!(
                "--controller {c}: the controllers are xhci, ehci or both"
            ));
        }
    };
    if a.big_mib == 0 {
        return Err("--big-mib must be at least 1".into());
    }
    let entries = a.entries.unwrap_or(0);
    crate::deps::ensure(true)?;
    let built = build::build(&a.build)?;
    let stacks: Vec<&str> = if built.rump_linked {
        vec!["native", "rump"]
    } else {
        let why = if std::env::var("ADROS_RUMP").is_ok_and(|v| v == "off" || v == "0") {
            "ADROS_RUMP=off is set: unset it".to_string()
        } else {
            crate::rump::no_source_message()
        };
        eprintln!(
            "xtask compare usb: NetBSD's USB stack (usb.driver=rump) is not available: the kernel was \
             built without the rump components. {why}; then run this again to compare the stacks. \
             Measuring the native stack only."
        );
        vec!["native"]
    };
    let dir = target_dir().join("bench/compare-usb");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let src = dir.join("src");
    make_tree(&src, true)?;
    let pristine = dir.join("pristine.img");
    // FAT32 needs 65,525 clusters: 4 KiB clusters want a 300 MiB volume at least.
    let size_mib = 512.max(256 + 3 * u64::from(a.big_mib));
    let pb = spinner(format!(
        "making the stick ({size_mib} MiB, MBR + FAT32: mkfs.vfat, mcopy)"
    ));
    let made = make_stick(&pristine, &src, size_mib);
    pb.finish_and_clear();
    made?;
    fsck(&pristine).map_err(|e| format!("the pristine stick: {e}"))?;
    let modules = dir.join("compare.modules");
    build::make_modules(&built.symbols, &modules)?;

    let total = a.runs as usize * stacks.len() * controllers.len();
    let mut done = 0;
    // (controller, stack, result)
    let mut results: Vec<(&str, &str, RunResult)> = Vec::new();
    let mut reference: Option<(String, Vec<String>)> = None;
    let mut cold: Vec<String> = Vec::new();
    for &ctrl in &controllers {
        for run in 1..=a.runs {
            for &stack in &stacks {
                done += 1;
                let img: PathBuf = dir.join(format!("{ctrl}-{stack}.img"));
                std::fs::copy(&pristine, &img).map_err(|e| format!("copying the image: {e}"))?;
                let cmd = format!(
                    "/usr/libexec/adros-tests/ext2work -t vfat -w 60 -d sda /dev/sda1 {stack} /mnt {} {entries}",
                    a.big_mib
                );
                let hex: String = cmd.bytes().map(|b| format!("{b:02x}")).collect();
                let mut m = Machine::pvh(
                    &built.kernel,
                    &modules,
                    &format!(
                        "{} loglevel=3 usb.driver={stack}{} adros.exec={hex}",
                        build::DEFAULT_CMDLINE,
                        if a.profile { " debug.profile=1" } else { "" }
                    ),
                );
                m.smp = a.smp;
                m.usb_disks.push(img.clone());
                m.usb_controller = ctrl.into();
                let label = format!("[{done}/{total}] {ctrl} run {run}/{}: {stack}", a.runs);
                let (r, serial) = boot(&m, &label, Duration::from_secs(1800))?;
                let _ = std::fs::write(dir.join(format!("{ctrl}-{stack}-{run}.log")), &serial);
                fsck(&img).map_err(|e| format!("{label}: {e}"))?;
                let c = cold_line(&serial).ok_or_else(|| {
                    format!("{label}: the workload printed no COLD line (is ext2work current?)")
                })?;
                cold.push(format!("{ctrl} {stack} run {run}: {c}"));
                match &reference {
                    None => reference = Some((label.clone(), r.digests.clone())),
                    Some((first, want)) if *want != r.digests => {
                        return Err(format!(
                            "{label}: the workload's results differ from {first}:\n  {first}: {want:?}\n  {label}: {:?}",
                            r.digests
                        ));
                    }
                    _ => {}
                }
                eprintln!(
                    "xtask compare usb: {label}: done, fsck.vfat clean, results identical, cold read: {}",
                    c.trim_start_matches("COLD seqread ")
                );
                let _ = std::fs::remove_file(&img);
                results.push((ctrl, stack, r));
            }
        }
    }

    let mut t = String::new();
    let mut json_rows = Vec::new();
    for &ctrl in &controllers {
        let dev = if ctrl == "ehci" {
            "ich9-usb-ehci1 (with its UHCI companions)"
        } else {
            "qemu-xhci"
        };
        let _ = writeln!(
            t,
            "\n{dev}: FAT32 on a {size_mib} MiB stick (MBR, 4 KiB clusters), {} run(s) per stack, -smp {}, {} MiB file{} (median, min–max)\n",
            a.runs,
            a.smp,
            a.big_mib,
            if entries > 0 {
                format!(", {entries} entries")
            } else {
                String::new()
            }
        );
        let _ = writeln!(
            t,
            "| figure | unit | native (adros USB + adros-fat) | rump (NetBSD USB + msdosfs) | rump/native |"
        );
        let _ = writeln!(t, "|---|---|---|---|---|");
        for (name, unit, higher) in FIGURES {
            if name.starts_with("dir_") && entries == 0 {
                continue;
            }
            let vals = |s: &str| -> Vec<f64> {
                results
                    .iter()
                    .filter(|(c, st, _)| *c == ctrl && *st == s)
                    .filter_map(|(_, _, r)| {
                        r.values.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
                    })
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
                "    {{\"controller\": \"{ctrl}\", \"figure\": \"{name}\", \"unit\": \"{unit}\", \"higher_is_better\": {higher}, \"native\": {nv:?}, \"rump\": {rv:?}, \"ratio_rump_over_native\": {}}}",
                ratio.map(|x| format!("{x:.4}")).unwrap_or_else(|| "null".into())
            ));
        }
    }
    if stacks.len() == 1 {
        let _ = writeln!(
            t,
            "\nrump: not measured (the kernel has no NetBSD rump components)"
        );
    }
    let _ = writeln!(
        t,
        "\nreference (issue 16): Linux 6.1 reads 64 MiB cold from /dev/sda at about 43 MiB/s on qemu-xhci and 20 MiB/s on EHCI on this QEMU"
    );
    println!("{t}");
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let json = format!(
        "{{\n  \"suite\": \"compare-usb\",\n  \"date\": \"{date}\",\n  \"runs\": {},\n  \"smp\": {},\n  \"big_mib\": {},\n  \"stick_mib\": {size_mib},\n  \"entries\": {entries},\n  \"controllers\": {controllers:?},\n  \"stacks\": {stacks:?},\n  \"digests\": {:?},\n  \"cold_reads\": {cold:?},\n  \"figures\": [\n{}\n  ]\n}}\n",
        a.runs,
        a.smp,
        a.big_mib,
        reference.map(|(_, d)| d).unwrap_or_default(),
        json_rows.join(",\n")
    );
    let path = target_dir().join("bench/compare-usb.json");
    std::fs::write(&path, json).map_err(|e| format!("writing {}: {e}", path.display()))?;
    eprintln!(
        "xtask compare usb: wrote {} (serial logs in {})",
        path.display(),
        dir.display()
    );
    Ok(0)
}
