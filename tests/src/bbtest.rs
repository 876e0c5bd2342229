//! busybox's upstream testsuite (`testsuite/runtest` of the busybox source Debian's
//! `busybox-static` is built from), run the same way in an AdrOS guest and in a Linux 6.1
//! guest: the command both run, the parser of what `runtest` prints, and the comparison.
//! `cargo xtask compare busybox` and `tests/tests/s21_busybox_testsuite.rs` use it; xtask's
//! `compare_busybox.rs` fetches the testsuite and produces the Linux side.
//!
//! Both guests get the same two files: `/bbtest.tar` (`bbtest/bin/.config`, the static
//! flavour's configuration Debian built busybox with, and `bbtest/bin/testsuite/`) and
//! `/bbtest.sh` ([`SCRIPT`]), and run [`command`] between the exec markers.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The guest command (AdrOS's `adros.exec`, the Linux peer's `/init`): [`SCRIPT`] on the
/// applets named (`runtest`'s arguments; empty: every applet busybox has, as `runtest`
/// does with no argument).
pub fn command(applets: &[&str]) -> String {
    if applets.is_empty() {
        "sh /bbtest.sh".into()
    } else {
        format!("BBT_APPLETS='{}' sh /bbtest.sh", applets.join(" "))
    }
}

/// What `/bbtest.sh` does in both guests. The environment is Debian's `debian/rules`
/// `TESTSUITE_ENV` (which runs this testsuite at package build time), with a fixed `PATH`
/// and `HOME` (the two kernels start `/init` with different environments). `$bindir` is
/// `/tmp/bbtest/bin`: the configuration, and `busybox` as a link to `/bin/busybox`;
/// `runtest` makes its applet links in `$bindir/runtest-tempdir-links`. `-v` prints the
/// `diff -u` of each failed case, so a log says why a case failed.
pub const SCRIPT: &str = r#"export PATH=/sbin:/usr/sbin:/bin:/usr/bin HOME=/root TERM=dumb
unset ENV
cd /tmp || exit 90
tar xf /bbtest.tar || exit 91
ln -s /bin/busybox /tmp/bbtest/bin/busybox || exit 92
cd /tmp/bbtest/bin/testsuite || exit 93
echo "@@BBT-BEGIN $(uname -sr)"
env SKIP_KNOWN_BUGS=y LANG=C.UTF-8 LC_ALL=C.UTF-8 SKIP_INTERNET_TESTS=y SHELL=/bin/sh ECHO=/bin/echo ./runtest -v $BBT_APPLETS
echo "@@BBT-END $?"
"#;

/// Applets whose cases the QEMU test (`s21_busybox_testsuite`) does not run, each with why:
/// `cargo xtask compare busybox` runs (and compares) them with the rest.
pub const LEFT_TO_COMPARE: &[(&str, &str)] = &[(
    "bc",
    "compute-bound: 'bc parsing of numbers' and 'bc printing of numbers' pipe about a million lines through two bc processes, well over ten minutes under TCG",
)];

/// The line the staged `runtest` prints as it starts each applet's tests.
pub const APPLET_MARKER: &str = "@@BBT-APPLET ";

/// One case's outcome, as `runtest` and `testing.sh` print it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Pass,
    Fail,
    /// `SKIPPED:` (an `optional` feature not configured, `SKIP_KNOWN_BUGS`, an applet not
    /// built) or `UNTESTED:` (an old-style case whose applet or feature is not configured).
    Skipped,
}

/// One case: the applet whose tests printed it (`runtest`'s loop variable, which the staged
/// copy of `runtest` prints as `@@BBT-APPLET name`), its name as printed (a name an applet's
/// tests print twice gets ` #2`, ` #3`…, so every case has its own applet and name: Debian's
/// busybox lists `busybox` among its applets, so `runtest` runs `busybox.tests` twice) and
/// its outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    pub applet: String,
    pub name: String,
    pub outcome: Outcome,
}

/// One run's cases, in the order printed.
#[derive(Clone, Debug, Default)]
pub struct Results {
    pub cases: Vec<Case>,
    /// The `@@BBT-BEGIN` line's kernel (`uname -sr`), if printed.
    pub kernel: Option<String>,
    /// `runtest`'s exit status (`@@BBT-END N`): `None` when the run never finished.
    pub end: Option<i32>,
    /// The applet whose tests were running when the output ended.
    pub last_applet: Option<String>,
    /// Every applet `runtest` started, in order (repeats kept).
    pub applets: Vec<String>,
}

impl Results {
    pub fn count(&self, o: Outcome) -> usize {
        self.cases.iter().filter(|c| c.outcome == o).count()
    }

    pub fn get(&self, applet: &str, name: &str) -> Option<Outcome> {
        self.cases
            .iter()
            .find(|c| c.applet == applet && c.name == name)
            .map(|c| c.outcome)
    }

    /// Only the cases of `applets` (all when empty).
    pub fn only(&self, applets: &[&str]) -> Results {
        let mut r = self.clone();
        if !applets.is_empty() {
            r.cases.retain(|c| applets.contains(&c.applet.as_str()));
            r.applets.retain(|a| applets.contains(&a.as_str()));
        }
        r
    }
}

/// Parses the serial output of a run: `@@BBT-APPLET name` lines and `PASS: name`,
/// `FAIL: name`, `SKIPPED: name`, `UNTESTED: name` lines after `@@BBT-BEGIN` (`\r`
/// ignored; anything else — the verbose diffs, kernel log lines — is skipped).
pub fn parse(serial: &str) -> Results {
    let mut r = Results::default();
    let s = serial.replace('\r', "");
    let Some(b) = s.find("@@BBT-BEGIN") else {
        return r;
    };
    let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut applet = String::new();
    for (i, line) in s[b..].lines().enumerate() {
        if i == 0 {
            let k = line.trim_start_matches("@@BBT-BEGIN").trim();
            if !k.is_empty() {
                r.kernel = Some(k.to_string());
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("@@BBT-END ") {
            r.end = rest.trim().parse().ok();
            break;
        }
        if let Some(a) = line.strip_prefix(APPLET_MARKER) {
            applet = a.trim().to_string();
            r.last_applet = Some(applet.clone());
            r.applets.push(applet.clone());
            continue;
        }
        let (outcome, name) = if let Some(n) = line.strip_prefix("PASS: ") {
            (Outcome::Pass, n)
        } else if let Some(n) = line.strip_prefix("FAIL: ") {
            (Outcome::Fail, n)
        } else if let Some(n) = line.strip_prefix("SKIPPED: ") {
            (Outcome::Skipped, n)
        } else if let Some(n) = line.strip_prefix("UNTESTED: ") {
            (Outcome::Skipped, n)
        } else {
            continue;
        };
        let name = name.trim_end().to_string();
        let k = seen.entry((applet.clone(), name.clone())).or_insert(0);
        *k += 1;
        let name = if *k == 1 {
            name
        } else {
            format!("{name} #{k}")
        };
        r.cases.push(Case {
            applet: applet.clone(),
            name,
            outcome,
        });
    }
    r
}

/// How AdrOS's run compares with Linux's (each list holds Linux's cases).
#[derive(Debug, Default)]
pub struct Comparison {
    /// Passed on Linux, failed on AdrOS.
    pub regressions: Vec<Case>,
    /// Passed on Linux, skipped on AdrOS (a skip decided by the guest, e.g. a tool missing).
    pub skipped_on_adros: Vec<Case>,
    /// Passed on Linux, never printed by AdrOS (the run stopped early or hung).
    pub missing_on_adros: Vec<Case>,
    /// Failed or skipped on Linux, passed on AdrOS.
    pub better_on_adros: Vec<Case>,
}

impl Comparison {
    /// No case that passes on Linux fails, is skipped or is missing on AdrOS.
    pub fn ok(&self) -> bool {
        self.regressions.is_empty()
            && self.skipped_on_adros.is_empty()
            && self.missing_on_adros.is_empty()
    }
}

/// Compares the two runs case by case.
pub fn compare(adros: &Results, linux: &Results) -> Comparison {
    let mut c = Comparison::default();
    for l in &linux.cases {
        let name = l.clone();
        match (l.outcome, adros.get(&l.applet, &l.name)) {
            (Outcome::Pass, Some(Outcome::Fail)) => c.regressions.push(name),
            (Outcome::Pass, Some(Outcome::Skipped)) => c.skipped_on_adros.push(name),
            (Outcome::Pass, None) => c.missing_on_adros.push(name),
            (Outcome::Fail | Outcome::Skipped, Some(Outcome::Pass)) => c.better_on_adros.push(name),
            _ => {}
        }
    }
    c
}

/// What `runtest -v` printed after `FAIL: case` (the `diff -u` of a new-style case, the
/// `sh -x` trace of an old-style one) up to the next case, at most 40 lines, for reports.
pub fn failure_detail(serial: &str, case: &Case) -> String {
    let s = serial.replace('\r', "");
    // A de-duplicated name (" #2") is the n-th printing of that name by that applet.
    let (name, nth) = match case
        .name
        .rsplit_once(" #")
        .map(|(n, k)| (n, k.parse::<usize>()))
    {
        Some((n, Ok(k))) => (n, k),
        _ => (case.name.as_str(), 1),
    };
    let mut out = String::new();
    let mut hits = 0;
    let mut inside = false;
    let mut applet = "";
    for line in s.lines() {
        if let Some(a) = line.strip_prefix(APPLET_MARKER) {
            applet = a.trim();
        }
        let outcome = ["PASS: ", "FAIL: ", "SKIPPED: ", "UNTESTED: "]
            .iter()
            .find_map(|p| line.strip_prefix(p));
        if inside {
            if outcome.is_some() || line.starts_with("@@BBT-") || out.lines().count() >= 40 {
                break;
            }
            let _ = writeln!(out, "{line}");
        } else if applet == case.applet && outcome.map(str::trim_end) == Some(name) {
            hits += 1;
            inside = hits == nth && line.starts_with("FAIL: ");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: &str = "boot noise\nPASS: x\n@@BBT-BEGIN Linux 6.1.0\r\n@@BBT-APPLET cat\nPASS: cat\n@@BBT-APPLET sed\nFAIL: sed a\n--- expected\n+++ actual\n@@ -1 +1 @@\n-a\n+b\nSKIPPED: mount\nUNTESTED: gz\nPASS: sed a\nFAIL: sed a\nkernel: noise\n@@BBT-END 1\nPASS: after\n";

    fn names(r: &Results) -> Vec<(&str, &str, Outcome)> {
        r.cases
            .iter()
            .map(|c| (c.applet.as_str(), c.name.as_str(), c.outcome))
            .collect()
    }

    #[test]
    fn parses_cases_in_order_with_duplicates_numbered() {
        let r = parse(RUN);
        assert_eq!(r.kernel.as_deref(), Some("Linux 6.1.0"));
        assert_eq!(r.end, Some(1));
        assert_eq!(
            names(&r),
            vec![
                ("cat", "cat", Outcome::Pass),
                ("sed", "sed a", Outcome::Fail),
                ("sed", "mount", Outcome::Skipped),
                ("sed", "gz", Outcome::Skipped),
                ("sed", "sed a #2", Outcome::Pass),
                ("sed", "sed a #3", Outcome::Fail),
            ]
        );
        assert_eq!(r.count(Outcome::Pass), 2);
        assert_eq!(r.only(&["cat"]).cases.len(), 1);
        assert_eq!(r.last_applet.as_deref(), Some("sed"));
        assert_eq!(r.applets, vec!["cat", "sed"]);
        assert_eq!(
            failure_detail(RUN, &r.cases[1]),
            "--- expected\n+++ actual\n@@ -1 +1 @@\n-a\n+b\n"
        );
        assert_eq!(failure_detail(RUN, &r.cases[5]), "kernel: noise\n");
        assert_eq!(failure_detail(RUN, &r.cases[4]), "");
    }

    #[test]
    fn no_begin_marker_is_no_result() {
        let r = parse("PASS: a\n");
        assert!(r.cases.is_empty() && r.end.is_none());
    }

    #[test]
    fn compares_case_by_case() {
        let linux =
            parse("@@BBT-BEGIN\nPASS: a\nPASS: b\nPASS: c\nFAIL: d\nPASS: e\n@@BBT-END 1\n");
        let adros = parse("@@BBT-BEGIN\nPASS: a\nFAIL: b\nSKIPPED: c\nPASS: d\n");
        let c = compare(&adros, &linux);
        let n = |v: &[Case]| v.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
        assert_eq!(n(&c.regressions), vec!["b"]);
        assert_eq!(n(&c.skipped_on_adros), vec!["c"]);
        assert_eq!(n(&c.missing_on_adros), vec!["e"]);
        assert_eq!(n(&c.better_on_adros), vec!["d"]);
        // The same name under two applets is two cases, each numbered on its own.
        let l = parse(
            "@@BBT-BEGIN\n@@BBT-APPLET a\nPASS: x\n@@BBT-APPLET b\nPASS: x\n@@BBT-APPLET b\nPASS: x\n",
        );
        assert_eq!(
            l.cases
                .iter()
                .map(|c| (c.applet.as_str(), c.name.as_str()))
                .collect::<Vec<_>>(),
            vec![("a", "x"), ("b", "x"), ("b", "x #2")]
        );
        let part = parse("@@BBT-BEGIN\n@@BBT-APPLET b\nPASS: x\n@@BBT-APPLET b\nPASS: x\n");
        assert!(compare(&part, &l.only(&["b"])).ok());
        assert!(!c.ok());
        assert!(compare(&linux, &linux).ok());
    }

    #[test]
    fn command_names_applets() {
        assert_eq!(command(&[]), "sh /bbtest.sh");
        assert_eq!(
            command(&["sed", "awk"]),
            "BBT_APPLETS='sed awk' sh /bbtest.sh"
        );
    }
}
