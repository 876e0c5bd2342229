//! Host unit tests of the VFS, tmpfs, pipes and the initrd path (`cargo test -p adros-kernel`).

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use super::*;

fn ns() -> FsCtx {
    FsCtx::with_root(PathRef::new_root(TmpFs::new("tmpfs", 0o755), "test"))
}

fn user(ctx: &FsCtx, uid: u32) -> FsCtx {
    FsCtx {
        uid,
        gid: uid,
        groups: Vec::new(),
        ..ctx.clone()
    }
}

fn write_file(ctx: &FsCtx, path: &str, data: &[u8]) {
    let f = open(ctx, None, path, O_WRONLY | O_CREAT | O_TRUNC, 0o644).unwrap();
    assert_eq!(f.write(data).unwrap(), data.len());
}

fn read_all(ctx: &FsCtx, path: &str) -> Vec<u8> {
    let f = open(ctx, None, path, O_RDONLY, 0).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 1000];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn create_read_write_seek() {
    let c = ns();
    write_file(&c, "/a", b"hello");
    assert_eq!(read_all(&c, "/a"), b"hello");
    let f = open(&c, None, "/a", O_RDWR | O_APPEND, 0).unwrap();
    f.write(b" world").unwrap();
    assert_eq!(f.seek(0, SEEK_SET).unwrap(), 0);
    let mut b = [0u8; 32];
    assert_eq!(f.read(&mut b).unwrap(), 11);
    assert_eq!(&b[..11], b"hello world");
    assert_eq!(f.seek(-5, SEEK_END).unwrap(), 6);
    assert_eq!(f.pread(&mut b[..5], 0).unwrap(), 5);
    assert_eq!(f.offset(), 6);
    assert_eq!(
        open(&c, None, "/a", O_CREAT | O_EXCL | O_WRONLY, 0o644).err(),
        Some(Errno::EEXIST)
    );
    assert_eq!(
        open(&c, None, "/missing", O_RDONLY, 0).err(),
        Some(Errno::ENOENT)
    );
    assert_eq!(
        open(&c, None, "/a/", O_RDONLY, 0).err(),
        Some(Errno::ENOTDIR)
    );
    assert_eq!(
        open(&c, None, "/a", O_RDONLY | O_DIRECTORY, 0).err(),
        Some(Errno::ENOTDIR)
    );
    let st = stat(&c, None, "/a", true).unwrap();
    assert_eq!(st.mode, S_IFREG | 0o644);
    assert_eq!(st.size, 11);
    assert_eq!(st.nlink, 1);
    // umask
    let mut c2 = c.clone();
    c2.umask = 0o077;
    write_file(&c2, "/u", b"");
    assert_eq!(stat(&c, None, "/u", true).unwrap().mode & 0o777, 0o600);
    // O_TRUNC
    open(&c, None, "/a", O_WRONLY | O_TRUNC, 0).unwrap();
    assert_eq!(stat(&c, None, "/a", true).unwrap().size, 0);
}

#[test]
fn sparse_files_and_truncate() {
    let c = ns();
    let f = open(&c, None, "/s", O_RDWR | O_CREAT, 0o644).unwrap();
    f.pwrite(b"x", 10 << 20).unwrap();
    let st = f.stat().unwrap();
    assert_eq!(st.size, (10 << 20) + 1);
    assert_eq!(st.blocks, 8, "one page allocated");
    let mut b = vec![1u8; 8192];
    assert_eq!(f.pread(&mut b, 4096).unwrap(), 8192);
    assert!(b.iter().all(|&x| x == 0));
    f.pwrite(&[7u8; 5000], 0).unwrap();
    f.truncate(100).unwrap();
    f.truncate(6000).unwrap();
    let mut b = vec![1u8; 6000];
    f.pread(&mut b, 0).unwrap();
    assert!(b[..100].iter().all(|&x| x == 7) && b[100..].iter().all(|&x| x == 0));
    assert_eq!(f.seek(0, SEEK_HOLE).unwrap(), 6000);
}

#[test]
fn dirs_dot_dotdot_getdents_getcwd() {
    let mut c = ns();
    mkdir(&c, None, "/d", 0o755).unwrap();
    mkdir(&c, None, "/d/e/", 0o755).unwrap();
    assert_eq!(mkdir(&c, None, "/d", 0o755).err(), Some(Errno::EEXIST));
    assert_eq!(mkdir(&c, None, "/x/y", 0o755).err(), Some(Errno::ENOENT));
    assert_eq!(stat(&c, None, "/d", true).unwrap().nlink, 3);
    write_file(&c, "/d/f", b"1");
    assert!(stat(&c, None, "/d/e/../f", true).is_ok());
    assert!(stat(&c, None, "/../../d/./e/..", true).unwrap().is_dir());
    c.cwd = resolve_dir(&c, None, "/d/e").unwrap();
    assert_eq!(getcwd(&c).unwrap(), "/d/e");
    assert_eq!(read_all(&c, "../f"), b"1");
    let f = open(&c, None, "/d", O_RDONLY | O_DIRECTORY, 0).unwrap();
    let mut names = Vec::new();
    loop {
        let v = f.getdents(1).unwrap();
        if v.is_empty() {
            break;
        }
        names.extend(v.into_iter().map(|e| (e.name, e.kind)));
    }
    assert_eq!(
        names,
        vec![
            (".".into(), DT_DIR),
            ("..".into(), DT_DIR),
            ("e".into(), DT_DIR),
            ("f".into(), DT_REG)
        ]
    );
    assert_eq!(f.read(&mut [0u8; 4]).err(), Some(Errno::EISDIR));
    // A removed cwd.
    let base = c.cwd.clone();
    c.cwd = c.root.clone();
    rmdir(&c, None, "/d/e").unwrap();
    let gone = FsCtx {
        cwd: base,
        ..c.clone()
    };
    assert_eq!(getcwd(&gone).err(), Some(Errno::ENOENT));
}

#[test]
fn symlinks_and_eloop() {
    let c = ns();
    mkdir(&c, None, "/bin", 0o755).unwrap();
    write_file(&c, "/bin/busybox", b"BB");
    symlink(&c, "/bin/busybox", None, "/bin/ls").unwrap();
    symlink(&c, "busybox", None, "/bin/sh").unwrap();
    symlink(&c, "bin", None, "/usrbin").unwrap();
    assert_eq!(read_all(&c, "/bin/ls"), b"BB");
    assert_eq!(read_all(&c, "/bin/sh"), b"BB");
    assert_eq!(read_all(&c, "/usrbin/sh"), b"BB");
    assert!(stat(&c, None, "/bin/ls", false).unwrap().is_symlink());
    assert_eq!(readlink(&c, None, "/bin/sh").unwrap(), "busybox");
    assert_eq!(
        readlink(&c, None, "/bin/busybox").err(),
        Some(Errno::EINVAL)
    );
    assert_eq!(
        open(&c, None, "/bin/ls", O_RDONLY | O_NOFOLLOW, 0).err(),
        Some(Errno::ELOOP)
    );
    assert!(open(&c, None, "/bin/ls", O_PATH | O_NOFOLLOW, 0).is_ok());
    symlink(&c, "/loop2", None, "/loop1").unwrap();
    symlink(&c, "/loop1", None, "/loop2").unwrap();
    assert_eq!(stat(&c, None, "/loop1", true).err(), Some(Errno::ELOOP));
    assert_eq!(
        open(&c, None, "/loop1", O_RDONLY, 0).err(),
        Some(Errno::ELOOP)
    );
    // A chain of exactly 40 links resolves; 41 does not.
    let mut prev = String::from("/bin/busybox");
    for i in 0..41 {
        let name = format!("/l{i}");
        symlink(&c, &prev, None, &name).unwrap();
        prev = name;
    }
    assert!(stat(&c, None, "/l39", true).is_ok());
    assert_eq!(stat(&c, None, "/l40", true).err(), Some(Errno::ELOOP));
    // Dangling link: lstat works, stat fails.
    symlink(&c, "/nowhere", None, "/dangle").unwrap();
    assert_eq!(stat(&c, None, "/dangle", true).err(), Some(Errno::ENOENT));
    // Trailing slash follows the link to a directory.
    assert!(stat(&c, None, "/usrbin/", false).unwrap().is_dir());
}

#[test]
fn permissions() {
    let c = ns();
    mkdir(&c, None, "/priv", 0o700).unwrap();
    write_file(&c, "/priv/f", b"secret");
    write_file(&c, "/ro", b"r");
    chmod(&c, None, "/ro", 0o444, true).unwrap();
    let u = user(&c, 1000);
    assert_eq!(stat(&u, None, "/priv/f", true).err(), Some(Errno::EACCES));
    assert_eq!(
        open(&u, None, "/priv/f", O_RDONLY, 0).err(),
        Some(Errno::EACCES)
    );
    assert_eq!(
        open(&u, None, "/ro", O_WRONLY, 0).err(),
        Some(Errno::EACCES)
    );
    assert!(open(&u, None, "/ro", O_RDONLY, 0).is_ok());
    assert_eq!(
        access(&u, None, "/ro", W_OK, true).err(),
        Some(Errno::EACCES)
    );
    assert_eq!(
        access(&u, None, "/ro", X_OK, true).err(),
        Some(Errno::EACCES)
    );
    assert_eq!(
        access(&c, None, "/ro", X_OK, true).err(),
        Some(Errno::EACCES),
        "root needs an x bit"
    );
    assert_eq!(
        open(&u, None, "/new", O_WRONLY | O_CREAT, 0o644).err(),
        Some(Errno::EACCES)
    );
    assert_eq!(
        chmod(&u, None, "/ro", 0o777, true).err(),
        Some(Errno::EPERM)
    );
    assert_eq!(
        chown(&u, None, "/ro", Some(1000), None, true).err(),
        Some(Errno::EPERM)
    );
    chown(&c, None, "/ro", Some(1000), Some(1000), true).unwrap();
    chmod(&u, None, "/ro", 0o644, true).unwrap();
    assert!(open(&u, None, "/ro", O_WRONLY, 0).is_ok());
    // Sticky /tmp: a user cannot remove another user's file.
    mkdir(&c, None, "/tmp", 0o1777).unwrap();
    chmod(&c, None, "/tmp", 0o1777, true).unwrap();
    let v = user(&c, 1001);
    write_file(&v, "/tmp/v", b"");
    assert_eq!(unlink(&u, None, "/tmp/v").err(), Some(Errno::EPERM));
    unlink(&v, None, "/tmp/v").unwrap();
    assert_eq!(
        mknod(&u, None, "/tmp/null", S_IFCHR | 0o666, makedev(1, 3)).err(),
        Some(Errno::EPERM)
    );
}

#[test]
fn unlink_rmdir_link() {
    let c = ns();
    mkdir(&c, None, "/d", 0o755).unwrap();
    write_file(&c, "/d/f", b"data");
    assert_eq!(rmdir(&c, None, "/d").err(), Some(Errno::ENOTEMPTY));
    assert_eq!(unlink(&c, None, "/d").err(), Some(Errno::EISDIR));
    assert_eq!(rmdir(&c, None, "/d/f").err(), Some(Errno::ENOTDIR));
    assert_eq!(rmdir(&c, None, "/d/.").err(), Some(Errno::EINVAL));
    assert_eq!(rmdir(&c, None, "/").err(), Some(Errno::EBUSY));
    link(&c, None, "/d/f", None, "/g", false).unwrap();
    assert_eq!(stat(&c, None, "/g", true).unwrap().nlink, 2);
    assert_eq!(
        link(&c, None, "/d", None, "/dd", false).err(),
        Some(Errno::EPERM)
    );
    // Unlinked while open: data stays readable.
    let f = open(&c, None, "/d/f", O_RDONLY, 0).unwrap();
    unlink(&c, None, "/d/f").unwrap();
    unlink(&c, None, "/g").unwrap();
    assert_eq!(f.stat().unwrap().nlink, 0);
    let mut b = [0u8; 4];
    assert_eq!(f.read(&mut b).unwrap(), 4);
    assert_eq!(&b, b"data");
    rmdir(&c, None, "/d").unwrap();
    assert_eq!(stat(&c, None, "/d", true).err(), Some(Errno::ENOENT));
}

#[test]
fn rename_semantics() {
    let c = ns();
    write_file(&c, "/a", b"A");
    write_file(&c, "/b", b"B");
    rename(&c, None, "/a", None, "/b", 0).unwrap();
    assert_eq!(read_all(&c, "/b"), b"A");
    assert_eq!(stat(&c, None, "/a", true).err(), Some(Errno::ENOENT));
    mkdir(&c, None, "/d1", 0o755).unwrap();
    mkdir(&c, None, "/d2", 0o755).unwrap();
    mkdir(&c, None, "/d1/sub", 0o755).unwrap();
    write_file(&c, "/d1/sub/f", b"F");
    assert_eq!(
        rename(&c, None, "/b", None, "/d1", 0).err(),
        Some(Errno::EISDIR)
    );
    assert_eq!(
        rename(&c, None, "/d1", None, "/b", 0).err(),
        Some(Errno::ENOTDIR)
    );
    assert_eq!(
        rename(&c, None, "/d1", None, "/d1/sub/x", 0).err(),
        Some(Errno::EINVAL)
    );
    assert_eq!(
        rename(&c, None, "/d1", None, "/d1/sub", 0).err(),
        Some(Errno::EINVAL)
    );
    assert_eq!(
        rename(&c, None, "/d2", None, "/d1", 0).err(),
        Some(Errno::ENOTEMPTY)
    );
    // Directory over an empty directory; nlink bookkeeping.
    rename(&c, None, "/d1", None, "/d2", 0).unwrap();
    assert_eq!(read_all(&c, "/d2/sub/f"), b"F");
    assert_eq!(stat(&c, None, "/", true).unwrap().nlink, 3);
    // Move a directory to another parent: its .. follows.
    mkdir(&c, None, "/p", 0o755).unwrap();
    rename(&c, None, "/d2/sub", None, "/p/sub", 0).unwrap();
    assert!(stat(&c, None, "/p/sub/../sub/f", true).is_ok());
    assert_eq!(stat(&c, None, "/p", true).unwrap().nlink, 3);
    assert_eq!(stat(&c, None, "/d2", true).unwrap().nlink, 2);
    assert_eq!(
        rename(&c, None, "/b", None, "/p/sub/f", RENAME_NOREPLACE).err(),
        Some(Errno::EEXIST)
    );
    // Across mounts: EXDEV.
    mkdir(&c, None, "/mnt", 0o755).unwrap();
    mount(&c, "tmpfs", "tmpfs", None, "/mnt").unwrap();
    assert_eq!(
        rename(&c, None, "/b", None, "/mnt/b", 0).err(),
        Some(Errno::EXDEV)
    );
    assert_eq!(
        link(&c, None, "/b", None, "/mnt/b", false).err(),
        Some(Errno::EXDEV)
    );
    assert_eq!(rmdir(&c, None, "/mnt").err(), Some(Errno::EBUSY));
}

#[test]
fn mounts_and_devices() {
    let c = ns();
    mkdir(&c, None, "/mnt", 0o755).unwrap();
    mount(&c, "tmpfs", "none", None, "/mnt").unwrap();
    write_file(&c, "/mnt/x", b"x");
    let inner = stat(&c, None, "/mnt/x", true).unwrap();
    assert_ne!(inner.dev, stat(&c, None, "/", true).unwrap().dev);
    let mut c2 = c.clone();
    c2.cwd = resolve_dir(&c, None, "/mnt").unwrap();
    assert_eq!(getcwd(&c2).unwrap(), "/mnt");
    assert!(stat(&c2, None, "../mnt/x", true).is_ok());
    umount(&c, None, "/mnt").unwrap();
    assert_eq!(stat(&c, None, "/mnt/x", true).err(), Some(Errno::ENOENT));
    // devtmpfs
    mkdir(&c, None, "/dev", 0o755).unwrap();
    mount(&c, "devtmpfs", "devtmpfs", None, "/dev").unwrap();
    let null = open(&c, None, "/dev/null", O_RDWR, 0).unwrap();
    assert_eq!(null.write(b"abc").unwrap(), 3);
    assert_eq!(null.read(&mut [0u8; 8]).unwrap(), 0);
    let zero = open(&c, None, "/dev/zero", O_RDONLY, 0).unwrap();
    let mut b = [9u8; 64];
    assert_eq!(zero.read(&mut b).unwrap(), 64);
    assert!(b.iter().all(|&x| x == 0));
    let full = open(&c, None, "/dev/full", O_WRONLY, 0).unwrap();
    assert_eq!(full.write(b"x").err(), Some(Errno::ENOSPC));
    let ur = open(&c, None, "/dev/urandom", O_RDONLY, 0).unwrap();
    let mut r = [0u8; 64];
    ur.read(&mut r).unwrap();
    assert!(r.iter().any(|&x| x != 0));
    let st = stat(&c, None, "/dev/null", true).unwrap();
    assert_eq!(
        (st.mode & S_IFMT, major(st.rdev), minor(st.rdev)),
        (S_IFCHR, 1, 3)
    );
    assert_eq!(null.ioctl(0x5401, 0).err(), Some(Errno::ENOTTY));
    // A device node made elsewhere works too; an unknown one is ENXIO.
    mknod(&c, None, "/mynull", S_IFCHR | 0o666, makedev(1, 3)).unwrap();
    assert!(open(&c, None, "/mynull", O_WRONLY, 0).is_ok());
    mknod(&c, None, "/nodev", S_IFCHR | 0o666, makedev(250, 0)).unwrap();
    assert_eq!(
        open(&c, None, "/nodev", O_WRONLY, 0).err(),
        Some(Errno::ENXIO)
    );
}

#[test]
fn at_calls_with_base_and_empty_path() {
    let c = ns();
    mkdir(&c, None, "/d", 0o755).unwrap();
    let d = open(&c, None, "/d", O_RDONLY | O_DIRECTORY, 0).unwrap();
    let base = d.path_ref().unwrap().clone();
    let f = open(&c, Some(&base), "f", O_WRONLY | O_CREAT, 0o600).unwrap();
    f.write(b"z").unwrap();
    assert_eq!(read_all(&c, "/d/f"), b"z");
    assert!(stat(&c, Some(&base), "", true).unwrap().is_dir());
    assert_eq!(stat(&c, None, "", true).err(), Some(Errno::ENOENT));
    assert!(
        stat(&c, Some(&base), "/d/f", true).is_ok(),
        "absolute path ignores base"
    );
    assert_eq!(f.path(), "/d/f");
    unlink(&c, None, "/d/f").unwrap();
    assert_eq!(f.path(), "(deleted)");
}

#[test]
fn pipes_threads_eof_epipe() {
    let (r, w) = pipe(0).unwrap();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let expect = data.clone();
    let writer = std::thread::spawn(move || {
        let mut off = 0;
        while off < data.len() {
            off += w.write(&data[off..(off + 10_000).min(data.len())]).unwrap();
        }
    });
    let mut got = Vec::new();
    let mut buf = [0u8; 7777];
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    writer.join().unwrap();
    assert_eq!(got, expect);
    // EPIPE once the reader is gone; EAGAIN when non-blocking.
    let (r, w) = pipe(O_NONBLOCK).unwrap();
    assert_eq!(r.read(&mut buf).err(), Some(Errno::EAGAIN));
    assert_eq!(r.poll(POLLIN), 0);
    w.write(b"x").unwrap();
    assert_eq!(r.poll(POLLIN), POLLIN);
    assert_eq!(r.ioctl(FIONREAD, 0).unwrap(), 1);
    let big = vec![0u8; PIPE_SIZE];
    assert_eq!(w.write(&big).unwrap(), PIPE_SIZE - 1);
    assert_eq!(w.write(b"y").err(), Some(Errno::EAGAIN));
    drop(r);
    assert_eq!(w.write(b"y").err(), Some(Errno::EPIPE));
    assert_eq!(w.seek(0, SEEK_SET).err(), Some(Errno::ESPIPE));
}

#[test]
fn fifo_nodes() {
    let c = ns();
    mknod(&c, None, "/fifo", S_IFIFO | 0o644, 0).unwrap();
    assert_eq!(
        open(&c, None, "/fifo", O_WRONLY | O_NONBLOCK, 0).err(),
        Some(Errno::ENXIO)
    );
    let r = open(&c, None, "/fifo", O_RDONLY | O_NONBLOCK, 0).unwrap();
    let w = open(&c, None, "/fifo", O_WRONLY | O_NONBLOCK, 0).unwrap();
    w.write(b"hi").unwrap();
    let mut b = [0u8; 4];
    assert_eq!(r.read(&mut b).unwrap(), 2);
    drop(w);
    assert_eq!(r.read(&mut b).unwrap(), 0);
    assert_eq!(
        stat(&c, None, "/fifo", true).unwrap().mode & S_IFMT,
        S_IFIFO
    );
}

fn make_initrd() -> (Vec<u8>, Vec<u8>) {
    let mut b = tar::Builder::new(Vec::new());
    let add = |b: &mut tar::Builder<Vec<u8>>,
               kind: tar::EntryType,
               path: &str,
               mode: u32,
               data: &[u8],
               link: Option<&str>| {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_mtime(1_700_000_000);
        match link {
            Some(l) => b.append_link(&mut h, path, l).unwrap(),
            None => b.append_data(&mut h, path, data).unwrap(),
        }
    };
    let busybox: Vec<u8> = (0..300_000u32).map(|i| (i ^ (i >> 9)) as u8).collect();
    add(&mut b, tar::EntryType::Directory, "bin/", 0o755, &[], None);
    add(
        &mut b,
        tar::EntryType::Regular,
        "bin/busybox",
        0o755,
        &busybox,
        None,
    );
    add(
        &mut b,
        tar::EntryType::Symlink,
        "bin/sh",
        0o777,
        &[],
        Some("busybox"),
    );
    add(&mut b, tar::EntryType::Directory, "tmp/", 0o1777, &[], None);
    add(
        &mut b,
        tar::EntryType::Regular,
        "etc/passwd",
        0o644,
        b"root:x:0:0::/root:/bin/sh\n",
        None,
    );
    add(
        &mut b,
        tar::EntryType::Link,
        "etc/passwd2",
        0o644,
        &[],
        Some("etc/passwd"),
    );
    let tar = b.into_inner().unwrap();
    use std::io::Write;
    let info = lz4_flex::frame::FrameInfo::new()
        .content_checksum(true)
        .content_size(Some(tar.len() as u64));
    let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
    enc.write_all(&tar).unwrap();
    (enc.finish().unwrap(), busybox)
}

#[test]
fn initrd_round_trip() {
    let (img, busybox) = make_initrd();
    let c = ns();
    let s = initrd::unpack(&img, &c).unwrap();
    assert_eq!((s.files, s.dirs, s.symlinks, s.hardlinks), (2, 2, 1, 1));
    assert_eq!(read_all(&c, "/bin/sh"), busybox);
    let st = stat(&c, None, "/bin/busybox", true).unwrap();
    assert_eq!(
        (st.mode, st.mtime.sec, st.uid),
        (S_IFREG | 0o755, 1_700_000_000, 0)
    );
    assert_eq!(stat(&c, None, "/tmp", true).unwrap().mode, S_IFDIR | 0o1777);
    assert_eq!(stat(&c, None, "/etc/passwd2", true).unwrap().nlink, 2);
    assert!(
        stat(&c, None, "/etc", true).unwrap().is_dir(),
        "implicit parent created"
    );
}

#[test]
fn corrupt_initrd_is_an_error() {
    let (img, _) = make_initrd();
    let mut rejected = 0;
    for i in (0..img.len()).step_by(61) {
        let mut bad = img.clone();
        bad[i] ^= 0xA5;
        if initrd::unpack(&bad, &ns()).is_err() {
            rejected += 1;
        }
    }
    assert_eq!(
        rejected,
        img.len().div_ceil(61),
        "the content checksum catches every flip"
    );
    let e = initrd::unpack(&img[..img.len() / 2], &ns()).unwrap_err();
    assert!(format!("{e}").contains("truncated"), "{e}");
    let e = initrd::unpack(b"garbage!", &ns()).unwrap_err();
    assert!(format!("{e}").contains("not an LZ4 frame"), "{e}");
}

#[test]
fn file_flags() {
    let c = ns();
    let f = open(
        &c,
        None,
        "/f",
        O_RDWR | O_CREAT | O_CLOEXEC | O_NONBLOCK,
        0o644,
    )
    .unwrap();
    assert_eq!(f.flags() & (O_CLOEXEC | O_CREAT), 0);
    assert_eq!(f.flags() & O_ACCMODE, O_RDWR);
    f.set_flags(O_APPEND | O_WRONLY);
    assert_eq!(
        f.flags() & (O_APPEND | O_NONBLOCK | O_ACCMODE),
        O_APPEND | O_RDWR
    );
    let _ = Arc::strong_count(&f);
}

#[test]
fn append_from_two_opens_never_overwrites() {
    let c = ns();
    write_file(&c, "/log", b"");
    let a = open(&c, None, "/log", O_WRONLY | O_APPEND, 0).unwrap();
    let b = open(&c, None, "/log", O_WRONLY | O_APPEND, 0).unwrap();
    let ta =
        std::thread::spawn(move || (0..500).for_each(|_| assert_eq!(a.write(b"aaaa").unwrap(), 4)));
    let tb =
        std::thread::spawn(move || (0..500).for_each(|_| assert_eq!(b.write(b"bbbb").unwrap(), 4)));
    ta.join().unwrap();
    tb.join().unwrap();
    let data = read_all(&c, "/log");
    assert_eq!(data.len(), 4000);
    assert!(data.chunks(4).all(|ch| ch == b"aaaa" || ch == b"bbbb"));
}
