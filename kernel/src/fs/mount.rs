//! Mounting: the registered file-system types, mount, umount and the mount table.

use super::*;

type FsFactory = fn(source: &str) -> KResult<Arc<dyn FileSystem>>;
static FILESYSTEMS: SpinLock<Vec<(&'static str, FsFactory)>> = SpinLock::new(Vec::new());

/// Makes `mount -t name` work (procfs, sysfs, ext2 register themselves here).
pub fn register_filesystem(name: &'static str, make: FsFactory) {
    let mut v = FILESYSTEMS.lock();
    v.retain(|(n, _)| *n != name);
    v.push((name, make));
}

/// A factory that also gets the mount's data string (`mount -o …`).
type FsDataFactory = fn(source: &str, data: &str) -> KResult<Arc<dyn FileSystem>>;
static FILESYSTEMS_DATA: SpinLock<Vec<(&'static str, FsDataFactory)>> = SpinLock::new(Vec::new());

/// Like [`register_filesystem`], for file systems that take mount options (ext2).
pub fn register_filesystem_data(name: &'static str, make: FsDataFactory) {
    let mut v = FILESYSTEMS_DATA.lock();
    v.retain(|(n, _)| *n != name);
    v.push((name, make));
}

/// The file-system types `mount` knows (for `/proc/filesystems`).
pub fn filesystems() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = alloc::vec!["tmpfs", "devtmpfs"];
    v.extend(FILESYSTEMS.lock().iter().map(|(n, _)| *n));
    v.extend(FILESYSTEMS_DATA.lock().iter().map(|(n, _)| *n));
    v
}

fn make_fs(fstype: &str, source: &str, data: &str) -> KResult<Arc<dyn FileSystem>> {
    // Looked up first: an `if let` on the lock would hold it (interrupts off) through the
    // whole mount.
    let with_data = FILESYSTEMS_DATA
        .lock()
        .iter()
        .find(|(n, _)| *n == fstype)
        .map(|(_, f)| *f);
    if let Some(f) = with_data {
        return f(source, data);
    }
    match fstype {
        "tmpfs" | "ramfs" => Ok(TmpFs::new("tmpfs", 0o1777)),
        "devtmpfs" => Ok(devfs::devfs()),
        _ => {
            let f = FILESYSTEMS
                .lock()
                .iter()
                .find(|(n, _)| *n == fstype)
                .map(|(_, f)| *f);
            match f {
                Some(f) => f(source),
                None => Err(Errno::ENODEV),
            }
        }
    }
}

/// Mounts a new instance of `fstype` (`tmpfs`, `devtmpfs`, or a registered type) on the
/// directory `path`. Root only.
pub fn mount(
    ctx: &FsCtx,
    fstype: &str,
    source: &str,
    base: Option<&PathRef>,
    path: &str,
) -> KResult<()> {
    mount_data(ctx, fstype, source, "", base, path)
}

/// [`mount`] with the data string (`mount -o …`, `MS_RDONLY` as `ro`) for file systems
/// registered with [`register_filesystem_data`].
pub fn mount_data(
    ctx: &FsCtx,
    fstype: &str,
    source: &str,
    data: &str,
    base: Option<&PathRef>,
    path: &str,
) -> KResult<()> {
    if ctx.uid != 0 {
        return Err(Errno::EPERM);
    }
    let p = lookup(ctx, base, path, true)?;
    if !p.stat().is_dir() {
        return Err(Errno::ENOTDIR);
    }
    let fs = make_fs(fstype, source, data)?;
    mount_fs(fs, source, &p);
    Ok(())
}

fn mount_fs(fs: Arc<dyn FileSystem>, source: &str, on: &PathRef) {
    let root = fs.root();
    let m = Arc::new(Mount {
        id: NEXT_MOUNT.fetch_add(1, Ordering::Relaxed),
        fs,
        root,
        parent: Some((on.mnt.clone(), on.node.clone())),
        at: ident(&on.node),
        source: source.into(),
        children: AtomicUsize::new(0),
    });
    let mut v = MOUNTS.lock();
    on.mnt.children.fetch_add(1, Ordering::AcqRel);
    v.push(m);
}

/// Unmounts the file system mounted at `path` (EINVAL if none, EBUSY if something is
/// mounted below it or it is the root). Open files keep their file system alive.
pub fn umount(ctx: &FsCtx, base: Option<&PathRef>, path: &str) -> KResult<()> {
    if ctx.uid != 0 {
        return Err(Errno::EPERM);
    }
    let p = lookup(ctx, base, path, true)?;
    if !p.is_mount_root() {
        return Err(Errno::EINVAL);
    }
    if p.mnt.parent.is_none() || p.same(&ctx.root) {
        return Err(Errno::EBUSY);
    }
    let mut v = MOUNTS.lock();
    if v.iter()
        .any(|m| m.parent.as_ref().is_some_and(|(pm, _)| pm.id == p.mnt.id))
    {
        return Err(Errno::EBUSY);
    }
    let before = v.len();
    v.retain(|m| m.id != p.mnt.id);
    if v.len() < before
        && let Some((pm, _)) = &p.mnt.parent
    {
        pm.children.fetch_sub(1, Ordering::AcqRel);
    }
    drop(v);
    p.mnt.fs.detached();
    Ok(())
}

/// One line of `/proc/mounts`.
#[derive(Clone, Debug)]
pub struct MountInfo {
    pub source: String,
    pub path: String,
    pub fstype: &'static str,
    /// Which driver stack serves it, for file systems that have more than one.
    pub driver: Option<&'static str>,
}

/// The mount table as seen from the initial root.
pub fn mounts() -> Vec<MountInfo> {
    let root = root();
    let mut v = alloc::vec![MountInfo {
        source: root.mnt.source.clone(),
        path: "/".into(),
        fstype: root.mnt.fs.name(),
        driver: root.mnt.fs.driver()
    }];
    let all = MOUNTS.lock().clone();
    for m in all {
        let p = PathRef {
            mnt: m.clone(),
            node: m.root.clone(),
            up: None,
        };
        if let Ok(path) = path_of(&root, &p) {
            v.push(MountInfo {
                source: m.source.clone(),
                path,
                fstype: m.fs.name(),
                driver: m.fs.driver(),
            });
        }
    }
    v
}
