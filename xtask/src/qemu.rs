//! QEMU for xtask: the machine definition and the headless runner live in the
//! `adros-tests` library, so `cargo xtask run`, the in-kernel test run and the integration
//! tests all boot the guest with the same QEMU command line.

pub use adros_tests::qemu::{
    Arch, DirectBoot, Machine, Outcome, describe, gdb_script, run_headless,
};
