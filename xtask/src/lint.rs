//! `cargo xtask lint`: the checks a change must pass before review, run by `cargo xtask test`
//! as its first level so CI fails on them.
//!
//! - `cargo fmt --all --check`: every file formatted;
//! - clippy with `-D warnings` on every host package and all their targets (tests, benches);
//! - clippy with `-D warnings` on the kernel for `x86_64-unknown-none`, native-only and, when
//!   NetBSD source is present, with the rump components linked (`cfg(rump_linked)` code).
//!
//! The workspace's `[workspace.lints]` table says which lints beyond clippy's defaults apply
//! (`undocumented_unsafe_blocks` among them) and, where a crate parses untrusted input, which
//! it warns about and why.

use std::process::Command;

use clap::Args;

use crate::util::{Result, root};

#[derive(Args, Clone, Default)]
pub struct LintArgs {
    /// Apply clippy's and rustfmt's fixes where they have one, then check.
    #[arg(long)]
    pub fix: bool,
}

/// One lint step: what it is, and its failure output (`None`: passed).
pub struct Step {
    pub name: String,
    pub failure: Option<String>,
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

/// Runs `cmd`; the step fails with its diagnostics when it fails.
fn step(name: &str, mut cmd: Command) -> Step {
    let pb = crate::util::spinner(format!("lint: {name}"));
    let out = cmd.output();
    pb.finish_and_clear();
    let failure = match out {
        Err(e) => Some(format!("cannot run {:?}: {e}", cmd.get_program())),
        Ok(o) if o.status.success() => None,
        Ok(o) => {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            // The diagnostics, without cargo's progress lines.
            let kept: Vec<&str> = text
                .lines()
                .filter(|l| {
                    let t = l.trim_start();
                    !(t.starts_with("Checking ")
                        || t.starts_with("Compiling ")
                        || t.starts_with("Finished ")
                        || t.starts_with("Blocking "))
                })
                .collect();
            Some(kept.join("\n"))
        }
    };
    Step {
        name: name.into(),
        failure,
    }
}

/// Every lint step, in order; `fix` first applies the automatic fixes.
pub fn steps(fix: bool) -> Result<Vec<Step>> {
    let rump = crate::rump::ensure_kernel_build()?;
    let mut v = Vec::new();
    if fix {
        let mut c = cargo();
        c.args(["fmt", "--all"]);
        let _ = c.status();
    }
    let mut c = cargo();
    c.args(["fmt", "--all", "--", "--check"]);
    v.push(step("cargo fmt --all --check", c));

    let clippy = |args: &[&str], env: Option<&std::path::Path>| {
        let mut c = cargo();
        c.arg("clippy");
        if fix {
            c.args(["--fix", "--allow-dirty", "--allow-staged"]);
        }
        c.args(args);
        c.args(["--", "-D", "warnings"]);
        match env {
            Some(d) => c.env(crate::rump::KERNEL_DIR_ENV, d),
            None => c.env_remove(crate::rump::KERNEL_DIR_ENV),
        };
        c
    };
    let host = ["--workspace", "--exclude", "adros-kernel", "--all-targets"];
    v.push(step(
        "cargo clippy (host packages, all targets) -D warnings",
        clippy(&host, None),
    ));
    let kernel = [
        "-p",
        "adros-kernel",
        "--target",
        crate::build::KERNEL_TARGET,
    ];
    v.push(step(
        "cargo clippy (kernel, native only) -D warnings",
        clippy(&kernel, None),
    ));
    if let Some(d) = rump.as_deref() {
        v.push(step(
            "cargo clippy (kernel with the rump components) -D warnings",
            clippy(&kernel, Some(d)),
        ));
    }
    Ok(v)
}

/// `cargo xtask lint [--fix]`.
pub fn lint(a: LintArgs) -> Result<i32> {
    let steps = steps(a.fix)?;
    let mut failed = 0;
    for s in &steps {
        match &s.failure {
            None => eprintln!("lint: {}: ok", s.name),
            Some(f) => {
                failed += 1;
                eprintln!("lint: {}: FAILED\n{f}", s.name);
            }
        }
    }
    if failed > 0 {
        eprintln!(
            "lint: {failed} of {} steps failed (`cargo xtask lint --fix` applies the fixes clippy and rustfmt know)",
            steps.len()
        );
        return Ok(1);
    }
    Ok(0)
}
