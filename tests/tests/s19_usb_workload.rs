//! s19: the workload `cargo xtask compare usb` runs (`tests/user/ext2work.c` with `-t vfat
//! -w SECS -d DISK`), on a partitioned FAT32 stick made on the host, with the native USB
//! stack and native FAT on qemu-xhci. Every digest the workload prints must equal the one
//! computed on the host from the same source tree and the same generated data (so the
//! digests `compare usb` checks across stacks are the right ones, not merely equal); its
//! cold-read check must see the stick move at least the big file's bytes; afterwards
//! `fsck.vfat -n` must find the partition clean and mtools must read the big file and the
//! 500 remaining small files back as written. `-d` naming a disk that does not exist must
//! fail with a `FAIL` line. Skipped without dosfstools or mtools.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use adros_tests::sticks::{MIB, sbin, write_mbr};
use adros_tests::{Boot, banner, skip, test_dir};

const PART_START: u64 = 2048;
/// The big file, MiB (`compare usb` uses 64; a small one keeps the test short).
const BIG_MIB: u64 = 8;

fn tools_available(test: &str) -> bool {
    for t in ["mkfs.vfat", "fsck.vfat", "mcopy", "mdir"] {
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

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .env("MTOOLS_SKIP_CHECK", "1")
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

const FNV0: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv(mut h: u64, b: &[u8]) -> u64 {
    for &x in b {
        h ^= u64::from(x);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// ext2work's `walk`: names in byte order, each name with its NUL, then a directory's
/// contents or a file's own hash. Returns (hash, files, bytes).
fn walk(dir: &Path, h: &mut u64, files: &mut u64, bytes: &mut u64) {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    for n in names {
        let p = dir.join(&n);
        let mut z = n.into_bytes();
        z.push(0);
        *h = fnv(*h, &z);
        if p.is_dir() {
            walk(&p, h, files, bytes);
        } else {
            let data = std::fs::read(&p).unwrap();
            *h = fnv(*h, &fnv(FNV0, &data).to_le_bytes());
            *files += 1;
            *bytes += data.len() as u64;
        }
    }
}

fn walk_digest(dir: &Path) -> String {
    let (mut h, mut files, mut bytes) = (FNV0, 0, 0);
    walk(dir, &mut h, &mut files, &mut bytes);
    format!("DIGEST walk {h:016x} files={files} bytes={bytes}")
}

/// The small file ext2work writes as number `i` (4 KiB).
fn small_file(i: usize) -> Vec<u8> {
    let mut page = vec![b'a' + (i % 26) as u8; 4096];
    let head = format!("file {i}\n");
    page[..head.len()].copy_from_slice(head.as_bytes());
    page[head.len()] = 0;
    page
}

/// ext2work's `files` digest: g0001, g0003, … g0999 are left.
fn files_digest(dir: &Path) -> String {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    for i in (1..1000).step_by(2) {
        std::fs::write(dir.join(format!("g{i:04}")), small_file(i)).unwrap();
    }
    let (mut h, mut files, mut bytes) = (FNV0, 0, 0);
    walk(dir, &mut h, &mut files, &mut bytes);
    format!("DIGEST files {h:016x} files={files} bytes={bytes}")
}

/// ext2work's big file.
fn big_file(mib: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity((mib * MIB) as usize);
    for m in 0..mib {
        for i in (0..MIB).step_by(8) {
            v.extend_from_slice(&(m.wrapping_mul(0x9e37_79b9_7f4a_7c15) + i).to_le_bytes());
        }
    }
    v
}

fn pattern(len: usize, mut x: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A small tree under `root/tree`: long names with spaces, nesting, an empty file.
fn source_tree(root: &Path) {
    let _ = std::fs::remove_dir_all(root);
    for d in 0..4u64 {
        let dir = root.join(format!("tree/d{d}/Sub Dir {d}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..5u64 {
            let len = ((d * 7 + f * 13) % 9) as usize * 7000;
            std::fs::write(
                dir.join(format!("file {f} of dir {d}.bin")),
                pattern(len, d * 100 + f + 1),
            )
            .unwrap();
        }
        std::fs::write(root.join(format!("tree/d{d}/README.TXT")), b"x\n").unwrap();
    }
}

fn stick(img: &Path, src: &Path, mib: u64) -> String {
    let f = std::fs::File::create(img).unwrap();
    f.set_len(mib * MIB).unwrap();
    drop(f);
    let count = mib * MIB / 512 - PART_START;
    write_mbr(img, PART_START as u32, count as u32, 0x0c);
    run(Command::new(sbin("mkfs.vfat"))
        .args(["-F", "32", "-n", "S19WORK", "--offset"])
        .arg(PART_START.to_string())
        .arg(img)
        .arg((count / 2).to_string()));
    let target = format!("{}@@{}", img.display(), PART_START * 512);
    run(Command::new("mcopy")
        .args(["-s", "-Q", "-i", &target])
        .arg(src.join("tree"))
        .arg("::/"));
    target
}

fn fsck_clean(img: &Path) {
    let data = std::fs::read(img).unwrap();
    let vol = img.with_extension("vol");
    std::fs::write(&vol, &data[(PART_START * 512) as usize..]).unwrap();
    let out = Command::new(sbin("fsck.vfat"))
        .arg("-n")
        .arg(&vol)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && !text.to_lowercase().contains("dirty bit"),
        "fsck.vfat -n is not clean:\n{text}"
    );
}

#[test]
fn usb_workload_fat32_native_xhci_digests_match_the_host() {
    workload("xhci");
}

/// The same on the ICH9 EHCI (a USB 2 stick on the EHCI itself, not a companion).
#[test]
fn usb_workload_fat32_native_ehci_digests_match_the_host() {
    workload("ehci");
}

fn workload(controller: &str) {
    let test =
        &format!("s19_usb_workload-usb_workload_fat32_native_{controller}_digests_match_the_host");
    if !tools_available(test) {
        return;
    }
    let dir: PathBuf = test_dir().join("disks").join(test);
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("src");
    source_tree(&src);
    let img = dir.join("stick.img");
    let target = stick(&img, &src, 96);
    let want = [
        walk_digest(&src.join("tree")),
        files_digest(&dir.join("files")),
        format!("DIGEST seqwrite {:016x}", fnv(FNV0, &big_file(BIG_MIB))),
        format!("DIGEST seqread {:016x}", fnv(FNV0, &big_file(BIG_MIB))),
    ];

    let w = "/usr/libexec/adros-tests/ext2work";
    let cmd = format!(
        "mkdir -p /m; {w} -t vfat -w 60 -d sdz /dev/sda1 native /m 1 0; echo NOSUCHDISK $?; \
         {w} -t vfat -w 60 -d sda /dev/sda1 native /m {BIG_MIB} 0"
    );
    let hex: String = cmd.bytes().map(|b| format!("{b:02x}")).collect();
    let t = Boot::new(test)
        .smp(2)
        .usb_controller(controller)
        .usb_disk(img.clone())
        .args(&format!("loglevel=4 usb.driver=native adros.exec={hex}"))
        .timeout(Duration::from_secs(400))
        .run();
    if let Some(report) = banner::crash_report(t.serial()) {
        t.fail(&format!("the kernel crashed:\n{report}"));
    }
    let (out, status) = t.exec_result();
    let out = out.replace('\r', "");
    assert_eq!(status, 0, "the workload failed ({status}):\n{out}");
    assert!(
        out.contains("FAIL no usb-disk line for the -d disk in /proc/drivers")
            && out.contains("NOSUCHDISK 1"),
        "-d sdz must fail with a FAIL line and status 1:\n{out}"
    );
    let got: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("DIGEST "))
        .map(str::trim)
        .collect();
    assert_eq!(
        got, want,
        "the workload's digests differ from the host's:\n{out}"
    );
    let cold = out
        .lines()
        .find(|l| l.starts_with("COLD seqread disk=sda "))
        .unwrap_or_else(|| panic!("no COLD line:\n{out}"));
    let field = |k: &str| -> u64 {
        cold.split_whitespace()
            .find_map(|f| f.strip_prefix(k))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {k} in {cold}"))
    };
    assert_eq!(field("file_bytes="), BIG_MIB * MIB, "{cold}");
    assert!(field("disk_bytes=") >= BIG_MIB * MIB, "{cold}");
    for r in ["mount", "walk", "files", "seqwrite", "seqread", "umount"] {
        assert!(
            out.lines().any(|l| l.starts_with(&format!("RESULT {r} "))),
            "no RESULT {r}:\n{out}"
        );
    }
    assert!(
        !out.contains("RESULT dir_"),
        "MANY 0 must skip the directory phase:\n{out}"
    );
    assert!(out.contains("\nDONE"), "{out}");

    // The stick, on the host.
    fsck_clean(&img);
    let big = run(Command::new("mtype").args(["-i", &target, "::/big"]));
    assert!(
        big == big_file(BIG_MIB),
        "the big file read back by mtype differs ({} bytes)",
        big.len()
    );
    let listing = String::from_utf8_lossy(&run(
        Command::new("mdir").args(["-b", "-i", &target, "::/work"])
    ))
    .into_owned();
    let names: Vec<&str> = listing.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        names.len(),
        500,
        "::/work should hold 500 files:\n{listing}"
    );
    let g999 = run(Command::new("mtype").args(["-i", &target, "::/work/g0999"]));
    assert!(g999 == small_file(999), "::/work/g0999 differs");
}
