//! adros-fat on real images: `mkfs.vfat` makes FAT12/16/32 volumes (several sector and
//! cluster sizes), `mtools` fills them; the crate must read them byte-exact (long names,
//! NT lower-case short names, a deep tree, a big file). The crate then runs a write
//! workload; `fsck.vfat -n` must find the image clean and mtools must see exactly the
//! expected tree (`mcopy -s` out of the image, compared with a host copy; `mtype`, `mdir`).
//! Corrupted images give errors, never a panic or a hang. Skipped (with a message) when
//! dosfstools or mtools are missing.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use adros_fat::{BlockDevice, Error, Fat, FatType, NodeId, ROOT, Result};

struct Mem(RefCell<Vec<u8>>);

impl BlockDevice for Mem {
    fn sectors(&self) -> u64 {
        self.0.borrow().len() as u64 / 512
    }
    fn read_sectors(&self, s: u64, buf: &mut [u8]) -> Result<()> {
        let d = self.0.borrow();
        let a = s as usize * 512;
        let b = d.get(a..a + buf.len()).ok_or(Error::Io)?;
        buf.copy_from_slice(b);
        Ok(())
    }
    fn write_sectors(&self, s: u64, buf: &[u8]) -> Result<()> {
        let mut d = self.0.borrow_mut();
        let a = s as usize * 512;
        d.get_mut(a..a + buf.len())
            .ok_or(Error::Io)?
            .copy_from_slice(buf);
        Ok(())
    }
    fn flush(&self) -> Result<()> {
        Ok(())
    }
}

fn tools(test: &str) -> bool {
    let ok = ["mkfs.vfat", "fsck.vfat", "mcopy", "mmd", "mdir", "mtype"]
        .iter()
        .all(|t| {
            Command::new(t).arg("--help").output().is_ok()
                || Path::new("/usr/sbin").join(t).exists()
                || Path::new("/sbin").join(t).exists()
        });
    if !ok {
        eprintln!("SKIPPED {test}: dosfstools (mkfs.vfat, fsck.vfat) or mtools not installed");
    }
    ok
}

fn tool(name: &str) -> Command {
    for d in ["/usr/sbin", "/sbin"] {
        let p = Path::new(d).join(name);
        if p.exists() {
            return Command::new(p);
        }
    }
    Command::new(name)
}

fn run(mut c: Command) -> String {
    let out = c.env("MTOOLS_SKIP_CHECK", "1").output().expect("spawn");
    assert!(
        out.status.success(),
        "{c:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn work(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A known tree: long and Unicode names, 8.3 names in both cases, a deep tree, a big file,
/// an empty file and a directory with many entries.
fn make_tree(src: &Path, many: usize) {
    let w = |p: &str, data: &[u8]| {
        let p = src.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    };
    w("hello.txt", b"hello from the host\n");
    w("README.TXT", b"upper case 8.3\n");
    w("A rather long file name with spaces.text", b"long name\n");
    w("Ünïcödé – ☃.txt", "snow\n".as_bytes());
    w("empty", b"");
    w(".hidden", b"dot file\n");
    let big: Vec<u8> = (0..1_500_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    w("sub/big.bin", &big);
    let mut deep = String::from("deep");
    for i in 0..12 {
        deep.push_str(&format!("/level {i} with a long name"));
    }
    w(&format!("{deep}/bottom.txt"), b"at the bottom\n");
    for i in 0..many {
        w(
            &format!("many/file number {i:04}.dat"),
            format!("{i}\n").as_bytes(),
        );
    }
    std::fs::create_dir_all(src.join("emptydir")).unwrap();
}

fn mkfs(img: &Path, mib: u64, args: &[&str]) {
    let _ = std::fs::remove_file(img);
    let mut c = tool("mkfs.vfat");
    c.arg("-C")
        .args(args)
        .arg(img)
        .arg((mib * 1024).to_string());
    run(c);
}

fn mcopy_in(img: &Path, src: &Path) {
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let mut c = Command::new("mcopy");
        c.args(["-s", "-Q", "-i"]).arg(img).arg(e.path()).arg("::/");
        run(c);
    }
}

fn fsck_clean(img: &Path) {
    let out = tool("fsck.vfat").arg("-n").arg(img).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "fsck.vfat -n is not clean:\n{text}");
    assert!(
        !text.to_lowercase().contains("dirty bit"),
        "fsck.vfat reports the dirty bit:\n{text}"
    );
}

/// The tree under `root` on the host: path → Some(contents) for files, None for dirs.
fn host_tree(root: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    fn walk(root: &Path, d: &Path, out: &mut BTreeMap<String, Option<Vec<u8>>>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                out.insert(rel, None);
                walk(root, &p, out);
            } else {
                out.insert(rel, Some(std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut m = BTreeMap::new();
    walk(root, root, &mut m);
    m
}

fn read_all<D: BlockDevice>(fs: &mut Fat<D>, id: NodeId) -> Result<Vec<u8>> {
    let size = fs.attr(id)?.size as usize;
    let mut v = vec![0u8; size];
    // Odd-sized pieces to cross sector and cluster edges.
    let mut off = 0;
    while off < size {
        let n = (size - off).min(70_001);
        let got = fs.read(id, off as u64, &mut v[off..off + n])?;
        assert_eq!(got, n);
        off += n;
    }
    Ok(v)
}

/// The tree as the crate sees it.
fn fat_tree<D: BlockDevice>(fs: &mut Fat<D>) -> Result<BTreeMap<String, Option<Vec<u8>>>> {
    fn walk<D: BlockDevice>(
        fs: &mut Fat<D>,
        dir: NodeId,
        prefix: &str,
        out: &mut BTreeMap<String, Option<Vec<u8>>>,
    ) -> Result<()> {
        // A corrupted entry can point back at an ancestor: the walk (not the crate) stops.
        if prefix.matches('/').count() > 40 {
            return Err(Error::Corrupt("test walk too deep"));
        }
        let mut off = 0;
        let mut names = Vec::new();
        loop {
            let ents = fs.read_dir(dir, off, 7)?;
            if ents.is_empty() {
                break;
            }
            for e in ents {
                off = e.next;
                if e.name != "." && e.name != ".." {
                    names.push(e.name);
                }
            }
        }
        for n in names {
            let id = fs.lookup(dir, &n)?;
            let path = if prefix.is_empty() {
                n.clone()
            } else {
                format!("{prefix}/{n}")
            };
            if fs.attr(id)?.dir {
                assert!(out.insert(path.clone(), None).is_none(), "{path} twice");
                walk(fs, id, &path, out)?;
            } else {
                let data = read_all(fs, id)?;
                assert!(
                    out.insert(path.clone(), Some(data)).is_none(),
                    "{path} twice"
                );
            }
            fs.release(id)?;
        }
        Ok(())
    }
    let mut m = BTreeMap::new();
    walk(fs, ROOT, "", &mut m)?;
    Ok(m)
}

fn assert_same(
    what: &str,
    got: &BTreeMap<String, Option<Vec<u8>>>,
    want: &BTreeMap<String, Option<Vec<u8>>>,
) {
    let gk: Vec<_> = got.keys().collect();
    let wk: Vec<_> = want.keys().collect();
    if gk != wk {
        let missing: Vec<_> = wk.iter().filter(|k| !got.contains_key(**k)).collect();
        let extra: Vec<_> = gk.iter().filter(|k| !want.contains_key(**k)).collect();
        panic!("{what}: trees differ; missing {missing:?}, extra {extra:?}");
    }
    for (k, v) in want {
        assert!(got[k] == *v, "{what}: {k} differs");
    }
}

fn load(img: &Path) -> Mem {
    Mem(RefCell::new(std::fs::read(img).unwrap()))
}

fn save(img: &Path, m: &Mem) {
    std::fs::write(img, &*m.0.borrow()).unwrap();
}

const LAYOUTS: &[(&str, u64, &[&str], FatType)] = &[
    ("fat12", 12, &["-F", "12", "-s", "8"], FatType::Fat12),
    (
        "fat12-4k",
        12,
        &["-F", "12", "-S", "4096", "-s", "1"],
        FatType::Fat12,
    ),
    ("fat16", 32, &["-F", "16"], FatType::Fat16),
    ("fat16-s1", 30, &["-F", "16", "-s", "1"], FatType::Fat16),
    ("fat32", 64, &["-F", "32", "-s", "1"], FatType::Fat32),
    ("fat32-s8", 300, &["-F", "32", "-s", "8"], FatType::Fat32),
    (
        "fat32-2k",
        200,
        &["-F", "32", "-S", "2048", "-s", "1"],
        FatType::Fat32,
    ),
];

#[test]
fn reads_mtools_images_byte_exact() {
    if !tools("reads_mtools_images_byte_exact") {
        return;
    }
    for &(name, mib, args, ty) in LAYOUTS {
        let d = work(&format!("read-{name}"));
        let src = d.join("src");
        make_tree(&src, if ty == FatType::Fat12 { 150 } else { 300 });
        let img = d.join("img");
        mkfs(&img, mib, args);
        mcopy_in(&img, &src);
        let want = host_tree(&src);
        let mut fs = Fat::mount(load(&img), true).unwrap();
        assert_eq!(fs.fat_type(), ty, "{name}");
        let got = fat_tree(&mut fs).unwrap();
        assert_same(name, &got, &want);
        // Case-insensitive lookups and short aliases.
        let a = fs.lookup(ROOT, "HELLO.TXT").unwrap();
        let b = fs.lookup(ROOT, "hello.txt").unwrap();
        assert_eq!(a, b);
        let l = fs
            .lookup(ROOT, "A rather long file name with spaces.text")
            .unwrap();
        assert_eq!(
            fs.lookup(ROOT, "ARATHE~1.TEX").unwrap(),
            l,
            "{name}: short alias"
        );
        assert_eq!(fs.lookup(ROOT, "nope").unwrap_err(), Error::NotFound);
        assert_eq!(
            fs.create(ROOT, "x", false).unwrap_err(),
            Error::ReadOnly,
            "{name}: read-only mount"
        );
    }
}

/// Runs the same operations on the crate and on a host directory.
struct Twin<'a> {
    fs: Fat<Mem>,
    host: &'a Path,
}

impl Twin<'_> {
    fn walk(&mut self, path: &str) -> NodeId {
        let mut id = ROOT;
        for c in path.split('/').filter(|c| !c.is_empty()) {
            id = self
                .fs
                .lookup(id, c)
                .unwrap_or_else(|e| panic!("{path}: {e}"));
        }
        id
    }
    fn split(path: &str) -> (&str, &str) {
        match path.rfind('/') {
            Some(p) => (&path[..p], &path[p + 1..]),
            None => ("", path),
        }
    }
    fn mkdir(&mut self, path: &str) {
        let (d, n) = Self::split(path);
        let dir = self.walk(d);
        self.fs.create(dir, n, true).unwrap();
        std::fs::create_dir(self.host.join(path)).unwrap();
    }
    fn write(&mut self, path: &str, off: u64, data: &[u8]) {
        let (d, n) = Self::split(path);
        let dir = self.walk(d);
        let id = match self.fs.lookup(dir, n) {
            Ok(id) => id,
            Err(Error::NotFound) => self.fs.create(dir, n, false).unwrap(),
            Err(e) => panic!("{path}: {e}"),
        };
        assert_eq!(self.fs.write(id, off, data).unwrap(), data.len());
        let hp = self.host.join(path);
        let mut v = std::fs::read(&hp).unwrap_or_default();
        let end = off as usize + data.len();
        if v.len() < end {
            v.resize(end, 0);
        }
        v[off as usize..end].copy_from_slice(data);
        std::fs::write(hp, v).unwrap();
    }
    fn truncate(&mut self, path: &str, len: u64) {
        let id = self.walk(path);
        self.fs.truncate(id, len).unwrap();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(self.host.join(path))
            .unwrap();
        f.set_len(len).unwrap();
    }
    fn unlink(&mut self, path: &str) {
        let (d, n) = Self::split(path);
        let dir = self.walk(d);
        self.fs.unlink(dir, n, false).unwrap();
        std::fs::remove_file(self.host.join(path)).unwrap();
    }
    fn rmdir(&mut self, path: &str) {
        let (d, n) = Self::split(path);
        let dir = self.walk(d);
        self.fs.unlink(dir, n, true).unwrap();
        std::fs::remove_dir(self.host.join(path)).unwrap();
    }
    fn rename(&mut self, from: &str, to: &str) {
        let (d1, n1) = Self::split(from);
        let (d2, n2) = Self::split(to);
        let a = self.walk(d1);
        let b = self.walk(d2);
        self.fs.rename(a, n1, b, n2).unwrap();
        std::fs::rename(self.host.join(from), self.host.join(to)).unwrap();
    }
}

fn pattern(seed: u32, len: usize) -> Vec<u8> {
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

fn workload(t: &mut Twin<'_>, many: usize) {
    t.mkdir("work");
    t.mkdir("work/a directory with a long name");
    t.mkdir("work/a directory with a long name/nested");
    t.mkdir("work/a directory with a long name/nested/deeper still");
    t.write(
        "work/a directory with a long name/nested/deeper still/f.txt",
        0,
        b"deep\n",
    );
    for i in 0..many {
        t.write(
            &format!("work/file with a long name {i:03}.txt"),
            0,
            &pattern(i as u32, i * 37 % 3000),
        );
    }
    t.write("SHORT.TXT", 0, b"8.3 upper\n");
    t.write("lower.txt", 0, b"8.3 lower\n");
    t.write("Ünïcödé ☃ €.txt", 0, b"unicode\n");
    // Past the BMP (a surrogate pair in UCS-2): mtools cannot show it, the crate can.
    let id = t.fs.create(ROOT, "emoji 😀.txt", false).unwrap();
    assert_eq!(t.fs.lookup(ROOT, "EMOJI 😀.TXT").unwrap(), id);
    let names: Vec<String> =
        t.fs.read_dir(ROOT, 0, 10_000)
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
    assert!(names.iter().any(|n| n == "emoji 😀.txt"), "{names:?}");
    t.fs.unlink(ROOT, "emoji 😀.txt", false).unwrap();
    t.fs.release(id).unwrap();
    // A big file in odd pieces, spanning many clusters.
    let big = pattern(99, 3_000_000);
    let mut off = 0;
    for (k, chunk) in big.chunks(65_537).enumerate() {
        let _ = k;
        t.write("work/big.bin", off, chunk);
        off += chunk.len() as u64;
    }
    // Overwrite in the middle, write past the end (a zero-filled gap), truncate.
    t.write("work/big.bin", 1_000_000, &pattern(5, 10_000));
    t.write("gap.bin", 100_000, b"after the gap");
    t.truncate("work/big.bin", 2_500_001);
    t.write("trunc.bin", 0, &pattern(7, 50_000));
    t.truncate("trunc.bin", 10);
    t.truncate("trunc.bin", 20_000);
    // Deletes.
    for i in (0..many).step_by(3) {
        t.unlink(&format!("work/file with a long name {i:03}.txt"));
    }
    // Renames: within a directory, across, over an existing file, a directory across,
    // a case-only rename.
    t.rename(
        "work/file with a long name 001.txt",
        "work/renamed in place.txt",
    );
    t.rename(
        "work/file with a long name 002.txt",
        "moved to the root.txt",
    );
    t.rename(
        "work/file with a long name 004.txt",
        "work/file with a long name 005.txt",
    );
    t.rename(
        "work/a directory with a long name/nested",
        "nested moved up",
    );
    t.rename("lower.txt", "LOWER.TXT");
    t.write("nested moved up/new after move.txt", 0, b"new\n");
    // Creates in freed slots; rmdir of an empty directory.
    for i in 0..20 {
        t.write(&format!("work/again {i}"), 0, &pattern(1000 + i, 700));
    }
    t.mkdir("work/gone");
    t.rmdir("work/gone");
}

#[test]
fn write_workload_fsck_clean_and_mtools_agree() {
    if !tools("write_workload_fsck_clean_and_mtools_agree") {
        return;
    }
    for &(name, mib, args, ty) in LAYOUTS {
        let d = work(&format!("write-{name}"));
        let src = d.join("src");
        make_tree(&src, 40);
        let img = d.join("img");
        mkfs(&img, mib, args);
        mcopy_in(&img, &src);
        let mut fs = Fat::mount(load(&img), false).unwrap();
        fs.clock = || 1_700_000_000;
        let mut t = Twin { fs, host: &src };
        workload(&mut t, if ty == FatType::Fat12 { 60 } else { 200 });
        // Errors a workload must see.
        let work = t.walk("work");
        assert_eq!(
            t.fs.unlink(ROOT, "work", true).unwrap_err(),
            Error::NotEmpty
        );
        assert_eq!(t.fs.unlink(ROOT, "work", false).unwrap_err(), Error::IsDir);
        assert_eq!(
            t.fs.unlink(work, "big.bin", true).unwrap_err(),
            Error::NotDir
        );
        assert_eq!(
            t.fs.create(work, "BIG.BIN", false).unwrap_err(),
            Error::Exists
        );
        assert_eq!(
            t.fs.create(work, "a:b", false).unwrap_err(),
            Error::InvalidName
        );
        let inner = t.walk("work/a directory with a long name");
        assert_eq!(
            t.fs.rename(ROOT, "work", inner, "into itself").unwrap_err(),
            Error::Invalid,
            "a directory moved below itself"
        );
        t.fs.create(work, "a file", false).unwrap();
        assert_eq!(
            t.fs.rename(ROOT, "nested moved up", work, "a file")
                .unwrap_err(),
            Error::NotDir
        );
        assert_eq!(
            t.fs.rename(work, "a file", ROOT, "nested moved up")
                .unwrap_err(),
            Error::IsDir
        );
        t.fs.unlink(work, "a file", false).unwrap();
        assert_eq!(
            t.fs.create(work, &"n".repeat(256), false).unwrap_err(),
            Error::NameTooLong
        );
        // An unlinked file still open keeps its data until released.
        t.write("work/open then unlinked", 0, &pattern(3, 9000));
        let held = t.walk("work/open then unlinked");
        t.unlink("work/open then unlinked");
        let mut buf = vec![0u8; 9000];
        assert_eq!(t.fs.read(held, 0, &mut buf).unwrap(), 9000);
        assert_eq!(buf, pattern(3, 9000));
        t.fs.release(held).unwrap();
        let want = host_tree(&src);
        assert_same(
            &format!("{name} (crate, before unmount)"),
            &fat_tree(&mut t.fs).unwrap(),
            &want,
        );
        t.fs.unmount().unwrap();
        save(&img, t.fs.device());
        fsck_clean(&img);
        // mtools sees exactly the tree.
        let out = d.join("out");
        std::fs::create_dir_all(&out).unwrap();
        let mut c = Command::new("mcopy");
        c.args(["-s", "-n", "-Q", "-i"])
            .arg(&img)
            .arg("::/")
            .arg(&out);
        run(c);
        let got = host_tree(&out);
        assert_same(&format!("{name} (mtools)"), &got, &want);
        let mut c = Command::new("mtype");
        c.arg("-i")
            .arg(&img)
            .arg("::/nested moved up/new after move.txt");
        assert_eq!(run(c), "new\n");
        let mut c = Command::new("mdir");
        c.args(["-a", "-i"]).arg(&img).arg("::/");
        let listing = run(c);
        assert!(listing.contains("moved to the root.txt"), "{listing}");
        assert!(listing.contains("LOWER    TXT"), "{listing}");
        // And the crate again, from the image on disk.
        let mut fs = Fat::mount(load(&img), true).unwrap();
        assert_same(
            &format!("{name} (remount)"),
            &fat_tree(&mut fs).unwrap(),
            &want,
        );
    }
}

#[test]
fn dirty_bit_and_free_count() {
    if !tools("dirty_bit_and_free_count") {
        return;
    }
    let d = work("dirty");
    let img = d.join("img");
    mkfs(&img, 64, &["-F", "32", "-s", "1"]);
    let mut fs = Fat::mount(load(&img), false).unwrap();
    assert!(!fs.was_dirty());
    assert_eq!(fs.device().0.borrow()[0x41] & 1, 1, "dirty while mounted");
    let free0 = fs.statfs().unwrap().free;
    let id = fs.create(ROOT, "f", false).unwrap();
    fs.write(id, 0, &vec![7u8; 5000]).unwrap();
    assert_eq!(fs.statfs().unwrap().free, free0 - 10);
    fs.unmount().unwrap();
    let b = fs.device().0.borrow().clone();
    assert_eq!(b[0x41] & 1, 0, "clean after unmount");
    // FSINFO's free count is right.
    let fsinfo = u16::from_le_bytes([b[48], b[49]]) as usize * 512;
    let free = u32::from_le_bytes(b[fsinfo + 488..fsinfo + 492].try_into().unwrap());
    assert_eq!(free as u64, free0 - 10);
    // Both FAT copies are equal.
    let fat_sz = u32::from_le_bytes(b[36..40].try_into().unwrap()) as usize * 512;
    let res = u16::from_le_bytes([b[14], b[15]]) as usize * 512;
    assert!(b[res..res + fat_sz] == b[res + fat_sz..res + 2 * fat_sz]);
    std::fs::write(&img, &b).unwrap();
    fsck_clean(&img);
}

#[test]
fn fills_the_volume_then_frees_it() {
    if !tools("fills_the_volume_then_frees_it") {
        return;
    }
    let d = work("fill");
    let img = d.join("img");
    mkfs(&img, 2, &["-F", "12"]);
    let mut fs = Fat::mount(load(&img), false).unwrap();
    let free0 = fs.statfs().unwrap().free;
    let id = fs.create(ROOT, "fill", false).unwrap();
    let chunk = vec![1u8; 4096];
    let mut off = 0;
    let err = loop {
        match fs.write(id, off, &chunk) {
            Ok(n) => off += n as u64,
            Err(e) => break e,
        }
    };
    assert_eq!(err, Error::NoSpace);
    assert_eq!(fs.statfs().unwrap().free, 0);
    fs.unlink(ROOT, "fill", false).unwrap();
    fs.release(id).unwrap();
    assert_eq!(fs.statfs().unwrap().free, free0);
    fs.unmount().unwrap();
    save(&img, fs.device());
    fsck_clean(&img);
}

fn poke(img: &mut [u8], off: usize, bytes: &[u8]) {
    img[off..off + bytes.len()].copy_from_slice(bytes);
}

/// Every operation over the whole tree; Ok or Err, never a panic.
fn exercise(img: Vec<u8>) -> std::result::Result<(), Error> {
    let mut fs = Fat::mount(Mem(RefCell::new(img)), false)?;
    fat_tree(&mut fs)?;
    let _ = fs
        .create(ROOT, "new file.txt", false)
        .and_then(|id| fs.write(id, 0, &[1; 3000]));
    let _ = fs.create(ROOT, "new dir", true);
    if let Ok(s) = fs.lookup(ROOT, "sub") {
        let _ = fs.rename(s, "big.bin", ROOT, "big moved.bin");
        let _ = fs.unlink(ROOT, "big moved.bin", false);
    }
    let _ = fs.rename(ROOT, "deep", ROOT, "deep2");
    let _ = fs.unlink(ROOT, "hello.txt", false);
    fs.unmount()
}

#[test]
fn corrupt_images_give_errors() {
    if !tools("corrupt_images_give_errors") {
        return;
    }
    let d = work("corrupt");
    let src = d.join("src");
    make_tree(&src, 20);
    let img16 = d.join("img16");
    mkfs(&img16, 16, &["-F", "16", "-s", "2"]);
    mcopy_in(&img16, &src);
    let base16 = std::fs::read(&img16).unwrap();
    let img32 = d.join("img32");
    mkfs(&img32, 64, &["-F", "32", "-s", "1"]);
    mcopy_in(&img32, &src);
    let base32 = std::fs::read(&img32).unwrap();
    let mount = |b: Vec<u8>| Fat::mount(Mem(RefCell::new(b)), false).map(|_| ());
    let corrupt = |e: std::result::Result<(), Error>| matches!(e, Err(Error::Corrupt(_)));
    // Bad BPBs.
    for (off, bytes, what) in [
        (11usize, &[0x00u8, 0x03][..], "bytes/sector 768"),
        (11, &[0x00, 0x01], "bytes/sector 256"),
        (11, &[0x00, 0x20], "bytes/sector 8192"),
        (13, &[0], "zero sectors per cluster"),
        (13, &[3], "3 sectors per cluster"),
        (14, &[0, 0], "no reserved sectors"),
        (16, &[0], "no FATs"),
        (22, &[0, 0], "FAT16 size 0 (reads as FAT32 with FAT size 0)"),
        (
            32,
            &[0xff, 0xff, 0xff, 0x0f],
            "total sectors past the device",
        ),
    ] {
        let mut b = base16.clone();
        if off == 32 {
            poke(&mut b, 19, &[0, 0]);
        }
        poke(&mut b, off, bytes);
        assert!(corrupt(mount(b)), "FAT16 {what}");
    }
    for (off, bytes, what) in [
        (36usize, &[0u8, 0, 0, 0][..], "FAT32 size 0"),
        (44, &[0xff, 0xff, 0xff, 0x0f], "root cluster outside"),
        (44, &[0, 0, 0, 0], "root cluster 0"),
    ] {
        let mut b = base32.clone();
        poke(&mut b, off, bytes);
        assert!(corrupt(mount(b)), "FAT32 {what}");
    }
    // Geometry of the FAT32 image, to find its FAT and root.
    let g = |b: &[u8]| {
        let res = u16::from_le_bytes([b[14], b[15]]) as usize * 512;
        let fat = u32::from_le_bytes(b[36..40].try_into().unwrap()) as usize * 512;
        let data = res + 2 * fat;
        (res, data)
    };
    let (fat0, data) = g(&base32);
    let fat1 = fat0 + (data - fat0) / 2;
    let set_fat = |b: &mut Vec<u8>, c: usize, v: u32| {
        poke(b, fat0 + c * 4, &v.to_le_bytes());
        poke(b, fat1 + c * 4, &v.to_le_bytes());
    };
    // The root directory's chain loops onto itself: mount (or readdir) fails, no hang.
    let mut b = base32.clone();
    set_fat(&mut b, 2, 2);
    let r = Fat::mount(Mem(RefCell::new(b)), true)
        .and_then(|mut fs| fs.read_dir(ROOT, 0, 1000).map(|_| ()));
    assert!(corrupt(r), "a looping root directory: {r:?}");
    // A chain pointing outside the volume.
    let mut b = base32.clone();
    set_fat(&mut b, 2, 0x0FFF_FFF0);
    assert!(corrupt(mount(b)), "root chain outside the volume");
    // Find "sub" and big.bin in the FAT32 image and break things there.
    let mut fs = Fat::mount(Mem(RefCell::new(base32.clone())), true).unwrap();
    let sub = fs.lookup(ROOT, "sub").unwrap();
    let big = fs.lookup(sub, "big.bin").unwrap();
    let big_first = fs.attr(big).unwrap().first_cluster as usize;
    let sub_first = fs.attr(sub).unwrap().first_cluster as usize;
    drop(fs);
    // A loop in a file's chain: reading fails with Corrupt.
    let mut b = base32.clone();
    set_fat(&mut b, big_first + 5, big_first as u32);
    let mut fs = Fat::mount(Mem(RefCell::new(b)), true).unwrap();
    let sub = fs.lookup(ROOT, "sub").unwrap();
    let big = fs.lookup(sub, "big.bin").unwrap();
    let mut buf = vec![0u8; 2_000_000];
    assert!(matches!(fs.read(big, 0, &mut buf), Err(Error::Corrupt(_))));
    // A chain shorter than the file (ends early): reading past it fails.
    let mut b = base32.clone();
    set_fat(&mut b, big_first + 5, 0x0FFF_FFFF);
    let mut fs = Fat::mount(Mem(RefCell::new(b)), true).unwrap();
    let sub = fs.lookup(ROOT, "sub").unwrap();
    let big = fs.lookup(sub, "big.bin").unwrap();
    assert!(matches!(fs.read(big, 0, &mut buf), Err(Error::Corrupt(_))));
    // A directory whose chain loops: readdir ends with an error.
    let mut b = base32.clone();
    set_fat(&mut b, sub_first, sub_first as u32);
    let mut fs = Fat::mount(Mem(RefCell::new(b)), true).unwrap();
    let sub = fs.lookup(ROOT, "sub").unwrap();
    assert!(matches!(fs.read_dir(sub, 0, 100), Err(Error::Corrupt(_))));
    // A directory entry with an invalid start cluster: lookup fails, listing still works.
    let mut b = base32.clone();
    let root_off = data; // root cluster 2
    let mut found = false;
    for s in 0..(4096 / 32) {
        let e = root_off + s * 32;
        if &b[e..e + 11] == b"HELLO   TXT" {
            poke(&mut b, e + 26, &[0xf0, 0xff]);
            poke(&mut b, e + 20, &[0xff, 0x0f]);
            found = true;
        }
    }
    assert!(found, "HELLO.TXT in the root");
    let mut fs = Fat::mount(Mem(RefCell::new(b)), true).unwrap();
    assert!(matches!(
        fs.lookup(ROOT, "hello.txt"),
        Err(Error::Corrupt(_))
    ));
    assert!(fs.read_dir(ROOT, 0, 1000).is_ok());
    // A long name whose checksum is wrong: the short name is shown instead.
    let mut b = base32.clone();
    let mut slot = None;
    for s in 0..(4096 / 32) {
        let e = root_off + s * 32;
        if b[e + 11] == 0x0F && b[e] & 0x40 != 0 {
            slot = Some(e);
            break;
        }
    }
    let e = slot.expect("a long-name slot");
    b[e + 13] ^= 0x55;
    let mut fs = Fat::mount(Mem(RefCell::new(b)), true).unwrap();
    let names: Vec<String> = fs
        .read_dir(ROOT, 0, 1000)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert!(
        names.iter().any(|n| n.contains('~')),
        "short name shown: {names:?}"
    );
}

#[test]
fn random_corruption_never_panics() {
    if !tools("random_corruption_never_panics") {
        return;
    }
    let d = work("fuzz");
    let src = d.join("src");
    make_tree(&src, 10);
    let mut seed = 0x1234_5678u32;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    for (name, mib, args) in [
        ("fat12", 4u64, &["-F", "12"][..]),
        ("fat16", 16, &["-F", "16", "-s", "4"]),
        ("fat32", 40, &["-F", "32", "-s", "1"]),
    ] {
        let img = d.join(name);
        mkfs(&img, mib, args);
        mcopy_in(&img, &src);
        let base = std::fs::read(&img).unwrap();
        // Metadata lives in the first part of the image: the boot sector, the FATs' used
        // part, the root directory and the first directories (mcopy fills from the start).
        let le16 = |o: usize| u16::from_le_bytes([base[o], base[o + 1]]) as usize;
        let res = le16(14) * 512;
        let fatsz = if le16(22) != 0 {
            le16(22)
        } else {
            u32::from_le_bytes(base[36..40].try_into().unwrap()) as usize
        } * 512;
        let nfats = base[16] as usize;
        let data = res + nfats * fatsz + le16(17) * 32;
        let regions = [
            (0usize, 512usize),
            (res, 2048),
            (res + fatsz, 2048),
            (
                res + nfats * fatsz,
                (data - res - nfats * fatsz).max(64 << 10),
            ),
            (data, 64 << 10),
        ];
        let mut errs = 0;
        for _ in 0..150 {
            let mut b = base.clone();
            for _ in 0..(1 + rnd() % 8) {
                let (start, len) = regions[rnd() as usize % regions.len()];
                let at = (start + rnd() as usize % len).min(b.len() - 1);
                b[at] = rnd() as u8;
            }
            if exercise(b).is_err() {
                errs += 1;
            }
        }
        eprintln!("{name}: {errs}/150 corrupted images gave an error");
    }
}
