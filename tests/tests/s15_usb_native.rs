//! s15: USB sticks through AdrOS's native USB stack (`usb.driver=native`: `adros-xhci`,
//! `adros-ehci`, `adros-usb`'s enumeration, Bulk-Only Transport and SCSI, `kernel/src/usb`)
//! on QEMU's `qemu-xhci` and ICH9 EHCI (with its companion UHCIs). Sticks are made on the host (`mke2fs -d`, an MBR written here,
//! `mkfs.vfat` + `mcopy`); in the guest they must appear as `/dev/sda`… with partitions
//! from the block layer's MBR code, read byte-exact (every file's md5 equals the host's),
//! and take a write workload that the host's `e2fsck -fn` finds clean with exactly the
//! expected tree (read back with `debugfs`). FAT sticks are read with the native FAT
//! driver, and also with NetBSD's msdosfs when the rump components are linked. Tests are
//! skipped (counted) when a host tool is missing.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use adros_tests::sticks::{
    MIB, guest_sums, host_sums, pattern, run, sbin, source_tree, wait_for, write_mbr,
};
use adros_tests::{Boot, banner, rump_linked, skip, test_dir};

/// Partition 1 starts here (sectors).
const PART_START: u32 = 2048;

fn tools_available(test: &str, tools: &[&str]) -> bool {
    for t in tools {
        let found = std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(t).is_file()))
            || Path::new(&sbin(t)).is_file();
        if !found {
            skip(test, &format!("{t} is not installed on the host"));
            return false;
        }
    }
    true
}

fn run_bytes(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Shell: `<TAG> <md5> ./<path>` for every file under the current directory.
fn sums(tag: &str) -> String {
    format!(
        "find . -type f | sort | while IFS= read -r f; do \
         echo \"{tag} $(md5sum < \"$f\" | cut -d' ' -f1) $f\"; done; "
    )
}

struct Guest {
    out: String,
    status: i32,
    serial: String,
}

fn exec(name: &str, controller: &str, cmd: &str, sticks: &[&Path]) -> Guest {
    let hex: String = cmd.bytes().map(|b| format!("{b:02x}")).collect();
    let mut b = Boot::new(name)
        .smp(2)
        .usb_controller(controller)
        .args(&format!("loglevel=4 usb.driver=native adros.exec={hex}"))
        .timeout(Duration::from_secs(300));
    for s in sticks {
        b = b.usb_disk(s.to_path_buf());
    }
    let t = b.run();
    if let Some(report) = banner::crash_report(t.serial()) {
        t.fail(&format!("the kernel crashed:\n{report}"));
    }
    let (out, status) = t.exec_result();
    Guest {
        out,
        status,
        serial: t.serial().replace('\r', ""),
    }
}

/// An MBR stick with partition 1 (type 0x83) holding `part`.
fn partitioned(img: &Path, part: &Path, size: u64) {
    let data = std::fs::read(part).unwrap();
    let mut stick = vec![0u8; size as usize];
    let at = PART_START as usize * 512;
    stick[at..at + data.len()].copy_from_slice(&data);
    std::fs::write(img, &stick).unwrap();
    write_mbr(img, PART_START, (data.len() / 512) as u32, 0x83);
}

fn partition_of(img: &Path, out: &Path) {
    let data = std::fs::read(img).unwrap();
    std::fs::write(out, &data[PART_START as usize * 512..]).unwrap();
}

fn e2fsck_clean(part: &Path) {
    let out = Command::new(sbin("e2fsck"))
        .args(["-fn"])
        .arg(part)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "e2fsck -fn is not clean:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn debugfs(part: &Path, req: &str) -> Vec<u8> {
    run_bytes(Command::new(sbin("debugfs")).arg("-R").arg(req).arg(part))
}

/// Names in a directory of an ext2 image (without `.` and `..`), sorted.
fn ext2_ls(part: &Path, dir: &str) -> Vec<String> {
    let out = String::from_utf8_lossy(&debugfs(part, &format!("ls -p \"{dir}\""))).into_owned();
    // `/ino/mode/uid/gid/name/size/` per entry.
    let mut v: Vec<String> = out
        .lines()
        .filter_map(|l| l.split('/').nth(5).map(String::from))
        .filter(|n| !n.is_empty() && n != "." && n != "..")
        .collect();
    v.sort();
    v
}

/// A partitioned ext2 stick: every file reads byte-exact through the native ext2 driver,
/// then a write workload (mkdir, a 24 MB copy, write, rename, delete a tree and a file,
/// ten small files, sync, umount) leaves it e2fsck-clean with exactly the expected tree.
#[test]
fn native_ext2_partitioned_stick_reads_and_writes_xhci() {
    ext2_partitioned("xhci");
}

#[test]
fn native_ext2_partitioned_stick_reads_and_writes_ehci() {
    ext2_partitioned("ehci");
}

fn ext2_partitioned(controller: &str) {
    let test =
        &format!("s15_usb_native-native_ext2_partitioned_stick_reads_and_writes_{controller}");
    if !tools_available(test, &["mke2fs", "e2fsck", "debugfs", "md5sum"]) {
        return;
    }
    let dir = test_dir().join("disks").join(test);
    std::fs::create_dir_all(&dir).unwrap();
    let src = source_tree(&dir);
    let part = dir.join("part.img");
    let _ = std::fs::remove_file(&part);
    run(Command::new(sbin("mke2fs"))
        .args(["-q", "-F", "-t", "ext2", "-d"])
        .arg(&src)
        .arg(&part)
        .arg("95M"));
    let img = dir.join("stick.img");
    partitioned(&img, &part, 96 * MIB);
    let want = host_sums(&src);
    let cmd = format!(
        "{}mkdir -p /m && mount -t ext2 -o driver=native /dev/sda1 /m || exit 10; cd /m && {} cd /; \
         mkdir -p '/m/new dir/sub level' || exit 11; \
         cp '/m/big file.bin' '/m/new dir/sub level/copy of big.bin' || exit 12; \
         echo 'written in AdrOS' > '/m/new dir/note.txt' || exit 13; \
         mv '/m/new dir/note.txt' '/m/new dir/Renamed Note.txt' || exit 14; \
         rm -r '/m/dir with spaces' || exit 15; rm /m/hello.txt || exit 16; \
         for i in 1 2 3 4 5 6 7 8 9 10; do echo \"file $i\" > \"/m/new dir/f$i\"; done; \
         sync; umount /m || exit 17; grep -E '^(pci|usb|block)' /proc/drivers; echo WORKLOAD-DONE",
        wait_for("/dev/sda1"),
        sums("NATIVE")
    );
    let g = exec(test, controller, &cmd, &[&img]);
    assert_eq!(
        g.status, 0,
        "guest command failed ({}):\n{}",
        g.status, g.out
    );
    assert_eq!(
        guest_sums(&g.out, "NATIVE "),
        want,
        "checksums differ\n{}",
        g.out
    );
    assert!(
        g.out.contains("usb-disk sda port=") && g.out.contains("stack=native"),
        "/proc/drivers does not show the stick on the native stack:\n{}",
        g.out
    );
    assert!(
        g.out
            .contains(&format!("driver=\"usb {controller} (native)\"")),
        "{}",
        g.out
    );
    assert!(g.out.contains("block sda1 native-usb"), "{}", g.out);
    assert!(g.serial.contains("is /dev/sda"), "no attach line");

    let p = dir.join("after.img");
    partition_of(&img, &p);
    e2fsck_clean(&p);
    assert_eq!(
        ext2_ls(&p, "/"),
        [
            "A Long File Name With Spaces.txt",
            "big file.bin",
            "lost+found",
            "new dir"
        ],
    );
    let mut want_dir: Vec<String> = (1..=10).map(|i| format!("f{i}")).collect();
    want_dir.push("Renamed Note.txt".into());
    want_dir.push("sub level".into());
    want_dir.sort();
    assert_eq!(ext2_ls(&p, "/new dir"), want_dir);
    assert_eq!(
        debugfs(&p, "cat \"/new dir/Renamed Note.txt\""),
        b"written in AdrOS\n"
    );
    for i in 1..=10 {
        assert_eq!(
            debugfs(&p, &format!("cat \"/new dir/f{i}\"")),
            format!("file {i}\n").as_bytes()
        );
    }
    let copy = debugfs(&p, "cat \"/new dir/sub level/copy of big.bin\"");
    assert!(
        copy == pattern(24_000_000, 3),
        "the copied 24 MB file differs ({} bytes read back)",
        copy.len()
    );
}

/// A partitioned FAT32 stick reads byte-exact through `mount -t vfat` on the native block
/// device: with the native FAT driver (`-o driver=native`) always, and with NetBSD's
/// msdosfs (`-o driver=rump`) when the rump components are linked.
#[test]
fn native_fat32_stick_reads_byte_exact_xhci() {
    fat32_reads("xhci");
}

#[test]
fn native_fat32_stick_reads_byte_exact_ehci() {
    fat32_reads("ehci");
}

fn fat32_reads(controller: &str) {
    let test = &format!("s15_usb_native-native_fat32_stick_reads_byte_exact_{controller}");
    if !tools_available(test, &["mkfs.vfat", "mcopy", "md5sum"]) {
        return;
    }
    let dir = test_dir().join("disks").join(test);
    std::fs::create_dir_all(&dir).unwrap();
    let src = source_tree(&dir);
    let img = dir.join("fat.img");
    let size = 96 * MIB;
    let f = std::fs::File::create(&img).unwrap();
    f.set_len(size).unwrap();
    drop(f);
    let count = (size / 512) as u32 - PART_START;
    write_mbr(&img, PART_START, count, 0x0c);
    run(Command::new(sbin("mkfs.vfat"))
        .args(["-F", "32", "-n", "ADROSUSB", "--offset"])
        .arg(PART_START.to_string())
        .arg(&img)
        .arg((count / 2).to_string()));
    let target = format!("{}@@{}", img.display(), u64::from(PART_START) * 512);
    for e in std::fs::read_dir(&src).unwrap().flatten() {
        run(Command::new("mcopy")
            .args(["-s", "-Q", "-i", &target])
            .arg(e.path())
            .arg("::/"));
    }
    let want = host_sums(&src);
    let rump = rump_linked();
    let cmd = format!(
        "{}mkdir -p /m && mount -t vfat -o driver=native /dev/sda1 /m || exit 10; cd /m && {} \
         cd / && umount /m || exit 11; {} grep -E '^usb' /proc/drivers",
        wait_for("/dev/sda1"),
        sums("NATIVEFAT"),
        if rump {
            format!(
                "mount -t vfat -o driver=rump,ro /dev/sda1 /m || exit 12; cd /m && {} cd / && \
                 umount /m || exit 13;",
                sums("RUMPFAT")
            )
        } else {
            String::new()
        }
    );
    let g = exec(test, controller, &cmd, &[&img]);
    assert_eq!(
        g.status, 0,
        "guest command failed ({}):\n{}",
        g.status, g.out
    );
    assert_eq!(
        guest_sums(&g.out, "NATIVEFAT "),
        want,
        "native FAT: checksums differ\n{}",
        g.out
    );
    if rump {
        assert_eq!(
            guest_sums(&g.out, "RUMPFAT "),
            want,
            "NetBSD msdosfs: checksums differ\n{}",
            g.out
        );
    } else {
        println!("{test}: the NetBSD msdosfs half is skipped (no NetBSD source)");
    }
    assert!(
        g.out.contains("usb-disk sda port=") && g.out.contains("stack=native"),
        "{}",
        g.out
    );
}

/// Two sticks on one controller: each file is copied to the other stick; both are
/// e2fsck-clean afterwards and hold both files, byte-exact.
#[test]
fn native_two_sticks_at_once_xhci() {
    two_sticks("xhci");
}

#[test]
fn native_two_sticks_at_once_ehci() {
    two_sticks("ehci");
}

fn two_sticks(controller: &str) {
    let test = &format!("s15_usb_native-native_two_sticks_at_once_{controller}");
    if !tools_available(test, &["mke2fs", "e2fsck", "debugfs"]) {
        return;
    }
    let dir = test_dir().join("disks").join(test);
    std::fs::create_dir_all(&dir).unwrap();
    let mut imgs = Vec::new();
    for (name, seed) in [("a", 11u32), ("b", 12)] {
        let src = dir.join(format!("src-{name}"));
        let _ = std::fs::remove_dir_all(&src);
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(
            src.join(format!("from-{name}.bin")),
            pattern(3_000_000, seed),
        )
        .unwrap();
        let img = dir.join(format!("{name}.img"));
        let _ = std::fs::remove_file(&img);
        run(Command::new(sbin("mke2fs"))
            .args(["-q", "-F", "-t", "ext2", "-d"])
            .arg(&src)
            .arg(&img)
            .arg("32M"));
        imgs.push(img);
    }
    let cmd = format!(
        "{}{}mkdir -p /x /y && mount -t ext2 -o driver=native /dev/sda /x || exit 10; \
         mount -t ext2 -o driver=native /dev/sdb /y || exit 11; \
         for f in /x/from-*; do cp \"$f\" /y/ || exit 12; done; \
         for f in /y/from-*; do [ -e \"/x/${{f##*/}}\" ] || cp \"$f\" /x/ || exit 13; done; \
         md5sum /x/from-* /y/from-*; sync; umount /x || exit 14; umount /y || exit 15; \
         grep -E '^usb' /proc/drivers",
        wait_for("/dev/sda"),
        wait_for("/dev/sdb"),
    );
    let refs: Vec<&Path> = imgs.iter().map(|p| p.as_path()).collect();
    let g = exec(test, controller, &cmd, &refs);
    assert_eq!(
        g.status, 0,
        "guest command failed ({}):\n{}",
        g.status, g.out
    );
    assert!(g.out.contains("usb-disk sdb port="), "{}", g.out);
    for img in &imgs {
        e2fsck_clean(img);
        for (name, seed) in [("a", 11u32), ("b", 12)] {
            let got = debugfs(img, &format!("cat /from-{name}.bin"));
            assert!(
                got == pattern(3_000_000, seed),
                "{}: from-{name}.bin differs ({} bytes)",
                img.display(),
                got.len()
            );
        }
    }
}

/// Bad input on the native stack: a partition that claims more than the stick has is
/// refused with a log line, mounting it fails with an errno, the whole stick stays
/// readable, and the kernel lives.
#[test]
fn native_partition_past_the_end_fails_with_an_errno_xhci() {
    partition_past_end("xhci");
}

#[test]
fn native_partition_past_the_end_fails_with_an_errno_ehci() {
    partition_past_end("ehci");
}

fn partition_past_end(controller: &str) {
    let test =
        &format!("s15_usb_native-native_partition_past_the_end_fails_with_an_errno_{controller}");
    let dir = test_dir().join("disks").join(test);
    std::fs::create_dir_all(&dir).unwrap();
    let img = dir.join("bad.img");
    let f = std::fs::File::create(&img).unwrap();
    f.set_len(16 * MIB).unwrap();
    drop(f);
    write_mbr(&img, 2048, 2 * 1024 * 1024, 0x83);
    let cmd = format!(
        "{}mkdir -p /m; mount -t ext2 -o driver=native /dev/sda1 /m; echo MOUNT1=$?; \
         mount -t ext2 -o driver=native /dev/sda /m; echo MOUNT2=$?; \
         dd if=/dev/sda of=/dev/null bs=1M count=16 2>/dev/null; echo DD=$?; echo ALIVE",
        wait_for("/dev/sda")
    );
    let g = exec(test, controller, &cmd, &[&img]);
    assert_eq!(
        g.status, 0,
        "guest command failed ({}):\n{}",
        g.status, g.out
    );
    assert!(
        g.out.contains("MOUNT1=") && !g.out.contains("MOUNT1=0"),
        "{}",
        g.out
    );
    assert!(
        g.out.contains("MOUNT2=") && !g.out.contains("MOUNT2=0"),
        "{}",
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

/// Hot-plug on the native stack: a partitioned ext2 stick is mounted and a 24 MB file on it
/// read in a loop; the stick is pulled out (QEMU monitor `device_del`) during the reads. The
/// reader must get EIO, `/dev/sda` must go away, the dead mount must answer errors, and
/// the kernel must live; then a FAT32 stick plugged in (`device_add`) must appear as
/// `/dev/sda` again and read byte-exact.
#[test]
fn native_hotplug_unplug_mid_read_then_plug_xhci() {
    hotplug("xhci");
}

#[test]
fn native_hotplug_unplug_mid_read_then_plug_ehci() {
    hotplug("ehci");
}

/// A partitioned FAT32 stick of `size` bytes holding `src`.
fn fat32_stick(img: &Path, src: &Path, size: u64) {
    let f = std::fs::File::create(img).unwrap();
    f.set_len(size).unwrap();
    drop(f);
    let count = (size / 512) as u32 - PART_START;
    write_mbr(img, PART_START, count, 0x0c);
    run(Command::new(sbin("mkfs.vfat"))
        .args(["-F", "32", "-n", "ADROSUSB", "--offset"])
        .arg(PART_START.to_string())
        .arg(img)
        .arg((count / 2).to_string()));
    let target = format!("{}@@{}", img.display(), u64::from(PART_START) * 512);
    for e in std::fs::read_dir(src).unwrap().flatten() {
        run(Command::new("mcopy")
            .args(["-s", "-Q", "-i", &target])
            .arg(e.path())
            .arg("::/"));
    }
}

fn hotplug(controller: &str) {
    let test = &format!("s15_usb_native-native_hotplug_unplug_mid_read_then_plug_{controller}");
    if !tools_available(test, &["mke2fs", "mkfs.vfat", "mcopy", "md5sum"]) {
        return;
    }
    let dir = test_dir().join("disks").join(test);
    std::fs::create_dir_all(&dir).unwrap();
    let src = source_tree(&dir);
    let part = dir.join("part.img");
    let _ = std::fs::remove_file(&part);
    run(Command::new(sbin("mke2fs"))
        .args(["-q", "-F", "-t", "ext2", "-d"])
        .arg(&src)
        .arg(&part)
        .arg("63M"));
    let first = dir.join("first.img");
    partitioned(&first, &part, 64 * MIB);
    let second = dir.join("second.img");
    fat32_stick(&second, &src, 64 * MIB);
    let want = host_sums(&src);
    let big_md5 = run(Command::new("md5sum").arg(src.join("big file.bin")));
    let big_md5 = big_md5.split_whitespace().next().unwrap().to_string();

    let cmd = format!(
        "{}mkdir -p /m /n; mount -t ext2 -o driver=native /dev/sda1 /m || exit 10; \
         echo \"FIRST $(md5sum < '/m/big file.bin' | cut -d' ' -f1)\"; \
         echo PULL-THE-STICK; \
         n=0; rc=0; while [ $n -lt 300 ]; do \
           cat '/m/big file.bin' > /dev/null 2>/tmp/err || {{ rc=$?; break; }}; n=$((n+1)); done; \
         echo \"READER rc=$rc rounds=$n\"; echo \"READERR $(cat /tmp/err)\"; \
         i=0; while [ -e /dev/sda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; \
         if [ -e /dev/sda ]; then echo STILL-SDA; else echo SDA-GONE; fi; \
         cat '/m/A Long File Name With Spaces.txt' > /dev/null 2>/tmp/err2; echo \"CAT rc=$?\"; \
         echo \"CATERR $(cat /tmp/err2)\"; dd if=/dev/sda of=/dev/null bs=4k count=1 2>/dev/null; echo \"DEVNODE rc=$?\"; \
         umount /m; echo \"UMOUNT rc=$?\"; grep -E '^usb' /proc/drivers; \
         echo PLUG-THE-SPARE; \
         {}mount -t vfat -o driver=native /dev/sda1 /n || exit 20; cd /n && {} cd / && \
         umount /n || exit 21; grep -E '^usb' /proc/drivers; echo HOTPLUG-DONE",
        wait_for("/dev/sda1"),
        wait_for("/dev/sda1"),
        sums("PLUGGED")
    );
    let hex: String = cmd.bytes().map(|b| format!("{b:02x}")).collect();
    // The bus QEMU gives the controller's root ports (`Machine::usb_bus`).
    let bus = if controller == "ehci" {
        "ehci.0"
    } else {
        "xhci.0"
    };
    let t = Boot::new(test)
        .usb_controller(controller)
        .smp(2)
        .args(&format!("loglevel=4 usb.driver=native adros.exec={hex}"))
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
        out.contains("DEVNODE rc=") && !out.contains("DEVNODE rc=0"),
        "the gone disk's node still reads",
    );
    check(
        t.serial().contains("was removed: /dev/sda is gone"),
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

/// A stick behind QEMU's `usb-hub` (a full-speed hub on root port 1, the stick on its
/// port 1) on qemu-xhci: the hub class driver powers and resets the hub port, the stick is
/// addressed with a route string, and its partitioned ext2 file system reads byte-exact.
#[test]
fn native_stick_behind_a_hub_reads_byte_exact_xhci() {
    stick_behind_a_hub("xhci");
}

/// The same on the ICH9 EHCI: QEMU's `usb-hub` is full-speed, so the EHCI hands its port
/// to the companion UHCI (PORT_OWNER), where `adros-uhci` enumerates the hub and the stick
/// behind it (full speed: TD chains of 64-byte packets).
#[test]
fn native_stick_behind_a_hub_reads_byte_exact_ehci() {
    stick_behind_a_hub("ehci");
}

fn stick_behind_a_hub(ctrl: &str) {
    let test = format!("s15_usb_native-native_stick_behind_a_hub_reads_byte_exact_{ctrl}");
    let test = test.as_str();
    if !tools_available(test, &["mke2fs", "md5sum"]) {
        return;
    }
    let dir = test_dir().join("disks").join(test);
    std::fs::create_dir_all(&dir).unwrap();
    let src = source_tree(&dir);
    let part = dir.join("part.img");
    let _ = std::fs::remove_file(&part);
    run(Command::new(sbin("mke2fs"))
        .args(["-q", "-F", "-t", "ext2", "-d"])
        .arg(&src)
        .arg(&part)
        .arg("63M"));
    let img = dir.join("stick.img");
    partitioned(&img, &part, 64 * MIB);
    // The stick plugged in behind the hub after the first is pulled (a copy: QEMU locks
    // an image against a second drive).
    let spare = dir.join("spare.img");
    std::fs::copy(&img, &spare).unwrap();
    let want = host_sums(&src);
    let cmd = format!(
        "{}mkdir -p /m && mount -t ext2 -o driver=native /dev/sda1 /m || exit 10; cd /m && {} \
         cd / && umount /m || exit 11; grep -E '^(usb|pci)' /proc/drivers; echo PULL-THE-STICK; \
         i=0; while [ -e /dev/sda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; \
         if [ -e /dev/sda ]; then echo STILL-SDA; else echo SDA-GONE; fi; \
         echo PLUG-BEHIND-THE-HUB; {}mount -t ext2 -o driver=native /dev/sda1 /m || exit 12; \
         echo \"PLUGGED $(md5sum < '/m/dir with spaces/another long name.dat' | cut -d' ' -f1)\"; \
         umount /m || exit 13; grep -E '^usb-disk' /proc/drivers",
        wait_for("/dev/sda1"),
        sums("HUB"),
        wait_for("/dev/sda1")
    );
    let hex: String = cmd.bytes().map(|b| format!("{b:02x}")).collect();
    let t = Boot::new(test)
        .smp(2)
        .usb_controller(ctrl)
        .usb_hub()
        .usb_disk(img)
        .usb_spare_disk(spare)
        .monitor_after("PULL-THE-STICK", "device_del stick0")
        .monitor_after(
            "PLUG-BEHIND-THE-HUB",
            &format!("device_add usb-storage,bus={ctrl}.0,drive=spare0,id=plug0,port=1.2"),
        )
        .args(&format!("loglevel=6 usb.driver=native adros.exec={hex}"))
        .timeout(Duration::from_secs(400))
        .run();
    if let Some(report) = banner::crash_report(t.serial()) {
        t.fail(&format!("the kernel crashed:\n{report}"));
    }
    let (out, status) = t.exec_result();
    if status != 0 {
        t.fail(&format!("the guest command failed ({status}):\n{out}"));
    }
    if guest_sums(&out, "HUB ") != want {
        t.fail(&format!("checksums differ:\n{out}"));
    }
    // The hub's root port number depends on how QEMU numbers its USB 2 ports.
    if !out
        .lines()
        .any(|l| l.starts_with("usb-disk sda port=") && l.contains(".1 lun=0"))
    {
        t.fail(&format!(
            "/proc/drivers does not show the stick behind the hub:\n{out}"
        ));
    }
    if !t.serial().contains("a hub with") {
        t.fail("no log line for the hub");
    }
    if ctrl == "ehci" {
        // The EHCI handed the hub over; a native UHCI owns its PCI function and drove it.
        if !t
            .serial()
            .contains("a full/low-speed device, handed to the companion controller")
        {
            t.fail("no log line for the EHCI's hand-over to its companion");
        }
        let uhci_owned = out
            .lines()
            .any(|l| l.starts_with("pci ") && l.contains("driver=\"usb uhci (native)\""));
        let uhci_busy = out.lines().any(|l| {
            l.starts_with("usb-hc ")
                && l.contains(" uhci stack=native")
                && !l.contains(" transfers=0 ")
        });
        if !uhci_owned || !uhci_busy {
            t.fail(&format!(
                "/proc/drivers does not show a native UHCI that moved the data:\n{out}"
            ));
        }
    }
    // Pulled out from behind the hub: the hub's port status shows it, the disk goes.
    if !out.contains("SDA-GONE") || !t.serial().contains(".1 was removed: /dev/sda is gone") {
        t.fail(&format!(
            "the stick pulled out from behind the hub did not go away:\n{out}"
        ));
    }
    // Plugged in behind the hub's port 2 afterwards: enumerated at the next look at the
    // hub's ports, `/dev/sda` again, and it reads.
    if t.out.monitor.contains("Error") {
        t.fail(&format!("a monitor command failed:\n{}", t.out.monitor));
    }
    let want_dat =
        run(Command::new("md5sum").arg(src.join("dir with spaces/another long name.dat")));
    let want_dat = want_dat.split_whitespace().next().unwrap_or_default();
    if !out.contains(&format!("PLUGGED {want_dat}"))
        || !out
            .lines()
            .any(|l| l.starts_with("usb-disk sda port=") && l.contains(".2 lun=0"))
    {
        t.fail(&format!(
            "the stick plugged in behind the hub afterwards was not read (at port x.2):\n{out}"
        ));
    }
    let usb_log: Vec<&str> = t.serial().lines().filter(|l| l.contains("usb")).collect();
    println!(
        "{test}: guest output:\n{out}\n{test}: USB lines of the console:\n{}",
        usb_log.join("\n")
    );
}
