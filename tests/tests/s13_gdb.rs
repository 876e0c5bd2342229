//! s13: `cargo xtask run --gdb`: QEMU's gdb stub with the CPUs stopped, and the gdb script
//! it prints ([`qemu::gdb_script`]) — driven here by gdb in batch mode: it stops in
//! `kmain`, then breaks in a function of the kernel core that kmain reaches through
//! `adros_core::boot::early` and prints a backtrace naming all three, across the two crates.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use adros_tests::{DEFAULT_CMDLINE, direct_machine, qemu, target_dir, test_dir};

fn kernel() -> PathBuf {
    std::env::var_os("ADROS_KERNEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("x86_64-unknown-none/release/adros-kernel"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

#[test]
fn gdb_breaks_in_a_kernel_function_and_prints_a_backtrace() {
    let port = free_port();
    let mut m = direct_machine(DEFAULT_CMDLINE);
    m.gdb = Some(port);
    std::fs::create_dir_all(test_dir()).unwrap();
    let serial = test_dir().join("s13_gdb.serial");
    let mut qemu = Command::new("qemu-system-x86_64")
        .args(m.args())
        .args(["-display", "none", "-monitor", "none", "-serial"])
        .arg(format!("file:{}", serial.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting qemu-system-x86_64 (cargo xtask deps installs it)");
    let script = test_dir().join("s13_gdb.gdb");
    std::fs::write(
        &script,
        format!(
            "{}break adros_core::mm::phys::init\ncontinue\nbt\nkill\n",
            qemu::gdb_script(&kernel(), port)
        ),
    )
    .unwrap();
    // QEMU listens a moment after it starts: try again while the connection is refused.
    let t0 = Instant::now();
    let text = loop {
        let out = Command::new("timeout")
            .args(["120", "gdb", "-nx", "-batch", "-x"])
            .arg(&script)
            .output()
            .expect("running gdb (cargo xtask deps installs it)");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if text.contains("Connection refused") && t0.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        break text;
    };
    let _ = qemu.kill();
    let _ = qemu.wait();
    let mut qerr = String::new();
    if let Some(mut e) = qemu.stderr.take() {
        let _ = e.read_to_string(&mut qerr);
    }
    let ctx = format!("--- gdb ---\n{text}\n--- qemu stderr ---\n{qerr}");
    assert!(
        text.contains("hit Breakpoint 1,"),
        "gdb never stopped at kmain's hardware breakpoint\n{ctx}"
    );
    assert!(
        text.contains("hit Breakpoint 2, adros_core::mm::phys::init"),
        "gdb did not break in mm::phys::init\n{ctx}"
    );
    let bt: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
    assert!(
        bt.first()
            .is_some_and(|l| l.contains("adros_core::mm::phys::init"))
            && bt.iter().any(|l| l.contains("adros_core::boot::early"))
            && bt
                .iter()
                .any(|l| l.contains("adros_kernel::boot::x86_64::kmain")),
        "the backtrace does not lead from kmain to mm::phys::init: {bt:?}\n{ctx}"
    );
}
