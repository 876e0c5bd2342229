//! The initrd: a USTAR archive (plain `ustar` headers, no GNU/PAX extensions) compressed as
//! an LZ4 frame, written to `<target>/initrd.tar.lz4` and loaded by GRUB as the `initrd`
//! module. Inspect it with `lz4 -d target/initrd.tar.lz4 | tar -tvf -`.
//!
//! Contents, later sources overriding earlier ones at the same guest path:
//! 1. the standard directories (`/dev /proc /sys /tmp /root /mnt …`);
//! 2. one symlink per applet of the host's `/bin/busybox` (`--list-full`), all pointing at
//!    `/bin/busybox`, and `/bin/sh → busybox`;
//! 3. `/bin/busybox` (Debian's `busybox-static`) and `/bin/bash` (`bash-static`);
//! 4. the repository's `initrd/` tree (its `README.md` excepted) with the host's modes;
//!    hard links inside it stay hard links;
//! 5. Debian packages unpacked by [`crate::debs`] (`cargo xtask run --add-deb`), each tree
//!    walked like the repository's;
//! 6. extra `HOST:GUEST` files from [`parse_extra`] (`cargo xtask run --add`).
//!
//! Every entry is owned by root:root, and `/etc/initrd-manifest` lists `path size` for each
//! regular file so the kernel's tests can check what was unpacked.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{Result, root, target_dir};

pub const BUSYBOX: &str = "/bin/busybox";
pub const BASH: &str = "/bin/bash-static";
/// The module name the kernel looks for (`module2 /boot/initrd.tar.lz4 initrd`).
pub const MODULE_NAME: &str = "initrd";
/// The longest path a plain USTAR header holds (155-byte prefix + '/' + 100-byte name); we
/// keep the archive free of GNU/PAX extension headers.
const USTAR_MAX_PATH: usize = 255;

/// One extra file for the initrd: the host file at `host`, at absolute guest path `guest`.
#[derive(Clone, Debug)]
pub struct Extra {
    pub host: PathBuf,
    pub guest: String,
}

/// Parses `HOST:GUEST` (as given to `cargo xtask run --add`). GUEST must be absolute; a
/// GUEST ending in `/` gets the host file's name appended.
#[allow(dead_code)] // for `cargo xtask run --add`, wired by the run command's owner
pub fn parse_extra(spec: &str) -> Result<Extra> {
    let (host, guest) = spec
        .rsplit_once(':')
        .ok_or_else(|| format!("--add {spec}: expected HOST_PATH:GUEST_PATH"))?;
    let host = PathBuf::from(host);
    if !host.is_file() {
        return Err(format!("--add {spec}: {} is not a file", host.display()));
    }
    if !guest.starts_with('/') {
        return Err(format!("--add {spec}: the guest path must be absolute"));
    }
    let mut guest = guest.to_string();
    if guest.ends_with('/') {
        guest.push_str(&host.file_name().unwrap_or_default().to_string_lossy());
    }
    Ok(Extra { host, guest })
}

#[derive(Clone, Debug)]
enum Node {
    Dir {
        mode: u32,
    },
    File {
        host: PathBuf,
        mode: u32,
    },
    Symlink {
        target: String,
    },
    /// A hard link to an earlier regular file (archive path, no leading '/').
    Hard {
        target: String,
    },
}

/// What the packer wrote.
pub struct Packed {
    pub path: PathBuf,
    pub entries: usize,
    pub tar_bytes: u64,
    pub lz4_bytes: u64,
}

/// Builds `<target>/initrd.tar.lz4` with `extra` files and the directory `trees` (unpacked
/// Debian packages) added. Rewrites the file only when its contents change, so GRUB staging
/// and ISO caching see a stable mtime.
pub fn build(extra: &[Extra], trees: &[PathBuf]) -> Result<Packed> {
    build_to(extra, trees, &target_dir().join("initrd.tar.lz4"))
}

/// [`build`], written to `path`.
pub fn build_to(extra: &[Extra], trees: &[PathBuf], path: &Path) -> Result<Packed> {
    let nodes = collect(extra, trees, &Userland::host())?;
    pack(nodes, path)
}

/// The aarch64 initrd (`<target>/initrd-aarch64.tar.lz4`): the same tree with Debian's arm64
/// `busybox-static` (`debs::arm64_busybox`) as `/bin/busybox`, its applet links (the host's
/// busybox of the same Debian release lists them), no bash, and the C test programs
/// cross-built for arm64 at the same paths as on x86_64 (`build::build_user_tests_aarch64`).
pub fn build_aarch64() -> Result<Packed> {
    let busybox = crate::debs::arm64_busybox()?;
    let extras = crate::build::build_user_tests_aarch64()?;
    let u = Userland {
        busybox,
        bash: None,
    };
    pack(
        collect(&extras, &[], &u)?,
        &target_dir().join("initrd-aarch64.tar.lz4"),
    )
}

/// The static programs the initrd is built around.
struct Userland {
    busybox: PathBuf,
    bash: Option<PathBuf>,
}

impl Userland {
    /// The host's (x86_64) `busybox-static` and `bash-static`.
    fn host() -> Self {
        Userland {
            busybox: BUSYBOX.into(),
            bash: Some(BASH.into()),
        }
    }
}

fn pack(nodes: BTreeMap<String, Node>, path: &Path) -> Result<Packed> {
    let tar = write_tar(&nodes)?;
    let lz4 = compress(&tar)?;
    let path = path.to_path_buf();
    if std::fs::read(&path).ok().as_deref() != Some(&lz4[..]) {
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).map_err(|e| format!("creating {}: {e}", d.display()))?;
        }
        crate::util::write_atomic(&path, &lz4)?;
    }
    let p = Packed {
        path,
        entries: nodes.len() + 1,
        tar_bytes: tar.len() as u64,
        lz4_bytes: lz4.len() as u64,
    };
    eprintln!(
        "xtask: initrd: {} entries, {} KiB tar, {} KiB as LZ4 ({})",
        p.entries,
        p.tar_bytes >> 10,
        p.lz4_bytes >> 10,
        p.path.display()
    );
    Ok(p)
}

/// The guest tree, keyed by archive path (no leading '/'; directories without a trailing '/').
fn collect(extra: &[Extra], trees: &[PathBuf], u: &Userland) -> Result<BTreeMap<String, Node>> {
    let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
    for (d, mode) in [
        ("bin", 0o755),
        ("sbin", 0o755),
        ("usr", 0o755),
        ("usr/bin", 0o755),
        ("usr/sbin", 0o755),
        ("etc", 0o755),
        ("dev", 0o755),
        ("proc", 0o555),
        ("sys", 0o555),
        ("tmp", 0o1777),
        ("root", 0o700),
        ("mnt", 0o755),
        ("home", 0o755),
        ("var", 0o755),
        ("var/log", 0o755),
        ("run", 0o755),
    ] {
        nodes.insert(d.into(), Node::Dir { mode });
    }
    for (host, what) in [(BUSYBOX, "busybox-static"), (BASH, "bash-static")] {
        if !Path::new(host).is_file() {
            return Err(format!(
                "{host} is missing: install Debian's {what} (`cargo xtask deps`)"
            ));
        }
    }
    let out = Command::new(BUSYBOX)
        .arg("--list-full")
        .output()
        .map_err(|e| format!("running {BUSYBOX} --list-full: {e}"))?;
    if !out.status.success() {
        return Err(format!("{BUSYBOX} --list-full failed"));
    }
    for applet in String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        insert(
            &mut nodes,
            applet.trim_start_matches('/'),
            Node::Symlink {
                target: BUSYBOX.into(),
            },
        );
    }
    insert(
        &mut nodes,
        "bin/sh",
        Node::Symlink {
            target: "busybox".into(),
        },
    );
    insert(
        &mut nodes,
        "bin/busybox",
        Node::File {
            host: u.busybox.clone(),
            mode: 0o755,
        },
    );
    if let Some(bash) = &u.bash {
        insert(
            &mut nodes,
            "bin/bash",
            Node::File {
                host: bash.clone(),
                mode: 0o755,
            },
        );
    }

    let tree = root().join("initrd");
    let mut seen: HashMap<(u64, u64), String> = HashMap::new();
    walk(&tree, &tree, &mut nodes, &mut seen)?;
    for t in trees {
        walk(t, t, &mut nodes, &mut seen)?;
    }

    for e in extra {
        let mode = std::fs::metadata(&e.host)
            .map_err(|err| format!("{}: {err}", e.host.display()))?
            .mode()
            & 0o7777;
        insert(
            &mut nodes,
            e.guest.trim_start_matches('/'),
            Node::File {
                host: e.host.clone(),
                mode,
            },
        );
    }
    for p in nodes.keys() {
        if p.len() > USTAR_MAX_PATH || p.rsplit('/').next().is_some_and(|n| n.len() > 100) {
            return Err(format!(
                "initrd path {p} is too long for a plain USTAR header"
            ));
        }
    }
    Ok(nodes)
}

/// Inserts `path` and any missing parent directories (0755).
fn insert(nodes: &mut BTreeMap<String, Node>, path: &str, node: Node) {
    let mut acc = String::new();
    let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    for (i, c) in comps.iter().enumerate() {
        if !acc.is_empty() {
            acc.push('/');
        }
        acc.push_str(c);
        if i + 1 < comps.len() {
            // A parent that is a symlink (e.g. usr/bin → bin) would need following; we only
            // create real directories.
            if !matches!(nodes.get(&acc), Some(Node::Dir { .. })) {
                nodes.insert(acc.clone(), Node::Dir { mode: 0o755 });
            }
        }
    }
    nodes.insert(acc, node);
}

fn walk(
    top: &Path,
    dir: &Path,
    nodes: &mut BTreeMap<String, Node>,
    seen: &mut HashMap<(u64, u64), String>,
) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("reading {}: {e}", dir.display()))?
        .filter_map(|e| e.ok())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let rel = p
            .strip_prefix(top)
            .map_err(|_| "path outside the initrd tree".to_string())?
            .to_string_lossy()
            .into_owned();
        if rel == "README.md" {
            continue;
        }
        let md = std::fs::symlink_metadata(&p).map_err(|err| format!("{}: {err}", p.display()))?;
        let ft = md.file_type();
        if ft.is_dir() {
            insert(
                nodes,
                &rel,
                Node::Dir {
                    mode: md.mode() & 0o7777,
                },
            );
            walk(top, &p, nodes, seen)?;
        } else if ft.is_symlink() {
            let t = std::fs::read_link(&p).map_err(|err| format!("{}: {err}", p.display()))?;
            insert(
                nodes,
                &rel,
                Node::Symlink {
                    target: t.to_string_lossy().into_owned(),
                },
            );
        } else if ft.is_file() {
            let key = (md.dev(), md.ino());
            if md.nlink() > 1
                && let Some(first) = seen.get(&key)
            {
                insert(
                    nodes,
                    &rel,
                    Node::Hard {
                        target: first.clone(),
                    },
                );
                continue;
            }
            seen.insert(key, rel.clone());
            insert(
                nodes,
                &rel,
                Node::File {
                    host: p.clone(),
                    mode: md.mode() & 0o7777,
                },
            );
        }
    }
    Ok(())
}

fn header(kind: tar::EntryType, mode: u32, size: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    let _ = h.set_username("root");
    let _ = h.set_groupname("root");
    h.set_mtime(mtime);
    h
}

fn write_tar(nodes: &BTreeMap<String, Node>) -> Result<Vec<u8>> {
    let mtime = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::fs::metadata(root().join("initrd"))
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs())
        });
    let mut b = tar::Builder::new(Vec::new());
    let mut manifest = String::new();
    // Hard links go last so that their targets precede them.
    let (hard, rest): (Vec<_>, Vec<_>) = nodes
        .iter()
        .partition(|(_, n)| matches!(n, Node::Hard { .. }));
    let err = |p: &str, e: std::io::Error| format!("initrd: adding {p}: {e}");
    for (path, node) in rest.into_iter().chain(hard) {
        match node {
            Node::Dir { mode } => {
                let mut h = header(tar::EntryType::Directory, *mode, 0, mtime);
                b.append_data(&mut h, format!("{path}/"), std::io::empty())
                    .map_err(|e| err(path, e))?;
            }
            Node::File { host, mode } => {
                let data =
                    std::fs::read(host).map_err(|e| format!("reading {}: {e}", host.display()))?;
                let mut h = header(tar::EntryType::Regular, *mode, data.len() as u64, mtime);
                manifest.push_str(&format!("/{path} {}\n", data.len()));
                b.append_data(&mut h, path, &data[..])
                    .map_err(|e| err(path, e))?;
            }
            Node::Symlink { target } => {
                let mut h = header(tar::EntryType::Symlink, 0o777, 0, mtime);
                b.append_link(&mut h, path, target)
                    .map_err(|e| err(path, e))?;
            }
            Node::Hard { target } => {
                let mut h = header(tar::EntryType::Link, 0o644, 0, mtime);
                b.append_link(&mut h, path, target)
                    .map_err(|e| err(path, e))?;
            }
        }
    }
    manifest.insert_str(
        0,
        &format!(
            "# initrd manifest: path size (regular files); {} entries\n",
            nodes.len() + 1
        ),
    );
    let mut h = header(tar::EntryType::Regular, 0o644, manifest.len() as u64, mtime);
    b.append_data(&mut h, "etc/initrd-manifest", manifest.as_bytes())
        .map_err(|e| err("etc/initrd-manifest", e))?;
    b.into_inner()
        .map_err(|e| format!("finishing the initrd archive: {e}"))
}

fn compress(tar: &[u8]) -> Result<Vec<u8>> {
    use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
    let info = FrameInfo::new()
        .block_size(BlockSize::Max4MB)
        .block_mode(BlockMode::Independent)
        .content_size(Some(tar.len() as u64))
        .content_checksum(true);
    let mut enc = FrameEncoder::with_frame_info(info, Vec::new());
    enc.write_all(tar)
        .map_err(|e| format!("compressing the initrd: {e}"))?;
    enc.finish()
        .map_err(|e| format!("compressing the initrd: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_extra_forms() {
        let e = parse_extra("/bin/busybox:/opt/").unwrap();
        assert_eq!(e.guest, "/opt/busybox");
        assert!(parse_extra("/bin/busybox:rel").is_err());
        assert!(parse_extra("nocolon").is_err());
    }

    #[test]
    fn insert_makes_parents() {
        let mut n = BTreeMap::new();
        insert(&mut n, "a/b/c", Node::Symlink { target: "x".into() });
        assert!(matches!(n.get("a"), Some(Node::Dir { .. })));
        assert!(matches!(n.get("a/b"), Some(Node::Dir { .. })));
    }
}
