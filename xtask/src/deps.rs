//! `cargo xtask deps`: what the build needs from the host, installed with apt when we can.

use std::path::Path;
use std::process::Command;

use crate::util::{Result, which};

struct Dep {
    /// Debian package providing it.
    package: &'static str,
    /// How to tell it is there.
    present: fn() -> bool,
    why: &'static str,
}

fn has_cmd(c: &str) -> bool {
    which(c).is_some()
}

fn has_libclang() -> bool {
    ["/usr/lib", "/usr/lib/x86_64-linux-gnu"].iter().any(|base| {
        std::fs::read_dir(base).map(|rd| {
            rd.flatten().any(|e| {
                let p = e.path();
                let name = e.file_name().to_string_lossy().to_string();
                (name.starts_with("llvm-") && p.join("lib/libclang.so").exists()) || name.starts_with("libclang.so") || name.starts_with("libclang-")
            })
        })
        .unwrap_or(false)
    })
}

const DEPS: &[Dep] = &[
    Dep { package: "qemu-system-x86", present: || has_cmd("qemu-system-x86_64"), why: "runs AdrOS" },
    Dep { package: "grub-pc-bin", present: || Path::new("/usr/lib/grub/i386-pc/multiboot2.mod").exists(), why: "BIOS GRUB for the ISO" },
    Dep { package: "grub-common", present: || has_cmd("grub-mkrescue"), why: "builds the ISO" },
    Dep { package: "xorriso", present: || has_cmd("xorriso"), why: "grub-mkrescue writes ISO 9660 with it" },
    Dep { package: "mtools", present: || has_cmd("mformat"), why: "grub-mkrescue's EFI image" },
    Dep { package: "musl-tools", present: || has_cmd("musl-gcc"), why: "static C test programs" },
    Dep { package: "busybox-static", present: || Path::new("/bin/busybox").exists() || has_cmd("busybox"), why: "the userland" },
    Dep { package: "bash-static", present: || Path::new("/bin/bash-static").exists() || has_cmd("bash-static"), why: "the shell" },
    Dep { package: "e2fsprogs", present: || has_cmd("mke2fs") || Path::new("/sbin/mke2fs").exists(), why: "ext2 test images" },
    Dep { package: "libclang-dev", present: has_libclang, why: "bindgen for the rump bindings" },
    Dep { package: "lz4", present: || has_cmd("lz4"), why: "inspecting the initrd" },
    Dep { package: "binutils", present: || has_cmd("nm"), why: "the kernel symbol table" },
];

/// Ensures every dependency is present; installs the missing ones with apt-get when
/// `install` is set and we are root on Debian, otherwise explains how.
pub fn ensure(install: bool) -> Result<()> {
    let missing: Vec<&Dep> = DEPS.iter().filter(|d| !(d.present)()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let pkgs: Vec<&str> = missing.iter().map(|d| d.package).collect();
    for d in &missing {
        eprintln!("xtask deps: missing {} ({})", d.package, d.why);
    }
    let cmd_line = format!("apt-get install -y {}", pkgs.join(" "));
    let root = Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false);
    if !install || !root || which("apt-get").is_none() {
        return Err(format!("missing host packages. Install them with:\n    sudo {cmd_line}\nthen run the command again."));
    }
    let pb = crate::util::spinner(format!("installing {}", pkgs.join(" ")));
    let mut ok = apt_install(&pkgs);
    if !ok {
        pb.set_message("apt-get update");
        let _ = Command::new("apt-get").args(["update", "-q"]).env("DEBIAN_FRONTEND", "noninteractive").output();
        pb.set_message(format!("installing {}", pkgs.join(" ")));
        ok = apt_install(&pkgs);
    }
    pb.finish_and_clear();
    let still: Vec<&str> = DEPS.iter().filter(|d| !(d.present)()).map(|d| d.package).collect();
    if !ok || !still.is_empty() {
        return Err(format!("could not install {}. Try by hand:\n    {cmd_line}", still.join(" ")));
    }
    eprintln!("xtask deps: installed {}", pkgs.join(" "));
    Ok(())
}

fn apt_install(pkgs: &[&str]) -> bool {
    Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(pkgs)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}
