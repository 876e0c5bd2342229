//! `cargo xtask compare net`: AdrOS's two network stacks — the native e1000 driver with
//! smoltcp (`net.stack=native`) and NetBSD's wm(4) and TCP/IP in the rump kernel
//! (`net.stack=rump`) — measured with the same workloads in one run, beside Linux 6.1 on the
//! same QEMU.
//!
//! The workloads are `bench net`'s (see `bench/netpeer.rs`): TCP guest→host and host→guest
//! with 64 KiB writes, 1-byte ping-pong, connections per second, against servers xtask runs on
//! 127.0.0.1 (reached as 10.0.2.2 through QEMU's user network). Each stack boots `--runs` times
//! and the Linux peer boots `--runs` times (with the native stack's boots, alternating). Prints
//! one table with the medians and the ratios rump/native, native/Linux and rump/Linux, and
//! writes `target/bench/compare-net.json`.

use std::fmt::Write as _;

use crate::bench::report::{Row, cell};
use crate::bench::{self, Better, Measured};
use crate::build;
use crate::compare::CompareArgs;
use crate::util::{Result, target_dir};

/// `a / b` as "how many times better `a` is", for a figure where `better` wins.
fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "—".into(),
    }
}

pub fn compare(a: &CompareArgs) -> Result<i32> {
    if a.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    crate::deps::ensure(true)?;
    let built = build::build(&a.build)?;
    let args = |stack: &str, no_peer: bool| bench::BenchArgs {
        suites: vec!["net".into()],
        runs: a.runs,
        smp: a.smp,
        mem: "1G".into(),
        net_stack: stack.into(),
        ext2_driver: "native".into(),
        iso: false,
        no_peer,
        build: a.build.clone(),
    };
    let names = vec!["net".to_string()];
    eprintln!(
        "==> compare net: the native stack ({} boots) and the Linux peer ({} boots)",
        a.runs, a.runs
    );
    let native = bench::measure(&args("native", false), &names)?;
    let rump: Option<Measured> = if built.rump_linked {
        eprintln!("==> compare net: the rump stack ({} boots)", a.runs);
        Some(bench::measure(&args("rump", true), &names)?)
    } else {
        eprintln!(
            "xtask compare net: NetBSD's TCP/IP (net.stack=rump) is not available: the kernel was \
             built without the rump components. {}; then run this again to compare the stacks. \
             Measuring the native stack only.",
            crate::rump::no_source_message()
        );
        None
    };
    let text = table(&native, rump.as_ref(), a.runs);
    println!("{text}");
    let path = target_dir().join("bench/compare-net.json");
    std::fs::write(&path, json(&native, rump.as_ref()))
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    eprintln!(
        "xtask compare net: wrote {} (serial logs in {})",
        path.display(),
        target_dir().join("bench/logs").display()
    );
    let missing = native
        .rows
        .iter()
        .chain(rump.iter().flat_map(|r| r.rows.iter()))
        .filter(|r| r.adros.values.is_empty())
        .count();
    if missing > 0 {
        eprintln!(
            "xtask compare net: {missing} figure(s) could not be measured on a stack; the reasons are in the table"
        );
    }
    Ok(0)
}

/// The rump row for the same figure as `native`.
fn rump_row<'a>(rump: Option<&'a Measured>, native: &Row) -> Option<&'a Row> {
    rump?
        .rows
        .iter()
        .find(|r| r.figure.name == native.figure.name)
}

/// "How many times better" `a` is than `b` for this figure (higher-is-better figures divide
/// a by b, lower-is-better ones b by a), so every ratio column reads the same way.
fn gain(better: Better, a: Option<f64>, b: Option<f64>) -> String {
    match better {
        Better::Higher => ratio(a, b),
        Better::Lower => ratio(b, a),
    }
}

fn table(native: &Measured, rump: Option<&Measured>, runs: u32) -> String {
    let f = &native.facts;
    let mut t = String::new();
    let _ = writeln!(
        t,
        "\n`cargo xtask compare net` — {} — {runs} boots of each stack and of the Linux peer, {} vCPUs, {} MiB, {} on {} ({} host cores){}\n",
        f.date,
        f.smp,
        f.mem_mib,
        f.qemu,
        f.cpu_model,
        f.host_cores,
        f.linux
            .as_ref()
            .map(|l| format!("; Linux peer: Debian {l}"))
            .unwrap_or_default()
    );
    t.push_str("Ratios read \"times better\": above 1 the first named wins, whichever way the figure goes.\n\n");
    t.push_str("| figure | unit | better | native median (min–max) | rump median (min–max) | Linux median (min–max) | native vs rump | native vs Linux | rump vs Linux |\n");
    t.push_str("|---|---|---|---|---|---|---|---|---|\n");
    for r in &native.rows {
        let rr = rump_row(rump, r);
        let n = r.adros.median();
        let ru = rr.and_then(|x| x.adros.median());
        let l = if native.peer { r.linux.median() } else { None };
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.figure.name,
            r.figure.unit,
            if r.figure.better == Better::Lower {
                "lower"
            } else {
                "higher"
            },
            cell(&r.adros),
            rr.map(|x| cell(&x.adros)).unwrap_or_else(|| "—".into()),
            if native.peer {
                cell(&r.linux)
            } else {
                "—".into()
            },
            gain(r.figure.better, n, ru),
            gain(r.figure.better, n, l),
            gain(r.figure.better, ru, l),
        );
    }
    t
}

fn json(native: &Measured, rump: Option<&Measured>) -> String {
    let f = &native.facts;
    let num = |v: Option<f64>| v.map(|v| format!("{v}")).unwrap_or_else(|| "null".into());
    let mut s = String::new();
    let _ = write!(
        s,
        "{{\n  \"what\": \"compare net\",\n  \"date\": {:?},\n  \"adros_commit\": {:?},\n  \"qemu\": {:?},\n  \"linux\": {},\n  \"figures\": [\n",
        f.date,
        f.adros_commit,
        f.qemu,
        f.linux
            .as_ref()
            .map(|l| format!("{l:?}"))
            .unwrap_or_else(|| "null".into())
    );
    let rows: Vec<String> = native
        .rows
        .iter()
        .map(|r| {
            let rr = rump_row(rump, r);
            format!(
                "    {{\"name\": {:?}, \"unit\": {:?}, \"higher_is_better\": {}, \"native\": {}, \"rump\": {}, \"linux\": {}}}",
                r.figure.name,
                r.figure.unit,
                r.figure.better == Better::Higher,
                num(r.adros.median()),
                num(rr.and_then(|x| x.adros.median())),
                num(if native.peer { r.linux.median() } else { None }),
            )
        })
        .collect();
    s.push_str(&rows.join(",\n"));
    s.push_str("\n  ]\n}\n");
    s
}
