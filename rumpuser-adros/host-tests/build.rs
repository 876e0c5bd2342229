//! Links the NetBSD rump component archives into this crate's test binaries when a host build
//! exists: `$ADROS_RUMP_HOST_DIR` (set by `cargo xtask test`), else the newest complete host
//! build in `~/.cache/adros/rump/` (made by `cargo xtask rump build --target host`). Without
//! one the tests are compiled without `cfg(rump_host)` and print `SKIPPED`.

use std::path::PathBuf;

/// Components the tests use, linked whole (they register through ELF link sets).
const COMPONENTS: &[&str] = &[
    "rump",
    "rumpvfs",
    "rumpdev",
    "rumpdev_disk",
    "rumpfs_ffs",
    "rumpfs_ext2fs",
    "rumpfs_tmpfs",
    "rumpfs_msdos",
    "rumpnet",
    "rumpnet_net",
    "rumpnet_netinet",
    "rumpnet_netinet6",
    "rumpnet_local",
    "rumpnet_config",
    // The device components are linked too, so every test proves they resolve against our
    // rumpcomp_pci_* hypercalls; the std host has no PCI, so the bus attaches empty.
    "rumpdev_pci",
    "rumpdev_pci_usbhc",
    "rumpdev_pci_xhci",
    "rumpdev_usb",
    "rumpdev_umass",
    "rumpdev_scsipi",
    "rumpdev_pci_if_wm",
    "rumpdev_miiphy",
    "rumpdev_audio",
    "rumpdev_pci_hdaudio",
    "rumpdev_hdaudio_hdafg",
];

fn cache_base() -> Option<PathBuf> {
    std::env::var_os("ADROS_RUMP_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/adros/rump")))
}

fn find() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("ADROS_RUMP_HOST_DIR") {
        return Some(PathBuf::from(d));
    }
    let base = cache_base()?;
    let mut best: Option<(std::time::SystemTime, PathBuf)> = None;
    for e in std::fs::read_dir(base).ok()?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let stamp = e.path().join(".complete");
        // `<dir>.partial` is a build under way or interrupted (xtask/src/cache.rs).
        if !name.contains("-host-") || name.ends_with(".partial") || name.ends_with(".lock") {
            continue;
        }
        if let Ok(m) = std::fs::metadata(&stamp).and_then(|m| m.modified())
            && best.as_ref().is_none_or(|(t, _)| m > *t)
        {
            best = Some((m, e.path().join("dest")));
        }
    }
    best.map(|(_, p)| p)
}

fn main() {
    println!("cargo::rustc-check-cfg=cfg(rump_host)");
    println!("cargo::rustc-check-cfg=cfg(rumpuser_posix)");
    println!("cargo::rerun-if-env-changed=ADROS_RUMP_BENCH_POSIX_DIR");
    if let Some(posix) = std::env::var_os("ADROS_RUMP_BENCH_POSIX_DIR") {
        link_posix(&PathBuf::from(posix));
        return;
    }
    println!("cargo::rerun-if-env-changed=ADROS_RUMP_HOST_DIR");
    println!("cargo::rerun-if-env-changed=ADROS_RUMP_CACHE");
    if let Some(base) = cache_base() {
        // A build appearing later should re-run this script.
        println!("cargo::rerun-if-changed={}", base.display());
    }
    let Some(dir) = find() else { return };
    println!("cargo::rerun-if-env-changed=ADROS_RUMP_TEST_COMPONENTS");
    // Debugging aid: link only these components (space-separated).
    let over: Option<Vec<String>> = std::env::var("ADROS_RUMP_TEST_COMPONENTS")
        .ok()
        .map(|s| s.split_whitespace().map(String::from).collect());
    let list: Vec<String> =
        over.unwrap_or_else(|| COMPONENTS.iter().map(|s| s.to_string()).collect());
    let lib = dir.join("lib");
    let missing: Vec<_> = list
        .iter()
        .filter(|c| !lib.join(format!("lib{c}_pic.a")).is_file())
        .collect();
    if !missing.is_empty() {
        println!(
            "cargo::warning=rump host build at {} lacks {missing:?}; rump tests will skip",
            dir.display()
        );
        return;
    }
    println!("cargo::rerun-if-changed={}", dir.join("lib").display());
    println!("cargo::rustc-cfg=rump_host");
    println!("cargo::rustc-env=ADROS_RUMP_LINKED_DIR={}", dir.display());
    // Components find each other through link sets (__start_/__stop_ sections), which
    // --gc-sections would drop under lld's default.
    println!("cargo::rustc-link-arg-tests=-Wl,-z,nostart-stop-gc");
    println!("cargo::rustc-link-arg-tests=-Wl,--whole-archive");
    for c in &list {
        println!(
            "cargo::rustc-link-arg-tests={}",
            lib.join(format!("lib{c}_pic.a")).display()
        );
    }
    println!("cargo::rustc-link-arg-tests=-Wl,--no-whole-archive");
    // The benchmark links the same way (only the file-system components).
    println!("cargo::rustc-link-arg-benches=-Wl,-z,nostart-stop-gc");
    println!("cargo::rustc-link-arg-benches=-Wl,--whole-archive");
    for c in BENCH_COMPONENTS {
        println!(
            "cargo::rustc-link-arg-benches={}",
            lib.join(format!("lib{c}_pic.a")).display()
        );
    }
    println!("cargo::rustc-link-arg-benches=-Wl,--no-whole-archive");
}

const BENCH_COMPONENTS: &[&str] = &[
    "rump",
    "rumpvfs",
    "rumpdev",
    "rumpdev_disk",
    "rumpfs_ffs",
    "rumpfs_ext2fs",
];

/// The benchmark's peer: the same components from the `posix` build, hosted by NetBSD's own
/// librumpuser instead of rumpuser-adros (whose symbols are then never referenced, so not
/// linked).
fn link_posix(dir: &std::path::Path) {
    let lib = dir.join("lib");
    println!("cargo::rustc-cfg=rump_host");
    println!("cargo::rustc-cfg=rumpuser_posix");
    println!("cargo::rustc-link-arg-benches=-Wl,-z,nostart-stop-gc");
    println!("cargo::rustc-link-arg-benches=-Wl,--whole-archive");
    for c in BENCH_COMPONENTS.iter().chain(["rumpuser"].iter()) {
        println!(
            "cargo::rustc-link-arg-benches={}",
            lib.join(format!("lib{c}_pic.a")).display()
        );
    }
    println!("cargo::rustc-link-arg-benches=-Wl,--no-whole-archive");
    for l in ["-lpthread", "-lrt", "-ldl"] {
        println!("cargo::rustc-link-arg-benches={l}");
    }
}
