//! 8 host threads issuing rump syscalls at once for 10 s, with `_RUMPUSER_NCPU` at 1 and at
//! 4: no deadlock, no error, every thread makes progress. Each CPU count needs its own rump
//! kernel, so the test re-runs itself as a child process per count (with a watchdog).

use std::process::Command;
use std::time::{Duration, Instant};

use rump_host_tests::*;

const CHILD_ENV: &str = "ADROS_RUMP_CONCURRENCY_CHILD";

fn workload(seconds: u64) {
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
    mount("tmpfs", "/tmpfs", 0, &mut args).expect("mount tmpfs");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                let dir = format!("/tmpfs/t{t}");
                mkdir(&dir, 0o755).unwrap();
                let data = pattern(8192 + t * 100, t as u64);
                let mut ops = 0u64;
                let mut i = 0u64;
                while Instant::now() < deadline {
                    let p = format!("{dir}/f{}", i % 16);
                    write_file(&p, &data).unwrap_or_else(|e| panic!("thread {t}: write {p}: {e}"));
                    let back =
                        read_file(&p).unwrap_or_else(|e| panic!("thread {t}: read {p}: {e}"));
                    assert!(back == data, "thread {t}: data mismatch");
                    let st = stat(&p).unwrap();
                    assert_eq!(st.st_size as usize, data.len());
                    if i.is_multiple_of(3) {
                        unlink(&p).unwrap();
                    }
                    if i.is_multiple_of(50) {
                        // Shared directory traffic too.
                        let _ = readdir("/tmpfs").unwrap();
                    }
                    // A socket syscall now and then (different kernel subsystems, same locks).
                    if i.is_multiple_of(97) {
                        let s = socket(AF_INET, SOCK_DGRAM).unwrap();
                        close(s).unwrap();
                    }
                    ops += 1;
                    i += 1;
                }
                ops
            })
        })
        .collect();
    let ops: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    println!("ops per thread: {ops:?}");
    assert!(ops.iter().all(|&n| n > 10), "a thread starved: {ops:?}");
}

#[test]
fn eight_threads_ncpu_1_and_4() {
    require_rump!();
    if std::env::var_os(CHILD_ENV).is_some() {
        // Re-executed by the parent below: one rump kernel with the given RUMP_NCPU.
        workload(10);
        return;
    }
    let exe = std::env::current_exe().unwrap();
    for ncpu in ["1", "4"] {
        let t0 = Instant::now();
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "eight_threads_ncpu_1_and_4",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD_ENV, "1")
            .env("RUMP_NCPU", ncpu)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Watchdog: 10 s of work; anything past 90 s is a deadlock.
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if t0.elapsed() > Duration::from_secs(90) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("NCPU={ncpu}: no progress after 90 s (deadlock?)");
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let out = child.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(status.success(), "NCPU={ncpu} child failed:\n{text}");
        assert!(
            text.contains("1 passed"),
            "NCPU={ncpu}: child did not run the workload:\n{text}"
        );
        let line = text
            .lines()
            .find_map(|l| l.find("ops per thread").map(|i| &l[i..]))
            .unwrap_or("?");
        println!("NCPU={ncpu}: {line} ({:.1} s)", t0.elapsed().as_secs_f64());
    }
}
