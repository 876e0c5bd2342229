//! `cargo xtask bench usb`: a 64 MiB cold read of a USB stick (`/dev/sda`, 1 MiB reads,
//! right after boot) on qemu-xhci and usb-ehci, in AdrOS with the native USB stack
//! (`usb.driver=native`), with NetBSD's stack in the rump kernel (`usb.driver=rump`, when
//! linked), and in the Linux peer (Debian's 6.1 kernel with its xhci/ehci, usb-storage and
//! sd modules), alternating over N fresh boots each. Prints median (min–max) and the
//! AdrOS/Linux ratio per controller and stack, writes target/bench/usb.json.

use std::path::Path;
use std::time::Duration;

use super::{
    BenchArgs, Better, BootResult, Figure, Guest, Step, boot_once, compile, peer, read, report,
};
use crate::build;
use crate::qemu::{self, Machine};
use crate::util::{Result, parse_mem, root, target_dir};

/// MiB read.
const READ_MIB: u32 = 64;
/// The stick (pseudo-random contents, so no layer can shortcut zeros).
const STICK_MIB: u64 = 128;

fn stick(path: &Path) -> Result<()> {
    if std::fs::metadata(path).is_ok_and(|m| m.len() == STICK_MIB << 20) {
        return Ok(());
    }
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut data = Vec::with_capacity((STICK_MIB << 20) as usize);
    while data.len() < (STICK_MIB << 20) as usize {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(path, data).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// The guest script, the same bytes in both guests: wait for the stick (asynchronous
/// discovery, up to 60 s), then read.
fn script() -> String {
    format!(
        "# cargo xtask bench usb: run identically in AdrOS and the Linux peer\n\
         i=0; while [ ! -e /dev/sda ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done\n\
         [ -e /dev/sda ] || echo \"@F usb.read no /dev/sda after 60 s\"\n\
         /bench/adros-bench read usb.read /dev/sda {READ_MIB} || echo \"@X read $?\"\n"
    )
}

const COMMAND: &str = "sh /bench/run.sh";

/// Renames figure `usb.read` of one boot to `to` (failures too).
fn rename(mut r: BootResult, to: &str) -> BootResult {
    for n in r
        .values
        .iter_mut()
        .map(|(n, _)| n)
        .chain(r.failures.iter_mut().map(|(n, _)| n))
    {
        if n == "usb.read" {
            *n = to.to_string();
        }
    }
    r
}

pub fn run(a: &BenchArgs) -> Result<i32> {
    let mem_mib = parse_mem(&a.mem)?;
    crate::deps::ensure(true)?;
    let out_dir = target_dir().join("bench");
    let log_dir = out_dir.join("logs");
    std::fs::create_dir_all(&log_dir)
        .map_err(|e| format!("creating {}: {e}", log_dir.display()))?;
    let prog = out_dir.join("adros-bench");
    compile(&root().join("bench/adros-bench.c"), &prog)?;
    let script_path = out_dir.join("usb-run.sh");
    std::fs::write(&script_path, script())
        .map_err(|e| format!("writing {}: {e}", script_path.display()))?;
    let img = out_dir.join("usb-stick.img");
    stick(&img)?;

    let kernel = build::build_kernel(&a.build)?;
    let symbols = build::write_symbols(&kernel)?;
    let extras = vec![
        crate::initrd::parse_extra(&format!("{}:/bench/adros-bench", prog.display()))?,
        crate::initrd::parse_extra(&format!("{}:/bench/run.sh", script_path.display()))?,
    ];
    crate::initrd::build(&extras, &[])?;
    let hex: String = COMMAND.bytes().map(|b| format!("{b:02x}")).collect();
    let mut stacks = vec!["native"];
    if adros_tests::kernel_has_rump(&kernel) {
        stacks.push("rump");
    } else {
        eprintln!(
            "xtask bench usb: the kernel has no rump components: the rump stack is not measured"
        );
    }
    let mut isos = Vec::new();
    for s in &stacks {
        let iso = out_dir.join(format!("adros-bench-usb-{s}.iso"));
        build::make_iso(
            &kernel,
            &symbols,
            &format!(
                "{} loglevel=3 usb.driver={s} adros.exec={hex}",
                build::DEFAULT_CMDLINE
            ),
            &iso,
        )?;
        isos.push((*s, iso));
    }

    let (linux, linux_version) = if a.no_peer {
        (None, None)
    } else {
        let p = peer::kernel()?;
        let cpio = out_dir.join("linux-peer-usb.cpio");
        let mut files = vec![
            ("/bench/adros-bench".to_string(), read(&prog)?, 0o755),
            ("/bench/run.sh".to_string(), read(&script_path)?, 0o644),
        ];
        let mut prelude = String::new();
        for m in peer::USB_MODULES {
            files.push((
                format!("/lib/{m}"),
                read(&peer::modules_dir().join(m))?,
                0o644,
            ));
            prelude.push_str(&format!("insmod /lib/{m}\n"));
        }
        peer::initramfs(&cpio, &peer::init_script(COMMAND, &prelude), &files)?;
        (
            Some(qemu::DirectBoot {
                kernel: p.vmlinuz.clone(),
                initrd: cpio,
                append: "console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init".into(),
            }),
            Some(p.version),
        )
    };

    let mut figures: Vec<Figure> = Vec::new();
    // One result per guest and run, holding every controller's and stack's figure (the
    // report counts a figure missing from a run's result as a failure).
    let mut merged: Vec<(Guest, u32, BootResult)> = Vec::new();
    let mut add = |g: Guest, run: u32, r: BootResult| match merged
        .iter_mut()
        .find(|(mg, mr, _)| *mg == g && *mr == run)
    {
        Some((_, _, m)) => {
            m.values.extend(r.values);
            m.failures.extend(r.failures);
        }
        None => merged.push((g, run, r)),
    };
    let step = [Step {
        args: format!("read usb.read /dev/sda {READ_MIB}"),
        figures: vec!["usb.read".into()],
    }];
    let one = [Figure {
        suite: "usb",
        name: "usb.read".into(),
        unit: "MiB/s",
        better: Better::Higher,
        what: String::new(),
    }];
    let timeout = Duration::from_secs(300);
    let logs = |name: &str| -> Result<std::path::PathBuf> {
        let d = log_dir.join(name);
        std::fs::create_dir_all(&d).map_err(|e| format!("creating {}: {e}", d.display()))?;
        Ok(d)
    };
    for ctrl in ["xhci", "ehci"] {
        let dev = if ctrl == "ehci" {
            "ich9-usb-ehci1"
        } else {
            "qemu-xhci"
        };
        for s in &stacks {
            figures.push(Figure {
                suite: "usb",
                name: format!("usb.read_{ctrl}_{s}"),
                unit: "MiB/s",
                better: Better::Higher,
                what: format!(
                    "{READ_MIB} MiB cold read of a {dev} stick's /dev/sda in 1 MiB reads, AdrOS {s} USB stack (Linux: its own)"
                ),
            });
        }
        let machine = |iso: &Path| {
            let mut m = Machine::new(iso);
            m.smp = a.smp;
            m.mem_mib = mem_mib;
            m.usb_disks = vec![img.clone()];
            m.usb_controller = ctrl.into();
            m
        };
        for run in 1..=a.runs {
            for (s, iso) in &isos {
                let m = machine(iso);
                let r = boot_once(
                    Guest::AdrOS,
                    &m,
                    run,
                    a.runs,
                    &one,
                    &step,
                    timeout,
                    &logs(&format!("usb-{ctrl}-{s}"))?,
                )?;
                add(
                    Guest::AdrOS,
                    run,
                    rename(r, &format!("usb.read_{ctrl}_{s}")),
                );
            }
            if let Some(d) = &linux {
                let mut m = machine(&isos[0].1);
                m.direct = Some(d.clone());
                let r = boot_once(
                    Guest::Linux,
                    &m,
                    run,
                    a.runs,
                    &one,
                    &step,
                    timeout,
                    &logs(&format!("usb-{ctrl}-linux"))?,
                )?;
                // The same Linux figure stands beside each AdrOS stack.
                for s in &stacks {
                    let c = BootResult {
                        values: r.values.clone(),
                        failures: r.failures.clone(),
                    };
                    add(
                        Guest::Linux,
                        run,
                        rename(c, &format!("usb.read_{ctrl}_{s}")),
                    );
                }
            }
        }
    }
    let rows = report::aggregate(&figures, &merged);
    let cmdline = format!(
        "cargo xtask bench usb{}",
        if a.runs != 3 {
            format!(" --runs {}", a.runs)
        } else {
            String::new()
        }
    );
    let facts = report::Facts::collect(a.smp, mem_mib, a.runs, linux_version.as_deref(), &cmdline);
    println!("{}", report::table(&rows, &facts, linux.is_some()));
    let path = out_dir.join("usb.json");
    let all: Vec<&report::Row> = rows.iter().collect();
    std::fs::write(&path, report::json("usb", &all, &facts))
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    eprintln!(
        "xtask bench usb: wrote {} (serial logs in {})",
        path.display(),
        log_dir.display()
    );
    Ok(0)
}
