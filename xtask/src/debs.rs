//! Debian packages for the initrd (`cargo xtask run --add-deb PKG`): the packages named and
//! everything they depend on, fetched with `apt-get download` into `~/.cache/adros/debs/`
//! and unpacked with `dpkg-deb -x` into a tree under `<target>/debroot/` — never installed
//! on the host, no maintainer scripts run. The initrd packer walks that tree like the
//! repository's `initrd/` directory, so dynamically linked programs arrive with their own
//! `ld-linux-x86-64.so.2`, glibc and libraries.
//!
//! Dependencies are resolved from `apt-cache depends` (Depends and Pre-Depends; of
//! alternatives `a | b` the first that exists; a virtual package by its first provider).
//! Packages only needed to *install* packages — whose maintainer scripts never run here —
//! are left out: [`INSTALL_ONLY`].

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{Result, spinner, target_dir, which};

/// Packages that exist to install other packages (dpkg's tools and what their scripts call).
pub const INSTALL_ONLY: &[&str] = &["dpkg", "debconf", "install-info", "debianutils"];

fn cache_dir() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".cache/adros/debs")
}

/// One package's dependencies: each inner list is a set of alternatives, in order.
type Deps = BTreeMap<String, Vec<Vec<String>>>;

/// Parses `apt-cache depends --no-recommends … PKG…` output. A line `pkg` starts a package;
/// `  Depends: x` is a dependency, ` |Depends: a` says "a, or the next one"; lines indented
/// four spaces under a `<virtual>` dependency are its providers, which replace it.
pub fn parse_depends(out: &str) -> Deps {
    let mut deps: Deps = BTreeMap::new();
    let mut cur: Option<String> = None;
    // Alternatives being collected (after a " |" line).
    let mut group: Vec<String> = Vec::new();
    let mut last_virtual = false;
    // Whether the last dependency line said "or the next one".
    let mut open = false;
    for line in out.lines() {
        if !line.starts_with(' ') {
            let name = line.trim();
            if name.is_empty() || name.starts_with('<') {
                cur = None;
            } else {
                deps.entry(name.to_string()).or_default();
                cur = Some(name.to_string());
            }
            group.clear();
            continue;
        }
        let Some(pkg) = &cur else { continue };
        if let Some(provider) = line.strip_prefix("    ") {
            // A provider of the virtual package just named.
            if !last_virtual {
                continue;
            }
            if open {
                group.push(provider.trim().to_string());
            } else if let Some(alts) = deps.get_mut(pkg).and_then(|d| d.last_mut()) {
                alts.push(provider.trim().to_string());
            }
            continue;
        }
        let (or_next, rest) = match line.strip_prefix(" |") {
            Some(r) => (true, r),
            None => (false, line.trim_start()),
        };
        let Some((kind, target)) = rest.split_once(':') else {
            continue;
        };
        if !matches!(kind.trim(), "Depends" | "PreDepends") {
            if !or_next {
                group.clear();
            }
            last_virtual = false;
            open = or_next;
            continue;
        }
        open = or_next;
        let target = target.trim();
        last_virtual = target.starts_with('<');
        if !last_virtual {
            group.push(target.to_string());
        }
        if or_next {
            continue;
        }
        let alts = std::mem::take(&mut group);
        deps.get_mut(pkg).expect("current package").push(alts);
    }
    // A virtual dependency with no real alternative and no provider resolves to nothing.
    for d in deps.values_mut() {
        d.retain(|alts| !alts.is_empty());
    }
    deps
}

fn apt_depends(pkgs: &[String]) -> Result<Deps> {
    let out = Command::new("apt-cache")
        .args([
            "depends",
            "--no-recommends",
            "--no-suggests",
            "--no-conflicts",
            "--no-breaks",
            "--no-replaces",
            "--no-enhances",
        ])
        .args(pkgs)
        .output()
        .map_err(|e| format!("running apt-cache: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "apt-cache depends {} failed: {} (is the name right? run `apt-get update` if the package lists are empty)",
            pkgs.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(parse_depends(&String::from_utf8_lossy(&out.stdout)))
}

/// The packages named and everything they need, sorted.
pub fn closure(pkgs: &[String]) -> Result<Vec<String>> {
    let mut have: BTreeSet<String> = BTreeSet::new();
    let mut todo: Vec<String> = pkgs.to_vec();
    while !todo.is_empty() {
        let batch: Vec<String> = std::mem::take(&mut todo)
            .into_iter()
            .filter(|p| !have.contains(p))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if batch.is_empty() {
            break;
        }
        let deps = apt_depends(&batch)?;
        for p in &batch {
            if !deps.contains_key(p) {
                return Err(format!(
                    "Debian has no package {p:?} (apt-cache knows nothing of it; check the name or run `apt-get update`)"
                ));
            }
        }
        for (p, d) in deps {
            have.insert(p);
            for alts in d {
                // The first alternative apt knows; if it is already in, so is the choice.
                if alts.iter().any(|a| have.contains(a) || todo.contains(a)) {
                    continue;
                }
                if let Some(first) = alts
                    .into_iter()
                    .find(|a| !INSTALL_ONLY.contains(&a.as_str()))
                {
                    todo.push(first);
                }
            }
        }
    }
    Ok(have.into_iter().collect())
}

/// `pkg=version` for each package: the newest version a configured archive has (the host may
/// have a newer one installed from somewhere `apt-get download` cannot fetch).
fn pinned(pkgs: &[String]) -> Result<Vec<String>> {
    let out = Command::new("apt-cache")
        .arg("madison")
        .args(pkgs)
        .output()
        .map_err(|e| format!("running apt-cache madison: {e}"))?;
    let mut newest: BTreeMap<String, String> = BTreeMap::new();
    // "  libc6 | 2.36-9+deb12u14 | http://deb.debian.org/debian bookworm/main amd64 Packages",
    // newest first.
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = l.split('|').map(str::trim).collect();
        if f.len() == 3 && f[2].ends_with("Packages") && !newest.contains_key(f[0]) {
            newest.insert(f[0].to_string(), f[1].to_string());
        }
    }
    pkgs.iter()
        .map(|p| {
            newest.get(p).map(|v| format!("{p}={v}")).ok_or_else(|| {
                format!("no archive offers {p} for download (apt-cache madison {p}; run `apt-get update`?)")
            })
        })
        .collect()
}

/// Downloads (into the cache) the `.deb` of each package not cached yet; returns their paths.
fn download(pkgs: &[String]) -> Result<Vec<PathBuf>> {
    let dir = cache_dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let pinned = pinned(pkgs)?;
    // apt-get names a download NAME_VERSION_ARCH.deb, with the epoch's ':' as "%3a".
    let find = |pin: &str| -> Option<PathBuf> {
        let (name, version) = pin.split_once('=')?;
        let prefix = format!("{name}_{}_", version.replace(':', "%3a"));
        std::fs::read_dir(&dir)
            .ok()?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .find(|f| f.starts_with(&prefix) && f.ends_with(".deb"))
            .map(|f| dir.join(f))
    };
    let missing: Vec<&String> = pinned.iter().filter(|p| find(p).is_none()).collect();
    if !missing.is_empty() {
        let pb = spinner(format!(
            "initrd: apt-get download of {} Debian packages",
            missing.len()
        ));
        let out = Command::new("apt-get")
            .arg("download")
            .args(&missing)
            .current_dir(&dir)
            .output()
            .map_err(|e| format!("running apt-get: {e}"))?;
        pb.finish_and_clear();
        if !out.status.success() {
            return Err(format!(
                "apt-get download failed: {} (the Debian archive must be reachable)",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    pinned
        .iter()
        .map(|p| find(p).ok_or_else(|| format!("apt-get download did not fetch {p}")))
        .collect()
}

/// Fetches `pkgs` with their dependencies and unpacks them into one tree, returned. The tree
/// is cached by the exact set of `.deb` files.
pub fn stage(pkgs: &[String]) -> Result<PathBuf> {
    for tool in ["apt-cache", "apt-get", "dpkg-deb"] {
        if which(tool).is_none() {
            return Err(format!(
                "--add-deb needs {tool} (Debian's apt and dpkg): run on Debian or Ubuntu"
            ));
        }
    }
    let all = closure(pkgs)?;
    let debs = download(&all)?;
    let mut h = DefaultHasher::new();
    for d in &debs {
        d.file_name().hash(&mut h);
    }
    let root = target_dir()
        .join("debroot")
        .join(format!("{:016x}", h.finish()));
    let done = root.with_extension("complete");
    if done.is_file() && root.is_dir() {
        return Ok(root);
    }
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).map_err(|e| format!("creating {}: {e}", root.display()))?;
    let pb = spinner(format!("initrd: unpacking {} Debian packages", debs.len()));
    for d in &debs {
        let out = Command::new("dpkg-deb")
            .arg("-x")
            .arg(d)
            .arg(&root)
            .output()
            .map_err(|e| format!("running dpkg-deb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "dpkg-deb -x {} failed: {}",
                d.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    prune(&root)?;
    pb.finish_and_clear();
    std::fs::write(&done, all.join("\n"))
        .map_err(|e| format!("writing {}: {e}", done.display()))?;
    eprintln!(
        "xtask: {} Debian packages for {} unpacked in {}",
        all.len(),
        pkgs.join(" "),
        root.display()
    );
    Ok(root)
}

/// Drops documentation, manual pages and translations: nothing runs them, and they would
/// double the initrd.
fn prune(root: &Path) -> Result<()> {
    for d in [
        "usr/share/doc",
        "usr/share/man",
        "usr/share/info",
        "usr/share/locale",
        "usr/share/lintian",
    ] {
        let p = root.join(d);
        if p.exists() {
            std::fs::remove_dir_all(&p).map_err(|e| format!("removing {}: {e}", p.display()))?;
        }
    }
    Ok(())
}

/// Debian's arm64 `busybox-static` (issue 19's aarch64 userland), fetched once into
/// `~/.cache/adros/debs-arm64/`: `apt-get update` and `apt-get download` with that directory
/// as apt's list and archive cache and arm64 as the only architecture (so the host's own apt
/// state and `dpkg` architectures are left alone), unpacked with `dpkg-deb -x`, never
/// installed. Returns the unpacked `bin/busybox`.
pub fn arm64_busybox() -> Result<PathBuf> {
    let dir = cache_dir().with_file_name("debs-arm64");
    let busybox = dir.join("root/bin/busybox");
    if busybox.is_file() {
        return Ok(busybox);
    }
    for d in ["lists/partial", "archives/partial", "deb"] {
        std::fs::create_dir_all(dir.join(d))
            .map_err(|e| format!("creating {}: {e}", dir.join(d).display()))?;
    }
    let apt = |args: &[&str]| -> Result<()> {
        let out = Command::new("apt-get")
            .current_dir(dir.join("deb"))
            .args([
                "-q",
                "-o",
                &format!("Dir::State::Lists={}", dir.join("lists").display()),
                "-o",
                &format!("Dir::Cache={}", dir.display()),
                "-o",
                "Dir::Cache::pkgcache=",
                "-o",
                "Dir::Cache::srcpkgcache=",
                "-o",
                "APT::Architecture=arm64",
                "-o",
                "APT::Architectures::=arm64",
            ])
            .args(args)
            .output()
            .map_err(|e| format!("cannot run apt-get: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "apt-get {} (arm64) failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(())
    };
    let pb = spinner("fetching Debian's arm64 busybox-static (apt-get download)");
    let fetched = apt(&["update"]).and_then(|()| apt(&["download", "busybox-static"]));
    pb.finish_and_clear();
    fetched?;
    let deb = std::fs::read_dir(dir.join("deb"))
        .map_err(|e| format!("{}: {e}", dir.join("deb").display()))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or("apt-get download busybox-static (arm64) left no .deb")?;
    let st = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(dir.join("root"))
        .status()
        .map_err(|e| format!("cannot run dpkg-deb: {e}"))?;
    if !st.success() || !busybox.is_file() {
        return Err(format!("dpkg-deb -x {} gave no bin/busybox", deb.display()));
    }
    Ok(busybox)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_alternatives_and_virtual_packages() {
        let out = "python3.11\n  Depends: python3.11-minimal\n |Depends: media-types\n  Depends: mime-support\n  Breaks: python3-all\n  Recommends: ca-certificates\nfoo\n  PreDepends: libc6\n  Depends: <awk>\n    mawk\n    gawk\n  Depends: <nothing>\n";
        let d = parse_depends(out);
        assert_eq!(
            d["python3.11"],
            vec![
                vec!["python3.11-minimal".to_string()],
                vec!["media-types".to_string(), "mime-support".to_string()],
            ]
        );
        assert_eq!(
            d["foo"],
            vec![
                vec!["libc6".to_string()],
                vec!["mawk".to_string(), "gawk".to_string()],
            ]
        );
    }
}
