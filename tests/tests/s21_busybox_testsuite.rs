//! busybox's upstream testsuite (issue 20): every case that passes on Linux 6.1 must pass on
//! AdrOS. `cargo xtask test` fetches the testsuite of the busybox source Debian's
//! `busybox-static` is built from, packs it into an initrd (`ADROS_BBTEST_INITRD`) and
//! gives the Linux peer's output for the same files and command (`ADROS_BBTEST_LINUX`,
//! produced by booting Debian's 6.1 kernel in QEMU and cached by busybox and kernel
//! version; see xtask/src/compare_busybox.rs). Skipped, and counted as skipped, when the
//! testsuite or the peer cannot be had (`ADROS_BBTEST_SKIP`).
//!
//! Two boots share the applets (alternately, in `runtest`'s order), so that under TCG each
//! takes a few minutes and `--test-threads=2` runs them side by side. One applet is left to
//! `cargo xtask compare busybox`, which runs the whole suite: see
//! `adros_tests::bbtest::LEFT_TO_COMPARE`.

use std::time::Duration;

use adros_tests::bbtest::{self, LEFT_TO_COMPARE, Outcome};
use adros_tests::{Boot, banner, skip};

struct Inputs {
    initrd: std::path::PathBuf,
    linux: bbtest::Results,
    linux_file: String,
}

fn inputs() -> Result<Inputs, String> {
    if let Ok(why) = std::env::var("ADROS_BBTEST_SKIP") {
        return Err(why);
    }
    let initrd = std::env::var_os("ADROS_BBTEST_INITRD")
        .ok_or("ADROS_BBTEST_INITRD is not set: run the tests with `cargo xtask test`")?;
    let linux_file = std::env::var("ADROS_BBTEST_LINUX")
        .map_err(|_| "ADROS_BBTEST_LINUX is not set: run the tests with `cargo xtask test`")?;
    let text = std::fs::read_to_string(&linux_file).map_err(|e| format!("{linux_file}: {e}"))?;
    let linux = bbtest::parse(&text);
    if linux.end.is_none() || linux.cases.is_empty() {
        return Err(format!("{linux_file} holds no finished Linux run"));
    }
    Ok(Inputs {
        initrd: initrd.into(),
        linux,
        linux_file,
    })
}

/// The applets of part `part` (0 or 1): every other applet with cases on Linux, in
/// `runtest`'s order, each as often as `runtest` ran it there (`busybox` twice).
fn applets(linux: &bbtest::Results, part: usize) -> Vec<String> {
    let mut uniq: Vec<&str> = Vec::new();
    for c in &linux.cases {
        if !c.applet.is_empty()
            && !uniq.contains(&c.applet.as_str())
            && !LEFT_TO_COMPARE.iter().any(|(a, _)| *a == c.applet)
        {
            uniq.push(&c.applet);
        }
    }
    let mine: Vec<&str> = uniq
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % 2 == part)
        .map(|(_, a)| a)
        .collect();
    linux
        .applets
        .iter()
        .filter(|a| mine.contains(&a.as_str()))
        .cloned()
        .collect()
}

fn run_part(name: &str, part: usize) {
    let inp = match inputs() {
        Ok(i) => i,
        Err(why) => return skip(name, &why),
    };
    let applets = applets(&inp.linux, part);
    let names: Vec<&str> = applets.iter().map(String::as_str).collect();
    let linux = inp.linux.only(&names);
    let label = |c: &bbtest::Case| format!("[{}] {}", c.applet, c.name);
    let hex: String = bbtest::command(&names)
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    let t = Boot::new(name)
        .initrd(inp.initrd.clone())
        .mem_mib(1024)
        .smp(2)
        .args(&format!("loglevel=3 adros.exec={hex}"))
        .timeout(Duration::from_secs(1800))
        .run();
    if let Some(report) = banner::crash_report(t.serial()) {
        t.fail(&format!("the kernel crashed:\n{report}"));
    }
    let adros = bbtest::parse(t.serial());
    let c = bbtest::compare(&adros, &linux);
    println!(
        "{name}: {} applets, {} cases: AdrOS {} passed, {} failed, {} skipped; Linux ({}) {} passed, {} failed, {} skipped",
        names.len(),
        linux.cases.len(),
        adros.count(Outcome::Pass),
        adros.count(Outcome::Fail),
        adros.count(Outcome::Skipped),
        linux.kernel.as_deref().unwrap_or("?"),
        linux.count(Outcome::Pass),
        linux.count(Outcome::Fail),
        linux.count(Outcome::Skipped),
    );
    if !c.better_on_adros.is_empty() {
        println!(
            "{name}: passing on AdrOS, not on Linux: {}",
            c.better_on_adros
                .iter()
                .map(label)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !c.ok() {
        let mut msg = String::new();
        for n in &c.regressions {
            msg.push_str(&format!(
                "\n  FAIL on AdrOS, PASS on Linux: {}\n{}",
                label(n),
                bbtest::failure_detail(t.serial(), n)
                    .lines()
                    .map(|l| format!("      {l}\n"))
                    .collect::<String>()
            ));
        }
        for n in &c.skipped_on_adros {
            msg.push_str(&format!(
                "\n  SKIPPED on AdrOS, PASS on Linux: {}",
                label(n)
            ));
        }
        if !c.missing_on_adros.is_empty() {
            msg.push_str(&format!(
                "\n  {} cases passing on Linux never ran on AdrOS (the run stopped in applet {:?}; runtest status {:?}), the first: {}",
                c.missing_on_adros.len(),
                adros.last_applet,
                adros.end,
                c.missing_on_adros
                    .iter()
                    .take(5)
                    .map(label)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        t.fail(&format!(
            "busybox testsuite: cases passing on Linux ({}) do not pass on AdrOS:{msg}",
            inp.linux_file
        ));
    }
    if adros.end.is_none() {
        t.fail("runtest never finished (no @@BBT-END line)");
    }
}

#[test]
fn s21_busybox_testsuite_passes_what_linux_passes_part1() {
    run_part("s21_busybox_testsuite_passes_what_linux_passes_part1", 0);
}

#[test]
fn s21_busybox_testsuite_passes_what_linux_passes_part2() {
    run_part("s21_busybox_testsuite_passes_what_linux_passes_part2", 1);
}
