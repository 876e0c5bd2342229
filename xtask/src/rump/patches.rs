//! Our NetBSD source patches (`buildrump/patches/netbsd/`): the series, and the patched copy
//! of the tree a target that takes any builds from.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use super::build::Builder;
use super::*;

/// Our patches to NetBSD source files (unified diffs, `patch -p1` from the tree's root) and
/// `series`, which lists them in order with the targets that take each.
pub(super) const NETBSD_PATCH_DIR: &str = "buildrump/patches/netbsd";

/// One NetBSD source patch from `series`.
pub(super) struct NetbsdPatch {
    /// File name in `NETBSD_PATCH_DIR`.
    pub(super) name: String,
    pub(super) path: PathBuf,
    pub(super) targets: Vec<String>,
}

/// All patches in `buildrump/patches/netbsd/series`, in order; checks that every listed file
/// exists, names real targets, and that no `.patch` file in the directory is left out.
pub(super) fn netbsd_patch_series() -> Result<Vec<NetbsdPatch>> {
    let dir = root().join(NETBSD_PATCH_DIR);
    let series = dir.join("series");
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let text = fs::read_to_string(&series).map_err(|e| {
        format!(
            "{}: {e} (it lists the NetBSD patches in {} with the targets that take each)",
            series.display(),
            dir.display()
        )
    })?;
    let mut v = Vec::new();
    for (n, l) in text.lines().enumerate() {
        let l = l.split('#').next().unwrap_or("").trim();
        if l.is_empty() {
            continue;
        }
        let mut w = l.split_whitespace();
        let name = w.next().unwrap_or_default().to_string();
        let targets: Vec<String> = w.map(str::to_string).collect();
        let at = format!("{}:{}", series.display(), n + 1);
        if targets.is_empty() {
            return Err(format!(
                "{at}: {name} names no target: list the targets that take it (host, kernel, posix)"
            ));
        }
        for t in &targets {
            Target::parse(t).map_err(|e| format!("{at}: {e}"))?;
        }
        let path = dir.join(&name);
        if !path.is_file() {
            return Err(format!("{at}: {} does not exist", path.display()));
        }
        v.push(NetbsdPatch {
            name,
            path,
            targets,
        });
    }
    for e in fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
    {
        let f = e.file_name().to_string_lossy().into_owned();
        if f.ends_with(".patch") && !v.iter().any(|p| p.name == f) {
            return Err(format!(
                "{}: {f} is not listed: add it with the targets that take it (or delete it)",
                series.display()
            ));
        }
    }
    Ok(v)
}

/// The NetBSD source patches target `t` takes, in the order they are applied.
pub(super) fn netbsd_patches(t: Target) -> Result<Vec<NetbsdPatch>> {
    Ok(netbsd_patch_series()?
        .into_iter()
        .filter(|p| p.targets.iter().any(|x| x == t.name()))
        .collect())
}

/// The files a `-p1` unified diff changes, relative to the tree's root (from its `+++` lines).
pub(super) fn patched_files(p: &NetbsdPatch) -> Result<Vec<PathBuf>> {
    let text = fs::read_to_string(&p.path).map_err(|e| format!("{}: {e}", p.path.display()))?;
    let mut v = Vec::new();
    for l in text.lines() {
        let Some(rest) = l.strip_prefix("+++ ") else {
            continue;
        };
        let name = rest.split('\t').next().unwrap_or("").trim();
        if name == "/dev/null" {
            continue;
        }
        let rel: PathBuf = Path::new(name).components().skip(1).collect();
        if rel.as_os_str().is_empty()
            || rel
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(format!(
                "{}: bad file name {name:?} (expected a/… and b/… paths from the NetBSD tree's root, for patch -p1)",
                p.path.display()
            ));
        }
        if !v.contains(&rel) {
            v.push(rel);
        }
    }
    if v.is_empty() {
        return Err(format!(
            "{}: no `+++ b/<file>` line: not a unified diff",
            p.path.display()
        ));
    }
    Ok(v)
}

/// Written last into a patched tree: the hash of the NetBSD commit and the patches applied.
pub(super) const TREE_STAMP: &str = ".adros-netbsd-patches";

impl Builder<'_> {
    /// Makes (or reuses) `<cache dir>/src`: the NetBSD checkout without `.git`, every file a
    /// hard link to the checkout's (a copy where linking fails, e.g. across file systems),
    /// except the files the patches change: those are first replaced by real copies (so that
    /// patching them cannot write through the link into the checkout), then patched.
    pub(super) fn prepare_patched_tree(&mut self, patches: &[NetbsdPatch]) -> Result<PathBuf> {
        let tn = self.t.name();
        let tree = self.dir.join("src");
        let names: Vec<&str> = patches.iter().map(|p| p.name.as_str()).collect();
        let mut h = Fnv::new();
        h.add(self.s.netbsd_commit.as_bytes());
        for p in patches {
            h.add(p.name.as_bytes());
            h.add(&fs::read(&p.path).map_err(|e| format!("{}: {e}", p.path.display()))?);
        }
        let want = format!("{:016x} {}\n", h.0, names.join(" "));
        if fs::read_to_string(tree.join(TREE_STAMP)).is_ok_and(|s| s == want) {
            eprintln!(
                "rump {tn}: NetBSD tree with {} patch(es), reused: {}",
                patches.len(),
                tree.display()
            );
            return Ok(tree);
        }
        if tree.exists() {
            fs::remove_dir_all(&tree).map_err(|e| {
                format!("{}: {e} (remove it by hand and run again)", tree.display())
            })?;
        }
        let t0 = Instant::now();
        eprintln!(
            "rump {tn}: NetBSD tree with patches {}: linking {} into {}",
            names.join(", "),
            self.s.netbsd.display(),
            tree.display()
        );
        let (mut linked, mut copied) = (0u64, 0u64);
        link_tree(&self.s.netbsd, &tree, true, &mut linked, &mut copied)?;
        for p in patches {
            let files = patched_files(p)?;
            for f in &files {
                let q = tree.join(f);
                if q.exists() {
                    unshare(&q)?;
                }
            }
            let mut c = Command::new("patch");
            c.current_dir(&tree)
                .args([
                    "-p1",
                    "--batch",
                    "--forward",
                    "--no-backup-if-mismatch",
                    "--reject-file=-",
                    "-i",
                ])
                .arg(&p.path);
            self.run_logged(&mut c, &format!("patch {}", p.name))
                .map_err(|e| {
                    format!(
                        "NetBSD patch {} does not apply to NetBSD {}: {e}\n\
                         Refresh it against this commit (see buildrump/README.md), or take it out of {NETBSD_PATCH_DIR}/series.",
                        p.path.display(),
                        self.s.netbsd_commit
                    )
                })?;
            for f in &files {
                let (q, orig) = (tree.join(f), self.s.netbsd.join(f));
                if !q.exists() || !orig.exists() {
                    continue;
                }
                use std::os::unix::fs::MetadataExt;
                let nlink = fs::metadata(&q).map(|m| m.nlink()).unwrap_or(0);
                if nlink != 1 || fs::read(&q).ok() == fs::read(&orig).ok() {
                    return Err(format!(
                        "patch {}: {} is unchanged or still shared with the checkout ({} links); check `git -C {} status` and delete {}",
                        p.name,
                        f.display(),
                        nlink,
                        self.s.netbsd.display(),
                        tree.display()
                    ));
                }
            }
            eprintln!(
                "rump {tn}: applied {}: {}",
                p.name,
                files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        fs::write(tree.join(TREE_STAMP), &want).map_err(|e| format!("{}: {e}", tree.display()))?;
        eprintln!(
            "rump {tn}: NetBSD tree ready in {:.1} s: {linked} files hard-linked, {copied} copied",
            t0.elapsed().as_secs_f64()
        );
        Ok(tree)
    }
}

/// Recreates `from` under `to`: directories made, symbolic links copied, files hard-linked
/// (copied when that fails). `top`: skip the checkout's `.git`.
pub(super) fn link_tree(
    from: &Path,
    to: &Path,
    top: bool,
    linked: &mut u64,
    copied: &mut u64,
) -> Result<()> {
    fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    for e in fs::read_dir(from)
        .map_err(|e| format!("{}: {e}", from.display()))?
        .flatten()
    {
        if top && e.file_name() == ".git" {
            continue;
        }
        let (p, q) = (e.path(), to.join(e.file_name()));
        let ft = e.file_type().map_err(|e| format!("{}: {e}", p.display()))?;
        if ft.is_dir() {
            link_tree(&p, &q, false, linked, copied)?;
        } else if ft.is_symlink() {
            let l = fs::read_link(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            std::os::unix::fs::symlink(l, &q).map_err(|e| format!("{}: {e}", q.display()))?;
        } else if fs::hard_link(&p, &q).is_ok() {
            *linked += 1;
        } else {
            fs::copy(&p, &q).map_err(|e| format!("copying {}: {e}", p.display()))?;
            *copied += 1;
        }
    }
    Ok(())
}

/// Replaces a (hard-linked) file by a copy of itself, so that writing it leaves the other
/// links alone.
pub(super) fn unshare(p: &Path) -> Result<()> {
    let err = |e: std::io::Error| format!("{}: {e}", p.display());
    let data = fs::read(p).map_err(err)?;
    let perm = fs::metadata(p).map_err(err)?.permissions();
    fs::remove_file(p).map_err(err)?;
    fs::write(p, data).map_err(err)?;
    fs::set_permissions(p, perm).map_err(err)
}

/// A patched tree in use, with the checks that it stays what it claims to be.
pub(super) struct PatchedTree {
    pub(super) tree: PathBuf,
    pub(super) checkout: PathBuf,
    /// When the tree was finished (its stamp's mtime).
    pub(super) since: std::time::SystemTime,
}

impl PatchedTree {
    /// Checks that no file the tree shares with the checkout has changed since the tree was
    /// made (a build writing into its source tree, or an edit of the checkout in place, would
    /// change both at once).
    pub(super) fn check_untouched(tree: &Path, checkout: &Path) -> Result<PatchedTree> {
        let since = fs::metadata(tree.join(TREE_STAMP))
            .and_then(|m| m.modified())
            .map_err(|e| format!("{}: {e}", tree.join(TREE_STAMP).display()))?;
        let t = PatchedTree {
            tree: tree.to_path_buf(),
            checkout: checkout.to_path_buf(),
            since,
        };
        t.shared_files_unchanged()?;
        Ok(t)
    }

    pub(super) fn shared_files_unchanged(&self) -> Result<()> {
        fn walk(d: &Path, since: std::time::SystemTime, out: &mut Vec<PathBuf>) {
            use std::os::unix::fs::MetadataExt;
            let Ok(rd) = fs::read_dir(d) else { return };
            for e in rd.flatten() {
                let Ok(m) = e.metadata() else { continue };
                if m.is_dir() {
                    walk(&e.path(), since, out);
                } else if m.is_file() && m.nlink() > 1 && m.modified().is_ok_and(|t| t > since) {
                    out.push(e.path());
                }
            }
        }
        let mut changed = Vec::new();
        walk(&self.tree, self.since, &mut changed);
        if changed.is_empty() {
            return Ok(());
        }
        Err(format!(
            "{} file(s) of the patched NetBSD tree {} that are hard links to the checkout {} changed after the tree was made, e.g. {}: the build wrote into its source tree or the checkout was edited in place (both are changed). Check `git -C {} status`, restore it, then delete {} so that it is made again.",
            changed.len(),
            self.tree.display(),
            self.checkout.display(),
            changed[0].display(),
            self.checkout.display(),
            self.tree.display()
        ))
    }

    /// After the build: nothing shared was written, no object was compiled from the unpatched
    /// checkout (the dependency files under `obj/` name every source and header used), and
    /// each patched C file was compiled from the patched tree.
    pub(super) fn check_after_build(
        &self,
        t: Target,
        obj: &Path,
        patches: &[NetbsdPatch],
    ) -> Result<()> {
        self.shared_files_unchanged()?;
        let canon = |p: &Path| {
            let c = fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
            format!("{}/", c.display())
        };
        let (tree, checkout) = (canon(&self.tree), canon(&self.checkout));
        let mut wanted: Vec<(String, Option<PathBuf>)> = Vec::new();
        for p in patches {
            for f in patched_files(p)? {
                if f.extension().is_some_and(|x| x == "c") {
                    wanted.push((format!("{tree}{}", f.display()), None));
                }
            }
        }
        let mut deps = Vec::new();
        find_files(obj, "d", &mut deps);
        let mut from_checkout = Vec::new();
        for d in &deps {
            let Ok(text) = fs::read(d) else { continue };
            let text = String::from_utf8_lossy(&text);
            if text.contains(&checkout) {
                from_checkout.push(d.clone());
            }
            // make writes some sources as `<dir>/../../../kern/x.c` (rumpkern's kern_event.c).
            let normalized: Vec<String> = text
                .split_whitespace()
                .filter(|tok| tok.contains("/../"))
                .map(normalize)
                .collect();
            for (w, found) in wanted.iter_mut() {
                if found.is_none()
                    && (text.contains(w.as_str()) || normalized.iter().any(|n| n == w))
                {
                    *found = Some(d.clone());
                }
            }
        }
        if !from_checkout.is_empty() {
            return Err(format!(
                "{} dependency file(s) under {} name the unpatched checkout {checkout} (e.g. {}): part of the build did not use the patched tree {tree}. Delete {} and run again; if it persists, the build procedure in xtask/src/rump.rs passes the checkout somewhere.",
                from_checkout.len(),
                obj.display(),
                from_checkout[0].display(),
                obj.parent().unwrap_or(obj).display()
            ));
        }
        for (w, found) in &wanted {
            match found {
                Some(d) => eprintln!(
                    "rump {}: compiled from the patched tree: {w} (dependency file {})",
                    t.name(),
                    d.display()
                ),
                None => eprintln!(
                    "rump {}: note: the patched {w} was not compiled for this target (no dependency file names it): does this target need the patch?",
                    t.name()
                ),
            }
        }
        eprintln!(
            "rump {}: patched tree checked: no shared file written, none of {} dependency files names the checkout",
            t.name(),
            deps.len()
        );
        Ok(())
    }
}

/// Files under `d` whose extension is `ext`.
pub(super) fn find_files(d: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(d) else { return };
    for e in rd.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(ft) if ft.is_dir() => find_files(&p, ext, out),
            Ok(ft) if ft.is_file() && p.extension().is_some_and(|x| x == ext) => out.push(p),
            _ => {}
        }
    }
}

/// `path` with `.` and `dir/..` components removed, without looking at the file system.
fn normalize(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "." => {}
            ".." if out.last().is_some_and(|l| !l.is_empty() && *l != "..") => {
                out.pop();
            }
            _ => out.push(c),
        }
    }
    out.join("/")
}

#[cfg(test)]
mod normalize_tests {
    use super::normalize;

    #[test]
    fn dot_dot_components_fold_into_their_parent() {
        assert_eq!(
            normalize("/c/src/sys/rump/librump/rumpkern/../../../kern/kern_event.c"),
            "/c/src/sys/kern/kern_event.c"
        );
        assert_eq!(normalize("/a/./b/../c"), "/a/c");
        assert_eq!(normalize("../x/y"), "../x/y");
    }
}
