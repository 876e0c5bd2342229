//! Running buildrump.sh: the build into a cache directory, its checks, and the components
//! NetBSD's default build skips.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use super::patches::PatchedTree;
use super::*;
use crate::util::spinner;

pub(super) fn lib_path(dest: &Path, name: &str, t: Target) -> PathBuf {
    // Host test binaries are PIE: link the PIC archives there.
    let file = if t == Target::Kernel {
        format!("lib{name}.a")
    } else {
        format!("lib{name}_pic.a")
    };
    dest.join("lib").join(file)
}

pub(super) fn missing_components(dest: &Path, t: Target) -> Result<Vec<String>> {
    Ok(components_for(t)?
        .into_iter()
        .filter(|c| !lib_path(dest, c, t).is_file())
        .collect())
}

/// Builds (or reuses) the components for `t`; returns the `dest/` directory. The build is
/// made in `<cache dir>.partial` and published by renaming it only once [`check_build`]
/// accepts it; a lock serialises `xtask` processes that want the same build (see
/// [`crate::cache`]).
pub fn build(t: Target, s: &Sources, force: bool) -> Result<PathBuf> {
    let dir = cache_dir(t, s)?;
    let stamp = our_files_stamp(t)?;
    let dir = crate::cache::ensure(
        &dir,
        &format!("rump {}", t.name()),
        force,
        |d, fresh| check_build(t, d, &stamp, fresh),
        |work, _| build_into(t, s, work, &stamp),
    )?;
    // Each set of NetBSD patches or flags is a new directory of ~400 MiB: keep a few.
    let tag = format!("-{}-", t.name());
    for r in crate::cache::prune(&dir, |n| n.contains(&tag), KEEP_BUILDS) {
        eprintln!(
            "rump {}: removed {} (an interrupted build, or older than the {KEEP_BUILDS} newest of this target)",
            t.name(),
            r.display()
        );
    }
    Ok(dir.join("dest"))
}

/// Complete builds kept per target in the cache (the one in use among them).
const KEEP_BUILDS: usize = 3;

/// Whether the build in `d` is complete and intact: its `.complete` stamp, every component
/// of `components.txt` present with the size the build recorded, and, for a kernel build
/// just made (`fresh`), no archive that needs the stack protector's runtime. A stamp made
/// from other files under `buildrump/` makes it stale (updated in place) rather than broken.
pub(super) fn check_build(t: Target, d: &Path, stamp: &str, fresh: bool) -> crate::cache::Check {
    use crate::cache::Check;
    let complete = match fs::read_to_string(d.join(".complete")) {
        Ok(c) => c,
        Err(_) => return Check::Broken("no .complete stamp: the build never finished".into()),
    };
    let manifest = fs::read_to_string(d.join("components.txt")).unwrap_or_default();
    let comps = match components_for(t) {
        Ok(c) => c,
        Err(e) => return Check::Broken(e),
    };
    let dest = d.join("dest");
    for c in &comps {
        let p = lib_path(&dest, c, t);
        let Ok(m) = fs::metadata(&p) else {
            return Check::Broken(format!("{} is missing", p.display()));
        };
        // Nothing but the `!<arch>` magic: an update once left libusb and libpci_xhci
        // empty in the host build, and the host tests failed to link (usbd_* undefined).
        if m.len() <= 8 {
            return Check::Broken(format!(
                "{} is an empty archive: the build made nothing for {c}",
                p.display()
            ));
        }
        let recorded = manifest
            .lines()
            .find_map(|l| l.strip_prefix(c.as_str())?.strip_prefix(' '))
            .and_then(|n| n.trim().parse::<u64>().ok());
        match recorded {
            Some(n) if n == m.len() => {}
            Some(n) => {
                return Check::Broken(format!(
                    "{} has {} bytes, the build made {n}",
                    p.display(),
                    m.len()
                ));
            }
            None if complete.lines().next() == Some(stamp) => {
                return Check::Broken(format!(
                    "{c} is not in {}",
                    d.join("components.txt").display()
                ));
            }
            // A component added to components.txt since: the update builds it.
            None => {}
        }
    }
    if t == Target::Kernel
        && fresh
        && let Err(e) = check_no_stack_protector(&dest)
    {
        return Check::Broken(e);
    }
    if complete.lines().next() != Some(stamp) {
        return Check::Stale("files under buildrump/ changed since it was built".into());
    }
    Check::Valid
}

/// Runs the build in `dir` (a fresh directory, or an earlier complete build to update).
pub(super) fn build_into(t: Target, s: &Sources, dir: &Path, stamp: &str) -> Result<()> {
    let dest = dir.join("dest");
    let patches = netbsd_patches(t)?;
    let _ = fs::remove_file(dir.join(".complete"));
    let log_path = dir.join("build.log");
    let log = fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let t0 = Instant::now();
    eprintln!(
        "rump {}: building NetBSD {} with buildrump.sh {} into {} (this takes many minutes the first time; log: {})",
        t.name(),
        &s.netbsd_commit[..s.netbsd_commit.len().min(12)],
        &s.buildrump_commit[..s.buildrump_commit.len().min(12)],
        dir.display(),
        log_path.display()
    );
    let mut b = Builder {
        t,
        s,
        src: s.netbsd.clone(),
        dir: dir.to_path_buf(),
        log,
    };
    let mut tree = None;
    if !patches.is_empty() {
        b.src = b.prepare_patched_tree(&patches)?;
        tree = Some(PatchedTree::check_untouched(&b.src, &s.netbsd)?);
    }
    b.run_buildrump(&["tools", "build"], "buildrump.sh tools build")?;
    if t.kernel_only() {
        b.build_extras()?;
    }
    b.run_buildrump(&["install"], "buildrump.sh install")?;
    let missing = missing_components(&dest, t)?;
    if !missing.is_empty() {
        return Err(format!(
            "rump {}: components missing after the build: {} (see {})",
            t.name(),
            missing.join(", "),
            log_path.display()
        ));
    }
    if let Some(tree) = tree {
        tree.check_after_build(t, &b.obj(), &patches)?;
    }
    let comps = components_for(t)?;
    let mut manifest = String::new();
    for c in &comps {
        let sz = fs::metadata(lib_path(&dest, c, t))
            .map(|m| m.len())
            .unwrap_or(0);
        manifest.push_str(&format!("{c} {sz}\n"));
    }
    fs::write(dir.join("components.txt"), &manifest).map_err(|e| e.to_string())?;
    fs::write(
        dir.join(".complete"),
        format!("{stamp}\nbuilt in {:.0} s\n", t0.elapsed().as_secs_f64()),
    )
    .map_err(|e| e.to_string())?;
    let nlibs = fs::read_dir(dest.join("lib"))
        .map(|r| {
            r.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".a"))
                .count()
        })
        .unwrap_or(0);
    eprintln!(
        "rump {}: built in {:.0} s: {} archives; components: {}",
        t.name(),
        t0.elapsed().as_secs_f64(),
        nlibs,
        comps.join(" ")
    );
    Ok(())
}

pub(super) struct Builder<'a> {
    pub(super) t: Target,
    pub(super) s: &'a Sources,
    /// The NetBSD tree buildrump.sh builds: the checkout, or the patched copy.
    pub(super) src: PathBuf,
    pub(super) dir: PathBuf,
    pub(super) log: fs::File,
}

impl Builder<'_> {
    pub(super) fn obj(&self) -> PathBuf {
        self.dir.join("obj")
    }
    pub(super) fn tools(&self) -> PathBuf {
        self.dir.join("tools")
    }

    /// Runs a command, appending its output to build.log and showing progress.
    pub(super) fn run_logged(&mut self, cmd: &mut Command, what: &str) -> Result<()> {
        let _ = writeln!(self.log, "==> {what}: {cmd:?}");
        let pb = spinner(format!("rump {}: {what}", self.t.name()));
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("{what}: cannot start {:?}: {e}", cmd.get_program()))?;
        let stderr = child.stderr.take().expect("piped");
        let mut log2 = self.log.try_clone().map_err(|e| e.to_string())?;
        let errt = std::thread::spawn(move || {
            let mut tail: Vec<String> = Vec::new();
            for l in BufReader::new(stderr)
                .lines()
                .map_while(std::result::Result::ok)
            {
                let _ = writeln!(log2, "{l}");
                tail.push(l);
                if tail.len() > 40 {
                    tail.remove(0);
                }
            }
            tail
        });
        let mut compiled = 0u64;
        let mut tail: Vec<String> = Vec::new();
        for l in BufReader::new(child.stdout.take().expect("piped"))
            .lines()
            .map_while(std::result::Result::ok)
        {
            let _ = writeln!(self.log, "{l}");
            let tl = l.trim_start();
            if tl.starts_with("compile")
                || tl.starts_with("build ")
                || tl.starts_with("create")
                || tl.starts_with("install")
            {
                compiled += 1;
                pb.set_message(format!(
                    "rump {}: {what}: {compiled} steps, {}",
                    self.t.name(),
                    tl.split_whitespace().last().unwrap_or("")
                ));
            } else if tl.starts_with(">>") || tl.starts_with("===>") {
                pb.set_message(format!("rump {}: {what}: {tl}", self.t.name()));
            }
            tail.push(l);
            if tail.len() > 40 {
                tail.remove(0);
            }
        }
        let status = child.wait().map_err(|e| e.to_string())?;
        let etail = errt.join().unwrap_or_default();
        pb.finish_and_clear();
        if status.success() {
            Ok(())
        } else {
            Err(format!(
                "{what} failed ({status}); last output:\n{}\n{}\nfull log: {}",
                tail.join("\n"),
                etail.join("\n"),
                self.dir.join("build.log").display()
            ))
        }
    }

    pub(super) fn buildrump_cmd(&self) -> Command {
        let mut c = Command::new("sh");
        c.arg(self.s.buildrump.join("buildrump.sh"));
        if self.t.kernel_only() {
            c.arg("-k");
        }
        let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
        c.args(["-q", "-j", &jobs.to_string()]);
        c.arg("-s").arg(&self.src);
        c.arg("-o").arg(self.obj());
        c.arg("-T").arg(self.tools());
        c.arg("-d").arg(self.dir.join("dest"));
        for v in self.t.make_vars() {
            c.args(["-V", v]);
        }
        for f in self.t.cflags() {
            c.arg("-F").arg(format!("CFLAGS={f}"));
        }
        // buildrump.sh refuses to run with these set; the nbmake bootstrap takes HOST_CFLAGS.
        c.env_remove("CFLAGS")
            .env_remove("LDFLAGS")
            .env_remove("AFLAGS")
            .env_remove("CPPFLAGS");
        c.env("HOST_CFLAGS", "-O -fcommon");
        c.current_dir(&self.dir);
        c
    }

    pub(super) fn run_buildrump(&mut self, cmds: &[&str], what: &str) -> Result<()> {
        let mut c = self.buildrump_cmd();
        c.args(cmds);
        self.run_logged(&mut c, what)
    }

    /// `rumpmake` in `dir` with the main build's stage as include root and install target.
    pub(super) fn rumpmake(&mut self, dir: &Path, args: &[String], what: &str) -> Result<()> {
        let stage = self.obj().join("dest.stage");
        let mut c = Command::new(self.tools().join("rumpmake"));
        c.current_dir(dir);
        c.arg(format!("BUILDRUMP_STAGE={}", stage.display()));
        c.arg(format!("DESTDIR={}", stage.display()));
        c.args(args);
        self.run_logged(&mut c, what)
    }

    /// The components NetBSD's default build skips (PCI drivers), our xHCI component, and
    /// libusb rebuilt with our USB.ioconf patch (usb at xhci).
    pub(super) fn build_extras(&mut self) -> Result<()> {
        let ours = root().join("buildrump");
        let pci_mk = format!(
            "RUMPCOMP_MAKEFILEINC_rumpdev_pci={}",
            ours.join("pci.mk").display()
        );
        // Our components are copied into the cache (their objects are written next to them).
        let overlay = self.dir.join("overlay");
        let _ = fs::remove_dir_all(&overlay);
        for c in OUR_COMPONENTS {
            copy_dir(&ours.join("components").join(c), &overlay.join(c))?;
        }
        // libusb: NetBSD's USB.ioconf + our patch, used through IOCONFDIR.
        let usb_overlay = overlay.join("libusb-ioconf");
        fs::create_dir_all(&usb_overlay).map_err(|e| e.to_string())?;
        let orig = self.src.join("sys/rump/dev/lib/libusb/USB.ioconf");
        fs::copy(&orig, usb_overlay.join("USB.ioconf"))
            .map_err(|e| format!("{}: {e}", orig.display()))?;
        let mut patch = Command::new("patch");
        patch
            .current_dir(&usb_overlay)
            .args(["-p0", "-s", "-i"])
            .arg(ours.join("patches/usb-ioconf-xhci.patch"));
        self.run_logged(&mut patch, "patch USB.ioconf for xhci")?;

        let mut dirs: Vec<(PathBuf, Vec<String>)> = EXTRA_NETBSD_DIRS
            .iter()
            .map(|d| (self.src.join(d), vec![pci_mk.clone()]))
            .collect();
        let libusb = self.src.join("sys/rump/dev/lib/libusb");
        // Force libusb's ioconf to be regenerated from the patched file.
        let usb_obj = self.obj().join("sys/rump/dev/lib/libusb");
        for f in [
            "ioconf.c",
            "ioconf.h",
            "ioconf.o",
            "ioconf.pico",
            "locators.h",
        ] {
            let _ = fs::remove_file(usb_obj.join(f));
        }
        dirs.push((libusb, vec![format!("IOCONFDIR={}", usb_overlay.display())]));
        for c in OUR_COMPONENTS {
            dirs.push((overlay.join(c), vec![pci_mk.clone()]));
        }
        for (d, vars) in dirs {
            let name = d
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            for step in ["obj", "dependall", "install"] {
                let mut args = vars.clone();
                args.push(step.into());
                self.rumpmake(&d, &args, &format!("{name} {step}"))?;
            }
        }
        Ok(())
    }
}

pub(super) fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    for e in fs::read_dir(from)
        .map_err(|e| format!("{}: {e}", from.display()))?
        .flatten()
    {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()))?;
        } else {
            fs::copy(&p, to.join(e.file_name())).map_err(|e| format!("{}: {e}", p.display()))?;
        }
    }
    Ok(())
}

/// The kernel build must not reference the stack protector's runtime (one `nm -u` over every
/// archive: given several, it prints `<path>.a:` before each archive's members).
pub(super) fn check_no_stack_protector(dest: &Path) -> Result<()> {
    let lib = dest.join("lib");
    let mut archives: Vec<PathBuf> = fs::read_dir(&lib)
        .map_err(|e| format!("{}: {e}", lib.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "a"))
        .collect();
    archives.sort();
    if archives.is_empty() {
        return Err(format!("no archives in {}", lib.display()));
    }
    let out = Command::new("nm")
        .arg("-u")
        .args(&archives)
        .output()
        .map_err(|e| format!("nm: {e} (install binutils)"))?;
    if !out.status.success() {
        return Err(format!(
            "nm -u failed on the archives in {}: {}",
            lib.display(),
            String::from_utf8_lossy(&out.stderr).trim_end()
        ));
    }
    let mut bad: Vec<String> = Vec::new();
    let mut current = String::new();
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some(a) = l.strip_suffix(".a:") {
            current = format!("{a}.a");
        } else if l.contains("__stack_chk_fail") {
            let name = Path::new(&current)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| current.clone());
            if !bad.contains(&name) {
                bad.push(name);
            }
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "kernel rump archives reference __stack_chk_fail: {}",
            bad.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two archives made with the host's compiler, one needing the stack protector: the
    /// check names that one only.
    #[test]
    fn the_stack_protector_check_names_the_archives_that_need_it() {
        let d = std::env::temp_dir().join(format!("adros-xtask-ssp-{}", std::process::id()));
        let lib = d.join("lib");
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&lib).unwrap();
        let src = d.join("f.c");
        fs::write(
            &src,
            "void g(char *);\nint f(void) { char b[64]; g(b); return b[1]; }\n",
        )
        .unwrap();
        for (name, flag) in [
            ("good", "-fno-stack-protector"),
            ("bad", "-fstack-protector-all"),
        ] {
            let o = d.join(format!("{name}.o"));
            let ok = Command::new("cc")
                .args(["-c", "-O1", flag, "-o"])
                .arg(&o)
                .arg(&src)
                .status()
                .unwrap()
                .success();
            assert!(ok, "cc failed");
            let ok = Command::new("ar")
                .arg("rcs")
                .arg(lib.join(format!("lib{name}.a")))
                .arg(&o)
                .status()
                .unwrap()
                .success();
            assert!(ok, "ar failed");
        }
        let e = check_no_stack_protector(&d).unwrap_err();
        assert!(e.ends_with(": libbad.a"), "{e}");
        fs::remove_file(lib.join("libbad.a")).unwrap();
        check_no_stack_protector(&d).unwrap();
        let _ = fs::remove_dir_all(&d);
    }
}
