//! s00: the image boots to a complete banner on different machines.
//!
//! Every banner test here stops QEMU once the banner is complete (the kernel idles after
//! boot). The last two check the two ways in: the default direct PVH boot and the GRUB ISO.

use std::time::Duration;

use adros_tests::{Boot, Transcript, banner, skip};

/// The banner's usable memory must be close to what QEMU was given: at least 85 % (firmware,
/// the 640 KiB hole and ACPI tables take some) and never more.
fn expect_memory(t: &Transcript, mib: u64) {
    match banner::usable_mib(t.serial()) {
        Some(u) if u * 100 >= mib * 85 && u <= mib => {}
        Some(u) => t.fail(&format!(
            "the banner reports {u} MiB usable for a {mib} MiB guest"
        )),
        None => t.fail("the banner has no ` memory: N MiB usable` line"),
    }
}

/// Checks the banner's CPU count against `-smp`. Returns false (after printing SKIPPED)
/// when the kernel cannot count CPUs yet (no MADT): a count it did not measure proves nothing.
fn expect_cpus(t: &Transcript, test: &str, smp: u64) -> bool {
    let Some(line) = banner::field(t.serial(), "cpus") else {
        t.fail("the banner has no ` cpus:` line")
    };
    if line.contains("not parsed") {
        skip(
            test,
            &format!("booted with -smp {smp}, but the banner cannot count CPUs yet ({line:?})"),
        );
        return false;
    }
    match banner::cpus(t.serial()) {
        Some(n) if n == smp => true,
        other => t.fail(&format!(
            "the banner reports {other:?} CPUs for -smp {smp}: {line:?}"
        )),
    }
}

#[test]
fn banner_lists_memory_and_cpus() {
    let t = Boot::new("s00_boot-banner_lists_memory_and_cpus")
        .until_banner()
        .run();
    t.expect_banner();
    t.expect_contains("AdrOS 0.1.0 starting");
    t.expect_contains("AdrOS: command line: console=ttyS0");
    expect_memory(&t, 1024);
    if banner::cpus(t.serial()).is_none() {
        t.fail("the banner has no ` cpus: N` line");
    }
}

#[test]
fn banner_lists_pci_devices() {
    let name = "s00_boot-banner_lists_pci_devices";
    let t = Boot::new(name).until_banner().run();
    t.expect_banner();
    let pci = banner::pci_lines(t.serial());
    if pci.is_empty() {
        skip(
            name,
            "the banner lists no PCI devices yet (PCI enumeration has not landed)",
        );
        return;
    }
    // q35's host bridge and its ICH9 LPC bridge are always there.
    for id in ["8086:29c0", "8086:2918"] {
        if !pci.iter().any(|l| l.contains(id)) {
            t.fail(&format!("the PCI listing lacks {id}"));
        }
    }
}

#[test]
fn boots_with_128m() {
    let t = Boot::new("s00_boot-boots_with_128m")
        .mem_mib(128)
        .until_banner()
        .run();
    t.expect_banner();
    expect_memory(&t, 128);
}

#[test]
fn boots_with_8g() {
    let t = Boot::new("s00_boot-boots_with_8g")
        .mem_mib(8192)
        .until_banner()
        .run();
    t.expect_banner();
    expect_memory(&t, 8192);
}

#[test]
fn boots_with_smp1() {
    let name = "s00_boot-boots_with_smp1";
    let t = Boot::new(name).smp(1).until_banner().run();
    t.expect_banner();
    expect_cpus(&t, name, 1);
}

#[test]
fn boots_with_smp4() {
    let name = "s00_boot-boots_with_smp4";
    let t = Boot::new(name).smp(4).until_banner().run();
    t.expect_banner();
    expect_cpus(&t, name, 4);
}

/// The default boot is QEMU's direct PVH entry (`-kernel`, the module bundle as `-initrd`):
/// the kernel says so, the command line arrives, and both modules of the bundle do — the
/// symbol table (a backtrace would name functions) and the initrd (the root has /bin).
#[test]
fn pvh_direct_boot_gets_command_line_and_modules() {
    let cmd = "test -x /bin/busybox && echo root-ok";
    let hex: String = cmd.bytes().map(|b| format!("{b:02x}")).collect();
    let t = Boot::new("s00_boot-pvh_direct_boot")
        .args(&format!("pvh.word=42 adros.exec={hex}"))
        .run();
    t.expect_contains("boot loader: PVH direct boot");
    t.expect_contains("AdrOS: command line: console=ttyS0 loglevel=6 pvh.word=42 adros.exec=");
    t.expect_contains("fs: initrd ");
    let (out, status) = t.exec_result();
    if status != 0 || !out.contains("root-ok") {
        t.fail(&format!(
            "the initrd's /bin/busybox is missing (status {status}): {out:?}"
        ));
    }
    if t.serial().contains("BOOT ERROR") || t.serial().contains("malformed module bundle") {
        t.fail("a boot module was refused");
    }
}

/// The GRUB ISO (SeaBIOS → GRUB → Multiboot2), which real machines boot, still reaches the
/// interactive shell: a command typed at the prompt runs and `poweroff` ends the machine.
#[test]
fn iso_boots_to_the_shell() {
    let t = Boot::new("s00_boot-iso_boots_to_the_shell")
        .iso()
        .timeout(Duration::from_secs(180))
        .type_after("adros:/# ", "echo iso-$((6*7))\n")
        .type_after("iso-42", "poweroff\n")
        .run();
    if let Some(report) = banner::crash_report(t.serial()) {
        t.fail(&format!("the kernel crashed:\n{report}"));
    }
    t.expect_contains("boot loader: GRUB");
    if !t.serial().replace('\r', "").contains("\niso-42") {
        t.fail("the command typed at the shell prompt did not run");
    }
    if t.status() != Some(0) {
        t.fail("poweroff at the prompt did not power the machine off (exit status 0)");
    }
}
