//! The first steps of boot, from the boot stub's hand-off to a kernel with memory, a heap,
//! its own page tables, this CPU's descriptor tables and the boot information kept
//! ([`early`]); the kernel's `kmain` carries on from there (clocks, devices, scheduler).

use crate::arch::{self, cpu, gdt, idt, percpu};
use crate::bootinfo::{self, BootInfo};
use crate::cmdline::Cmdline;
use crate::mm::{self, layout, phys};
use crate::{println, symbols};

unsafe extern "C" {
    static __kernel_end: u8;
}

/// Steps 1–4 of boot: the frame allocator (under the boot identity map), our own page tables
/// and CPU protections, the heap, the boot information and command line kept for good, the
/// log level, this CPU's per-CPU block, GDT/TSS and IDT, and the kernel's symbol table (the
/// `symbols` module). A loader that gave no usable information stops the machine with a line
/// saying why.
pub fn early(magic: u64, mbi_phys: u64) -> (&'static BootInfo, &'static Cmdline, cpu::Features) {
    arch::serial::init();
    println!("\nAdrOS {} starting", env!("CARGO_PKG_VERSION"));

    // 1. Frames, under the boot identity map (GRUB puts its structure below 1 GiB, a PVH
    // loader its start info, memory map and module list; module contents are not read yet).
    // SAFETY: the loader handed us this pointer; the boot stub identity-maps the first GiB.
    let mbi = unsafe { bootinfo::load(magic, mbi_phys, 0) }.unwrap_or_else(|why| {
        println!("boot: {why} (magic {magic:#x}, information at {mbi_phys:#x}); stopping");
        arch::qemu_exit(crate::panic::EXIT_FAILURE)
    });
    let mut regions = [bootinfo::MemRegion {
        start: 0,
        end: 0,
        kind: bootinfo::RegionKind::Reserved,
    }; 128];
    let mut nregions = 0;
    let have_map = bootinfo::for_each_region(&mbi, |r| {
        if let Some(slot) = regions.get_mut(nregions) {
            *slot = r;
            nregions += 1;
        }
    });
    if !have_map {
        println!("boot: the boot loader gave no memory map; stopping");
        arch::qemu_exit(crate::panic::EXIT_FAILURE);
    }
    let regions = &regions[..nregions];
    // SAFETY: only the address of the linker symbol is used.
    let kernel_end_phys = unsafe { &__kernel_end as *const u8 as u64 } - layout::KERNEL_VMA;
    let mut reserved = [(0u64, 0u64); 16];
    let mut nres = 0;
    reserved[0] = (0x10_0000, kernel_end_phys);
    nres += 1;
    bootinfo::for_each_loader_range(&mbi, |s, e| {
        if let Some(slot) = reserved.get_mut(nres) {
            *slot = (s, e);
            nres += 1;
        }
    });
    phys::init(regions, &reserved[..nres]);

    // 2. Our own page tables (W^X, guard pages, linear map), then CPU protections.
    let feats = cpu::features();
    mm::paging::init(regions, feats.pdpe1gb);
    cpu::enable_protections(&feats);

    // 3. The heap works from here on.
    // SAFETY: the information structure is reserved RAM (or below 1 MiB), now reached
    // through the linear map, which covers the first 2 MiB and all RAM.
    let mbi = unsafe { bootinfo::load(magic, mbi_phys, mm::phys_to_virt(0)) }
        .expect("boot information vanished");
    let (info, cmd) = bootinfo::keep(bootinfo::collect(&mbi, layout::PHYS_OFFSET));
    let level = cmd
        .loglevel
        .as_deref()
        .and_then(crate::klog::parse_level)
        .unwrap_or(log::LevelFilter::Info);
    crate::klog::init(level);

    // 4. This CPU: per-CPU block (GS), GDT/TSS with IST stacks, IDT.
    percpu::init_this_cpu(0, 0);
    if cpu::set_tsc_aux(0) {
        crate::time::user_clock::set_flags(crate::time::user_clock::FLAG_RDTSCP);
    }
    gdt::init_this_cpu();
    idt::init();
    arch::tlb::init();
    arch::user::init_this_cpu();

    if let Some(text) = bootinfo::module_bytes("symbols").and_then(|b| core::str::from_utf8(b).ok())
    {
        symbols::install(symbols::SymbolTable::parse(text));
    }
    (info, cmd, feats)
}
