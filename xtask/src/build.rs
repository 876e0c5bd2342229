//! `cargo xtask build`: kernel → symbol table → initrd → module bundle (for QEMU's direct PVH
//! boot, the default of `run`, `test` and `bench`) and GRUB ISO (Multiboot2, for real
//! machines and `--iso`).

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Args;

use crate::util::{Result, private_sibling, replace_dir, root, run_checked, spinner, target_dir};

pub const DEFAULT_CMDLINE: &str = "console=ttyS0 loglevel=6";
pub const KERNEL_TARGET: &str = "x86_64-unknown-none";

#[derive(Args, Clone, Default)]
pub struct BuildArgs {
    /// Build the kernel with the dev profile (faster to compile, slower to run).
    #[arg(long)]
    pub debug: bool,
    /// The CPU architecture: x86_64 (the default: kernel, initrd, ISO) or aarch64 (for QEMU
    /// `virt`: the kernel core's test image, and the kernel as an ELF and an arm64 Image;
    /// see docs/arch.md).
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<String>,
}

impl BuildArgs {
    /// `--arch`, x86_64 when not given.
    pub fn arch(&self) -> Result<adros_tests::qemu::Arch> {
        adros_tests::qemu::Arch::parse(self.arch.as_deref().unwrap_or("x86_64"))
    }
}

pub struct Built {
    pub kernel: PathBuf,
    pub symbols: PathBuf,
    pub iso: PathBuf,
    /// The module bundle (symbols + initrd) QEMU's `-initrd` passes on the direct boot.
    pub modules: PathBuf,
    /// Whether NetBSD's rump components are linked into `kernel`.
    pub rump_linked: bool,
    /// The extra files in the initrd (the C test programs, `run --add`).
    pub extras: Vec<crate::initrd::Extra>,
}

/// `cargo xtask build`: the kernel and the default ISO (`target/adros.iso`), or with
/// `--arch aarch64` the aarch64 image.
pub fn build_command(args: &BuildArgs) -> Result<()> {
    if args.arch()? == adros_tests::qemu::Arch::Aarch64 {
        crate::deps::ensure(true)?;
        let k = build_kernel_aarch64(args.debug)?;
        crate::initrd::build_aarch64()?;
        eprintln!(
            "xtask: built {} and {}",
            k.display(),
            aarch64_kernel_image(args.debug).display()
        );
        return Ok(());
    }
    build(args).map(|_| ())
}

/// Builds the kernel and the default ISO (`target/adros.iso`).
pub fn build(args: &BuildArgs) -> Result<Built> {
    build_with(args, &[], &[])
}

/// The aarch64 image (`adros-aarch64`: the kernel core with its aarch64 boot path and a
/// small `kmain`), an ELF for QEMU's `-kernel`. The kernel crate (`adros-kernel`, without
/// rump: NetBSD is cross-built for x86_64 only) is built beside it, into the same directory.
pub fn build_kernel_aarch64(debug: bool) -> Result<PathBuf> {
    let target = adros_tests::qemu::Arch::Aarch64.kernel_target();
    let pb = spinner(
        "building the aarch64 image and kernel (cargo build -p adros-aarch64 -p adros-kernel)",
    );
    let profile = if debug { "dev" } else { "release" };
    let out = Command::new(env!("CARGO"))
        .current_dir(root())
        .args([
            "build",
            "-p",
            "adros-aarch64",
            "-p",
            "adros-kernel",
            "--target",
            target,
            "--profile",
            profile,
        ])
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    pb.finish_and_clear();
    if !out.status.success() {
        return Err(format!(
            "aarch64 build failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let dir = target_dir()
        .join(target)
        .join(if debug { "debug" } else { "release" });
    let kernel = dir.join("adros-kernel");
    flat_image(&kernel, &dir.join("adros-kernel.img"))?;
    Ok(dir.join("adros-aarch64"))
}

/// The aarch64 kernel as an arm64 Linux `Image` (beside the ELF `build_kernel_aarch64`
/// builds): QEMU boots that through its Linux path, which hands over the `-initrd` in the
/// device tree (it does not for an ELF).
pub fn aarch64_kernel_image(debug: bool) -> PathBuf {
    target_dir()
        .join(adros_tests::qemu::Arch::Aarch64.kernel_target())
        .join(if debug { "debug" } else { "release" })
        .join("adros-kernel.img")
}

/// `llvm-objcopy -O binary` (the toolchain's `llvm-tools` component): the loadable bytes
/// from the load address on; the Image header is the first of them (boot.S).
fn flat_image(elf: &Path, out: &Path) -> Result<()> {
    let sysroot = Command::new("rustc")
        .current_dir(root())
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("cannot run rustc: {e}"))?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    let objcopy = std::fs::read_dir(sysroot.join("lib/rustlib"))
        .map_err(|e| format!("{}: {e}", sysroot.display()))?
        .flatten()
        .map(|e| e.path().join("bin/llvm-objcopy"))
        .find(|p| p.is_file())
        .ok_or("no llvm-objcopy in the toolchain (rustup component add llvm-tools)")?;
    let st = Command::new(&objcopy)
        .args(["-O", "binary"])
        .arg(elf)
        .arg(out)
        .status()
        .map_err(|e| format!("cannot run {}: {e}", objcopy.display()))?;
    if !st.success() {
        return Err(format!("llvm-objcopy -O binary {} failed", elf.display()));
    }
    Ok(())
}

/// `build`, with extra `HOST:GUEST` files (`run --add`) and Debian packages with their
/// dependencies (`run --add-deb`) packed into the initrd.
pub fn build_with(args: &BuildArgs, adds: &[String], debs: &[String]) -> Result<Built> {
    let mut extras = adds
        .iter()
        .map(|a| crate::initrd::parse_extra(a))
        .collect::<Result<Vec<_>>>()?;
    crate::deps::ensure(true)?;
    let trees = if debs.is_empty() {
        Vec::new()
    } else {
        vec![crate::debs::stage(debs)?]
    };
    extras.extend(build_user_tests()?);
    let kernel = build_kernel(args)?;
    let rump_linked = adros_tests::kernel_has_rump(&kernel);
    let symbols = write_symbols(&kernel)?;
    // <target>/initrd.tar.lz4, which every ISO made by `make_iso` carries.
    crate::initrd::build(&extras, &trees)?;
    let iso = target_dir().join("adros.iso");
    make_iso(&kernel, &symbols, DEFAULT_CMDLINE, &iso)?;
    let modules = target_dir().join("adros.modules");
    make_modules(&symbols, &modules)?;
    eprintln!("xtask: built {} and {}", iso.display(), modules.display());
    Ok(Built {
        kernel,
        symbols,
        iso,
        modules,
        rump_linked,
        extras,
    })
}

pub fn build_kernel(args: &BuildArgs) -> Result<PathBuf> {
    // NetBSD's rump components go into the kernel when they can be had (see docs/rump.md).
    let rump = crate::rump::ensure_kernel_build()?;
    let pb = spinner(match &rump {
        Some(_) => {
            "building the kernel with the NetBSD rump components (cargo build -p adros-kernel)"
        }
        None => {
            "building the kernel, native drivers only: no NetBSD source (cargo build -p adros-kernel)"
        }
    });
    let profile = if args.debug { "dev" } else { "release" };
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(root()).args([
        "build",
        "-p",
        "adros-kernel",
        "--target",
        KERNEL_TARGET,
        "--profile",
        profile,
    ]);
    match &rump {
        Some(dir) => cmd.env(crate::rump::KERNEL_DIR_ENV, dir),
        None => cmd.env_remove(crate::rump::KERNEL_DIR_ENV),
    };
    let out = cmd.output().map_err(|e| format!("cannot run cargo: {e}"))?;
    pb.finish_and_clear();
    if !out.status.success() {
        return Err(format!(
            "kernel build failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let dir = if args.debug { "debug" } else { "release" };
    Ok(target_dir()
        .join(KERNEL_TARGET)
        .join(dir)
        .join("adros-kernel"))
}

/// `nm -n -C` of the kernel, text symbols only: GRUB loads it as the `symbols` module so
/// panics and exceptions print function names.
pub fn write_symbols(kernel: &Path) -> Result<PathBuf> {
    let out = Command::new("nm")
        .args(["-n", "-C", "--defined-only"])
        .arg(kernel)
        .output()
        .map_err(|e| format!("cannot run nm: {e} (install binutils)"))?;
    if !out.status.success() {
        return Err(format!(
            "nm failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text: String = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| matches!(l.split(' ').nth(1), Some("T" | "t" | "W" | "w")))
        .map(|l| format!("{l}\n"))
        .collect();
    let path = kernel.with_extension("sym");
    crate::util::write_atomic(&path, text)?;
    Ok(path)
}

/// Writes the module bundle QEMU's direct (PVH) boot passes as `-initrd`: the symbol table
/// as `symbols` and `<target>/initrd.tar.lz4` (when built), inflated back to its plain USTAR
/// archive, as `initrd` — the modules the ISO's `module2` lines give GRUB. QEMU copies the
/// file into guest memory at host speed, so the kernel is spared inflating it under TCG.
pub fn make_modules(symbols: &Path, out: &Path) -> Result<()> {
    let initrd = target_dir().join("initrd.tar.lz4");
    let tar = target_dir().join("initrd.tar");
    let mut mods: Vec<(&str, &Path)> = vec![("symbols", symbols)];
    if initrd.exists() {
        let lz4 =
            std::fs::read(&initrd).map_err(|e| format!("reading {}: {e}", initrd.display()))?;
        let mut plain = Vec::new();
        std::io::Read::read_to_end(
            &mut lz4_flex::frame::FrameDecoder::new(&lz4[..]),
            &mut plain,
        )
        .map_err(|e| format!("inflating {}: {e}", initrd.display()))?;
        if std::fs::read(&tar).ok().as_deref() != Some(&plain[..]) {
            crate::util::write_atomic(&tar, &plain)?;
        }
        mods.push((crate::initrd::MODULE_NAME, &tar));
    }
    adros_tests::bundle::write(&mods, out)
}

/// Writes a GRUB ISO booting `kernel` with `cmdline` to `iso`, with `<target>/initrd.tar.lz4`
/// (when built) as the `initrd` module. The tests crate copies this staging directory for
/// its per-command-line ISOs, so they carry the same modules.
///
/// Both are made under private names and renamed into place, so that another `cargo xtask`
/// building or booting the same ISO at the same time never sees half of one.
pub fn make_iso(kernel: &Path, symbols: &Path, cmdline: &str, iso: &Path) -> Result<()> {
    let final_stage = iso.with_extension("d");
    let stage = private_sibling(&final_stage, "tmp");
    let _ = std::fs::remove_dir_all(&stage);
    let boot = stage.join("boot");
    std::fs::create_dir_all(boot.join("grub"))
        .map_err(|e| format!("creating {}: {e}", boot.display()))?;
    std::fs::copy(kernel, boot.join("adros-kernel"))
        .map_err(|e| format!("copying the kernel: {e}"))?;
    std::fs::copy(symbols, boot.join("adros.sym"))
        .map_err(|e| format!("copying the symbol table: {e}"))?;
    let initrd = target_dir().join("initrd.tar.lz4");
    let initrd_line = if initrd.exists() {
        std::fs::copy(&initrd, boot.join("initrd.tar.lz4"))
            .map_err(|e| format!("copying the initrd: {e}"))?;
        format!(
            "    module2 /boot/initrd.tar.lz4 {}\n",
            crate::initrd::MODULE_NAME
        )
    } else {
        String::new()
    };
    if cmdline.contains('\n') || cmdline.contains('}') {
        return Err("the kernel command line may not contain newlines or '}'".into());
    }
    let cfg = format!(
        "set timeout=0\nset default=0\nserial --unit=0 --speed=115200\nterminal_input serial console\nterminal_output serial console\n\
         menuentry \"AdrOS\" {{\n    multiboot2 /boot/adros-kernel {cmdline}\n    module2 /boot/adros.sym symbols\n{initrd_line}    boot\n}}\n"
    );
    std::fs::write(boot.join("grub/grub.cfg"), cfg)
        .map_err(|e| format!("writing grub.cfg: {e}"))?;
    let pb = spinner(format!(
        "making {} (grub-mkrescue)",
        iso.file_name().unwrap_or_default().to_string_lossy()
    ));
    let tmp_iso = private_sibling(iso, "tmp");
    let r = run_checked(
        Command::new("grub-mkrescue")
            .arg("-o")
            .arg(&tmp_iso)
            .arg(&stage),
        "grub-mkrescue",
        "Is grub-pc-bin installed? `cargo xtask deps` installs it.",
    );
    pb.finish_and_clear();
    if let Err(e) = r {
        let _ = std::fs::remove_dir_all(&stage);
        let _ = std::fs::remove_file(&tmp_iso);
        return Err(e);
    }
    std::fs::rename(&tmp_iso, iso).map_err(|e| format!("renaming {}: {e}", tmp_iso.display()))?;
    replace_dir(&stage, &final_stage)
}

/// A C compiler for the guest's static test programs.
struct CCompiler {
    /// The command (`musl-gcc`, `aarch64-linux-gnu-gcc`).
    cmd: &'static str,
    /// Flags after the common `-static -O2 -pthread` (glibc keeps libm apart: `-lm`).
    libs: &'static [&'static str],
    /// What to run when it is missing or fails.
    hint: &'static str,
    /// Programs not built with it: (name, why). Shown once per build.
    excluded: &'static [(&'static str, &'static str)],
}

const MUSL_GCC: CCompiler = CCompiler {
    cmd: "musl-gcc",
    libs: &[],
    hint: "musl-gcc comes with Debian's musl-tools (`cargo xtask deps`).",
    excluded: &[],
};

/// Debian's aarch64 cross compiler with its glibc (static): the same sources as x86_64.
const AARCH64_GCC: CCompiler = CCompiler {
    cmd: "aarch64-linux-gnu-gcc",
    libs: &["-lm"],
    hint: "the aarch64 test programs need Debian's gcc-aarch64-linux-gnu and libc6-dev-arm64-cross: run `cargo xtask deps`.",
    excluded: AARCH64_EXCLUDED,
};

/// The programs of `tests/user/` that do not build for arm64, and why — the one place this
/// is written down. asm-generic (arm64's numbering) has no open/stat/lstat/fork/vfork/iopl:
/// libc reaches them through the `*at`/`clone` forms, and these programs call the x86_64
/// numbers by name on purpose. (Single checks of an x86_64-only call inside a suite sit
/// under `#ifdef SYS_<name>` in that suite instead.)
pub const AARCH64_EXCLUDED: &[(&str, &str)] = &[
    (
        "abuse",
        "calls SYS_open, SYS_stat and SYS_lstat by number: x86_64-only system calls",
    ),
    (
        "sysfuzz",
        "calls SYS_fork, SYS_vfork and SYS_iopl by number: x86_64-only system calls",
    ),
];

/// Every `*.c` in `src` built static with `cc` into `out` (rebuilt when it or any header of
/// `src` is newer), as initrd entries under `guest_dir`.
fn build_c_dir(
    cc: &CCompiler,
    src: &Path,
    out: &Path,
    guest_dir: &str,
) -> Result<Vec<crate::initrd::Extra>> {
    std::fs::create_dir_all(out).map_err(|e| format!("creating {}: {e}", out.display()))?;
    let mut v = Vec::new();
    let Ok(rd) = std::fs::read_dir(src) else {
        return Ok(v);
    };
    let mut files: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "c"))
        .collect();
    files.sort();
    // Headers (tests/user/*.h, e.g. check.h) are not programs; a program is rebuilt when
    // it or any header is newer than its binary.
    let newest_header = std::fs::read_dir(src)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "h"))
        .filter_map(|e| e.metadata().and_then(|m| m.modified()).ok())
        .max();
    for c in files {
        let name = c
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if cc.excluded.iter().any(|(n, _)| *n == name) {
            continue;
        }
        let bin = out.join(&name);
        let fresh = std::fs::metadata(&bin)
            .and_then(|b| {
                let built = b.modified()?;
                Ok(built >= std::fs::metadata(&c)?.modified()?
                    && newest_header.is_none_or(|h| built >= h))
            })
            .unwrap_or(false);
        if !fresh {
            if crate::util::which(cc.cmd).is_none() {
                return Err(format!("{} is not installed: {}", cc.cmd, cc.hint));
            }
            let tmp = private_sibling(&bin, "tmp");
            run_checked(
                Command::new(cc.cmd)
                    .args(["-static", "-O2", "-pthread", "-o"])
                    .arg(&tmp)
                    .arg(&c)
                    .args(cc.libs),
                &format!("compiling {} with {}", c.display(), cc.cmd),
                cc.hint,
            )?;
            std::fs::rename(&tmp, &bin).map_err(|e| format!("renaming {}: {e}", tmp.display()))?;
        }
        v.push(crate::initrd::Extra {
            host: bin,
            guest: format!("{guest_dir}/{name}"),
        });
    }
    Ok(v)
}

/// The guest test programs (tests/user/*.c, built static with musl-gcc) and scripts
/// (tests/guest/*.sh), packed into the initrd under /usr/libexec/adros-tests/, and the
/// user programs of `user/*.c` (e.g. `play`), under /usr/bin/.
pub fn build_user_tests() -> Result<Vec<crate::initrd::Extra>> {
    user_programs(&MUSL_GCC, "")
}

/// [`build_user_tests`] for aarch64: the same sources cross-built with Debian's
/// `aarch64-linux-gnu-gcc` (into `<target>/user-aarch64/`), at the same guest paths, less
/// [`AARCH64_EXCLUDED`].
pub fn build_user_tests_aarch64() -> Result<Vec<crate::initrd::Extra>> {
    for (name, why) in AARCH64_EXCLUDED {
        eprintln!("xtask: tests/user/{name}.c is not built for aarch64: {why}");
    }
    user_programs(&AARCH64_GCC, "-aarch64")
}

fn user_programs(cc: &CCompiler, suffix: &str) -> Result<Vec<crate::initrd::Extra>> {
    let mut v = build_c_dir(
        cc,
        &root().join("tests/user"),
        &target_dir().join(format!("user{suffix}")),
        "/usr/libexec/adros-tests",
    )?;
    v.extend(build_c_dir(
        cc,
        &root().join("user"),
        &target_dir().join(format!("user-bin{suffix}")),
        "/usr/bin",
    )?);
    // Guest shell scripts (tests/guest/*.sh) go in as they are.
    if let Ok(rd) = std::fs::read_dir(root().join("tests/guest")) {
        let mut scripts: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "sh"))
            .collect();
        scripts.sort();
        for sh in scripts {
            let name = sh
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            v.push(crate::initrd::Extra {
                host: sh,
                guest: format!("/usr/libexec/adros-tests/{name}"),
            });
        }
    }
    Ok(v)
}
