//! Build caches that are safe to interrupt and to share between `cargo xtask` processes.
//!
//! A cached build lives in one directory (`<dir>`). It is made in `<dir>.partial` and renamed
//! to `<dir>` only once it is complete and checked, so `<dir>` is either absent or whole; a
//! `<dir>.partial` found later is an interrupted build and is removed before building again
//! from clean. `<dir>.lock` serialises the processes that want the same build: a second one
//! waits (and says so), then finds the first one's result. The lock's file descriptor is
//! inherited by the build's child processes, so when `xtask` itself is killed but a `make`
//! it started lives on, the next `xtask` waits for that `make` instead of building beside it.
//!
//! A build that must be redone because its inputs changed ([`Check::Stale`]) is moved back to
//! `<dir>.partial` and rebuilt there incrementally: absolute paths that the build wrote into
//! its own files (NetBSD's tools and dependency files do) stay valid that way.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use crate::util::Result;

/// What a cached build directory is worth.
#[derive(Debug, PartialEq)]
pub enum Check {
    /// Complete and consistent: use it.
    Valid,
    /// Complete, but made from older inputs: rebuild it in place (incrementally).
    Stale(String),
    /// Incomplete or damaged: never use it; rebuild from clean.
    Broken(String),
}

/// `<dir>` with `suffix` appended to its last component.
fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut s = dir.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Where a build of `dir` is made.
pub fn partial_dir(dir: &Path) -> PathBuf {
    sibling(dir, ".partial")
}

/// An exclusive lock on a file, held until dropped.
pub struct Lock {
    _file: File,
}

/// Takes the lock of the build in `dir` (`<dir>.lock`), waiting with a message when another
/// process holds it. Child processes started while it is held hold it too, until they exit.
pub fn lock(dir: &Path, what: &str) -> Result<Lock> {
    let l = lock_file(&sibling(dir, ".lock"), what)?;
    inherit_into_children(&l._file);
    Ok(l)
}

/// Takes an exclusive lock on `path` (created if needed), waiting with a message when
/// another process holds it.
pub fn lock_file(path: &Path, what: &str) -> Result<Lock> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            eprintln!(
                "{what}: another cargo xtask holds {}: waiting for it to finish",
                path.display()
            );
            let t0 = std::time::Instant::now();
            file.lock()
                .map_err(|e| format!("locking {}: {e}", path.display()))?;
            eprintln!(
                "{what}: the other cargo xtask finished after {:.0} s",
                t0.elapsed().as_secs_f64()
            );
        }
        Err(fs::TryLockError::Error(e)) => {
            return Err(format!("locking {}: {e}", path.display()));
        }
    }
    Ok(Lock { _file: file })
}

/// Lets child processes inherit the lock's descriptor (Rust opens files close-on-exec).
fn inherit_into_children(f: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: F_SETFD on a descriptor we own only changes its close-on-exec flag.
    unsafe {
        libc::fcntl(f.as_raw_fd(), libc::F_SETFD, 0);
    }
}

fn remove(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!(
            "cannot remove {}: {e} (remove it by hand, then run the command again)",
            dir.display()
        )),
    }
}

/// Returns `dir` holding a complete build: the cached one when `check` finds it
/// [`Check::Valid`] (and `force` is not set), else one made by `build` in `<dir>.partial`
/// (its argument; the second says whether it holds an earlier complete build to update) and
/// published by renaming once `check` finds it valid. `check`'s second argument is set for a
/// build just made: the time for checks too slow to repeat on every use.
pub fn ensure(
    dir: &Path,
    what: &str,
    force: bool,
    check: impl Fn(&Path, bool) -> Check,
    build: impl FnOnce(&Path, bool) -> Result<()>,
) -> Result<PathBuf> {
    let _lock = lock(dir, what)?;
    let partial = partial_dir(dir);
    if partial.exists() {
        eprintln!(
            "{what}: {} is an interrupted build: removing it and building again from clean",
            partial.display()
        );
        remove(&partial)?;
    }
    let mut incremental = false;
    if dir.exists() {
        match check(dir, false) {
            Check::Valid if !force => {
                eprintln!("{what}: cache hit: {}", dir.display());
                return Ok(dir.to_path_buf());
            }
            Check::Valid => {
                eprintln!("{what}: --force: rebuilding {}", dir.display());
                incremental = true;
            }
            Check::Stale(why) => {
                eprintln!(
                    "{what}: {} is out of date ({why}): updating it",
                    dir.display()
                );
                incremental = true;
            }
            Check::Broken(why) => {
                eprintln!(
                    "{what}: the cached build {} is broken ({why}): building it again from clean",
                    dir.display()
                );
                remove(dir)?;
            }
        }
        if incremental {
            fs::rename(dir, &partial)
                .map_err(|e| format!("renaming {} to {}: {e}", dir.display(), partial.display()))?;
        }
    }
    fs::create_dir_all(&partial).map_err(|e| format!("{}: {e}", partial.display()))?;
    build(&partial, incremental)?;
    match check(&partial, true) {
        Check::Valid => {}
        Check::Stale(why) | Check::Broken(why) => {
            return Err(format!(
                "{what}: the build in {} finished but is not usable: {why}",
                partial.display()
            ));
        }
    }
    fs::rename(&partial, dir)
        .map_err(|e| format!("renaming {} to {}: {e}", partial.display(), dir.display()))?;
    Ok(dir.to_path_buf())
}

/// Removes builds beside `dir` that `ours` claims (by directory name) and nobody holds:
/// interrupted ones (`*.partial`) and all but the `keep` newest complete ones. `dir` itself
/// is never removed. Returns what was removed.
pub fn prune(dir: &Path, ours: impl Fn(&str) -> bool, keep: usize) -> Vec<PathBuf> {
    let Some(base) = dir.parent() else {
        return Vec::new();
    };
    let Ok(rd) = fs::read_dir(base) else {
        return Vec::new();
    };
    let mut complete: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
    let mut partial: Vec<PathBuf> = Vec::new();
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let p = e.path();
        if !p.is_dir() || p == dir || !ours(&name) {
            continue;
        }
        if let Some(final_name) = name.strip_suffix(".partial") {
            if base.join(final_name) != dir {
                partial.push(base.join(final_name));
            }
        } else if let Ok(t) = fs::metadata(p.join(".complete")).and_then(|m| m.modified()) {
            complete.push((t, p));
        }
    }
    complete.sort_by_key(|c| std::cmp::Reverse(c.0));
    let mut removed = Vec::new();
    // `dir` counts as one of the kept.
    let doomed = complete
        .into_iter()
        .skip(keep.saturating_sub(1))
        .map(|(_, p)| (p, false));
    for (d, is_partial) in doomed.chain(partial.into_iter().map(|p| (p, true))) {
        // Only what no other process is building or waiting for.
        let lock_path = sibling(&d, ".lock");
        let Ok(f) = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
        else {
            continue;
        };
        if f.try_lock().is_err() {
            continue;
        }
        let target = if is_partial {
            partial_dir(&d)
        } else {
            d.clone()
        };
        if fs::remove_dir_all(&target).is_ok() {
            removed.push(target);
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    //! The kill and concurrency tests run the cache in child processes: this test binary
    //! started again with `ADROS_CACHE_TEST_CHILD` set runs [`child_build`] instead of a test.
    use super::*;
    use std::process::{Child, Command};
    use std::time::{Duration, Instant};

    /// A build of a few "archives", one at a time, slow enough to be interrupted; it counts
    /// its runs in `<dir>/../runs` and refuses to start on leftovers of another build.
    fn fake_build(work: &Path, step: Duration) -> Result<()> {
        let runs = work.parent().unwrap().join("runs");
        let n = fs::read_to_string(&runs).map(|s| s.len()).unwrap_or(0);
        fs::write(&runs, "x".repeat(n + 1)).unwrap();
        if work.join("lib").exists() {
            return Err("started on a half-made directory".into());
        }
        fs::create_dir_all(work.join("lib")).unwrap();
        for i in 0..4 {
            std::thread::sleep(step);
            fs::write(work.join(format!("lib/lib{i}.a")), format!("archive {i}")).unwrap();
        }
        fs::write(work.join(".complete"), "v1").unwrap();
        Ok(())
    }

    fn fake_check(d: &Path, _fresh: bool) -> Check {
        let stamp = fs::read_to_string(d.join(".complete")).unwrap_or_default();
        if stamp.is_empty() {
            return Check::Broken("no .complete stamp".into());
        }
        for i in 0..4 {
            if fs::read_to_string(d.join(format!("lib/lib{i}.a"))).ok()
                != Some(format!("archive {i}"))
            {
                return Check::Broken(format!("lib{i}.a missing"));
            }
        }
        if stamp == "v1" {
            Check::Valid
        } else {
            Check::Stale(format!("stamp {stamp}"))
        }
    }

    /// Run by itself: one build into a fresh directory. As a child of the tests below: their
    /// build into the directory they name.
    #[test]
    fn child_build() {
        let dir = match std::env::var_os("ADROS_CACHE_TEST_CHILD") {
            Some(d) => PathBuf::from(d),
            None => tempdir("cache-one").join("build"),
        };
        let step = Duration::from_millis(
            std::env::var("ADROS_CACHE_TEST_STEP_MS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(50),
        );
        ensure(&dir, "test", false, fake_check, |w, _| fake_build(w, step)).unwrap();
        assert_eq!(fake_check(&dir, false), Check::Valid);
    }

    fn spawn_child(dir: &Path, step_ms: u64) -> Child {
        Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "cache::tests::child_build",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("ADROS_CACHE_TEST_CHILD", dir)
            .env("ADROS_CACHE_TEST_STEP_MS", step_ms.to_string())
            // Its libtest report must not be read as the parent's.
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    }

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("adros-xtask-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn runs(base: &Path) -> usize {
        fs::read_to_string(base.join("runs"))
            .map(|s| s.len())
            .unwrap_or(0)
    }

    #[test]
    fn a_build_killed_part_way_is_never_used_and_the_next_one_starts_from_clean() {
        let base = tempdir("cache-kill");
        let dir = base.join("build");
        let mut c = spawn_child(&dir, 400);
        // Wait until it has written part of its output, then kill it as Ctrl-C or an OOM kill would.
        let t0 = Instant::now();
        while !partial_dir(&dir).join("lib/lib0.a").exists() {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "the child build never started"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        c.kill().unwrap();
        c.wait().unwrap();
        assert!(!dir.exists(), "a killed build was published");
        assert!(partial_dir(&dir).join("lib/lib0.a").exists());
        assert!(
            !partial_dir(&dir).join("lib/lib3.a").exists(),
            "the child finished before the kill"
        );
        // The next build removes the leftovers (fake_build fails on them) and completes.
        let d = ensure(&dir, "test", false, fake_check, |w, inc| {
            assert!(!inc);
            fake_build(w, Duration::ZERO)
        })
        .unwrap();
        assert_eq!(fake_check(&d, false), Check::Valid);
        assert!(!partial_dir(&dir).exists());
        assert_eq!(runs(&base), 2);
        // And a third is a cache hit.
        ensure(&dir, "test", false, fake_check, |_, _| {
            panic!("rebuilt a valid cache")
        })
        .unwrap();
        let _ = fs::remove_dir_all(&base);
    }

    #[test]
    fn two_builds_started_together_both_succeed_and_build_once() {
        let base = tempdir("cache-two");
        let dir = base.join("build");
        let mut a = spawn_child(&dir, 100);
        let mut b = spawn_child(&dir, 100);
        assert!(a.wait().unwrap().success());
        assert!(b.wait().unwrap().success());
        assert_eq!(fake_check(&dir, false), Check::Valid);
        assert_eq!(
            runs(&base),
            1,
            "the second process built too instead of waiting"
        );
        let _ = fs::remove_dir_all(&base);
    }

    #[test]
    fn prune_keeps_the_newest_builds_and_never_one_in_use() {
        let base = tempdir("cache-prune");
        let mk = |name: &str, age_s: u64| {
            let d = base.join(name);
            fs::create_dir_all(&d).unwrap();
            let f = File::create(d.join(".complete")).unwrap();
            let t = std::time::SystemTime::now() - Duration::from_secs(age_s);
            f.set_modified(t).unwrap();
            d
        };
        let current = mk("k-kernel-1", 50); // in use by this process, though not the newest
        let newest = mk("k-kernel-2", 10);
        let old = mk("k-kernel-3", 100);
        let held = mk("k-kernel-4", 200);
        let other = mk("k-host-1", 300);
        fs::create_dir_all(base.join("k-kernel-5.partial")).unwrap();
        let _in_use = lock(&held, "test").unwrap();
        let removed = prune(&current, |n| n.contains("-kernel-"), 2);
        assert_eq!(removed.len(), 2, "{removed:?}");
        assert!(current.exists() && newest.exists() && held.exists() && other.exists());
        assert!(!old.exists() && !base.join("k-kernel-5.partial").exists());
        let _ = fs::remove_dir_all(&base);
    }

    #[test]
    fn broken_caches_are_rebuilt_from_clean_and_stale_ones_updated_in_place() {
        let base = tempdir("cache-check");
        let dir = base.join("build");
        ensure(&dir, "test", false, fake_check, |w, _| {
            fake_build(w, Duration::ZERO)
        })
        .unwrap();
        // An archive lost (or a build published by an older xtask that was interrupted).
        fs::remove_file(dir.join("lib/lib2.a")).unwrap();
        ensure(&dir, "test", false, fake_check, |w, inc| {
            assert!(!inc, "a broken cache was reused");
            assert!(!w.join("lib").exists(), "not from clean");
            fake_build(w, Duration::ZERO)
        })
        .unwrap();
        // New inputs: the earlier build is handed to the builder to update.
        fs::write(dir.join(".complete"), "v0").unwrap();
        ensure(&dir, "test", false, fake_check, |w, inc| {
            assert!(inc && w.join("lib/lib0.a").exists());
            fs::write(w.join(".complete"), "v1").unwrap();
            Ok(())
        })
        .unwrap();
        assert_eq!(fake_check(&dir, false), Check::Valid);
        // A build that ends without a usable result is not published.
        fs::write(dir.join(".complete"), "v0").unwrap();
        let e = ensure(&dir, "test", false, fake_check, |w, _| {
            fs::remove_file(w.join("lib/lib1.a")).unwrap();
            Ok(())
        })
        .unwrap_err();
        assert!(e.contains("lib1.a missing"), "{e}");
        assert!(!dir.exists() && partial_dir(&dir).exists());
        let _ = fs::remove_dir_all(&base);
    }
}
