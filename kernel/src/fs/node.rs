//! The inode interface every file system implements, and the types it speaks.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;

use super::consts::*;
use super::pipe::Pipe;
use crate::errno::{Errno, KResult};

/// Seconds and nanoseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timespec {
    pub sec: i64,
    pub nsec: i64,
}

/// What `stat(2)` reports: the fields of Linux's x86_64 `struct stat`. `mode` includes the
/// `S_IF*` type bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    pub nlink: u64,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: i64,
    pub blksize: i64,
    /// 512-byte blocks allocated.
    pub blocks: i64,
    pub atime: Timespec,
    pub mtime: Timespec,
    pub ctime: Timespec,
}

impl Stat {
    pub fn file_type(&self) -> u32 {
        self.mode & S_IFMT
    }
    pub fn is_dir(&self) -> bool {
        self.file_type() == S_IFDIR
    }
    pub fn is_symlink(&self) -> bool {
        self.file_type() == S_IFLNK
    }
    pub fn is_reg(&self) -> bool {
        self.file_type() == S_IFREG
    }
}

/// What `statfs(2)` reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatFs {
    pub fs_type: u64,
    pub bsize: u64,
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub fsid: u64,
    pub namelen: u64,
    pub frsize: u64,
    pub flags: u64,
}

/// One `getdents64` record (the caller packs `struct linux_dirent64`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub ino: u64,
    /// `DT_*`.
    pub kind: u8,
    pub name: String,
    /// The directory offset to continue from after this entry (`d_off`).
    pub next_offset: u64,
}

/// The kind of node [`Inode::create`] makes.
#[derive(Clone, Copy, Debug)]
pub enum NodeKind<'a> {
    Regular,
    Directory,
    Symlink(&'a str),
    CharDev(u64),
    BlockDev(u64),
    Fifo,
    Socket,
}

impl NodeKind<'_> {
    pub fn type_bits(&self) -> u32 {
        match self {
            Self::Regular => S_IFREG,
            Self::Directory => S_IFDIR,
            Self::Symlink(_) => S_IFLNK,
            Self::CharDev(_) => S_IFCHR,
            Self::BlockDev(_) => S_IFBLK,
            Self::Fifo => S_IFIFO,
            Self::Socket => S_IFSOCK,
        }
    }
}

/// Attribute changes for [`Inode::set_attr`]; `None` leaves a field alone. ctime is updated
/// by the file system whenever anything changes.
#[derive(Clone, Copy, Debug, Default)]
pub struct SetAttr {
    /// Permission bits only (07777); the type bits are never changed.
    pub perm: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub atime: Option<Timespec>,
    pub mtime: Option<Timespec>,
}

pub type InodeRef = Arc<dyn Inode>;

/// An inode. Directory operations get plain names (never `.`, `..`, empty or containing
/// `/`, except [`Inode::lookup`] of `..`); the VFS has done every permission check before
/// calling. Methods a node's type does not support keep their default error.
pub trait Inode: Send + Sync + Any {
    fn stat(&self) -> Stat;
    /// (device, inode number): what [`ident`] compares. File systems that know both without
    /// a lock override this; the path walk asks it of every component it crosses.
    fn ident(&self) -> (u64, u64) {
        let s = self.stat();
        (s.dev, s.ino)
    }
    fn set_attr(&self, a: &SetAttr) -> KResult<()>;
    fn as_any(&self) -> &dyn Any;
    /// The file system this inode belongs to (for `statfs` and cross-device checks).
    fn fs(&self) -> Arc<dyn FileSystem>;

    /// The attributes of the entry `name` of this directory, when the file system reads them
    /// without making a node for it (a path's last component under `stat`: Linux's
    /// `fstatat` on a cached inode); `None` means use [`Inode::lookup`] and `stat`. Never
    /// asked for `.` or `..`.
    fn child_stat(&self, _name: &str) -> Option<KResult<Stat>> {
        None
    }
    /// The child `name`; `..` gives the parent (a file system's root: itself).
    fn lookup(&self, _name: &str) -> KResult<InodeRef> {
        Err(Errno::ENOTDIR)
    }
    fn create(
        &self,
        _name: &str,
        _kind: NodeKind<'_>,
        _perm: u32,
        _uid: u32,
        _gid: u32,
    ) -> KResult<InodeRef> {
        Err(Errno::ENOTDIR)
    }
    /// A new name for `target` (never a directory) in this directory.
    fn link(&self, _name: &str, _target: &InodeRef) -> KResult<()> {
        Err(Errno::ENOTDIR)
    }
    /// Removes `name`: a non-directory when `dir` is false (EISDIR otherwise), an empty
    /// directory when `dir` is true (ENOTDIR / ENOTEMPTY otherwise).
    fn unlink(&self, _name: &str, _dir: bool) -> KResult<()> {
        Err(Errno::ENOTDIR)
    }
    /// Moves `old` in this directory to `new` in `new_dir` (same file system), replacing a
    /// compatible target. The VFS has ruled out moving a directory into itself (under the
    /// file system's rename lock).
    fn rename(&self, _old: &str, _new_dir: &InodeRef, _new: &str, _flags: u32) -> KResult<()> {
        Err(Errno::ENOTDIR)
    }
    /// Up to `max` entries from directory offset `offset` (0 starts with `.` and `..`).
    fn readdir(&self, _offset: u64, _max: usize) -> KResult<Vec<DirEntry>> {
        Err(Errno::ENOTDIR)
    }

    fn read_at(&self, _off: u64, _buf: &mut [u8]) -> KResult<usize> {
        Err(Errno::EINVAL)
    }
    fn write_at(&self, _off: u64, _buf: &[u8]) -> KResult<usize> {
        Err(Errno::EINVAL)
    }
    /// Appends atomically with respect to other appends; returns (offset written at, count).
    fn append(&self, buf: &[u8]) -> KResult<(u64, usize)> {
        let off = self.stat().size as u64;
        Ok((off, self.write_at(off, buf)?))
    }
    fn truncate(&self, _len: u64) -> KResult<()> {
        Err(Errno::EINVAL)
    }
    fn readlink(&self) -> KResult<String> {
        Err(Errno::EINVAL)
    }
    /// The pipe behind a FIFO node.
    fn fifo(&self) -> Option<Arc<Pipe>> {
        None
    }
    /// `fsync(2)`: this file's data and metadata on stable storage (nothing to do for file
    /// systems in memory).
    fn sync(&self) -> KResult<()> {
        Ok(())
    }
}

/// A mounted (or mountable) file system instance.
pub trait FileSystem: Send + Sync {
    /// `tmpfs`, `devtmpfs`, `proc`, … as `/proc/mounts` shows it.
    fn name(&self) -> &'static str;
    fn root(&self) -> InodeRef;
    fn dev(&self) -> u64;
    fn statfs(&self) -> StatFs;
    /// Serialises renames within this file system so the "not into itself" check holds
    /// while the rename runs (Linux's `s_vfs_rename_mutex`).
    fn rename_lock(&self) -> &super::sync::SleepLock<()>;
    /// Which driver stack serves this mount (`native`, `rump`) when a file system type has
    /// more than one; shown in `/proc/mounts` and `/proc/drivers`.
    fn driver(&self) -> Option<&'static str> {
        None
    }
    /// Called when `umount` takes the file system out of the mount table; it goes away when
    /// its last user (open file, working directory) lets go. Caches that hold inodes must
    /// let go of them here.
    fn detached(&self) {}
}

/// `DT_*` for a mode.
pub fn dtype(mode: u32) -> u8 {
    match mode & S_IFMT {
        S_IFIFO => DT_FIFO,
        S_IFCHR => DT_CHR,
        S_IFDIR => DT_DIR,
        S_IFBLK => DT_BLK,
        S_IFREG => DT_REG,
        S_IFLNK => DT_LNK,
        S_IFSOCK => DT_SOCK,
        _ => DT_UNKNOWN,
    }
}

/// Identity of an inode: (device, inode number).
pub fn ident(i: &InodeRef) -> (u64, u64) {
    i.ident()
}
