//! s05: ext2 on virtio-blk with the native driver — an image made on the host by
//! `mke2fs -d`, mounted in the guest by busybox `mount`, read (checksums match the host's),
//! written, unmounted; then `e2fsck -fn` on the host must find it clean and `debugfs` must
//! see what the guest wrote. Skipped when e2fsprogs is missing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use adros_tests::{Boot, banner, skip, test_dir};

fn have_e2fsprogs(test: &str) -> bool {
    let ok = Command::new("mke2fs").arg("-V").output().is_ok() && Command::new("e2fsck").arg("-V").output().is_ok();
    if !ok {
        skip(test, "e2fsprogs (mke2fs, e2fsck, debugfs) not installed on the host");
    }
    ok
}

/// A 64 MiB ext2 image holding a small known tree; returns (image, source dir).
fn image(name: &str, extra: &[&str]) -> (PathBuf, PathBuf) {
    let dir = test_dir().join("disks").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("sub/deeper")).unwrap();
    std::fs::write(src.join("hello.txt"), "hello from the host\n").unwrap();
    let big: Vec<u8> = (0..1_500_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
    std::fs::write(src.join("sub/big.bin"), big).unwrap();
    std::fs::write(src.join("sub/deeper/small"), "x\n").unwrap();
    std::os::unix::fs::symlink("hello.txt", src.join("link")).unwrap();
    let img = dir.join("ext2.img");
    let out = Command::new("mke2fs").args(["-q", "-F", "-t", "ext2"]).args(extra).arg("-d").arg(&src).arg(&img).arg("64M").output().unwrap();
    assert!(out.status.success(), "mke2fs: {}", String::from_utf8_lossy(&out.stderr));
    (img, src)
}

fn exec(name: &str, cmd: &str, disk: &Path) -> (String, i32) {
    let hex: String = cmd.bytes().map(|b| format!("{b:02x}")).collect();
    let t = Boot::new(name).smp(2).disk(disk.to_path_buf()).args(&format!("loglevel=3 adros.exec={hex}")).timeout(Duration::from_secs(240)).run();
    if let Some(report) = banner::crash_report(t.serial()) {
        t.fail(&format!("the kernel crashed:\n{report}"));
    }
    let s = t.serial().replace('\r', "");
    let Some(b) = s.find("@@ADROS-EXEC-BEGIN@@\n") else { t.fail("the command never started (no BEGIN marker)") };
    let rest = &s[b + "@@ADROS-EXEC-BEGIN@@\n".len()..];
    let Some(e) = rest.find("\n@@ADROS-EXEC-EXIT ") else { t.fail("the command never finished (no EXIT marker)") };
    let status: i32 = rest[e + "\n@@ADROS-EXEC-EXIT ".len()..].split("@@").next().and_then(|x| x.trim().parse().ok()).unwrap_or(-1);
    (rest[..e].to_string(), status)
}

fn md5(p: &Path) -> String {
    let out = Command::new("md5sum").arg(p).output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or("").to_string()
}

fn fsck_clean(img: &Path) {
    let out = Command::new("e2fsck").arg("-fn").arg(img).output().unwrap();
    assert!(
        out.status.success(),
        "e2fsck -fn is not clean:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn debugfs_cat(img: &Path, path: &str) -> String {
    let out = Command::new("debugfs").args(["-R", &format!("cat {path}")]).arg(img).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn native_mount_read_write_umount() {
    let name = "s05_ext2-native_rw";
    if !have_e2fsprogs(name) {
        return;
    }
    let (img, src) = image(name, &[]);
    let cmd = "mount -t ext2 -o driver=native /dev/vda /mnt && cat /mnt/hello.txt && md5sum /mnt/sub/big.bin && readlink /mnt/link \
        && echo written-in-the-guest > /mnt/new.txt && mkdir /mnt/newdir && echo inner > /mnt/newdir/f \
        && mv /mnt/sub/deeper/small /mnt/newdir/moved && rm -r /mnt/sub/deeper && ls /mnt && umount /mnt && echo umounted";
    let (out, st) = exec(name, cmd, &img);
    assert_eq!(st, 0, "guest output: {out}");
    assert!(out.contains("hello from the host"), "{out}");
    assert!(out.contains(&md5(&src.join("sub/big.bin"))), "checksum of big.bin differs from the host's: {out}");
    assert!(out.contains("umounted"), "{out}");
    fsck_clean(&img);
    assert_eq!(debugfs_cat(&img, "/new.txt"), "written-in-the-guest\n");
    assert_eq!(debugfs_cat(&img, "/newdir/f"), "inner\n");
    assert_eq!(debugfs_cat(&img, "/newdir/moved"), "x\n");
}

#[test]
fn rump_driver_not_linked_is_enodev() {
    let name = "s05_ext2-rump_enodev";
    if !have_e2fsprogs(name) {
        return;
    }
    let (img, _) = image(name, &[]);
    let (out, st) = exec(name, "mount -t ext2 -o driver=rump /dev/vda /mnt; echo rc=$?; blockdev --getsize64 /dev/vda; blockdev --getss /dev/vda", &img);
    assert_eq!(st, 0, "{out}");
    assert!(out.contains("rc=") && !out.contains("rc=0"), "mount -o driver=rump must fail while rump is not linked: {out}");
    assert!(out.contains("67108864"), "BLKGETSIZE64 of a 64 MiB disk: {out}");
    assert!(out.lines().any(|l| l.trim() == "512"), "BLKSSZGET: {out}");
}

#[test]
fn corrupt_superblock_fails_the_mount_and_the_kernel_lives() {
    let name = "s05_ext2-corrupt";
    if !have_e2fsprogs(name) {
        return;
    }
    let (img, _) = image(name, &[]);
    let mut raw = std::fs::read(&img).unwrap();
    // Blocks per group = 0 and a wild inode count.
    raw[1024 + 32..1024 + 36].copy_from_slice(&0u32.to_le_bytes());
    raw[1024..1028].copy_from_slice(&u32::MAX.to_le_bytes());
    std::fs::write(&img, raw).unwrap();
    let (out, st) = exec(name, "mount -t ext2 /dev/vda /mnt; echo rc=$?; echo still-alive", &img);
    assert_eq!(st, 0, "{out}");
    assert!(!out.contains("rc=0"), "a corrupt superblock mounted: {out}");
    assert!(out.contains("still-alive"), "{out}");
}
