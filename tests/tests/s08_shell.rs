//! s08: the shell-level suite (tests/guest/shell-checks.sh, 70 named checks: files,
//! links, permissions, pipes, redirections, job control basics, signals, /proc, busybox
//! tools, bash) run by busybox sh inside AdrOS; every check must pass.

use std::time::Duration;

use adros_tests::{Boot, banner};

#[test]
fn shell_checks_all_pass() {
    let cmd = "sh /usr/libexec/adros-tests/shell-checks.sh";
    let hex: String = cmd.bytes().map(|b| format!("{b:02x}")).collect();
    let t = Boot::new("s08_shell-checks")
        .args(&format!("loglevel=3 adros.exec={hex}"))
        .timeout(Duration::from_secs(300))
        .run();
    if let Some(report) = banner::crash_report(t.serial()) {
        t.fail(&format!("the kernel crashed:\n{report}"));
    }
    let s = t.serial().replace('\r', "");
    let failed: Vec<&str> = s.lines().filter(|l| l.starts_with("not ok ")).collect();
    if !failed.is_empty() {
        t.fail(&format!("failing shell checks:\n{}", failed.join("\n")));
    }
    let Some(summary) = s.lines().find(|l| l.starts_with("shell-checks: ")) else {
        t.fail("the suite did not finish")
    };
    let passed: usize = summary["shell-checks: ".len()..]
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    if passed < 60 {
        t.fail(&format!(
            "only {passed} shell checks ran (need at least 60): {summary}"
        ));
    }
    if !s.contains("@@ADROS-EXEC-EXIT 0@@") {
        t.fail("the suite did not exit 0");
    }
}
