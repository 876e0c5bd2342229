//! s16: the native FAT driver (`adros-fat`) behind `mount -t vfat -o driver=native`, on
//! virtio-blk images made on the host by `mkfs.vfat` and filled by `mcopy` (long names with
//! spaces, non-ASCII names, a deep tree, a 6 MB file): a partitioned FAT32 disk
//! (`/dev/vda1`) and a whole-disk FAT16 one (`/dev/vdb`). Every file's `md5sum` in the guest
//! must match the host's; a scripted busybox workload (mkdir -p, cp, echo >, >>, rm, mv of
//! files and directories, truncate, rmdir, a 5 MiB `dd`, sync, umount) runs on both mounts
//! and on a host copy of the tree; afterwards `fsck.vfat -n` must find each volume clean and
//! `mcopy -s` must extract exactly the host's tree (`mdir`/`mtype` spot checks). A volume with
//! a bad BPB fails to mount and a directory whose cluster chain loops fails to list (EIO),
//! and the kernel lives. With the rump components linked, NetBSD's msdosfs
//! (`-o driver=rump`) must see the same tree as the native driver, and both stacks' 5 MiB
//! write and cold-read times are printed (`FATBENCH` lines; never asserted). Skipped when
//! dosfstools or mtools are missing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use adros_tests::{Boot, banner, rump_linked, skip, test_dir};

const MIB: u64 = 1 << 20;

fn sbin(tool: &str) -> String {
    for d in ["/usr/sbin", "/sbin"] {
        let p = Path::new(d).join(tool);
        if p.is_file() {
            return p.display().to_string();
        }
    }
    tool.to_string()
}

fn tools_available(test: &str) -> bool {
    for t in ["mkfs.vfat", "fsck.vfat", "mcopy", "mdir", "mtype", "md5sum"] {
        let found = std::env::var_os("PATH").is_some_and(|p| {
            std::env::split_paths(&p).any(|d| d.join(t).is_file())
                || Path::new("/usr/sbin").join(t).is_file()
                || Path::new("/sbin").join(t).is_file()
        });
        if !found {
            skip(
                test,
                &format!("{t} not installed on the host (dosfstools, mtools)"),
            );
            return false;
        }
    }
    true
}

fn run(c: &mut Command) -> String {
    let out = c.env("MTOOLS_SKIP_CHECK", "1").output().unwrap();
    assert!(
        out.status.success(),
        "{c:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn source_tree(dir: &Path, unicode: bool) -> PathBuf {
    let src = dir.join("src");
    let _ = std::fs::remove_dir_all(&src);
    let w = |p: &str, data: &[u8]| {
        let p = src.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    };
    w("hello.txt", b"hello from the host\n");
    w("README.TXT", b"an upper-case 8.3 name\n");
    w("A Long File Name With Spaces.txt", &pattern(5_000, 1));
    if unicode {
        w("Ünïcödé naïve café.txt", b"latin-1 range\n");
    }
    w("sub dir/big file.bin", &pattern(6_000_000, 2));
    w("sub dir/another long name.dat", &pattern(300_000, 3));
    w("to be removed.txt", b"bye\n");
    let mut deep = String::from("deep");
    for i in 0..8 {
        deep.push_str(&format!("/level {i} of a deep tree"));
    }
    w(&format!("{deep}/bottom.txt"), b"at the bottom\n");
    std::fs::create_dir_all(src.join("empty dir")).unwrap();
    src
}

fn write_mbr(img: &Path, start: u32, count: u32, ty: u8) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(img).unwrap();
    let mut mbr = [0u8; 512];
    let e = &mut mbr[446..462];
    e[1..4].copy_from_slice(&[0xfe, 0xff, 0xff]);
    e[4] = ty;
    e[5..8].copy_from_slice(&[0xfe, 0xff, 0xff]);
    e[8..12].copy_from_slice(&start.to_le_bytes());
    e[12..16].copy_from_slice(&count.to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    f.seek(SeekFrom::Start(0)).unwrap();
    f.write_all(&mbr).unwrap();
}

/// A FAT image holding `src`: `partitioned` puts it in MBR partition 1 at sector 2048.
/// Returns (image, the `-i` argument mtools needs).
fn fat_image(
    dir: &Path,
    name: &str,
    src: &Path,
    mib: u64,
    args: &[&str],
    partitioned: bool,
) -> (PathBuf, String) {
    let img = dir.join(name);
    let _ = std::fs::remove_file(&img);
    let f = std::fs::File::create(&img).unwrap();
    f.set_len(mib * MIB).unwrap();
    drop(f);
    let (start, target) = if partitioned {
        let count = (mib * MIB / 512) as u32 - 2048;
        write_mbr(&img, 2048, count, 0x0c);
        (2048u64, format!("{}@@{}", img.display(), 2048 * 512))
    } else {
        (0, img.display().to_string())
    };
    let sectors = mib * MIB / 512 - start;
    run(Command::new(sbin("mkfs.vfat"))
        .args(args)
        .arg("--offset")
        .arg(start.to_string())
        .arg(&img)
        .arg((sectors / 2).to_string()));
    for e in std::fs::read_dir(src).unwrap().flatten() {
        run(Command::new("mcopy")
            .args(["-s", "-Q", "-i", &target])
            .arg(e.path())
            .arg("::/"));
    }
    (img, target)
}

/// The FAT volume alone (for fsck.vfat).
fn volume_of(img: &Path, partitioned: bool) -> PathBuf {
    if !partitioned {
        return img.to_path_buf();
    }
    let b = std::fs::read(img).unwrap();
    let p = img.with_extension("vol");
    std::fs::write(&p, &b[2048 * 512..]).unwrap();
    p
}

fn fsck_clean(vol: &Path) {
    let out = Command::new(sbin("fsck.vfat"))
        .arg("-n")
        .arg(vol)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && !text.to_lowercase().contains("dirty bit"),
        "fsck.vfat -n is not clean on {}:\n{text}",
        vol.display()
    );
}

fn md5(data: &[u8]) -> String {
    use std::io::Write;
    let mut c = Command::new("md5sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(data).unwrap();
    let out = c.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

/// `./path` → Some(md5) for files, None for directories, under `root`.
fn tree(root: &Path) -> BTreeMap<String, Option<String>> {
    fn walk(root: &Path, d: &Path, out: &mut BTreeMap<String, Option<String>>) {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            let rel = format!("./{}", p.strip_prefix(root).unwrap().display());
            if p.is_dir() {
                out.insert(rel, None);
                walk(root, &p, out);
            } else {
                out.insert(rel, Some(md5(&std::fs::read(&p).unwrap())));
            }
        }
    }
    let mut m = BTreeMap::new();
    walk(root, root, &mut m);
    m
}

/// What the guest's `find . | sort | md5sum` prints for this tree.
fn listing_md5(t: &BTreeMap<String, Option<String>>) -> String {
    let mut v: Vec<&[u8]> = t.keys().map(|k| k.as_bytes()).collect();
    v.push(b".");
    v.sort();
    let mut s = Vec::new();
    for k in v {
        s.extend_from_slice(k);
        s.push(b'\n');
    }
    md5(&s)
}

/// The guest's `md5sum` lines between `BEGIN tag` and `END tag`: path → md5.
fn guest_md5s(out: &str, tag: &str) -> BTreeMap<String, String> {
    let b = out
        .find(&format!("BEGIN {tag}\n"))
        .unwrap_or_else(|| panic!("no BEGIN {tag} in: {out}"));
    let rest = &out[b + tag.len() + 7..];
    let e = rest
        .find(&format!("END {tag}"))
        .unwrap_or_else(|| panic!("no END {tag}"));
    rest[..e]
        .lines()
        .filter_map(|l| l.split_once("  "))
        .map(|(h, p)| (p.to_string(), h.to_string()))
        .collect()
}

/// The `FATBENCH` timing lines: printed and appended to `<test dir>/s16_fat-bench.txt`
/// (times are `/proc/uptime` seconds, 10 ms resolution; never asserted).
fn bench_lines(out: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(test_dir().join("s16_fat-bench.txt"))
        .unwrap();
    for l in out.lines().filter(|l| l.starts_with("FATBENCH")) {
        println!("{l}");
        let _ = writeln!(f, "{l}");
    }
}

fn files_only(t: &BTreeMap<String, Option<String>>) -> BTreeMap<String, String> {
    t.iter()
        .filter_map(|(k, v)| v.as_ref().map(|h| (k.clone(), h.clone())))
        .collect()
}

fn boot(name: &str, cmd: &str, disks: &[&Path], usb: &[&Path], extra: &str) -> (String, i32) {
    let hex: String = cmd.bytes().map(|b| format!("{b:02x}")).collect();
    let mut b = Boot::new(name)
        .smp(2)
        .args(&format!("loglevel=3 {extra} adros.exec={hex}"))
        .timeout(Duration::from_secs(400));
    for d in disks {
        b = b.disk(d.to_path_buf());
    }
    for u in usb {
        b = b.usb_disk(u.to_path_buf());
    }
    let t = b.run();
    if let Some(report) = banner::crash_report(t.serial()) {
        t.fail(&format!("the kernel crashed:\n{report}"));
    }
    let (out, st) = t.exec_result();
    if st != 0 {
        t.fail(&format!("the guest command failed with {st}:\n{out}"));
    }
    // The transcript holds the serial bytes one char each; UTF-8 names come back whole.
    let out = if out.chars().all(|c| (c as u32) < 256) {
        let bytes: Vec<u8> = out.chars().map(|c| c as u32 as u8).collect();
        String::from_utf8(bytes).unwrap_or(out)
    } else {
        out
    };
    (out, st)
}

/// Prints every file's checksum under the mount point `m` between markers.
fn md5_cmd(m: &str, tag: &str) -> String {
    format!(
        "echo 'BEGIN {tag}'; (cd {m} && find . -type f | sort | while read -r f; do md5sum \"$f\"; done); echo 'END {tag}'; \
         echo \"LIST {tag} $(cd {m} && find . | sort | md5sum)\""
    )
}

/// The workload: POSIX sh from the volume's root, run in the guest (busybox) and on a host
/// copy of the tree.
const WORKLOAD: &str = r#"echo written-in-the-guest > new.txt
mkdir -p "a new directory/with a long nested name/deeper" && echo inner > "a new directory/with a long nested name/deeper/f.txt"
i=0; while [ $i -lt 120 ]; do echo "file number $i" > "a new directory/File With A Long Name $i.txt"; i=$((i+1)); done
i=0; while [ $i -lt 120 ]; do if [ $((i % 3)) -eq 0 ]; then rm "a new directory/File With A Long Name $i.txt"; fi; i=$((i+1)); done
mv "a new directory/File With A Long Name 1.txt" "renamed to the root.txt"
mv "a new directory/File With A Long Name 2.txt" "a new directory/File With A Long Name 4.txt"
mv "sub dir" "a new directory/moved sub dir"
cp "a new directory/moved sub dir/big file.bin" "copy of big.bin"
truncate -s 1234567 "copy of big.bin"
echo appended >> hello.txt
rm "to be removed.txt"
rmdir "empty dir"
mkdir SHORTDIR && echo x > SHORTDIR/UPPER.TXT && echo y > SHORTDIR/lower.txt
dd if=/dev/zero of=zero5.bin bs=65536 count=80 2>/dev/null
echo workload-done"#;

fn host_workload(dir: &Path, src: &Path) -> PathBuf {
    let want = dir.join("want");
    let _ = std::fs::remove_dir_all(&want);
    run(Command::new("cp").arg("-a").arg(src).arg(&want));
    run(Command::new("sh")
        .arg("-c")
        .arg(WORKLOAD)
        .current_dir(&want));
    want
}

fn extract(dir: &Path, target: &str, name: &str) -> PathBuf {
    let out = dir.join(name);
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    run(Command::new("mcopy")
        .args(["-s", "-n", "-Q", "-i", target, "::/"])
        .arg(&out));
    out
}

fn assert_trees(
    what: &str,
    got: &BTreeMap<String, Option<String>>,
    want: &BTreeMap<String, Option<String>>,
) {
    let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: missing {missing:?}, extra {extra:?}"
    );
    for (k, v) in want {
        assert_eq!(&got[k], v, "{what}: {k} differs");
    }
}

#[test]
fn vfat_native_fat32_and_fat16_read_write_fsck_clean() {
    let name = "s16_fat-vfat_native_fat32_and_fat16_read_write_fsck_clean";
    if !tools_available(name) {
        return;
    }
    let dir = test_dir().join("disks").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let src = source_tree(&dir, true);
    let (img32, t32) = fat_image(
        &dir,
        "fat32.img",
        &src,
        96,
        &["-F", "32", "-n", "ADROS32"],
        true,
    );
    let (img16, t16) = fat_image(&dir, "fat16.img", &src, 48, &["-F", "16", "-s", "4"], false);
    // A bad BPB (768 bytes per sector) and a directory whose chain loops onto itself.
    let (bad, _) = fat_image(&dir, "badbpb.img", &src, 8, &["-F", "12"], false);
    let mut b = std::fs::read(&bad).unwrap();
    b[11..13].copy_from_slice(&768u16.to_le_bytes());
    std::fs::write(&bad, b).unwrap();
    let (lp, lpt) = fat_image(&dir, "loop.img", &src, 48, &["-F", "16", "-s", "4"], false);
    let entry = run(Command::new("mdir").args(["-a", "-i", &lpt, "::/"]));
    assert!(entry.contains("sub dir"), "{entry}");
    {
        // Find "sub dir"'s first cluster from its root entry and make its FAT entry point
        // to itself, in both FATs.
        let mut b = std::fs::read(&lp).unwrap();
        let le16 = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
        let (res, nfats, fatsz, rootents) =
            (le16(&b, 14), b[16] as usize, le16(&b, 22), le16(&b, 17));
        let root = (res + nfats * fatsz) * 512;
        let mut first = None;
        for s in 0..rootents {
            let e = root + s * 32;
            if &b[e..e + 8] == b"SUBDIR~1" || &b[e..e + 11] == b"SUBDIR     " {
                first = Some(le16(&b, e + 26));
            }
        }
        let c = first.expect("sub dir's short entry");
        for k in 0..nfats {
            let o = (res + k * fatsz) * 512 + c * 2;
            b[o..o + 2].copy_from_slice(&(c as u16).to_le_bytes());
        }
        std::fs::write(&lp, b).unwrap();
    }
    // Written, synced and powered off without umount.
    let empty = dir.join("empty-src");
    std::fs::create_dir_all(&empty).unwrap();
    let (synced, synced_t) = fat_image(&dir, "synced.img", &empty, 16, &["-F", "16"], false);
    let want_src = tree(&src);
    let cmd = format!(
        "mkdir -p /a /b /c /d /e; \
         mount -t vfat -o driver=native /dev/vda1 /a || exit 10; \
         mount -t vfat /dev/vdb /b || exit 11; \
         grep -E ' /a | /b ' /proc/mounts; grep -E '^vfat|^mount /a|^mount /b' /proc/drivers; \
         {} ; {} ; \
         (cd /a && {{\n{WORKLOAD}\n}}) || exit 12; \
         (cd /b && {{\n{WORKLOAD}\n}}) || exit 13; \
         chmod 644 /a/hello.txt && echo CHMOD-SAME-OK; chmod 600 /a/hello.txt 2>/dev/null; echo \"CHMOD600=$?\"; \
         ln -s hello.txt /a/sym 2>/dev/null; echo \"SYMLINK=$?\"; ln /a/hello.txt /a/hard 2>/dev/null; echo \"LINK=$?\"; \
         stat -c 'MODE %a %u %g %n' /a/hello.txt '/a/a new directory'; \
         t0=$(cut -d' ' -f1 /proc/uptime); dd if=/dev/urandom of=/a/rand5.bin bs=65536 count=80 2>/dev/null; sync; \
         t1=$(cut -d' ' -f1 /proc/uptime); echo \"RAND5 $(md5sum < /a/rand5.bin)\"; \
         umount /a && umount /b || exit 14; \
         mount -t vfat -o driver=native /dev/vda1 /a || exit 15; \
         t2=$(cut -d' ' -f1 /proc/uptime); dd if=/a/rand5.bin of=/dev/null bs=65536 2>/dev/null; t3=$(cut -d' ' -f1 /proc/uptime); \
         echo \"FATBENCH native urandom-write+sync $t0 $t1 cold-read $t2 $t3\"; \
         umount /a || exit 16; \
         mount -t vfat -o driver=native /dev/vdc /c; echo \"BADBPB=$?\"; \
         mount -t vfat -o driver=native,ro /dev/vdd /d || exit 17; \
         ls '/d/sub dir' > /dev/null 2>&1; echo LS-ENDED; cat '/d/sub dir/big file.bin' > /dev/null 2>/tmp/err; echo \"LOOPCAT=$? $(cat /tmp/err)\"; cat /d/hello.txt; umount /d; \
         mount -t vfat -o driver=native /dev/vde /e && echo synced-data > /e/synced.txt && mkdir /e/dir && sync && echo SYNCED; \
         echo alive",
        md5_cmd("/a", "A"),
        md5_cmd("/b", "B"),
    );
    // fs.vfat=native makes the native driver the default (/dev/vdb is mounted without -o).
    let (out, _) = boot(
        name,
        &cmd,
        &[&img32, &img16, &bad, &lp, &synced],
        &[],
        "fs.vfat=native",
    );
    assert!(out.contains("vfat default=native"), "{out}");
    assert!(out.contains("/dev/vda1 /a vfat rw,driver=native"), "{out}");
    assert!(out.contains("/dev/vdb /b vfat rw,driver=native"), "{out}");
    for tag in ["A", "B"] {
        assert_eq!(
            guest_md5s(&out, tag),
            files_only(&want_src),
            "checksums on {tag}"
        );
        assert!(
            out.contains(&format!("LIST {tag} {}", listing_md5(&want_src))),
            "the guest's `find | sort` on {tag} differs from the host's: {out}"
        );
    }
    let bad_rc = out
        .lines()
        .find_map(|l| l.strip_prefix("BADBPB="))
        .unwrap_or("");
    assert_ne!(bad_rc, "0", "a bad BPB mounted: {out}");
    // busybox ls treats a failing getdents as the end of the listing; it must end. A
    // lookup in the directory walks the chain and must fail.
    assert!(out.contains("LS-ENDED"), "{out}");
    let loop_line = out
        .lines()
        .find(|l| l.starts_with("LOOPCAT="))
        .unwrap_or("");
    assert!(
        !loop_line.starts_with("LOOPCAT=0") && loop_line.contains("Input/output error"),
        "listing a looping directory: {loop_line}\n{out}"
    );
    assert!(
        out.contains("hello from the host") && out.contains("\nalive"),
        "{out}"
    );
    // Unix semantics FAT lacks: fixed modes and owner, chmod only to the same mode, no links.
    for want in [
        "CHMOD-SAME-OK",
        "MODE 644 0 0 /a/hello.txt",
        "MODE 755 0 0 /a/a new directory",
    ] {
        assert!(out.contains(want), "{want}: {out}");
    }
    for bad in ["CHMOD600=0", "SYMLINK=0", "LINK=0"] {
        assert!(!out.contains(bad), "{bad}: {out}");
    }
    assert!(out.contains("CHMOD600=") && out.contains("SYMLINK=") && out.contains("LINK="));
    bench_lines(&out);
    // sync(2) put the data and metadata on the disk before the power-off: mtools reads
    // them and fsck finds nothing but (perhaps) the dirty flag of a volume never unmounted.
    assert!(out.contains("SYNCED"), "{out}");
    let t = run(Command::new("mtype").args(["-i", &synced_t, "::/synced.txt"]));
    assert_eq!(t, "synced-data\n");
    let l = run(Command::new("mdir").args(["-a", "-i", &synced_t, "::/"]));
    assert!(l.contains("dir ") || l.contains("DIR"), "{l}");
    let f = Command::new(sbin("fsck.vfat"))
        .arg("-n")
        .arg(&synced)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&f.stdout).to_lowercase();
    assert!(
        text.contains("dirty bit is set"),
        "a read-write mount marks the volume dirty until unmounted: {text}"
    );
    for bad in [
        "free cluster",
        "reclaim",
        "lost",
        "truncat",
        "orphan",
        "circular",
        "wrong",
        "unused",
    ] {
        assert!(
            !text.contains(bad),
            "fsck.vfat -n after sync and power-off: {text}"
        );
    }
    // The host's view.
    let want = tree(&host_workload(&dir, &src));
    let rand = out
        .lines()
        .find_map(|l| l.strip_prefix("RAND5 "))
        .map(|s| s.split_whitespace().next().unwrap_or("").to_string())
        .expect("RAND5 line");
    for (img, target, partitioned, label) in [
        (&img32, &t32, true, "fat32"),
        (&img16, &t16, false, "fat16"),
    ] {
        fsck_clean(&volume_of(img, partitioned));
        let got = tree(&extract(&dir, target, &format!("out-{label}")));
        let mut want = want.clone();
        if label == "fat32" {
            want.insert("./rand5.bin".into(), Some(rand.clone()));
        }
        assert_trees(label, &got, &want);
        let t = run(Command::new("mtype").args([
            "-i",
            target,
            "::/a new directory/with a long nested name/deeper/f.txt",
        ]));
        assert_eq!(t, "inner\n");
        let l = run(Command::new("mdir").args(["-a", "-i", target, "::/SHORTDIR"]));
        assert!(l.contains("UPPER    TXT") && l.contains("lower.txt"), "{l}");
    }
}

#[test]
fn vfat_rump_and_native_see_the_same_tree() {
    let name = "s16_fat-vfat_rump_and_native_see_the_same_tree";
    if !tools_available(name) {
        return;
    }
    if !rump_linked() {
        skip(
            name,
            "no NetBSD source: the kernel was built without the rump components",
        );
        return;
    }
    let dir = test_dir().join("disks").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let src = source_tree(&dir, false);
    let (img, target) = fat_image(&dir, "fat32.img", &src, 96, &["-F", "32"], true);
    // The same volume on a USB stick (NetBSD's USB stack gives /dev/sda1), for the native
    // driver on a USB block device.
    let stick = dir.join("stick.img");
    std::fs::copy(&img, &stick).unwrap();
    let stick_target = format!("{}@@{}", stick.display(), 2048 * 512);
    let bench = |d: &str| {
        format!(
            "mount -t vfat -o driver={d} /dev/vda1 /a || exit 20; \
             t0=$(cut -d' ' -f1 /proc/uptime); dd if=/dev/zero of=/a/w5-{d} bs=65536 count=80 2>/dev/null; sync; t1=$(cut -d' ' -f1 /proc/uptime); \
             umount /a; mount -t vfat -o driver={d} /dev/vda1 /a || exit 21; \
             t2=$(cut -d' ' -f1 /proc/uptime); dd if=/a/w5-{d} of=/dev/null bs=65536 2>/dev/null; t3=$(cut -d' ' -f1 /proc/uptime); \
             echo \"FATBENCH {d} zero-write+sync $t0 $t1 cold-read $t2 $t3\"; umount /a"
        )
    };
    let cmd = format!(
        "mkdir -p /a; grep '^vfat' /proc/drivers; \
         mount -t vfat -o ro,driver=native /dev/vda1 /a || exit 10; grep ' /a ' /proc/mounts; touch /a/x 2>/dev/null; echo \"RO-native=$?\"; {}; umount /a; \
         mount -t vfat -o ro,driver=rump /dev/vda1 /a || exit 11; grep ' /a ' /proc/mounts; touch /a/x 2>/dev/null; echo \"RO-rump=$?\"; {}; umount /a; \
         {}; {}; \
         i=0; while [ ! -e /dev/sda1 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; \
         mkdir -p /u; mount -t vfat -o driver=native /dev/sda1 /u || exit 30; grep ' /u ' /proc/mounts; {}; \
         echo 'written on a USB stick' > '/u/usb stick file.txt'; umount /u || exit 31; echo done",
        md5_cmd("/a", "NATIVE"),
        md5_cmd("/a", "RUMP"),
        bench("native"),
        bench("rump"),
        md5_cmd("/u", "USB"),
    );
    let (out, _) = boot(name, &cmd, &[&img], &[&stick], "");
    assert!(out.contains("/dev/sda1 /u vfat rw,driver=native"), "{out}");
    assert!(
        out.contains("vfat default=rump"),
        "rump is the default when started: {out}"
    );
    // (/proc/mounts says rw for every mount; the read-only mounts refuse a write.)
    assert!(out.contains("/dev/vda1 /a vfat rw,driver=native"), "{out}");
    assert!(out.contains("/dev/vda1 /a vfat rw,driver=rump"), "{out}");
    assert!(
        !out.contains("RO-native=0") && out.contains("RO-native="),
        "{out}"
    );
    assert!(
        !out.contains("RO-rump=0") && out.contains("RO-rump="),
        "{out}"
    );
    let want = tree(&src);
    let native = guest_md5s(&out, "NATIVE");
    let rump = guest_md5s(&out, "RUMP");
    assert_eq!(native, files_only(&want), "native checksums");
    assert_eq!(rump, native, "rump and native see different files");
    assert_eq!(guest_md5s(&out, "USB"), native, "native FAT on a USB stick");
    let list = |tag: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("LIST {tag} ")))
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(
        list("NATIVE"),
        list("RUMP"),
        "`find | sort` differs between the stacks"
    );
    assert!(list("NATIVE").starts_with(&listing_md5(&want)), "{out}");
    bench_lines(&out);
    fsck_clean(&volume_of(&img, true));
    let got = tree(&extract(&dir, &target, "out"));
    let mut want = want;
    let z = md5(&vec![0u8; 80 * 65536]);
    want.insert("./w5-native".into(), Some(z.clone()));
    want.insert("./w5-rump".into(), Some(z));
    assert_trees("after both stacks", &got, &want);
    fsck_clean(&volume_of(&stick, true));
    let t = run(Command::new("mtype").args(["-i", &stick_target, "::/usb stick file.txt"]));
    assert_eq!(t, "written on a USB stick\n");
}
