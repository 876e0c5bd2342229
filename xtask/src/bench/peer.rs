//! The Linux peer: Debian's `linux-image-amd64` kernel, fetched with `apt-get download`
//! (the metapackage, then the versioned image it depends on) and unpacked with
//! `dpkg-deb -x` into `~/.cache/adros/linux-peer/` — never installed on the host — and an
//! initramfs (newc cpio, uncompressed) holding the same busybox, the same benchmark program
//! and script as the AdrOS initrd, and an `/init` that prints the same markers as AdrOS's
//! `adros.exec` and powers off.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{Result, spinner, which};

/// What QEMU boots for the peer.
pub struct Peer {
    pub vmlinuz: PathBuf,
    /// e.g. `linux-image-6.1.0-48-amd64 6.1.172-1`.
    pub version: String,
}

fn cache_dir() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".cache/adros/linux-peer")
}

/// The cached kernel, fetched on first use.
pub fn kernel() -> Result<Peer> {
    let dir = cache_dir();
    let vmlinuz = dir.join("vmlinuz");
    let version_file = dir.join("version");
    if vmlinuz.is_file()
        && kept_modules().all(|m| modules_dir().join(m).is_file())
        && let Ok(v) = std::fs::read_to_string(&version_file)
    {
        return Ok(Peer {
            vmlinuz,
            version: v.trim().to_string(),
        });
    }
    for tool in ["apt-get", "dpkg-deb"] {
        if which(tool).is_none() {
            return Err(format!(
                "the Linux peer is fetched with apt-get download + dpkg-deb -x, and {tool} is missing: run the benchmark on Debian \
                 (or put a vmlinuz at {} and its version in {})",
                vmlinuz.display(),
                version_file.display()
            ));
        }
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let pb = spinner("Linux peer: apt-get download linux-image-amd64");
    let meta = download(&dir, "linux-image-amd64")?;
    let depends = dpkg_field(&meta, "Depends")?;
    // "linux-image-6.1.0-48-amd64 (= 6.1.172-1)" → the versioned image package.
    let image = depends
        .split([',', '|'])
        .map(str::trim)
        .filter_map(|d| d.split_whitespace().next())
        .find(|p| p.starts_with("linux-image-"))
        .ok_or_else(|| {
            format!("linux-image-amd64 depends on {depends:?}: no linux-image-* package in it")
        })?
        .to_string();
    pb.set_message(format!("Linux peer: apt-get download {image} (≈ 70 MB)"));
    let deb = download(&dir, &image)?;
    pb.set_message(format!(
        "Linux peer: dpkg-deb -x {}",
        deb.file_name().unwrap_or_default().to_string_lossy()
    ));
    let root = dir.join("root");
    let _ = std::fs::remove_dir_all(&root);
    let out = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&root)
        .output()
        .map_err(|e| format!("running dpkg-deb: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "dpkg-deb -x {} failed: {}",
            deb.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let boot = root.join("boot");
    let found = std::fs::read_dir(&boot)
        .map_err(|e| format!("{}: {e} (the package has no /boot?)", boot.display()))?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .ok_or_else(|| format!("no vmlinuz-* in {}", boot.display()))?;
    std::fs::copy(&found, &vmlinuz).map_err(|e| format!("copying {}: {e}", found.display()))?;
    let version = format!("{image} {}", dpkg_field(&deb, "Version")?);
    std::fs::write(&version_file, &version)
        .map_err(|e| format!("writing {}: {e}", version_file.display()))?;
    // Of the modules (≈ 400 MB unpacked) only those the suites load are kept: serial, ACPI
    // power-off and tmpfs are built into Debian's kernel; the e1000 driver is a module.
    keep_modules(&root)?;
    let _ = std::fs::remove_dir_all(&root);
    for d in [&meta, &deb] {
        let _ = std::fs::remove_file(d);
    }
    pb.finish_and_clear();
    eprintln!(
        "xtask bench: Linux peer {version} cached in {}",
        dir.display()
    );
    Ok(Peer { vmlinuz, version })
}

/// The modules kept from the image package (file names under [`modules_dir`]): what the
/// suites load ([`NET_MODULES`], [`USB_MODULES`], [`EXT2_MODULES`]); each suite's list is the
/// one place a module is named.
fn kept_modules() -> impl Iterator<Item = &'static str> {
    NET_MODULES
        .iter()
        .chain(USB_MODULES)
        .chain(EXT2_MODULES)
        .copied()
}

/// The virtio-blk driver and the ext4 file system (which mounts ext2: Debian sets
/// `CONFIG_EXT4_USE_FOR_EXT2`) with their dependencies, in dependency order (their
/// `depends=`): what the fs suite's peer loads for its ext2 workload.
pub const EXT2_MODULES: &[&str] = &[
    "virtio.ko",
    "virtio_ring.ko",
    "virtio_pci_modern_dev.ko",
    "virtio_pci_legacy_dev.ko",
    "virtio_pci.ko",
    "virtio_blk.ko",
    "crc16.ko",
    "mbcache.ko",
    "jbd2.ko",
    "crc32c_generic.ko",
    "ext4.ko",
];

/// What the net suite's peer loads.
pub const NET_MODULES: &[&str] = &["e1000.ko"];

/// The USB host controller, SCSI disk and mass-storage modules of Debian's 6.1 kernel, in
/// dependency order (their `depends=`): what the usb suite's peer loads.
pub const USB_MODULES: &[&str] = &[
    "usb-common.ko",
    "usbcore.ko",
    "xhci-hcd.ko",
    "xhci-pci.ko",
    "ehci-hcd.ko",
    "ehci-pci.ko",
    "scsi_common.ko",
    "scsi_mod.ko",
    "crct10dif_common.ko",
    "crc-t10dif.ko",
    "crc64.ko",
    "crc64-rocksoft.ko",
    "t10-pi.ko",
    "sd_mod.ko",
    "usb-storage.ko",
];

/// Where the kept modules are.
pub fn modules_dir() -> PathBuf {
    cache_dir().join("modules")
}

/// Copies the kept modules ([`kept_modules`]) out of the unpacked package (decompressing
/// `.ko.xz`).
fn keep_modules(root: &Path) -> Result<()> {
    let out_dir = modules_dir();
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| format!("creating {}: {e}", out_dir.display()))?;
    for m in kept_modules() {
        let found = find_file(&root.join("lib/modules"), m)
            .or_else(|| find_file(&root.join("usr/lib/modules"), m));
        let found = match found {
            Some(f) => f,
            None => {
                let xz = format!("{m}.xz");
                let f = find_file(&root.join("lib/modules"), &xz)
                    .or_else(|| find_file(&root.join("usr/lib/modules"), &xz))
                    .ok_or_else(|| format!("the kernel package has no {m} (nor {xz})"))?;
                let o = Command::new("xz")
                    .arg("-dc")
                    .arg(&f)
                    .output()
                    .map_err(|e| format!("running xz -dc {}: {e}", f.display()))?;
                if !o.status.success() {
                    return Err(format!("xz -dc {} failed", f.display()));
                }
                std::fs::write(out_dir.join(m), o.stdout)
                    .map_err(|e| format!("writing {m}: {e}"))?;
                continue;
            }
        };
        std::fs::copy(&found, out_dir.join(m))
            .map_err(|e| format!("copying {}: {e}", found.display()))?;
    }
    Ok(())
}

/// The first file named `name` under `dir` (depth-first).
fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    let rd = std::fs::read_dir(dir).ok()?;
    let mut subdirs = Vec::new();
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            subdirs.push(p);
        } else if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
    }
    subdirs.iter().find_map(|d| find_file(d, name))
}

/// The peer's network setup for the net suite: the e1000 module, the address QEMU's DHCP
/// server would give (static: Debian's initramfs-less boot has no DHCP client running),
/// the default route.
pub const NET_PRELUDE: &str = "insmod /lib/e1000.ko
     ip link set lo up
     ip link set eth0 up
     ip addr add 10.0.2.15/24 dev eth0
     ip route add default via 10.0.2.2
";

/// `apt-get download PKG` into `dir`; returns the .deb.
fn download(dir: &Path, pkg: &str) -> Result<PathBuf> {
    let out = Command::new("apt-get")
        .arg("download")
        .arg(pkg)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("running apt-get: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "apt-get download {pkg} failed:\n{}\nIf apt does not know the package, run `apt-get update` (as root) and try again.",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let prefix = format!("{pkg}_");
    std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                n.to_string_lossy().starts_with(&prefix) && n.to_string_lossy().ends_with(".deb")
            })
        })
        .max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .ok_or_else(|| {
            format!(
                "apt-get download {pkg} left no {prefix}*.deb in {}",
                dir.display()
            )
        })
}

fn dpkg_field(deb: &Path, field: &str) -> Result<String> {
    let out = Command::new("dpkg-deb")
        .arg("-f")
        .arg(deb)
        .arg(field)
        .output()
        .map_err(|e| format!("running dpkg-deb: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "dpkg-deb -f {} {field}: {}",
            deb.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The peer's `/init`: mount what the AdrOS guest has (proc, tmpfs on /tmp, devtmpfs), run
/// the same command with `sh -c`, between the same markers as AdrOS's `adros.exec`.
pub fn init_script(command: &str, prelude: &str) -> String {
    let quoted = command.replace('\'', "'\\''");
    format!(
        "#!/bin/sh\n\
         mount -t proc proc /proc\n\
         mount -t devtmpfs devtmpfs /dev 2>/dev/null\n\
         mount -t tmpfs tmpfs /tmp\n\
         {prelude}\
         echo '@@ADROS-EXEC-BEGIN@@'\n\
         /bin/sh -c '{quoted}'\n\
         echo \"\n@@ADROS-EXEC-EXIT $?@@\"\n\
         poweroff -f\n"
    )
}

/// One cpio entry.
enum Entry<'a> {
    Dir(&'a str),
    File(&'a str, Vec<u8>, u32),
    Symlink(&'a str, &'a str),
    CharDev(&'a str, u32, u32),
}

/// Writes the initramfs: busybox with its applet links, `/init`, and `files` (guest path,
/// contents, mode).
pub fn initramfs(path: &Path, init: &str, files: &[(String, Vec<u8>, u32)]) -> Result<()> {
    let busybox = std::fs::read(crate::initrd::BUSYBOX).map_err(|e| {
        format!(
            "{}: {e} (install busybox-static: `cargo xtask deps`)",
            crate::initrd::BUSYBOX
        )
    })?;
    let out = Command::new(crate::initrd::BUSYBOX)
        .arg("--list-full")
        .output()
        .map_err(|e| format!("busybox --list-full: {e}"))?;
    let applets: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().trim_start_matches('/').to_string())
        .filter(|l| !l.is_empty())
        .collect();
    let mut entries: Vec<Entry> = Vec::new();
    for d in [
        "bin", "sbin", "usr", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "root", "etc",
        "bench", "lib",
    ] {
        entries.push(Entry::Dir(d));
    }
    entries.push(Entry::CharDev("dev/console", 5, 1));
    entries.push(Entry::CharDev("dev/null", 1, 3));
    entries.push(Entry::File("bin/busybox", busybox, 0o755));
    for a in &applets {
        if a != "bin/busybox" {
            entries.push(Entry::Symlink(a, "/bin/busybox"));
        }
    }
    entries.push(Entry::Symlink("bin/sh", "busybox"));
    entries.push(Entry::File("init", init.as_bytes().to_vec(), 0o755));
    for (p, data, mode) in files {
        entries.push(Entry::File(p.trim_start_matches('/'), data.clone(), *mode));
    }
    let mut buf = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let ino = i as u32 + 1;
        match e {
            Entry::Dir(n) => cpio_entry(&mut buf, ino, n, 0o040755, &[], (0, 0)),
            Entry::File(n, d, m) => cpio_entry(&mut buf, ino, n, 0o100000 | m, d, (0, 0)),
            Entry::Symlink(n, t) => cpio_entry(&mut buf, ino, n, 0o120777, t.as_bytes(), (0, 0)),
            Entry::CharDev(n, maj, min) => {
                cpio_entry(&mut buf, ino, n, 0o020600, &[], (*maj, *min))
            }
        }
    }
    cpio_entry(&mut buf, 0, "TRAILER!!!", 0, &[], (0, 0));
    std::fs::write(path, buf).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// One newc ("070701") record, 4-byte aligned.
fn cpio_entry(buf: &mut Vec<u8>, ino: u32, name: &str, mode: u32, data: &[u8], rdev: (u32, u32)) {
    let nlink = if mode & 0o170000 == 0o040000 { 2 } else { 1 };
    let fields = [
        ino,
        mode,
        0,
        0,
        nlink,
        0,
        data.len() as u32,
        0,
        0,
        rdev.0,
        rdev.1,
        name.len() as u32 + 1,
        0,
    ];
    buf.extend_from_slice(b"070701");
    for f in fields {
        buf.extend_from_slice(format!("{f:08x}").as_bytes());
    }
    buf.extend_from_slice(name.as_bytes());
    buf.push(0);
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
    buf.extend_from_slice(data);
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
}
