//! Boot sequence: from the boot stub's hand-off to a running scheduler. Each architecture's
//! `kmain` (`x86_64.rs`: Multiboot2/PVH, ACPI, APIC; `aarch64.rs`: the device tree, GIC,
//! generic timer) brings up its clocks, this CPU's scheduler and tick, then calls [`run`].

use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::bootinfo::BootInfo;
use crate::cmdline::Cmdline;
use crate::mm::phys;
use crate::{println, sched, time};

/// Monotonic ns at which kmain started its main thread.
pub static BOOT_DONE_NS: AtomicU64 = AtomicU64::new(0);
/// When pid 1 was started (ns of uptime).
pub static INIT_START_NS: AtomicU64 = AtomicU64::new(0);

pub use crate::bootinfo::{cmdline, info};

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "aarch64")]
use aarch64 as arch_boot;
#[cfg(not(target_arch = "aarch64"))]
mod x86_64;
#[cfg(not(target_arch = "aarch64"))]
use x86_64 as arch_boot;

/// The entry the boot stub (`adros_core`'s `boot.S`) jumps to, in long mode on the boot
/// stack, with the loader's magic and information pointer.
/// The arch-neutral rest of the boot, once the architecture's `kmain` has the clocks, this
/// CPU's scheduler and its tick running: subsystems, other CPUs, the banner, then init.
pub fn run(info: &'static BootInfo, cmd: &'static Cmdline) -> ! {
    crate::platform_init();
    crate::fs::init();
    crate::block::init();
    crate::fs::set_interrupt_check(crate::proc::signal::pending_for_current);
    crate::proc::register_user_hooks();
    crate::procfs::init();
    crate::sysfs::init();
    crate::tty::init();
    arch_boot::start_other_cpus(cmd);
    print_banner(info);
    BOOT_DONE_NS.store(time::now_ns(), Ordering::Relaxed);

    if let Some(filter) = cmd
        .param("ktest.run")
        .map(String::from)
        .or_else(|| cmd.init_args.iter().any(|a| a == "ktest").then(String::new))
    {
        crate::ktest::run_all(&filter);
    }
    if let Some(kind) = cmd.param("debug.crash") {
        crash(kind);
    }
    // After the in-kernel tests, which measure the frame allocator and the heap undisturbed.
    crate::rump::start();
    crate::usb::init();
    crate::net::init();
    crate::sound::init();
    if cmd.init_args.iter().any(|a| a == "poweroff") {
        println!("AdrOS: 'poweroff' on the command line: powering off");
        crate::power_off();
    }
    start_init(cmd);
    loop {
        sched::sleep_ms(1000);
    }
}

/// `adros.exec=HEX`: run the hex-encoded command with `/bin/sh -c` as pid 1, print its exit
/// status between markers, and power off (what `cargo xtask run --exec` uses).
fn exec_command(cmd: &Cmdline) -> Option<String> {
    let hex = cmd.param("adros.exec")?;
    let bytes: Option<Vec<u8>> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok())
        .collect();
    bytes.and_then(|b| String::from_utf8(b).ok())
}

/// Starts pid 1: `init=` (default /sbin/init) with the command line's init words, or the
/// `adros.exec` command.
fn start_init(cmd: &Cmdline) {
    let exec = exec_command(cmd);
    let (path, mut argv): (String, Vec<Vec<u8>>) = match &exec {
        Some(c) => (
            String::from("/bin/sh"),
            alloc::vec![b"/bin/sh".to_vec(), b"-c".to_vec(), c.as_bytes().to_vec()],
        ),
        None => {
            let p = cmd
                .init
                .clone()
                .unwrap_or_else(|| String::from("/sbin/init"));
            let mut words = p.split_whitespace();
            let path = String::from(words.next().unwrap_or("/sbin/init"));
            let mut argv: Vec<Vec<u8>> = alloc::vec![path.as_bytes().to_vec()];
            argv.extend(words.map(|w| w.as_bytes().to_vec()));
            (path, argv)
        }
    };
    if exec.is_none() {
        argv.extend(
            cmd.init_args
                .iter()
                .filter(|a| *a != "ktest" && *a != "poweroff")
                .map(|a| a.as_bytes().to_vec()),
        );
    }
    let mut envp: Vec<Vec<u8>> = ["HOME=/", "TERM=linux", "PATH=/sbin:/bin:/usr/sbin:/usr/bin"]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    envp.extend(cmd.init_env.iter().map(|e| e.as_bytes().to_vec()));
    if exec.is_some() {
        crate::proc::on_init_exit(|st| {
            let code = match st {
                crate::proc::ExitStatus::Exited(c) => i32::from(c),
                crate::proc::ExitStatus::Signaled(s) => 128 + i32::from(s),
            };
            println!("\n@@ADROS-EXEC-EXIT {code}@@");
            crate::power_off();
        });
        println!("@@ADROS-EXEC-BEGIN@@");
    } else {
        crate::proc::on_init_exit(|st| {
            log::error!("init exited ({st:?}); powering off");
            crate::power_off();
        });
    }
    INIT_START_NS.store(time::now_ns(), Ordering::Relaxed);
    match crate::proc::spawn_init(&path, argv, envp) {
        Ok(pid) => log::info!("init: started {path} as pid {pid}"),
        Err(e) => {
            log::error!(
                "init: cannot start {path}: {e:?}; the kernel keeps running without user space"
            );
            if exec.is_some() {
                println!("\n@@ADROS-EXEC-EXIT 127@@");
                crate::power_off();
            }
        }
    }
}

/// Brings up the application processors the MADT lists (`nosmp` / `maxcpus=N` limit it).
fn print_banner(info: &BootInfo) {
    let (free, total) = phys::stats();
    let usable = info.usable_bytes();
    println!("================================================================");
    println!(
        " AdrOS {} — {}, NetBSD rump kernel hypercall ABI",
        env!("CARGO_PKG_VERSION"),
        arch_boot::NAME
    );
    println!(
        " memory: {} MiB usable of {} MiB RAM top; {} MiB free ({} of {} frames)",
        usable >> 20,
        info.ram_top() >> 20,
        (free as u64 * 4096) >> 20,
        free,
        total
    );
    if crate::rump::LINKED {
        println!(
            " NetBSD rump components linked: {}",
            crate::rump::components()
        );
    } else {
        println!(" NetBSD rump components not linked: native drivers only");
    }
    let mut lines: Vec<String> = Vec::new();
    crate::describe_platform(&mut lines);
    for l in lines {
        println!(" {l}");
    }
    println!("================================================================");
}

/// `debug.crash=panic|pagefault|ud|stackoverflow` on the command line: crash on purpose
/// after boot, so the integration tests can check that every kind of kernel death is
/// reported and fails the run.
fn crash(kind: &str) {
    println!("AdrOS: crashing on purpose (debug.crash={kind})");
    match kind {
        "panic" => panic!("deliberate panic requested on the command line"),
        "pagefault" | "ud" => arch_boot::crash(kind),
        "stackoverflow" => {
            let h = sched::spawn("overflow", || {
                recurse(0);
            });
            h.join();
        }
        other => {
            log::warn!("debug.crash={other}: unknown kind (panic, pagefault, ud, stackoverflow)")
        }
    }
}

#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    let pad = [depth; 64];
    core::hint::black_box(&pad);
    recurse(depth + 1) + pad[3]
}
