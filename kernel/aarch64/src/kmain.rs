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
        Some(other) => println!("boot: adros.fault={other}: unknown (data, brk)"),
        None => {}
    }

    check_memory(&b);
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
        "mm: {} of {} frames free at boot ({} MiB usable); 256 frames allocated, written and read back {}, freed: {} -> {} -> {} free; heap: 4 MiB vector {}, {} KiB mapped, {} bytes in use",
        b.frames_free,
        total,
        (b.frames_free as u64 * 4096) >> 20,
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

    let a = sched::spawn("spin-a", || spinner(1));
    let bth = sched::spawn("spin-b", || spinner(2));
    a.join();
    bth.join();
    let (ticks, switches, idle) = sched::stats();
    let (spurious, unexpected) = gic::stats();
    let done = [
        ROUNDS_DONE[0].load(Ordering::SeqCst),
        ROUNDS_DONE[1].load(Ordering::SeqCst),
    ];
    let turns = TURNS.load(Ordering::SeqCst);
    println!(
        "sched: threads A and B ran {} and {} rounds, the printing thread changed {turns} times; {ticks} ticks, {switches} context switches, {idle} idle ticks, {spurious} spurious and {unexpected} unhandled interrupts, uptime {} ms",
        done[0],
        done[1],
        ms_since_boot()
    );
    let ok = done == [ROUNDS, ROUNDS] && turns >= 2 && ticks > 0;
    if ok {
        println!("aarch64: timer, scheduler and context switch work");
        adros_core::arch::qemu_exit(adros_core::panic::EXIT_SUCCESS)
    } else {
        println!("aarch64: FAILED (threads did not take turns, or no ticks)");
        adros_core::arch::qemu_exit(adros_core::panic::EXIT_FAILURE)
    }
}
