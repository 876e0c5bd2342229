//! Signals: actions per process, mask and pending set per thread, delivery on the way back
//! to user mode through a Linux-compatible `rt_sigframe`, and `rt_sigreturn`.

use alloc::sync::Arc;
use core::sync::atomic::Ordering;

use super::{ExitStatus, Process, Task};
use crate::arch::TrapFrame;
use crate::errno::Errno;
use crate::syscall::abi::{self, SigInfoBytes};
use zerocopy::FromZeros;

pub const SIGHUP: u32 = 1;
pub const SIGINT: u32 = 2;
pub const SIGQUIT: u32 = 3;
pub const SIGILL: u32 = 4;
pub const SIGTRAP: u32 = 5;
pub const SIGABRT: u32 = 6;
pub const SIGBUS: u32 = 7;
pub const SIGFPE: u32 = 8;
pub const SIGKILL: u32 = 9;
pub const SIGUSR1: u32 = 10;
pub const SIGSEGV: u32 = 11;
pub const SIGUSR2: u32 = 12;
pub const SIGPIPE: u32 = 13;
pub const SIGALRM: u32 = 14;
pub const SIGTERM: u32 = 15;
pub const SIGCHLD: u32 = 17;
pub const SIGCONT: u32 = 18;
pub const SIGSTOP: u32 = 19;
pub const SIGTSTP: u32 = 20;
pub const SIGTTIN: u32 = 21;
pub const SIGTTOU: u32 = 22;
pub const SIGURG: u32 = 23;
pub const SIGWINCH: u32 = 28;
/// First real-time signal: from here on signals queue instead of merging.
pub const SIGRTMIN: u32 = 32;

// si_code values (Linux).
pub const SI_USER: i32 = 0;
pub const SI_KERNEL: i32 = 0x80;
pub const SI_QUEUE: i32 = -1;
pub const SI_TKILL: i32 = -6;
pub const CLD_EXITED: i32 = 1;
pub const CLD_KILLED: i32 = 2;
pub const CLD_DUMPED: i32 = 3;
pub const CLD_STOPPED: i32 = 5;
pub const CLD_CONTINUED: i32 = 6;
pub const SEGV_MAPERR: i32 = 1;
pub const SEGV_ACCERR: i32 = 2;

/// Pending real-time signals a thread may hold before further ones merge (Linux bounds
/// them by RLIMIT_SIGPENDING; sigqueue then fails with EAGAIN).
pub const MAX_QUEUED: usize = 1024;

/// What a handler or sigtimedwait/waitid learns about a signal (`siginfo_t`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigInfo {
    pub signo: u32,
    pub errno: i32,
    pub code: i32,
    pub pid: u32,
    pub uid: u32,
    /// SIGCHLD: exit code or signal number.
    pub status: i32,
    /// Faults: the address.
    pub addr: u64,
    /// rt_sigqueueinfo: the `sigval`.
    pub value: u64,
}

impl SigInfo {
    /// Sent by the kernel itself (tty, timers, pipes).
    pub fn kernel(signo: u32) -> SigInfo {
        SigInfo {
            signo,
            code: SI_KERNEL,
            ..Default::default()
        }
    }

    /// Sent by the calling process (kill: SI_USER, tkill/tgkill: SI_TKILL).
    pub fn from_current(signo: u32, code: i32) -> SigInfo {
        let (pid, uid) = super::current_process()
            .map(|p| (p.pid, p.creds.lock().uid))
            .unwrap_or((0, 0));
        SigInfo {
            signo,
            code,
            pid,
            uid,
            ..Default::default()
        }
    }

    /// Linux's `siginfo_t` (128 bytes): the `_sigfault` member for a fault raised by the
    /// CPU, `_sigchld` for a child's state change, `_rt` otherwise.
    pub fn to_bytes(&self) -> SigInfoBytes {
        let head = abi::SigInfoHead {
            si_signo: self.signo as i32,
            si_errno: self.errno,
            si_code: self.code,
            __pad: 0,
        };
        let real = self.code > 0 && self.code != SI_KERNEL;
        if is_fault(self.signo) && real {
            zerocopy::transmute!(abi::SigInfoFault {
                head,
                si_addr: self.addr,
                ..FromZeros::new_zeroed()
            })
        } else if self.signo == SIGCHLD && real {
            zerocopy::transmute!(abi::SigInfoChld {
                head,
                si_pid: self.pid,
                si_uid: self.uid,
                si_status: self.status,
                ..FromZeros::new_zeroed()
            })
        } else {
            zerocopy::transmute!(abi::SigInfoRt {
                head,
                si_pid: self.pid,
                si_uid: self.uid,
                si_value: self.value,
                ..FromZeros::new_zeroed()
            })
        }
    }

    /// Reads the fields a sender may set from a user `siginfo_t` (rt_sigqueueinfo).
    pub fn from_user(i: &abi::SigInfoRt) -> SigInfo {
        SigInfo {
            signo: i.head.si_signo as u32,
            errno: i.head.si_errno,
            code: i.head.si_code,
            pid: i.si_pid,
            uid: i.si_uid,
            status: 0,
            addr: 0,
            value: i.si_value,
        }
    }
}

pub const SA_NOCLDSTOP: u64 = 1;
pub const SA_SIGINFO: u64 = 4;
pub const SA_ONSTACK: u64 = 0x0800_0000;
pub const SA_RESTORER: u64 = 0x0400_0000;
pub const SA_RESTART: u64 = 0x1000_0000;
pub const SA_NODEFER: u64 = 0x4000_0000;
pub const SA_RESETHAND: u64 = 0x8000_0000;

pub const SIG_DFL: u64 = 0;
pub const SIG_IGN: u64 = 1;

pub(super) fn bit(sig: u32) -> u64 {
    1u64 << (sig - 1)
}

pub use crate::syscall::abi::SigAction;

#[derive(Clone)]
pub struct Actions(pub [SigAction; 64]);

impl Default for Actions {
    fn default() -> Self {
        Actions([SigAction::default(); 64])
    }
}

impl Actions {
    pub fn get(&self, sig: u32) -> SigAction {
        self.0.get(sig as usize - 1).copied().unwrap_or_default()
    }
    /// execve: caught signals revert to default; ignored stay ignored.
    pub fn reset_for_exec(&mut self) {
        for a in self.0.iter_mut() {
            if a.handler != SIG_IGN {
                *a = SigAction::default();
            }
        }
    }
}

/// A thread's signal state behind its lock, with a flag readable without the lock: the
/// return to user mode (every system call) checks it instead of taking the lock. The flag
/// is refreshed from the state each time a guard is dropped, so it is false only when
/// nothing is pending and no sigsuspend mask waits to be restored. A signal sent right
/// after a returning thread read the flag is found at its next entry, as it would be
/// after a check under the lock: the sender wakes or kicks the thread.
pub struct SigCell {
    state: crate::sync::spin::IrqSpinLock<SigState>,
    maybe: core::sync::atomic::AtomicBool,
}

pub struct SigGuard<'a> {
    g: crate::sync::spin::IrqSpinGuard<'a, SigState>,
    maybe: &'a core::sync::atomic::AtomicBool,
}

impl SigCell {
    pub fn new(s: SigState) -> SigCell {
        let maybe = s.pending != 0 || s.restore_mask.is_some();
        SigCell {
            state: crate::sync::spin::IrqSpinLock::new(s),
            maybe: core::sync::atomic::AtomicBool::new(maybe),
        }
    }

    pub fn lock(&self) -> SigGuard<'_> {
        SigGuard {
            g: self.state.lock(),
            maybe: &self.maybe,
        }
    }

    /// Nothing pending and no mask to restore (without the lock; see the type).
    pub fn quiet(&self) -> bool {
        !self.maybe.load(Ordering::Acquire)
    }
}

impl core::ops::Deref for SigGuard<'_> {
    type Target = SigState;
    fn deref(&self) -> &SigState {
        &self.g
    }
}

impl core::ops::DerefMut for SigGuard<'_> {
    fn deref_mut(&mut self) -> &mut SigState {
        &mut self.g
    }
}

impl Drop for SigGuard<'_> {
    fn drop(&mut self) {
        // Still under the lock (fields drop after this).
        self.maybe.store(
            self.g.pending != 0 || self.g.restore_mask.is_some(),
            Ordering::Release,
        );
    }
}

#[derive(Clone, Default, Debug)]
pub struct SigState {
    pub mask: u64,
    /// One bit per pending signal; `queue` holds their siginfo (at most one entry for a
    /// standard signal, one per send for a real-time signal). A bit without an entry reads
    /// as sent by the kernel.
    pub pending: u64,
    pub queue: alloc::vec::Vec<SigInfo>,
    /// The faulting address for a pending SIGSEGV/SIGBUS.
    pub fault_addr: u64,
    pub altstack: (u64, u64, i32),
    /// The mask to restore after a handler that interrupted `rt_sigsuspend`.
    pub restore_mask: Option<u64>,
}

impl SigState {
    pub fn fork_child(&self) -> SigState {
        SigState {
            mask: self.mask,
            pending: 0,
            queue: alloc::vec::Vec::new(),
            fault_addr: 0,
            altstack: self.altstack,
            restore_mask: None,
        }
    }

    /// Marks `info.signo` pending with its siginfo: standard signals merge with a pending
    /// one, real-time signals queue (up to MAX_QUEUED). False if it was not queued.
    pub fn enqueue(&mut self, info: SigInfo) -> bool {
        let b = bit(info.signo);
        if self.pending & b == 0 {
            self.queue.retain(|i| i.signo != info.signo);
        } else if info.signo < SIGRTMIN {
            return false;
        }
        self.pending |= b;
        if self.queue.len() >= MAX_QUEUED {
            return false;
        }
        self.queue.push(info);
        true
    }

    /// Takes one pending instance of `sig` (the caller saw its bit set).
    pub fn take(&mut self, sig: u32) -> SigInfo {
        let info = match self.queue.iter().position(|i| i.signo == sig) {
            Some(at) => self.queue.remove(at),
            None => SigInfo::kernel(sig),
        };
        if !self.queue.iter().any(|i| i.signo == sig) {
            self.pending &= !bit(sig);
        }
        info
    }

    /// Discards every pending signal in `set`.
    pub fn discard(&mut self, set: u64) {
        self.pending &= !set;
        self.queue.retain(|i| set & bit(i.signo) == 0);
    }
}

pub fn valid(sig: u32) -> bool {
    (1..=64).contains(&sig)
}

enum Default_ {
    Terminate,
    Ignore,
    Stop,
    Continue,
}

/// Signals a CPU exception raises.
fn is_fault(sig: u32) -> bool {
    matches!(sig, SIGSEGV | SIGBUS | SIGILL | SIGFPE | SIGTRAP)
}

fn default_action(sig: u32) -> Default_ {
    match sig {
        SIGCHLD | SIGURG | SIGWINCH => Default_::Ignore,
        SIGCONT => Default_::Continue,
        SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU => Default_::Stop,
        _ => Default_::Terminate,
    }
}

fn is_stop(sig: u32) -> bool {
    matches!(sig, SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU)
}

const STOP_MASK: u64 =
    (1 << (SIGSTOP - 1)) | (1 << (SIGTSTP - 1)) | (1 << (SIGTTIN - 1)) | (1 << (SIGTTOU - 1));

/// What happens when a signal is sent, whatever its action (Linux's `prepare_signal`): a
/// stop signal discards pending SIGCONTs; SIGCONT discards pending stop signals and resumes
/// a stopped process (its parent hears of it).
fn prepare(p: &Arc<Process>, sig: u32) {
    if is_stop(sig) {
        for t in p.live_threads() {
            t.sig.lock().discard(bit(SIGCONT));
        }
    } else if sig == SIGCONT {
        let threads = p.live_threads();
        let resumed = {
            let mut j = p.job.lock();
            p.cont_gen.fetch_add(1, Ordering::AcqRel);
            for t in &threads {
                t.sig.lock().discard(STOP_MASK);
            }
            let was = j.stopped;
            if was {
                j.stopped = false;
                p.stopped.store(false, Ordering::Release);
                j.report_stop = false;
                j.report_cont = true;
            }
            was
        };
        if resumed {
            p.stop_wq.wake_all();
            notify_parent_jobctl(p);
        }
    }
}

/// A child stopped or continued: SIGCHLD to the parent (unless it asked for SA_NOCLDSTOP),
/// and wake its wait.
fn notify_parent_jobctl(p: &Process) {
    if let Some(parent) = p.parent() {
        if parent.sig.lock().get(SIGCHLD).flags & SA_NOCLDSTOP == 0 {
            let j = *p.job.lock();
            let (code, status) = if j.stopped {
                (CLD_STOPPED, j.stop_sig as i32)
            } else {
                (CLD_CONTINUED, SIGCONT as i32)
            };
            let uid = p.creds.lock().uid;
            send_process_info(
                &parent,
                SigInfo {
                    signo: SIGCHLD,
                    code,
                    pid: p.pid,
                    uid,
                    status,
                    ..Default::default()
                },
            );
        }
        parent.child_event.wake_all();
    }
}

/// Sends `sig` to every live member of process group `pgid`; false if there is none.
pub fn send_pgrp(pgid: u32, sig: u32) -> bool {
    let members = super::pgrp_members(pgid);
    for p in &members {
        send_process(p, sig);
    }
    !members.is_empty()
}

/// True if the calling thread blocks `sig` or its process ignores it (SIG_IGN).
pub fn current_blocks_or_ignores(sig: u32) -> bool {
    let Some(t) = super::current_task() else {
        return true;
    };
    t.sig.lock().mask & bit(sig) != 0 || t.process.sig.lock().get(sig).handler == SIG_IGN
}

/// Marks `sig` pending on one thread (sent by the kernel) and wakes it.
pub fn send_task(t: &Arc<Task>, sig: u32) {
    send_task_info(t, SigInfo::kernel(sig));
}

/// Marks `info.signo` pending on one thread and wakes it so a blocking call can return
/// EINTR. False if a real-time signal could not be queued.
pub fn send_task_info(t: &Arc<Task>, info: SigInfo) -> bool {
    let sig = info.signo;
    if sig == 0 {
        return true;
    }
    prepare(&t.process, sig);
    // An ignored signal that is not blocked is discarded, as on Linux (it must not make a
    // blocking call return EINTR).
    if is_ignored(&t.process, sig) && t.sig.lock().mask & bit(sig) == 0 {
        return true;
    }
    let queued = t.sig.lock().enqueue(info);
    crate::ipc::signalfd::notify();
    if sig == SIGKILL {
        t.killed.store(true, Ordering::Release);
        let mut ex = t.process.exit.lock();
        if ex.is_none() {
            *ex = Some(ExitStatus::Signaled(SIGKILL as u8));
        }
    }
    if let Some(th) = t.thread() {
        crate::sched::wake(&th);
    }
    queued || sig < SIGRTMIN
}

/// Process 1 is not killed or stopped by a signal it has no handler for, as on Linux
/// (`SIGNAL_UNKILLABLE`): such signals sent to it (SIGKILL and SIGSTOP included) are
/// discarded. Only a fault its own code raises (SIGSEGV from a page fault, …: [`force`])
/// still takes the default action.
fn init_ignores_default(p: &Process, handler: u64) -> bool {
    p.pid == 1 && handler == SIG_DFL
}

/// True if delivering `sig` to `p` would do nothing.
pub fn is_ignored(p: &Process, sig: u32) -> bool {
    init_ignores_default(p, p.sig.lock().get(sig).handler) || action_ignores(p, sig)
}

/// True if `p`'s action for `sig` ignores it (SIG_IGN, or SIG_DFL of a signal whose default
/// is to be ignored) — what `sigaction` discards pending instances for.
pub fn action_ignores(p: &Process, sig: u32) -> bool {
    let a = p.sig.lock().get(sig);
    if sig == SIGKILL || sig == SIGSTOP {
        return false;
    }
    a.handler == SIG_IGN
        || (a.handler == SIG_DFL && matches!(default_action(sig), Default_::Ignore))
}

/// Process-directed signal sent by the kernel.
pub fn send_process(p: &Arc<Process>, sig: u32) {
    send_process_info(p, SigInfo::kernel(sig));
}

/// Process-directed signal: the first thread not blocking it (else the first thread).
/// False if a real-time signal could not be queued.
pub fn send_process_info(p: &Arc<Process>, info: SigInfo) -> bool {
    let sig = info.signo;
    let threads = p.live_threads();
    let pick = threads
        .iter()
        .find(|t| t.sig.lock().mask & bit(sig) == 0)
        .or(threads.first())
        .cloned();
    if let Some(t) = pick {
        if sig == SIGKILL {
            for other in &threads {
                send_task_info(other, info);
            }
        } else {
            return send_task_info(&t, info);
        }
    }
    true
}

/// A synchronous fault signal: it cannot be blocked or ignored. `code` is its si_code
/// (SEGV_MAPERR/SEGV_ACCERR for page faults), `addr` the faulting address.
pub fn force(t: &Arc<Task>, sig: u32, code: i32, addr: u64) {
    {
        let mut s = t.sig.lock();
        s.mask &= !bit(sig);
        s.discard(bit(sig));
        s.enqueue(SigInfo {
            signo: sig,
            code,
            addr,
            ..Default::default()
        });
        s.fault_addr = addr;
    }
    let mut acts = t.process.sig.lock();
    let a = acts.get(sig);
    if a.handler == SIG_IGN {
        acts.0[sig as usize - 1].handler = SIG_DFL;
    }
}

/// True if the calling thread has a deliverable signal (blocking calls return EINTR).
pub fn pending_for_current() -> bool {
    match super::current_task() {
        Some(t) => {
            if t.killed.load(Ordering::Acquire) {
                return true;
            }
            let s = t.sig.lock();
            s.pending & !s.mask != 0
        }
        None => false,
    }
}

/// What [`deliver`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivered {
    /// No deliverable signal.
    Nothing,
    /// A signal whose action is to do nothing was taken; there may be more.
    Ignored,
    /// The process stopped: the caller parks until it continues.
    Stopped,
    /// `frame` now enters a handler.
    Handler,
}

/// Delivers one pending, unblocked signal (if any) by rewriting `frame`.
/// `t` is the calling thread's task (borrowed from its thread: no reference-count traffic
/// on the common path, where nothing is pending).
pub fn deliver(t: &Task, frame: &mut TrapFrame) -> Delivered {
    // The common case, without the lock: nothing pending, no sigsuspend mask to restore.
    if t.sig.quiet() {
        return Delivered::Nothing;
    }
    {
        let s = t.sig.lock();
        if s.pending & !s.mask == 0 && s.restore_mask.is_none() {
            return Delivered::Nothing;
        }
    }
    let Some(t) = crate::proc::current_task() else {
        return Delivered::Nothing;
    };
    let d = deliver_one(&t, frame);
    // rt_sigsuspend's temporary mask ends once the wait is over, handler or not.
    let mut s = t.sig.lock();
    if let Some(m) = s.restore_mask.take() {
        s.mask = m;
    }
    d
}

/// The default action of a stop signal: unless a SIGCONT came after it was dequeued (`cont_gen`),
/// the process stops and its parent is told. Stops of pid 1 and terminal stops of an
/// orphaned process group are discarded.
fn stop_process(t: &Arc<Task>, sig: u32, cont_gen: u64) -> Delivered {
    let p = &t.process;
    if p.pid == 1 || (sig != SIGSTOP && super::pgrp_orphaned(p.pgid())) {
        return Delivered::Ignored;
    }
    {
        let mut j = p.job.lock();
        if p.cont_gen.load(Ordering::Acquire) != cont_gen {
            return Delivered::Ignored;
        }
        j.stopped = true;
        p.stopped.store(true, Ordering::Release);
        j.stop_sig = sig;
        j.report_stop = true;
        j.report_cont = false;
    }
    // The other threads park at their next return to user mode.
    for other in p.live_threads() {
        if other.tid != t.tid
            && let Some(th) = other.thread()
        {
            crate::sched::wake(&th);
        }
    }
    notify_parent_jobctl(p);
    Delivered::Stopped
}

fn deliver_one(t: &Arc<Task>, frame: &mut TrapFrame) -> Delivered {
    let cont_gen = t.process.cont_gen.load(Ordering::Acquire);
    let (sig, mask, info) = {
        let mut s = t.sig.lock();
        let ready = s.pending & !s.mask;
        if ready == 0 {
            return Delivered::Nothing;
        }
        // The frame records the mask to return to: the pre-sigsuspend one if any.
        let frame_mask = s.restore_mask.take().unwrap_or(s.mask);
        let sig = ready.trailing_zeros() + 1;
        let info = s.take(sig);
        s.mask = frame_mask;
        (sig, frame_mask, info)
    };

    let act = t.process.sig.lock().get(sig);
    match act.handler {
        SIG_IGN if sig != SIGKILL && sig != SIGSTOP => return Delivered::Ignored,
        // Sent while blocked, then unblocked: process 1 still ignores it (faults excepted).
        SIG_DFL
            if init_ignores_default(&t.process, SIG_DFL) && !(is_fault(sig) && info.code > 0) =>
        {
            return Delivered::Ignored;
        }
        SIG_DFL | SIG_IGN => match default_action(sig) {
            Default_::Ignore | Default_::Continue => return Delivered::Ignored,
            Default_::Stop => return stop_process(t, sig, cont_gen),
            Default_::Terminate => {
                if is_fault(sig) && info.code > 0 {
                    // Raised by a CPU exception (si_code > 0: SEGV_*, SI_KERNEL), not sent:
                    // like Linux's "segfault at" line, the one clue a test log keeps when a
                    // program dies of an exception nobody handles.
                    log::warn!(
                        "pid {} tid {} ({}): killed by signal {} (code {}) at pc {:#x} sp {:#x} addr {:#x}",
                        t.process.pid,
                        t.tid,
                        t.process.name.lock().clone(),
                        sig,
                        info.code,
                        frame.pc(),
                        frame.sp(),
                        info.addr
                    );
                }
                super::exit_group(ExitStatus::Signaled(sig as u8));
            }
        },
        _ => {}
    }
    // Restart or fail an interrupted system call.
    if frame.is_syscall() {
        let ret = frame.ret() as i64;
        if ret == -(Errno::ERESTARTSYS as i64) {
            if act.flags & SA_RESTART != 0 {
                frame.restart_syscall();
            } else {
                frame.set_ret(Errno::EINTR.to_ret());
            }
        }
    }
    if super::sigframe::setup(t, frame, &info, &act, mask).is_err() {
        // Cannot build the frame (bad stack): the process dies of SIGSEGV.
        super::exit_group(ExitStatus::Signaled(SIGSEGV as u8));
    }
    let mut s = t.sig.lock();
    s.mask |= act.mask;
    if act.flags & SA_NODEFER == 0 {
        s.mask |= bit(sig);
    }
    s.mask &= !(bit(SIGKILL) | bit(SIGSTOP));
    if act.flags & SA_RESETHAND != 0 {
        t.process.sig.lock().0[sig as usize - 1] = SigAction::default();
    }
    Delivered::Handler
}

/// `rt_sigreturn`: restores the context the signal frame saved (`sigframe`, per
/// architecture).
pub use super::sigframe::sigreturn;
