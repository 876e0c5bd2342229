//! The Rust side of `cargo xtask deps`: the targets and components `rust-toolchain.toml`
//! names, added to the toolchain with `rustup` when they are missing.
//!
//! rustup installs them by itself on first use only when it may auto-install, and users and
//! CI images turn that off (`RUSTUP_AUTO_INSTALL=0`): then the kernel build fails with
//! "can't find crate for `core`". So `deps` asks rustup what the toolchain has, and adds the
//! rest, saying which command it ran (or, with `--check`, which one it would run).

use std::path::Path;
use std::process::Command;

use crate::util::{Result, root, which};

/// What `rust-toolchain.toml` asks for.
#[derive(Debug, Default, PartialEq)]
pub struct Wanted {
    pub channel: String,
    pub targets: Vec<String>,
    pub components: Vec<String>,
}

/// The `[toolchain]` table of `rust-toolchain.toml`: `channel`, `targets`, `components`
/// (string arrays on one or several lines).
pub fn parse_toolchain_toml(text: &str) -> Result<Wanted> {
    let mut w = Wanted::default();
    // Join continued arrays onto their key's line.
    let mut logical: Vec<String> = Vec::new();
    let mut open = false;
    for line in text.lines() {
        let l = line.split('#').next().unwrap_or("").trim();
        if l.is_empty() {
            continue;
        }
        if open {
            if let Some(last) = logical.last_mut() {
                last.push(' ');
                last.push_str(l);
            }
        } else {
            logical.push(l.to_string());
        }
        open = logical
            .last()
            .is_some_and(|s| s.matches('[').count() > s.matches(']').count());
    }
    let mut section = String::new();
    for l in logical {
        if l.starts_with('[') && !l.contains('=') {
            section = l.trim_matches(|c| c == '[' || c == ']').trim().to_string();
            continue;
        }
        if section != "toolchain" {
            continue;
        }
        let Some((k, v)) = l.split_once('=') else {
            continue;
        };
        let strings = || -> Vec<String> {
            v.split(['"', '\''])
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect()
        };
        match k.trim() {
            "channel" => w.channel = strings().into_iter().next().unwrap_or_default(),
            "targets" => w.targets = strings(),
            "components" => w.components = strings(),
            _ => {}
        }
    }
    if w.channel.is_empty() {
        return Err("rust-toolchain.toml: no `channel` in [toolchain]".into());
    }
    Ok(w)
}

/// What is missing, given rustup's `--installed` lists. Components are listed by rustup
/// with the host triple appended (`llvm-tools-x86_64-unknown-linux-gnu`) except the
/// target-independent ones (`rust-src`).
pub fn missing(
    w: &Wanted,
    targets: &str,
    components: &str,
    host: &str,
) -> (Vec<String>, Vec<String>) {
    let have_t: Vec<&str> = targets.split_whitespace().collect();
    let have_c: Vec<&str> = components.split_whitespace().collect();
    let mt = w
        .targets
        .iter()
        .filter(|t| !have_t.contains(&t.as_str()))
        .cloned()
        .collect();
    let mc = w
        .components
        .iter()
        .filter(|c| {
            let with_host = format!("{c}-{host}");
            // `llvm-tools-preview` is the old name of `llvm-tools`.
            let renamed = format!("{}-{host}", c.trim_end_matches("-preview"));
            !have_c
                .iter()
                .any(|h| *h == c.as_str() || *h == with_host || *h == renamed)
        })
        .cloned()
        .collect();
    (mt, mc)
}

/// The toolchain cargo runs us with: rustup's proxy says so in `RUSTUP_TOOLCHAIN`; else
/// the channel of `rust-toolchain.toml`.
fn active_toolchain(w: &Wanted) -> String {
    std::env::var("RUSTUP_TOOLCHAIN")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| w.channel.clone())
}

fn host_triple() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    Command::new(rustc)
        .arg("-vV")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        })
        .unwrap_or_else(|| "x86_64-unknown-linux-gnu".into())
}

/// Runs `rustup` and returns its stdout, or a message naming the command.
fn rustup_out(rustup: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(rustup)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {} {}: {e}", rustup.display(), args.join(" ")))?;
    if !out.status.success() {
        return Err(format!(
            "`rustup {}` failed ({}):\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The rustup commands that make the toolchain complete (empty when it is).
pub fn plan(rustup: &Path, w: &Wanted, toolchain: &str, host: &str) -> Result<Vec<Vec<String>>> {
    let t = rustup_out(
        rustup,
        &["target", "list", "--installed", "--toolchain", toolchain],
    )?;
    let c = rustup_out(
        rustup,
        &["component", "list", "--installed", "--toolchain", toolchain],
    )?;
    let (mt, mc) = missing(w, &t, &c, host);
    let mut cmds = Vec::new();
    for (kind, names) in [("target", mt), ("component", mc)] {
        if !names.is_empty() {
            let mut v: Vec<String> = vec![
                kind.into(),
                "add".into(),
                "--toolchain".into(),
                toolchain.into(),
            ];
            v.extend(names);
            cmds.push(v);
        }
    }
    Ok(cmds)
}

/// Makes sure the toolchain has what `rust-toolchain.toml` names, with the `rustup` at
/// `rustup`: adds what is missing when `install` is set, else fails naming the commands.
/// Returns the commands it ran.
pub fn ensure_with(rustup: &Path, toml: &str, install: bool) -> Result<Vec<String>> {
    let w = parse_toolchain_toml(toml)?;
    let toolchain = active_toolchain(&w);
    let cmds = plan(rustup, &w, &toolchain, &host_triple())?;
    let lines: Vec<String> = cmds
        .iter()
        .map(|c| format!("rustup {}", c.join(" ")))
        .collect();
    if cmds.is_empty() {
        return Ok(lines);
    }
    if !install {
        return Err(format!(
            "the Rust toolchain {toolchain} lacks what rust-toolchain.toml names (--check: not installing). Add it with:\n    {}",
            lines.join("\n    ")
        ));
    }
    for (c, line) in cmds.iter().zip(&lines) {
        eprintln!("xtask deps: {line}");
        let args: Vec<&str> = c.iter().map(String::as_str).collect();
        rustup_out(rustup, &args).map_err(|e| {
            format!("{e}\nCould not complete the Rust toolchain; run `{line}` by hand, then the command again.")
        })?;
    }
    // What rustup claims to have added must now be there.
    let left = plan(rustup, &w, &toolchain, &host_triple())?;
    if !left.is_empty() {
        return Err(format!(
            "rustup ran but the toolchain still lacks: {}",
            left.iter()
                .map(|c| c.join(" "))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    Ok(lines)
}

/// `deps`' Rust step: the toolchain of the workspace's `rust-toolchain.toml`. Without rustup
/// (a distribution's Rust), nothing can be added: the targets must be there already, which
/// the kernel build then finds out.
pub fn ensure(install: bool) -> Result<Vec<String>> {
    let toml_path = root().join("rust-toolchain.toml");
    let toml =
        std::fs::read_to_string(&toml_path).map_err(|e| format!("{}: {e}", toml_path.display()))?;
    let rustup = std::env::var_os("RUSTUP")
        .map(std::path::PathBuf::from)
        .filter(|p| p.is_file())
        .or_else(|| which("rustup"));
    let Some(rustup) = rustup else {
        eprintln!(
            "xtask deps: rustup not found: cannot check the toolchain's targets (rust-toolchain.toml names them; install rustup from https://rustup.rs)"
        );
        return Ok(Vec::new());
    };
    ensure_with(&rustup, &toml, install)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOML: &str = "[toolchain]\nchannel = \"stable\"\ncomponents = [\"rust-src\", \"llvm-tools\",\n  \"clippy\"]  # lints\ntargets = [\"x86_64-unknown-none\", \"x86_64-unknown-linux-musl\"]\nprofile = \"minimal\"\n";
    const HOST: &str = "x86_64-unknown-linux-gnu";

    #[test]
    fn parses_the_workspace_toolchain_file() {
        let w = parse_toolchain_toml(TOML).unwrap();
        assert_eq!(w.channel, "stable");
        assert_eq!(w.components, ["rust-src", "llvm-tools", "clippy"]);
        assert_eq!(
            w.targets,
            ["x86_64-unknown-none", "x86_64-unknown-linux-musl"]
        );
        // The real file parses and names the kernel's target.
        let real = std::fs::read_to_string(root().join("rust-toolchain.toml")).unwrap();
        let r = parse_toolchain_toml(&real).unwrap();
        assert!(
            r.targets.iter().any(|t| t == "x86_64-unknown-none"),
            "{r:?}"
        );
        assert!(parse_toolchain_toml("[toolchain]\ntargets = []\n").is_err());
    }

    #[test]
    fn components_match_with_and_without_the_host_triple() {
        let w = parse_toolchain_toml(TOML).unwrap();
        let (t, c) = missing(
            &w,
            "x86_64-unknown-linux-gnu\nx86_64-unknown-none\n",
            "cargo-x86_64-unknown-linux-gnu\nrust-src\nclippy-x86_64-unknown-linux-gnu\n",
            HOST,
        );
        assert_eq!(t, ["x86_64-unknown-linux-musl"]);
        assert_eq!(c, ["llvm-tools"]);
    }

    /// A stand-in for rustup's command line: answers `target|component list --installed`
    /// from two files, records every call, and `add` appends to the files.
    fn fake_rustup(dir: &Path, targets: &str, components: &str) -> std::path::PathBuf {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(dir.join("targets"), targets).unwrap();
        std::fs::write(dir.join("components"), components).unwrap();
        let script = dir.join("rustup");
        let d = dir.display();
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"$*\" >> {d}/calls\nkind=$1; verb=$2; shift 2\n\
                 case \"$verb\" in\n  list) cat {d}/${{kind}}s ;;\n\
                 add) shift 2; for x in \"$@\"; do echo \"$x\" >> {d}/${{kind}}s; done ;;\n\
                 *) exit 1 ;;\nesac\n"
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        script
    }

    fn tempdir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("adros-xtask-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn check_names_the_rustup_commands_for_missing_targets_without_running_them() {
        let d = tempdir("tc-check");
        let rustup = fake_rustup(
            &d,
            "x86_64-unknown-linux-gnu\n",
            "rust-src\nclippy-x86_64-unknown-linux-gnu\nllvm-tools-x86_64-unknown-linux-gnu\n",
        );
        let err = ensure_with(&rustup, TOML, false).unwrap_err();
        assert!(
            err.contains("rustup target add --toolchain")
                && err.contains("x86_64-unknown-none x86_64-unknown-linux-musl"),
            "{err}"
        );
        let calls = std::fs::read_to_string(d.join("calls")).unwrap();
        assert!(!calls.contains(" add"), "--check ran an install: {calls}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn install_adds_exactly_the_missing_targets_and_components_then_finds_nothing_to_do() {
        let d = tempdir("tc-install");
        let rustup = fake_rustup(
            &d,
            "x86_64-unknown-linux-gnu\n",
            "cargo-x86_64-unknown-linux-gnu\n",
        );
        let ran = ensure_with(&rustup, TOML, true).unwrap();
        assert_eq!(ran.len(), 2, "{ran:?}");
        assert!(
            ran[0].starts_with("rustup target add --toolchain ")
                && ran[0].ends_with(" x86_64-unknown-none x86_64-unknown-linux-musl"),
            "{ran:?}"
        );
        assert!(ran[1].ends_with(" rust-src llvm-tools clippy"), "{ran:?}");
        // A second run has nothing to add.
        assert!(ensure_with(&rustup, TOML, true).unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&d);
    }
}
