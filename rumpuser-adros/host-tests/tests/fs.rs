//! NetBSD file systems (ext2fs, tmpfs, msdosfs) running in a rump kernel on rumpuser-adros's
//! std host: images made by the host's own tools, registered with etfs, mounted read-write,
//! read back and changed, unmounted, and checked by the host's fsck.

use std::collections::BTreeMap;
use std::path::Path;

use rump_host_tests::*;

/// A small source tree: path (relative, '/'-separated) → contents; directories end with '/'.
fn source_tree() -> BTreeMap<String, Vec<u8>> {
    let mut t = BTreeMap::new();
    t.insert("empty".into(), Vec::new());
    t.insert("one".into(), b"x".to_vec());
    t.insert("hello.txt".into(), b"hello from the host\n".to_vec());
    t.insert("block".into(), pattern(4096, 1));
    t.insert("odd".into(), pattern(4095, 2));
    t.insert("big.bin".into(), pattern(1 << 20, 3));
    t.insert("dir/".into(), Vec::new());
    t.insert("dir/inner.txt".into(), b"inner".to_vec());
    t.insert("dir/mid.bin".into(), pattern(70_000, 4));
    t.insert("dir/sub/".into(), Vec::new());
    t.insert("dir/sub/deep.bin".into(), pattern(12_345, 5));
    for i in 0..40 {
        t.insert(
            format!("many/f{i:03}"),
            pattern(100 + i * 37, 100 + i as u64),
        );
    }
    t.insert("many/".into(), Vec::new());
    t
}

fn write_tree(root: &Path, t: &BTreeMap<String, Vec<u8>>) {
    for (p, data) in t {
        let full = root.join(p.trim_end_matches('/'));
        if p.ends_with('/') {
            std::fs::create_dir_all(&full).unwrap();
        } else {
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(&full, data).unwrap();
        }
    }
}

/// Checks every directory listing, stat and file content under `mnt` against `t`.
fn verify_tree(mnt: &str, t: &BTreeMap<String, Vec<u8>>, case_insensitive_names: bool) {
    let norm = |s: &str| {
        if case_insensitive_names {
            s.to_ascii_lowercase()
        } else {
            s.to_string()
        }
    };
    // Group expected children per directory.
    let mut dirs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    dirs.insert(String::new(), Vec::new());
    for p in t.keys() {
        let trimmed = p.trim_end_matches('/');
        let (parent, name) = match trimmed.rsplit_once('/') {
            Some((a, b)) => (a.to_string(), b.to_string()),
            None => (String::new(), trimmed.to_string()),
        };
        dirs.entry(parent).or_default().push(norm(&name));
        if p.ends_with('/') {
            dirs.entry(trimmed.to_string()).or_default();
        }
    }
    for (d, mut want) in dirs {
        let path = if d.is_empty() {
            mnt.to_string()
        } else {
            format!("{mnt}/{d}")
        };
        let mut got: Vec<String> = readdir(&path)
            .unwrap_or_else(|e| panic!("readdir {path}: errno {e}"))
            .into_iter()
            .map(|(n, _)| norm(&n))
            .filter(|n| n != "lost+found")
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "listing of {path}");
    }
    for (p, data) in t {
        let path = format!("{mnt}/{}", p.trim_end_matches('/'));
        let st = stat(&path).unwrap_or_else(|e| panic!("stat {path}: errno {e}"));
        if p.ends_with('/') {
            assert_eq!(st.st_mode & S_IFMT, S_IFDIR, "{path} is a directory");
        } else {
            assert_eq!(st.st_mode & S_IFMT, S_IFREG, "{path} is a regular file");
            assert_eq!(st.st_size as usize, data.len(), "size of {path}");
            let got = read_file(&path).unwrap_or_else(|e| panic!("read {path}: errno {e}"));
            assert!(got == *data, "contents of {path} differ");
        }
    }
}

/// The same changes on every file system; returns what the tree looks like afterwards.
fn mutate(mnt: &str, t: &mut BTreeMap<String, Vec<u8>>) {
    let new_data = pattern(300_000, 77);
    mkdir(&format!("{mnt}/newdir"), 0o755).unwrap();
    write_file(&format!("{mnt}/newdir/created.bin"), &new_data).unwrap();
    rename(
        &format!("{mnt}/newdir/created.bin"),
        &format!("{mnt}/newdir/renamed.bin"),
    )
    .unwrap();
    rename(&format!("{mnt}/newdir"), &format!("{mnt}/moved")).unwrap();
    write_file(&format!("{mnt}/doomed"), b"short-lived").unwrap();
    unlink(&format!("{mnt}/doomed")).unwrap();
    assert_eq!(stat(&format!("{mnt}/doomed")).map(drop), Err(ENOENT));
    mkdir(&format!("{mnt}/gone"), 0o755).unwrap();
    rmdir(&format!("{mnt}/gone")).unwrap();
    assert_eq!(mkdir(&format!("{mnt}/dir"), 0o755), Err(EEXIST));
    unlink(&format!("{mnt}/hello.txt")).unwrap();
    // Overwrite in place.
    write_file(&format!("{mnt}/one"), b"rewritten").unwrap();
    t.remove("hello.txt");
    t.insert("one".into(), b"rewritten".to_vec());
    t.insert("moved/".into(), Vec::new());
    t.insert("moved/renamed.bin".into(), new_data);
}

#[test]
fn ext2fs_on_mke2fs_image() {
    require_rump!();
    let (Some(mke2fs), Some(e2fsck), Some(debugfs)) =
        (tool("mke2fs"), tool("e2fsck"), tool("debugfs"))
    else {
        skip("e2fsprogs (mke2fs, e2fsck, debugfs) not installed");
        return;
    };
    let dir = scratch("ext2");
    let src = dir.join("src");
    let mut tree = source_tree();
    write_tree(&src, &tree);
    let img = dir.join("ext2.img");
    let img_s = img.to_str().unwrap();
    // Features NetBSD's 2016 ext2fs knows; 128-byte inodes.
    let (ok, out) = host_cmd(
        &mke2fs,
        &[
            "-q",
            "-F",
            "-t",
            "ext2",
            "-b",
            "1024",
            "-I",
            "128",
            "-O",
            "^dir_index,^ext_attr,^resize_inode",
            "-d",
            src.to_str().unwrap(),
            img_s,
            "16M",
        ],
    )
    .unwrap();
    assert!(ok, "mke2fs: {out}");
    init().expect("rump_init");
    etfs_register_blk("/dev/ext2img", img_s).expect("etfs register");
    mkdir("/ext2", 0o755).unwrap();
    let fspec = std::ffi::CString::new("/dev/ext2img").unwrap();
    let mut args = UfsArgs {
        fspec: fspec.as_ptr(),
    };
    mount("ext2fs", "/ext2", 0, &mut args).unwrap_or_else(|e| panic!("mount ext2fs: errno {e}"));
    verify_tree("/ext2", &tree, false);
    mutate("/ext2", &mut tree);
    verify_tree("/ext2", &tree, false);
    unmount("/ext2", 0).unwrap_or_else(|e| panic!("unmount: errno {e}"));
    let (ok, out) = host_cmd(&e2fsck, &["-fn", img_s]).unwrap();
    assert!(ok, "e2fsck -fn reports problems:\n{out}");
    // The changes are on the image, as the host sees it.
    let (ok, out) = host_cmd(&debugfs, &["-R", "cat /moved/renamed.bin", img_s]).unwrap();
    assert!(ok);
    let (ok2, dump) = {
        let o = std::process::Command::new(&debugfs)
            .args(["-R", "cat /moved/renamed.bin", img_s])
            .output()
            .unwrap();
        (o.status.success(), o.stdout)
    };
    assert!(ok2, "{out}");
    assert!(
        dump == tree["moved/renamed.bin"],
        "debugfs sees different data in /moved/renamed.bin"
    );
    let (_, ls) = host_cmd(&debugfs, &["-R", "ls -l /", img_s]).unwrap();
    assert!(
        !ls.contains("hello.txt") && ls.contains("moved"),
        "debugfs ls /: {ls}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tmpfs_read_write() {
    require_rump!();
    init().expect("rump_init");
    mkdir("/tmpfs", 0o755).unwrap();
    let mut args = TmpfsArgs {
        ta_version: 1,
        ta_nodes_max: 0,
        ta_size_max: 0,
        ta_root_uid: 0,
        ta_root_gid: 0,
        ta_root_mode: 0o1777,
    };
    mount("tmpfs", "/tmpfs", 0, &mut args).unwrap_or_else(|e| panic!("mount tmpfs: errno {e}"));
    let mut tree = source_tree();
    for (p, data) in &tree {
        let path = format!("/tmpfs/{}", p.trim_end_matches('/'));
        if p.ends_with('/') {
            match mkdir(&path, 0o755) {
                Ok(()) | Err(EEXIST) => {}
                Err(e) => panic!("mkdir {path}: {e}"),
            }
        }
        let _ = data;
    }
    for (p, data) in &tree {
        if !p.ends_with('/') {
            write_file(&format!("/tmpfs/{p}"), data).unwrap();
        }
    }
    verify_tree("/tmpfs", &tree, false);
    mutate("/tmpfs", &mut tree);
    verify_tree("/tmpfs", &tree, false);
    unmount("/tmpfs", 0).unwrap();
}

#[test]
fn msdosfs_on_mkfs_vfat_image() {
    require_rump!();
    let (Some(mkfs), Some(fsck), Some(mcopy)) =
        (tool("mkfs.vfat"), tool("fsck.vfat"), tool("mcopy"))
    else {
        skip("dosfstools (mkfs.vfat, fsck.vfat) or mtools (mcopy) not installed");
        return;
    };
    let dir = scratch("msdos");
    let src = dir.join("src");
    let mut tree = source_tree();
    write_tree(&src, &tree);
    let img = dir.join("fat.img");
    let img_s = img.to_str().unwrap();
    let (ok, out) = host_cmd(&mkfs, &["-C", "-F", "16", "-n", "ADROS", img_s, "16384"]).unwrap();
    assert!(ok, "mkfs.vfat: {out}");
    let mut args_v: Vec<String> = vec!["-s".into(), "-i".into(), img_s.into()];
    for e in std::fs::read_dir(&src).unwrap().flatten() {
        args_v.push(e.path().to_str().unwrap().into());
    }
    args_v.push("::/".into());
    let args_r: Vec<&str> = args_v.iter().map(String::as_str).collect();
    let (ok, out) = host_cmd(&mcopy, &args_r).unwrap();
    assert!(ok, "mcopy: {out}");
    init().expect("rump_init");
    etfs_register_blk("/dev/fatimg", img_s).expect("etfs register");
    mkdir("/fat", 0o755).unwrap();
    let fspec = std::ffi::CString::new("/dev/fatimg").unwrap();
    let mut args = MsdosfsArgs {
        fspec: fspec.as_ptr(),
        pad1: [0; 16],
        uid: 0,
        gid: 0,
        mask: 0o755,
        flags: 2,
        version: 3,
        dirmask: 0o755,
        gmtoff: 0,
    };
    mount("msdos", "/fat", 0, &mut args).unwrap_or_else(|e| panic!("mount msdos: errno {e}"));
    verify_tree("/fat", &tree, true);
    mutate("/fat", &mut tree);
    verify_tree("/fat", &tree, true);
    unmount("/fat", 0).unwrap();
    let (ok, out) = host_cmd(&fsck, &["-n", img_s]).unwrap();
    assert!(ok, "fsck.vfat -n reports problems:\n{out}");
    let back = dir.join("back.bin");
    let (ok, out) = host_cmd(
        &mcopy,
        &[
            "-n",
            "-i",
            img_s,
            "::/moved/renamed.bin",
            back.to_str().unwrap(),
        ],
    )
    .unwrap();
    assert!(ok, "mcopy back: {out}");
    assert!(std::fs::read(&back).unwrap() == tree["moved/renamed.bin"]);
    let _ = std::fs::remove_dir_all(&dir);
}
