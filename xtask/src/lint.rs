//! `cargo xtask lint`: the checks a change must pass before review, run by `cargo xtask test`
//! as its first level so CI fails on them.
//!
//! - `cargo fmt --all --check`: every file formatted;
//! - clippy with `-D warnings` on every host package and all their targets (tests, benches);
//! - clippy with `-D warnings` on the kernel for `x86_64-unknown-none`, native-only and, when
//!   NetBSD source is present, with the rump components linked (`cfg(rump_linked)` code);
//!   the kernel core crate (`adros-core`) with it; and the core with its aarch64 image
//!   (`adros-aarch64`) and the kernel for `aarch64-unknown-none-softfloat`;
//! - the layering: the kernel core depends on no other crate of this workspace, so nothing
//!   in it can name processes, files, sockets, system calls or the rump kernel
//!   ([`core_layering`]).
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
        "-p",
        "adros-core",
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
    let aarch64 = [
        "-p",
        "adros-core",
        "-p",
        "adros-aarch64",
        "-p",
        "adros-kernel",
        "--target",
        adros_tests::qemu::Arch::Aarch64.kernel_target(),
    ];
    v.push(step(
        "cargo clippy (kernel core, its aarch64 image and the kernel, aarch64) -D warnings",
        clippy(&aarch64, None),
    ));
    v.push(core_layering());
    v.push(arch_boundary());
    Ok(v)
}

/// Fails if the kernel above the core names the CPU: `x86_64::` paths or `asm!` belong in
/// `kernel/core/src/arch/` (the one place a second architecture has to supply).
pub fn arch_boundary() -> Step {
    let name = "arch boundary: no `x86_64::` or `asm!` in kernel/src (above the core)";
    let mut hits = Vec::new();
    let mut stack = vec![root().join("kernel/src")];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                hits.extend(arch_lines(&text).into_iter().map(|(n, l)| {
                    format!(
                        "{}:{n}: {l}",
                        p.strip_prefix(root()).unwrap_or(&p).display()
                    )
                }));
            }
        }
    }
    hits.sort();
    Step {
        name: name.into(),
        failure: (!hits.is_empty()).then(|| {
            format!(
                "CPU-specific code above the core (move it behind an `adros_core::arch` function):\n{}",
                hits.join("\n")
            )
        }),
    }
}

/// (line number, line) of every non-comment line naming `x86_64::` or `asm!`.
fn arch_lines(text: &str) -> Vec<(usize, String)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let t = l.trim_start();
            !t.starts_with("//") && (t.contains("x86_64::") || t.contains("asm!"))
        })
        .map(|(i, l)| (i + 1, l.trim().to_string()))
        .collect()
}

/// The crate the rest of the kernel stands on, which must stand on nothing of ours.
const CORE: &str = "adros-core";

/// Fails if `adros-core` depends (directly or not) on any other package of this workspace:
/// then the kernel above it could be reached from the core (`cargo tree` resolves the graph;
/// workspace packages are the ones with a path source under the repository).
pub fn core_layering() -> Step {
    let name = "layering: the kernel core (adros-core) depends on no other workspace crate";
    let mut c = cargo();
    c.args([
        "tree",
        "-p",
        CORE,
        "--edges",
        "normal,build",
        "--prefix",
        "none",
        "--format",
        "{p}",
        "--target",
        crate::build::KERNEL_TARGET,
    ]);
    let failure = match c.output() {
        Err(e) => Some(format!("cannot run cargo tree: {e}")),
        Ok(o) if !o.status.success() => Some(String::from_utf8_lossy(&o.stderr).into_owned()),
        Ok(o) => {
            let root_dir = root().display().to_string();
            let ours = workspace_crates_in(&String::from_utf8_lossy(&o.stdout), &root_dir);
            let upward: Vec<&String> = ours.iter().filter(|p| p.as_str() != CORE).collect();
            if upward.is_empty() {
                None
            } else {
                Some(format!(
                    "{CORE} depends on {upward:?}: the core must not reach the layers above it \
                     (give it a hook instead: see kernel/core/src/arch/x86_64/hooks.rs)"
                ))
            }
        }
    };
    Step {
        name: name.into(),
        failure,
    }
}

/// Package names in `cargo tree --format {p}` output whose source is a path under `root`
/// (`name v0.1.0 (/path/to/it)`).
fn workspace_crates_in(tree: &str, root: &str) -> Vec<String> {
    let mut v: Vec<String> = tree
        .lines()
        .filter(|l| {
            l.split_once(" (")
                .is_some_and(|(_, src)| src.trim_end_matches([')', ' ', '*']).starts_with(root))
        })
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect();
    v.sort();
    v.dedup();
    v
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_cpu_specific_lines() {
        let text = "// x86_64:: in a comment\nlet a = 1;\n    core::arch::asm!(\"nop\");\nuse x86_64::VirtAddr;\n";
        assert_eq!(
            arch_lines(text),
            vec![
                (3, "core::arch::asm!(\"nop\");".to_string()),
                (4, "use x86_64::VirtAddr;".to_string())
            ]
        );
    }

    #[test]
    fn finds_workspace_crates_in_a_tree() {
        let tree = "adros-core v0.1.0 (/w/kernel/core)\nspin v0.12.3\nx86_64 v0.15.5\n\
                    adros-pci v0.1.0 (/w/drivers/pci)\nlog v0.4.35\nadros-pci v0.1.0 (/w/drivers/pci) (*)\n";
        assert_eq!(
            workspace_crates_in(tree, "/w"),
            vec!["adros-core".to_string(), "adros-pci".to_string()]
        );
        assert!(workspace_crates_in("spin v0.12.3\n", "/w").is_empty());
    }
}
