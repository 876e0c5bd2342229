//! Unpacking the initrd (USTAR in an LZ4 frame, made by `xtask/src/initrd.rs`, or the
//! plain USTAR archive the direct boot's module bundle carries) into a directory tree: the
//! root tmpfs at boot, or any directory in tests.

use alloc::format;
use alloc::string::String;
use core::fmt;

use super::consts::*;
use super::lz4frame::{self, Lz4Error};
use super::node::{SetAttr, Timespec};
use super::ustar::{Kind, Reader, TarError};
use super::{FsCtx, PathRef};
use crate::errno::Errno;

#[derive(Debug)]
pub enum InitrdError {
    Lz4(Lz4Error),
    Tar(TarError),
    /// Creating `path` failed.
    Fs {
        path: String,
        what: &'static str,
        errno: Errno,
    },
}

impl fmt::Display for InitrdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Lz4(e) => write!(f, "decompression failed: {e}"),
            Self::Tar(e) => write!(f, "bad archive: {e}"),
            Self::Fs { path, what, errno } => write!(f, "cannot {what} /{path}: {errno:?}"),
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub compressed: usize,
    pub archive: usize,
    pub files: usize,
    pub dirs: usize,
    pub symlinks: usize,
    pub hardlinks: usize,
    pub devices: usize,
    pub bytes: u64,
    pub inflate_ns: u64,
}

/// Whether `image` is an uncompressed USTAR archive (the magic of its first header). QEMU's
/// direct boot loads the initrd into memory with a copy at host speed, so xtask gives it
/// the archive uncompressed and the kernel skips inflating it (LZ4 runs at ~50 MB/s under
/// TCG); GRUB reads the ISO's compressed one from a CD image, where size counts.
pub fn is_plain_tar(image: &[u8]) -> bool {
    matches!(image.get(257..263), Some(b"ustar\0") | Some(b"ustar "))
}

/// Inflates (unless it is a plain archive already) and unpacks `image` into `ctx.root`.
pub fn unpack(image: &[u8], ctx: &FsCtx) -> Result<Stats, InitrdError> {
    if is_plain_tar(image) {
        let mut s = unpack_tar(image, ctx)?;
        s.compressed = image.len();
        return Ok(s);
    }
    let t0 = crate::time::now_ns();
    let tar = lz4frame::decompress(image).map_err(InitrdError::Lz4)?;
    let inflate_ns = crate::time::now_ns().saturating_sub(t0);
    let mut s = unpack_tar(&tar, ctx)?;
    s.compressed = image.len();
    s.inflate_ns = inflate_ns;
    Ok(s)
}

/// Unpacks an (uncompressed) USTAR archive into `ctx.root`. Entries are applied in order;
/// later ones replace earlier ones; missing parent directories are created (0755).
pub fn unpack_tar(tar: &[u8], ctx: &FsCtx) -> Result<Stats, InitrdError> {
    let mut s = Stats {
        archive: tar.len(),
        ..Stats::default()
    };
    let root = ctx.root.clone();
    for e in Reader::new(tar) {
        let e = e.map_err(InitrdError::Tar)?;
        if e.path.is_empty() {
            continue;
        }
        let epath = e.path.clone();
        let fail = |what: &'static str| {
            let path = epath.clone();
            move |errno: Errno| InitrdError::Fs { path, what, errno }
        };
        let path = format!("/{}", e.path);
        if let Some((dir, _)) = e.path.rsplit_once('/') {
            mkdir_p(ctx, &root, dir).map_err(fail("create the parent of"))?;
        }
        let existing = super::lookup(ctx, None, &path, false).ok();
        if let Some(p) = &existing {
            let is_dir = p.stat().is_dir();
            if e.kind == Kind::Dir && is_dir {
                apply_attrs(p, &e).map_err(fail("set attributes of"))?;
                continue;
            }
            if is_dir {
                super::rmdir(ctx, None, &path)
            } else {
                super::unlink(ctx, None, &path)
            }
            .map_err(fail("replace"))?;
        }
        match e.kind {
            Kind::Dir => {
                super::mkdir(&raw_ctx(ctx), None, &path, e.mode)
                    .map_err(fail("create directory"))?;
                s.dirs += 1;
            }
            Kind::File => {
                let f = super::open(
                    &raw_ctx(ctx),
                    None,
                    &path,
                    O_WRONLY | O_CREAT | O_EXCL,
                    e.mode,
                )
                .map_err(fail("create file"))?;
                let mut done = 0;
                while done < e.data.len() {
                    let n = f.write(&e.data[done..]).map_err(fail("write"))?;
                    if n == 0 {
                        return Err(InitrdError::Fs {
                            path: e.path.clone(),
                            what: "write",
                            errno: Errno::ENOSPC,
                        });
                    }
                    done += n;
                }
                s.files += 1;
                s.bytes += e.data.len() as u64;
            }
            Kind::Symlink => {
                super::symlink(ctx, &e.link, None, &path).map_err(fail("create symlink"))?;
                s.symlinks += 1;
            }
            Kind::HardLink => {
                super::link(ctx, None, &format!("/{}", e.link), None, &path, false)
                    .map_err(fail("hard-link"))?;
                s.hardlinks += 1;
                continue; // the link shares the target's attributes
            }
            Kind::CharDev | Kind::BlockDev | Kind::Fifo => {
                let t = match e.kind {
                    Kind::CharDev => S_IFCHR,
                    Kind::BlockDev => S_IFBLK,
                    _ => S_IFIFO,
                };
                super::mknod(
                    &raw_ctx(ctx),
                    None,
                    &path,
                    t | e.mode,
                    makedev(e.dev_major, e.dev_minor),
                )
                .map_err(fail("create node"))?;
                s.devices += 1;
            }
        }
        let p = super::lookup(ctx, None, &path, false).map_err(fail("find"))?;
        apply_attrs(&p, &e).map_err(fail("set attributes of"))?;
    }
    Ok(s)
}

/// `ctx` with umask 0 so archive modes are kept exactly.
fn raw_ctx(ctx: &FsCtx) -> FsCtx {
    FsCtx {
        umask: 0,
        ..ctx.clone()
    }
}

fn mkdir_p(ctx: &FsCtx, root: &PathRef, dir: &str) -> Result<(), Errno> {
    let mut acc = String::new();
    for c in dir.split('/') {
        acc.push('/');
        acc.push_str(c);
        match super::mkdir(&raw_ctx(ctx), Some(root), &acc, 0o755) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn apply_attrs(p: &PathRef, e: &super::ustar::Entry<'_>) -> Result<(), Errno> {
    let t = Timespec {
        sec: e.mtime as i64,
        nsec: 0,
    };
    let perm = if e.kind == Kind::Symlink {
        None
    } else {
        Some(e.mode)
    };
    p.inode().set_attr(&SetAttr {
        perm,
        uid: Some(e.uid),
        gid: Some(e.gid),
        atime: Some(t),
        mtime: Some(t),
    })
}
