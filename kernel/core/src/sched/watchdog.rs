//! Hard-lockup watchdog: every CPU's timer tick also checks that the next online CPU's tick
//! count still moves. A CPU stuck with interrupts off for `LIMIT_NS` turns into a panic,
//! whose report stops every CPU and prints each one's backtrace — a hang becomes a failing
//! run with evidence instead of a silent timeout.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::percpu;

const MAX_CPUS: usize = 256;
const LIMIT_NS: u64 = 20_000_000_000;

/// Per watched CPU: the tick count last seen and when it last changed.
static SEEN_TICKS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static SEEN_AT: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// Called from the tick of `cpu` every so often.
pub fn check(cpu: usize, now: u64) {
    let n = crate::arch::smp::online_count();
    if n < 2 {
        return;
    }
    let watched = (cpu + 1) % n;
    let Some(pc) = percpu::get(watched) else {
        return;
    };
    let Some(slot) = SEEN_TICKS.get(watched) else {
        return;
    };
    let ticks = pc.sched.ticks.load(Ordering::Relaxed);
    if slot.swap(ticks, Ordering::Relaxed) != ticks || SEEN_AT[watched].load(Ordering::Relaxed) == 0
    {
        SEEN_AT[watched].store(now, Ordering::Relaxed);
        return;
    }
    let since = now - SEEN_AT[watched].load(Ordering::Relaxed);
    if since > LIMIT_NS && !crate::panic::is_panicking() {
        panic!(
            "watchdog: CPU {watched} has taken no timer interrupt for {} s (stuck with interrupts off?)",
            since / 1_000_000_000
        );
    }
}
