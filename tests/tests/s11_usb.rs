//! s11: USB sticks through NetBSD's USB stack in the rump kernel (`usb.driver=rump`), on
//! QEMU's `usb-ehci` and `qemu-xhci`. Sticks are made on the host: a partitioned FAT32 stick
//! (MBR, `mkfs.vfat` + `mcopy`: long names with spaces, a 24 MB file) and a whole-disk ext2
//! stick (`mke2fs -d`). In the guest the stick must appear as `/dev/sda` (with `/dev/sda1`
//! from AdrOS's own MBR code), mount (`-t vfat`: NetBSD's msdosfs; `-t ext2`: both stacks)
//! and read byte-exact (every file's md5 equals the host's). A write workload on FAT must
//! leave the partition `fsck.vfat -n`-clean with exactly the expected files (read back with
//! mtools). Bad input — a partition that lies past the end of the stick — fails with an
//! errno and a log line, and the kernel lives. Every test is skipped (counted as skipped)
//! without NetBSD source, or without the host tools it needs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use adros_tests::sticks::{
    MIB, guest_sums, host_sums, pattern, run, sbin, source_tree, wait_for, write_mbr,
};
use adros_tests::{Boot, banner, rump_linked, skip, test_dir};

fn tools_available(test: &str, tools: &[&str]) -> bool {
    if !rump_linked() {
        skip(
            test,
            "no NetBSD source: the kernel was built without the rump components",
        );
        return false;
    }
    for t in tools {
        let found = std::env::var_os("PATH").is_some_and(|p| {
            std::env::split_paths(&p).any(|d| d.join(t).is_file())
                || Path::new("/usr/sbin").join(t).is_file()
                || Path::new("/sbin").join(t).is_file()
        });
        if !found {
            skip(test, &format!("{t} is not installed on the host"));
            return false;
        }
    }
    true
}

/// Partition 1 of a FAT32 stick starts here (sectors).
const FAT_START: u32 = 2048;

/// Copies the FAT partition of stick image `img` out on its own (into `dir`, for
/// `fsck.vfat` and mtools), checks that `fsck.vfat -n` finds it clean, and returns its path.
fn clean_fat_partition(dir: &Path, img: &Path) -> String {
    let part = dir.join("part.img");
    let data = std::fs::read(img).unwrap();
    std::fs::write(&part, &data[(FAT_START as usize * 512)..]).unwrap();
    let out = Command::new(sbin("fsck.vfat"))
        .arg("-n")
        .arg(&part)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "fsck.vfat -n is not clean after the guest's writes:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    part.display().to_string()
}

/// A 96 MiB stick: MBR, partition 1 FAT32 (LBA, type 0x0c) holding `src`.
fn fat_stick(dir: &Path, src: &Path) -> PathBuf {
    let img = dir.join("fat.img");
    let size = 96 * MIB;
    let f = std::fs::File::create(&img).unwrap();
    f.set_len(size).unwrap();
    drop(f);
    let count = (size / 512) as u32 - FAT_START;
    write_mbr(&img, FAT_START, count, 0x0c);
    run(Command::new(sbin("mkfs.vfat"))
        .args(["-F", "32", "-n", "ADROSUSB", "--offset"])
        .arg(FAT_START.to_string())
        .arg(&img)
        .arg((count / 2).to_string()));
    let target = format!("{}@@{}", img.display(), u64::from(FAT_START) * 512);
    for e in std::fs::read_dir(src).unwrap().flatten() {
        run(Command::new("mcopy")
            .args(["-s", "-Q", "-i", &target])
            .arg(e.path())
            .arg("::/"));
    }
    img
}

/// Shell: `SUM <md5> ./<path>` for every file under the current directory.
const SUMS: &str = "find . -type f | sort | while IFS= read -r f; do \
     echo \"SUM $(md5sum < \"$f\" | cut -d' ' -f1) $f\"; done; ";

struct Guest {
    out: String,
    status: i32,
    serial: String,
}

fn exec(name: &str, controller: &str, cmd: &str, sticks: &[&Path], loglevel: u32) -> Guest {
    exec_with(name, controller, cmd, sticks, loglevel, "")
}

/// [`exec`] with more kernel command-line words (`usb.driver=native`).
fn exec_with(
    name: &str,
    controller: &str,
    cmd: &str,
    sticks: &[&Path],
    loglevel: u32,
    extra: &str,
) -> Guest {
    let hex: String = cmd.bytes().map(|b| format!("{b:02x}")).collect();
    let mut b = Boot::new(name)
        .smp(2)
        .usb_controller(controller)
        .args(&format!("loglevel={loglevel} {extra} adros.exec={hex}"))
        .timeout(Duration::from_secs(300));
    for s in sticks {
        b = b.usb_disk(s.to_path_buf());
    }
    let t = b.run();
    if let Some(report) = banner::crash_report(t.serial()) {
        t.fail(&format!("the kernel crashed:\n{report}"));
    }
    if t.serial().contains("NetBSD kernel panicked") {
        t.fail("the rump kernel panicked");
    }
    if t.serial()
        .contains("called into the rump kernel with interrupts off")
    {
        t.fail("a thread called into the rump kernel with interrupts off (it can deadlock)");
    }
    let (out, status) = t.exec_result();
    let s = t.serial().replace('\r', "");
    Guest {
        out,
        status,
        serial: s.clone(),
    }
}

fn fat_reads_byte_exact(controller: &str) {
    let test = format!("s11_usb-fat32_stick_reads_byte_exact_{controller}");
    if !tools_available(&test, &["mkfs.vfat", "mcopy", "md5sum"]) {
        return;
    }
    let dir = test_dir().join("disks").join(&test);
    std::fs::create_dir_all(&dir).unwrap();
    let src = source_tree(&dir);
    let img = fat_stick(&dir, &src);
    let want = host_sums(&src);
    let cmd = format!(
        "{}mkdir -p /m && mount -t vfat /dev/sda1 /m || exit 10; cd /m && {} cd / && \
         grep -E 'pci|usb' /proc/drivers; umount /m || exit 11",
        wait_for("/dev/sda1"),
        SUMS.replace("echo \"SUM", "echo \"FAT")
    );
    let g = exec(&test, controller, &cmd, &[&img], 3);
    let got = guest_sums(&g.out, "FAT ");
    assert_eq!(
        g.status, 0,
        "guest command failed ({}):\n{}",
        g.status, g.out
    );
    assert_eq!(
        got, want,
        "checksums in the guest differ from the host's\nguest output:\n{}",
        g.out
    );
    assert!(
        g.out.contains("stack=rump") && g.out.contains("usb-disk sda"),
        "/proc/drivers does not show the stick on the rump stack:\n{}",
        g.out
    );
}

#[test]
fn fat32_stick_reads_byte_exact_ehci() {
    fat_reads_byte_exact("ehci");
}

#[test]
fn fat32_stick_reads_byte_exact_xhci() {
    fat_reads_byte_exact("xhci");
}

fn ext2_reads_byte_exact(controller: &str) {
    ext2_reads_byte_exact_on(controller, "rump")
}

/// The ext2 stick read by both ext2 drivers, with the stick on `usb_driver`'s USB stack.
fn ext2_reads_byte_exact_on(controller: &str, usb_driver: &str) {
    let suffix = if usb_driver == "rump" {
        String::new()
    } else {
        format!("_{usb_driver}_usb")
    };
    let test = format!("s11_usb-ext2_stick_reads_byte_exact_{controller}{suffix}");
    if !tools_available(&test, &["mke2fs", "md5sum"]) {
        return;
    }
    let dir = test_dir().join("disks").join(&test);
    std::fs::create_dir_all(&dir).unwrap();
    let src = source_tree(&dir);
    let img = dir.join("ext2.img");
    run(Command::new(sbin("mke2fs"))
        .args(["-q", "-F", "-t", "ext2", "-d"])
        .arg(&src)
        .arg(&img)
        .arg("64M"));
    let want = host_sums(&src);
    let cmd = format!(
        "{}mkdir -p /m && mount -t ext2 -o driver=native /dev/sda /m || exit 10; cd /m && {} \
         cd / && umount /m || exit 11; mount -t ext2 -o driver=rump,ro /dev/sda /m || exit 12; \
         cd /m && {} cd / && umount /m || exit 13; grep -E '^usb' /proc/drivers",
        wait_for("/dev/sda"),
        SUMS.replace("echo \"SUM", "echo \"NATIVE"),
        SUMS.replace("echo \"SUM", "echo \"RUMP")
    );
    let extra = format!("usb.driver={usb_driver}");
    let g = exec_with(&test, controller, &cmd, &[&img], 3, &extra);
    assert!(
        g.out.contains(&format!("stack={usb_driver}")) && g.out.contains("usb-disk sda"),
        "/proc/drivers does not show the stick on the {usb_driver} USB stack:\n{}",
        g.out
    );
    assert_eq!(
        g.status, 0,
        "guest command failed ({}):\n{}",
        g.status, g.out
    );
    // lost+found is empty: only the tree's files are listed.
    assert_eq!(
        guest_sums(&g.out, "NATIVE "),
        want,
        "native ext2 on the stick: checksums differ\n{}",
        g.out
    );
    assert_eq!(
        guest_sums(&g.out, "RUMP "),
        want,
        "NetBSD ext2fs on the stick: checksums differ\n{}",
        g.out
    );
}

#[test]
fn ext2_stick_reads_byte_exact_ehci() {
    ext2_reads_byte_exact("ehci");
}

#[test]
fn ext2_stick_reads_byte_exact_xhci() {
    ext2_reads_byte_exact("xhci");
}

/// The same stick on AdrOS's native USB stack (`usb.driver=native`, issue 16), read by
/// both ext2 drivers.
#[test]
fn ext2_stick_reads_byte_exact_xhci_native_usb() {
    ext2_reads_byte_exact_on("xhci", "native");
}

#[test]
fn ext2_stick_reads_byte_exact_ehci_native_usb() {
    ext2_reads_byte_exact_on("ehci", "native");
}

/// The rump twin of `s15_usb_native::native_stick_behind_a_hub_reads_byte_exact_ehci`: the
/// ext2 stick behind QEMU's full-speed `usb-hub` on the ICH9 EHCI. NetBSD's ehci hands the
/// hub's port to its companion, NetBSD's uhci drives it, uhub finds the stick and umass/sd
/// make it `sd0` (`/dev/sda` through the bridge); both ext2 drivers read it byte-exact.
#[test]
fn rump_stick_behind_a_hub_reads_byte_exact_ehci() {
    let test = "s11_usb-rump_stick_behind_a_hub_reads_byte_exact_ehci";
    if !rump_linked() {
        skip(test, "the NetBSD rump components are not linked");
        return;
    }
    if !tools_available(test, &["mke2fs", "md5sum"]) {
        return;
    }
    let dir = test_dir().join("disks").join(test);
    std::fs::create_dir_all(&dir).unwrap();
    let src = source_tree(&dir);
    let img = dir.join("ext2.img");
    run(Command::new(sbin("mke2fs"))
        .args(["-q", "-F", "-t", "ext2", "-d"])
        .arg(&src)
        .arg(&img)
        .arg("64M"));
    let want = host_sums(&src);
    let cmd = format!(
        "{}mkdir -p /m && mount -t ext2 -o driver=native /dev/sda /m || exit 10; cd /m && {} \
         cd / && umount /m || exit 11; mount -t ext2 -o driver=rump,ro /dev/sda /m || exit 12; \
         cd /m && {} cd / && umount /m || exit 13; grep -E '^(usb|pci)' /proc/drivers",
        wait_for("/dev/sda"),
        SUMS.replace("echo \"SUM", "echo \"NATIVE"),
        SUMS.replace("echo \"SUM", "echo \"RUMP")
    );
    let hex: String = cmd.bytes().map(|b| format!("{b:02x}")).collect();
    let t = Boot::new(test)
        .smp(2)
        .usb_controller("ehci")
        .usb_hub()
        .usb_disk(img)
        .args(&format!("loglevel=6 usb.driver=rump adros.exec={hex}"))
        .timeout(Duration::from_secs(400))
        .run();
    if let Some(report) = banner::crash_report(t.serial()) {
        t.fail(&format!("the kernel crashed:\n{report}"));
    }
    if t.serial().contains("NetBSD kernel panicked") {
        t.fail("the rump kernel panicked");
    }
    let (out, status) = t.exec_result();
    if status != 0 {
        t.fail(&format!("the guest command failed ({status}):\n{out}"));
    }
    if guest_sums(&out, "NATIVE ") != want || guest_sums(&out, "RUMP ") != want {
        t.fail(&format!("checksums differ:\n{out}"));
    }
    if !out.contains("usb-disk sda") || !out.contains("stack=rump") {
        t.fail(&format!(
            "/proc/drivers does not show the stick on the rump stack:\n{out}"
        ));
    }
    let netbsd: Vec<&str> = t
        .serial()
        .lines()
        .filter(|l| l.contains("uhci") || l.contains("uhub") || l.contains("umass"))
        .collect();
    println!(
        "{test}: guest output:\n{out}\n{test}: NetBSD's USB lines:\n{}",
        netbsd.join("\n")
    );
}

/// Shell: the write workload both file systems get on `/m` (directories, the 24 MB file
/// copied, a rename, a tree deleted, ten small files, `sync`, `umount`).
const WORKLOAD: &str = "mkdir -p '/m/new dir/sub level' || exit 11; \
     cp '/m/big file.bin' '/m/new dir/sub level/copy of big.bin' || exit 12; \
     echo 'written in AdrOS' > '/m/new dir/note.txt' || exit 13; \
     mv '/m/new dir/note.txt' '/m/new dir/Renamed Note.txt' || exit 14; \
     rm -r '/m/dir with spaces' || exit 15; rm /m/hello.txt || exit 16; \
     for i in 1 2 3 4 5 6 7 8 9 10; do echo \"file $i\" > \"/m/new dir/f$i\"; done; \
     sync; umount /m || exit 17; ";

fn fat_write_workload(controller: &str) {
    let test = format!("s11_usb-fat_write_workload_leaves_fsck_clean_{controller}");
    if !tools_available(
        &test,
        &["mkfs.vfat", "mcopy", "mtype", "mdir", "fsck.vfat", "md5sum"],
    ) {
        return;
    }
    let dir = test_dir().join("disks").join(&test);
    std::fs::create_dir_all(&dir).unwrap();
    let src = source_tree(&dir);
    let img = fat_stick(&dir, &src);
    let cmd = format!(
        "{}mkdir -p /m && mount -t vfat /dev/sda1 /m || exit 10; \
         {WORKLOAD}echo WORKLOAD-DONE",
        wait_for("/dev/sda1")
    );
    let g = exec(&test, controller, &cmd, &[&img], 3);
    assert_eq!(
        g.status, 0,
        "guest workload failed ({}):\n{}",
        g.status, g.out
    );
    let p = clean_fat_partition(&dir, &img);
    let copy = Command::new("mtype")
        .args(["-i", &p, "::/new dir/sub level/copy of big.bin"])
        .output()
        .unwrap();
    assert!(copy.status.success(), "mtype of the copy failed");
    assert!(
        copy.stdout == pattern(24_000_000, 3),
        "the copied 24 MB file differs from the original ({} bytes read back)",
        copy.stdout.len()
    );
    let note = run(Command::new("mtype").args(["-i", &p, "::/new dir/Renamed Note.txt"]));
    assert_eq!(note, "written in AdrOS\n");
    for i in 1..=10 {
        let f = run(Command::new("mtype").args(["-i", &p, &format!("::/new dir/f{i}")]));
        assert_eq!(f, format!("file {i}\n"));
    }
    let root = run(Command::new("mdir").args(["-b", "-i", &p, "::/"]));
    let mut names: Vec<&str> = root.lines().map(|l| l.trim_start_matches("::/")).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "A Long File Name With Spaces.txt",
            "big file.bin",
            "new dir/"
        ],
        "the root directory after the workload:\n{root}"
    );
}

#[test]
fn fat_write_workload_leaves_fsck_clean_ehci() {
    fat_write_workload("ehci");
}

#[test]
fn fat_write_workload_leaves_fsck_clean_xhci() {
    fat_write_workload("xhci");
}

/// The FAT workload's twin on an ext2 stick, through NetBSD's ext2fs on the rump USB stack:
/// directories made, the 24 MB file copied, a file renamed, a tree deleted, ten small files,
/// `umount`; then on the host `e2fsck -fn` is clean and debugfs reads back exactly the
/// expected tree and contents.
fn ext2_write_workload(controller: &str) {
    let test = format!("s11_usb-ext2_write_workload_leaves_e2fsck_clean_{controller}");
    if !tools_available(&test, &["mke2fs", "e2fsck", "debugfs"]) {
        return;
    }
    let dir = test_dir().join("disks").join(&test);
    std::fs::create_dir_all(&dir).unwrap();
    let src = source_tree(&dir);
    let img = dir.join("ext2.img");
    let _ = std::fs::remove_file(&img);
    run(Command::new(sbin("mke2fs"))
        .args(["-q", "-F", "-t", "ext2", "-d"])
        .arg(&src)
        .arg(&img)
        .arg("96M"));
    let cmd = format!(
        "{}mkdir -p /m && mount -t ext2 -o driver=rump /dev/sda /m || exit 10; \
         {WORKLOAD}grep -E '^usb' /proc/drivers; echo WORKLOAD-DONE",
        wait_for("/dev/sda")
    );
    let g = exec_with(&test, controller, &cmd, &[&img], 3, "usb.driver=rump");
    assert_eq!(
        g.status, 0,
        "guest workload failed ({}):\n{}",
        g.status, g.out
    );
    assert!(
        g.out.contains("stack=rump") && g.out.contains("usb-disk sda"),
        "/proc/drivers does not show the stick on the rump USB stack:\n{}",
        g.out
    );
    let fsck = Command::new(sbin("e2fsck"))
        .arg("-fn")
        .arg(&img)
        .output()
        .unwrap();
    assert!(
        fsck.status.success(),
        "e2fsck -fn is not clean after the workload:\n{}{}",
        String::from_utf8_lossy(&fsck.stdout),
        String::from_utf8_lossy(&fsck.stderr)
    );
    let cat = |path: &str| -> Vec<u8> {
        let out = dir.join("dumped");
        let _ = std::fs::remove_file(&out);
        run(Command::new(sbin("debugfs"))
            .arg("-R")
            .arg(format!("dump \"{path}\" {}", out.display()))
            .arg(&img));
        std::fs::read(&out).unwrap_or_default()
    };
    assert!(
        cat("/new dir/sub level/copy of big.bin") == pattern(24_000_000, 3),
        "the copied 24 MB file differs from the original on the host"
    );
    assert_eq!(cat("/new dir/Renamed Note.txt"), b"written in AdrOS\n");
    for i in 1..=10 {
        assert_eq!(
            cat(&format!("/new dir/f{i}")),
            format!("file {i}\n").into_bytes()
        );
    }
    // `ls -p`: /inode/mode/uid/gid/name/size/ per entry.
    let names = |path: &str| -> Vec<String> {
        let l = run(Command::new(sbin("debugfs"))
            .arg("-R")
            .arg(format!("ls -p \"{path}\""))
            .arg(&img));
        let mut v: Vec<String> = l
            .lines()
            .filter_map(|x| x.split('/').nth(5).map(String::from))
            .filter(|n| !n.is_empty() && n != "." && n != "..")
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names("/"),
        [
            "A Long File Name With Spaces.txt",
            "big file.bin",
            "lost+found",
            "new dir"
        ],
        "the root directory after the workload"
    );
    let mut want: Vec<String> = (1..=10).map(|i| format!("f{i}")).collect();
    want.extend(["Renamed Note.txt".into(), "sub level".into()]);
    want.sort();
    assert_eq!(names("/new dir"), want, "/new dir after the workload");
}

#[test]
fn ext2_write_workload_leaves_e2fsck_clean_ehci() {
    ext2_write_workload("ehci");
}

#[test]
fn ext2_write_workload_leaves_e2fsck_clean_xhci() {
    ext2_write_workload("xhci");
}

fn partition_past_end(controller: &str) {
    let test = format!("s11_usb-partition_past_the_end_fails_with_an_errno_{controller}");
    if !tools_available(&test, &["md5sum"]) {
        return;
    }
    let dir = test_dir().join("disks").join(&test);
    std::fs::create_dir_all(&dir).unwrap();
    let img = dir.join("bad.img");
    let f = std::fs::File::create(&img).unwrap();
    f.set_len(16 * MIB).unwrap();
    drop(f);
    // 16 MiB stick, partition 1 claims 1 GiB.
    write_mbr(&img, 2048, 2 * 1024 * 1024, 0x0c);
    let cmd = format!(
        "{}mkdir -p /m; mount -t vfat /dev/sda1 /m; echo MOUNT1=$?; \
         mount -t vfat /dev/sda /m; echo MOUNT2=$?; \
         dd if=/dev/sda of=/dev/null bs=1M count=4 2>/dev/null; echo DD=$?; echo ALIVE",
        wait_for("/dev/sda")
    );
    let g = exec(&test, controller, &cmd, &[&img], 4);
    assert_eq!(
        g.status, 0,
        "guest command failed ({}):\n{}",
        g.status, g.out
    );
    assert!(
        g.out.contains("MOUNT1=") && !g.out.contains("MOUNT1=0"),
        "mounting a partition past the end succeeded:\n{}",
        g.out
    );
    assert!(
        g.out.contains("MOUNT2=") && !g.out.contains("MOUNT2=0"),
        "mounting an unformatted stick succeeded:\n{}",
        g.out
    );
    assert!(
        g.out.contains("DD=0"),
        "the stick itself is unreadable:\n{}",
        g.out
    );
    assert!(g.out.contains("ALIVE"), "{}", g.out);
    assert!(
        g.serial.contains("lies past the end of the disk"),
        "no log line names the bad partition"
    );
}

#[test]
fn partition_past_the_end_fails_with_an_errno_ehci() {
    partition_past_end("ehci");
}

#[test]
fn partition_past_the_end_fails_with_an_errno_xhci() {
    partition_past_end("xhci");
}

/// Corrupt FAT boot sectors on a stick with two FAT16 partitions: the first claims 3 sectors
/// per cluster (not a power of two), the second 0 bytes per sector. Each mount fails with an
/// errno and a log line naming the device; the stick stays readable, and a good FAT on the
/// same kind of stick (the test's own control: the second partition before the damage)
/// mounts, so the failures are the boot sectors' doing.
fn corrupt_boot_sector(controller: &str) {
    let test = format!("s11_usb-corrupt_boot_sector_fails_with_an_errno_{controller}");
    if !tools_available(&test, &["mkfs.vfat", "mcopy"]) {
        return;
    }
    let dir = test_dir().join("disks").join(&test);
    std::fs::create_dir_all(&dir).unwrap();
    let img = dir.join("badbpb.img");
    let f = std::fs::File::create(&img).unwrap();
    f.set_len(48 * MIB).unwrap();
    drop(f);
    // Three partitions of 8 MiB (16384 sectors), FAT16 each.
    let starts = [2048u32, 20480, 38912];
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut mbr = [0u8; 512];
        for (i, st) in starts.iter().enumerate() {
            let e = &mut mbr[446 + 16 * i..462 + 16 * i];
            e[1..4].copy_from_slice(&[0xfe, 0xff, 0xff]);
            e[4] = 0x06;
            e[5..8].copy_from_slice(&[0xfe, 0xff, 0xff]);
            e[8..12].copy_from_slice(&st.to_le_bytes());
            e[12..16].copy_from_slice(&16384u32.to_le_bytes());
        }
        mbr[510] = 0x55;
        mbr[511] = 0xaa;
        let mut f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
        f.seek(SeekFrom::Start(0)).unwrap();
        f.write_all(&mbr).unwrap();
    }
    for st in starts {
        run(Command::new(sbin("mkfs.vfat"))
            .args(["-F", "16", "-s", "1", "--offset"])
            .arg(st.to_string())
            .arg(&img)
            .arg("8192"));
    }
    let good = format!("{}@@{}", img.display(), u64::from(starts[2]) * 512);
    let note = dir.join("note.txt");
    std::fs::write(&note, "good partition\n").unwrap();
    run(Command::new("mcopy")
        .args(["-Q", "-i", &good])
        .arg(&note)
        .arg("::/"));
    let mut raw = std::fs::read(&img).unwrap();
    let bs = |i: usize| starts[i] as usize * 512;
    raw[bs(0) + 13] = 3; // sectors per cluster
    raw[bs(1) + 11..bs(1) + 13].copy_from_slice(&0u16.to_le_bytes()); // bytes per sector
    std::fs::write(&img, raw).unwrap();
    let cmd = format!(
        "{}mkdir -p /m; mount -t vfat /dev/sda1 /m; echo MOUNT1=$?; \
         mount -t vfat /dev/sda2 /m; echo MOUNT2=$?; \
         mount -t vfat /dev/sda3 /m && cat /m/note.txt && umount /m; echo MOUNT3=$?; \
         dd if=/dev/sda of=/dev/null bs=1M count=4 2>/dev/null; echo DD=$?; echo ALIVE",
        wait_for("/dev/sda3")
    );
    let g = exec(&test, controller, &cmd, &[&img], 4);
    assert_eq!(
        g.status, 0,
        "guest command failed ({}):\n{}",
        g.status, g.out
    );
    for n in ["1", "2"] {
        assert!(
            g.out.contains(&format!("MOUNT{n}=")) && !g.out.contains(&format!("MOUNT{n}=0")),
            "a FAT with a corrupt boot sector (partition {n}) mounted:\n{}",
            g.out
        );
        assert!(
            g.serial.contains(&format!("cannot mount /dev/sda{n}")),
            "no log line names /dev/sda{n}:\n{}",
            g.serial
        );
    }
    assert!(
        g.out.contains("good partition") && g.out.contains("MOUNT3=0"),
        "the intact partition beside them did not mount and read:\n{}",
        g.out
    );
    assert!(
        g.out.contains("DD=0") && g.out.contains("ALIVE"),
        "{}",
        g.out
    );
}

#[test]
fn corrupt_boot_sector_fails_with_an_errno_ehci() {
    corrupt_boot_sector("ehci");
}

#[test]
fn corrupt_boot_sector_fails_with_an_errno_xhci() {
    corrupt_boot_sector("xhci");
}

/// Little-endian u16/u32 at `o`.
fn le16(b: &[u8], o: usize) -> usize {
    usize::from(u16::from_le_bytes([b[o], b[o + 1]]))
}

/// Sets FAT12 entry `c` to `v` in every FAT copy of the volume `vol`.
fn set_fat12(vol: &mut [u8], c: usize, v: u16) {
    let (reserved, nfats, fatsz) = (le16(vol, 14), usize::from(vol[16]), le16(vol, 22));
    for k in 0..nfats {
        let fat = (reserved + k * fatsz) * 512;
        let o = fat + c * 3 / 2;
        if c.is_multiple_of(2) {
            vol[o] = v as u8;
            vol[o + 1] = (vol[o + 1] & 0xf0) | ((v >> 8) as u8 & 0x0f);
        } else {
            vol[o] = (vol[o] & 0x0f) | ((v as u8 & 0x0f) << 4);
            vol[o + 1] = (v >> 4) as u8;
        }
    }
}

/// A file whose chain loops must fail to read; with `check_directory`, listing a full
/// directory whose chain loops must fail too.
fn looping_chain(controller: &str, check_directory: bool) {
    let test = format!(
        "s11_usb-looping_fat_chain_fails_with_an_errno_{controller}{}",
        if check_directory { "_directory" } else { "" }
    );
    if !tools_available(&test, &["mkfs.vfat", "mcopy", "mmd"]) {
        return;
    }
    let dir = test_dir().join("disks").join(&test);
    std::fs::create_dir_all(&dir).unwrap();
    // A 1 MiB FAT12 volume of 512-byte clusters (~2,000 clusters) at sector 2048 of a 4 MiB
    // stick: a file and a directory whose cluster chains point back at themselves.
    let vol = dir.join("vol.img");
    let _ = std::fs::remove_file(&vol);
    run(Command::new(sbin("mkfs.vfat"))
        .args(["-C", "-F", "12", "-s", "1", "-S", "512"])
        .arg(&vol)
        .arg("1024"));
    let v = vol.display().to_string();
    let data = dir.join("LOOP.BIN");
    std::fs::write(&data, pattern(1500, 9)).unwrap();
    run(Command::new("mcopy")
        .args(["-i", &v])
        .arg(&data)
        .arg("::/LOOP.BIN"));
    run(Command::new("mmd").args(["-i", &v, "::/LOOPDIR"]));
    // 14 entries besides `.` and `..`: the directory's one 512-byte cluster is full, so
    // reading it cannot stop at an empty slot and must follow the (looping) chain.
    let small = dir.join("SMALL");
    std::fs::write(&small, "x").unwrap();
    for i in 0..14 {
        run(Command::new("mcopy")
            .args(["-i", &v])
            .arg(&small)
            .arg(format!("::/LOOPDIR/F{i:02}.BIN")));
    }
    let mut b = std::fs::read(&vol).unwrap();
    let (reserved, nfats, fatsz) = (le16(&b, 14), usize::from(b[16]), le16(&b, 22));
    let root = (reserved + nfats * fatsz) * 512;
    let mut patched = 0;
    for e in (root..root + le16(&b, 17) * 32).step_by(32) {
        let name = &b[e..e + 11];
        let start = le16(&b, e + 26);
        if name == b"LOOP    BIN" {
            // 8 MiB claimed on a 1 MiB volume, first cluster pointing at itself.
            b[e + 28..e + 32].copy_from_slice(&(8u32 << 20).to_le_bytes());
            set_fat12(&mut b, start, start as u16);
            patched += 1;
        } else if name == b"LOOPDIR    " {
            set_fat12(&mut b, start, start as u16);
            patched += 1;
        }
    }
    assert_eq!(
        patched, 2,
        "did not find LOOP.BIN and LOOPDIR in the root directory"
    );
    let img = dir.join("loop.img");
    let mut stick = vec![0u8; 4 * MIB as usize];
    stick[2048 * 512..2048 * 512 + b.len()].copy_from_slice(&b);
    std::fs::write(&img, stick).unwrap();
    write_mbr(&img, 2048, (b.len() / 512) as u32, 0x01);
    let cmd = format!(
        "{}mkdir -p /m; mount -t vfat /dev/sda1 /m || exit 10; ls /m; \
         for f in /m/*; do if [ -f \"$f\" ]; then cat \"$f\" > /dev/null 2>/tmp/e; echo CAT=$?; \
         else ls \"$f\" > /dev/null 2>/tmp/e; echo LS=$?; fi; echo \"ERR $(cat /tmp/e)\"; done; \
         umount /m; echo ALIVE",
        wait_for("/dev/sda1")
    );
    let g = exec(&test, controller, &cmd, &[&img], 6);
    assert_eq!(
        g.status, 0,
        "guest command failed ({}):\n{}",
        g.status, g.out
    );
    assert!(
        g.out.contains("CAT=") && !g.out.contains("CAT=0"),
        "reading a file whose chain loops succeeded:\n{}",
        g.out
    );
    // Each of the two fails with EIO, not with any error (the lines after CAT= and LS=).
    let errors = |tag: &str| {
        let lines: Vec<&str> = g.out.lines().collect();
        lines
            .windows(2)
            .filter(|w| w[0].starts_with(tag))
            .all(|w| w[1].starts_with("ERR ") && w[1].contains("Input/output error"))
    };
    assert!(
        errors("CAT="),
        "reading a file whose chain loops did not fail with EIO:\n{}",
        g.out
    );
    if check_directory {
        assert!(
            g.out.contains("LS=") && !g.out.contains("LS=0"),
            "listing a directory whose chain loops succeeded:\n{}",
            g.out
        );
        assert!(
            errors("LS="),
            "listing a directory whose chain loops did not fail with EIO:\n{}",
            g.out
        );
    }
    assert!(g.out.contains("ALIVE"), "{}", g.out);
    assert!(
        g.serial.contains("loops (more than"),
        "no log line names the looping chain"
    );
    println!("{test}:\n{}", g.out);
}

#[test]
fn looping_fat_chain_fails_with_an_errno_ehci() {
    looping_chain("ehci", false);
}

#[test]
fn looping_fat_chain_fails_with_an_errno_xhci() {
    looping_chain("xhci", false);
}

#[test]
fn looping_fat_directory_fails_with_an_errno_ehci() {
    looping_chain("ehci", true);
}

/// Hot-plug on the rump stack: a whole-disk ext2 stick is mounted (native ext2 on the
/// bridged NetBSD `sd0`) and a 24 MB file on it read in a loop; the stick is pulled out
/// (QEMU monitor `device_del`) during the reads. NetBSD's uhub detaches umass/sd itself;
/// the reader must get EIO, `/dev/sda` must go away, the dead mount must answer errors and
/// the kernel must live; then a FAT32 stick plugged in (`device_add`) must appear as
/// `/dev/sda` again and read byte-exact through NetBSD's msdosfs.
#[test]
fn hotplug_unplug_mid_read_then_plug_xhci() {
    hotplug("xhci");
}

#[test]
fn hotplug_unplug_mid_read_then_plug_ehci() {
    hotplug("ehci");
}

fn hotplug(controller: &str) {
    let test = &format!("s11_usb-hotplug_unplug_mid_read_then_plug_{controller}");
    if !tools_available(test, &["mke2fs", "mkfs.vfat", "mcopy", "md5sum"]) {
        return;
    }
    let dir = test_dir().join("disks").join(test);
    std::fs::create_dir_all(&dir).unwrap();
    let src = source_tree(&dir);
    let first = dir.join("ext2.img");
    let _ = std::fs::remove_file(&first);
    run(Command::new(sbin("mke2fs"))
        .args(["-q", "-F", "-t", "ext2", "-d"])
        .arg(&src)
        .arg(&first)
        .arg("64M"));
    let second = fat_stick(&dir, &src);
    let want = host_sums(&src);
    let big_md5 = run(Command::new("md5sum").arg(src.join("big file.bin")));
    let big_md5 = big_md5.split_whitespace().next().unwrap().to_string();
    let cmd = format!(
        "{}mkdir -p /m /n; mount -t ext2 -o driver=native /dev/sda /m || exit 10; \
         echo \"FIRST $(md5sum < '/m/big file.bin' | cut -d' ' -f1)\"; \
         echo PULL-THE-STICK; \
         n=0; rc=0; while [ $n -lt 300 ]; do \
           cat '/m/big file.bin' > /dev/null 2>/tmp/err || {{ rc=$?; break; }}; n=$((n+1)); done; \
         echo \"READER rc=$rc rounds=$n\"; echo \"READERR $(cat /tmp/err)\"; \
         i=0; while [ -e /dev/sda ] && [ $i -lt 150 ]; do sleep 0.1; i=$((i+1)); done; \
         if [ -e /dev/sda ]; then echo STILL-SDA; else echo SDA-GONE; fi; \
         cat '/m/A Long File Name With Spaces.txt' > /dev/null 2>/tmp/err2; echo \"CAT rc=$?\"; \
         echo \"CATERR $(cat /tmp/err2)\"; umount /m; echo \"UMOUNT rc=$?\"; grep -E '^usb' /proc/drivers; \
         echo PLUG-THE-SPARE; \
         {}mount -t vfat /dev/sda1 /n || exit 20; cd /n && {} cd / && \
         umount /n || exit 21; grep -E '^usb' /proc/drivers; echo HOTPLUG-DONE",
        wait_for("/dev/sda"),
        wait_for("/dev/sda1"),
        SUMS.replace("echo \"SUM", "echo \"PLUGGED")
    );
    let hex: String = cmd.bytes().map(|b| format!("{b:02x}")).collect();
    // The bus QEMU gives the controller's root ports (`Machine::usb_bus`).
    let bus = if controller == "ehci" {
        "ehci.0"
    } else {
        "xhci.0"
    };
    let t = Boot::new(test)
        .smp(2)
        .usb_controller(controller)
        .args(&format!("loglevel=4 usb.driver=rump adros.exec={hex}"))
        .timeout(Duration::from_secs(400))
        .usb_disk(first.clone())
        .usb_spare_disk(second.clone())
        .monitor_after("PULL-THE-STICK", "device_del stick0")
        .monitor_after(
            "PLUG-THE-SPARE",
            &format!("device_add usb-storage,bus={bus},drive=spare0,id=plug0"),
        )
        .run();
    if let Some(report) = banner::crash_report(t.serial()) {
        t.fail(&format!("the kernel crashed:\n{report}"));
    }
    if t.serial().contains("NetBSD kernel panicked") {
        t.fail("the rump kernel panicked");
    }
    let (out, status) = t.exec_result();
    let check = |ok: bool, what: &str| {
        if !ok {
            t.fail(&format!("{what}\n--- command output ---\n{out}"));
        }
    };
    check(
        !t.out.monitor.contains("Error"),
        &format!("a monitor command failed:\n{}", t.out.monitor),
    );
    check(status == 0, &format!("the guest command failed ({status})"));
    check(
        out.contains(&format!("FIRST {big_md5}")),
        "the first read of the 24 MB file is not byte-exact",
    );
    let reader = out
        .lines()
        .find_map(|l| l.strip_prefix("READER "))
        .unwrap_or("");
    check(
        reader.starts_with("rc=") && !reader.starts_with("rc=0 "),
        "the reader did not fail after the stick was pulled",
    );
    let line = |tag: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(tag))
            .unwrap_or("")
            .to_string()
    };
    check(
        line("READERR ").contains("Input/output error"),
        "the reader's error is not EIO",
    );
    check(out.contains("SDA-GONE"), "/dev/sda did not go away");
    check(
        out.contains("CAT rc=") && !out.contains("CAT rc=0"),
        "a file on the dead mount still reads",
    );
    check(
        line("CATERR ").contains("Input/output error"),
        "opening a file on the dead mount is not EIO",
    );
    check(
        t.serial()
            .contains("was detached (stick removed): /dev/sda is gone"),
        "no log line for the removal",
    );
    check(
        guest_sums(&out, "PLUGGED ") == want,
        "the stick plugged in afterwards does not read byte-exact",
    );
    check(out.contains("HOTPLUG-DONE"), "the script did not finish");
    println!(
        "{test}: guest output:\n{out}\n{test}: QEMU monitor:\n{}",
        t.out.monitor
    );
}

/// A NetBSD panic releases every thread waiting inside the rump kernel: a reader of a 24 MB
/// file on the stick (NetBSD's ext2fs on the bridged `sd0`, so the reader spends its time in
/// a bio wait for the USB transfer, or spinning on NetBSD's kernel lock) is running when
/// another process panics the rump kernel
/// (a lookup in a directory block with an impossible record length on a read-write mount:
/// ext2fs's "bad dir" panic, from a virtio disk). The reader must end with an error within
/// seconds: its read(2) fails with EIO (its NetBSD frames are abandoned and the system call
/// returns, `rump::host::call`), as does the call that panicked; later calls on the mount
/// must fail with EIO, and the kernel must live on.
#[test]
fn rump_panic_releases_a_reader_blocked_in_a_bio_wait_xhci() {
    let test = "s11_usb-rump_panic_releases_a_reader_blocked_in_a_bio_wait_xhci";
    if !tools_available(test, &["mke2fs", "debugfs", "md5sum"]) {
        return;
    }
    let dir = test_dir().join("disks").join(test);
    std::fs::create_dir_all(&dir).unwrap();
    // Three 24 MB files: each is read once, cold (NetBSD's buffer cache would serve a
    // second read without any bio wait).
    let src = source_tree(&dir);
    std::fs::write(src.join("b2.bin"), pattern(24_000_000, 4)).unwrap();
    std::fs::write(src.join("b3.bin"), pattern(24_000_000, 5)).unwrap();
    let stick = dir.join("ext2.img");
    let _ = std::fs::remove_file(&stick);
    run(Command::new(sbin("mke2fs"))
        .args(["-q", "-F", "-t", "ext2", "-d"])
        .arg(&src)
        .arg(&stick)
        .arg("128M"));
    // The disk that panics NetBSD: its root directory's first entry has rec_len 3.
    let bad = dir.join("baddir.img");
    let _ = std::fs::remove_file(&bad);
    let small = dir.join("small");
    let _ = std::fs::remove_dir_all(&small);
    std::fs::create_dir_all(&small).unwrap();
    std::fs::write(small.join("hello.txt"), "hello\n").unwrap();
    run(Command::new(sbin("mke2fs"))
        .args(["-q", "-F", "-t", "ext2", "-b", "4096", "-d"])
        .arg(&small)
        .arg(&bad)
        .arg("16M"));
    let blocks = run(Command::new(sbin("debugfs"))
        .args(["-R", "blocks /"])
        .arg(&bad));
    let blk: u64 = blocks
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("debugfs: no root directory block in {blocks:?}"));
    let mut raw = std::fs::read(&bad).unwrap();
    let off = (blk * 4096 + 4) as usize;
    raw[off..off + 2].copy_from_slice(&3u16.to_le_bytes());
    std::fs::write(&bad, raw).unwrap();
    let cmd = format!(
        "{}mkdir -p /m /c; mount -t ext2 -o driver=rump,ro /dev/sda /m || exit 10; \
         mount -t ext2 -o driver=rump /dev/vda /c || exit 11; \
         (n=0; rc=0; for f in '/m/big file.bin' /m/b2.bin /m/b3.bin; do \
            cat \"$f\" > /dev/null 2>/tmp/rerr || {{ rc=$?; break; }}; n=$((n+1)); done; \
          echo \"READER-END rc=$rc files=$n\"; echo \"READER-ERR $(cat /tmp/rerr)\"; : > /tmp/reader-done) & rpid=$!; \
         sleep 1; [ -e /tmp/reader-done ] && {{ echo READER-DIED-EARLY; exit 12; }}; echo PANIC-NOW; \
         cat /c/hello.txt > /dev/null 2>&1; echo \"PANICKER rc=$?\"; \
         i=0; while [ ! -e /tmp/reader-done ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; \
         echo \"WAITED $i\"; if [ -e /tmp/reader-done ]; then wait $rpid; else echo READER-STUCK; \
           echo t > /proc/sysrq-trigger; sleep 3; fi; \
         cat /m/hello.txt > /dev/null 2>/tmp/err; echo \"AFTER rc=$?\"; echo \"AFTERERR $(cat /tmp/err)\"; \
         grep -E '^rump|^usb' /proc/drivers; echo STILL-ALIVE",
        wait_for("/dev/sda"),
    );
    let hex: String = cmd.bytes().map(|b| format!("{b:02x}")).collect();
    let t = Boot::new(test)
        .smp(2)
        .usb_controller("xhci")
        .args(&format!("loglevel=4 usb.driver=rump adros.exec={hex}"))
        .timeout(Duration::from_secs(300))
        .usb_disk(stick)
        .disk(bad)
        .run();
    if let Some(report) = banner::crash_report(t.serial()) {
        t.fail(&format!("the kernel crashed:\n{report}"));
    }
    let (out, status) = t.exec_result();
    let check = |ok: bool, what: &str| {
        if !ok {
            t.fail(&format!("{what}\n--- command output ---\n{out}"));
        }
    };
    check(status == 0, &format!("the guest command failed ({status})"));
    check(
        t.serial().contains("NetBSD kernel panicked"),
        "the corrupt directory did not panic NetBSD (the test needs the panic)",
    );
    check(!out.contains("READER-STUCK"), "the reader never returned");
    let waited: u32 = out
        .lines()
        .find_map(|l| l.strip_prefix("WAITED "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(u32::MAX);
    // Tenths of a second after the panicking call returned; generous for a loaded host.
    check(
        waited <= 150,
        &format!("the reader took {waited} tenths of a second to end"),
    );
    // The reader's read(2) fails with EIO (cat says so and exits 1); it is not killed
    // (rc 137) and does not hang.
    check(
        out.lines().any(|l| l.starts_with("READER-END rc=1 ")),
        "the reader did not end with cat's error status 1 (137 would be SIGKILL)",
    );
    check(
        out.lines()
            .any(|l| l.starts_with("READER-ERR") && l.contains("Input/output error")),
        "the reader's read did not fail with EIO",
    );
    // It was inside NetBSD when the panic came (not between two calls): parked (a bio or
    // lock wait), or spinning on a NetBSD spin lock — the kernel lock, which the panicking
    // thread may hold for good — and left its call with EIO.
    check(
        ["waited", "spun"].iter().any(|how| {
            t.serial().contains(&format!(
                "(cat): its call into NetBSD fails with EIO: the NetBSD kernel died while it {how} inside it"
            ))
        }),
        "the reader was not inside the rump kernel when it died",
    );
    // The call that panicked NetBSD answers EIO too.
    check(
        out.lines().any(|l| l == "PANICKER rc=1"),
        "the call that panicked NetBSD did not fail with an error status",
    );
    check(
        t.serial().contains(
            "its call into NetBSD fails with EIO: the NetBSD kernel panicked under its system call",
        ),
        "the panicking call did not leave with EIO",
    );
    let after = out
        .lines()
        .find_map(|l| l.strip_prefix("AFTER rc="))
        .unwrap_or("0");
    check(after != "0", "a file on the dead mount still reads");
    check(
        out.lines()
            .any(|l| l.starts_with("AFTERERR") && l.contains("Input/output error")),
        "a call on the dead mount is not EIO",
    );
    check(out.contains("STILL-ALIVE"), "the script did not finish");
    println!("{test}: waited {waited} tenths of a second\n{out}");
}

/// Two sticks at once on one controller, both on the rump stack (NetBSD `sd0` and `sd1`,
/// bridged as `/dev/sda` and `/dev/sdb` in whichever order NetBSD attached them): the
/// partitioned FAT32 stick (NetBSD's msdosfs) and a whole-disk ext2 stick (NetBSD's ext2fs)
/// both mount; the 24 MB file is copied from the FAT stick to the ext2 stick and a 300 KB
/// file the other way, each copy's md5 in the guest equals the host's; after `umount` and
/// power-off, the host reads both copies back byte-exact (mtools, debugfs) and finds both
/// file systems clean (`fsck.vfat -n`, `e2fsck -fn`).
fn two_sticks(controller: &str) {
    let test = format!("s11_usb-two_sticks_copy_a_file_each_way_{controller}");
    if !tools_available(
        &test,
        &[
            "mkfs.vfat",
            "mcopy",
            "mtype",
            "fsck.vfat",
            "mke2fs",
            "e2fsck",
            "debugfs",
            "md5sum",
        ],
    ) {
        return;
    }
    let dir = test_dir().join("disks").join(&test);
    std::fs::create_dir_all(&dir).unwrap();
    let src = source_tree(&dir);
    let fat = fat_stick(&dir, &src);
    let ext2 = dir.join("ext2.img");
    let _ = std::fs::remove_file(&ext2);
    run(Command::new(sbin("mke2fs"))
        .args(["-q", "-F", "-t", "ext2", "-d"])
        .arg(&src)
        .arg(&ext2)
        .arg("64M"));
    let cmd = format!(
        "{}{}mkdir -p /f /e; \
         if [ -e /dev/sda1 ]; then F=/dev/sda1; E=/dev/sdb; else F=/dev/sdb1; E=/dev/sda; fi; \
         echo \"FAT=$F EXT2=$E\"; \
         mount -t vfat $F /f || exit 10; mount -t ext2 $E /e || exit 11; \
         cp '/f/big file.bin' '/e/from fat.bin' || exit 12; \
         cp '/e/dir with spaces/another long name.dat' '/f/from ext2.dat' || exit 13; \
         sync; echo \"TOEXT2 $(md5sum < '/e/from fat.bin' | cut -d' ' -f1)\"; \
         echo \"TOFAT $(md5sum < '/f/from ext2.dat' | cut -d' ' -f1)\"; \
         umount /f || exit 14; umount /e || exit 15; grep -E '^usb' /proc/drivers; echo TWO-DONE",
        wait_for("/dev/sda"),
        wait_for("/dev/sdb"),
    );
    let g = exec(&test, controller, &cmd, &[&fat, &ext2], 4);
    assert_eq!(
        g.status, 0,
        "guest command failed ({}):\n{}",
        g.status, g.out
    );
    assert!(
        g.out.contains("netbsd=sd0 stack=rump") && g.out.contains("netbsd=sd1 stack=rump"),
        "/proc/drivers does not show two sticks on the rump stack:\n{}",
        g.out
    );
    let md5 = |p: &Path| {
        run(Command::new("md5sum").arg(p))
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    let big = md5(&src.join("big file.bin"));
    let small = md5(&src.join("dir with spaces/another long name.dat"));
    assert!(
        g.out.contains(&format!("TOEXT2 {big}")) && g.out.contains(&format!("TOFAT {small}")),
        "a copy between the sticks reads back wrong in the guest:\n{}",
        g.out
    );
    // On the host, after power-off.
    let p = clean_fat_partition(&dir, &fat);
    let copy = Command::new("mtype")
        .args(["-i", &p, "::/from ext2.dat"])
        .output()
        .unwrap();
    assert!(
        copy.status.success() && copy.stdout == pattern(300_000, 2),
        "the file copied to the FAT stick differs on the host ({} bytes)",
        copy.stdout.len()
    );
    let out = Command::new(sbin("e2fsck"))
        .arg("-fn")
        .arg(&ext2)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "e2fsck -fn is not clean:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let dumped = dir.join("from-fat.bin");
    let _ = std::fs::remove_file(&dumped);
    run(Command::new(sbin("debugfs"))
        .arg("-R")
        .arg(format!("dump \"/from fat.bin\" {}", dumped.display()))
        .arg(&ext2));
    assert!(
        std::fs::read(&dumped).unwrap_or_default() == pattern(24_000_000, 3),
        "the file copied to the ext2 stick differs on the host"
    );
    println!("{test}:\n{}", g.out);
}

#[test]
fn two_sticks_copy_a_file_each_way_xhci() {
    two_sticks("xhci");
}

#[test]
fn two_sticks_copy_a_file_each_way_ehci() {
    two_sticks("ehci");
}
