//! The aarch64 milestone's `kmain` (see main.rs).

extern crate alloc;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use adros_core::arch::aarch64::{boot, exceptions, gic, timer};
use adros_core::mm::{phys, phys_to_virt};
use adros_core::{println, sched, time};

/// Rounds each thread runs, and how long each round spins.
const ROUNDS: u32 = 5;
const ROUND_MS: u64 = 100;

/// Which thread printed the last round (0: none yet, 1: A, 2: B), and how many times the
/// printing thread changed: 1 if one thread ran all its rounds before the other started
/// (no preemption), more if they took turns.
static LAST: AtomicU32 = AtomicU32::new(0);
static TURNS: AtomicU32 = AtomicU32::new(0);
static ROUNDS_DONE: [AtomicU32; 2] = [AtomicU32::new(0), AtomicU32::new(0)];
static BOOT_NS: AtomicU64 = AtomicU64::new(0);

fn ms_since_boot() -> u64 {
    (time::now_ns() - BOOT_NS.load(Ordering::Relaxed)) / 1_000_000
}

/// Spins (never yields, never blocks) through `ROUNDS` rounds of `ROUND_MS` each.
fn spinner(id: u32) {
    let name = if id == 1 { "A" } else { "B" };
    let start = time::now_ns();
    for round in 1..=ROUNDS {
        let until = start + u64::from(round) * ROUND_MS * 1_000_000;
        let mut spins = 0u64;
        while time::now_ns() < until {
            spins += 1;
            core::hint::spin_loop();
        }
        let (ticks, switches, _) = sched::stats();
        if LAST.swap(id, Ordering::SeqCst) != id {
            TURNS.fetch_add(1, Ordering::SeqCst);
        }
        ROUNDS_DONE[id as usize - 1].fetch_add(1, Ordering::SeqCst);
        println!(
            "thread {name}: round {round}/{ROUNDS} at {} ms, {} ticks, {} switches, {spins} spins",
            ms_since_boot(),
            ticks,
            switches
        );
    }
}

#[unsafe(no_mangle)]
extern "C" fn kmain(dtb_pa: u64) -> ! {
    let b = boot::early(dtb_pa);
    BOOT_NS.store(time::now_ns(), Ordering::Relaxed);
    let m = &b.machine;
    println!(
        "AdrOS {} aarch64: {} CPUs ({}), {} MiB RAM, EL{}, GICv3 with {} interrupt lines, generic timer at {} Hz on interrupt {}",
        env!("CARGO_PKG_VERSION"),
        m.cpus().len(),
        b.cpu_model,
        b.ram_bytes >> 20,
        b.el,
        b.gic_lines,
        b.counter_hz,
        m.timer_intid
    );
    println!(
        "boot: device tree at {:#x} ({} bytes), UART at {:#x}, GIC distributor {:#x} redistributors {:#x}, PSCI {:?}, command line {:?}",
        b.dtb_pa,
        m.total_size,
        m.uart.0,
        m.gic.dist,
        m.gic.redist,
        m.psci,
        boot::describe_cmdline(&b)
    );
    let [(text, text_end, _), (ro, ro_end, _), (data, end, _)] =
        adros_core::mm::paging::kernel_sections();
    println!(
        "boot: image W^X: text {text:#x}..{text_end:#x} read-only executable, rodata {ro:#x}..{ro_end:#x} read-only, data {data:#x}..{end:#x} never executable; boot stack guard page {:#x} unmapped",
        adros_core::mm::paging::boot_stack_guard()
    );
    for r in m.regions() {
        println!(
            "boot: RAM {:#x}..{:#x} ({} MiB)",
            r.start,
            r.end,
            (r.end - r.start) >> 20
        );
    }

    match b.cmdline.param("adros.fault") {
        Some("data") => exceptions::provoke(exceptions::Provoke::DataAbort),
        Some("brk") => exceptions::provoke(exceptions::Provoke::Breakpoint),
        Some("text") => exceptions::provoke(exceptions::Provoke::WriteText),
        Some("stack") => exceptions::provoke(exceptions::Provoke::StackOverflow),
        Some(other) => println!("boot: adros.fault={other}: unknown (data, text, stack, brk)"),
        None => {}
    }

    check_memory(&b);
    check_user_memory();
    start_scheduler(&b);
}

/// Frames and heap: allocate, write, read back, free, and see the counts come back.
fn check_memory(b: &boot::Boot) {
    let (free0, _) = phys::stats();
    let mut frames = Vec::new();
    for i in 0..256u64 {
        let Some(pa) = phys::alloc_frame() else {
            println!("mm: FAILED: frame allocation {i} failed");
            adros_core::arch::qemu_exit(adros_core::panic::EXIT_FAILURE);
        };
        // SAFETY: the frame was just allocated to us and is reached through the linear map.
        unsafe { (phys_to_virt(pa) as *mut u64).write_volatile(pa ^ i) };
        frames.push((pa, i));
    }
    let intact = frames.iter().all(|&(pa, i)| {
        // SAFETY: as above; still ours.
        unsafe { (phys_to_virt(pa) as *const u64).read_volatile() == pa ^ i }
    });
    let (free1, _) = phys::stats();
    for &(pa, _) in &frames {
        phys::free_frame(pa);
    }
    drop(frames);
    let (free2, total) = phys::stats();
    // A few MiB from the heap, grown page by page through the page tables.
    let v: Vec<u64> = (0..(4u64 << 20) / 8).collect();
    let sum: u64 = v.iter().sum();
    let n = v.len() as u64;
    let heap_ok = sum == n * (n - 1) / 2;
    drop(v);
    let (mapped, allocated) = adros_core::mm::heap::stats();
    println!(
        "mm: {} frames free at boot ({} MiB usable; the bitmap tracks {} frames from physical 0); 256 frames allocated, written and read back {}, freed: {} -> {} -> {} free; heap: 4 MiB vector {}, {} KiB mapped, {} bytes in use",
        b.frames_free,
        (b.frames_free as u64 * 4096) >> 20,
        total,
        if intact { "intact" } else { "CORRUPTED" },
        free0,
        free1,
        free2,
        if heap_ok { "ok" } else { "WRONG" },
        mapped >> 10,
        allocated
    );
    if !intact || !heap_ok || free1 + 256 != free0 || free2 != free0 {
        println!("mm: FAILED");
        adros_core::arch::qemu_exit(adros_core::panic::EXIT_FAILURE);
    }
}

/// The core's user address spaces (`mm::uspace`) on aarch64's translation tables: a
/// demand-filled anonymous mapping, read by the MMU through TTBR0; a fork whose write
/// breaks copy-on-write while the parent keeps its bytes; every frame back after both go.
fn check_user_memory() {
    use adros_core::arch::aarch64::upt;
    use adros_core::mm::uspace::{AddressSpace, PAGE, PROT_READ, PROT_WRITE};
    const VA: u64 = 0x40_0000;
    let fail = |what: &str| -> ! {
        println!("uspace: FAILED: {what}");
        adros_core::arch::qemu_exit(adros_core::panic::EXIT_FAILURE)
    };
    // What the MMU reads at `va` with `space` loaded.
    let read_at = |space: &AddressSpace, va: u64| -> [u8; 6] {
        space.activate();
        let mut b = [0u8; 6];
        for (i, x) in b.iter_mut().enumerate() {
            // SAFETY: `va` lies in a readable VMA of the address space just loaded into
            // TTBR0 whose page is present (written through `write_bytes`); EL1 may read
            // EL0 pages (no PAN on this CPU).
            *x = unsafe { ((va + i as u64) as *const u8).read_volatile() };
        }
        b
    };
    let saved = upt::active_root();
    // The per-frame owner counts are allocated on first use and kept: not a leak.
    let _ = adros_core::mm::uspace::frame_owners(saved);
    let (free0, _) = phys::stats();
    {
        let parent = AddressSpace::new().unwrap_or_else(|e| fail(&alloc::format!("new: {e:?}")));
        if let Err(e) = parent.map_anon(VA, VA + 4 * PAGE, PROT_READ | PROT_WRITE, "test") {
            fail(&alloc::format!("map_anon: {e:?}"));
        }
        if parent.write_bytes(VA + PAGE + 10, b"parent").is_err() {
            fail("write_bytes into the parent");
        }
        let seen = read_at(&parent, VA + PAGE + 10);
        if &seen != b"parent" {
            fail(&alloc::format!(
                "the MMU read {seen:?} where the parent wrote"
            ));
        }
        let child = parent
            .fork()
            .unwrap_or_else(|e| fail(&alloc::format!("fork: {e:?}")));
        if child.handle_fault(VA + PAGE + 10, true, false).is_err()
            || child.write_bytes(VA + PAGE + 10, b"child!").is_err()
        {
            fail("the child's write fault");
        }
        let (c, p) = (
            read_at(&child, VA + PAGE + 10),
            read_at(&parent, VA + PAGE + 10),
        );
        if &c != b"child!" || &p != b"parent" {
            fail(&alloc::format!(
                "after the child's write: child sees {c:?}, parent {p:?}"
            ));
        }
        if parent.handle_fault(VA + 3 * PAGE, true, false).is_err()
            || child.handle_fault(VA + 8 * PAGE, false, false).is_ok()
        {
            fail("a fault inside the VMA must be served and one outside refused");
        }
        upt::activate(saved);
    }
    let (free1, _) = phys::stats();
    if free1 != free0 {
        fail(&alloc::format!(
            "{} frames not returned",
            free0 as i64 - free1 as i64
        ));
    }
    println!(
        "uspace: a user page written by the parent read back through TTBR0; after fork the child's write broke copy-on-write (child \"child!\", parent \"parent\"); faults outside a VMA refused; every frame returned"
    );
}

fn start_scheduler(b: &boot::Boot) -> ! {
    sched::init_this_cpu("boot");
    timer::start(b.machine.timer_intid, time::TICK_HZ);
    adros_core::arch::irq::enable();

    // Sleeping needs the tick: the boot thread blocks and the timer wakes it.
    let t0 = time::now_ns();
    sched::sleep_ms(50);
    let slept = time::now_ns() - t0;
    println!(
        "time: slept 50 ms by the monotonic clock: {} us later, {} timer ticks so far",
        slept / 1000,
        timer::ticks()
    );

    let online = adros_core::arch::smp::start_secondaries(b.machine.cpus());
    println!("smp: {online} of {} CPUs online", b.machine.cpus().len());

    // Both on CPU 0: they only take turns if the tick preempts them.
    let a = sched::thread::spawn_on("spin-a", 0, || spinner(1));
    let bth = sched::thread::spawn_on("spin-b", 0, || spinner(2));
    a.join();
    bth.join();
    // CPU 0's counters, where A and B ran (the boot thread may have moved since).
    let cpu0 = &adros_core::arch::percpu::get(0)
        .expect("CPU 0 has a per-CPU block")
        .sched;
    let ticks = cpu0.ticks.load(Ordering::Relaxed);
    let switches = cpu0.switches.load(Ordering::Relaxed);
    let idle = cpu0.idle_ticks.load(Ordering::Relaxed);
    let (spurious, unexpected) = gic::stats();
    let done = [
        ROUNDS_DONE[0].load(Ordering::SeqCst),
        ROUNDS_DONE[1].load(Ordering::SeqCst),
    ];
    let turns = TURNS.load(Ordering::SeqCst);
    println!(
        "sched: threads A and B ran {} and {} rounds on CPU 0, the printing thread changed {turns} times; CPU 0: {ticks} ticks, {switches} context switches, {idle} idle ticks; {spurious} spurious and {unexpected} unhandled interrupts, uptime {} ms",
        done[0],
        done[1],
        ms_since_boot()
    );
    let smp_ok = check_cpus(online);
    let el0_ok = match crate::el0::check() {
        Ok(line) => {
            println!("{line}");
            true
        }
        Err(line) => {
            println!("{line}");
            println!("el0: FAILED");
            false
        }
    };
    let ok = done == [ROUNDS, ROUNDS] && turns >= 2 && ticks > 0 && smp_ok && el0_ok;
    if ok {
        println!("aarch64: timer, scheduler and context switch work on {online} CPU(s)");
        adros_core::arch::qemu_exit(adros_core::panic::EXIT_SUCCESS)
    } else {
        println!(
            "aarch64: FAILED (threads did not take turns, no ticks, or a CPU did not run its thread)"
        );
        adros_core::arch::qemu_exit(adros_core::panic::EXIT_FAILURE)
    }
}

/// One thread pinned to each online CPU: each must run there (and the boot thread, on CPU 0,
/// is woken from its `join` by threads finishing on the others: the reschedule SGI).
fn check_cpus(online: usize) -> bool {
    static RAN_ON: [AtomicU64; 8] = [const { AtomicU64::new(u64::MAX) }; 8];
    let n = online.min(RAN_ON.len());
    let handles: Vec<_> = (0..n)
        .map(|cpu| {
            sched::thread::spawn_on("per-cpu", cpu, move || {
                let until = time::now_ns() + 20_000_000;
                while time::now_ns() < until {
                    core::hint::spin_loop();
                }
                RAN_ON[cpu].store(adros_core::arch::percpu::cpu_id() as u64, Ordering::SeqCst);
            })
        })
        .collect();
    for h in handles {
        h.join();
    }
    let mut ok = true;
    for (cpu, r) in RAN_ON.iter().enumerate().take(n) {
        let ran = r.load(Ordering::SeqCst);
        let ticks = adros_core::arch::percpu::get(cpu)
            .map_or(0, |pc| pc.sched.ticks.load(Ordering::Relaxed));
        println!("smp: the thread pinned to CPU {cpu} ran on CPU {ran}; {ticks} ticks there");
        ok &= ran == cpu as u64 && ticks > 0;
    }
    ok
}
