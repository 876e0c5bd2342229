//! The NetBSD structures, constants and syscall link names that `rump-host-tests` writes by
//! hand (rumpuser-adros/host-tests/src/lib.rs) against the ones generated from NetBSD's
//! headers: same sizes, same field offsets, same values, same `rump___sysimpl_*` symbols.

#[cfg(not(netbsd_bindings))]
#[test]
fn host_tests_layouts() {
    assert!(!bindings::AVAILABLE);
    println!("SKIPPED: host_tests_layouts: no NetBSD source");
}

#[cfg(netbsd_bindings)]
mod layouts {
    use core::mem::{align_of, offset_of, size_of};
    use rump_host_tests as ht;

    /// Asserts equal size and alignment, and equal offsets of the named field pairs.
    macro_rules! same_layout {
        ($ours:ty, $theirs:ty, [$(($a:ident, $b:ident)),* $(,)?]) => {{
            let mut bad: Vec<String> = Vec::new();
            if size_of::<$ours>() != size_of::<$theirs>() {
                bad.push(format!("size {} != {}", size_of::<$ours>(), size_of::<$theirs>()));
            }
            if align_of::<$ours>() != align_of::<$theirs>() {
                bad.push(format!("align {} != {}", align_of::<$ours>(), align_of::<$theirs>()));
            }
            $(
                if offset_of!($ours, $a) != offset_of!($theirs, $b) {
                    bad.push(format!("{}: offset {} != {}", stringify!($a), offset_of!($ours, $a), offset_of!($theirs, $b)));
                }
            )*
            assert!(bad.is_empty(), "{} vs NetBSD's {}: {}", stringify!($ours), stringify!($theirs), bad.join("; "));
        }};
    }

    #[test]
    fn stat_is_netbsds_stat50() {
        same_layout!(
            ht::Timespec,
            bindings::timespec,
            [(tv_sec, tv_sec), (tv_nsec, tv_nsec)]
        );
        same_layout!(
            ht::Stat,
            bindings::stat,
            [
                (st_dev, st_dev),
                (st_mode, st_mode),
                (st_ino, st_ino),
                (st_nlink, st_nlink),
                (st_uid, st_uid),
                (st_gid, st_gid),
                (st_rdev, st_rdev),
                (st_atim, st_atim),
                (st_mtim, st_mtim),
                (st_ctim, st_ctim),
                (st_birthtim, st_birthtim),
                (st_size, st_size),
                (st_blocks, st_blocks),
                (st_blksize, st_blksize),
                (st_flags, st_flags),
                (st_gen, st_gen),
                (st_spare, st_spare),
            ]
        );
    }

    #[test]
    fn mount_args_match() {
        same_layout!(ht::UfsArgs, bindings::ufs_args, [(fspec, fspec)]);
        same_layout!(
            ht::TmpfsArgs,
            bindings::tmpfs_args,
            [
                (ta_version, ta_version),
                (ta_nodes_max, ta_nodes_max),
                (ta_size_max, ta_size_max),
                (ta_root_uid, ta_root_uid),
                (ta_root_gid, ta_root_gid),
                (ta_root_mode, ta_root_mode)
            ]
        );
        same_layout!(
            ht::MsdosfsArgs,
            bindings::msdosfs_args,
            [
                (fspec, fspec),
                (pad1, _pad1),
                (uid, uid),
                (gid, gid),
                (mask, mask),
                (flags, flags),
                (version, version),
                (dirmask, dirmask),
                (gmtoff, gmtoff)
            ]
        );
        assert_eq!(
            bindings::TMPFS_ARGS_VERSION,
            1,
            "host-tests mounts tmpfs with ta_version 1"
        );
        assert_eq!(
            bindings::MSDOSFSMNT_VERSION,
            3,
            "host-tests mounts msdos with version 3"
        );
    }

    #[test]
    fn sockaddr_in_matches() {
        same_layout!(
            ht::SockaddrIn,
            bindings::sockaddr_in,
            [
                (sin_len, sin_len),
                (sin_family, sin_family),
                (sin_port, sin_port),
                (sin_addr, sin_addr),
                (sin_zero, sin_zero)
            ]
        );
    }

    #[test]
    fn dirent_offsets_used_by_readdir() {
        use bindings::dirent as D;
        assert_eq!(
            (
                offset_of!(D, d_reclen),
                offset_of!(D, d_namlen),
                offset_of!(D, d_type),
                offset_of!(D, d_name)
            ),
            (
                ht::DIRENT_RECLEN,
                ht::DIRENT_NAMLEN,
                ht::DIRENT_TYPE,
                ht::DIRENT_NAME
            )
        );
    }

    #[test]
    fn constants_match() {
        macro_rules! same {
            ($($n:ident),* $(,)?) => {{
                let mut bad = Vec::new();
                $(
                    if ht::$n as i64 != bindings::$n as i64 {
                        bad.push(format!("{}: host-tests {} != NetBSD {}", stringify!($n), ht::$n as i64, bindings::$n as i64));
                    }
                )*
                assert!(bad.is_empty(), "{}", bad.join("\n"));
            }};
        }
        same!(
            O_RDONLY,
            O_WRONLY,
            O_RDWR,
            O_CREAT,
            O_TRUNC,
            O_DIRECTORY,
            S_IFMT,
            S_IFDIR,
            S_IFREG
        );
        same!(
            AF_INET,
            SOCK_STREAM,
            SOCK_DGRAM,
            IPPROTO_TCP,
            TCP_NODELAY,
            SOL_SOCKET,
            SO_REUSEADDR,
            SO_SNDBUF,
            SO_RCVBUF,
            RUMP_ETFS_BLK
        );
    }

    /// `(name, link_name)` of every `#[link_name = "…"] pub fn name(` in `text`.
    fn link_names(text: &str, prefix: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut pending: Option<String> = None;
        for line in text.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("#[link_name = \"") {
                pending = rest
                    .split('"')
                    .next()
                    .map(|s| s.trim_start_matches("\\u{1}").to_string());
            } else if let Some(rest) = line.strip_prefix("pub fn ") {
                let name = rest.split('(').next().unwrap_or("").trim().to_string();
                if let Some(l) = pending.take() {
                    out.push((format!("{prefix}{name}"), l));
                }
            }
        }
        out
    }

    #[test]
    fn syscall_link_names_match() {
        let generated = std::fs::read_to_string(concat!(env!("OUT_DIR"), "/bindings.rs")).unwrap();
        let theirs = link_names(&generated, "");
        let src = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../rumpuser-adros/host-tests/src/lib.rs"
        );
        let ours = link_names(&std::fs::read_to_string(src).unwrap(), "rump_sys_");
        assert!(
            ours.len() >= 20,
            "found only {} link names in {src}",
            ours.len()
        );
        let mut bad = Vec::new();
        for (name, link) in &ours {
            match theirs.iter().find(|(n, _)| n == name) {
                Some((_, l)) if l == link => {}
                Some((_, l)) => bad.push(format!(
                    "{name}: host-tests links {link}, rump_syscalls.h says {l}"
                )),
                None => bad.push(format!("{name}: not in rump_syscalls.h")),
            }
        }
        assert!(bad.is_empty(), "{}", bad.join("\n"));
    }
}
