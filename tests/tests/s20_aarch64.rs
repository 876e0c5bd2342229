//! s20: AdrOS on aarch64 (QEMU `virt`, GICv3, Cortex-A72): the kernel core's aarch64 image
//! (`kernel/aarch64`, built by `cargo xtask test` or `cargo xtask build --arch aarch64`).
//! One boot checks the banner against the machine QEMU was given (CPUs and RAM from the
//! device tree), the frame allocator and heap, sleeping on the timer, two kernel threads
//! that never yield taking turns on CPU 0's timer tick, and the second CPU (started through
//! PSCI) running the thread pinned to it; one more with other `-smp`/`-m` shows the numbers
//! are read, not assumed; four provoke exceptions for the report (an
//! unmapped address, a write to the read-only text, a stack overflow into the guard page,
//! `brk`); one gives QEMU a device tree without a UART. Skipped (not passed) when
//! `qemu-system-aarch64` or the image is missing.

use std::path::PathBuf;
use std::time::Duration;

use adros_tests::qemu::{self, Arch, Machine};
use adros_tests::{Transcript, skip, target_dir};

/// The image, or why the tests cannot run (then they are skipped).
fn image(test: &str) -> Option<PathBuf> {
    if !qemu::qemu_available(Arch::Aarch64) {
        skip(
            test,
            "qemu-system-aarch64 is not installed (`cargo xtask deps` installs qemu-system-arm)",
        );
        return None;
    }
    if let Ok(why) = std::env::var("ADROS_AARCH64_SKIP") {
        skip(test, &why);
        return None;
    }
    let k = std::env::var_os("ADROS_KERNEL_AARCH64")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            target_dir().join("aarch64-unknown-none-softfloat/release/adros-aarch64")
        });
    if !k.exists() {
        skip(
            test,
            &format!(
                "{} does not exist: run `cargo xtask build --arch aarch64` or `cargo xtask test`",
                k.display()
            ),
        );
        return None;
    }
    Some(k)
}

fn boot(name: &str, m: Machine) -> Transcript {
    let timeout = Duration::from_secs(120);
    let out =
        qemu::run_headless(&m, timeout, |_| {}, None).unwrap_or_else(|e| panic!("{name}: {e}"));
    Transcript {
        name: name.to_string(),
        cmdline: m
            .direct
            .as_ref()
            .map(|d| d.append.clone())
            .unwrap_or_default(),
        machine: m,
        timeout,
        out,
    }
}

/// The number after `key` in `line` (`"… 319 ticks"` with key `" ticks"` reads backwards).
fn number_before(line: &str, key: &str) -> Option<u64> {
    let end = line.find(key)?;
    let start = line[..end]
        .rfind(|c: char| !c.is_ascii_digit())
        .map_or(0, |i| i + 1);
    line[start..end].parse().ok()
}

#[test]
fn s20_aarch64_boots_schedules_two_threads_on_the_timer_tick() {
    let name = "s20_aarch64-boot";
    let Some(k) = image(name) else { return };
    let mut m = Machine::aarch64(&k, "");
    m.smp = 2;
    m.mem_mib = 512;
    let t = boot(name, m);
    let s = t.serial().replace('\r', "");
    t.expect_contains("AdrOS 0.1.0 starting (aarch64)");
    // The banner: CPUs and RAM as QEMU was told, from the device tree.
    let Some(banner) = s.lines().find(|l| l.starts_with("AdrOS 0.1.0 aarch64:")) else {
        t.fail("no banner")
    };
    for want in [
        "2 CPUs (Cortex-A72)",
        "512 MiB RAM",
        "EL1",
        "GICv3",
        "on interrupt 27",
    ] {
        if !banner.contains(want) {
            t.fail(&format!("the banner lacks {want:?}: {banner}"));
        }
    }
    t.expect_contains("boot: RAM 0x40000000..0x60000000 (512 MiB)");
    t.expect_contains("boot: image W^X: text");
    // Frames and heap.
    let Some(mm) = s.lines().find(|l| l.starts_with("mm: ")) else {
        t.fail("no mm line")
    };
    if !mm.contains("read back intact") || !mm.contains("4 MiB vector ok") {
        t.fail(&format!("memory check: {mm}"));
    }
    let free = number_before(mm, " frames free at boot").unwrap_or(0);
    // 512 MiB is 131072 frames; the image, the device tree and the bitmap take a few.
    if !(129_000..131_072).contains(&free) {
        t.fail(&format!("{free} free frames for 512 MiB: {mm}"));
    }
    // User address spaces (the core's `mm::uspace` on aarch64 descriptors): the MMU reads
    // a demand-filled page through TTBR0, fork's copy-on-write splits on the child's write.
    t.expect_contains(
        "uspace: a user page written by the parent read back through TTBR0; after fork the child's write broke copy-on-write",
    );
    // User mode: a thread at EL0 makes system calls (svc), takes a demand-zero stack fault
    // and timer interrupts, exits with its status; a read of address 0 ends its thread.
    let Some(el0) = s.lines().find(|l| l.starts_with("el0: ")) else {
        t.fail("no el0 line")
    };
    for want in [
        "wrote \"hello from EL0\\n\", exit status 30; 2 system calls",
        "address 0 read: exception class 0x24 at 0x0",
    ] {
        if !el0.contains(want) {
            t.fail(&format!("{want:?} missing from {el0}"));
        }
    }
    // Two user threads in their own address spaces take turns on CPU 0: each keeps its
    // memory, FP/SIMD registers and TPIDR_EL0 across the switches.
    t.expect_contains(
        "el0: two user threads on CPU 0, each in its own address space: exit statuses [0, 0], overlapping: true; memory, d8, d31 and TPIDR_EL0 kept across switches",
    );
    if number_before(el0, " interrupts taken at EL0").unwrap_or(0) == 0
        || number_before(el0, " faults resolved").unwrap_or(0) == 0
    {
        t.fail(&format!("no interrupt or no resolved fault at EL0: {el0}"));
    }
    // Sleeping: the boot thread blocks and the timer wakes it.
    let Some(sleep) = s.lines().find(|l| l.starts_with("time: slept 50 ms")) else {
        t.fail("the boot thread never woke from its 50 ms sleep")
    };
    let slept_us = number_before(sleep, " us later").unwrap_or(0);
    if slept_us < 50_000 {
        t.fail(&format!("woke before the deadline: {sleep}"));
    }
    // Two spinning threads: both finish all rounds, and the ticks and switches they see
    // grow from line to line.
    let mut last_ticks = 0;
    let mut rounds = [0, 0];
    let mut order = String::new();
    for l in s.lines().filter(|l| l.starts_with("thread ")) {
        let who = if l.starts_with("thread A:") { 0 } else { 1 };
        rounds[who] += 1;
        order.push(if who == 0 { 'A' } else { 'B' });
        let ticks = number_before(l, " ticks").unwrap_or(0);
        if ticks < last_ticks {
            t.fail(&format!("the tick count went back: {l}"));
        }
        last_ticks = ticks;
    }
    if rounds != [5, 5] {
        t.fail(&format!("rounds per thread: {rounds:?} (want 5 each)"));
    }
    // Without preemption the first thread would run all its rounds before the second
    // started (AAAAABBBBB): they must alternate at least once more.
    let changes = order.as_bytes().windows(2).filter(|w| w[0] != w[1]).count();
    if changes < 2 {
        t.fail(&format!(
            "the threads did not take turns ({order}): no timer preemption"
        ));
    }
    if last_ticks == 0 {
        t.fail("no timer ticks");
    }
    let Some(summary) = s.lines().find(|l| l.starts_with("sched: ")) else {
        t.fail("no scheduler summary")
    };
    let switches = number_before(summary, " context switches").unwrap_or(0);
    if switches < 4 {
        t.fail(&format!("only {switches} context switches: {summary}"));
    }
    // The second CPU, started through PSCI, runs the thread pinned to it.
    t.expect_contains("smp: 2 of 2 CPUs online");
    t.expect_contains("smp: the thread pinned to CPU 1 ran on CPU 1;");
    t.expect_contains("aarch64: timer, scheduler and context switch work on 2 CPU(s)");
    if t.status() != Some(qemu::STATUS_SUCCESS) {
        t.fail("the guest did not exit with the success status");
    }
}

#[test]
fn s20_aarch64_reads_cpus_and_memory_from_the_device_tree() {
    let name = "s20_aarch64-3cpus-768m";
    let Some(k) = image(name) else { return };
    let mut m = Machine::aarch64(&k, "");
    m.smp = 3;
    m.mem_mib = 768;
    let t = boot(name, m);
    t.expect_contains("3 CPUs (Cortex-A72), 768 MiB RAM");
    t.expect_contains("boot: RAM 0x40000000..0x70000000 (768 MiB)");
    t.expect_contains("smp: 3 of 3 CPUs online");
    for cpu in 0..3 {
        t.expect_contains(&format!(
            "smp: the thread pinned to CPU {cpu} ran on CPU {cpu};"
        ));
    }
    t.expect_contains("aarch64: timer, scheduler and context switch work on 3 CPU(s)");
    if t.status() != Some(qemu::STATUS_SUCCESS) {
        t.fail("the guest did not exit with the success status");
    }
}

/// Boots with `adros.fault=KIND` and checks the report and the panic status.
fn fault(kind: &str, k: &std::path::Path, wants: &[&str]) {
    let name = format!("s20_aarch64-fault-{kind}");
    let t = boot(&name, Machine::aarch64(k, &format!("adros.fault={kind}")));
    for w in wants {
        t.expect_contains(w);
    }
    t.expect_contains("backtrace:");
    if t.status() != Some(qemu::STATUS_PANIC) {
        t.fail("the guest did not exit with the panic status");
    }
    if t.serial().contains("context switch work") {
        t.fail("the kernel went on after the fault");
    }
}

#[test]
fn s20_aarch64_faults_are_reported_with_the_decoded_syndrome() {
    let Some(k) = image("s20_aarch64-faults") else {
        return;
    };
    // An unmapped kernel address.
    fault(
        "data",
        &k,
        &[
            "!!! EXCEPTION: synchronous from EL1 on CPU 0: data abort at the current EL: translation fault",
            "FAR 0xffffa00000000ff8",
            "(class 0x25)",
        ],
    );
    // W^X: the kernel's text is read-only.
    fault(
        "text",
        &k,
        &["data abort at the current EL: permission fault (level 3), write"],
    );
    // The boot stack's guard page: reported from the emergency stack, not a fault loop.
    fault(
        "stack",
        &k,
        &[
            "translation fault (level 3), write",
            "the fault address is a kernel stack's guard page: stack overflow",
        ],
    );
    fault(
        "brk",
        &k,
        &["synchronous from EL1 on CPU 0: BRK instruction"],
    );
}

#[test]
fn s20_aarch64_device_tree_without_a_uart_stops_with_a_message() {
    let name = "s20_aarch64-no-uart";
    let Some(k) = image(name) else { return };
    let dtb = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../kernel/core/src/testdata/virt-no-uart.dtb");
    let mut m = Machine::aarch64(&k, "");
    m.dtb = Some(dtb);
    let t = boot(name, m);
    t.expect_contains("boot: device tree at 0x40000000: no PL011 UART");
    t.expect_contains("; stopping");
    if t.status() != Some(qemu::STATUS_FAILURE) {
        t.fail("the guest did not exit with the failure status");
    }
}
