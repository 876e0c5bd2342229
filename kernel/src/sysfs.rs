//! sysfs: the part of Linux's `/sys` that C libraries and tools read to learn the machine —
//! `/sys/devices/system/cpu/{online,possible,present}` and one `cpuN` directory per CPU
//! (glibc's `get_nprocs`/`sysconf(_SC_NPROCESSORS_*)`, stress-ng, `nproc --all`), and
//! `/sys/kernel/{ostype,osrelease}`. Read-only; contents are generated on each read.
//! The kernel mounts it on /sys at boot; `mount -t sysfs sysfs DIR` mounts it elsewhere.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::any::Any;

use crate::errno::{Errno, KResult};
use crate::fs::consts::*;
use crate::fs::node::{DirEntry, FileSystem, Inode, InodeRef, SetAttr, Stat, StatFs, Timespec};
use crate::fs::sync::SleepLock;

const SYSFS_DEV: u64 = 0x0000_0005;
/// Linux's `SYSFS_MAGIC`.
const SYSFS_MAGIC: u64 = 0x6265_6572;

pub struct SysFs {
    me: Weak<SysFs>,
    rename: SleepLock<()>,
}

/// Registers `sysfs` with `mount -t sysfs` and mounts it on /sys (as procfs is on /proc, so
/// `--exec` commands find it too).
pub fn init() {
    crate::fs::register_filesystem("sysfs", |_src| {
        Ok(Arc::new_cyclic(|me| SysFs {
            me: me.clone(),
            rename: SleepLock::new(()),
        }) as Arc<dyn FileSystem>)
    });
    let ctx = crate::fs::FsCtx::kernel();
    if let Err(e) = crate::fs::mount(&ctx, "sysfs", "sysfs", None, "/sys") {
        log::warn!("sysfs: not mounted on /sys: {e:?}");
    }
}

impl FileSystem for SysFs {
    fn name(&self) -> &'static str {
        "sysfs"
    }
    fn root(&self) -> InodeRef {
        Arc::new(Node {
            fs: self.me.upgrade().expect("sysfs alive"),
            path: String::new(),
        })
    }
    fn dev(&self) -> u64 {
        SYSFS_DEV
    }
    fn statfs(&self) -> StatFs {
        StatFs {
            fs_type: SYSFS_MAGIC,
            bsize: 4096,
            namelen: 255,
            frsize: 4096,
            ..Default::default()
        }
    }
    fn rename_lock(&self) -> &SleepLock<()> {
        &self.rename
    }
}

/// The CPU list in Linux's range syntax ("0-3", "0").
fn cpu_range(n: usize) -> String {
    if n <= 1 {
        "0\n".into()
    } else {
        format!("0-{}\n", n - 1)
    }
}

fn cpus() -> usize {
    crate::arch::smp::online_count().max(1)
}

/// What a directory holds: (name, is a directory).
fn dir_entries(path: &str) -> Option<Vec<(String, bool)>> {
    let d = |n: &str| (n.to_string(), true);
    let f = |n: &str| (n.to_string(), false);
    Some(match path {
        "" => alloc::vec![d("devices"), d("kernel")],
        "devices" => alloc::vec![d("system")],
        "devices/system" => alloc::vec![d("cpu")],
        "devices/system/cpu" => {
            let mut v = alloc::vec![f("online"), f("possible"), f("present")];
            v.extend((0..cpus()).map(|i| (format!("cpu{i}"), true)));
            v
        }
        "kernel" => alloc::vec![f("ostype"), f("osrelease")],
        p => {
            cpu_dir(p)?;
            alloc::vec![f("online")]
        }
    })
}

/// `devices/system/cpu/cpuN` for an existing CPU N.
fn cpu_dir(path: &str) -> Option<usize> {
    let n: usize = path.strip_prefix("devices/system/cpu/cpu")?.parse().ok()?;
    (n < cpus()).then_some(n)
}

fn file_content(path: &str) -> Option<String> {
    Some(match path {
        "devices/system/cpu/online"
        | "devices/system/cpu/possible"
        | "devices/system/cpu/present" => cpu_range(cpus()),
        "kernel/ostype" => "Linux\n".into(),
        "kernel/osrelease" => format!("{}\n", crate::syscall::process::UNAME_RELEASE),
        p => {
            let (dir, file) = p.rsplit_once('/')?;
            cpu_dir(dir)?;
            match file {
                "online" => "1\n".into(),
                _ => return None,
            }
        }
    })
}

struct Node {
    fs: Arc<SysFs>,
    /// Relative to the mount point, no leading or trailing '/'; "" is the root.
    path: String,
}

impl Node {
    fn is_dir(&self) -> bool {
        dir_entries(&self.path).is_some()
    }
    fn ino(path: &str) -> u64 {
        path.bytes()
            .fold(7u64, |a, b| a.wrapping_mul(31).wrapping_add(u64::from(b)))
            | 1
    }
    fn child(&self, path: String) -> InodeRef {
        Arc::new(Node {
            fs: self.fs.clone(),
            path,
        })
    }
}

impl Inode for Node {
    fn stat(&self) -> Stat {
        let (mode, nlink) = if self.is_dir() {
            (S_IFDIR | 0o555, 2)
        } else {
            (S_IFREG | 0o444, 1)
        };
        Stat {
            dev: SYSFS_DEV,
            ino: Self::ino(&self.path),
            mode,
            nlink,
            uid: 0,
            gid: 0,
            rdev: 0,
            size: 4096,
            blksize: 4096,
            blocks: 0,
            atime: Timespec::default(),
            mtime: Timespec::default(),
            ctime: Timespec::default(),
        }
    }

    fn set_attr(&self, _a: &SetAttr) -> KResult<()> {
        Err(Errno::EPERM)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn fs(&self) -> Arc<dyn FileSystem> {
        self.fs.clone()
    }

    fn lookup(&self, name: &str) -> KResult<InodeRef> {
        let entries = dir_entries(&self.path).ok_or(Errno::ENOTDIR)?;
        if name == "." {
            return Ok(self.child(self.path.clone()));
        }
        if name == ".." {
            let up = self.path.rsplit_once('/').map_or("", |(d, _)| d);
            return Ok(self.child(up.to_string()));
        }
        if !entries.iter().any(|(n, _)| n == name) {
            return Err(Errno::ENOENT);
        }
        Ok(self.child(if self.path.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.path)
        }))
    }

    fn readdir(&self, offset: u64, max: usize) -> KResult<Vec<DirEntry>> {
        let entries = dir_entries(&self.path).ok_or(Errno::ENOTDIR)?;
        let up = self.path.rsplit_once('/').map_or("", |(d, _)| d);
        let mut all: Vec<(u64, u8, String)> = alloc::vec![
            (Self::ino(&self.path), DT_DIR, ".".into()),
            (Self::ino(up), DT_DIR, "..".into()),
        ];
        for (n, dir) in entries {
            let p = if self.path.is_empty() {
                n.clone()
            } else {
                format!("{}/{n}", self.path)
            };
            all.push((Self::ino(&p), if dir { DT_DIR } else { DT_REG }, n));
        }
        Ok(all
            .into_iter()
            .enumerate()
            .skip(offset as usize)
            .take(max)
            .map(|(i, (ino, kind, name))| DirEntry {
                ino,
                kind,
                name,
                next_offset: i as u64 + 1,
            })
            .collect())
    }

    fn read_at(&self, off: u64, buf: &mut [u8]) -> KResult<usize> {
        if self.is_dir() {
            return Err(Errno::EISDIR);
        }
        let c = file_content(&self.path).ok_or(Errno::ENOENT)?;
        let b = c.as_bytes();
        let o = (off as usize).min(b.len());
        let n = buf.len().min(b.len() - o);
        buf[..n].copy_from_slice(&b[o..o + n]);
        Ok(n)
    }
}
