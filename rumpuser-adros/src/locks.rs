//! The rumpuser lock objects — `struct rumpuser_mtx`, `rumpuser_rw`, `rumpuser_cv` — with the
//! rules of NetBSD's `lib/librumpuser/rumpuser_pth.c`:
//!
//! * a `SPIN` mutex never releases the virtual CPU (`enter` is `enter_nowrap`);
//! * a `KMUTEX` records its owning lwp (`rumpuser_mutex_owner`);
//! * a blocking acquisition first tries without blocking, then releases the vCPU around the
//!   wait (`KLOCK_WRAP`);
//! * `cv_wait` releases the vCPU with the mutex as interlock *before* dropping the mutex, and on
//!   wake-up, for a `SPIN|KMUTEX` interlock, takes the vCPU back *before* relocking
//!   (`cv_reschedule`); otherwise it relocks first and then takes the vCPU;
//! * `cv_timedwait` takes a *relative* timeout, measured from entry, and returns `ETIMEDOUT`.

#![forbid(unsafe_code)]

use core::ffi::c_void;
use core::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::errno::Errno;
use crate::host::{self, Host};
use crate::hyp;
use crate::sync::{RawCondvar, RawMutex, RawRwLock, RwMode, Waiter};
use alloc::collections::VecDeque;
use alloc::sync::Arc;

/// Contended mutex acquisitions since boot: how many and the time spent waiting (ns); and
/// of the spin mutexes, how many acquisitions waited for their turn, how long, and how
/// many of those stopped spinning and slept. Only the slow paths count, so an uncontended
/// `enter` stays one atomic operation.
pub struct Contention {
    pub waits: u64,
    pub wait_ns: u64,
    pub spin_waits: u64,
    pub spin_wait_ns: u64,
    pub spin_sleeps: u64,
}

static WAITS: crate::CacheAligned<AtomicU64> = crate::CacheAligned(AtomicU64::new(0));
static WAIT_NS: crate::CacheAligned<AtomicU64> = crate::CacheAligned(AtomicU64::new(0));
static SPIN_WAITS: crate::CacheAligned<AtomicU64> = crate::CacheAligned(AtomicU64::new(0));
static SPIN_WAIT_NS: crate::CacheAligned<AtomicU64> = crate::CacheAligned(AtomicU64::new(0));
static SPIN_SLEEPS: crate::CacheAligned<AtomicU64> = crate::CacheAligned(AtomicU64::new(0));

pub fn contention() -> Contention {
    Contention {
        waits: WAITS.load(Ordering::Relaxed),
        wait_ns: WAIT_NS.load(Ordering::Relaxed),
        spin_waits: SPIN_WAITS.load(Ordering::Relaxed),
        spin_wait_ns: SPIN_WAIT_NS.load(Ordering::Relaxed),
        spin_sleeps: SPIN_SLEEPS.load(Ordering::Relaxed),
    }
}

/// Takes `raw` after a failed `try_lock`, counting the wait.
fn lock_contended(raw: &RawMutex, host: &dyn Host) {
    let t0 = host.monotonic_ns();
    raw.lock(host);
    WAITS.fetch_add(1, Ordering::Relaxed);
    WAIT_NS.fetch_add(host.monotonic_ns().saturating_sub(t0), Ordering::Relaxed);
}

pub const MTX_SPIN: i32 = 0x01;
pub const MTX_KMUTEX: i32 = 0x02;

/// `struct rumpuser_mtx`. Cache-line aligned like NetBSD's (`RUMPUSER_LOCKALIGN`).
///
/// Spin mutexes (`MTX_SPIN`, NetBSD's `mutex_spin_enter`) are ticket locks: FIFO, and the
/// waiter spins instead of parking. NetBSD code busy-waits on state guarded by a spin
/// mutex, taking and dropping it in a tight loop (`knote_detach` waiting for another
/// thread's `KN_BUSY` to clear under `kq_lock`): with a barging lock whose waiters park, the
/// looping thread re-took the lock each time before the woken waiter ran, and the waiter —
/// the one thread that could clear the flag — starved forever (a socket close hung the
/// system). With tickets, the waiter is served right after the current holder.
///
/// A waiter spins only for a while ([`Host::spin_ns`]), then sleeps until its ticket is
/// served: the unlock that serves a sleeping ticket wakes its holder. Spinning without end
/// is what NetBSD's own host never does (its spin mutexes are pthread mutexes), and on a
/// virtual machine it is ruinous: the holder may be a preempted thread, or a vCPU inside a
/// slow device-register write (wm(4) holds its transmit queue's spin mutex while it writes
/// the doorbell, which QEMU turns into a whole transmission), and every spinning CPU keeps
/// the host's cores from the holder. It was 47 % of all CPU samples of a `tcp_rx` run on a
/// loaded host.
#[repr(align(64))]
pub struct Mutex {
    raw: RawMutex,
    owner: AtomicUsize,
    flags: i32,
    /// Spin mutexes: the next ticket to hand out, and the ticket being served.
    next: AtomicU32,
    serving: AtomicU32,
    /// Spin mutexes: waiters that stopped spinning, with their tickets, and how many.
    sleepers: spin::Mutex<VecDeque<(u32, Arc<Waiter>)>>,
    nsleepers: AtomicU32,
}

impl Mutex {
    pub fn new(flags: i32) -> Mutex {
        Mutex {
            raw: RawMutex::new(),
            owner: AtomicUsize::new(0),
            flags,
            next: AtomicU32::new(0),
            serving: AtomicU32::new(0),
            sleepers: spin::Mutex::new(VecDeque::new()),
            nsleepers: AtomicU32::new(0),
        }
    }

    /// Whether the underlying lock is held (by anyone); for tests and assertions.
    pub fn is_locked(&self) -> bool {
        self.raw.is_locked()
    }

    pub fn flags(&self) -> i32 {
        self.flags
    }

    fn is_spin(&self) -> bool {
        self.flags & MTX_SPIN != 0
    }

    fn is_kmutex(&self) -> bool {
        self.flags & MTX_KMUTEX != 0
    }

    /// The pointer rump's scheduler compares with its CPU mutex (`interlock`).
    fn interlock(&self) -> *mut c_void {
        self as *const Mutex as *mut c_void
    }

    fn mark_entered(&self, host: &dyn Host) {
        if self.is_kmutex() {
            debug_assert_eq!(
                self.owner.load(Ordering::Relaxed),
                0,
                "kmutex entered twice"
            );
            self.owner.store(host::curlwp(host), Ordering::Relaxed);
        }
    }

    fn mark_exited(&self) {
        if self.is_kmutex() {
            self.owner.store(0, Ordering::Relaxed);
        }
    }

    pub fn enter(&self, host: &dyn Host) {
        if self.is_spin() {
            self.enter_nowrap(host);
            return;
        }
        if !self.raw.try_lock() {
            let n = hyp::unschedule(core::ptr::null_mut());
            lock_contended(&self.raw, host);
            hyp::schedule(n, core::ptr::null_mut());
        }
        self.mark_entered(host);
    }

    pub fn enter_nowrap(&self, host: &dyn Host) {
        self.raw_lock(host);
        self.mark_entered(host);
    }

    pub fn tryenter(&self, host: &dyn Host) -> Result<(), Errno> {
        let got = if self.is_spin() {
            let s = self.serving.load(Ordering::Acquire);
            self.next
                .compare_exchange(s, s.wrapping_add(1), Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
                && self.raw.try_lock()
        } else {
            self.raw.try_lock()
        };
        if got {
            self.mark_entered(host);
            Ok(())
        } else {
            Err(Errno::EBUSY)
        }
    }

    pub fn exit(&self) {
        self.mark_exited();
        self.raw_unlock();
    }

    /// Takes the underlying lock (no owner bookkeeping, no vCPU handling): a ticket for
    /// spin mutexes, the blocking lock for the others.
    fn raw_lock(&self, host: &dyn Host) {
        if self.is_spin() {
            let t = self.next.fetch_add(1, Ordering::Relaxed);
            if self.serving.load(Ordering::Acquire) != t {
                self.wait_turn(host, t);
            }
            // Our turn: nobody else holds or takes the raw lock now.
            let ok = self.raw.try_lock();
            debug_assert!(ok, "spin mutex: raw lock held out of turn");
        } else if !self.raw.try_lock() {
            lock_contended(&self.raw, host);
        }
    }

    /// Waits until ticket `t` is served: spins for [`Host::spin_ns`], then sleeps.
    fn wait_turn(&self, host: &dyn Host, t: u32) {
        let t0 = host.monotonic_ns();
        let budget = host.spin_ns();
        let mut spins = 0u32;
        let mut slept = false;
        while self.serving.load(Ordering::Acquire) != t {
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(64) && host.monotonic_ns().saturating_sub(t0) >= budget {
                slept = true;
                self.sleep_turn(host, t);
                break;
            }
            host.relax();
        }
        SPIN_WAITS.fetch_add(1, Ordering::Relaxed);
        SPIN_WAIT_NS.fetch_add(host.monotonic_ns().saturating_sub(t0), Ordering::Relaxed);
        if slept {
            SPIN_SLEEPS.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sleeps until ticket `t` is served. The sleeper is queued and counted before it looks
    /// at `serving` once more, and [`Self::raw_unlock`] advances `serving` before it looks at
    /// the count (both sequentially consistent), so one of the two sees the other: the
    /// serving unlock cannot miss a sleeper.
    fn sleep_turn(&self, host: &dyn Host, t: u32) {
        let w = Waiter::new(host);
        {
            let mut q = self.sleepers.lock();
            q.push_back((t, w.clone()));
            self.nsleepers.fetch_add(1, Ordering::SeqCst);
        }
        if self.serving.load(Ordering::SeqCst) == t {
            // Served meanwhile: leave the queue, unless the unlock already took us out.
            let mut q = self.sleepers.lock();
            if let Some(pos) = q.iter().position(|(_, x)| Arc::ptr_eq(x, &w)) {
                q.remove(pos);
                self.nsleepers.fetch_sub(1, Ordering::SeqCst);
            }
            return;
        }
        // Only the unlock that serves `t` notifies this waiter.
        w.wait(host);
        debug_assert_eq!(self.serving.load(Ordering::Acquire), t);
    }

    fn raw_unlock(&self) {
        self.raw.unlock();
        if self.is_spin() {
            let now = self.serving.fetch_add(1, Ordering::SeqCst).wrapping_add(1);
            if self.nsleepers.load(Ordering::SeqCst) != 0 {
                let w = {
                    let mut q = self.sleepers.lock();
                    let pos = q.iter().position(|(tk, _)| *tk == now);
                    let w = pos.and_then(|p| q.remove(p)).map(|(_, w)| w);
                    if w.is_some() {
                        self.nsleepers.fetch_sub(1, Ordering::SeqCst);
                    }
                    w
                };
                if let Some(w) = w {
                    w.notify();
                }
            }
        }
    }

    /// The owning lwp of a `KMUTEX` (0 when unowned); `None` for other mutexes, on which
    /// NetBSD's host panics.
    pub fn owner(&self) -> Option<usize> {
        self.is_kmutex().then(|| self.owner.load(Ordering::Relaxed))
    }
}

/// `struct rumpuser_rw`.
#[repr(align(64))]
#[derive(Default)]
pub struct RwLock {
    raw: RawRwLock,
}

impl RwLock {
    pub fn new() -> RwLock {
        RwLock {
            raw: RawRwLock::new(),
        }
    }

    /// The lwp recorded for a writer (readers are not recorded: skip the lookup).
    fn writer_lwp(host: &dyn Host, mode: RwMode) -> usize {
        match mode {
            RwMode::Write => host::curlwp(host),
            RwMode::Read => 0,
        }
    }

    pub fn enter(&self, host: &dyn Host, mode: RwMode) {
        let lwp = Self::writer_lwp(host, mode);
        if !self.raw.try_lock(mode, lwp) {
            hyp::without_vcpu(|| self.raw.lock(host, mode, lwp));
        }
    }

    pub fn tryenter(&self, host: &dyn Host, mode: RwMode) -> Result<(), Errno> {
        if self.raw.try_lock(mode, Self::writer_lwp(host, mode)) {
            Ok(())
        } else {
            Err(Errno::EBUSY)
        }
    }

    pub fn tryupgrade(&self, host: &dyn Host) -> Result<(), Errno> {
        if self.raw.try_upgrade(host::curlwp(host)) {
            Ok(())
        } else {
            Err(Errno::EBUSY)
        }
    }

    pub fn downgrade(&self) {
        self.raw.downgrade();
    }

    pub fn exit(&self) {
        self.raw.unlock();
    }

    /// `rumpuser_rw_held`: WRITER — the calling lwp holds it for writing; READER — the number
    /// of readers (NetBSD's host cannot tell which lwps they are either).
    pub fn held(&self, host: &dyn Host, mode: RwMode) -> i32 {
        match mode {
            RwMode::Write => i32::from(self.raw.write_owner() == Some(host::curlwp(host))),
            RwMode::Read => i32::try_from(self.raw.readers()).unwrap_or(i32::MAX),
        }
    }
}

/// `struct rumpuser_cv`.
#[repr(align(64))]
#[derive(Default)]
pub struct Condvar {
    raw: RawCondvar,
    nwaiters: AtomicI32,
}

/// How long a `cv_timedwait` may wait.
#[derive(Clone, Copy, Debug)]
pub struct RelTimeout {
    pub sec: i64,
    pub nsec: i64,
}

impl RelTimeout {
    fn deadline_from(self, now_ns: u64) -> u64 {
        let ns = i128::from(self.sec.max(0)) * 1_000_000_000 + i128::from(self.nsec.max(0));
        let ns = u64::try_from(ns).unwrap_or(u64::MAX);
        now_ns.saturating_add(ns)
    }
}

impl Condvar {
    pub fn new() -> Condvar {
        Condvar::default()
    }

    /// `rumpuser_cv_wait` / `rumpuser_cv_timedwait`.
    pub fn wait(
        &self,
        host: &dyn Host,
        m: &Mutex,
        timeout: Option<RelTimeout>,
    ) -> Result<(), Errno> {
        // Read the clock before giving up the CPU, as NetBSD does.
        let deadline = timeout.map(|t| t.deadline_from(host.monotonic_ns()));
        self.nwaiters.fetch_add(1, Ordering::Relaxed);
        let nlocks = hyp::unschedule(m.interlock());
        m.mark_exited();
        let w = self.raw.enqueue(host);
        m.raw_unlock();
        let signalled = self.raw.block(host, &w, deadline);
        if m.flags & (MTX_SPIN | MTX_KMUTEX) == (MTX_SPIN | MTX_KMUTEX) {
            // cv_reschedule: vCPU first, then the spin mutex (resource order).
            hyp::schedule(nlocks, m.interlock());
            m.enter_nowrap(host);
        } else {
            m.raw_lock(host);
            m.mark_entered(host);
            hyp::schedule(nlocks, m.interlock());
        }
        self.nwaiters.fetch_sub(1, Ordering::Relaxed);
        if signalled {
            Ok(())
        } else {
            Err(Errno::ETIMEDOUT)
        }
    }

    /// `rumpuser_cv_wait_nowrap`: the vCPU stays held.
    pub fn wait_nowrap(&self, host: &dyn Host, m: &Mutex) {
        self.nwaiters.fetch_add(1, Ordering::Relaxed);
        m.mark_exited();
        let w = self.raw.enqueue(host);
        m.raw_unlock();
        self.raw.block(host, &w, None);
        m.raw_lock(host);
        m.mark_entered(host);
        self.nwaiters.fetch_sub(1, Ordering::Relaxed);
    }

    // NetBSD signals and broadcasts condvars nobody waits on all the time (every `biodone`,
    // every vnode lock release): skip the queue's lock then. A waiter counts itself in
    // `nwaiters` before it releases the interlock, so a caller holding the interlock (the
    // rule for cv_signal/cv_broadcast) sees it.

    pub fn signal(&self) {
        if self.nwaiters.load(Ordering::Acquire) != 0 {
            self.raw.signal();
        }
    }

    pub fn broadcast(&self) {
        if self.nwaiters.load(Ordering::Acquire) != 0 {
            self.raw.broadcast();
        }
    }

    pub fn has_waiters(&self) -> i32 {
        self.nwaiters.load(Ordering::Relaxed)
    }
}
