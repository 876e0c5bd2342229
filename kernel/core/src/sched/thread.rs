//! Kernel threads.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use super::wait::WaitQueue;
use super::{STATE_BLOCKED, STATE_DEAD, STATE_RUNNABLE, STATE_RUNNING};
use crate::arch::percpu;
use crate::mm::kstack::{DEFAULT_STACK, KernelStack};

pub type ThreadRef = Arc<Thread>;

/// What a thread that runs user code carries for the layers above (the process layer's task:
/// its process, signal state…). The core only stores it, tells whether a thread has one, and
/// asks it to describe itself in reports; the owner gets its own type back by downcasting.
pub trait UserTask: core::any::Any + Send + Sync {
    /// A few words for the hang report (` pid P tid T "name"`). Runs in an NMI with every
    /// other CPU stopped: it must not wait for a lock (use `try_lock`).
    fn describe(&self, print: fn(core::fmt::Arguments<'_>));
}

/// Every thread created, weakly (for the hang report, [`dump_all`]); dead entries are
/// dropped whenever the list doubles.
static REGISTRY: crate::sync::spin::IrqSpinLock<Vec<Weak<Thread>>> =
    crate::sync::spin::IrqSpinLock::new(Vec::new());

fn register(t: &ThreadRef) {
    let mut r = REGISTRY.lock();
    if r.len() >= 64 && r.len().is_power_of_two() {
        r.retain(|w| w.strong_count() > 0);
    }
    r.push(Arc::downgrade(t));
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub struct Thread {
    pub id: u64,
    pub name: String,
    /// Low 8 bits: state; the rest: sleep generation (bumped by every `prepare_block`).
    state_gen: AtomicU64,
    pub(crate) on_cpu: AtomicBool,
    /// In some run queue (changed only under that queue's lock).
    pub(crate) queued: AtomicBool,
    pub(crate) cpu: AtomicUsize,
    saved_rsp: UnsafeCell<u64>,
    stack: Option<KernelStack>,
    entry: UnsafeCell<Option<Box<dyn FnOnce() + Send>>>,
    exited: AtomicBool,
    joiners: WaitQueue,
    /// CPUs this thread may run on (bit n = CPU n; CPUs >= 64 follow bit 63).
    affinity: AtomicU64,
    /// User-mode state, for threads that run a process: the process layer's own type
    /// (`adros_kernel::proc::Task`), which the core never looks into.
    pub task: spin::Once<Arc<dyn UserTask>>,
    /// Page-table root to run with (0: the kernel's).
    pub cr3: AtomicU64,
    /// CPU time consumed (ns), and when it last started running (for accounting).
    pub run_ns: AtomicU64,
    pub(crate) ran_since: AtomicU64,
    /// User FS base (TLS), restored on every switch to this thread.
    pub fs_base: AtomicU64,
    /// FP/SIMD registers of a user thread (SSE/x87; q0–q31), saved while it is switched out.
    fpu: UnsafeCell<Option<Box<crate::arch::user::FpuState>>>,
    /// A wake-up for [`park`] that has not been consumed yet.
    park_token: AtomicBool,
    /// The NetBSD rump kernel's `curlwp` for this thread (0: none) while it is switched out
    /// (the running thread's lives in the per-CPU block: `percpu::rump_lwp`), and the errno of
    /// its last failed `rump_sys_*` call (NetBSD numbering): the hypercall layer's slots.
    pub rump_lwp: AtomicUsize,
    pub rump_errno: core::sync::atomic::AtomicI32,
}

// SAFETY: `saved_rsp` is only touched by the scheduler with the owning run-queue lock held
// and interrupts off; `entry` only by the thread itself when it first runs.
unsafe impl Sync for Thread {}
// SAFETY: as above.
unsafe impl Send for Thread {}

impl Thread {
    fn alloc(name: &str, cpu: usize, stack: Option<KernelStack>) -> Self {
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            name: String::from(name),
            state_gen: AtomicU64::new(STATE_RUNNABLE),
            on_cpu: AtomicBool::new(false),
            queued: AtomicBool::new(false),
            cpu: AtomicUsize::new(cpu),
            saved_rsp: UnsafeCell::new(0),
            stack,
            entry: UnsafeCell::new(None),
            exited: AtomicBool::new(false),
            joiners: WaitQueue::new(),
            affinity: AtomicU64::new(u64::MAX),
            task: spin::Once::new(),
            cr3: AtomicU64::new(0),
            fs_base: AtomicU64::new(0),
            run_ns: AtomicU64::new(0),
            ran_since: AtomicU64::new(0),
            fpu: UnsafeCell::new(None),
            park_token: AtomicBool::new(false),
            rump_lwp: AtomicUsize::new(0),
            rump_errno: core::sync::atomic::AtomicI32::new(0),
        }
    }

    /// The context already running on a CPU (its boot stack).
    pub(crate) fn new_bootstrap(name: &str, cpu: usize) -> ThreadRef {
        let t = Self::alloc(name, cpu, None);
        t.state_gen.store(STATE_RUNNING, Ordering::Relaxed);
        t.on_cpu.store(true, Ordering::Relaxed);
        let t = Arc::new(t);
        register(&t);
        t
    }

    /// A thread that runs `f` on its own stack when first scheduled.
    pub(crate) fn new_kernel(name: &str, cpu: usize, f: fn()) -> Option<ThreadRef> {
        Self::new_with(name, cpu, Box::new(f))
    }

    fn new_with(name: &str, cpu: usize, f: Box<dyn FnOnce() + Send>) -> Option<ThreadRef> {
        let stack = KernelStack::new(DEFAULT_STACK)?;
        let top = stack.top();
        let t = Arc::new(Self::alloc(name, cpu, Some(stack)));
        // SAFETY: the thread is not yet visible to any scheduler.
        unsafe {
            *t.entry.get() = Some(f);
            *t.saved_rsp.get() = crate::arch::switch::init_stack(top, thread_entry, 0);
        }
        register(&t);
        Some(t)
    }

    /// A thread that enters user mode with `frame` as soon as it first runs. The frame sits
    /// at the top of its kernel stack, where every later user→kernel entry builds its own.
    pub fn new_user(
        name: &str,
        frame: &crate::arch::TrapFrame,
        fpu: crate::arch::user::FpuState,
    ) -> Option<ThreadRef> {
        let stack = KernelStack::new(DEFAULT_STACK)?;
        let top = stack.top();
        let frame_at = top - core::mem::size_of::<crate::arch::TrapFrame>() as u64;
        let t = Arc::new(Self::alloc(name, percpu::cpu_id(), Some(stack)));
        // A new user thread inherits its creator's CPU affinity (fork, clone, as on Linux).
        t.affinity.store(current().affinity(), Ordering::Relaxed);
        // SAFETY: the stack is freshly mapped and ours; the thread is not yet visible to any
        // scheduler.
        unsafe {
            (frame_at as *mut crate::arch::TrapFrame).write(*frame);
            *t.fpu.get() = Some(Box::new(fpu));
            *t.saved_rsp.get() =
                crate::arch::switch::init_stack(frame_at, user_thread_entry, frame_at);
        }
        register(&t);
        Some(t)
    }

    /// Top of this thread's kernel stack (None for boot stacks).
    pub fn kstack_top(&self) -> Option<u64> {
        self.stack.as_ref().map(|s| s.top())
    }

    /// Saves the live SSE state into this thread (call on the CPU it runs on, at switch-out).
    pub(crate) fn save_fpu(&self) {
        // SAFETY: only the scheduler calls this, for the thread running on this CPU, with
        // interrupts off.
        if let Some(f) = unsafe { (*self.fpu.get()).as_mut() } {
            f.save();
        }
    }

    pub(crate) fn restore_fpu(&self) {
        // SAFETY: as in `save_fpu`, for the thread about to run on this CPU.
        if let Some(f) = unsafe { (*self.fpu.get()).as_ref() } {
            f.restore();
        }
    }

    /// A copy of the (saved) SSE state, for fork. Call from the thread itself.
    pub fn fpu_snapshot(&self) -> crate::arch::user::FpuState {
        let _irq = super::IrqOff::new();
        self.save_fpu();
        // SAFETY: interrupts are off and this is the running thread; nothing else touches it.
        unsafe {
            (*self.fpu.get())
                .as_deref()
                .cloned()
                .unwrap_or_else(crate::arch::user::FpuState::initial)
        }
    }

    /// Resets the SSE state (execve).
    pub fn reset_fpu(&self) {
        let _irq = super::IrqOff::new();
        let f = crate::arch::user::FpuState::initial();
        f.restore();
        // SAFETY: running thread, interrupts off.
        unsafe { *self.fpu.get() = Some(Box::new(f)) };
    }

    pub fn state(&self) -> u64 {
        self.state_gen.load(Ordering::Acquire) & 0xff
    }

    pub(crate) fn set_state(&self, st: u64) {
        let v = self.state_gen.load(Ordering::Relaxed);
        self.state_gen.store((v & !0xff) | st, Ordering::Release);
    }

    /// Marks the current thread as about to block and returns its new sleep generation.
    /// Call with the wait queue's lock held, then drop the lock and call `sched::block`.
    pub fn prepare_block(&self) -> u64 {
        let v = self.state_gen.load(Ordering::Relaxed);
        let sgen = (v >> 8) + 1;
        self.state_gen
            .store((sgen << 8) | STATE_BLOCKED, Ordering::Release);
        sgen
    }

    /// Blocked → runnable (only for sleep `sgen`, if given). False if not blocked.
    pub(crate) fn try_unblock(&self, sgen: Option<u64>) -> bool {
        let mut v = self.state_gen.load(Ordering::Acquire);
        loop {
            if v & 0xff != STATE_BLOCKED || sgen.is_some_and(|g| g != v >> 8) {
                return false;
            }
            match self.state_gen.compare_exchange_weak(
                v,
                (v & !0xff) | STATE_RUNNABLE,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(x) => v = x,
            }
        }
    }

    pub(crate) fn saved_rsp(&self) -> u64 {
        // SAFETY: read by the scheduler with the run-queue lock held, after the owner saved it.
        unsafe { *self.saved_rsp.get() }
    }

    pub(crate) fn saved_rsp_slot(&self) -> *mut u64 {
        self.saved_rsp.get()
    }

    pub fn may_run_on(&self, cpu: usize) -> bool {
        self.affinity.load(Ordering::Relaxed) & (1u64 << cpu.min(63)) != 0
    }

    pub fn affinity(&self) -> u64 {
        self.affinity.load(Ordering::Relaxed)
    }

    /// One-line scheduler state, for diagnostics.
    pub fn debug_state(&self) -> alloc::string::String {
        let v = self.state_gen.load(Ordering::Acquire);
        alloc::format!(
            "thread {} '{}': state {} gen {} on_cpu {} queued {} cpu {}",
            self.id,
            self.name,
            ["running", "runnable", "blocked", "dead"]
                .get((v & 0xff) as usize)
                .copied()
                .unwrap_or("?"),
            v >> 8,
            self.on_cpu.load(Ordering::Relaxed),
            self.queued.load(Ordering::Relaxed),
            self.cpu.load(Ordering::Relaxed)
        )
    }

    pub fn has_exited(&self) -> bool {
        self.exited.load(Ordering::Acquire)
    }

    pub fn stack_guard(&self) -> Option<u64> {
        self.stack.as_ref().map(|s| s.guard_page())
    }
}

extern "C" fn thread_entry(_arg: u64) -> ! {
    super::finish_switch();
    crate::arch::irq::enable();
    let me = current();
    // SAFETY: only this thread touches its entry, once, here.
    let f = unsafe { (*me.entry.get()).take() };
    drop(me);
    if let Some(f) = f {
        f();
    }
    exit_current()
}

extern "C" fn user_thread_entry(frame_at: u64) -> ! {
    super::finish_switch();
    crate::arch::irq::enable();
    // Signals sent before the thread first ran are delivered before its first instruction.
    // SAFETY: `new_user` placed a valid frame at `frame_at`; nothing else references it.
    (crate::arch::hooks::get().return_to_user)(unsafe {
        &mut *(frame_at as *mut crate::arch::TrapFrame)
    });
    // SAFETY: `new_user` placed a valid user frame at `frame_at`, the top of this thread's
    // kernel stack, and the scheduler loaded this thread's address space.
    unsafe { crate::arch::user::enter_user(frame_at as *const crate::arch::TrapFrame) }
}

/// Starts a user thread created with [`Thread::new_user`].
pub fn start_user_thread(t: &ThreadRef) {
    super::start_new(t);
}

/// Ends the calling thread.
/// Run by every exiting thread that holds a NetBSD rump lwp (set by the rump module).
pub static RUMP_EXIT_HOOK: spin::Once<fn()> = spin::Once::new();

pub fn exit_current() -> ! {
    if percpu::rump_lwp() != 0
        && let Some(h) = RUMP_EXIT_HOOK.get()
    {
        h();
    }
    let me = current();
    me.exited.store(true, Ordering::Release);
    me.joiners.wake_all();
    crate::arch::irq::save_and_disable();
    me.set_state(STATE_DEAD);
    drop(me);
    super::schedule();
    unreachable!("a dead thread was scheduled again");
}

/// The calling thread. Interrupts go off *before* the per-CPU block is found: otherwise the
/// thread could be preempted and moved to another CPU between reading GS and reading that
/// CPU's `current`, and get a different thread back.
pub fn current() -> ThreadRef {
    let _irq = super::IrqOff::new();
    percpu::current().sched.current()
}

/// `base(thread)` plus the calling thread's current slice, read as one consistent value:
/// a switch while reading adds the slice to `run_ns` and restarts `ran_since`, and reading
/// the old start with the new total would count that slice twice (a CPU-time clock that
/// jumps ahead and back), so the read is retried if `ran_since` moved.
pub fn current_cpu_ns(base: impl Fn(&Thread) -> u64) -> u64 {
    let th = current();
    loop {
        let since = th.ran_since.load(Ordering::Acquire);
        let total = base(&th);
        let now = crate::time::now_ns();
        if th.ran_since.load(Ordering::Acquire) == since {
            return total
                + if since != 0 {
                    now.saturating_sub(since)
                } else {
                    0
                };
        }
    }
}

/// Runs `f` on the calling thread without taking a reference to it — no reference-count
/// traffic on hot paths (every system call's return to user mode, `getpid`). Sound because a
/// thread's `Thread` outlives its running: the CPU running it holds it in `current`, and a
/// thread that blocks or migrates inside `f` is held by whoever will run it again.
pub fn with_current<R>(f: impl FnOnce(&Thread) -> R) -> R {
    // One GS-relative load (every system call comes here twice; keeping interrupts off
    // across the two loads of the scheduler's slot cost more than the rest of `getpid`).
    let fast = percpu::current_thread() as *const Thread;
    let ptr = if fast.is_null() {
        let _irq = super::IrqOff::new();
        percpu::current().sched.current_ptr()
    } else {
        fast
    };
    // SAFETY: `ptr` is the calling thread (read with interrupts off, so on the CPU whose
    // `current` it is), alive for as long as this code runs (see above).
    f(unsafe { &*ptr })
}

pub struct JoinHandle {
    thread: ThreadRef,
}

impl JoinHandle {
    pub fn thread(&self) -> &ThreadRef {
        &self.thread
    }

    /// Waits for the thread to finish.
    pub fn join(self) {
        let t = self.thread.clone();
        self.thread.joiners.wait_until(|| t.has_exited(), None);
    }

    /// Waits at most until `deadline`; false on timeout.
    pub fn join_until(&self, deadline: u64) -> bool {
        let t = self.thread.clone();
        self.thread
            .joiners
            .wait_until(|| t.has_exited(), Some(deadline))
    }
}

/// Starts a kernel thread on the least loaded CPU.
pub fn spawn<F: FnOnce() + Send + 'static>(name: &str, f: F) -> JoinHandle {
    spawn_with_affinity(name, u64::MAX, f)
}

/// Starts a kernel thread that may only run on the CPUs in `mask` (bit n = CPU n).
pub fn spawn_with_affinity<F: FnOnce() + Send + 'static>(
    name: &str,
    mask: u64,
    f: F,
) -> JoinHandle {
    let mask = if mask == 0 { u64::MAX } else { mask };
    let t = Thread::new_with(name, percpu::cpu_id(), Box::new(f))
        .expect("out of memory creating a thread");
    t.affinity.store(mask, Ordering::Relaxed);
    super::start_new(&t);
    JoinHandle { thread: t }
}

/// Starts a kernel thread pinned to one CPU.
pub fn spawn_on<F: FnOnce() + Send + 'static>(name: &str, cpu: usize, f: F) -> JoinHandle {
    spawn_with_affinity(name, 1u64 << cpu.min(63), f)
}

/// Changes where the current thread may run; it moves right away if it must.
pub fn set_current_affinity(mask: u64) {
    let me = current();
    me.affinity
        .store(if mask == 0 { u64::MAX } else { mask }, Ordering::Relaxed);
    if !me.may_run_on(percpu::cpu_id()) {
        drop(me);
        super::migrate_current();
    }
}

pub fn yield_now() {
    super::schedule();
}

/// Sleeps until the monotonic clock reaches `deadline` ns.
pub fn sleep_until(deadline: u64) {
    while crate::time::now_ns() < deadline {
        let me = current();
        let sgen = me.prepare_block();
        drop(me);
        super::block(Some(deadline), sgen);
    }
}

/// Blocks the calling thread until [`unpark`] (or an earlier unpark not yet consumed) or the
/// monotonic clock reaching `deadline`. May return spuriously; callers re-check their
/// condition (the `std::thread::park` contract).
pub fn park(deadline: Option<u64>) {
    let me = current();
    if me.park_token.swap(false, Ordering::AcqRel) {
        return;
    }
    let sgen = me.prepare_block();
    // An unpark between the check above and `prepare_block` left the token set but found the
    // thread not yet blocked: take it back and don't sleep.
    if me.park_token.swap(false, Ordering::AcqRel) {
        me.try_unblock(Some(sgen));
        return;
    }
    drop(me);
    if deadline.is_some_and(|d| crate::time::now_ns() >= d) {
        current().try_unblock(Some(sgen));
        return;
    }
    super::block(deadline, sgen);
    current().park_token.store(false, Ordering::Release);
}

/// Wakes `t` from [`park`], or makes its next `park` return at once.
pub fn unpark(t: &ThreadRef) {
    t.park_token.store(true, Ordering::Release);
    super::wake(t);
}

pub fn sleep_ms(ms: u64) {
    sleep_until(crate::time::now_ns() + ms * 1_000_000);
}

/// Prints every live thread — id, name, process, state, CPU, CPU time — and, for each one
/// switched out, where it stopped (its saved kernel frame chain). For the hang report, run
/// from an NMI while every other CPU is parked: it takes no lock it could wait on (a busy
/// registry is reported, not waited for) and never drops a thread reference.
pub fn dump_all(print: fn(core::fmt::Arguments<'_>), backtrace: fn(u64)) {
    let Some(r) = REGISTRY.try_lock() else {
        print(format_args!(
            "  (the thread list is locked by an interrupted CPU)\n"
        ));
        return;
    };
    let live = r.iter().filter(|w| w.strong_count() > 0).count();
    print(format_args!(
        "  --- {live} threads, those of processes first\n"
    ));
    for processes in [true, false] {
        for w in r.iter() {
            if w.strong_count() == 0 {
                continue;
            }
            // SAFETY: the thread's strong count is non-zero and every other CPU is parked, so
            // nothing can drop it while this reads it (a `Weak` keeps the allocation).
            let t = unsafe { &*w.as_ptr() };
            if t.task.get().is_some() == processes {
                dump_one(t, print, backtrace);
            }
        }
    }
}

fn dump_one(t: &Thread, print: fn(core::fmt::Arguments<'_>), backtrace: fn(u64)) {
    let st = match t.state() {
        STATE_RUNNABLE => "runnable",
        STATE_RUNNING => "running",
        STATE_BLOCKED => "blocked",
        STATE_DEAD => "dead",
        _ => "?",
    };
    let on_cpu = t.on_cpu.load(Ordering::Relaxed);
    print(format_args!(
        "  thread {} {:?}: {st}{}{} cpu {} ran {} ms",
        t.id,
        t.name,
        if on_cpu { ", on CPU" } else { "" },
        if t.queued.load(Ordering::Relaxed) {
            ", queued"
        } else {
            ""
        },
        t.cpu.load(Ordering::Relaxed),
        t.run_ns.load(Ordering::Relaxed) / 1_000_000,
    ));
    if let Some(task) = t.task.get() {
        task.describe(print);
    }
    print(format_args!("\n"));
    if on_cpu || t.stack.is_none() {
        return;
    }
    if let Some(rbp) = crate::arch::switch::saved_frame_pointer(t.saved_rsp()) {
        backtrace(rbp);
    }
}
