//! Kernel link setup: our linker script, and — when `cargo xtask build` found freestanding
//! NetBSD rump components (`ADROS_RUMP_KERNEL_DIR`, see xtask/src/rump.rs) — those archives,
//! linked whole, with `cfg(rump_linked)` so the kernel starts them at boot.
//!
//! The components find each other through ELF link sets: sections named `link_set_<set>`
//! bracketed by `__start_link_set_<set>` / `__stop_link_set_<set>`. This script lists every
//! set the archives contain in `OUT_DIR/linksets.ld` (one kept output section each, inside the
//! kernel's read-only data), which `linker.ld` INCLUDEs; without rump the file is empty.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The components linked into the kernel: NetBSD ext2fs and what it stands on (`rumpfs_ext2fs`
/// shares ufs code with `rumpfs_ffs`; `rumpdev_disk` gives the disk layer etfs block devices
/// use), FAT, and USB mass storage: the PCI bus on our `rumpcomp_pci_*` hypercalls, the
/// EHCI/UHCI/OHCI and (our component) xHCI host controllers, the USB stack, umass and the
/// SCSI disk driver `sd`; and networking: NetBSD's TCP/IP (`net`, `netinet`, `netinet6`,
/// AF_LOCAL which the socket layer's domain list expects), `bpf` and `net_config` (the DHCP
/// client), the wm(4) Ethernet driver and the MII PHY drivers under it, and NetBSD's audio
/// layer with the HD Audio controller (`hdaudio` on PCI) and codec function group (`hdafg`).
const COMPONENTS: &[&str] = &[
    "rump",
    "rumpvfs",
    "rumpdev",
    "rumpdev_disk",
    "rumpfs_ffs",
    "rumpfs_ext2fs",
    "rumpfs_msdos",
    "rumpdev_pci",
    "rumpdev_pci_usbhc",
    "rumpdev_pci_xhci",
    "rumpdev_usb",
    "rumpdev_umass",
    "rumpdev_scsipi",
    "rumpnet",
    "rumpnet_net",
    "rumpnet_netinet",
    "rumpnet_netinet6",
    "rumpnet_local",
    "rumpnet_config",
    "rumpdev_bpf",
    "rumpdev_pci_if_wm",
    "rumpdev_miiphy",
    "rumpdev_audio",
    "rumpdev_pci_hdaudio",
    "rumpdev_hdaudio_hdafg",
];

fn link_sets(archive: &Path) -> BTreeSet<String> {
    let out = Command::new("readelf")
        .args(["-S", "-W"])
        .arg(archive)
        .output()
        .expect("readelf (binutils) is needed to link the rump components");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with("link_set_"))
        .map(str::to_string)
        .collect()
}

/// Builds the vDSO into `OUT_DIR/vdso.so`, which `kernel/src/proc/vdso.rs` embeds: for
/// x86_64 `vdso/vdso.c` (laid out by `vdso/vdso.lds`) with the host's C compiler, for
/// aarch64 `vdso/vdso-aarch64.c` (`vdso/vdso-aarch64.lds`) with Debian's
/// `aarch64-linux-gnu-gcc` (`cargo xtask deps` installs it).
fn build_vdso(out: &Path, aarch64: bool) {
    let (src, lds, cc_env, default_cc, arch_flag) = if aarch64 {
        (
            "vdso/vdso-aarch64.c",
            "vdso/vdso-aarch64.lds",
            "ADROS_VDSO_CC_AARCH64",
            "aarch64-linux-gnu-gcc",
            "-mgeneral-regs-only",
        )
    } else {
        (
            "vdso/vdso.c",
            "vdso/vdso.lds",
            "ADROS_VDSO_CC",
            "gcc",
            "-mno-red-zone",
        )
    };
    println!("cargo::rerun-if-changed={src}");
    println!("cargo::rerun-if-changed={lds}");
    println!("cargo::rerun-if-env-changed={cc_env}");
    let cc = std::env::var(cc_env).unwrap_or_else(|_| default_cc.into());
    let so = out.join("vdso.so");
    let status = Command::new(&cc)
        .args([
            "-O2",
            "-fPIC",
            "-shared",
            "-nostdlib",
            "-ffreestanding",
            "-fno-stack-protector",
            "-fno-asynchronous-unwind-tables",
            arch_flag,
            "-Wall",
            "-Werror",
            &format!("-Wl,-T,{lds}"),
            "-Wl,--hash-style=both",
            "-Wl,-soname,linux-vdso.so.1",
            "-Wl,--no-undefined",
            "-Wl,--build-id=none",
            "-Wl,-z,max-page-size=4096",
            "-Wl,-s",
            "-o",
        ])
        .arg(&so)
        .arg(src)
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run {cc} to build the vDSO ({e}): `cargo xtask deps` installs it")
        });
    assert!(
        status.success(),
        "{cc} failed to build the vDSO (kernel/{src})"
    );
}

fn main() {
    println!("cargo::rustc-check-cfg=cfg(rump_linked)");
    println!("cargo::rerun-if-changed=linker.ld");
    println!("cargo::rerun-if-env-changed=ADROS_RUMP_KERNEL_DIR");
    let target = std::env::var("TARGET").unwrap_or_default();
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    if target == "x86_64-unknown-none" {
        build_vdso(&out, false);
    } else if target.starts_with("aarch64-") {
        build_vdso(&out, true);
    }
    let mut sets = BTreeSet::new();
    let rump = std::env::var_os("ADROS_RUMP_KERNEL_DIR")
        .map(PathBuf::from)
        .filter(|_| target == "x86_64-unknown-none");
    let mut archives = Vec::new();
    if let Some(dir) = &rump {
        for c in COMPONENTS {
            let a = dir.join("lib").join(format!("lib{c}.a"));
            if !a.is_file() {
                panic!(
                    "{} is missing: rebuild with `cargo xtask rump build --target kernel --force`",
                    a.display()
                );
            }
            println!("cargo::rerun-if-changed={}", a.display());
            sets.extend(link_sets(&a));
            archives.push(a);
        }
    }
    let mut ld =
        String::from("/* Generated by kernel/build.rs: the rump components' link sets. */\n");
    for s in &sets {
        ld.push_str(&format!(
            "    {s} : AT(ADDR({s}) - KERNEL_VMA) {{ KEEP(*({s})) }}\n"
        ));
    }
    std::fs::write(out.join("linksets.ld"), ld).expect("writing linksets.ld");
    println!("cargo::rerun-if-changed=linker-aarch64.ld");
    if target.starts_with("aarch64-") && target.ends_with("-none-softfloat") {
        // The aarch64 kernel: the core's boot stub and layout (no vDSO, no rump yet).
        let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        println!("cargo::rustc-link-arg-bins=-T{dir}/linker-aarch64.ld");
        println!("cargo::rustc-link-arg-bins=--no-dynamic-linker");
    }
    if target == "x86_64-unknown-none" {
        let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        println!("cargo::rustc-link-arg-bins=-L{}", out.display());
        println!("cargo::rustc-link-arg-bins=-T{dir}/linker.ld");
        println!("cargo::rustc-link-arg-bins=--no-pie");
        println!("cargo::rustc-link-arg-bins=-zmax-page-size=0x1000");
        if !archives.is_empty() {
            println!("cargo::rustc-cfg=rump_linked");
            println!(
                "cargo::rustc-env=ADROS_RUMP_COMPONENTS={}",
                COMPONENTS.join(" ")
            );
            println!("cargo::rustc-link-arg-bins=-znostart-stop-gc");
            println!("cargo::rustc-link-arg-bins=--whole-archive");
            for a in &archives {
                println!("cargo::rustc-link-arg-bins={}", a.display());
            }
            println!("cargo::rustc-link-arg-bins=--no-whole-archive");
        }
    }
}
