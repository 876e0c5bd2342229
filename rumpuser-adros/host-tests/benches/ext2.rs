//! The rump ext2 workload of issue 5 item 7, hosted by whatever provides the hypercalls in this
//! build (rumpuser-adros, or NetBSD's librumpuser when built by `cargo xtask rump bench` with
//! ADROS_RUMP_BENCH_POSIX_DIR): read a 64 MiB file (cold = the first read through rump,
//! remount = the first read after an unmount + mount, warm = from the rump kernel's cache),
//! create 10,000 files, stat 10,000 files. Prints one JSON line (`BENCH {...}`) with the rates
//! and the CPU time of each phase, plus diagnostic lines; the only assertions check that the
//! workload really ran (lengths, the file's content once, untimed).

use std::time::Instant;

use rump_host_tests::*;

fn main() {
    if !LINKED {
        println!("SKIPPED: ext2 bench: no NetBSD source (see README)");
        return;
    }
    let Some(mke2fs) = tool("mke2fs") else {
        println!("SKIPPED: ext2 bench: mke2fs not installed");
        return;
    };
    let dir = scratch(&format!("bench-{HOSTED_BY}"));
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let size = 64 << 20;
    let data = pattern(size, 64);
    std::fs::write(src.join("big.bin"), &data).unwrap();
    let img = dir.join("bench.img");
    let img_s = img.to_str().unwrap();
    let (ok, out) = host_cmd(
        &mke2fs,
        &[
            "-q",
            "-F",
            "-t",
            "ext2",
            "-b",
            "4096",
            "-I",
            "128",
            "-N",
            "32768",
            "-O",
            "^dir_index,^ext_attr,^resize_inode",
            "-d",
            src.to_str().unwrap(),
            img_s,
            "256M",
        ],
    )
    .unwrap();
    assert!(ok, "mke2fs: {out}");
    init().expect("rump_init");
    etfs_register_blk("/dev/bench", img_s).unwrap();
    mkdir("/mnt", 0o755).unwrap();
    let fspec = std::ffi::CString::new("/dev/bench").unwrap();
    let mut args = UfsArgs {
        fspec: fspec.as_ptr(),
    };
    mount("ext2fs", "/mnt", 0, &mut args).expect("mount");

    // Every read goes through one reused 64 KiB buffer: the timed region holds rump's read
    // path and the hypercalls, not the growth of a 64 MiB host Vec (whose page faults were a
    // third of a warm read). The content is checked once, untimed, at the end.
    let mut buf = vec![0u8; 64 << 10];
    let mut read_all = || {
        let t = Instant::now();
        let fd = open("/mnt/big.bin", O_RDONLY, 0).unwrap();
        let mut got = 0;
        loop {
            let n = read(fd, &mut buf).unwrap();
            if n == 0 {
                break;
            }
            got += n;
        }
        close(fd).unwrap();
        let s = t.elapsed().as_secs_f64();
        assert_eq!(got, size);
        s
    };
    let reps = |var: &str, default: usize| -> usize {
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
            .max(1)
    };
    // Cold reads: the first read after a mount. The first one also pays for the rump kernel
    // allocating its page cache (fresh host memory); later ones (after an unmount dropped the
    // file's pages; the image stays in the host's page cache) reuse memory. Reported: the
    // first (read64_cold) and the median of ADROS_RUMP_BENCH_COLD_READS (default 5) more
    // (read64_remount). Warm reads (from the rump kernel's cache) and stat passes are short,
    // so each is repeated (ADROS_RUMP_BENCH_REPEAT, default 5) and the median reported.
    // Resource use per phase is printed too (CPU time is less sensitive than wall time to
    // other load on the machine).
    let remounts = reps("ADROS_RUMP_BENCH_COLD_READS", 5);
    let repeat = reps("ADROS_RUMP_BENCH_REPEAT", 5);
    let mut colds = Vec::new();
    let mut cpu = Vec::new();
    for i in 0..=remounts {
        if i > 0 {
            unmount("/mnt", 0).unwrap();
            mount("ext2fs", "/mnt", 0, &mut args).expect("remount");
        }
        let u0 = usage();
        colds.push(read_all());
        let u = usage().since(&u0);
        cpu.push(u.cpu_s);
        println!("cold read {i}: {u}{}", bio_delta());
    }
    println!("cold reads (s): {colds:?}");
    let cold = colds[0];
    let remount = median(&colds[1..]);
    let remount_cpu = median(&cpu[1..]);
    let u0 = usage();
    let warms: Vec<f64> = (0..repeat).map(|_| read_all()).collect();
    let warm_u = usage().since(&u0);
    println!("warm reads (s): {warms:?}; {warm_u}");
    let warm = median(&warms);
    let mib = (size >> 20) as f64;
    let mut figures = vec![
        ("read64_cold_mib_s", mib / cold),
        ("read64_remount_mib_s", mib / remount),
        ("read64_warm_mib_s", mib / warm),
        ("read64_cold_cpu_ms", cpu[0] * 1e3),
        ("read64_remount_cpu_ms", remount_cpu * 1e3),
        ("read64_warm_cpu_ms", warm_u.cpu_s * 1e3 / repeat as f64),
    ];

    if std::env::var_os("ADROS_RUMP_BENCH_READ_ONLY").is_none() {
        mkdir("/mnt/many", 0o755).unwrap();
        let n = 10_000;
        let u0 = usage();
        let t = Instant::now();
        for i in 0..n {
            let fd = open(
                &format!("/mnt/many/f{i}"),
                O_WRONLY | O_CREAT | O_TRUNC,
                0o644,
            )
            .unwrap();
            close(fd).unwrap();
        }
        let create = t.elapsed().as_secs_f64();
        let create_u = usage().since(&u0);
        println!("create: {create:.3} s wall, {create_u}{}", bio_delta());
        let u0 = usage();
        let stats: Vec<f64> = (0..repeat)
            .map(|_| {
                let t = Instant::now();
                for i in 0..n {
                    stat(&format!("/mnt/many/f{i}")).unwrap();
                }
                t.elapsed().as_secs_f64()
            })
            .collect();
        let stat_u = usage().since(&u0);
        println!("stat passes (s): {stats:?}; {stat_u}");
        figures.extend([
            ("create10k_per_s", n as f64 / create),
            ("stat10k_per_s", n as f64 / median(&stats)),
            ("create10k_cpu_ms", create_u.cpu_s * 1e3),
            ("stat10k_cpu_ms", stat_u.cpu_s * 1e3 / repeat as f64),
        ]);
    }
    // The content, once, untimed.
    assert!(
        read_file("/mnt/big.bin").unwrap() == data,
        "big.bin read back wrong"
    );
    unmount("/mnt", 0).unwrap();
    let body: Vec<String> = figures
        .iter()
        .map(|(k, v)| format!("\"{k}\":{v:.1}"))
        .collect();
    println!("BENCH {{\"host\":\"{HOSTED_BY}\",{}}}", body.join(","));
    let _ = std::fs::remove_dir_all(&dir);
}

/// rumpuser-adros's block-I/O counters since the last call (empty for NetBSD's host).
fn bio_delta() -> String {
    #[cfg(not(rumpuser_posix))]
    {
        use std::sync::Mutex;
        static LAST: Mutex<Option<rumpuser_adros::bio::BioStats>> = Mutex::new(None);
        let now = rumpuser_adros::bio::stats();
        let prev = LAST.lock().unwrap().replace(now).unwrap_or_default();
        let n = now.requests - prev.requests;
        let ios = (now.ios - prev.ios).max(1);
        format!(
            "; bio: {n} requests in {ios} host I/Os, {:.1} MiB, per I/O {:.1} µs queued, {:.1} µs I/O, {:.1} µs completion; max queued {}",
            (now.bytes - prev.bytes) as f64 / (1 << 20) as f64,
            (now.queue_ns - prev.queue_ns) as f64 / 1e3 / ios as f64,
            (now.io_ns - prev.io_ns) as f64 / 1e3 / ios as f64,
            (now.done_ns - prev.done_ns) as f64 / 1e3 / ios as f64,
            now.max_queued
        )
    }
    #[cfg(rumpuser_posix)]
    String::new()
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Resource use of the live threads of this process, for the diagnostic lines (not part of
/// the `BENCH` figures): CPU time and voluntary/involuntary context switches.
struct Usage {
    cpu_ns: u64,
    vcsw: u64,
    ivcsw: u64,
    minflt: u64,
}

/// What a phase used (see [`Usage::since`]).
struct Used {
    cpu_s: f64,
    vcsw: u64,
    ivcsw: u64,
    minflt: u64,
}

impl std::fmt::Display for Used {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.3} s cpu, {} voluntary + {} involuntary context switches, {} page faults",
            self.cpu_s, self.vcsw, self.ivcsw, self.minflt
        )
    }
}

impl Usage {
    fn since(&self, before: &Usage) -> Used {
        Used {
            cpu_s: self.cpu_ns.saturating_sub(before.cpu_ns) as f64 / 1e9,
            vcsw: self.vcsw.saturating_sub(before.vcsw),
            ivcsw: self.ivcsw.saturating_sub(before.ivcsw),
            minflt: self.minflt.saturating_sub(before.minflt),
        }
    }
}

fn usage() -> Usage {
    let mut u = Usage {
        cpu_ns: process_cpu_ns(),
        vcsw: 0,
        ivcsw: 0,
        // Field 10 of /proc/self/stat (after the parenthesized command name).
        minflt: std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| {
                let rest = &s[s.rfind(')')? + 2..];
                rest.split_whitespace().nth(7)?.parse().ok()
            })
            .unwrap_or(0),
    };
    if let Ok(rd) = std::fs::read_dir("/proc/self/task") {
        for t in rd.flatten() {
            let Ok(s) = std::fs::read_to_string(t.path().join("status")) else {
                continue;
            };
            for l in s.lines() {
                let v = |p: &str| l.strip_prefix(p).and_then(|r| r.trim().parse::<u64>().ok());
                if let Some(n) = v("voluntary_ctxt_switches:") {
                    u.vcsw += n;
                } else if let Some(n) = v("nonvoluntary_ctxt_switches:") {
                    u.ivcsw += n;
                }
            }
        }
    }
    u
}

/// CPU time (ns) consumed so far by all threads of this process (/proc schedstat).
fn process_cpu_ns() -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir("/proc/self/task") {
        for t in rd.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("schedstat")) {
                total += s
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    total
}
