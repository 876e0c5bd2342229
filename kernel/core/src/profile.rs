//! A sampling profiler for the kernel: with `debug.profile=1` on the command line, every
//! LAPIC timer tick (1000 Hz per CPU) records where the interrupted CPU was — a counter per
//! 16 bytes of kernel text, or one of the "user", "idle" and "outside text" totals.
//! `/proc/profile` prints the kernel functions (NetBSD's rump code included) by samples and
//! then starts counting afresh, so `cat /proc/profile >/dev/null; WORKLOAD; cat /proc/profile`
//! shows where WORKLOAD's kernel time went. Interrupt-disabled stretches show up at the place
//! interrupts come back on. See docs/profile.md.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// Bytes of text per counter.
const GRAIN: u64 = 16;

static ON: AtomicBool = AtomicBool::new(false);
static HITS: spin::Once<Box<[AtomicU32]>> = spin::Once::new();
static TEXT_START: AtomicU64 = AtomicU64::new(0);
static USER: AtomicU64 = AtomicU64::new(0);
static IDLE: AtomicU64 = AtomicU64::new(0);
static OUTSIDE: AtomicU64 = AtomicU64::new(0);

/// Turns sampling on when the command line asks for it (after the heap is up).
pub fn init() {
    let want = crate::bootinfo::cmdline()
        .param("debug.profile")
        .is_some_and(|v| v != "0");
    if !want {
        return;
    }
    let (start, end, _) = crate::mm::paging::kernel_sections()[0];
    let n = ((end - start) / GRAIN + 1) as usize;
    HITS.call_once(|| (0..n).map(|_| AtomicU32::new(0)).collect());
    TEXT_START.store(start, Ordering::Relaxed);
    ON.store(true, Ordering::Release);
    crate::println!(
        "profile: sampling kernel text {start:#x}..{end:#x} at every timer tick ({} KiB of counters); read /proc/profile",
        n * 4 / 1024
    );
}

pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

/// One sample (timer interrupt context).
pub fn sample(rip: u64, user: bool, idle: bool) {
    if !ON.load(Ordering::Relaxed) {
        return;
    }
    if idle {
        IDLE.fetch_add(1, Ordering::Relaxed);
        return;
    }
    if user {
        USER.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let hits = HITS.get().expect("profile on without counters");
    let i = rip.wrapping_sub(TEXT_START.load(Ordering::Relaxed)) / GRAIN;
    match hits.get(i as usize) {
        Some(c) => {
            c.fetch_add(1, Ordering::Relaxed);
        }
        None => {
            OUTSIDE.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The report since the last one (the counters are reset as they are read).
pub fn report(top: usize) -> String {
    let mut s = String::new();
    let Some(hits) = HITS.get().filter(|_| enabled()) else {
        s.push_str("profile: off (boot with debug.profile=1)\n");
        return s;
    };
    let start = TEXT_START.load(Ordering::Relaxed);
    let mut by_fn: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut unknown = 0u64;
    let mut kernel = 0u64;
    for (i, c) in hits.iter().enumerate() {
        let n = u64::from(c.swap(0, Ordering::Relaxed));
        if n == 0 {
            continue;
        }
        kernel += n;
        match crate::symbols::lookup(start + i as u64 * GRAIN) {
            Some((name, _)) => *by_fn.entry(name).or_default() += n,
            None => unknown += n,
        }
    }
    let user = USER.swap(0, Ordering::Relaxed);
    let idle = IDLE.swap(0, Ordering::Relaxed);
    let outside = OUTSIDE.swap(0, Ordering::Relaxed);
    let total = (kernel + user + idle + outside).max(1);
    let pct = |n: u64| n as f64 * 100.0 / total as f64;
    let _ = writeln!(
        s,
        "samples {total} (1 per ms per CPU): kernel {kernel} ({:.1}%), user {user} ({:.1}%), idle {idle} ({:.1}%), outside text {outside}",
        pct(kernel),
        pct(user),
        pct(idle)
    );
    let mut v: Vec<(&str, u64)> = by_fn.into_iter().collect();
    if unknown > 0 {
        v.push(("(no symbol)", unknown));
    }
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    for (name, n) in v.into_iter().take(top) {
        let _ = writeln!(s, "{n:8} {:5.1}% {name}", pct(n));
    }
    s
}
