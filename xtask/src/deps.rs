//! `cargo xtask deps`: what the build needs from the host, installed with apt when we can.
//!
//! Checking is one `dpkg-query` call on Debian (file checks elsewhere), so `run`, `build`
//! and `test`, which all call [`ensure`] first, pay a few milliseconds when everything is
//! there. Installing needs root (or password-less sudo) and apt-get; otherwise the exact
//! command is printed.

use std::path::Path;
use std::process::Command;

use crate::util::{Result, which};

struct Dep {
    /// Debian package providing it.
    package: &'static str,
    /// How to tell it is there without dpkg (other distributions, containers without dpkg).
    present: fn() -> bool,
    why: &'static str,
}

fn has_cmd(c: &str) -> bool {
    which(c).is_some()
}

fn has_libclang() -> bool {
    ["/usr/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib64"]
        .iter()
        .any(|base| {
            std::fs::read_dir(base)
                .map(|rd| {
                    rd.flatten().any(|e| {
                        let p = e.path();
                        let name = e.file_name().to_string_lossy().to_string();
                        (name.starts_with("llvm-") && p.join("lib/libclang.so").exists())
                            || name.starts_with("libclang.so")
                            || name.starts_with("libclang-")
                    })
                })
                .unwrap_or(false)
        })
}

const DEPS: &[Dep] = &[
    Dep {
        package: "qemu-system-x86",
        present: || has_cmd("qemu-system-x86_64"),
        why: "runs AdrOS",
    },
    Dep {
        package: "qemu-system-arm",
        present: || has_cmd("qemu-system-aarch64"),
        why: "runs AdrOS on aarch64 (`--arch aarch64`: the `virt` machine)",
    },
    Dep {
        package: "gcc-aarch64-linux-gnu",
        present: || has_cmd("aarch64-linux-gnu-gcc"),
        why: "builds the arm64 vDSO and cross-builds the C test programs (tests/user) for the aarch64 initrd",
    },
    Dep {
        package: "libc6-dev-arm64-cross",
        present: || Path::new("/usr/aarch64-linux-gnu/lib/libc.a").exists(),
        why: "the arm64 glibc the aarch64 test programs link statically",
    },
    Dep {
        package: "device-tree-compiler",
        present: || has_cmd("dtc"),
        why: "the aarch64 test's malformed device trees (dtc)",
    },
    Dep {
        package: "grub-pc-bin",
        present: || Path::new("/usr/lib/grub/i386-pc/multiboot2.mod").exists(),
        why: "BIOS GRUB for the ISO",
    },
    Dep {
        package: "grub-common",
        present: || has_cmd("grub-mkrescue"),
        why: "builds the ISO",
    },
    Dep {
        package: "xorriso",
        present: || has_cmd("xorriso"),
        why: "grub-mkrescue writes ISO 9660 with it",
    },
    Dep {
        package: "mtools",
        present: || has_cmd("mformat"),
        why: "grub-mkrescue's EFI image; mcopy/mdir/mtype in the FAT tests (adros-fat, s11, s16)",
    },
    Dep {
        package: "musl-tools",
        present: || has_cmd("musl-gcc"),
        why: "static C test programs",
    },
    Dep {
        package: "busybox-static",
        present: || Path::new("/bin/busybox").exists() || has_cmd("busybox"),
        why: "the userland",
    },
    Dep {
        package: "bash-static",
        present: || Path::new("/bin/bash-static").exists() || has_cmd("bash-static"),
        why: "the shell",
    },
    Dep {
        package: "e2fsprogs",
        present: || has_cmd("mke2fs") || Path::new("/sbin/mke2fs").exists(),
        why: "ext2 test images",
    },
    Dep {
        package: "dosfstools",
        present: || has_cmd("mkfs.vfat") || Path::new("/sbin/mkfs.vfat").exists(),
        why: "mkfs.vfat and fsck.vfat for the FAT tests (adros-fat host tests, s11, s16)",
    },
    Dep {
        package: "xz-utils",
        present: || has_cmd("xz"),
        why: "bench net: the Linux peer's e1000 module when the kernel package ships it as .ko.xz",
    },
    Dep {
        package: "libclang-dev",
        present: has_libclang,
        why: "bindgen for the rump bindings",
    },
    Dep {
        package: "lz4",
        present: || has_cmd("lz4"),
        why: "inspecting the initrd",
    },
    Dep {
        package: "binutils",
        present: || has_cmd("nm"),
        why: "the kernel symbol table",
    },
    Dep {
        package: "gcc",
        present: || has_cmd("cc") || has_cmd("gcc"),
        why: "buildrump.sh and C test programs",
    },
    Dep {
        package: "make",
        present: || has_cmd("make"),
        why: "buildrump.sh",
    },
    Dep {
        package: "gdb",
        present: || has_cmd("gdb"),
        why: "cargo xtask run --gdb and its test",
    },
    Dep {
        package: "git",
        present: || has_cmd("git"),
        why: "the netbsd-src and buildrump.sh submodules",
    },
];

/// Which of `DEPS` are missing: asked of dpkg in one call when it exists (exact package
/// names, e.g. busybox-static rather than any busybox), else by file checks.
fn missing() -> Vec<&'static Dep> {
    if which("dpkg-query").is_some() {
        let out = Command::new("dpkg-query")
            .args(["-W", "-f", "${Package} ${db:Status-Status}\\n"])
            .args(DEPS.iter().map(|d| d.package))
            .output();
        if let Ok(out) = out {
            let text = String::from_utf8_lossy(&out.stdout);
            let installed: Vec<&str> = text
                .lines()
                .filter_map(|l| l.strip_suffix(" installed"))
                .map(|p| p.split(':').next().unwrap_or(p))
                .collect();
            return DEPS
                .iter()
                .filter(|d| !installed.contains(&d.package))
                .collect();
        }
    }
    DEPS.iter().filter(|d| !(d.present)()).collect()
}

/// `cargo xtask deps [--check]`: like [`ensure`], and says so when all is well.
pub fn command(install: bool) -> Result<()> {
    ensure(install)?;
    eprintln!(
        "xtask deps: all {} host packages are installed ({})",
        DEPS.len(),
        DEPS.iter().map(|d| d.package).collect::<Vec<_>>().join(" ")
    );
    eprintln!(
        "xtask deps: the Rust toolchain has the targets and components rust-toolchain.toml names"
    );
    Ok(())
}

/// Ensures every dependency is present: the host packages, then the Rust toolchain's
/// targets and components (see [`crate::toolchain`]). Installs what is missing when
/// `install` is set (host packages: as root or with password-less sudo on Debian),
/// otherwise explains how. Silent and fast when nothing is missing.
pub fn ensure(install: bool) -> Result<()> {
    ensure_packages(install)?;
    crate::toolchain::ensure(install).map(|_| ())
}

fn ensure_packages(install: bool) -> Result<()> {
    let missing = missing();
    if missing.is_empty() {
        return Ok(());
    }
    let pkgs: Vec<&str> = missing.iter().map(|d| d.package).collect();
    for d in &missing {
        eprintln!("xtask deps: missing {} ({})", d.package, d.why);
    }
    let cmd_line = format!(
        "apt-get install -y --no-install-recommends {}",
        pkgs.join(" ")
    );
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let sudo = !is_root
        && which("sudo").is_some()
        && Command::new("sudo")
            .args(["-n", "true"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
    if !install || !(is_root || sudo) || which("apt-get").is_none() {
        let how = if install {
            ""
        } else {
            " (--check: not installing)"
        };
        return Err(format!(
            "missing host packages{how}. Install them with:\n    sudo {cmd_line}\nthen run the command again."
        ));
    }
    let pb = crate::util::spinner(format!("installing {}", pkgs.join(" ")));
    let mut ok = apt(
        sudo,
        &["install", "-y", "-q", "--no-install-recommends"],
        &pkgs,
    );
    if !ok {
        // A fresh container has no package lists yet.
        pb.set_message("apt-get update");
        let _ = apt(sudo, &["update", "-q"], &[]);
        pb.set_message(format!("installing {}", pkgs.join(" ")));
        ok = apt(
            sudo,
            &["install", "-y", "-q", "--no-install-recommends"],
            &pkgs,
        );
    }
    pb.finish_and_clear();
    let still: Vec<&str> = self::missing().iter().map(|d| d.package).collect();
    if !ok || !still.is_empty() {
        return Err(format!(
            "could not install {}. Try by hand:\n    sudo {cmd_line}",
            still.join(" ")
        ));
    }
    eprintln!("xtask deps: installed {}", pkgs.join(" "));
    Ok(())
}

fn apt(sudo: bool, args: &[&str], pkgs: &[&str]) -> bool {
    let mut cmd = if sudo {
        let mut c = Command::new("sudo");
        c.args(["-n", "env", "DEBIAN_FRONTEND=noninteractive", "apt-get"]);
        c
    } else {
        Command::new("apt-get")
    };
    cmd.args(args)
        .args(pkgs)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}
