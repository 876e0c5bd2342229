//! `cargo xtask rump …`: cross-building NetBSD rump components with buildrump.sh.
//! (Owned by the rumpuser-adros work; see issue 5.)

use clap::{Args, Subcommand};

use crate::util::Result;

#[derive(Args, Clone)]
pub struct RumpArgs {
    #[command(subcommand)]
    pub cmd: RumpCmd,
}

#[derive(Subcommand, Clone)]
pub enum RumpCmd {
    /// Build the rump components for a target.
    Build {
        /// host (for the hypercall tests) or kernel (freestanding, linked into AdrOS).
        #[arg(long, default_value = "host")]
        target: String,
    },
}

pub fn rump(_a: RumpArgs) -> Result<i32> {
    Err("cargo xtask rump is not implemented yet (issue 5)".into())
}

/// Used by `cargo xtask test`: builds (or finds cached) host rump components when NetBSD
/// source is available. `Ok(None)` means "no NetBSD source": rump tests are skipped.
pub fn ensure_host_build() -> Result<Option<std::path::PathBuf>> {
    Ok(None)
}
