//! s05: ext2 on virtio-blk, on both stacks — AdrOS's native driver and NetBSD's ext2fs in
//! the rump kernel (`-o driver=rump`; skipped when the kernel was built without NetBSD
//! sources). An image made on the host by `mke2fs -d` is mounted in the guest by busybox
//! `mount`; every file's checksum must match the host's; a scripted workload (create, write,
//! rename, hard/symbolic links, chmod, truncate, delete, 200 files) runs on the mount and on a
//! host copy of the tree; after `umount` and power-off, `e2fsck -fn` must find the image clean
//! and the image must hold exactly the host's tree (extracted with `debugfs rdump`). Skipped
//! when e2fsprogs is missing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use adros_tests::{Boot, banner, rump_linked, skip, test_dir};

fn have_e2fsprogs(test: &str) -> bool {
    let ok = Command::new("mke2fs").arg("-V").output().is_ok()
        && Command::new("e2fsck").arg("-V").output().is_ok();
    if !ok {
        skip(
            test,
            "e2fsprogs (mke2fs, e2fsck, debugfs) not installed on the host",
        );
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
    let big: Vec<u8> = (0..1_500_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    std::fs::write(src.join("sub/big.bin"), big).unwrap();
    std::fs::write(src.join("sub/deeper/small"), "x\n").unwrap();
    std::os::unix::fs::symlink("hello.txt", src.join("link")).unwrap();
    let img = dir.join("ext2.img");
    let out = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext2"])
        .args(extra)
        .arg("-d")
        .arg(&src)
        .arg(&img)
        .arg("64M")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mke2fs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (img, src)
}

fn exec(name: &str, cmd: &str, disk: &Path) -> (String, i32) {
    let hex: String = cmd.bytes().map(|b| format!("{b:02x}")).collect();
    let t = Boot::new(name)
        .smp(2)
        .disk(disk.to_path_buf())
        .args(&format!("loglevel=3 adros.exec={hex}"))
        .timeout(Duration::from_secs(240))
        .run();
    if let Some(report) = banner::crash_report(t.serial()) {
        t.fail(&format!("the kernel crashed:\n{report}"));
    }
    if t.serial()
        .contains("called into the rump kernel with interrupts off")
    {
        t.fail("a thread called into the rump kernel with interrupts off (it can deadlock)");
    }
    let s = t.serial().replace('\r', "");
    let Some(b) = s.find("@@ADROS-EXEC-BEGIN@@\n") else {
        t.fail("the command never started (no BEGIN marker)")
    };
    let rest = &s[b + "@@ADROS-EXEC-BEGIN@@\n".len()..];
    let Some(e) = rest.find("\n@@ADROS-EXEC-EXIT ") else {
        t.fail("the command never finished (no EXIT marker)")
    };
    let status: i32 = rest[e + "\n@@ADROS-EXEC-EXIT ".len()..]
        .split("@@")
        .next()
        .and_then(|x| x.trim().parse().ok())
        .unwrap_or(-1);
    (rest[..e].to_string(), status)
}

fn md5(p: &Path) -> String {
    let out = Command::new("md5sum").arg(p).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
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
    debugfs(img, &format!("cat {path}"))
}

/// Whether `stack` can run here (the rump stack needs the components in the kernel).
fn stack_available(test: &str, stack: &str) -> bool {
    if !have_e2fsprogs(test) {
        return false;
    }
    if stack == "rump" && !rump_linked() {
        skip(
            test,
            "no NetBSD source: the kernel was built without the rump components",
        );
        return false;
    }
    true
}

/// `path type mode size content` for every entry under `root` (lost+found left out), sorted:
/// what "the same tree" means here.
fn tree_listing(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let mut ents: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
        ents.sort_by_key(|e| e.file_name());
        for e in ents {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if rel == "lost+found" {
                continue;
            }
            let m = std::fs::symlink_metadata(&p).unwrap();
            use std::os::unix::fs::PermissionsExt;
            let mode = m.permissions().mode() & 0o7777;
            if m.file_type().is_symlink() {
                out.push(format!(
                    "{rel} link {}",
                    std::fs::read_link(&p).unwrap().display()
                ));
            } else if m.is_dir() {
                out.push(format!("{rel} dir {mode:o}"));
                walk(root, &p, out);
            } else {
                out.push(format!("{rel} file {mode:o} {} {}", m.len(), md5(&p)));
            }
        }
    }
    let mut v = Vec::new();
    walk(root, root, &mut v);
    v
}

/// The workload, as a POSIX shell script run from the tree's root: the same text runs in
/// the guest (busybox sh, on the mount) and on the host (on a copy of the source tree).
const WORKLOAD: &str = r#"echo written-in-the-guest > new.txt
mkdir newdir && mkdir -p newdir/a/b && echo inner > newdir/f
i=0; while [ $i -lt 200 ]; do echo "file number $i" > newdir/a/f$i; i=$((i+1)); done
mv sub/deeper/small newdir/moved
mv newdir/a/f7 newdir/a/b/seven
i=0; while [ $i -lt 200 ]; do if [ $((i % 3)) -eq 0 ]; then rm -f newdir/a/f$i; fi; i=$((i+1)); done
rm -r sub/deeper
dd if=/dev/zero of=zeros bs=1024 count=2048 2>/dev/null
ln new.txt hardlink
ln -s newdir/f symlink2
mv sub renamed-sub
truncate -s 100000 renamed-sub/big.bin
chmod 600 new.txt
echo appended >> hello.txt
mkdir listing && i=0; while [ $i -lt 1000 ]; do : > listing/an-entry-with-a-name-long-enough-$i; i=$((i+1)); done
n=$(ls listing | wc -l); u=$(ls listing | sort -u | wc -l); [ "$n" -eq 1000 ] && [ "$u" -eq 1000 ] || { echo "listing-wrong n=$n unique=$u"; exit 1; }
echo workload-done"#;

/// Mounts the image with `stack`, checks every file's checksum against the host's, runs the
/// workload, unmounts; then checks the image on the host. The workload's `listing`
/// directory needs more than one `getdents` call (1,000 entries of ~40-byte names; the
/// kernel asks the file system for more entries than fit and moves the offset back), and
/// each entry must be listed exactly once.
fn read_write_workload(stack: &str) {
    let name = &format!("s05_ext2-{stack}_rw");
    if !stack_available(name, stack) {
        return;
    }
    let (img, src) = image(name, &[]);
    let cmd = format!(
        "mount -t ext2 -o driver={stack} /dev/vda /mnt && grep ' /mnt ' /proc/mounts && (cd /mnt && find . -type f | sort | xargs md5sum) \
         && readlink /mnt/link && cd /mnt && {{\n{WORKLOAD}\n}} && cd / && umount /mnt && echo umounted"
    );
    let (out, st) = exec(name, &cmd, &img);
    assert_eq!(st, 0, "guest output: {out}");
    assert!(
        out.contains(&format!("ext2 rw,driver={stack}")),
        "/proc/mounts does not say driver={stack}: {out}"
    );
    // Every file's checksum, as the host computes it.
    let host_sums = Command::new("sh")
        .arg("-c")
        .arg("find . -type f | sort | xargs md5sum")
        .current_dir(&src)
        .output()
        .unwrap();
    let host_sums = String::from_utf8_lossy(&host_sums.stdout).into_owned();
    assert!(!host_sums.trim().is_empty());
    for line in host_sums.lines() {
        assert!(
            out.lines().any(|l| l.trim() == line.trim()),
            "guest ({stack}) lacks the host's checksum line {line:?}:\n{out}"
        );
    }
    assert!(
        out.contains("workload-done") && out.contains("umounted"),
        "{out}"
    );
    fsck_clean(&img);
    // The same workload on a host copy of the tree; then the image must hold exactly it.
    let expect = img.with_file_name("expected");
    let _ = std::fs::remove_dir_all(&expect);
    let cp = Command::new("cp")
        .arg("-a")
        .arg(&src)
        .arg(&expect)
        .status()
        .unwrap();
    assert!(cp.success());
    let host = Command::new("sh")
        .arg("-c")
        .arg(WORKLOAD)
        .current_dir(&expect)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&host.stdout).contains("workload-done"),
        "the workload failed on the host: {host:?}"
    );
    let got = img.with_file_name("extracted");
    let _ = std::fs::remove_dir_all(&got);
    std::fs::create_dir_all(&got).unwrap();
    let rd = Command::new("debugfs")
        .args(["-R", &format!("rdump / {}", got.display())])
        .arg(&img)
        .output()
        .unwrap();
    assert!(rd.status.success(), "debugfs rdump: {rd:?}");
    let (want, have) = (tree_listing(&expect), tree_listing(&got));
    let missing: Vec<_> = want.iter().filter(|l| !have.contains(l)).collect();
    let extra: Vec<_> = have.iter().filter(|l| !want.contains(l)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "the image ({stack}) differs from the host's tree:\nmissing {missing:#?}\nunexpected {extra:#?}"
    );
    assert_eq!(debugfs_cat(&img, "/newdir/a/b/seven"), "file number 7\n");
}

#[test]
fn native_read_write_workload() {
    read_write_workload("native");
}

#[test]
fn rump_read_write_workload() {
    read_write_workload("rump");
}

/// Which stack `mount -t ext2` picks: rump when linked, else native; `-o driver=` and
/// `fs.ext2=` override; `/proc/drivers` says what serves what. Also the block ioctls.
#[test]
fn driver_selection_and_block_ioctls() {
    let name = "s05_ext2-driver_selection";
    if !have_e2fsprogs(name) {
        return;
    }
    let (img, _) = image(name, &[]);
    let (out, st) = exec(
        name,
        "cat /proc/drivers; mount -t ext2 /dev/vda /mnt; echo rc-default=$?; grep ' /mnt ' /proc/mounts; umount /mnt; \
         mount -t ext2 -o driver=native /dev/vda /mnt; echo rc-native=$?; grep ' /mnt ' /proc/mounts; umount /mnt; \
         mount -t ext2 -o driver=rump /dev/vda /mnt; echo rc-rump=$?; grep ' /mnt ' /proc/mounts; umount /mnt; \
         mount -t ext2 -o driver=bogus /dev/vda /mnt; echo rc-bogus=$?; \
         blockdev --getsize64 /dev/vda; blockdev --getss /dev/vda",
        &img,
    );
    assert_eq!(st, 0, "{out}");
    assert!(
        out.contains("rc-native=0") && out.contains("ext2 rw,driver=native"),
        "{out}"
    );
    assert!(
        out.contains("block vda virtio-blk"),
        "/proc/drivers lists the disk and its driver: {out}"
    );
    assert!(
        !out.contains("rc-bogus=0"),
        "driver=bogus must be refused: {out}"
    );
    if rump_linked() {
        // rump_init may still be running when the first command reads /proc/drivers.
        assert!(
            (out.contains("rump ready") || out.contains("rump starting"))
                && out.contains("ext2 default=rump"),
            "{out}"
        );
        assert!(
            out.contains("rc-default=0") && out.contains("rc-rump=0"),
            "{out}"
        );
        assert_eq!(
            out.matches("ext2 rw,driver=rump").count(),
            2,
            "default and -o driver=rump both use rump: {out}"
        );
    } else {
        assert!(
            out.contains("rump not-linked") && out.contains("ext2 default=native"),
            "{out}"
        );
        assert!(
            out.contains("rc-default=0") && !out.contains("rc-rump=0"),
            "without rump, driver=rump must fail: {out}"
        );
    }
    assert!(
        out.contains("67108864"),
        "BLKGETSIZE64 of a 64 MiB disk: {out}"
    );
    assert!(out.lines().any(|l| l.trim() == "512"), "BLKSSZGET: {out}");
}

/// `fs.ext2=native` on the kernel command line makes the native driver the default.
#[test]
fn cmdline_selects_native() {
    let name = "s05_ext2-cmdline_native";
    if !have_e2fsprogs(name) {
        return;
    }
    let (img, _) = image(name, &[]);
    let cmd = "mount -t ext2 /dev/vda /mnt && grep ' /mnt ' /proc/mounts";
    let hex: String = cmd.bytes().map(|b| format!("{b:02x}")).collect();
    let t = Boot::new(name)
        .disk(img)
        .args(&format!("loglevel=3 fs.ext2=native adros.exec={hex}"))
        .timeout(Duration::from_secs(240))
        .run();
    let s = t.serial().replace('\r', "");
    if !s.contains("ext2 rw,driver=native") || !s.contains("@@ADROS-EXEC-EXIT 0@@") {
        t.fail("fs.ext2=native did not make the native driver the default");
    }
}

fn corrupt_superblock(stack: &str) {
    let name = &format!("s05_ext2-corrupt_{stack}");
    if !stack_available(name, stack) {
        return;
    }
    let (img, _) = image(name, &[]);
    let mut raw = std::fs::read(&img).unwrap();
    // Blocks per group = 0 and a wild inode count.
    raw[1024 + 32..1024 + 36].copy_from_slice(&0u32.to_le_bytes());
    raw[1024..1028].copy_from_slice(&u32::MAX.to_le_bytes());
    std::fs::write(&img, raw).unwrap();
    let (out, st) = exec(
        name,
        &format!("mount -t ext2 -o driver={stack} /dev/vda /mnt; echo rc=$?; echo still-alive"),
        &img,
    );
    assert_eq!(st, 0, "{out}");
    assert!(!out.contains("rc=0"), "a corrupt superblock mounted: {out}");
    assert!(out.contains("still-alive"), "{out}");
}

#[test]
fn corrupt_superblock_native() {
    corrupt_superblock("native");
}

#[test]
fn corrupt_superblock_rump() {
    corrupt_superblock("rump");
}

fn debugfs(img: &Path, req: &str) -> String {
    let out = Command::new("debugfs")
        .args(["-R", req])
        .arg(img)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn block_size(img: &Path) -> u64 {
    let out = Command::new("dumpe2fs")
        .arg("-h")
        .arg(img)
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    s.lines()
        .find_map(|l| {
            l.strip_prefix("Block size:")
                .map(|v| v.trim().parse().unwrap())
        })
        .expect("dumpe2fs block size")
}

fn poke(img: &Path, off: u64, bytes: &[u8]) {
    let mut raw = std::fs::read(img).unwrap();
    raw[off as usize..off as usize + bytes.len()].copy_from_slice(bytes);
    std::fs::write(img, raw).unwrap();
}

/// Fuzzed metadata — group descriptors, the root inode, the root directory's block — makes the
/// mount or the access (reading files by name: busybox's `ls` and `find` do not report
/// `readdir` errors) fail with an error on each stack; the kernel keeps running (a NetBSD
/// panic, which ext2fs raises for a bad directory on a read-write mount, is contained: the
/// call inside it fails with EIO, the rump stack reports itself dead, later calls get EIO).
fn corrupt_metadata(stack: &str) {
    let name = &format!("s05_ext2-fuzz_{stack}");
    if !stack_available(name, stack) {
        return;
    }
    let mut disks = Vec::new();
    for kind in ["gdt", "inode", "dirblock"] {
        let (img, _) = image(&format!("{name}-{kind}"), &[]);
        let bs = block_size(&img);
        match kind {
            // Group 0's inode table pointer far outside the file system.
            "gdt" => poke(
                &img,
                (if bs == 1024 { 2 } else { 1 }) * bs + 8,
                &0x7fff_fff0u32.to_le_bytes(),
            ),
            // The root inode's first block pointer outside the file system.
            "inode" => {
                let m = debugfs(&img, "imap <2>");
                let blk: u64 = m
                    .split("located at block ")
                    .nth(1)
                    .and_then(|r| r.split(',').next())
                    .and_then(|v| v.trim().parse().ok())
                    .expect("imap block");
                let off = u64::from_str_radix(
                    m.split("offset 0x").nth(1).map(str::trim).unwrap_or("0"),
                    16,
                )
                .unwrap();
                poke(&img, blk * bs + off + 40, &0x7fff_fff0u32.to_le_bytes());
            }
            // The root directory's first entry with an impossible record length.
            _ => {
                let blk: u64 = debugfs(&img, "blocks /")
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("root dir block");
                poke(&img, blk * bs + 4, &3u16.to_le_bytes());
            }
        }
        disks.push(img);
    }
    let cmd = format!(
        "for d in a b c; do if mount -t ext2 -o driver={stack} /dev/vd$d /mnt; then (cat /mnt/hello.txt /mnt/sub/big.bin >/dev/null && find /mnt -type f -exec cat {{}} + >/dev/null); echo \"vd$d access=$?\"; umount /mnt 2>/dev/null; else echo \"vd$d mount=failed\"; fi; done; cat /proc/drivers; echo still-alive"
    );
    let hex: String = cmd.bytes().map(|b| format!("{b:02x}")).collect();
    let mut b = Boot::new(name)
        .smp(2)
        .args(&format!("loglevel=3 adros.exec={hex}"))
        .timeout(Duration::from_secs(240));
    for d in disks {
        b = b.disk(d);
    }
    let t = b.run();
    if let Some(report) = banner::crash_report(t.serial()) {
        t.fail(&format!("the kernel crashed:\n{report}"));
    }
    let s = t.serial().replace('\r', "");
    if !s.contains("still-alive") || !s.contains("@@ADROS-EXEC-EXIT 0@@") {
        t.fail("the guest did not carry on after the corrupted disks");
    }
    for d in ["vda", "vdb", "vdc"] {
        let line = s
            .lines()
            .find(|l| l.starts_with(&format!("{d} ")))
            .unwrap_or("");
        if line != format!("{d} mount=failed")
            && (!line.starts_with(&format!("{d} access=")) || line.ends_with("access=0"))
        {
            t.fail(&format!(
                "corrupted {d} was mounted and read without any error ({line:?})"
            ));
        }
    }
    // A NetBSD panic must have been contained: the stack says it is dead, and carried on.
    if stack == "rump" && s.contains("NetBSD kernel panicked") && !s.contains("rump dead") {
        t.fail("NetBSD panicked but /proc/drivers does not report the rump stack dead");
    }
}

#[test]
fn corrupt_metadata_native() {
    corrupt_metadata("native");
}

#[test]
fn corrupt_metadata_rump() {
    corrupt_metadata("rump");
}

/// `fsync` and `sync` put data on the disk: files written and synced, then the machine
/// powered off without unmounting, are in the image. Both also commit the disk's write
/// cache (a virtio-blk flush, counted in `/proc/drivers`): QEMU keeps the image's writes
/// across a power-off either way, so the flush count is what shows durability here.
fn sync_then_power_off(stack: &str) {
    let name = &format!("s05_ext2-sync_{stack}");
    if !stack_available(name, stack) {
        return;
    }
    let (img, _) = image(name, &[]);
    let cmd = format!(
        "fl() {{ sed -n 's/^virtio-blk vda .*flushes=\\([0-9]*\\).*/\\1/p' /proc/drivers; }}; \
         mount -t ext2 -o driver={stack} /dev/vda /mnt && echo synced-data > /mnt/f1 && a=$(fl) && \
         dd if=/dev/zero of=/mnt/f2 bs=1024 count=100 conv=fsync 2>/dev/null && b=$(fl) && \
         echo more > /mnt/f3 && sync && c=$(fl) && echo \"flushes fsync=$((b-a)) sync=$((c-b))\" && echo synced"
    );
    let (out, st) = exec(name, &cmd, &img);
    assert_eq!(st, 0, "{out}");
    assert!(out.contains("synced"), "{out}");
    let count = |what: &str| -> u64 {
        out.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{what}=")))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no flush count for {what} in: {out}"))
    };
    assert!(
        count("fsync") >= 1,
        "fsync did not flush the disk's write cache ({stack}): {out}"
    );
    assert!(
        count("sync") >= 1,
        "sync did not flush the disk's write cache ({stack}): {out}"
    );
    assert_eq!(
        debugfs_cat(&img, "/f1"),
        "synced-data\n",
        "f1 is not on the disk after sync ({stack})"
    );
    let stat = debugfs(&img, "stat /f2");
    assert!(
        stat.contains("Size: 102400"),
        "f2 is not on the disk after fsync+sync ({stack}): {stat}"
    );
}

#[test]
fn sync_then_power_off_native() {
    sync_then_power_off("native");
}

#[test]
fn sync_then_power_off_rump() {
    sync_then_power_off("rump");
}

/// The native driver writes its cached metadata back by itself (`ext2.writeback=SECS`,
/// default 30): a file created and left alone is on the disk after a power-off without
/// `sync` or `umount`.
#[test]
fn native_periodic_write_back() {
    let name = "s05_ext2-writeback_native";
    if !stack_available(name, "native") {
        return;
    }
    let (img, _) = image(name, &[]);
    let cmd = "mount -t ext2 -o driver=native /dev/vda /mnt && echo left-alone > /mnt/lazy && mkdir /mnt/lazydir && sleep 4 && echo slept";
    let hex: String = cmd.bytes().map(|b| format!("{b:02x}")).collect();
    let t = Boot::new(name)
        .disk(img.clone())
        .args(&format!("loglevel=3 ext2.writeback=1 adros.exec={hex}"))
        .timeout(Duration::from_secs(240))
        .run();
    let s = t.serial().replace('\r', "");
    if !s.contains("slept") || !s.contains("@@ADROS-EXEC-EXIT 0@@") {
        t.fail("the guest command failed");
    }
    assert_eq!(
        debugfs_cat(&img, "/lazy"),
        "left-alone\n",
        "the file written without sync is not on the disk"
    );
    assert!(
        debugfs(&img, "stat /lazydir").contains("Type: directory"),
        "the directory made without sync is not on the disk"
    );
}

/// A hash-indexed (htree) directory — what Linux makes of any directory over one block —
/// read and written by the guest: every name looked up, one removed while the index is
/// intact, files created and renamed in it, then `e2fsck -fn` clean on the host and
/// exactly the expected names in the directory. The rump stack's ext2fs does not maintain
/// indexes; it must turn the directory into a plain one rather than corrupt its index.
fn indexed_directory(stack: &str) {
    let name = &format!("s05_ext2-htree_{stack}");
    if !stack_available(name, stack) {
        return;
    }
    let (img, _) = image(name, &[]);
    // 2,000 names, then e2fsck -D indexes every directory of more than one block.
    let fill = Command::new("debugfs")
        .arg("-w")
        .arg("-f")
        .arg("-")
        .arg(&img)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write as _;
            let mut script = String::from("mkdir /big\n");
            for i in 0..2000 {
                script.push_str(&format!("write /dev/null /big/made-on-the-host-{i}\n"));
            }
            c.stdin.take().unwrap().write_all(script.as_bytes())?;
            c.wait()
        })
        .unwrap();
    assert!(fill.success(), "debugfs could not fill the directory");
    let d = Command::new("e2fsck")
        .arg("-fyD")
        .arg(&img)
        .output()
        .unwrap();
    assert!(
        d.status.code().is_some_and(|c| c <= 1),
        "e2fsck -fyD: {d:?}"
    );
    assert!(
        debugfs(&img, "stat /big").contains("Flags: 0x1000"),
        "e2fsck -D did not index /big"
    );
    let cmd = format!(
        "mount -t ext2 -o driver={stack} /dev/vda /mnt && \
         echo looked=$(ls -l /mnt/big | grep -c made-on-the-host-) && \
         if [ -e /mnt/big/not-there ]; then echo phantom; fi && \
         rm /mnt/big/made-on-the-host-5 && \
         i=0; while [ $i -lt 300 ]; do : > /mnt/big/made-in-the-guest-$i; i=$((i+1)); done && \
         mv /mnt/big/made-on-the-host-7 /mnt/big/renamed-in-the-guest && \
         cat /mnt/big/made-on-the-host-1999 /mnt/big/made-in-the-guest-299 && \
         echo listed=$(ls /mnt/big | wc -l) && umount /mnt && echo umounted"
    );
    let (out, st) = exec(name, &cmd, &img);
    assert_eq!(st, 0, "{out}");
    assert!(
        out.contains("looked=2000") && !out.contains("phantom"),
        "lookups of every name (ls -l) before any change: {out}"
    );
    assert!(
        out.contains("listed=2299") && out.contains("umounted"),
        "{out}"
    );
    fsck_clean(&img);
    // `ls -p` lines are /inode/mode/uid/gid/name/size/; a removed entry at the start of a
    // block keeps its name with inode 0.
    let ls = debugfs(&img, "ls -p /big");
    let live: std::collections::BTreeSet<&str> = ls
        .lines()
        .filter_map(
            |l| match l.trim().split('/').collect::<Vec<_>>().as_slice() {
                [_, ino, _, _, _, name, ..] if *ino != "0" && *name != "." && *name != ".." => {
                    Some(*name)
                }
                _ => None,
            },
        )
        .collect();
    for want in [
        "made-on-the-host-0",
        "made-on-the-host-1999",
        "made-in-the-guest-0",
        "made-in-the-guest-299",
        "renamed-in-the-guest",
    ] {
        assert!(
            live.contains(want),
            "{want} is not in /big on the disk ({stack})"
        );
    }
    assert!(
        !live.contains("made-on-the-host-7"),
        "the renamed entry is still there ({stack})"
    );
    assert!(
        !live.contains("made-on-the-host-5"),
        "the removed entry is still there ({stack})"
    );
    assert_eq!(live.len(), 2299, "entries on the disk ({stack})");
}

#[test]
fn indexed_directory_native() {
    indexed_directory("native");
}

#[test]
fn indexed_directory_rump() {
    indexed_directory("rump");
}

/// Writable shared file mappings on ext2 (tests/user/mapshare.c): four threads, a fork child
/// and the process write a file through MAP_SHARED mappings, each store reaching the file by
/// another road (read(2) coherence, msync, fsync, munmap, a child's exit); the same program
/// on tmpfs in the same boot. After `umount` the host finds every store in the image, and
/// `e2fsck -fn` is clean.
fn shared_file_mapping(stack: &str) {
    let name = &format!("s05_ext2-mapshare_{stack}");
    if !stack_available(name, stack) {
        return;
    }
    let (img, _) = image(name, &[]);
    let cmd = format!(
        "/usr/libexec/adros-tests/mapshare /tmp && \
         mount -t ext2 -o driver={stack} /dev/vda /mnt && \
         /usr/libexec/adros-tests/mapshare /mnt && umount /mnt && echo unmounted"
    );
    let (out, st) = exec(name, &cmd, &img);
    assert_eq!(st, 0, "{out}");
    assert!(
        out.contains("PASS mapshare /tmp") && out.contains("PASS mapshare /mnt"),
        "{out}"
    );
    assert!(out.contains("unmounted"), "{out}");
    let mut want: Vec<u8> = [b'a', b'b', b'c']
        .iter()
        .flat_map(|&c| std::iter::repeat_n(c, 4096))
        .collect();
    for (off, s) in [
        (0, "count=00004000"),
        (64, "MSYNCED"),
        (4096, "child"),
        (4096 + 64, "UNMAPPED"),
        (8192 + 64, "EXITED"),
        (8192 + 100, "WRITE"),
        (8192 + 200, "FSYNCED"),
    ] {
        want[off..off + s.len()].copy_from_slice(s.as_bytes());
    }
    let got = debugfs_cat(&img, "/shared.bin");
    assert_eq!(
        got.len(),
        want.len(),
        "shared.bin on the disk ({stack}) has the wrong size"
    );
    for (i, (g, w)) in got.bytes().zip(want.iter()).enumerate() {
        assert_eq!(
            g,
            *w,
            "shared.bin on the disk ({stack}) differs at offset {i}: {:?}",
            &got[i.saturating_sub(8)..(i + 16).min(got.len())]
        );
    }
    fsck_clean(&img);
}

#[test]
fn shared_file_mapping_reaches_the_disk_native() {
    shared_file_mapping("native");
}

#[test]
fn shared_file_mapping_reaches_the_disk_rump() {
    shared_file_mapping("rump");
}

/// `stat` sees every change at once: attributes read through a directory stepped into
/// (`d/.`), the working directory (`.`), a path's last component and `fstat` of a file
/// kept open (busybox `wc -c` of a regular file is its `st_size`), after creates,
/// writes, appends, `chmod`, hard links, `mkdir`/`rmdir` and unlinks (the native driver
/// keeps each node's attributes until the file system changes; a stale copy shows here).
fn stat_sees_every_change(stack: &str) {
    let name = &format!("s05_ext2-statfresh_{stack}");
    if !stack_available(name, stack) {
        return;
    }
    let (img, _) = image(name, &[]);
    let cmd = format!(
        "umask 022 && mount -t ext2 -o driver={stack} /dev/vda /mnt && cd /mnt && mkdir d \
         && stat -c 'S1 %a %h' d/. && touch d/x && exec 3<d/x && mkdir d/y && stat -c 'S2 %h' d/. \
         && printf abc > d/x && stat -c 'S3 %s' d/x && printf defgh >> d/x \
         && stat -c 'S4 %s' d/./x && echo \"W1 $(( $(wc -c < d/x) ))\" && printf ij >> d/x \
         && echo \"W2 $(( $(wc -c < d/x) ))\" && exec 3<&- && chmod 600 d/x && stat -c 'S5 %a' d/x \
         && ln d/x d/z && stat -c 'S6 %h' d/x && rm d/z && stat -c 'S7 %h' d/x \
         && chmod 700 d && stat -c 'S8 %a %h' d/. && rmdir d/y && stat -c 'S9 %h' d/. \
         && cd d && stat -c 'C1 %h' . && mkdir w && stat -c 'C2 %h' . && rmdir w \
         && stat -c 'C3 %h %a' . && chmod 750 . && stat -c 'C4 %a' . \
         && printf 12 > q && stat -c 'C5 %s' q && printf 345 >> q && stat -c 'C6 %s' q \
         && stat -c 'C7 %s' ../d/q && cd / && umount /mnt && echo umounted"
    );
    let (out, st) = exec(name, &cmd, &img);
    assert_eq!(st, 0, "guest output: {out}");
    let want = [
        "S1 755 2", "S2 3", "S3 3", "S4 8", "W1 8", "W2 10", "S5 600", "S6 2", "S7 1", "S8 700 3",
        "S9 2", "C1 2", "C2 3", "C3 2 700", "C4 750", "C5 2", "C6 5", "C7 5",
    ];
    let got: Vec<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with(['S', 'C', 'W']))
        .collect();
    assert_eq!(got, want, "stat ({stack}) saw stale attributes:\n{out}");
    assert!(out.contains("umounted"), "{out}");
    fsck_clean(&img);
}

#[test]
fn stat_sees_every_change_native() {
    stat_sees_every_change("native");
}

#[test]
fn stat_sees_every_change_rump() {
    stat_sees_every_change("rump");
}
