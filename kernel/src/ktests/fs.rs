//! The file system in the running kernel: the unpacked initrd, VFS semantics on the real
//! root, pipes across threads, devices, and a corrupt initrd image.

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use crate::ensure;
use crate::errno::Errno;
use crate::fs::{self, FsCtx, consts::*};
use crate::ktest::TestFn;
use crate::sched::spawn;
use crate::time::now_ns;

pub fn register(v: &mut Vec<(&'static str, TestFn)>) {
    v.push(("fs::initrd_unpacked", initrd_unpacked));
    v.push(("fs::symlink_loop_eloop", symlink_loop));
    v.push(("fs::permissions_non_root", permissions));
    v.push(("fs::rename_unlink_rmdir", rename_unlink_rmdir));
    v.push(("fs::file_1mib_checksum", big_file));
    v.push(("fs::pipe_threads_eof_epipe", pipe_threads));
    v.push(("fs::dev_null_zero_full_urandom", devices));
    v.push(("fs::corrupt_initrd_rejected", corrupt_initrd));
}

fn e<T>(r: Result<T, Errno>, what: &str) -> Result<T, String> {
    r.map_err(|err| format!("{what}: {err:?}"))
}

fn read_all(ctx: &FsCtx, path: &str) -> Result<Vec<u8>, String> {
    let f = e(fs::open(ctx, None, path, O_RDONLY, 0), path)?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = e(f.read(&mut buf), path)?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
    }
}

fn initrd_unpacked() -> Result<(), String> {
    let ctx = FsCtx::kernel();
    let manifest = String::from_utf8(read_all(&ctx, "/etc/initrd-manifest")?)
        .map_err(|_| "manifest is not UTF-8")?;
    let mut checked = 0;
    for line in manifest.lines().filter(|l| !l.starts_with('#')) {
        let Some((path, size)) = line.rsplit_once(' ') else {
            continue;
        };
        let size: i64 = size
            .parse()
            .map_err(|_| format!("manifest line {line:?}"))?;
        let st = e(fs::stat(&ctx, None, path, true), path)?;
        ensure!(
            st.size == size,
            "{path}: {} bytes unpacked, {size} packed",
            st.size
        );
        checked += 1;
    }
    let bb = e(fs::stat(&ctx, None, "/bin/busybox", true), "/bin/busybox")?;
    ensure!(
        bb.is_reg() && bb.mode & 0o111 == 0o111 && bb.uid == 0 && bb.gid == 0,
        "/bin/busybox mode {:o} owner {}:{}",
        bb.mode,
        bb.uid,
        bb.gid
    );
    e(
        fs::access(&ctx, None, "/bin/busybox", X_OK, true),
        "access X_OK /bin/busybox",
    )?;
    let head = read_all(&ctx, "/bin/sh")?;
    ensure!(
        head.starts_with(b"\x7fELF"),
        "/bin/sh does not lead to an ELF file"
    );
    ensure!(
        head.len() as i64 == bb.size,
        "/bin/sh → {} bytes, busybox is {}",
        head.len(),
        bb.size
    );
    ensure!(
        e(fs::readlink(&ctx, None, "/bin/sh"), "readlink /bin/sh")? == "busybox",
        "/bin/sh link target"
    );
    for applet in ["/bin/ls", "/bin/cat", "/usr/bin/awk", "/sbin/init"] {
        ensure!(
            e(fs::stat(&ctx, None, applet, false), applet)?.is_symlink(),
            "{applet} is not a symlink"
        );
        ensure!(
            e(fs::stat(&ctx, None, applet, true), applet)?.ino == bb.ino,
            "{applet} does not resolve to busybox"
        );
    }
    for d in ["/dev", "/proc", "/sys", "/tmp", "/root", "/mnt"] {
        ensure!(
            e(fs::stat(&ctx, None, d, true), d)?.is_dir(),
            "{d} is not a directory"
        );
    }
    ensure!(
        e(fs::stat(&ctx, None, "/tmp", true), "/tmp")?.mode & 0o7777 == 0o1777,
        "/tmp is not 1777"
    );
    let rcs = e(fs::stat(&ctx, None, "/etc/init.d/rcS", true), "rcS")?;
    ensure!(rcs.mode & 0o111 != 0, "rcS is not executable");
    ensure!(read_all(&ctx, "/etc/hostname")? == b"adros\n", "hostname");
    ensure!(
        e(fs::stat(&ctx, None, "/dev/null", true), "/dev/null")?.file_type() == S_IFCHR,
        "devfs not on /dev"
    );
    ensure!(checked >= 3, "manifest lists only {checked} files");
    crate::println!(
        "ktest: fs: {checked} manifest files match; busybox {} bytes",
        bb.size
    );
    Ok(())
}

/// A scratch directory on the root tmpfs.
fn scratch(name: &str) -> Result<(FsCtx, String), String> {
    let ctx = FsCtx::kernel();
    let dir = format!("/tmp/ktest-{name}-{}", now_ns());
    e(fs::mkdir(&ctx, None, &dir, 0o777), &dir)?;
    e(fs::chmod(&ctx, None, &dir, 0o777, true), &dir)?;
    Ok((ctx, dir))
}

fn symlink_loop() -> Result<(), String> {
    let (ctx, d) = scratch("loop")?;
    e(
        fs::symlink(&ctx, &format!("{d}/b"), None, &format!("{d}/a")),
        "symlink a",
    )?;
    e(
        fs::symlink(&ctx, &format!("{d}/a"), None, &format!("{d}/b")),
        "symlink b",
    )?;
    ensure!(
        fs::stat(&ctx, None, &format!("{d}/a"), true).err() == Some(Errno::ELOOP),
        "stat through a loop is not ELOOP"
    );
    ensure!(
        fs::open(&ctx, None, &format!("{d}/a/x"), O_RDONLY, 0).err() == Some(Errno::ELOOP),
        "open through a loop is not ELOOP"
    );
    e(
        fs::symlink(&ctx, "self", None, &format!("{d}/self")),
        "symlink self",
    )?;
    ensure!(
        fs::stat(&ctx, None, &format!("{d}/self"), true).err() == Some(Errno::ELOOP),
        "self loop"
    );
    ensure!(
        e(fs::stat(&ctx, None, &format!("{d}/a"), false), "lstat")?.is_symlink(),
        "lstat of a loop"
    );
    Ok(())
}

fn permissions() -> Result<(), String> {
    let (root, d) = scratch("perm")?;
    let user = FsCtx {
        uid: 1000,
        gid: 1000,
        ..root.clone()
    };
    let secret = format!("{d}/secret");
    let f = e(
        fs::open(&root, None, &secret, O_WRONLY | O_CREAT, 0o600),
        "create",
    )?;
    e(f.write(b"root only"), "write")?;
    ensure!(
        fs::open(&user, None, &secret, O_RDONLY, 0).err() == Some(Errno::EACCES),
        "user read a 0600 root file"
    );
    ensure!(
        fs::access(&user, None, &secret, R_OK, true).err() == Some(Errno::EACCES),
        "access(R_OK)"
    );
    ensure!(
        fs::open(&user, None, "/etc/passwd", O_WRONLY, 0).err() == Some(Errno::EACCES),
        "user opened /etc/passwd for writing"
    );
    ensure!(
        fs::open(&user, None, "/etc/passwd", O_RDONLY, 0).is_ok(),
        "user cannot read /etc/passwd"
    );
    ensure!(
        fs::mkdir(&user, None, "/etc/x", 0o755).err() == Some(Errno::EACCES),
        "user mkdir in /etc"
    );
    // Sticky /tmp: a user may not delete root's file there.
    let in_tmp = format!("{d}-sticky");
    e(
        fs::open(&root, None, &in_tmp, O_WRONLY | O_CREAT, 0o666),
        "create in /tmp",
    )?;
    ensure!(
        fs::unlink(&user, None, &in_tmp).err() == Some(Errno::EPERM),
        "user removed root's file from sticky /tmp"
    );
    e(fs::unlink(&root, None, &in_tmp), "unlink")?;
    // In a world-writable directory without the sticky bit, anyone may.
    e(
        fs::unlink(&user, None, &secret),
        "user unlink in a 0777 dir",
    )?;
    e(fs::rmdir(&root, None, &d), "rmdir")?;
    Ok(())
}

fn rename_unlink_rmdir() -> Result<(), String> {
    let (c, d) = scratch("ren")?;
    let p = |s: &str| format!("{d}/{s}");
    e(fs::open(&c, None, &p("a"), O_WRONLY | O_CREAT, 0o644), "a")?
        .write(b"A")
        .map_err(|x| format!("{x:?}"))?;
    e(fs::open(&c, None, &p("b"), O_WRONLY | O_CREAT, 0o644), "b")?;
    e(
        fs::rename(&c, None, &p("a"), None, &p("b"), 0),
        "rename over file",
    )?;
    ensure!(read_all(&c, &p("b"))? == b"A", "rename did not replace");
    e(fs::mkdir(&c, None, &p("d1"), 0o755), "d1")?;
    e(fs::mkdir(&c, None, &p("d2"), 0o755), "d2")?;
    e(fs::mkdir(&c, None, &p("d1/sub"), 0o755), "d1/sub")?;
    ensure!(
        fs::rename(&c, None, &p("d2"), None, &p("d1"), 0).err() == Some(Errno::ENOTEMPTY),
        "dir over non-empty dir"
    );
    ensure!(
        fs::rename(&c, None, &p("d1"), None, &p("d1/sub/in"), 0).err() == Some(Errno::EINVAL),
        "dir into itself"
    );
    ensure!(
        fs::rename(&c, None, &p("b"), None, &p("d1"), 0).err() == Some(Errno::EISDIR),
        "file over dir"
    );
    e(
        fs::rename(&c, None, &p("d1"), None, &p("d2"), 0),
        "dir over empty dir",
    )?;
    ensure!(
        fs::rename(&c, None, &p("b"), None, "/dev/b", 0).err() == Some(Errno::EXDEV),
        "rename across mounts"
    );
    ensure!(
        fs::rmdir(&c, None, &p("d2")).err() == Some(Errno::ENOTEMPTY),
        "rmdir non-empty"
    );
    ensure!(
        fs::unlink(&c, None, &p("d2")).err() == Some(Errno::EISDIR),
        "unlink dir"
    );
    ensure!(
        fs::rmdir(&c, None, &p("b")).err() == Some(Errno::ENOTDIR),
        "rmdir file"
    );
    ensure!(
        fs::rmdir(&c, None, "/dev").err() == Some(Errno::EBUSY),
        "rmdir mount point"
    );
    e(fs::rmdir(&c, None, &p("d2/sub")), "rmdir sub")?;
    e(fs::rmdir(&c, None, &p("d2")), "rmdir d2")?;
    let keep = e(fs::open(&c, None, &p("b"), O_RDONLY, 0), "open b")?;
    e(fs::unlink(&c, None, &p("b")), "unlink b")?;
    let mut buf = [0u8; 4];
    ensure!(
        e(keep.read(&mut buf), "read unlinked")? == 1 && buf[0] == b'A',
        "unlinked open file lost its data"
    );
    e(fs::rmdir(&c, None, &d), "rmdir scratch")?;
    Ok(())
}

fn big_file() -> Result<(), String> {
    let (c, d) = scratch("big")?;
    let path = format!("{d}/big");
    let data: Vec<u8> = (0..(1u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let sum = |b: &[u8]| {
        b.iter()
            .fold(0u64, |a, &x| a.wrapping_mul(31).wrapping_add(u64::from(x)))
    };
    let f = e(
        fs::open(&c, None, &path, O_RDWR | O_CREAT | O_TRUNC, 0o644),
        "create",
    )?;
    let mut off = 0;
    while off < data.len() {
        off += e(
            f.write(&data[off..(off + 100_000).min(data.len())]),
            "write",
        )?;
    }
    ensure!(e(f.stat(), "fstat")?.size == 1 << 20, "size after writes");
    let back = read_all(&c, &path)?;
    ensure!(
        sum(&back) == sum(&data) && back == data,
        "1 MiB read back differs"
    );
    e(fs::unlink(&c, None, &path), "unlink")?;
    e(fs::rmdir(&c, None, &d), "rmdir")?;
    Ok(())
}

fn pipe_threads() -> Result<(), String> {
    let (r, w) = e(fs::pipe(0), "pipe")?;
    const N: usize = 1 << 20;
    let writer = spawn("pipe-writer", move || {
        let data: Vec<u8> = (0..N).map(|i| (i % 251) as u8).collect();
        let mut off = 0;
        while off < N {
            match w.write(&data[off..(off + 5000).min(N)]) {
                Ok(n) => off += n,
                Err(_) => return,
            }
        }
        // `w` dropped here: the reader sees EOF.
    });
    let got = Arc::new(crate::sync::Mutex::new(Vec::new()));
    let g2 = got.clone();
    let reader = spawn("pipe-reader", move || {
        let mut buf = vec![0u8; 3001];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => g2.lock().extend_from_slice(&buf[..n]),
            }
        }
    });
    ensure!(writer.join_until(now_ns() + 60_000_000_000), "writer stuck");
    ensure!(
        reader.join_until(now_ns() + 60_000_000_000),
        "reader did not see EOF"
    );
    let got = got.lock();
    ensure!(got.len() == N, "read {} of {N} bytes", got.len());
    ensure!(
        got.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8),
        "pipe data corrupted"
    );
    // EPIPE with the reader gone; a blocked writer is released by the reader's exit.
    let (r, w) = e(fs::pipe(0), "pipe")?;
    let blocked = spawn("pipe-blocked", move || {
        let big = vec![0u8; 200_000];
        let mut total = 0;
        loop {
            match w.write(&big) {
                Ok(n) => total += n,
                Err(err) => {
                    assert_eq!(err, Errno::EPIPE);
                    assert!(total >= PIPE_SIZE);
                    return;
                }
            }
        }
    });
    crate::sched::sleep_ms(50);
    drop(r);
    ensure!(
        blocked.join_until(now_ns() + 10_000_000_000),
        "writer not released by the reader's close"
    );
    let (r, w) = e(fs::pipe(O_NONBLOCK), "pipe2")?;
    ensure!(
        r.read(&mut [0u8; 8]).err() == Some(Errno::EAGAIN),
        "non-blocking empty read"
    );
    drop(r);
    ensure!(
        w.write(b"x").err() == Some(Errno::EPIPE),
        "write without readers"
    );
    Ok(())
}

fn devices() -> Result<(), String> {
    let c = FsCtx::kernel();
    let null = e(fs::open(&c, None, "/dev/null", O_RDWR, 0), "/dev/null")?;
    ensure!(e(null.write(b"discard"), "write null")? == 7, "null write");
    ensure!(
        e(null.read(&mut [1u8; 16]), "read null")? == 0,
        "null read is not EOF"
    );
    let zero = e(fs::open(&c, None, "/dev/zero", O_RDONLY, 0), "/dev/zero")?;
    let mut b = vec![0xFFu8; 10_000];
    ensure!(
        e(zero.read(&mut b), "read zero")? == b.len() && b.iter().all(|&x| x == 0),
        "zero"
    );
    let full = e(fs::open(&c, None, "/dev/full", O_WRONLY, 0), "/dev/full")?;
    ensure!(
        full.write(b"x").err() == Some(Errno::ENOSPC),
        "/dev/full write is not ENOSPC"
    );
    let ur = e(
        fs::open(&c, None, "/dev/urandom", O_RDONLY, 0),
        "/dev/urandom",
    )?;
    let (mut a, mut bb) = ([0u8; 32], [0u8; 32]);
    e(ur.read(&mut a), "urandom")?;
    e(ur.read(&mut bb), "urandom")?;
    ensure!(a != bb && a != [0; 32], "urandom repeats");
    let con = e(
        fs::open(&c, None, "/dev/console", O_WRONLY, 0),
        "/dev/console",
    )?;
    ensure!(
        e(
            con.write(b"ktest: fs: hello from /dev/console\n"),
            "console"
        )? == 35,
        "console write"
    );
    Ok(())
}

fn corrupt_initrd() -> Result<(), String> {
    let mut img = fs::boot_module("initrd")
        .ok_or("no initrd module")?
        .to_vec();
    let len = img.len();
    let ctx = FsCtx::with_root(fs::PathRef::new_root(
        fs::tmpfs::TmpFs::new("tmpfs", 0o755),
        "ktest",
    ));
    // A copy of the module with bytes flipped: in the middle and near the end of an LZ4
    // frame (its checksums catch them); in the first header of a plain archive (the direct
    // boot's; USTAR checksums only its headers) and in its end-of-archive blocks.
    let spots = if fs::initrd::is_plain_tar(&img) {
        [100, 150, len - 10]
    } else {
        [len / 3, len / 2, len - 10]
    };
    for i in spots {
        img[i] ^= 0x5A;
    }
    match fs::initrd::unpack(&img, &ctx) {
        Ok(_) => Err("a corrupt initrd was accepted".into()),
        Err(err) => {
            crate::println!("ktest: fs: corrupt initrd rejected: {err}");
            Ok(())
        }
    }
}
