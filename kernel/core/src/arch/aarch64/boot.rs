//! The first steps of boot on aarch64, from the boot stub's `kmain(dtb)` hand-off to a
//! kernel with a console, the device tree read, frames, a heap, this CPU's per-CPU block,
//! the GIC and the clock: what x86_64's `boot::early` does from Multiboot2/PVH information.
//! A device tree that is missing or lacks what the kernel needs stops the machine with a
//! line naming what is missing, on the PL011 at QEMU `virt`'s address.

use alloc::string::String;

use crate::devicetree::{self, Machine};
use crate::mm::layout::KERNEL_VMA;
use crate::mm::{phys, phys_to_virt};
use crate::println;

unsafe extern "C" {
    static __kernel_start: u8;
    static __kernel_end: u8;
}

/// Where QEMU puts the device tree for an ELF `-kernel` (x0 is 0 then): the start of RAM,
/// physical 0x4000_0000 on `virt`.
const VIRT_RAM_BASE: u64 = 0x4000_0000;

/// What boot found, for the banner and the rest of `kmain`.
pub struct Boot {
    pub machine: Machine<'static>,
    pub dtb_pa: u64,
    /// RAM the memory nodes describe (bytes), and what the frame allocator got of it.
    pub ram_bytes: u64,
    pub frames_total: usize,
    pub frames_free: usize,
    pub gic_lines: u32,
    pub counter_hz: u64,
    pub cpu_model: &'static str,
    pub el: u64,
    pub cmdline: crate::cmdline::Cmdline,
}

fn stop(why: core::fmt::Arguments<'_>) -> ! {
    println!("boot: {why}; stopping");
    super::qemu_exit(crate::panic::EXIT_FAILURE)
}

/// Reads the device tree at physical `pa` (through the linear map), if it is one.
fn device_tree(pa: u64) -> Result<&'static [u8], &'static str> {
    if !(VIRT_RAM_BASE..super::BOOT_MAPPED_TOP - 64).contains(&pa) {
        return Err("outside the RAM the boot stub maps");
    }
    let va = phys_to_virt(pa);
    // SAFETY: `pa` lies in the boot stub's linear map of RAM; the header is 40 bytes.
    let header = unsafe { core::slice::from_raw_parts(va as *const u8, 40) };
    let size = devicetree::blob_size(header).ok_or("no device-tree magic (0xd00dfeed) there")?;
    if size < 40 || pa + size as u64 > super::BOOT_MAPPED_TOP {
        return Err("its size runs past mapped RAM");
    }
    // SAFETY: the whole blob lies in the linear map (checked above); QEMU wrote it and
    // nothing writes it afterwards (its frames are reserved below).
    Ok(unsafe { core::slice::from_raw_parts(va as *const u8, size) })
}

/// Steps 1–5 of boot; `dtb_pa` is what the boot stub got in x0.
pub fn early(dtb_pa: u64) -> Boot {
    super::exceptions::mark_installed();
    // The boot stub left SP_EL0 at the boot CPU's emergency stack: remember it, so that
    // entries from user mode (which borrows SP_EL0) can put it back.
    let emergency: u64;
    // SAFETY: reading a system register has no side effect.
    unsafe {
        core::arch::asm!("mrs {v}, sp_el0", v = out(reg) emergency, options(nomem, nostack, preserves_flags))
    };
    super::cpu::set_emergency_stack(emergency);
    super::user::enable_fp_this_cpu();
    super::serial::init();
    println!("\nAdrOS {} starting (aarch64)", env!("CARGO_PKG_VERSION"));

    // 1. The device tree, through the boot stub's linear map.
    super::paging::init();
    let dtb_pa = if dtb_pa != 0 { dtb_pa } else { VIRT_RAM_BASE };
    let blob = device_tree(dtb_pa).unwrap_or_else(|why| {
        stop(format_args!(
            "no device tree at {dtb_pa:#x}: {why} (boot through QEMU -kernel, which passes one)"
        ))
    });
    let machine = devicetree::parse(blob)
        .unwrap_or_else(|e| stop(format_args!("device tree at {dtb_pa:#x}: {e}")));
    if !super::serial::set_base(machine.uart.0) {
        println!(
            "boot: the PL011 at {:#x} lies outside the device window; keeping the console at the default",
            machine.uart.0
        );
    }

    // 2. Frames: RAM below what the boot stub maps, less the image, the tree and an initrd.
    let mut regions = machine.regions;
    let n = machine.nregions;
    for r in regions[..n].iter_mut() {
        if r.end > super::BOOT_MAPPED_TOP {
            println!(
                "boot: RAM above {:#x} is not used yet ({:#x}..{:#x})",
                super::BOOT_MAPPED_TOP,
                r.start.max(super::BOOT_MAPPED_TOP),
                r.end
            );
            r.end = r.end.min(super::BOOT_MAPPED_TOP);
            r.start = r.start.min(r.end);
        }
    }
    // SAFETY: only the addresses of the linker symbols are taken.
    let (kstart, kend) = unsafe {
        (
            &__kernel_start as *const u8 as u64 - KERNEL_VMA,
            &__kernel_end as *const u8 as u64 - KERNEL_VMA,
        )
    };
    let mut reserved = [(kstart, kend), (dtb_pa, dtb_pa + blob.len() as u64), (0, 0)];
    if let Some((s, e)) = machine.initrd {
        if !regions[..n].iter().any(|r| r.start <= s && e <= r.end) {
            stop(format_args!(
                "device tree at {dtb_pa:#x}: the initrd {s:#x}..{e:#x} lies outside the RAM in use"
            ));
        }
        reserved[2] = (s, e);
    }
    phys::init(&regions[..n], &reserved);
    // W^X for the image, and the boot stack's guard page.
    if let Err(e) = super::paging::protect_kernel() {
        println!("boot: the image keeps the boot stub's read-write-execute mapping: {e:?}");
    }
    let (frames_free, frames_total) = phys::stats();

    // 3. The heap works from here on; the command line and the log. What the layers above
    // read through `bootinfo` (as x86_64's loader path fills it): the command line, the RAM,
    // the initrd (`linux,initrd-start/end`, where QEMU's `-initrd` puts it) as module "initrd".
    let info = crate::bootinfo::BootInfo {
        regions: regions[..n].to_vec(),
        modules: machine
            .initrd
            .map(|(start, end)| crate::bootinfo::Module {
                start,
                end,
                name: String::from("initrd"),
            })
            .into_iter()
            .collect(),
        cmdline: String::from(machine.bootargs),
        rsdp: None,
        loader: String::from("device tree (QEMU virt)"),
    };
    crate::bootinfo::keep(info);
    let cmdline = crate::cmdline::Cmdline::parse(machine.bootargs);
    let level = cmdline
        .loglevel
        .as_deref()
        .and_then(crate::klog::parse_level)
        .unwrap_or(log::LevelFilter::Info);
    crate::klog::init(level);

    // 4. This CPU.
    super::percpu::init_this_cpu(0, super::cpu::mpidr());
    super::psci::set_conduit(machine.psci);

    // 5. Interrupts and the clock.
    let gic_lines =
        super::gic::init(&machine.gic).unwrap_or_else(|e| stop(format_args!("GICv3: {e}")));
    // Device interrupts: each trigger as the device tree gives it; a node whose
    // `interrupts` cannot be used is named and its device skipped.
    let irqs = core::iter::once(("PL011", machine.uart_irq)).chain(
        machine
            .virtio_mmio()
            .iter()
            .map(|s| (s.node, s.dev.map(|d| d.irq))),
    );
    for (node, irq) in irqs {
        let r = irq.and_then(|i| {
            super::gic::set_trigger(i.intid, i.edge)
                .map_err(|_| "its interrupt is not an SPI of this GIC")
        });
        if let Err(why) = r {
            log::warn!("devicetree: {node}: {why}; the device is skipped");
        }
    }
    let counter_hz = super::cpu::counter_hz();
    if counter_hz == 0 {
        stop(format_args!(
            "the generic timer reports a frequency of 0 (CNTFRQ_EL0)"
        ));
    }
    crate::time::set_tsc_hz(counter_hz, super::cpu::counter());

    let ram_bytes = machine.memory_bytes();
    MACHINE.call_once(|| machine.clone());
    Boot {
        machine,
        dtb_pa,
        ram_bytes,
        frames_total,
        frames_free,
        gic_lines,
        counter_hz,
        cpu_model: super::cpu::model(),
        el: super::cpu::current_el(),
        cmdline,
    }
}

/// The machine as the device tree described it (after [`early`]).
static MACHINE: spin::Once<Machine<'static>> = spin::Once::new();

/// What [`early`] read from the device tree: the devices the layers above probe.
pub fn machine() -> Option<&'static Machine<'static>> {
    MACHINE.get()
}

/// The command line as given (for messages).
pub fn describe_cmdline(b: &Boot) -> String {
    String::from(b.cmdline.raw.as_str())
}
