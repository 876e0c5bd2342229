//! adros-ext2 against images made by the host's `mke2fs -d`, checked with `e2fsck -fn`.
//! Skips (with a message) when e2fsprogs is not installed.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use adros_ext2::{BlockDevice, Error, Ext2, Kind, ROOT_INO};

struct FileDev(fs::File);

impl BlockDevice for FileDev {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> adros_ext2::Result<()> {
        self.0.read_exact_at(buf, off).map_err(|_| Error::Io)
    }
    fn write_at(&self, off: u64, buf: &[u8]) -> adros_ext2::Result<()> {
        self.0.write_all_at(buf, off).map_err(|_| Error::Io)
    }
}

fn have_tools() -> bool {
    let ok = Command::new("mke2fs").arg("-V").output().is_ok()
        && Command::new("e2fsck").arg("-V").output().is_ok();
    if !ok {
        eprintln!("SKIPPED: e2fsprogs (mke2fs, e2fsck) not installed");
    }
    ok
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("adros-ext2-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

/// The source tree every image starts from.
fn populate(dir: &Path) {
    fs::write(dir.join("hello.txt"), b"hello, ext2\n").unwrap();
    fs::create_dir_all(dir.join("a/b/c")).unwrap();
    fs::write(dir.join("a/b/c/deep.txt"), b"deep\n").unwrap();
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(dir.join("a/big.bin"), &big).unwrap();
    std::os::unix::fs::symlink("hello.txt", dir.join("fast-link")).unwrap();
    let long = format!("{}/target", "x".repeat(100));
    std::os::unix::fs::symlink(&long, dir.join("slow-link")).unwrap();
    fs::hard_link(dir.join("hello.txt"), dir.join("hard-link")).unwrap();
    // A 20 MB sparse file with data at both ends and in the middle.
    let f = fs::File::create(dir.join("sparse")).unwrap();
    f.write_all_at(b"start", 0).unwrap();
    f.write_all_at(b"middle", 10_000_000).unwrap();
    f.write_all_at(b"end", 20_000_000 - 3).unwrap();
    fs::create_dir(dir.join("many")).unwrap();
    for i in 0..1000 {
        fs::write(dir.join(format!("many/file-{i:04}")), format!("{i}\n")).unwrap();
    }
}

fn mkfs(img: &Path, src: Option<&Path>, extra: &[&str], size: &str) {
    let _ = fs::remove_file(img);
    let mut c = Command::new("mke2fs");
    c.args(["-q", "-F", "-t", "ext2"]).args(extra);
    if let Some(s) = src {
        c.arg("-d").arg(s);
    }
    c.arg(img).arg(size);
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "mke2fs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn fsck_clean(img: &Path) {
    let out = Command::new("e2fsck")
        .args(["-fn"])
        .arg(img)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "e2fsck -fn not clean:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn open(img: &Path, ro: bool) -> Ext2<FileDev> {
    let f = fs::OpenOptions::new()
        .read(true)
        .write(!ro)
        .open(img)
        .unwrap();
    Ext2::open(FileDev(f), ro).unwrap()
}

fn read_all(fs: &mut Ext2<FileDev>, ino: u32) -> Vec<u8> {
    let size = fs.attr(ino).unwrap().size as usize;
    let mut v = vec![0u8; size];
    let mut off = 0;
    while off < size {
        let n = fs
            .read(ino, off as u64, &mut v[off..(off + 70_000).min(size)])
            .unwrap();
        assert!(n > 0);
        off += n;
    }
    v
}

fn walk(fs: &mut Ext2<FileDev>, path: &str) -> u32 {
    let mut ino = ROOT_INO;
    for c in path.split('/').filter(|c| !c.is_empty()) {
        ino = fs
            .lookup(ino, c.as_bytes())
            .unwrap_or_else(|e| panic!("lookup {c} in {path}: {e}"));
    }
    ino
}

fn attr_at(fs: &mut Ext2<FileDev>, path: &str) -> adros_ext2::Result<adros_ext2::Attr> {
    let i = walk(fs, path);
    fs.attr(i)
}

fn cat(fs: &mut Ext2<FileDev>, path: &str) -> Vec<u8> {
    let i = walk(fs, path);
    read_all(fs, i)
}

/// Every entry under `ino`, as path → (kind char, content or link target).
fn tree(
    fs: &mut Ext2<FileDev>,
    ino: u32,
    prefix: &str,
    out: &mut BTreeMap<String, (char, Vec<u8>)>,
) {
    let ents = fs.read_dir(ino, 0, usize::MAX).unwrap();
    for e in ents {
        let name = String::from_utf8(e.name.clone()).unwrap();
        if name == "." || name == ".." || name == "lost+found" {
            continue;
        }
        let p = format!("{prefix}/{name}");
        let a = fs.attr(e.ino).unwrap();
        if a.is_dir() {
            out.insert(p.clone(), ('d', vec![]));
            tree(fs, e.ino, &p, out);
        } else if a.is_symlink() {
            out.insert(p, ('l', fs.readlink(e.ino).unwrap()));
        } else {
            out.insert(p, ('f', read_all(fs, e.ino)));
        }
    }
}

fn host_tree(dir: &Path, prefix: &str, out: &mut BTreeMap<String, (char, Vec<u8>)>) {
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        let p = format!("{prefix}/{name}");
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            out.insert(p.clone(), ('d', vec![]));
            host_tree(&e.path(), &p, out);
        } else if ft.is_symlink() {
            out.insert(
                p,
                (
                    'l',
                    fs::read_link(e.path())
                        .unwrap()
                        .into_os_string()
                        .into_encoded_bytes(),
                ),
            );
        } else {
            out.insert(p, ('f', fs::read(e.path()).unwrap()));
        }
    }
}

fn check_read(extra: &[&str], tag: &str, index_dirs: bool) {
    if !have_tools() {
        return;
    }
    let d = scratch(tag);
    let src = d.join("src");
    fs::create_dir(&src).unwrap();
    populate(&src);
    let img = d.join("img");
    mkfs(&img, Some(&src), extra, "64M");
    if index_dirs {
        // Build htree indexes for the large directory.
        let _ = Command::new("e2fsck")
            .args(["-fyD"])
            .arg(&img)
            .output()
            .unwrap();
    }
    fsck_clean(&img);
    let mut fs = open(&img, true);
    let mut got = BTreeMap::new();
    tree(&mut fs, ROOT_INO, "", &mut got);
    let mut want = BTreeMap::new();
    host_tree(&src, "", &mut want);
    assert_eq!(got.len(), want.len());
    for (k, v) in &want {
        assert_eq!(got.get(k), Some(v), "{k} differs");
    }
    let a = attr_at(&mut fs, "hello.txt").unwrap();
    assert_eq!(a.nlink, 2);
    let sp = attr_at(&mut fs, "sparse").unwrap();
    assert_eq!(sp.size, 20_000_000);
    assert!(
        sp.blocks < 200,
        "sparse file allocated {} sectors",
        sp.blocks
    );
    if index_dirs {
        let many = attr_at(&mut fs, "many").unwrap();
        assert!(
            many.flags & 0x1000 != 0,
            "e2fsck -D did not index the directory"
        );
    }
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn read_rev1_1k() {
    check_read(&["-b", "1024"], "r1k", false);
}

#[test]
fn read_rev1_4k() {
    check_read(&["-b", "4096"], "r4k", false);
}

#[test]
fn read_rev0() {
    check_read(&["-r", "0"], "rev0", false);
}

#[test]
fn read_htree() {
    check_read(&["-b", "1024"], "htree", true);
}

fn write_workload(extra: &[&str], tag: &str, index_dirs: bool) {
    if !have_tools() {
        return;
    }
    let d = scratch(tag);
    let src = d.join("src");
    fs::create_dir(&src).unwrap();
    populate(&src);
    let img = d.join("img");
    mkfs(&img, Some(&src), extra, "256M");
    if index_dirs {
        let _ = Command::new("e2fsck")
            .args(["-fyD"])
            .arg(&img)
            .output()
            .unwrap();
    }
    {
        let mut fs = open(&img, false);
        fs.clock = || 1_700_000_000;
        let root = ROOT_INO;
        // New files and directories.
        let dir = fs
            .create(root, b"new", Kind::Directory, 0o755, 0, 0)
            .unwrap();
        let f = fs
            .create(dir, b"f.txt", Kind::Regular, 0o644, 1000, 1000)
            .unwrap();
        assert_eq!(fs.write(f, 0, b"written by adros-ext2\n").unwrap(), 22);
        // Triple-indirect territory (1K blocks) and beyond 4 GiB: sparse writes.
        let big = fs.create(dir, b"huge", Kind::Regular, 0o644, 0, 0).unwrap();
        fs.write(big, 100 << 20, b"at 100 MiB").unwrap();
        if fs.revision() == 0 {
            // Revision 0 has no i_size_high.
            assert_eq!(fs.write(big, 5 << 30, b"at 5 GiB"), Err(Error::TooBig));
        } else {
            fs.write(big, 5 << 30, b"at 5 GiB").unwrap();
            assert_eq!(fs.attr(big).unwrap().size, (5 << 30) + 8);
            let mut b = [0u8; 8];
            fs.read(big, 5 << 30, &mut b).unwrap();
            assert_eq!(&b, b"at 5 GiB");
        }
        let mut b = [0u8; 10];
        fs.read(big, 100 << 20, &mut b).unwrap();
        assert_eq!(&b, b"at 100 MiB");
        fs.read(big, 50 << 20, &mut b).unwrap();
        assert_eq!(b, [0; 10]);
        // A 5 MB file written in odd-sized pieces, read back.
        let data: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
        let w = fs.create(dir, b"five", Kind::Regular, 0o600, 0, 0).unwrap();
        let mut off = 0;
        for chunk in data.chunks(7777) {
            fs.write(w, off as u64, chunk).unwrap();
            off += chunk.len();
        }
        assert_eq!(read_all(&mut fs, w), data);
        fs.truncate(w, 1_234_567).unwrap();
        assert_eq!(read_all(&mut fs, w), &data[..1_234_567]);
        // Symlinks, hard links, device nodes.
        let s = fs
            .create(dir, b"short", Kind::Symlink(b"f.txt"), 0o777, 0, 0)
            .unwrap();
        assert_eq!(fs.readlink(s).unwrap(), b"f.txt");
        let long = vec![b'y'; 300];
        let s2 = fs
            .create(dir, b"long", Kind::Symlink(&long), 0o777, 0, 0)
            .unwrap();
        assert_eq!(fs.readlink(s2).unwrap(), long);
        fs.link(root, b"f-again", f).unwrap();
        assert_eq!(fs.attr(f).unwrap().nlink, 2);
        let n = fs
            .create(dir, b"null", Kind::CharDev(1, 3), 0o666, 0, 0)
            .unwrap();
        assert_eq!(fs.attr(n).unwrap().rdev, (1, 3));
        fs.create(dir, b"fifo", Kind::Fifo, 0o644, 0, 0).unwrap();
        // Errors.
        assert_eq!(
            fs.create(dir, b"f.txt", Kind::Regular, 0o644, 0, 0),
            Err(Error::Exists)
        );
        assert_eq!(fs.unlink(root, b"new", true), Err(Error::NotEmpty));
        assert_eq!(fs.lookup(root, b"nope"), Err(Error::NotFound));
        // Renames: within a directory, across directories, a directory, over a file.
        fs.rename(root, b"hello.txt", root, b"hello2.txt").unwrap();
        fs.rename(root, b"a", dir, b"moved-a").unwrap();
        assert_eq!(
            {
                let i = walk(&mut fs, "new/moved-a");
                fs.parent(i)
            }
            .unwrap(),
            dir
        );
        let over = fs
            .create(root, b"victim", Kind::Regular, 0o644, 0, 0)
            .unwrap();
        fs.write(over, 0, &[1; 5000]).unwrap();
        let gone = fs.rename(root, b"hard-link", root, b"victim").unwrap();
        assert_eq!(gone, Some(over));
        fs.evict(over).unwrap();
        // Unlink in the big (possibly indexed) directory, add to it.
        let many = walk(&mut fs, "many");
        for i in (0..1000).step_by(3) {
            let (ino, last) = fs
                .unlink(many, format!("file-{i:04}").as_bytes(), false)
                .unwrap();
            assert!(last);
            fs.evict(ino).unwrap();
        }
        for i in 0..300 {
            fs.create(
                many,
                format!("added-with-a-longer-name-{i}").as_bytes(),
                Kind::Regular,
                0o644,
                0,
                0,
            )
            .unwrap();
        }
        assert_eq!(
            fs.read_dir(many, 0, usize::MAX).unwrap().len(),
            2 + 1000 - 334 + 300
        );
        // mkdir/rmdir, and removing the sparse file (frees indirect blocks).
        fs.create(root, b"tmpdir", Kind::Directory, 0o700, 0, 0)
            .unwrap();
        fs.unlink(root, b"tmpdir", true)
            .map(|(i, _)| fs.evict(i))
            .unwrap()
            .unwrap();
        let (sp, _) = fs.unlink(root, b"sparse", false).unwrap();
        fs.evict(sp).unwrap();
        fs.unmount().unwrap();
    }
    fsck_clean(&img);
    // Reopen and check what we wrote survived.
    let mut fs = open(&img, true);
    let f = walk(&mut fs, "new/f.txt");
    assert_eq!(read_all(&mut fs, f), b"written by adros-ext2\n");
    assert_eq!(cat(&mut fs, "hello2.txt"), b"hello, ext2\n");
    assert_eq!(cat(&mut fs, "victim"), b"hello, ext2\n");
    assert_eq!(cat(&mut fs, "new/moved-a/b/c/deep.txt"), b"deep\n");
    assert_eq!(fs.lookup(ROOT_INO, b"sparse"), Err(Error::NotFound));
    // The host's debugfs agrees.
    let out = Command::new("debugfs")
        .args(["-R", "cat /new/f.txt"])
        .arg(&img)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "written by adros-ext2\n"
    );
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn write_rev1_1k() {
    write_workload(&["-b", "1024"], "w1k", false);
}

#[test]
fn write_rev1_4k_htree() {
    write_workload(&["-b", "4096"], "w4k", true);
}

#[test]
fn write_rev0() {
    write_workload(&["-r", "0"], "w0", false);
}

#[test]
fn fill_the_disk_then_free() {
    if !have_tools() {
        return;
    }
    let d = scratch("full");
    let img = d.join("img");
    mkfs(&img, None, &["-b", "1024"], "4M");
    {
        let mut fs = open(&img, false);
        let f = fs
            .create(ROOT_INO, b"fill", Kind::Regular, 0o644, 0, 0)
            .unwrap();
        let chunk = vec![7u8; 65536];
        let mut off = 0u64;
        loop {
            match fs.write(f, off, &chunk) {
                Ok(n) => off += n as u64,
                Err(Error::NoSpace) => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert!(off > 3_000_000, "only {off} bytes fit");
        assert_eq!(fs.statfs().free_blocks, 0);
        fs.unmount().unwrap();
    }
    fsck_clean(&img);
    {
        let mut fs = open(&img, false);
        let (i, _) = fs.unlink(ROOT_INO, b"fill", false).unwrap();
        fs.evict(i).unwrap();
        fs.unmount().unwrap();
    }
    fsck_clean(&img);
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn features_refuse_or_read_only() {
    if !have_tools() {
        return;
    }
    let d = scratch("feat");
    let img = d.join("img");
    mkfs(&img, None, &[], "8M");
    let mut raw = fs::read(&img).unwrap();
    // An unknown incompatible feature: refuse.
    let mut bad = raw.clone();
    bad[1024 + 96 + 3] |= 0x80;
    let dev = adros_ext2::MemDevice(std::cell::RefCell::new(bad));
    match Ext2::open(dev, false) {
        Err(Error::Unsupported(b)) => assert_eq!(b, 0x8000_0000),
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("mounted an unknown incompat feature"),
    }
    // An unknown read-only-compatible feature: read-only.
    raw[1024 + 100 + 3] |= 0x80;
    let dev = adros_ext2::MemDevice(std::cell::RefCell::new(raw));
    let mut fs = Ext2::open(dev, false).unwrap();
    assert!(fs.is_read_only());
    assert_eq!(
        fs.create(ROOT_INO, b"x", Kind::Regular, 0o644, 0, 0),
        Err(Error::ReadOnly)
    );
    let _ = fs::remove_dir_all(&d);
}

/// Random corruption of the metadata areas: every operation returns, none panics.
#[test]
fn corruption_never_panics() {
    if !have_tools() {
        return;
    }
    let d = scratch("fuzz");
    let src = d.join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("f"), vec![3u8; 50_000]).unwrap();
    fs::create_dir_all(src.join("d/e")).unwrap();
    for i in 0..60 {
        fs::write(src.join(format!("d/n{i}")), b"x").unwrap();
    }
    std::os::unix::fs::symlink("f", src.join("l")).unwrap();
    let img = d.join("img");
    mkfs(&img, Some(&src), &["-b", "1024", "-N", "128"], "2M");
    let pristine = fs::read(&img).unwrap();
    let mut seed = 0x1234_5678_9abc_def0u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    // Superblock, group descriptors, bitmaps and the start of the inode table, and the
    // first data blocks (directories).
    let hot = 1024..(64 * 1024).min(pristine.len());
    let mut mounted = 0;
    for _round in 0..400 {
        let mut img = pristine.clone();
        for _ in 0..(1 + rnd() % 8) {
            let at = hot.start + (rnd() as usize % hot.len());
            img[at] = rnd() as u8;
        }
        let dev = adros_ext2::MemDevice(std::cell::RefCell::new(img));
        let Ok(mut fs) = Ext2::open(dev, false) else {
            continue;
        };
        mounted += 1;
        exercise(&mut fs, ROOT_INO, 0);
        let _ = fs
            .create(ROOT_INO, b"new", Kind::Regular, 0o644, 0, 0)
            .and_then(|i| fs.write(i, 0, &[9; 3000]));
        let _ = fs
            .unlink(ROOT_INO, b"f", false)
            .and_then(|(i, _)| fs.evict(i));
        let _ = fs.rename(ROOT_INO, b"d", ROOT_INO, b"d2");
        let _ = fs.unmount();
    }
    assert!(
        mounted > 50,
        "only {mounted} corrupt images mounted; the fuzzing is too coarse"
    );
    let _ = fs::remove_dir_all(&d);
}

fn exercise<D: BlockDevice>(fs: &mut Ext2<D>, dir: u32, depth: usize) {
    if depth > 4 {
        return;
    }
    let Ok(ents) = fs.read_dir(dir, 0, 500) else {
        return;
    };
    for e in ents {
        if e.name == b"." || e.name == b".." {
            continue;
        }
        let _ = fs.lookup(dir, &e.name);
        match fs.attr(e.ino) {
            Ok(a) if a.is_dir() => exercise(fs, e.ino, depth + 1),
            Ok(a) if a.is_symlink() => {
                let _ = fs.readlink(e.ino);
            }
            Ok(_) => {
                let mut b = vec![0u8; 70_000];
                let _ = fs.read(e.ino, 0, &mut b);
            }
            Err(_) => {}
        }
    }
}

/// Counts the device's requests and serves `read_many` with checks of its contract.
struct CountingDev {
    inner: FileDev,
    reads: std::cell::Cell<usize>,
    batches: std::cell::Cell<usize>,
    batched_ranges: std::cell::Cell<usize>,
}

impl BlockDevice for CountingDev {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> adros_ext2::Result<()> {
        self.reads.set(self.reads.get() + 1);
        self.inner.read_at(off, buf)
    }
    fn write_at(&self, off: u64, buf: &[u8]) -> adros_ext2::Result<()> {
        self.inner.write_at(off, buf)
    }
    fn read_many(&self, reqs: &mut [(u64, &mut [u8])]) -> adros_ext2::Result<()> {
        assert!(!reqs.is_empty());
        self.batches.set(self.batches.get() + 1);
        self.batched_ranges
            .set(self.batched_ranges.get() + reqs.len());
        // Served in reverse, as a device completing out of order might.
        for (off, buf) in reqs.iter_mut().rev() {
            assert!(!buf.is_empty());
            self.inner.read_at(*off, buf)?;
        }
        Ok(())
    }
}

/// Whole-block reads go to the device as a few long, batched requests, at any alignment,
/// and read the same bytes as small reads.
#[test]
fn batched_contiguous_reads() {
    if !have_tools() {
        return;
    }
    for bsz in ["1024", "4096"] {
        let d = scratch(&format!("batch{bsz}"));
        let src = d.join("src");
        fs::create_dir(&src).unwrap();
        populate(&src);
        let img = d.join("img");
        mkfs(&img, Some(&src), &["-b", bsz], "64M");
        let f = fs::OpenOptions::new().read(true).open(&img).unwrap();
        let dev = CountingDev {
            inner: FileDev(f),
            reads: 0.into(),
            batches: 0.into(),
            batched_ranges: 0.into(),
        };
        let mut fs = Ext2::open(dev, true).unwrap();
        let want = fs::read(src.join("a/big.bin")).unwrap();
        let ino = walk_any(&mut fs, "a/big.bin");
        for (start, len) in [
            (0usize, want.len()),
            (1, 1 << 20),
            (4095, 2_000_001),
            (want.len() - 5000, 4999),
        ] {
            let mut got = vec![0u8; len];
            let r0 = fs.device().reads.get();
            let b0 = fs.device().batches.get();
            let n = fs.read(ino, start as u64, &mut got).unwrap();
            assert_eq!(n, len);
            assert!(
                got == want[start..start + len],
                "bs {bsz}: read at {start}+{len} differs"
            );
            let small = fs.device().reads.get() - r0;
            let batches = fs.device().batches.get() - b0;
            assert!(batches <= 1, "one read() made {batches} batches");
            if len > 1 << 20 {
                // Metadata (indirect blocks) and edge blocks only: far fewer than one per block.
                let blocks = len / bsz.parse::<usize>().unwrap();
                assert!(
                    small < blocks / 32,
                    "bs {bsz}: {small} single reads for {blocks} blocks"
                );
            }
        }
        // The whole file in one read: every run went into one batch.
        let sparse = walk_any(&mut fs, "sparse");
        let mut sp = vec![1u8; 20_000_000];
        assert_eq!(fs.read(sparse, 0, &mut sp).unwrap(), sp.len());
        assert_eq!(&sp[..5], b"start");
        assert_eq!(&sp[10_000_000..10_000_006], b"middle");
        assert!(sp[100..9_000_000].iter().all(|&b| b == 0));
        assert!(fs.device().batched_ranges.get() >= fs.device().batches.get());
        let _ = fs::remove_dir_all(&d);
    }
}

fn walk_any<D: BlockDevice>(fs: &mut Ext2<D>, path: &str) -> u32 {
    let mut ino = ROOT_INO;
    for c in path.split('/').filter(|c| !c.is_empty()) {
        ino = fs.lookup(ino, c.as_bytes()).unwrap();
    }
    ino
}

/// The directory-entry cache stays right across create, rename (within and across
/// directories, replacing a target, moving a directory) and unlink: every answer matches
/// a fresh mount's (which builds its indexes from the disk), negative lookups included,
/// and the image is e2fsck-clean.
#[test]
fn dentry_cache_invalidation() {
    if !have_tools() {
        return;
    }
    let d = scratch("dcache");
    let img = d.join("fs.img");
    mkfs(&img, None, &["-b", "1024"], "8M");
    let mut fs = open(&img, false);
    let a = fs
        .create(ROOT_INO, b"a", Kind::Directory, 0o755, 0, 0)
        .unwrap();
    let b = fs
        .create(ROOT_INO, b"b", Kind::Directory, 0o755, 0, 0)
        .unwrap();
    // Enough names for several directory blocks; each looked up (index built) and missed.
    let mut inos = BTreeMap::new();
    for i in 0..300 {
        let n = format!("file-{i:03}");
        assert_eq!(fs.lookup(a, n.as_bytes()), Err(Error::NotFound));
        let ino = fs
            .create(a, n.as_bytes(), Kind::Regular, 0o644, 0, 0)
            .unwrap();
        assert_eq!(fs.lookup(a, n.as_bytes()), Ok(ino));
        inos.insert(n, ino);
    }
    // Rename within a directory: the old name is gone, the new one found.
    fs.rename(a, b"file-000", a, b"renamed").unwrap();
    assert_eq!(fs.lookup(a, b"file-000"), Err(Error::NotFound));
    assert_eq!(fs.lookup(a, b"renamed"), Ok(inos["file-000"]));
    // Rename over an existing name: the target's entry now points at the source.
    let gone = fs.rename(a, b"file-001", a, b"file-002").unwrap();
    assert_eq!(gone, Some(inos["file-002"]));
    fs.evict(inos["file-002"]).unwrap();
    assert_eq!(fs.lookup(a, b"file-001"), Err(Error::NotFound));
    assert_eq!(fs.lookup(a, b"file-002"), Ok(inos["file-001"]));
    // Across directories.
    fs.rename(a, b"file-003", b, b"moved").unwrap();
    assert_eq!(fs.lookup(a, b"file-003"), Err(Error::NotFound));
    assert_eq!(fs.lookup(b, b"moved"), Ok(inos["file-003"]));
    // A directory moved: its `..` follows.
    let sub = fs.create(a, b"sub", Kind::Directory, 0o755, 0, 0).unwrap();
    assert_eq!(fs.lookup(sub, b".."), Ok(a));
    fs.rename(a, b"sub", b, b"sub").unwrap();
    assert_eq!(fs.lookup(sub, b".."), Ok(b));
    assert_eq!(fs.lookup(a, b"sub"), Err(Error::NotFound));
    // Unlink, then the same name again gets a new entry.
    let (ino, last) = fs.unlink(a, b"file-004", false).unwrap();
    assert!(last);
    fs.evict(ino).unwrap();
    assert_eq!(fs.lookup(a, b"file-004"), Err(Error::NotFound));
    let again = fs
        .create(a, b"file-004", Kind::Regular, 0o644, 0, 0)
        .unwrap();
    assert_eq!(fs.lookup(a, b"file-004"), Ok(again));
    // Remove a directory, then reuse its inode number for a new directory: the old
    // directory's index must not answer for the new one.
    fs.unlink(b, b"sub", true).unwrap();
    fs.evict(sub).unwrap();
    let fresh = fs
        .create(b, b"fresh", Kind::Directory, 0o755, 0, 0)
        .unwrap();
    assert_eq!(fs.lookup(fresh, b".."), Ok(b));
    assert_eq!(fs.lookup(fresh, b".."), Ok(b));
    // Unlink most names (whole blocks emptied), then refill: lands in the freed room.
    for i in 5..250 {
        let n = format!("file-{i:03}");
        let (ino, _) = fs.unlink(a, n.as_bytes(), false).unwrap();
        fs.evict(ino).unwrap();
        assert_eq!(fs.lookup(a, n.as_bytes()), Err(Error::NotFound));
    }
    let size_before = fs.attr(a).unwrap().size;
    for i in 0..200 {
        let n = format!("new-{i:03}");
        fs.create(a, n.as_bytes(), Kind::Regular, 0o644, 0, 0)
            .unwrap();
    }
    assert_eq!(
        fs.attr(a).unwrap().size,
        size_before,
        "freed room not reused"
    );
    // What this mount sees, against a fresh mount's view built from the disk.
    let names = |fs: &mut Ext2<FileDev>, dir: u32| -> Vec<(Vec<u8>, u32)> {
        let mut v: Vec<_> = fs
            .read_dir(dir, 0, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|e| (e.name, e.ino))
            .collect();
        v.sort();
        v
    };
    let (la, lb) = (names(&mut fs, a), names(&mut fs, b));
    for (n, ino) in la.iter() {
        assert_eq!(fs.lookup(a, n), Ok(*ino), "{}", String::from_utf8_lossy(n));
    }
    fs.unmount().unwrap();
    drop(fs);
    fsck_clean(&img);
    let mut fs = open(&img, false);
    assert_eq!(names(&mut fs, a), la);
    assert_eq!(names(&mut fs, b), lb);
    for (n, ino) in la.iter() {
        assert_eq!(fs.lookup(a, n), Ok(*ino));
    }
    assert_eq!(fs.lookup(a, b"file-000"), Err(Error::NotFound));
    assert_eq!(fs.lookup(b, b"moved"), Ok(inos["file-003"]));
    fs.unmount().unwrap();
    let _ = fs::remove_dir_all(&d);
}

/// A large directory indexed by e2fsck (`-D` on a `dir_index` file system) is read, looked
/// up name by name (hits and misses), then grown: the index flag goes as Linux's ext2 does,
/// every name is still found after a remount, and e2fsck finds the image clean.
#[test]
fn htree_directory_lookup_and_insert() {
    if !have_tools() {
        return;
    }
    let d = scratch("htree-big");
    let src = d.join("src");
    fs::create_dir_all(src.join("big")).unwrap();
    for i in 0..3000 {
        fs::write(
            src.join(format!("big/entry-with-a-longer-name-{i:05}")),
            b"",
        )
        .unwrap();
    }
    let img = d.join("fs.img");
    mkfs(
        &img,
        Some(&src),
        &["-O", "dir_index", "-b", "1024", "-N", "8192"],
        "32M",
    );
    // Make e2fsck build the hash index of every directory.
    let out = Command::new("e2fsck")
        .args(["-fyD"])
        .arg(&img)
        .output()
        .unwrap();
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "e2fsck -fyD failed"
    );
    fsck_clean(&img);
    let mut fs = open(&img, false);
    let big = walk(&mut fs, "big");
    assert_ne!(
        fs.attr(big).unwrap().flags & 0x1000,
        0,
        "e2fsck -D did not index the directory"
    );
    for i in (0..3000).rev() {
        let n = format!("entry-with-a-longer-name-{i:05}");
        assert!(fs.lookup(big, n.as_bytes()).is_ok(), "{n} not found");
    }
    assert_eq!(
        fs.lookup(big, b"entry-with-a-longer-name-99999"),
        Err(Error::NotFound)
    );
    // Every one of those went through the hash index, none through a scan of the directory.
    let (_, builds, htree) = fs.dir_stats();
    assert_eq!(htree, 3001, "lookups through the htree index");
    assert_eq!(builds, 1, "only the root directory was scanned");
    assert_eq!(fs.read_dir(big, 0, usize::MAX).unwrap().len(), 3002);
    for i in 0..1500 {
        let n = format!("added-{i:05}");
        fs.create(big, n.as_bytes(), Kind::Regular, 0o644, 0, 0)
            .unwrap();
    }
    for i in (0..3000).step_by(2) {
        let n = format!("entry-with-a-longer-name-{i:05}");
        let (ino, _) = fs.unlink(big, n.as_bytes(), false).unwrap();
        fs.evict(ino).unwrap();
    }
    fs.unmount().unwrap();
    drop(fs);
    fsck_clean(&img);
    let mut fs = open(&img, true);
    for i in 0..1500 {
        let n = format!("added-{i:05}");
        assert!(fs.lookup(big, n.as_bytes()).is_ok(), "{n} lost");
    }
    for i in 0..3000 {
        let n = format!("entry-with-a-longer-name-{i:05}");
        assert_eq!(fs.lookup(big, n.as_bytes()).is_ok(), i % 2 == 1, "{n}");
    }
    assert_eq!(fs.read_dir(big, 0, usize::MAX).unwrap().len(), 3002);
    let _ = fs::remove_dir_all(&d);
}

/// The directory hashes (legacy, half-MD4, TEA; signed and unsigned chars; default and
/// given seed) agree with e2fsprogs's `debugfs dx_hash` on names of every length class.
#[test]
fn htree_hash_matches_debugfs() {
    if !have_tools() {
        return;
    }
    let seed_text = "01234567-89ab-cdef-fedc-ba9876543210";
    let hex: Vec<u8> = seed_text
        .replace('-', "")
        .as_bytes()
        .chunks(2)
        .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 16).unwrap())
        .collect();
    let seed: [u32; 4] =
        core::array::from_fn(|i| u32::from_le_bytes(hex[i * 4..i * 4 + 4].try_into().unwrap()));
    let mut names: Vec<Vec<u8>> = vec![
        b"a".to_vec(),
        b"entry-000001".to_vec(),
        b"x".repeat(15),
        b"y".repeat(16),
        b"z".repeat(31),
        b"w".repeat(32),
        b"v".repeat(33),
        b"long-name-".repeat(25),
    ];
    names.push("naïve-éàü".as_bytes().to_vec());
    let algs = [
        ("legacy", 0u8),
        ("half_md4", 1),
        ("tea", 2),
        ("legacy_unsigned", 3),
        ("half_md4_unsigned", 4),
        ("tea_unsigned", 5),
    ];
    let mut cmds = String::new();
    let mut want = Vec::new();
    for n in &names {
        for (alg, v) in algs {
            for s in [None, Some(seed_text)] {
                let arg = std::str::from_utf8(n).unwrap();
                match s {
                    // By number: debugfs knows no names for the unsigned variants.
                    Some(st) => cmds.push_str(&format!("dx_hash -h {v} -s {st} {arg}\n")),
                    None => cmds.push_str(&format!("dx_hash -h {v} {arg}\n")),
                }
                want.push((
                    arg.to_string(),
                    alg,
                    Ext2::<FileDev>::dir_hash(n, v, if s.is_some() { seed } else { [0; 4] })
                        .unwrap(),
                ));
            }
        }
    }
    let d = scratch("dxhash");
    let script = d.join("cmds");
    fs::write(&script, cmds).unwrap();
    let out = Command::new("debugfs")
        .arg("-f")
        .arg(&script)
        .arg("/dev/null")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let got: Vec<u32> = text
        .lines()
        .filter_map(|l| l.split(" is 0x").nth(1))
        .map(|h| u32::from_str_radix(h.split_whitespace().next().unwrap(), 16).unwrap())
        .collect();
    assert_eq!(got.len(), want.len(), "debugfs printed:\n{text}");
    for ((name, alg, ours), theirs) in want.iter().zip(got) {
        assert_eq!(
            *ours, theirs,
            "{alg} hash of {name:?}: ours {ours:#x}, debugfs {theirs:#x}"
        );
    }
    let _ = fs::remove_dir_all(&d);
}
