//! Small helpers shared by the xtask steps.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

pub type Result<T> = std::result::Result<T, String>;

/// The workspace root (parent of xtask/).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// A spinner for a long step; finish it with `done`.
pub fn spinner(msg: impl Into<String>) -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed:>3}] {msg}").expect("valid template"),
    );
    pb.set_message(msg.into());
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

/// Runs a command to completion, failing with its stderr and `hint` when it fails.
pub fn run_checked(cmd: &mut Command, what: &str, hint: &str) -> Result<()> {
    let out = cmd
        .output()
        .map_err(|e| format!("{what}: cannot start {:?}: {e}. {hint}", cmd.get_program()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}):\n{}{}\n{hint}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// `path` with `.<what>.<pid>` appended: a private name beside it for this process to write
/// and then rename over `path`, so that another `cargo xtask` reading or writing `path` at
/// the same time sees either the old or the new file, never half of one.
pub fn private_sibling(path: &Path, what: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{what}.{}", std::process::id()));
    PathBuf::from(s)
}

/// Writes `path` whole or not at all (through [`private_sibling`] and a rename).
pub fn write_atomic(path: &Path, data: impl AsRef<[u8]>) -> Result<()> {
    let tmp = private_sibling(path, "tmp");
    std::fs::write(&tmp, data).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("renaming {}: {e}", tmp.display()))
}

/// Replaces the directory `dir` by `new` (made beside it), as close to atomically as two
/// renames get: the old one is moved aside first, then removed.
pub fn replace_dir(new: &Path, dir: &Path) -> Result<()> {
    let old = private_sibling(dir, "old");
    let had_old = std::fs::rename(dir, &old).is_ok();
    std::fs::rename(new, dir)
        .map_err(|e| format!("renaming {} to {}: {e}", new.display(), dir.display()))?;
    if had_old {
        let _ = std::fs::remove_dir_all(&old);
    }
    Ok(())
}

pub fn which(cmd: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(cmd))
        .find(|p| p.is_file())
}

/// "1G", "512M", "128m", "8g", plain MiB numbers → MiB.
pub fn parse_mem(s: &str) -> Result<u64> {
    let s = s.trim();
    let (num, mul) = match s.chars().last() {
        Some('G' | 'g') => (&s[..s.len() - 1], 1024),
        Some('M' | 'm') => (&s[..s.len() - 1], 1),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .map(|n| n * mul)
        .map_err(|_| format!("bad memory size {s:?}: use e.g. 512M or 8G"))
}
