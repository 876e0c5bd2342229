//! The system-call table against its documented list.

use alloc::string::String;
use alloc::vec::Vec;

use crate::ensure;
use crate::ktest::TestFn;

pub fn register(v: &mut Vec<(&'static str, TestFn)>) {
    v.push(("syscall::implemented_list_is_documented", implemented_list));
}

const DOCUMENTED: &str = include_str!("../../../docs/syscalls.txt");

fn implemented_list() -> Result<(), String> {
    let doc: Vec<(usize, &str)> = DOCUMENTED
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (n, name) = l.split_once(' ')?;
            Some((n.parse().ok()?, name.trim()))
        })
        .collect();
    let table = crate::syscall::implemented();
    for (n, name) in &table {
        ensure!(
            doc.contains(&(*n, *name)),
            "syscall {n} ({name}) is implemented but missing from docs/syscalls.txt"
        );
    }
    for (n, name) in &doc {
        ensure!(
            table.contains(&(*n, *name)),
            "docs/syscalls.txt lists {n} ({name}) but the table has no such entry"
        );
    }
    ensure!(
        table.len() >= 140,
        "only {} system calls implemented",
        table.len()
    );
    log::info!(
        "syscall table: {} Linux system calls implemented",
        table.len()
    );
    Ok(())
}
