//! `cargo xtask` — every build, run and test step of AdrOS.

mod bench;
mod build;
mod cache;
mod compare;
mod compare_audio;
mod compare_busybox;
mod compare_net;
mod compare_usb;
mod debs;
mod deps;
mod initrd;
mod lint;
mod qemu;
mod rump;
mod run;
mod soak;
mod test;
mod toolchain;
mod util;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Build, run and test AdrOS")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Check for (and install) everything the build needs: host packages (apt-get, as root on
    /// Debian) and the Rust targets and components of rust-toolchain.toml (rustup).
    Deps {
        /// Only report; never install.
        #[arg(long)]
        check: bool,
    },
    /// Build the kernel, the symbol table and the bootable ISO (target/adros.iso); with
    /// `--arch aarch64`, the core's aarch64 image and the kernel (ELF and arm64 Image).
    Build(build::BuildArgs),
    /// rustfmt and clippy (-D warnings) on the host packages and the kernel (native and with
    /// the rump components): what `cargo xtask test` runs first.
    Lint(lint::LintArgs),
    /// Boot AdrOS in QEMU.
    Run(Box<run::RunArgs>),
    /// Everything CI runs: host tests, in-kernel tests, QEMU integration tests.
    Test(test::TestArgs),
    /// AdrOS beside a Linux guest on the same QEMU: `cargo xtask bench [syscall boot fs smp]`;
    /// `cargo xtask bench rump`: rumpuser-adros beside NetBSD's librumpuser on the host.
    Bench(bench::BenchArgs),
    /// The two ext2 stacks (native, NetBSD's in rump) on the same image and workload:
    /// `cargo xtask compare ext2`; `compare audio`, `compare usb` and `compare net` likewise for
    /// sound, USB and the network; `compare busybox`: busybox's upstream testsuite on AdrOS
    /// and on Linux 6.1.
    Compare(compare::CompareArgs),
    /// The long-test target: the SMP stress suite N times in a row (default 20 at -smp 4).
    Soak(soak::SoakArgs),
    /// NetBSD rump components: `cargo xtask rump build --target host|kernel`.
    Rump(rump::RumpArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Deps { check } => deps::command(!check).map(|_| 0),
        Cmd::Build(a) => build::build_command(&a).map(|_| 0),
        Cmd::Run(a) => run::run(*a),
        Cmd::Lint(a) => lint::lint(a),
        Cmd::Test(a) => test::test(a),
        Cmd::Bench(a) => bench::bench(a),
        Cmd::Rump(a) => rump::rump(a),
        Cmd::Soak(a) => soak::soak(a),
        Cmd::Compare(a) => compare::compare(a),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("xtask: error: {e}");
            std::process::exit(2);
        }
    }
}
