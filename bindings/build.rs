//! Generates the rump bindings with bindgen from NetBSD's own headers into `OUT_DIR`
//! (never into the source tree: nothing of NetBSD's is committed).
//!
//! NetBSD source is looked up as `cargo xtask` does (xtask/src/rump.rs): `netbsd-src/` in the
//! workspace if checked out, then `$ADROS_NETBSD_SRC`, then `~/.cache/adros/netbsd-src`.
//! The headers are parsed for NetBSD/amd64 (`--target=x86_64-unknown-netbsd`, NetBSD's
//! `sys/` headers instead of the host's), so `struct stat` and friends get NetBSD's layouts
//! and `rump_sys_*` their `__RENAME`d link names (`rump___sysimpl_stat50`, …).
//!
//! Without the source, or when libclang is missing or fails, nothing is generated: the crate
//! builds with `AVAILABLE = false` and without `cfg(netbsd_bindings)`, and the tests skip.
//!
//! Besides `bindings.rs` the script writes `ffi_checks.rs`: a macro naming every `rumpuser_*`
//! function of the bindings with its arity, which `tests/rumpuser_abi.rs` turns into a
//! comparison with rumpuser-adros's symbol of the same name (a missing symbol or a different
//! arity fails to compile).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The wrapper header: the rump kernel's public headers plus the NetBSD headers of the
/// structures the tests and the kernel pass through `rump_sys_*`.
const WRAPPER: &str = r#"
#include <sys/types.h>
#include <sys/time.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/dirent.h>
#include <sys/fcntl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <ufs/ufs/ufsmount.h>
#include <fs/tmpfs/tmpfs_args.h>
#include <fs/msdosfs/msdosfsmount.h>
#include <rump/rump.h>
#include <rump/rump_syscalls.h>
#include <rump/rumpuser.h>
"#;

fn netbsd_src() -> Option<PathBuf> {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    let cands = [
        manifest.parent().map(|w| w.join("netbsd-src")),
        std::env::var_os("ADROS_NETBSD_SRC").map(PathBuf::from),
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/adros/netbsd-src")),
    ];
    cands.into_iter().flatten().find(|p| {
        p.join("sys/rump/Makefile.rump").is_file()
            && p.join("sys/rump/include/rump/rumpuser.h").is_file()
    })
}

/// `<machine/…>`, `<amd64/…>` and `<x86/…>` as NetBSD's installed /usr/include has them.
fn overlay(out: &Path, src: &Path) -> std::io::Result<PathBuf> {
    let dir = out.join("netbsd-include");
    std::fs::create_dir_all(&dir)?;
    for (name, target) in [
        ("machine", "sys/arch/amd64/include"),
        ("amd64", "sys/arch/amd64/include"),
        ("x86", "sys/arch/x86/include"),
    ] {
        let link = dir.join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(src.join(target), &link)?;
    }
    // <sys/types.h> includes libpthread's pthread_types.h, which the rump source tree lacks;
    // only pthread_t is used (by <signal.h>), as an opaque pointer.
    std::fs::write(
        dir.join("pthread_types.h"),
        "/* stub: see bindings/build.rs */\ntypedef struct __pthread_st *pthread_t;\n",
    )?;
    Ok(dir)
}

fn generate(src: &Path, out: &Path) -> Result<String, String> {
    let ovl = overlay(out, src).map_err(|e| format!("include overlay: {e}"))?;
    let inc = |p: &Path| format!("-I{}", p.display());
    let b = bindgen::Builder::default()
        .header_contents("adros_rump_wrapper.h", WRAPPER)
        .clang_arg("--target=x86_64-unknown-netbsd")
        // Only NetBSD's headers (clang's own stddef.h/stdarg.h stay available).
        .clang_arg("-nostdlibinc")
        .clang_arg(inc(&ovl))
        .clang_arg(inc(&src.join("sys")))
        .clang_arg(inc(&src.join("sys/rump/include")))
        .clang_arg(inc(&src.join("include")))
        // rumpuser.h is only for the kernel and hypercall implementations; we are the latter.
        .clang_arg("-DLIBRUMPUSER")
        .clang_arg("-D_NETBSD_SOURCE")
        .use_core()
        .ctypes_prefix("core::ffi")
        .prepend_enum_name(false)
        .layout_tests(true)
        .derive_default(true)
        .derive_debug(true)
        .generate_comments(false)
        .allowlist_function("rump_.*|rumpuser_.*|rump_sys_.*|rump_pub_.*")
        .allowlist_type("stat|dirent|timespec|statvfs|sockaddr|sockaddr_in|in_addr|ufs_args|tmpfs_args|msdosfs_args|rumpuser_.*|rump_.*")
        .allowlist_var("RUMPUSER_.*|RUMP_.*|O_(RDONLY|WRONLY|RDWR|CREAT|TRUNC|EXCL|APPEND|DIRECTORY|NONBLOCK)|S_IF(MT|DIR|REG|LNK|BLK|CHR|IFO|SOCK)|AF_(INET|INET6|LOCAL|UNIX)|SOCK_(STREAM|DGRAM|RAW)|IPPROTO_(TCP|UDP|IP)|TCP_NODELAY|SOL_SOCKET|SO_(REUSEADDR|SNDBUF|RCVBUF|KEEPALIVE)|DT_.*|MNT_(RDONLY|FORCE|UPDATE)|TMPFS_ARGS_VERSION|MSDOSFSMNT_VERSION|MAXNAMLEN|_VFS_NAMELEN|_VFS_MNAMELEN")
        // C enums become plain integer constants under their C names (RUMPUSER_LWP_SET,
        // RUMP_ETFS_BLK, …), as rump's C callers use them.
        .allowlist_type("rumplwpop|rumprwlock|rumpclock")
        .default_enum_style(bindgen::EnumVariation::Consts);
    let bindings = b.generate().map_err(|e| format!("bindgen: {e}"))?;
    Ok(bindings.to_string())
}

/// Parses the generated code with syn and writes a macro `for_each_rumpuser_fn!(m)` that
/// expands to `m!(name, arity, variadic, noreturn);` for every rumpuser_* function, plus the
/// list of their names.
fn ffi_checks(code: &str) -> Result<String, String> {
    let file = syn::parse_file(code).map_err(|e| format!("parsing the bindings: {e}"))?;
    let mut out = String::from(
        "// Generated by bindings/build.rs from rumpuser.h: `$m!(name, arity, variadic, noreturn);` per hypercall.\n\
         macro_rules! for_each_rumpuser_fn {\n    ($m:ident) => {\n",
    );
    let mut names = Vec::new();
    for item in &file.items {
        let syn::Item::ForeignMod(m) = item else {
            continue;
        };
        for fi in &m.items {
            let syn::ForeignItem::Fn(f) = fi else {
                continue;
            };
            let name = f.sig.ident.to_string();
            if !name.starts_with("rumpuser_") {
                continue;
            }
            let arity = f.sig.inputs.len();
            let variadic = f.sig.variadic.is_some();
            let noreturn = matches!(&f.sig.output, syn::ReturnType::Type(_, t) if matches!(**t, syn::Type::Never(_)));
            names.push(name.clone());
            writeln!(out, "        $m!({name}, {arity}, {variadic}, {noreturn});").unwrap();
        }
    }
    out.push_str("    };\n}\n");
    writeln!(out, "pub const RUMPUSER_FUNCTIONS: &[&str] = &{names:?};").unwrap();
    Ok(out)
}

fn main() {
    println!("cargo::rustc-check-cfg=cfg(netbsd_bindings)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=ADROS_NETBSD_SRC");
    println!("cargo::rerun-if-env-changed=LIBCLANG_PATH");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    // Stale output from an earlier build with source must not be included without it.
    let _ = std::fs::remove_file(out.join("bindings.rs"));
    let _ = std::fs::remove_file(out.join("ffi_checks.rs"));
    let Some(src) = netbsd_src() else {
        println!(
            "cargo::warning=no NetBSD source found (netbsd-src/, $ADROS_NETBSD_SRC, ~/.cache/adros/netbsd-src): rump bindings not generated, their tests skip"
        );
        return;
    };
    println!(
        "cargo::rerun-if-changed={}",
        src.join("sys/rump/include/rump").display()
    );
    println!(
        "cargo::rerun-if-changed={}",
        src.join("sys/sys/stat.h").display()
    );
    let res = generate(&src, &out).and_then(|code| {
        let checks = ffi_checks(&code)?;
        std::fs::write(out.join("bindings.rs"), &code).map_err(|e| e.to_string())?;
        std::fs::write(out.join("ffi_checks.rs"), checks).map_err(|e| e.to_string())
    });
    match res {
        Ok(()) => {
            println!("cargo::rustc-cfg=netbsd_bindings");
            println!(
                "cargo::rustc-env=ADROS_NETBSD_BINDINGS_SRC={}",
                src.display()
            );
        }
        Err(e) => {
            // Not fatal: the crate is usable (AVAILABLE = false), the tests say why they skip.
            let first = e.lines().next().unwrap_or("");
            println!(
                "cargo::warning=rump bindings not generated from {}: {first}",
                src.display()
            );
        }
    }
}
