//! Preemptive kernel threads with per-CPU run queues.
//!
//! Lock order (outermost first): wait-queue locks → run-queue locks (ascending CPU index) →
//! heap → page tables → frame allocator. A CPU's run-queue lock is held *across* a context
//! switch and released by the thread switched to (`finish_switch`), so a waker that takes
//! that lock sees a thread either still deciding to block (`on_cpu`, it will see the
//! wake-up) or fully switched out (safe to enqueue): no lost wake-ups, no double runs.
//!
//! A thread's state and its sleep generation share one atomic word, so a timeout that fires
//! after the thread already woke (and maybe blocked again) is recognised as stale.

pub mod thread;
pub mod wait;
pub mod watchdog;

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cell::{Cell, UnsafeCell};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::arch::TrapFrame;
use crate::arch::percpu;
use crate::sync::spin::IrqSpinLock;
pub use thread::start_user_thread;
pub use thread::{
    JoinHandle, Thread, ThreadRef, current, exit_current, sleep_ms, sleep_until, spawn, yield_now,
};

pub const STATE_RUNNING: u64 = 0;
pub const STATE_RUNNABLE: u64 = 1;
pub const STATE_BLOCKED: u64 = 2;
pub const STATE_DEAD: u64 = 3;

/// Scheduler ticks a thread runs before a waiting peer preempts it.
const TIMESLICE_TICKS: u32 = 10;

pub(crate) struct RunQueue {
    pub(crate) queue: VecDeque<ThreadRef>,
    /// (deadline ns, sleep generation, thread), unsorted; small.
    pub(crate) timers: Vec<(u64, u64, ThreadRef)>,
}

pub struct CpuSched {
    pub cpu: usize,
    pub(crate) rq: IrqSpinLock<RunQueue>,
    current: UnsafeCell<Option<ThreadRef>>,
    idle: UnsafeCell<Option<ThreadRef>>,
    /// The thread we just switched away from; `finish_switch` settles it.
    prev: UnsafeCell<Option<ThreadRef>>,
    need_resched: AtomicBool,
    preempt_disabled: Cell<u32>,
    slice_left: Cell<u32>,
    pub ticks: AtomicU64,
    pub switches: AtomicU64,
    pub idle_ticks: AtomicU64,
    running_idle: AtomicBool,
    /// The idle thread is watching `need_resched` ([`poll_for_work`]): a waker sets the flag
    /// and sends no IPI.
    polling: AtomicBool,
    /// The idle loop stretched this CPU's tick ([`idle_halt`]): since when (ns), and the
    /// tick count then; 0 when the tick is periodic.
    stretched_since: Cell<u64>,
    stretched_ticks: Cell<u64>,
}

impl CpuSched {
    pub fn new(cpu: usize) -> Self {
        Self {
            cpu,
            rq: IrqSpinLock::new(RunQueue {
                queue: VecDeque::new(),
                timers: Vec::new(),
            }),
            current: UnsafeCell::new(None),
            idle: UnsafeCell::new(None),
            prev: UnsafeCell::new(None),
            need_resched: AtomicBool::new(false),
            preempt_disabled: Cell::new(0),
            slice_left: Cell::new(TIMESLICE_TICKS),
            ticks: AtomicU64::new(0),
            switches: AtomicU64::new(0),
            idle_ticks: AtomicU64::new(0),
            running_idle: AtomicBool::new(false),
            polling: AtomicBool::new(false),
            stretched_since: Cell::new(0),
            stretched_ticks: Cell::new(0),
        }
    }

    /// The running thread. Only this CPU writes `current`, with interrupts off.
    pub fn current(&self) -> ThreadRef {
        let _irq = IrqOff::new();
        // SAFETY: `current` is only written by this CPU with interrupts disabled, and we are
        // on this CPU with interrupts disabled.
        unsafe {
            (*self.current.get())
                .clone()
                .expect("scheduler not started on this CPU")
        }
    }

    /// The running thread, not counted as a reference; the caller has interrupts off (see
    /// `thread::with_current`).
    pub fn current_ptr(&self) -> *const thread::Thread {
        // SAFETY: as in `current`: only this CPU writes `current`, with interrupts disabled,
        // and the caller runs on this CPU with interrupts disabled.
        unsafe {
            (*self.current.get())
                .as_ref()
                .map(Arc::as_ptr)
                .expect("scheduler not started on this CPU")
        }
    }

    /// True while this CPU runs its idle thread (racy by nature; for placement hints).
    pub fn is_idle(&self) -> bool {
        self.running_idle.load(Ordering::Relaxed)
    }

    pub fn runnable(&self) -> usize {
        self.rq.lock().queue.len()
    }
}

/// Interrupts off for a scope.
pub struct IrqOff(bool);
impl IrqOff {
    pub fn new() -> Self {
        Self(crate::arch::irq::save_and_disable())
    }
}
impl Default for IrqOff {
    fn default() -> Self {
        Self::new()
    }
}
impl Drop for IrqOff {
    fn drop(&mut self) {
        crate::arch::irq::restore(self.0);
    }
}

/// Disables preemption (not interrupts) until the guard drops.
pub struct NoPreempt(());
impl NoPreempt {
    pub fn new() -> Self {
        let _i = IrqOff::new();
        let s = &percpu::current().sched;
        s.preempt_disabled.set(s.preempt_disabled.get() + 1);
        Self(())
    }
}
impl Default for NoPreempt {
    fn default() -> Self {
        Self::new()
    }
}
impl Drop for NoPreempt {
    fn drop(&mut self) {
        let _i = IrqOff::new();
        let s = &percpu::current().sched;
        s.preempt_disabled.set(s.preempt_disabled.get() - 1);
    }
}

/// Makes the calling context (the boot stack) this CPU's first thread and creates its idle
/// thread. After this, `spawn` and blocking work on this CPU.
pub fn init_this_cpu(boot_name: &str) {
    let s = &percpu::current().sched;
    let boot = Thread::new_bootstrap(boot_name, s.cpu);
    let idle =
        Thread::new_kernel("idle", s.cpu, idle_forever_fn).expect("no memory for the idle thread");
    let _irq = IrqOff::new();
    // SAFETY: this CPU, interrupts off, scheduler not yet running here.
    unsafe {
        percpu::current()
            .current_thread
            .store(Arc::as_ptr(&boot) as u64, Ordering::Relaxed);
        *s.current.get() = Some(boot);
        *s.idle.get() = Some(idle);
    }
}

/// For application processors: the calling context (the AP's boot stack) becomes this CPU's
/// idle thread; call [`idle_forever`] next.
pub fn init_this_cpu_idle() {
    let s = &percpu::current().sched;
    let idle = Thread::new_bootstrap("idle", s.cpu);
    let _irq = IrqOff::new();
    s.running_idle.store(true, Ordering::Relaxed);
    // SAFETY: this CPU, interrupts off, scheduler not yet running here.
    unsafe {
        percpu::current()
            .current_thread
            .store(Arc::as_ptr(&idle) as u64, Ordering::Relaxed);
        *s.current.get() = Some(idle.clone());
        *s.idle.get() = Some(idle);
    }
}

fn idle_forever_fn() {
    idle_forever()
}

/// The idle loop: pull work from busier CPUs, else halt until the next interrupt.
pub fn idle_forever() -> ! {
    loop {
        crate::arch::irq::save_and_disable();
        let pc = percpu::current();
        let mut empty = pc.sched.rq.lock().queue.is_empty();
        if empty && steal_work(pc.sched.cpu) {
            empty = false;
        }
        if empty && !poll_for_work(&pc.sched) {
            idle_halt(&pc.sched);
        } else {
            crate::arch::irq::enable();
        }
        schedule();
    }
}

/// How long an idle CPU watches for work before it halts (ns; `sched.idle_poll_us=` on the
/// command line, 0 to halt at once). A wake-up from another CPU then costs a store instead
/// of an IPI, and the woken thread starts without an interrupt: under emulation an IPI is
/// a write to the xAPIC's ICR that QEMU serves under its global lock — the lock its device
/// models hold while they move network frames — and the halted vCPU must be woken too.
/// Wake-up chains across CPUs (a reader woken by the network thread, the rump stack's
/// interrupt → softint → socket-event threads, a pipe ping-pong) mostly come back within
/// this window. As Linux's guest `haltpoll` does, bounded so an idle vCPU gives its host
/// core back soon.
static IDLE_POLL_NS: AtomicU64 = AtomicU64::new(u64::MAX);
const IDLE_POLL_DEFAULT_NS: u64 = 50_000;

fn idle_poll_ns() -> u64 {
    let v = IDLE_POLL_NS.load(Ordering::Relaxed);
    if v != u64::MAX {
        return v;
    }
    let v = crate::bootinfo::try_cmdline()
        .and_then(|c| c.param("sched.idle_poll_us"))
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(IDLE_POLL_DEFAULT_NS, |us| us.min(10_000) * 1000);
    IDLE_POLL_NS.store(v, Ordering::Relaxed);
    v
}

/// Watches `need_resched` with interrupts on for up to [`idle_poll_ns`] (interrupts off on
/// entry and at return). True if work came: the caller schedules instead of halting.
fn poll_for_work(s: &CpuSched) -> bool {
    let budget = idle_poll_ns();
    if budget == 0 {
        return false;
    }
    // Dekker with `kick`: we publish `polling` then read `need_resched`; a waker sets
    // `need_resched` then reads `polling`. With both orders SeqCst at least one of us sees
    // the other's store: we see the work, or the waker sees we stopped and sends the IPI.
    s.polling.store(true, Ordering::SeqCst);
    crate::arch::irq::enable();
    let start = crate::time::now_ns();
    let mut found = false;
    loop {
        if s.need_resched.load(Ordering::SeqCst) {
            found = true;
            break;
        }
        if crate::time::now_ns().saturating_sub(start) >= budget {
            break;
        }
        core::hint::spin_loop();
    }
    crate::arch::irq::save_and_disable();
    s.polling.store(false, Ordering::SeqCst);
    found || s.need_resched.load(Ordering::SeqCst)
}

/// The longest an idle CPU goes without a tick. An idle CPU needs none but for its own
/// timers (which only it adds to its queue, so none appear while it sleeps) and to look for
/// work to steal; a periodic tick on every idle vCPU costs the host a timer interrupt per
/// millisecond each, which under emulation takes host time from the busy vCPUs (4 vCPUs on
/// a 2-core host: the cross-CPU pipe ping-pong varied 106–212 µs against Linux's 120–133).
const IDLE_TICK_MAX_NS: u64 = 10_000_000;
const TICK_NS: u64 = 1_000_000_000 / crate::time::TICK_HZ as u64;

/// Halts until an interrupt (interrupts off on entry, on at return), with the tick
/// stretched to this CPU's next timer, at most [`IDLE_TICK_MAX_NS`] away. The periodic tick
/// comes back before anything else runs here ([`end_stretch`], also called by the switch
/// away from the idle thread, which an interrupt may cause before this returns).
fn idle_halt(s: &CpuSched) {
    let now = crate::time::now_ns();
    let next = s.rq.lock().timers.iter().map(|t| t.0).min();
    let sleep = next
        .map_or(IDLE_TICK_MAX_NS, |d| d.saturating_sub(now))
        .min(IDLE_TICK_MAX_NS);
    if sleep < 2 * TICK_NS {
        crate::arch::irq::enable_and_halt();
        return;
    }
    s.stretched_since.set(now.max(1));
    s.stretched_ticks.set(s.ticks.load(Ordering::Relaxed));
    crate::arch::tick_idle(sleep);
    crate::arch::irq::enable_and_halt();
    let was = crate::arch::irq::save_and_disable();
    end_stretch(s);
    crate::arch::irq::restore(was);
}

/// Puts the periodic tick back after [`idle_halt`] stretched it, counting the ticks it
/// did not take as idle ticks (`/proc/stat` and `/proc/uptime` read them as idle time).
/// Interrupts off.
fn end_stretch(s: &CpuSched) {
    let since = s.stretched_since.get();
    if since == 0 {
        return;
    }
    s.stretched_since.set(0);
    crate::arch::tick_resume();
    let periods = crate::time::now_ns().saturating_sub(since) / TICK_NS;
    let taken = s
        .ticks
        .load(Ordering::Relaxed)
        .saturating_sub(s.stretched_ticks.get());
    let missed = periods.saturating_sub(taken);
    s.ticks.fetch_add(missed, Ordering::Relaxed);
    s.idle_ticks.fetch_add(missed, Ordering::Relaxed);
}

/// Moves one runnable thread from the busiest other CPU to `cpu`. Returns true if it did.
fn steal_work(cpu: usize) -> bool {
    let mut busiest: Option<(usize, usize)> = None;
    for pc in percpu::online_cpus() {
        if pc.sched.cpu == cpu {
            continue;
        }
        let n = pc.sched.rq.lock().queue.len();
        if n > 0 && busiest.is_none_or(|(_, m)| n > m) {
            busiest = Some((pc.sched.cpu, n));
        }
    }
    let Some((from, _)) = busiest else {
        return false;
    };
    let Some(src) = percpu::get(from) else {
        return false;
    };
    let t = {
        let mut rq = src.sched.rq.lock();
        let pos = rq.queue.iter().rposition(|t| t.may_run_on(cpu));
        match pos.and_then(|i| rq.queue.remove(i)) {
            Some(t) => {
                // Still `queued`; only its CPU changes, under the source lock, so wakers that
                // re-check `t.cpu` after locking find it.
                t.cpu.store(cpu, Ordering::Release);
                t
            }
            None => return false,
        }
    };
    let Some(dst) = percpu::get(cpu) else {
        return false;
    };
    dst.sched.rq.lock().queue.push_back(t);
    true
}

/// Gives up the CPU: requeues the current thread unless it is blocked or dead.
pub fn schedule() {
    schedule_inner(false);
}

/// `preempt`: the thread did not ask to stop (timer or IPI), so even one that was about to
/// block stays queued; it finishes blocking when it runs again.
fn schedule_inner(preempt: bool) {
    let was = crate::arch::irq::save_and_disable();
    let pc = percpu::current();
    let s = &pc.sched;
    let rq = s.rq.lock();
    let mut rq = rq;
    // SAFETY: this CPU, interrupts off (the rq lock guard disabled them).
    let prev = unsafe { (*s.current.get()).clone().expect("schedule before init") };
    // SAFETY: as above.
    let idle = unsafe { (*s.idle.get()).clone().expect("no idle thread") };
    let is_idle = Arc::ptr_eq(&prev, &idle);
    if is_idle {
        // Leaving the idle thread (maybe from an interrupt in its halt): the tick first.
        end_stretch(s);
    }
    let st = prev.state();
    if !is_idle && st != STATE_DEAD && (st != STATE_BLOCKED || preempt) {
        if st == STATE_RUNNING {
            prev.set_state(STATE_RUNNABLE);
        }
        // A runnable thread whose affinity excludes this CPU is handed on by `finish_switch`.
        if prev.may_run_on(s.cpu) || st == STATE_BLOCKED {
            prev.queued.store(true, Ordering::Relaxed);
            rq.queue.push_back(prev.clone());
        }
    }
    let next = rq.queue.pop_front().unwrap_or_else(|| idle.clone());
    next.queued.store(false, Ordering::Relaxed);
    s.need_resched.store(false, Ordering::Relaxed);
    s.slice_left.set(TIMESLICE_TICKS);
    if Arc::ptr_eq(&next, &prev) {
        if prev.state() == STATE_RUNNABLE {
            prev.set_state(STATE_RUNNING);
        }
        drop(rq);
        crate::arch::irq::restore(was);
        return;
    }
    if next.state() == STATE_RUNNABLE {
        next.set_state(STATE_RUNNING);
    }
    next.on_cpu.store(true, Ordering::Relaxed);
    s.running_idle
        .store(Arc::ptr_eq(&next, &idle), Ordering::Relaxed);
    next.cpu.store(s.cpu, Ordering::Relaxed);
    s.switches.fetch_add(1, Ordering::Relaxed);
    let next_rsp = next.saved_rsp();
    let prev_rsp_slot = prev.saved_rsp_slot();
    switch_user_state(&prev, &next);
    // SAFETY: this CPU, interrupts off, rq lock held.
    unsafe {
        pc.current_thread
            .store(Arc::as_ptr(&next) as u64, Ordering::Relaxed);
        *s.current.get() = Some(next);
        *s.prev.get() = Some(prev);
    }
    // Keep the run-queue lock across the switch; `finish_switch` releases it.
    let _ = rq.leak();
    // SAFETY: interrupts are off; `next_rsp` was saved by a switch or built by `init_stack`;
    // `prev` stays alive in `s.prev` until `finish_switch`, so its rsp slot is valid.
    unsafe { crate::arch::switch::switch_context(prev_rsp_slot, next_rsp) };
    finish_switch();
    crate::arch::irq::restore(was);
}

/// Hands the CPU's user-visible state from `prev` to `next`: SSE registers, FS base, the
/// kernel stack for user entries, and the address space.
fn switch_user_state(prev: &ThreadRef, next: &ThreadRef) {
    let now = crate::time::now_ns();
    let since = prev.ran_since.load(Ordering::Relaxed);
    if since != 0 {
        prev.run_ns
            .fetch_add(now.saturating_sub(since), Ordering::Relaxed);
    }
    next.ran_since.store(now, Ordering::Relaxed);
    let pc = percpu::current();
    prev.rump_lwp.store(
        pc.rump_lwp.load(Ordering::Relaxed) as usize,
        Ordering::Relaxed,
    );
    pc.rump_lwp.store(
        next.rump_lwp.load(Ordering::Relaxed) as u64,
        Ordering::Relaxed,
    );
    #[cfg(target_arch = "x86_64")]
    switch_user_state_x86(prev, next);
    #[cfg(target_arch = "aarch64")]
    switch_user_state_aarch64(prev, next);
}

/// The user half of [`switch_user_state`] on aarch64: FP/SIMD registers and TPIDR_EL0 of
/// user threads, and TTBR0 (an empty user half for threads without an address space).
/// Entries from EL0 land on the thread's own kernel stack without help (SP_EL1 is the
/// stack the thread left EL1 on).
#[cfg(target_arch = "aarch64")]
fn switch_user_state_aarch64(prev: &ThreadRef, next: &ThreadRef) {
    use crate::arch::{upt, user};
    if prev.task.get().is_some() {
        prev.save_fpu();
        prev.fs_base.store(user::tls(), Ordering::Relaxed);
    }
    if next.task.get().is_some() {
        next.restore_fpu();
        user::set_tls(next.fs_base.load(Ordering::Relaxed));
    }
    let want = match next.cr3.load(Ordering::Acquire) {
        0 => upt::idle_root(),
        v => v,
    };
    if upt::active_root() != want {
        upt::activate(want);
    }
}

/// The user half of [`switch_user_state`] on x86_64.
#[cfg(target_arch = "x86_64")]
fn switch_user_state_x86(prev: &ThreadRef, next: &ThreadRef) {
    use crate::arch::cpu;
    if prev.task.get().is_some() {
        prev.save_fpu();
        prev.fs_base.store(cpu::fs_base(), Ordering::Relaxed);
    }
    if let Some(top) = next.kstack_top() {
        crate::arch::user::set_kernel_stack(top);
    }
    if next.task.get().is_some() {
        next.restore_fpu();
        // Only values arch_prctl accepted (canonical) are ever stored.
        let _ = cpu::set_fs_base(next.fs_base.load(Ordering::Relaxed));
    }
    let want = match next.cr3.load(Ordering::Acquire) {
        0 => crate::mm::paging::kernel_pml4(),
        v => v,
    };
    if cpu::address_space() != want {
        // SAFETY: `want` is a live PML4 (the kernel's, or one owned by next's process, which
        // next keeps alive); all share the kernel half, so this code stays mapped.
        unsafe { cpu::switch_address_space(want) };
    }
}

/// Runs on the new thread right after a switch: marks the previous thread off-CPU and drops
/// the run-queue lock held across the switch. Interrupts stay off.
pub(crate) fn finish_switch() {
    let s = &percpu::current().sched;
    // SAFETY: this CPU, interrupts off, and we hold the rq lock taken by `schedule`.
    let prev = unsafe { (*s.prev.get()).take() };
    if let Some(p) = &prev {
        p.on_cpu.store(false, Ordering::Release);
    }
    // SAFETY: `schedule` leaked the guard of this lock just before switching to us.
    unsafe { s.rq.force_unlock() };
    if let Some(p) = &prev {
        // Runnable, in no queue, off-CPU: only we can move it (wakers act on blocked threads,
        // stealers on queued ones).
        if p.state() == STATE_RUNNABLE && !p.queued.load(Ordering::Relaxed) && !p.may_run_on(s.cpu)
        {
            let target = place_new(p);
            enqueue_on(p, target);
        }
    }
    // A dead thread's last reference may be this one: its stack is freed here, after we
    // left it.
    drop(prev);
}

/// Called by the interrupt dispatcher on the way out of every device/timer interrupt.
pub fn preempt_on_irq_exit(_frame: &mut TrapFrame) {
    if !percpu::is_ready() {
        return;
    }
    let s = &percpu::current().sched;
    if s.need_resched.load(Ordering::Relaxed) && s.preempt_disabled.get() == 0 {
        // SAFETY: reading our own current pointer with interrupts off (we are in a handler).
        if unsafe { (*s.current.get()).is_some() } {
            schedule_inner(true);
        }
    }
}

/// Asks this CPU to reschedule at the next interrupt exit (or now, if called from a thread).
pub fn set_need_resched() {
    percpu::current()
        .sched
        .need_resched
        .store(true, Ordering::Relaxed);
}

/// The LAPIC timer tick (interrupt context).
pub fn timer_tick(frame: &mut TrapFrame) {
    let s = &percpu::current().sched;
    let ticks = s.ticks.fetch_add(1, Ordering::Relaxed);
    let now = crate::time::now_ns();
    if ticks.is_multiple_of(500) {
        watchdog::check(s.cpu, now);
    }
    // Expired timers: wake their threads (stale generations are ignored by `wake_gen`).
    let mut expired: [Option<(u64, ThreadRef)>; 16] = Default::default();
    let mut n = 0;
    {
        let mut rq = s.rq.lock();
        let mut i = 0;
        while i < rq.timers.len() && n < expired.len() {
            if rq.timers[i].0 <= now {
                let (_, sgen, t) = rq.timers.swap_remove(i);
                expired[n] = Some((sgen, t));
                n += 1;
            } else {
                i += 1;
            }
        }
        // SAFETY: this CPU, interrupts off.
        let cur = unsafe { (*s.current.get()).clone() };
        // SAFETY: as above.
        let idle = unsafe { (*s.idle.get()).clone() };
        let on_idle = matches!((&cur, &idle), (Some(c), Some(i)) if Arc::ptr_eq(c, i));
        #[cfg(target_arch = "x86_64")]
        crate::profile::sample(frame.pc(), frame.from_user(), on_idle);
        #[cfg(not(target_arch = "x86_64"))]
        let _ = frame.pc();
        if on_idle {
            s.idle_ticks.fetch_add(1, Ordering::Relaxed);
            if !rq.queue.is_empty() {
                s.need_resched.store(true, Ordering::Relaxed);
            }
        } else {
            let left = s.slice_left.get().saturating_sub(1);
            s.slice_left.set(left);
            if left == 0 && !rq.queue.is_empty() {
                s.need_resched.store(true, Ordering::Relaxed);
            }
        }
    }
    for (sgen, t) in expired.iter_mut().filter_map(|e| e.take()) {
        wake_gen(&t, Some(sgen));
    }
}

/// Wakes a blocked thread. Returns false if it was not blocked (already awake or dead).
pub fn wake(t: &ThreadRef) -> bool {
    wake_gen(t, None)
}

/// Wakes `t` if it is blocked (and, with `sgen`, only if it is still in that same sleep).
pub(crate) fn wake_gen(t: &ThreadRef, sgen: Option<u64>) -> bool {
    // Lock the run queue of the CPU that owns `t`; re-check in case it moved.
    loop {
        let cpu = t.cpu.load(Ordering::Acquire);
        let Some(pc) = percpu::get(cpu) else {
            return false;
        };
        let mut rq = pc.sched.rq.lock();
        if t.cpu.load(Ordering::Acquire) != cpu {
            continue;
        }
        if !t.try_unblock(sgen) {
            return false;
        }
        if t.on_cpu.load(Ordering::Acquire) || t.queued.load(Ordering::Relaxed) {
            // Still running (it will see the wake-up when it tries to sleep) or already queued.
            return true;
        }
        // Placement: stay on the last CPU (warm cache) unless it is busy and another allowed
        // CPU is idle. `t` is runnable and in no queue, so nobody else moves it meanwhile.
        let busy = !rq.queue.is_empty() || !pc.sched.is_idle() || !t.may_run_on(cpu);
        let target = if busy {
            idle_cpu_for(t, cpu).unwrap_or(cpu)
        } else {
            cpu
        };
        if target == cpu && t.may_run_on(cpu) {
            t.queued.store(true, Ordering::Relaxed);
            rq.queue.push_back(t.clone());
            drop(rq);
            kick(pc);
        } else {
            drop(rq);
            let target = if t.may_run_on(target) {
                target
            } else {
                place_new(t)
            };
            enqueue_on(t, target);
        }
        return true;
    }
}

/// Puts a runnable thread that is in no queue on `cpu`'s queue and kicks that CPU.
fn enqueue_on(t: &ThreadRef, cpu: usize) {
    let Some(pc) = percpu::get(cpu) else { return };
    {
        let mut rq = pc.sched.rq.lock();
        t.cpu.store(cpu, Ordering::Release);
        t.queued.store(true, Ordering::Relaxed);
        rq.queue.push_back(t.clone());
    }
    kick(pc);
}

/// Asks `pc` to reschedule: locally by flag, remotely by IPI — unless the flag was already
/// set, in which case an IPI (or the CPU's own reschedule) is already on its way: the flag is
/// cleared only by `schedule_inner`, under the run-queue lock and before it picks from the
/// queue, so whatever the caller queued before kicking is seen. (An IPI costs a trip through
/// QEMU's APIC emulation; wake-up storms from the rump block path sent one per wake.)
fn kick(pc: &percpu::PerCpu) {
    let already = pc.sched.need_resched.swap(true, Ordering::SeqCst);
    // A CPU polling for work (`poll_for_work`) sees the flag without an IPI.
    if pc.sched.cpu != percpu::cpu_id() && !already && !pc.sched.polling.load(Ordering::SeqCst) {
        crate::arch::send_resched_ipi(pc);
    }
}

/// An online CPU other than `except` that `t` may run on and that is idle with an empty queue.
fn idle_cpu_for(t: &ThreadRef, except: usize) -> Option<usize> {
    percpu::online_cpus()
        .filter(|pc| pc.sched.cpu != except && t.may_run_on(pc.sched.cpu))
        .find(|pc| pc.sched.is_idle() && pc.sched.rq.try_lock().is_some_and(|q| q.queue.is_empty()))
        .map(|pc| pc.sched.cpu)
}

/// The least loaded online CPU `t` may run on (for new threads).
pub(crate) fn place_new(t: &ThreadRef) -> usize {
    let here = percpu::cpu_id();
    let mut best = (here, usize::MAX);
    for pc in percpu::online_cpus() {
        if !t.may_run_on(pc.sched.cpu) {
            continue;
        }
        let load = pc.sched.rq.lock().queue.len() + usize::from(!pc.sched.is_idle());
        if load < best.1 || (load == best.1 && pc.sched.cpu == here) {
            best = (pc.sched.cpu, load);
        }
    }
    best.0
}

/// Starts a thread that was just created (runnable, in no queue) on the best CPU.
pub(crate) fn start_new(t: &ThreadRef) {
    let cpu = place_new(t);
    t.set_state(STATE_RUNNABLE);
    enqueue_on(t, cpu);
}

/// Moves the current thread off this CPU (its affinity no longer allows it here): the
/// switch leaves it out of this queue and `finish_switch` hands it to an allowed CPU.
pub(crate) fn migrate_current() {
    schedule();
}

/// Blocks the current thread, which must already be marked blocked (see
/// [`Thread::prepare_block`]), until woken or until `deadline` (monotonic ns).
/// Returns true if the deadline passed first.
pub fn block(deadline: Option<u64>, sgen: u64) -> bool {
    let me = current();
    let timer_cpu = deadline.map(|d| {
        let s = &percpu::current().sched;
        s.rq.lock().timers.push((d, sgen, me.clone()));
        s.cpu
    });
    schedule();
    let Some(d) = deadline else { return false };
    // Drop our timer if it has not fired.
    if let Some(pc) = timer_cpu.and_then(percpu::get) {
        pc.sched
            .rq
            .lock()
            .timers
            .retain(|(_, g, t)| !(Arc::ptr_eq(t, &me) && *g == sgen));
    }
    crate::time::now_ns() >= d
}

/// Handler for the reschedule IPI: nothing to do but return through the preemption point.
pub fn resched_ipi(_frame: &mut TrapFrame) {
    set_need_resched();
}

/// Per-CPU counters for tests and /proc.
pub fn stats() -> (u64, u64, u64) {
    let s = &percpu::current().sched;
    (
        s.ticks.load(Ordering::Relaxed),
        s.switches.load(Ordering::Relaxed),
        s.idle_ticks.load(Ordering::Relaxed),
    )
}
