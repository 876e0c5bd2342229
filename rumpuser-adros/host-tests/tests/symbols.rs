//! Every external symbol the freestanding (`--target kernel`) component archives need is a
//! hypercall rumpuser-adros defines: the undefined symbols of all listed components, minus
//! what the components define themselves and the link-set bounds, must all be defined in this
//! (rumpuser-adros-linked) test binary.

use std::collections::BTreeSet;
use std::path::PathBuf;

use rump_host_tests::*;

fn kernel_build() -> Option<PathBuf> {
    let base = std::env::var_os("ADROS_RUMP_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/adros/rump")))?;
    let mut best: Option<(std::time::SystemTime, PathBuf)> = None;
    for e in std::fs::read_dir(base).ok()?.flatten() {
        if !e.file_name().to_string_lossy().contains("-kernel-") {
            continue;
        }
        if let Ok(m) = std::fs::metadata(e.path().join(".complete")).and_then(|m| m.modified())
            && best.as_ref().is_none_or(|(t, _)| m > *t)
        {
            best = Some((m, e.path().join("dest/lib")));
        }
    }
    best.map(|(_, p)| p)
}

fn nm(args: &[&str]) -> String {
    let out = std::process::Command::new("nm")
        .args(args)
        .output()
        .expect("nm");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn kernel_components_need_only_our_hypercalls() {
    require_rump!();
    let Some(lib) = kernel_build() else {
        skip("no kernel build (cargo xtask rump build --target kernel)");
        return;
    };
    let list = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../buildrump/components.txt"
    ))
    .unwrap();
    let (mut undef, mut def) = (BTreeSet::new(), BTreeSet::new());
    for line in list
        .lines()
        .map(|l| l.split('#').next().unwrap().trim())
        .filter(|l| !l.is_empty())
    {
        let name = line.split_whitespace().next().unwrap();
        let a = lib.join(format!("lib{name}.a"));
        assert!(a.is_file(), "{} missing", a.display());
        for l in nm(&[a.to_str().unwrap()]).lines() {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.as_slice() {
                ["U", s] => {
                    undef.insert(s.to_string());
                }
                [_, t, s] if "TDBRCVW".contains(*t) => {
                    def.insert(s.to_string());
                }
                _ => {}
            }
        }
    }
    let needed: BTreeSet<String> = undef
        .difference(&def)
        .filter(|s| !s.starts_with("__start_link_set_") && !s.starts_with("__stop_link_set_"))
        .cloned()
        .collect();
    assert!(!needed.is_empty());
    // Keep every hypercall in this binary (nothing else here calls them).
    assert!(rumpuser_adros::ffi::link_all() > 50);
    let exe = std::env::current_exe().unwrap();
    let ours: BTreeSet<String> = nm(&["--defined-only", exe.to_str().unwrap()])
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_string))
        .filter(|s| s.starts_with("rumpuser_") || s.starts_with("rumpcomp_"))
        .collect();
    let missing: Vec<_> = needed.difference(&ours).collect();
    assert!(
        missing.is_empty(),
        "kernel components need symbols rumpuser-adros lacks: {missing:?}"
    );
    println!(
        "kernel components need {} external symbols; all are rumpuser-adros hypercalls",
        needed.len()
    );
}
