//! Processes and their threads (tasks): creation from an executable, fork/clone, execve,
//! exit and wait, signals, and the hooks the trap handlers call for user-mode faults.
//!
//! Lock order: a process's `children` lock → `state` lock → any thread's locks. Never hold
//! a process lock while blocking.

pub mod elf;
pub mod exec;
pub mod fd;
pub mod imgcache;
pub mod sigframe;
pub mod signal;
pub mod vdso;

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};

use crate::arch::TrapFrame;
use crate::errno::{Errno, KResult};
use crate::mm::uspace::AddressSpace;
use crate::sched::wait::WaitQueue;
use crate::sched::{self, ThreadRef};
use crate::sync::spin::IrqSpinLock;

pub use signal::SigState;

/// Job-control state of a process (the "state lock" level of the lock order).
#[derive(Clone, Copy, Debug, Default)]
pub struct JobCtl {
    /// Every thread parks on its way to user mode until SIGCONT or SIGKILL.
    pub stopped: bool,
    /// The signal that stopped it.
    pub stop_sig: u32,
    /// A stop that `wait` (WUNTRACED/WSTOPPED) has not reported yet.
    pub report_stop: bool,
    /// A continue that `wait` (WCONTINUED) has not reported yet.
    pub report_cont: bool,
}

/// What `wait4`/`waitid` report about a child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitEvent {
    Exited(ExitStatus),
    Stopped(u32),
    Continued,
}

impl WaitEvent {
    /// The `wstatus` word.
    pub fn wstatus(self) -> i32 {
        match self {
            WaitEvent::Exited(st) => st.wstatus(),
            WaitEvent::Stopped(sig) => 0x7f | ((sig as i32) << 8),
            WaitEvent::Continued => 0xffff,
        }
    }
}

/// Which events a wait call asks for.
#[derive(Clone, Copy, Debug, Default)]
pub struct WaitOpts {
    pub nohang: bool,
    pub exited: bool,
    pub stopped: bool,
    pub continued: bool,
    /// Report without consuming (WNOWAIT).
    pub nowait: bool,
}

/// Supplementary groups a process may have (Linux allows 65536; setgroups above this is
/// EINVAL here).
pub const NGROUPS: usize = 64;

#[derive(Clone, Copy, Debug)]
pub struct Creds {
    pub uid: u32,
    pub euid: u32,
    /// Saved set-user-ID.
    pub suid: u32,
    pub gid: u32,
    pub egid: u32,
    /// Saved set-group-ID.
    pub sgid: u32,
    /// Supplementary groups: the first `ngroups` entries.
    pub groups: [u32; NGROUPS],
    pub ngroups: usize,
}

impl Default for Creds {
    fn default() -> Self {
        Creds {
            uid: 0,
            euid: 0,
            suid: 0,
            gid: 0,
            egid: 0,
            sgid: 0,
            groups: [0; NGROUPS],
            ngroups: 0,
        }
    }
}

impl Creds {
    pub fn groups(&self) -> &[u32] {
        &self.groups[..self.ngroups.min(NGROUPS)]
    }

    /// Copies the effective ids and groups into a file-system context.
    pub fn apply(&self, ctx: &mut crate::fs::FsCtx) {
        ctx.uid = self.euid;
        ctx.gid = self.egid;
        ctx.groups = self.groups().to_vec();
    }
}

/// How a process ended, as `wait4` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(u8),
    Signaled(u8),
}

impl ExitStatus {
    /// The `wstatus` word.
    pub fn wstatus(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => i32::from(c) << 8,
            ExitStatus::Signaled(s) => i32::from(s),
        }
    }
}

pub struct Process {
    pub pid: u32,
    pub ppid: AtomicU32,
    pub pgid: AtomicU32,
    pub sid: AtomicU32,
    pub aspace: IrqSpinLock<Arc<AddressSpace>>,
    pub files: IrqSpinLock<fd::FdTable>,
    pub fs: IrqSpinLock<Option<crate::fs::FsCtx>>,
    pub creds: IrqSpinLock<Creds>,
    pub children: IrqSpinLock<Vec<Arc<Process>>>,
    pub threads: IrqSpinLock<Vec<Weak<Task>>>,
    pub exit: IrqSpinLock<Option<ExitStatus>>,
    /// Set once every thread has gone: the process is a zombie until reaped.
    pub zombie: AtomicBool,
    /// The parent sleeps here in wait4; children wake it when they change state.
    pub child_event: WaitQueue,
    pub sig: IrqSpinLock<signal::Actions>,
    pub name: IrqSpinLock<String>,
    pub cmdline: IrqSpinLock<Vec<String>>,
    /// Path of the running executable (/proc/PID/exe).
    pub exe: IrqSpinLock<String>,
    pub start_ns: u64,
    /// CPU time of threads that already exited (ns).
    pub dead_threads_ns: AtomicU64,
    /// CPU time of reaped children (ns), for RUSAGE_CHILDREN.
    pub children_ns: AtomicU64,
    /// Nice value (-20..19), reported by getpriority.
    pub nice: AtomicI32,
    /// ITIMER_REAL: (generation, interval ns); a timer thread fires SIGALRM.
    pub itimer: IrqSpinLock<(u64, u64, u64)>,
    /// vfork/CLONE_VFORK parents wait here until the child execs or exits.
    pub vfork_done: WaitQueue,
    pub vfork_released: AtomicBool,
    /// Stopped / continued (job control).
    pub job: IrqSpinLock<JobCtl>,
    /// `job.stopped`, readable without the lock (written with it held): the return to user
    /// mode checks it on every system call.
    pub stopped: AtomicBool,
    /// Bumped by every SIGCONT: a stop signal dequeued before a SIGCONT does not stop.
    pub cont_gen: AtomicU64,
    /// Threads of a stopped process park here.
    pub stop_wq: WaitQueue,
}

/// A user thread: the process it belongs to and its per-thread state.
pub struct Task {
    pub tid: u32,
    pub process: Arc<Process>,
    pub sig: signal::SigCell,
    pub clear_child_tid: AtomicU64,
    /// CLONE_CHILD_SETTID: where the new thread stores its own id, in its own address
    /// space, before it first runs user code (Linux does it in schedule_tail).
    set_child_tid: AtomicU64,
    /// Set when the thread must die at its next return to user mode (exit_group, fatal signal).
    pub killed: AtomicBool,
    /// The kernel thread running this task. Weak: the thread owns the task (through
    /// `Thread::task`), and a strong link back would keep both — and the whole process with
    /// its address space — alive forever.
    thread: spin::Once<alloc::sync::Weak<crate::sched::Thread>>,
}

static NEXT_PID: AtomicU32 = AtomicU32::new(1);
static PROCS: IrqSpinLock<BTreeMap<u32, Weak<Process>>> = IrqSpinLock::new(BTreeMap::new());
static TASKS: IrqSpinLock<BTreeMap<u32, Weak<Task>>> = IrqSpinLock::new(BTreeMap::new());

/// Called when pid 1 exits (the boot code powers off or reports).
static INIT_EXIT: spin::Once<fn(ExitStatus)> = spin::Once::new();

pub fn on_init_exit(f: fn(ExitStatus)) {
    INIT_EXIT.call_once(|| f);
}

fn alloc_pid() -> u32 {
    NEXT_PID.fetch_add(1, Ordering::Relaxed)
}

/// The most recently allocated pid (for /proc/loadavg).
pub fn last_pid() -> u32 {
    NEXT_PID.load(Ordering::Relaxed).saturating_sub(1)
}

pub fn process(pid: u32) -> Option<Arc<Process>> {
    PROCS.lock().get(&pid).and_then(|w| w.upgrade())
}

pub fn task(tid: u32) -> Option<Arc<Task>> {
    TASKS.lock().get(&tid).and_then(|w| w.upgrade())
}

pub fn all_processes() -> Vec<Arc<Process>> {
    PROCS.lock().values().filter_map(|w| w.upgrade()).collect()
}

impl sched::thread::UserTask for Task {
    fn describe(&self, print: fn(core::fmt::Arguments<'_>)) {
        print(format_args!(" pid {} tid {}", self.process.pid, self.tid));
        match self.process.name.try_lock() {
            Some(name) => print(format_args!(" {:?}", name.as_str())),
            None => print(format_args!(" (name locked)")),
        }
    }
}

/// The process layer's task in a thread's slot (every task there is one of ours).
fn task_of(th: &sched::Thread) -> Option<&Task> {
    let any: &dyn core::any::Any = &**th.task.get()?;
    any.downcast_ref::<Task>()
}

/// The calling thread's task, if it runs a process.
pub fn current_task() -> Option<Arc<Task>> {
    let t: Arc<dyn core::any::Any + Send + Sync> = sched::current().task.get()?.clone();
    t.downcast::<Task>().ok()
}

pub fn current_process() -> Option<Arc<Process>> {
    current_task().map(|t| t.process.clone())
}

/// Runs `f` on the calling thread's task (if it has one) without taking references.
pub fn with_current_task<R>(f: impl FnOnce(Option<&Task>) -> R) -> R {
    sched::thread::with_current(|th| f(task_of(th)))
}

impl Process {
    fn new(pid: u32, ppid: u32, aspace: Arc<AddressSpace>, name: &str) -> Arc<Process> {
        let p = Arc::new(Process {
            pid,
            ppid: AtomicU32::new(ppid),
            pgid: AtomicU32::new(pid),
            sid: AtomicU32::new(pid),
            aspace: IrqSpinLock::new(aspace),
            files: IrqSpinLock::new(fd::FdTable::new()),
            fs: IrqSpinLock::new(None),
            creds: IrqSpinLock::new(Creds::default()),
            children: IrqSpinLock::new(Vec::new()),
            threads: IrqSpinLock::new(Vec::new()),
            exit: IrqSpinLock::new(None),
            zombie: AtomicBool::new(false),
            child_event: WaitQueue::new(),
            sig: IrqSpinLock::new(signal::Actions::default()),
            name: IrqSpinLock::new(String::from(name)),
            cmdline: IrqSpinLock::new(Vec::new()),
            exe: IrqSpinLock::new(String::new()),
            start_ns: crate::time::now_ns(),
            dead_threads_ns: AtomicU64::new(0),
            children_ns: AtomicU64::new(0),
            nice: AtomicI32::new(0),
            itimer: IrqSpinLock::new((0, 0, 0)),
            vfork_done: WaitQueue::new(),
            vfork_released: AtomicBool::new(false),
            job: IrqSpinLock::new(JobCtl::default()),
            stopped: AtomicBool::new(false),
            cont_gen: AtomicU64::new(0),
            stop_wq: WaitQueue::new(),
        });
        PROCS.lock().insert(pid, Arc::downgrade(&p));
        p
    }

    pub fn aspace(&self) -> Arc<AddressSpace> {
        self.aspace.lock().clone()
    }

    pub fn fs_ctx(&self) -> crate::fs::FsCtx {
        self.fs
            .lock()
            .clone()
            .unwrap_or_else(crate::fs::FsCtx::kernel)
    }

    /// CPU time of this process's threads so far (ns); exited threads' time is kept.
    pub fn cpu_ns(&self) -> u64 {
        self.dead_threads_ns.load(Ordering::Relaxed)
            + self
                .live_threads()
                .iter()
                .filter_map(|t| t.thread())
                .map(|th| th.run_ns.load(Ordering::Relaxed))
                .sum::<u64>()
    }

    pub fn live_threads(&self) -> Vec<Arc<Task>> {
        self.threads
            .lock()
            .iter()
            .filter_map(|w| w.upgrade())
            .collect()
    }

    pub fn parent(&self) -> Option<Arc<Process>> {
        process(self.ppid.load(Ordering::Relaxed))
    }

    pub fn pgid(&self) -> u32 {
        self.pgid.load(Ordering::Relaxed)
    }

    pub fn sid(&self) -> u32 {
        self.sid.load(Ordering::Relaxed)
    }

    /// Not yet a zombie.
    pub fn alive(&self) -> bool {
        !self.zombie.load(Ordering::Acquire)
    }

    /// What a waiting parent may be told about this child (without consuming it).
    fn wait_event(&self, o: &WaitOpts) -> Option<WaitEvent> {
        if !self.alive() {
            return o
                .exited
                .then(|| WaitEvent::Exited(self.exit.lock().unwrap_or(ExitStatus::Exited(0))));
        }
        let j = *self.job.lock();
        if o.stopped && j.stopped && j.report_stop {
            return Some(WaitEvent::Stopped(j.stop_sig));
        }
        if o.continued && j.report_cont {
            return Some(WaitEvent::Continued);
        }
        None
    }
}

/// The live members of process group `pgid`.
pub fn pgrp_members(pgid: u32) -> Vec<Arc<Process>> {
    all_processes()
        .into_iter()
        .filter(|p| p.pgid() == pgid && p.alive())
        .collect()
}

/// True if some live process belongs to session `sid` with group `pgid`.
pub fn pgrp_in_session(pgid: u32, sid: u32) -> Option<bool> {
    let m = pgrp_members(pgid);
    if m.is_empty() {
        return None;
    }
    Some(m.iter().any(|p| p.sid() == sid))
}

/// POSIX: a process group is orphaned when no member has a parent in another group of the
/// same session (nobody left to resume it). An empty group counts as orphaned.
pub fn pgrp_orphaned(pgid: u32) -> bool {
    for p in pgrp_members(pgid) {
        if let Some(par) = p.parent()
            && par.alive()
            && par.pgid() != pgid
            && par.sid() == p.sid()
        {
            return false;
        }
    }
    true
}

impl Task {
    /// The kernel thread running this task, while it exists.
    pub fn thread(&self) -> Option<ThreadRef> {
        self.thread.get().and_then(|w| w.upgrade())
    }

    fn new(tid: u32, process: Arc<Process>, sig: SigState) -> Arc<Task> {
        let t = Arc::new(Task {
            tid,
            process: process.clone(),
            sig: signal::SigCell::new(sig),
            clear_child_tid: AtomicU64::new(0),
            set_child_tid: AtomicU64::new(0),
            killed: AtomicBool::new(false),
            thread: spin::Once::new(),
        });
        process.threads.lock().push(Arc::downgrade(&t));
        TASKS.lock().insert(tid, Arc::downgrade(&t));
        t
    }
}

/// Creates a kernel thread for `task` that enters user mode with `frame`.
fn start_task(
    task: &Arc<Task>,
    frame: &TrapFrame,
    fpu: crate::arch::user::FpuState,
    fs_base: u64,
) -> KResult<()> {
    let name = task.process.name.lock().clone();
    let t = crate::sched::Thread::new_user(&name, frame, fpu).ok_or(Errno::ENOMEM)?;
    t.cr3.store(task.process.aspace().pml4(), Ordering::Release);
    t.fs_base.store(fs_base, Ordering::Relaxed);
    t.task
        .call_once(|| task.clone() as Arc<dyn sched::thread::UserTask>);
    task.thread.call_once(|| Arc::downgrade(&t));
    sched::start_user_thread(&t);
    Ok(())
}

/// Starts pid 1 from `path` with `argv`/`envp`.
pub fn spawn_init(path: &str, argv: Vec<Vec<u8>>, envp: Vec<Vec<u8>>) -> KResult<u32> {
    let pid = alloc_pid();
    let aspace = Arc::new(AddressSpace::new()?);
    let p = Process::new(pid, 0, aspace, path.rsplit('/').next().unwrap_or(path));
    *p.fs.lock() = Some(crate::fs::FsCtx::kernel());
    fd::open_console_stdio(&p)?;
    let task = Task::new(pid, p.clone(), SigState::default());
    let image = exec::Image::load(&p, path, argv, envp)?;
    let (frame, _empty) = image.install(&p)?;
    start_task(&task, &frame, crate::arch::user::FpuState::initial(), 0)?;
    Ok(pid)
}

/// Where `clone` publishes the new thread's id; zero means "not asked". All of it is done
/// before the new thread can run: a thread library (musl's pthread_create/join, glibc's
/// fork) relies on the id being in place when the thread first looks at it.
#[derive(Clone, Copy, Debug, Default)]
pub struct TidAddrs {
    /// CLONE_PARENT_SETTID: stored in the caller's memory.
    pub parent_set: u64,
    /// CLONE_CHILD_SETTID: stored in the child's memory.
    pub child_set: u64,
    /// CLONE_CHILD_CLEARTID: zeroed and futex-woken when the thread exits.
    pub child_clear: u64,
}

impl TidAddrs {
    /// Records the addresses on the new, not yet started `task` and stores its id for the
    /// parent. Like Linux, a bad address is not an error of the clone.
    fn apply(&self, task: &Task) {
        if self.parent_set != 0 {
            let _ = crate::arch::uaccess::write_val(self.parent_set, &task.tid);
        }
        task.set_child_tid.store(self.child_set, Ordering::Relaxed);
        task.clear_child_tid
            .store(self.child_clear, Ordering::Relaxed);
    }
}

/// `fork`/`vfork`/`clone` without CLONE_VM: a copy of the calling process.
/// A new process running a copy of the calling thread (`fork`), or — with `share_vm`
/// (`vfork`, `clone(CLONE_VM)` without `CLONE_THREAD`) — running in the caller's own address
/// space until it execs or exits, as on Linux: no copy of the page tables at all, and
/// whatever the child writes (posix_spawn's error report) the parent sees.
pub fn fork(
    frame: &TrapFrame,
    child_stack: u64,
    tls: Option<u64>,
    ids: TidAddrs,
    share_vm: bool,
) -> KResult<(Arc<Process>, Arc<Task>)> {
    let me = current_task().ok_or(Errno::EPERM)?;
    let parent = me.process.clone();
    let aspace = if share_vm {
        parent.aspace()
    } else {
        Arc::new(parent.aspace().fork()?)
    };
    let pid = alloc_pid();
    let child = Process::new(pid, parent.pid, aspace, &parent.name.lock().clone());
    child
        .pgid
        .store(parent.pgid.load(Ordering::Relaxed), Ordering::Relaxed);
    child
        .sid
        .store(parent.sid.load(Ordering::Relaxed), Ordering::Relaxed);
    *child.files.lock() = parent.files.lock().clone_table();
    *child.fs.lock() = parent.fs.lock().clone();
    *child.creds.lock() = *parent.creds.lock();
    *child.sig.lock() = parent.sig.lock().clone();
    *child.cmdline.lock() = parent.cmdline.lock().clone();
    *child.exe.lock() = parent.exe.lock().clone();
    parent.children.lock().push(child.clone());
    let sig = me.sig.lock().fork_child();
    let task = Task::new(pid, child.clone(), sig);
    let mut cf = *frame;
    cf.set_ret(0);
    if child_stack != 0 {
        cf.set_sp(child_stack);
    }
    let fpu = sched::current().fpu_snapshot();
    let fs_base = match tls {
        Some(t) => t,
        None => crate::arch::cpu::tls_base(),
    };
    ids.apply(&task);
    start_task(&task, &cf, fpu, fs_base)?;
    Ok((child, task))
}

/// `clone` with CLONE_VM|CLONE_THREAD: a new thread in the calling process.
pub fn clone_thread(
    frame: &TrapFrame,
    child_stack: u64,
    tls: Option<u64>,
    ids: TidAddrs,
) -> KResult<Arc<Task>> {
    let me = current_task().ok_or(Errno::EPERM)?;
    let tid = alloc_pid();
    let sig = me.sig.lock().fork_child();
    let task = Task::new(tid, me.process.clone(), sig);
    ids.apply(&task);
    let mut cf = *frame;
    cf.set_ret(0);
    if child_stack != 0 {
        cf.set_sp(child_stack);
    }
    let fpu = sched::current().fpu_snapshot();
    let fs_base = tls.unwrap_or_else(crate::arch::cpu::tls_base);
    start_task(&task, &cf, fpu, fs_base)?;
    Ok(task)
}

/// Ends the calling thread; the last thread out turns the process into a zombie.
pub fn exit_thread(status: ExitStatus) -> ! {
    if let Some(me) = current_task() {
        let addr = me.clear_child_tid.swap(0, Ordering::Relaxed);
        if addr != 0 {
            let _ = crate::arch::uaccess::write_val(addr, &0u32);
            crate::syscall::futex::wake(addr, 1);
        }
        let p = me.process.clone();
        TASKS.lock().remove(&me.tid);
        // The thread's CPU time so far, including the slice it is running now (its last).
        me.process.dead_threads_ns.fetch_add(
            sched::thread::current_cpu_ns(|th| th.run_ns.load(Ordering::Relaxed)),
            Ordering::Relaxed,
        );
        let last = {
            let mut th = p.threads.lock();
            th.retain(|w| w.upgrade().is_some_and(|t| t.tid != me.tid));
            th.is_empty()
        };
        drop(me);
        if last {
            // The last thread out decides the status, unless exit_group or a fatal signal
            // already did (a plain thread exit never sets the process's status).
            {
                let mut ex = p.exit.lock();
                if ex.is_none() {
                    *ex = Some(status);
                }
            }
            finish_process(&p);
        }
    }
    sched::exit_current()
}

/// `exit_group`: every thread of the process dies.
pub fn exit_group(status: ExitStatus) -> ! {
    if let Some(me) = current_task() {
        let p = me.process.clone();
        {
            let mut ex = p.exit.lock();
            if ex.is_none() {
                *ex = Some(status);
            }
        }
        for t in p.live_threads() {
            if t.tid != me.tid {
                t.killed.store(true, Ordering::Release);
                if let Some(th) = t.thread() {
                    sched::wake(&th);
                }
            }
        }
    }
    exit_thread(status)
}

/// Last thread gone: close files, release memory, reparent children, notify the parent.
fn finish_process(p: &Arc<Process>) {
    // Stores through shared file mappings reach their files.
    crate::fs::filemap::flush_all(&p.aspace());
    // Taken out first: closing a file can call into the rump kernel (a file on a rump
    // mount), which must not happen with the table's IrqSpinLock held (interrupts off).
    let mut files = core::mem::take(&mut *p.files.lock());
    files.close_all();
    drop(files);
    *p.fs.lock() = None;
    let status = p.exit.lock().unwrap_or(ExitStatus::Exited(0));
    if p.pid == p.sid() {
        crate::tty::session_leader_exit(p.sid());
    }
    // Groups this exit may orphan: its own, and its children's groups in the same session.
    let mut groups: Vec<u32> = alloc::vec![p.pgid()];
    for k in p.children.lock().iter() {
        if k.pgid() != p.pgid() && k.sid() == p.sid() && !groups.contains(&k.pgid()) {
            groups.push(k.pgid());
        }
    }
    let was_orphaned: Vec<bool> = groups.iter().map(|&g| pgrp_orphaned(g)).collect();
    // Orphans go to init (pid 1).
    let kids: Vec<Arc<Process>> = core::mem::take(&mut *p.children.lock());
    if !kids.is_empty() {
        let init = process(1);
        for k in kids {
            k.ppid.store(1, Ordering::Relaxed);
            if let Some(i) = &init
                && i.pid != p.pid
            {
                i.children.lock().push(k);
            }
        }
        if let Some(i) = init {
            i.child_event.wake_all();
        }
    }
    p.zombie.store(true, Ordering::Release);
    p.vfork_done.wake_all();
    // A group orphaned by this exit that has stopped members gets SIGHUP then SIGCONT.
    for (g, was) in groups.into_iter().zip(was_orphaned) {
        if !was && pgrp_orphaned(g) {
            let members = pgrp_members(g);
            if members.iter().any(|m| m.job.lock().stopped) {
                for m in &members {
                    signal::send_process(m, signal::SIGHUP);
                    signal::send_process(m, signal::SIGCONT);
                }
            }
        }
    }
    if p.pid == 1
        && let Some(f) = INIT_EXIT.get()
    {
        f(status);
    }
    if let Some(parent) = p.parent() {
        // A parent ignoring SIGCHLD (or with SA_NOCLDWAIT) leaves no zombies: the child is
        // reaped at once, and a wait4 for it ends in ECHILD once no other child remains.
        let act = parent.sig.lock().get(signal::SIGCHLD);
        if act.handler == signal::SIG_IGN || act.flags & SA_NOCLDWAIT != 0 {
            parent.children.lock().retain(|k| k.pid != p.pid);
            PROCS.lock().remove(&p.pid);
        }
        let (code, st) = match status {
            ExitStatus::Exited(c) => (signal::CLD_EXITED, i32::from(c)),
            ExitStatus::Signaled(s) => (signal::CLD_KILLED, i32::from(s)),
        };
        let uid = p.creds.lock().uid;
        signal::send_process_info(
            &parent,
            signal::SigInfo {
                signo: signal::SIGCHLD,
                code,
                pid: p.pid,
                uid,
                status: st,
                ..Default::default()
            },
        );
        parent.child_event.wake_all();
    }
}

/// `sa_flags` bit: children of this process are not turned into zombies.
const SA_NOCLDWAIT: u64 = 2;

/// `wait4`/`waitid`: the first matching child (pid > 0: that one; -1: any; 0: our group;
/// < -1: group -pid) with an event `o` asks for: exit (the zombie is reaped unless
/// `nowait`), stop or continue (each reported once unless `nowait`). None with `nohang`
/// when no child has such an event yet.
pub fn wait_child(pid: i64, o: WaitOpts) -> KResult<Option<(u32, WaitEvent)>> {
    let me = current_process().ok_or(Errno::ECHILD)?;
    let matches = |me: &Process, k: &Process| match pid {
        -1 => true,
        p if p > 0 => k.pid as i64 == p,
        0 => k.pgid() == me.pgid(),
        p => k.pgid() as i64 == -p,
    };
    loop {
        {
            let mut kids = me.children.lock();
            let mut any = false;
            let mut found = None;
            for (i, k) in kids.iter().enumerate() {
                if !matches(&me, k) {
                    continue;
                }
                any = true;
                if let Some(ev) = k.wait_event(&o) {
                    found = Some((i, ev));
                    break;
                }
            }
            if !any {
                return Err(Errno::ECHILD);
            }
            if let Some((i, ev)) = found {
                let pid = kids[i].pid;
                if !o.nowait {
                    match ev {
                        WaitEvent::Exited(_) => {
                            let k = kids.remove(i);
                            me.children_ns.fetch_add(
                                k.cpu_ns() + k.children_ns.load(Ordering::Relaxed),
                                Ordering::Relaxed,
                            );
                            PROCS.lock().remove(&k.pid);
                        }
                        WaitEvent::Stopped(_) => kids[i].job.lock().report_stop = false,
                        WaitEvent::Continued => kids[i].job.lock().report_cont = false,
                    }
                }
                return Ok(Some((pid, ev)));
            }
        }
        if o.nohang {
            return Ok(None);
        }
        let me2 = me.clone();
        let mut intr = false;
        me.child_event.wait_until(
            || {
                if signal::pending_for_current() {
                    intr = true;
                    return true;
                }
                me2.children
                    .lock()
                    .iter()
                    .any(|k| matches(&me2, k) && k.wait_event(&o).is_some())
            },
            None,
        );
        if intr {
            return Err(Errno::ERESTARTSYS);
        }
    }
}

/// Hands the core the entry points of user mode: system calls, faults on user addresses,
/// exceptions in user mode and the return-to-user work (signals, stops, exit).
pub fn register_user_hooks() {
    crate::arch::hooks::register(crate::arch::hooks::UserHooks {
        syscall: crate::syscall::dispatch,
        return_to_user: return_to_user_hook,
        user_fault: resolve_fault,
        user_exception,
    });
}

/// Page fault on a user address (from user mode or a user copy). True if resolved.
pub fn resolve_fault(addr: u64, write: bool, exec: bool) -> bool {
    let Some(t) = current_task() else {
        return false;
    };
    let a = t.process.aspace();
    a.handle_fault(addr, write, exec).is_ok()
}

/// A CPU exception in user mode: turn it into a signal.
pub fn user_exception(frame: &mut TrapFrame) {
    use crate::arch::UserTrap;
    let trap = frame.user_trap();
    let sig = match trap {
        UserTrap::Arithmetic => signal::SIGFPE,
        UserTrap::IllegalInstruction => signal::SIGILL,
        UserTrap::Breakpoint => signal::SIGTRAP,
        UserTrap::PageFault { .. } | UserTrap::Protection => signal::SIGSEGV,
        UserTrap::Alignment => signal::SIGBUS,
    };
    if let Some(t) = current_task() {
        let fault = match trap {
            UserTrap::PageFault { addr } => Some(addr),
            _ => None,
        };
        log::debug!(
            "pid {} ({}): {} at pc {:#x} addr {:#x} -> signal {}",
            t.process.pid,
            t.process.name.lock().clone(),
            frame.trap_name(),
            frame.pc(),
            fault.unwrap_or(0),
            sig
        );
        let (code, addr) = match fault {
            Some(a) if t.process.aspace().mapped(a) => (signal::SEGV_ACCERR, a),
            Some(a) => (signal::SEGV_MAPERR, a),
            None => (signal::SI_KERNEL, frame.pc()),
        };
        signal::force(&t, sig, code, addr);
    }
}

/// On every return to user mode: die if killed, park while the process is stopped, deliver
/// pending signals; a system call that asked to be restarted (ERESTARTSYS) and ran no
/// handler is restarted.
pub fn return_to_user_hook(frame: &mut TrapFrame) {
    with_current_task(|t| {
        if let Some(t) = t {
            return_to_user(t, frame);
        }
    })
}

fn return_to_user(t: &Task, frame: &mut TrapFrame) {
    if t.set_child_tid.load(Ordering::Relaxed) != 0 {
        let a = t.set_child_tid.swap(0, Ordering::Relaxed);
        let _ = crate::arch::uaccess::write_val(a, &t.tid);
    }
    loop {
        if t.killed.load(Ordering::Acquire) {
            let st = t
                .process
                .exit
                .lock()
                .unwrap_or(ExitStatus::Signaled(signal::SIGKILL as u8));
            exit_thread(st);
        }
        if t.process.stopped.load(Ordering::Acquire) && t.process.job.lock().stopped {
            let p = t.process.clone();
            p.stop_wq.wait_until(
                || !p.job.lock().stopped || t.killed.load(Ordering::Acquire),
                None,
            );
            continue;
        }
        match signal::deliver(t, frame) {
            signal::Delivered::Nothing | signal::Delivered::Handler => break,
            signal::Delivered::Ignored | signal::Delivered::Stopped => {}
        }
    }
    if frame.is_syscall() && frame.ret() == Errno::ERESTARTSYS.to_ret() {
        frame.restart_syscall();
    }
}

/// Fills `buf` with random bytes (RDSEED/RDRAND or RNDR, else a generator seeded from the
/// cycle counter).
pub fn random_bytes(buf: &mut [u8]) {
    static STATE: AtomicU64 = AtomicU64::new(0x853c_49e6_748f_ea9b);
    for chunk in buf.chunks_mut(8) {
        let v = crate::arch::cpu::hw_random().unwrap_or_else(|| {
            let mut x = STATE.load(Ordering::Relaxed) ^ crate::arch::clock_counter();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            STATE.store(x, Ordering::Relaxed);
            x
        });
        chunk.copy_from_slice(&v.to_le_bytes()[..chunk.len()]);
    }
}
