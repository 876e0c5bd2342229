//! Host-side helpers for the USB-stick tests (s11 on the rump stack, s15 on the native
//! one): the file tree a stick is made from, checksums on both sides, partition tables, and
//! the host tools (mke2fs, mkfs.vfat, mtools, e2fsck) run with their output checked.

use std::path::{Path, PathBuf};
use std::process::Command;

pub const MIB: u64 = 1 << 20;

pub fn guest_sums(out: &str, tag: &str) -> Vec<String> {
    let mut v: Vec<String> = out
        .lines()
        .filter_map(|l| l.strip_prefix(tag))
        .map(|l| format!("SUM {l}"))
        .collect();
    v.sort();
    v
}

/// `SUM <md5> ./<path>` for every file under `root`, sorted.
pub fn host_sums(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                let sum = run(Command::new("md5sum").arg(&p));
                let sum = sum.split_whitespace().next().unwrap_or("").to_string();
                out.push(format!("SUM {sum} ./{rel}"));
            }
        }
    }
    let mut v = Vec::new();
    walk(root, root, &mut v);
    v.sort();
    v
}

/// Deterministic pseudo-random bytes.
pub fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 7) as u8
        })
        .collect()
}

pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn sbin(tool: &str) -> String {
    for d in ["/usr/sbin", "/sbin"] {
        let p = Path::new(d).join(tool);
        if p.is_file() {
            return p.display().to_string();
        }
    }
    tool.to_string()
}

/// The tree the sticks carry: long names with spaces, nesting, a 24 MB file.
pub fn source_tree(dir: &Path) -> PathBuf {
    let src = dir.join("src");
    let _ = std::fs::remove_dir_all(&src);
    std::fs::create_dir_all(src.join("dir with spaces/deeper level")).unwrap();
    std::fs::write(src.join("hello.txt"), "hello from the host\n").unwrap();
    std::fs::write(
        src.join("A Long File Name With Spaces.txt"),
        pattern(5_000, 1),
    )
    .unwrap();
    std::fs::write(
        src.join("dir with spaces/another long name.dat"),
        pattern(300_000, 2),
    )
    .unwrap();
    std::fs::write(src.join("dir with spaces/deeper level/small"), "x\n").unwrap();
    std::fs::write(src.join("big file.bin"), pattern(24_000_000, 3)).unwrap();
    src
}

/// Shell: wait (bounded) for a device node (sticks attach asynchronously).
pub fn wait_for(dev: &str) -> String {
    format!(
        "i=0; while [ ! -e {dev} ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; \
         [ -e {dev} ] || {{ echo NO-DEVICE {dev}; cat /proc/drivers; exit 9; }}; "
    )
}

/// Writes an MBR with one primary partition.
pub fn write_mbr(img: &Path, start: u32, count: u32, ty: u8) {
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
