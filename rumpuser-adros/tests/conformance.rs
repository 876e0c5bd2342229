//! Hypercall conformance tests (issue 5, item 6): no NetBSD source needed.
//!
//! A fake upcall table stands in for the rump kernel. It tracks, per host thread, whether the
//! thread holds a virtual CPU and counts every unschedule/schedule, so each test can check
//! that blocking hypercalls release the vCPU exactly once around the wait and never schedule
//! twice. Run with `cargo test -p rumpuser-adros`.

use std::cell::Cell;
use std::ffi::{CString, c_char, c_int, c_void};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Once};
use std::time::{Duration, Instant};

use rumpuser_adros::ffi::*;
use rumpuser_adros::hyp::Hyperup;
use rumpuser_adros::locks::Mutex as RMutex;
use rumpuser_adros::pci::*;

const ETIMEDOUT: c_int = 60;
const EBUSY: c_int = 16;
const EINVAL: c_int = 22;
const ENOENT: c_int = 2;
const ERANGE: c_int = 34;
const ENOSYS: c_int = 78;

// ---- the fake rump kernel ----------------------------------------------------------------

thread_local! {
    static SCHEDULED: Cell<bool> = const { Cell::new(false) };
    static UNSCHED: Cell<u32> = const { Cell::new(0) };
    static SCHED: Cell<u32> = const { Cell::new(0) };
    /// For the interlock check: did this thread hold the interlock when the vCPU came back?
    static LOCKED_AT_SCHED: Cell<Option<bool>> = const { Cell::new(None) };
}

/// Contract violations seen anywhere (schedule while scheduled, wrong nlocks, ...).
static VIOLATIONS: AtomicUsize = AtomicUsize::new(0);
const NLOCKS_MAGIC: c_int = 7;

fn violation(what: &str) {
    eprintln!("contract violation: {what}");
    VIOLATIONS.fetch_add(1, Ordering::SeqCst);
}

unsafe extern "C" fn fake_backend_unschedule(
    n: c_int,
    nlocks: *mut c_int,
    _interlock: *mut c_void,
) {
    if n != 0 || !SCHEDULED.get() {
        violation("backend_unschedule without a vCPU");
    }
    SCHEDULED.set(false);
    UNSCHED.set(UNSCHED.get() + 1);
    // SAFETY: the hypercall layer passes a valid out-pointer.
    unsafe { *nlocks = NLOCKS_MAGIC };
}

unsafe extern "C" fn fake_backend_schedule(nlocks: c_int, interlock: *mut c_void) {
    if SCHEDULED.get() {
        violation("backend_schedule while holding a vCPU");
    }
    if nlocks != NLOCKS_MAGIC && nlocks != 0 {
        violation("backend_schedule with the wrong nlocks");
    }
    if !interlock.is_null() {
        // SAFETY: interlocks our layer passes are its own Mutex objects.
        let m = unsafe { &*(interlock as *const RMutex) };
        // Held *by this thread* (another thread may legitimately hold it at this moment).
        LOCKED_AT_SCHED.set(Some(
            m.is_locked() && m.owner() == Some(rumpuser_curlwp() as usize),
        ));
    }
    SCHEDULED.set(true);
    SCHED.set(SCHED.get() + 1);
}

unsafe extern "C" fn fake_schedule() {
    if SCHEDULED.get() {
        violation("hyp_schedule while scheduled");
    }
    SCHEDULED.set(true);
}

unsafe extern "C" fn fake_unschedule() {
    if !SCHEDULED.get() {
        violation("hyp_unschedule while not scheduled");
    }
    SCHEDULED.set(false);
}

static NEWLWPS: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn fake_newlwp(_pid: c_int) -> c_int {
    if !SCHEDULED.get() {
        violation("newlwp while not scheduled");
    }
    let lwp = Box::into_raw(Box::new(0u64)) as *mut c_void;
    NEWLWPS.fetch_add(1, Ordering::SeqCst);
    // SAFETY: curlwpop SET on the calling thread, as rump's newlwp does.
    unsafe { rumpuser_curlwpop(2, lwp) };
    0
}

fn setup() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let table = Hyperup {
            hyp_schedule: Some(fake_schedule),
            hyp_unschedule: Some(fake_unschedule),
            hyp_backend_unschedule: Some(fake_backend_unschedule),
            hyp_backend_schedule: Some(fake_backend_schedule),
            hyp_lwproc_switch: None,
            hyp_lwproc_release: None,
            hyp_lwproc_rfork: None,
            hyp_lwproc_newlwp: Some(fake_newlwp),
            hyp_lwproc_curlwp: None,
            hyp_syscall: None,
            hyp_lwpexit: None,
            hyp_execnotify: None,
            hyp_getpid: None,
            hyp_extra: [ptr::null_mut(); 8],
        };
        // SAFETY: a valid table for the version we implement.
        assert_eq!(unsafe { rumpuser_init(17, &table) }, 0);
    });
    assert_eq!(
        VIOLATIONS.load(Ordering::SeqCst),
        0,
        "an earlier hypercall broke the contract"
    );
}

/// Makes the calling thread look like a rump thread holding a vCPU with its own lwp.
fn enter_rump(lwp_tag: usize) {
    SCHEDULED.set(true);
    UNSCHED.set(0);
    SCHED.set(0);
    if rumpuser_adros::host().curlwp() == 0 {
        // SAFETY: LWP_SET on the calling thread with an opaque tag.
        unsafe { rumpuser_curlwpop(2, lwp_tag as *mut c_void) };
    }
}

fn counts() -> (u32, u32) {
    (UNSCHED.get(), SCHED.get())
}

fn no_violations() {
    assert_eq!(
        VIOLATIONS.load(Ordering::SeqCst),
        0,
        "schedule/unschedule contract broken"
    );
    assert!(SCHEDULED.get(), "hypercall returned without the vCPU");
}

/// Runs `f` on a new std thread that acts as a rump thread with lwp `tag`.
fn rump_thread<T: Send + 'static>(
    tag: usize,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    std::thread::spawn(move || {
        enter_rump(tag);
        f()
    })
}

struct P<T>(*mut T);
// SAFETY: the lock objects are designed to be shared between threads.
unsafe impl<T> Send for P<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for P<T> {}
impl<T> Clone for P<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for P<T> {}
impl<T> P<T> {
    fn p(self) -> *mut T {
        self.0
    }
}

fn new_mutex(flags: c_int) -> P<RumpuserMtx> {
    let mut m = ptr::null_mut();
    // SAFETY: valid out-pointer.
    unsafe { rumpuser_mutex_init(&mut m, flags) };
    P(m)
}

fn new_cv() -> P<RumpuserCv> {
    let mut c = ptr::null_mut();
    // SAFETY: valid out-pointer.
    unsafe { rumpuser_cv_init(&mut c) };
    P(c)
}

fn new_rw() -> P<RumpuserRw> {
    let mut r = ptr::null_mut();
    // SAFETY: valid out-pointer.
    unsafe { rumpuser_rw_init(&mut r) };
    P(r)
}

// ---- init and parameters ---------------------------------------------------------------------

#[test]
fn init_rejects_other_versions() {
    setup();
    let t: Hyperup = Hyperup {
        hyp_schedule: None,
        hyp_unschedule: None,
        hyp_backend_unschedule: None,
        hyp_backend_schedule: None,
        hyp_lwproc_switch: None,
        hyp_lwproc_release: None,
        hyp_lwproc_rfork: None,
        hyp_lwproc_newlwp: None,
        hyp_lwproc_curlwp: None,
        hyp_syscall: None,
        hyp_lwpexit: None,
        hyp_execnotify: None,
        hyp_getpid: None,
        hyp_extra: [ptr::null_mut(); 8],
    };
    rumpuser_adros::StdHost::capture_console(&rumpuser_adros::std_host::STD_HOST, true);
    // SAFETY: valid table pointer.
    assert_ne!(unsafe { rumpuser_init(16, &t) }, 0);
    // SAFETY: null table is rejected.
    assert_eq!(unsafe { rumpuser_init(17, ptr::null()) }, EINVAL);
    rumpuser_adros::StdHost::capture_console(&rumpuser_adros::std_host::STD_HOST, false);
}

fn getparam(name: &str, len: usize) -> (c_int, String) {
    let n = CString::new(name).unwrap();
    let mut buf = vec![0u8; len];
    // SAFETY: valid name and buffer.
    let rv = unsafe { rumpuser_getparam(n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|&b| b == 0).unwrap_or(0);
    (rv, String::from_utf8_lossy(&buf[..end]).into_owned())
}

#[test]
fn getparam_mandatory_keys() {
    setup();
    let (rv, ncpu) = getparam("_RUMPUSER_NCPU", 32);
    assert_eq!(rv, 0);
    assert!(ncpu.parse::<u32>().unwrap() >= 1, "NCPU {ncpu:?}");
    let (rv, host) = getparam("_RUMPUSER_HOSTNAME", 256);
    assert_eq!(rv, 0);
    assert!(host.starts_with("rump-"), "hostname {host:?}");
    assert_eq!(getparam("_RUMPUSER_NOSUCH", 32).0, EINVAL);
    assert_eq!(getparam("RUMP_ADROS_TEST_UNSET_PARAM", 32).0, ENOENT);
    assert_eq!(getparam("_RUMPUSER_HOSTNAME", 3).0, ERANGE);
    rumpuser_adros::std_host::STD_HOST.set_param("RUMP_ADROS_TEST_PARAM", "42");
    assert_eq!(getparam("RUMP_ADROS_TEST_PARAM", 32), (0, "42".into()));
}

// ---- memory, random, console, errno ----------------------------------------------------------

#[test]
fn malloc_alignment() {
    setup();
    for align in [0, 8, 16, 64, 512, 4096] {
        for len in [1usize, 100, 4096, 70000] {
            let mut p = ptr::null_mut();
            // SAFETY: valid out-pointer.
            assert_eq!(unsafe { rumpuser_malloc(len, align, &mut p) }, 0);
            assert!(!p.is_null());
            assert_eq!(p as usize % (align.max(1) as usize), 0);
            // SAFETY: we own len bytes at p.
            unsafe {
                ptr::write_bytes(p.cast::<u8>(), 0xa5, len);
                rumpuser_free(p, len);
            }
        }
    }
    let mut p = ptr::null_mut();
    // SAFETY: a bad alignment is rejected before anything is allocated.
    assert_eq!(unsafe { rumpuser_malloc(16, 24, &mut p) }, EINVAL);
}

#[test]
fn getrandom_fills() {
    setup();
    let mut buf = [0u8; 64];
    let mut n = 0usize;
    assert_eq!(
        // SAFETY: valid buffer and out-pointer.
        unsafe { rumpuser_getrandom(buf.as_mut_ptr().cast(), buf.len(), 0x2, &mut n) },
        0
    );
    assert_eq!(n, 64);
    assert!(buf.iter().any(|&b| b != 0));
    assert_eq!(
        // SAFETY: invalid flags are rejected.
        unsafe { rumpuser_getrandom(buf.as_mut_ptr().cast(), 4, 0x80, &mut n) },
        EINVAL
    );
}

unsafe extern "C" {
    #[link_name = "rumpuser_dprintf"]
    fn dprintf_variadic(fmt: *const c_char, ...);
}

#[test]
fn dprintf_formats_register_and_stack_arguments() {
    setup();
    let host = &rumpuser_adros::std_host::STD_HOST;
    host.capture_console(true);
    let s = CString::new("str").unwrap();
    let fmt = CString::new("%d %s %x %lu %c %5d|%-3d| %p %lld!\n").unwrap();
    // SAFETY: arguments match the format.
    unsafe {
        dprintf_variadic(
            fmt.as_ptr(),
            -3 as c_int,
            s.as_ptr(),
            255u32,
            1u64 << 40,
            b'q' as c_int,
            42 as c_int,
            7 as c_int,
            0x1000usize as *const c_void,
            -9i64,
        )
    };
    let out = String::from_utf8(host.capture_console(false)).unwrap();
    assert_eq!(out, "-3 str ff 1099511627776 q    42|7  | 0x1000 -9!\n");
}

#[test]
fn seterrno_sets_errno() {
    setup();
    // SAFETY: plain call.
    unsafe { rumpuser_seterrno(ETIMEDOUT) };
    assert_eq!(
        std::io::Error::last_os_error().raw_os_error(),
        Some(ETIMEDOUT)
    );
}

#[test]
fn pci_family_without_pci_host() {
    setup();
    let mut v = 0u32;
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { rumpcomp_pci_confread(0, 3, 0, 0, &mut v) }, ENOSYS);
    assert_eq!(v, 0xffff_ffff);
    assert_eq!(
        // SAFETY: out of range device number is rejected before the host is asked.
        unsafe { rumpcomp_pci_confread(0, 32, 0, 0, &mut v) },
        EINVAL
    );
    // SAFETY: null handler is rejected.
    assert!(unsafe { rumpcomp_pci_irq_establish(0, None, ptr::null_mut()) }.is_null());
    assert!(rumpuser_adros::ffi::link_all() >= 60);
}

// ---- threads and curlwp ------------------------------------------------------------------------

static EXITED: AtomicBool = AtomicBool::new(false);
static RETURNED: AtomicBool = AtomicBool::new(false);

extern "C-unwind" fn exits_via_thread_exit(arg: *mut c_void) -> *mut c_void {
    assert_eq!(arg as usize, 0x1234);
    EXITED.store(true, Ordering::SeqCst);
    // SAFETY: we are a thread made by rumpuser_thread_create; nothing with a destructor lives.
    unsafe { rumpuser_thread_exit() }
}

extern "C-unwind" fn returns(_arg: *mut c_void) -> *mut c_void {
    RETURNED.store(true, Ordering::SeqCst);
    ptr::null_mut()
}

#[test]
fn thread_create_join_exit() {
    setup();
    enter_rump(0x100);
    let name = CString::new("conformance").unwrap();
    let mut cookie = ptr::null_mut();
    // SAFETY: valid function, name and out-pointer.
    let rv = unsafe {
        rumpuser_thread_create(
            Some(exits_via_thread_exit),
            0x1234 as *mut c_void,
            name.as_ptr(),
            1,
            0,
            -1,
            &mut cookie,
        )
    };
    assert_eq!(rv, 0);
    assert!(!cookie.is_null());
    // SAFETY: a joinable cookie, joined once.
    assert_eq!(unsafe { rumpuser_thread_join(cookie) }, 0);
    assert!(EXITED.load(Ordering::SeqCst));
    assert_eq!(
        counts(),
        (1, 1),
        "join must release the vCPU around the wait"
    );
    // Detached thread that simply returns.
    assert_eq!(
        // SAFETY: as above, not joinable.
        unsafe {
            rumpuser_thread_create(
                Some(returns),
                ptr::null_mut(),
                name.as_ptr(),
                0,
                0,
                -1,
                ptr::null_mut(),
            )
        },
        0
    );
    let t0 = Instant::now();
    while !RETURNED.load(Ordering::SeqCst) {
        assert!(t0.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(1));
    }
    no_violations();
}

#[test]
fn curlwp_is_per_thread() {
    setup();
    let h = rumpuser_adros::host();
    let t = std::thread::spawn(move || {
        assert!(rumpuser_curlwp().is_null(), "a new thread has no lwp");
        // SAFETY: opaque lwp values.
        unsafe { rumpuser_curlwpop(0, 0xb0 as *mut c_void) };
        // SAFETY: as above.
        unsafe { rumpuser_curlwpop(2, 0xb0 as *mut c_void) };
        assert_eq!(rumpuser_curlwp() as usize, 0xb0);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(rumpuser_curlwp() as usize, 0xb0);
        // SAFETY: as above.
        unsafe { rumpuser_curlwpop(3, 0xb0 as *mut c_void) };
        assert!(rumpuser_curlwp().is_null());
        // SAFETY: as above.
        unsafe { rumpuser_curlwpop(1, 0xb0 as *mut c_void) };
    });
    // SAFETY: as above.
    unsafe { rumpuser_curlwpop(2, 0xa0 as *mut c_void) };
    std::thread::sleep(Duration::from_millis(10));
    assert_eq!(rumpuser_curlwp() as usize, 0xa0);
    t.join().unwrap();
    assert_eq!(h.curlwp(), 0xa0);
    // SAFETY: as above.
    unsafe { rumpuser_curlwpop(3, 0xa0 as *mut c_void) };
    assert!(rumpuser_curlwp().is_null());
}

// ---- mutexes ---------------------------------------------------------------------------------

#[test]
fn kmutex_owner_and_tryenter() {
    setup();
    enter_rump(0x200);
    let m = new_mutex(0x2);
    // SAFETY: m is a live mutex from rumpuser_mutex_init.
    unsafe {
        rumpuser_mutex_enter(m.p());
        let mut owner = ptr::null_mut();
        rumpuser_mutex_owner(m.p(), &mut owner);
        assert_eq!(owner as usize, 0x200);
    }
    assert_eq!(
        counts(),
        (0, 0),
        "uncontended enter must not release the vCPU"
    );
    let other = rump_thread(0x201, move || {
        // SAFETY: live mutex.
        unsafe {
            assert_eq!(rumpuser_mutex_tryenter(m.p()), EBUSY);
            // Blocks until the main thread exits: must release its vCPU around the wait.
            rumpuser_mutex_enter(m.p());
            let mut owner = ptr::null_mut();
            rumpuser_mutex_owner(m.p(), &mut owner);
            assert_eq!(owner as usize, 0x201);
            rumpuser_mutex_exit(m.p());
        }
        no_violations();
        counts()
    });
    std::thread::sleep(Duration::from_millis(50));
    // SAFETY: live mutex, held by us.
    unsafe { rumpuser_mutex_exit(m.p()) };
    assert_eq!(other.join().unwrap(), (1, 1));
    // SAFETY: live mutex.
    unsafe {
        assert_eq!(rumpuser_mutex_tryenter(m.p()), 0);
        let mut owner = ptr::null_mut();
        rumpuser_mutex_owner(m.p(), &mut owner);
        assert_eq!(owner as usize, 0x200);
        rumpuser_mutex_exit(m.p());
        rumpuser_mutex_owner(m.p(), &mut owner);
        assert!(owner.is_null());
        rumpuser_mutex_destroy(m.p());
    }
    no_violations();
}

#[test]
fn spin_mutex_never_releases_the_vcpu() {
    setup();
    enter_rump(0x300);
    let m = new_mutex(0x1 | 0x2);
    // SAFETY: live mutex.
    unsafe { rumpuser_mutex_enter(m.p()) };
    let other = rump_thread(0x301, move || {
        // SAFETY: live mutex; contended, but a spin mutex keeps the vCPU.
        unsafe {
            rumpuser_mutex_enter(m.p());
            rumpuser_mutex_exit(m.p());
            rumpuser_mutex_enter_nowrap(m.p());
            rumpuser_mutex_exit(m.p());
        }
        counts()
    });
    std::thread::sleep(Duration::from_millis(30));
    // SAFETY: held by us.
    unsafe { rumpuser_mutex_exit(m.p()) };
    assert_eq!(other.join().unwrap(), (0, 0));
    // SAFETY: live mutex, destroyed once.
    unsafe { rumpuser_mutex_destroy(m.p()) };
    no_violations();
}

/// Spin mutexes are served in arrival order. NetBSD's `knote_detach` drops and retakes
/// `kq_lock` in a loop until another thread, which first needs `kq_lock`, clears a flag; a
/// lock that lets the releasing thread take it straight back (a barging lock whose waiters
/// park) starves that thread forever — a rump socket close hung the kernel that way. Here
/// the holder releases and at once re-enters while a second thread has been waiting: the
/// waiter must get the mutex first. (The barging lock fails this: its woken waiter is still
/// waking up when the holder's re-enter succeeds.)
#[test]
fn spin_mutex_serves_a_waiter_before_the_holder_retakes_it() {
    setup();
    enter_rump(0x37f);
    let m = new_mutex(0x1 | 0x2);
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let waiting = Arc::new(AtomicBool::new(false));
    // SAFETY: live mutex.
    unsafe { rumpuser_mutex_enter_nowrap(m.p()) };
    let (o, w) = (order.clone(), waiting.clone());
    let waiter = rump_thread(0x380, move || {
        w.store(true, Ordering::SeqCst);
        // SAFETY: live mutex; held by the main thread until it lets go.
        unsafe { rumpuser_mutex_enter_nowrap(m.p()) };
        o.lock().unwrap().push("waiter");
        // SAFETY: held by us.
        unsafe { rumpuser_mutex_exit(m.p()) };
    });
    while !waiting.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    // Long enough for the waiter to be inside the enter (spinning or parked).
    std::thread::sleep(Duration::from_millis(50));
    for _ in 0..3 {
        // SAFETY: held by us; then re-entered at once, as knote_detach's loop does.
        unsafe {
            rumpuser_mutex_exit(m.p());
            rumpuser_mutex_enter_nowrap(m.p());
        }
        order.lock().unwrap().push("holder");
    }
    // SAFETY: held by us.
    unsafe { rumpuser_mutex_exit(m.p()) };
    waiter.join().unwrap();
    assert_eq!(
        order.lock().unwrap().first(),
        Some(&"waiter"),
        "the holder re-took the spin mutex ahead of a waiting thread: {:?}",
        order.lock().unwrap()
    );
    // SAFETY: live mutex, destroyed once.
    unsafe { rumpuser_mutex_destroy(m.p()) };
    no_violations();
}

#[test]
fn spin_mutex_waiters_sleep_and_every_one_is_served() {
    setup();
    enter_rump(0x47f);
    let m = new_mutex(0x1 | 0x2);
    let counter = Arc::new(AtomicUsize::new(0));
    let inside = Arc::new(AtomicBool::new(false));
    let before = rumpuser_adros::locks::contention();
    let threads: Vec<_> = (0..6)
        .map(|i| {
            let (counter, inside) = (counter.clone(), inside.clone());
            rump_thread(0x480 + i, move || {
                for k in 0..300 {
                    // SAFETY: live mutex.
                    unsafe { rumpuser_mutex_enter_nowrap(m.p()) };
                    assert!(!inside.swap(true, Ordering::SeqCst), "two holders");
                    counter.fetch_add(1, Ordering::Relaxed);
                    if k % 10 == 0 {
                        // A holder that is slow (far past the spin budget): the waiters
                        // must go to sleep and be woken in turn, none lost.
                        std::thread::sleep(Duration::from_micros(300));
                    }
                    inside.store(false, Ordering::SeqCst);
                    // SAFETY: held by us.
                    unsafe { rumpuser_mutex_exit(m.p()) };
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(counter.load(Ordering::Relaxed), 6 * 300);
    let after = rumpuser_adros::locks::contention();
    assert!(
        after.spin_sleeps > before.spin_sleeps,
        "no waiter stopped spinning behind a holder that slept 300 µs"
    );
    assert!(after.spin_waits >= after.spin_sleeps);
    // SAFETY: live mutex, destroyed once.
    unsafe { rumpuser_mutex_destroy(m.p()) };
    no_violations();
}

#[test]
fn mutex_excludes_under_contention() {
    setup();
    let m = new_mutex(0x2);
    let counter = Arc::new(AtomicUsize::new(0));
    let inside = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let (counter, inside) = (counter.clone(), inside.clone());
            rump_thread(0x400 + i, move || {
                for _ in 0..2000 {
                    // SAFETY: live mutex.
                    unsafe { rumpuser_mutex_enter(m.p()) };
                    assert!(!inside.swap(true, Ordering::SeqCst), "two holders");
                    counter.fetch_add(1, Ordering::Relaxed);
                    inside.store(false, Ordering::SeqCst);
                    // SAFETY: held by us.
                    unsafe { rumpuser_mutex_exit(m.p()) };
                }
                let (u, s) = counts();
                assert_eq!(u, s);
                no_violations();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(counter.load(Ordering::Relaxed), 16000);
}

// ---- rwlocks ---------------------------------------------------------------------------------

#[test]
fn rwlock_upgrade_downgrade_held() {
    setup();
    enter_rump(0x500);
    let rw = new_rw();
    let held = |mode: c_int| {
        let mut v = -1;
        // SAFETY: live rwlock, valid out-pointer.
        unsafe { rumpuser_rw_held(mode, rw.p(), &mut v) };
        v
    };
    // SAFETY: rw is a live rwlock.
    unsafe {
        rumpuser_rw_enter(0, rw.p());
        assert_eq!(rumpuser_rw_tryenter(0, rw.p()), 0, "readers share");
        assert_eq!(held(0), 2);
        assert_eq!(rumpuser_rw_tryenter(1, rw.p()), EBUSY);
        assert_eq!(
            rumpuser_rw_tryupgrade(rw.p()),
            EBUSY,
            "two readers: no upgrade"
        );
        rumpuser_rw_exit(rw.p());
        assert_eq!(rumpuser_rw_tryupgrade(rw.p()), 0, "sole reader upgrades");
        assert_eq!(held(1), 1);
        assert_eq!(held(0), 0);
    }
    let other = rump_thread(0x501, move || {
        let mut v = -1;
        // SAFETY: live rwlock.
        unsafe {
            rumpuser_rw_held(1, rw.p(), &mut v);
            assert_eq!(v, 0, "held(WRITER) is per lwp");
            assert_eq!(rumpuser_rw_tryenter(0, rw.p()), EBUSY);
        }
    });
    other.join().unwrap();
    // SAFETY: live rwlock, we are the writer.
    unsafe { rumpuser_rw_downgrade(rw.p()) };
    assert_eq!(held(1), 0);
    assert_eq!(held(0), 1);
    let reader = rump_thread(0x502, move || {
        // SAFETY: live rwlock.
        unsafe {
            assert_eq!(
                rumpuser_rw_tryenter(1, rw.p()),
                EBUSY,
                "a reader still holds it"
            );
            rumpuser_rw_enter(0, rw.p());
            rumpuser_rw_exit(rw.p());
        }
        counts()
    });
    assert_eq!(
        reader.join().unwrap(),
        (0, 0),
        "uncontended read enter keeps the vCPU"
    );
    // A writer blocked behind our read lock releases its vCPU while waiting.
    let writer = rump_thread(0x503, move || {
        // SAFETY: live rwlock.
        unsafe {
            rumpuser_rw_enter(1, rw.p());
            let mut v = -1;
            rumpuser_rw_held(1, rw.p(), &mut v);
            assert_eq!(v, 1);
            rumpuser_rw_exit(rw.p());
        }
        no_violations();
        counts()
    });
    std::thread::sleep(Duration::from_millis(30));
    // SAFETY: we hold a read lock.
    unsafe { rumpuser_rw_exit(rw.p()) };
    assert_eq!(writer.join().unwrap(), (1, 1));
    // SAFETY: unheld, destroyed once.
    unsafe { rumpuser_rw_destroy(rw.p()) };
    no_violations();
}

// ---- condition variables ---------------------------------------------------------------------

#[test]
fn cv_wait_signal_and_vcpu_order() {
    setup();
    for flags in [0x2, 0x1 | 0x2] {
        enter_rump(0x600);
        let m = new_mutex(flags);
        let cv = new_cv();
        let ready = Arc::new(AtomicBool::new(false));
        let r2 = ready.clone();
        let waker = rump_thread(0x601, move || {
            // SAFETY: live objects.
            unsafe {
                loop {
                    rumpuser_mutex_enter(m.p());
                    let mut n = 0;
                    rumpuser_cv_has_waiters(cv.p(), &mut n);
                    if n == 1 {
                        r2.store(true, Ordering::SeqCst);
                        rumpuser_cv_signal(cv.p());
                        rumpuser_mutex_exit(m.p());
                        break;
                    }
                    rumpuser_mutex_exit(m.p());
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        });
        LOCKED_AT_SCHED.set(None);
        // SAFETY: live objects; we hold m around the wait.
        unsafe {
            rumpuser_mutex_enter(m.p());
            while !ready.load(Ordering::SeqCst) {
                rumpuser_cv_wait(cv.p(), m.p());
            }
            let mut owner = ptr::null_mut();
            rumpuser_mutex_owner(m.p(), &mut owner);
            assert_eq!(owner as usize, 0x600, "the waiter owns the mutex again");
            rumpuser_mutex_exit(m.p());
        }
        waker.join().unwrap();
        let (u, s) = counts();
        assert!(
            u >= 1 && u == s,
            "cv_wait released/retook the vCPU: {u}/{s}"
        );
        // cv_reschedule: SPIN|KMUTEX takes the vCPU before relocking, KMUTEX after.
        let expect_locked = flags == 0x2;
        assert_eq!(
            LOCKED_AT_SCHED.get(),
            Some(expect_locked),
            "flags {flags:#x}"
        );
        // SAFETY: unused now, destroyed once.
        unsafe {
            rumpuser_cv_destroy(cv.p());
            rumpuser_mutex_destroy(m.p());
        }
        no_violations();
    }
}

#[test]
fn cv_timedwait_times_out_relative() {
    setup();
    enter_rump(0x700);
    let m = new_mutex(0x2);
    let cv = new_cv();
    // SAFETY: live objects; m held around the wait.
    unsafe {
        rumpuser_mutex_enter(m.p());
        let t0 = Instant::now();
        let rv = rumpuser_cv_timedwait(cv.p(), m.p(), 0, 50_000_000);
        let el = t0.elapsed();
        assert_eq!(rv, ETIMEDOUT, "relative timeout → ETIMEDOUT (NetBSD 60)");
        assert!(el >= Duration::from_millis(50), "woke early: {el:?}");
        assert!(el < Duration::from_secs(5), "far too late: {el:?}");
        let mut owner = ptr::null_mut();
        rumpuser_mutex_owner(m.p(), &mut owner);
        assert_eq!(owner as usize, 0x700);
        let mut n = -1;
        rumpuser_cv_has_waiters(cv.p(), &mut n);
        assert_eq!(n, 0);
        rumpuser_mutex_exit(m.p());
    }
    assert_eq!(counts(), (1, 1));
    // A signal before the timeout returns 0.
    let sig = rump_thread(0x701, move || {
        std::thread::sleep(Duration::from_millis(20));
        // SAFETY: live objects.
        unsafe {
            rumpuser_mutex_enter(m.p());
            rumpuser_cv_signal(cv.p());
            rumpuser_mutex_exit(m.p());
        }
    });
    // SAFETY: live objects.
    unsafe {
        rumpuser_mutex_enter(m.p());
        assert_eq!(rumpuser_cv_timedwait(cv.p(), m.p(), 10, 0), 0);
        rumpuser_mutex_exit(m.p());
    }
    sig.join().unwrap();
    no_violations();
}

#[test]
fn cv_broadcast_wakes_all() {
    setup();
    let m = new_mutex(0x2);
    let cv = new_cv();
    let go = Arc::new(AtomicBool::new(false));
    let woke = Arc::new(AtomicUsize::new(0));
    let waiters: Vec<_> = (0..6)
        .map(|i| {
            let (go, woke) = (go.clone(), woke.clone());
            rump_thread(0x800 + i, move || {
                // SAFETY: live objects.
                unsafe {
                    rumpuser_mutex_enter(m.p());
                    while !go.load(Ordering::SeqCst) {
                        rumpuser_cv_wait(cv.p(), m.p());
                    }
                    rumpuser_mutex_exit(m.p());
                }
                woke.fetch_add(1, Ordering::SeqCst);
                no_violations();
            })
        })
        .collect();
    enter_rump(0x8ff);
    let t0 = Instant::now();
    loop {
        let mut n = 0;
        // SAFETY: live objects.
        unsafe {
            rumpuser_mutex_enter(m.p());
            rumpuser_cv_has_waiters(cv.p(), &mut n);
            rumpuser_mutex_exit(m.p());
        }
        if n == 6 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "waiters never arrived"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    // SAFETY: live objects.
    unsafe {
        rumpuser_mutex_enter(m.p());
        go.store(true, Ordering::SeqCst);
        rumpuser_cv_broadcast(cv.p());
        rumpuser_mutex_exit(m.p());
    }
    for w in waiters {
        w.join().unwrap();
    }
    assert_eq!(woke.load(Ordering::SeqCst), 6);
}

// ---- clocks ----------------------------------------------------------------------------------

fn now_mono() -> (i64, i64) {
    let (mut s, mut ns) = (0i64, 0 as std::ffi::c_long);
    // SAFETY: valid out-pointers.
    assert_eq!(unsafe { rumpuser_clock_gettime(1, &mut s, &mut ns) }, 0);
    (s, ns)
}

#[test]
fn absmono_sleep_is_never_early() {
    setup();
    enter_rump(0x900);
    let mut worst = Duration::ZERO;
    for i in 0..20 {
        let (s, ns) = now_mono();
        let target = s as i128 * 1_000_000_000 + ns as i128 + 10_000_000 + i * 100_000;
        // SAFETY: plain call.
        let rv = unsafe {
            rumpuser_clock_sleep(
                1,
                (target / 1_000_000_000) as i64,
                (target % 1_000_000_000) as std::ffi::c_long,
            )
        };
        assert_eq!(rv, 0);
        let (s2, ns2) = now_mono();
        let after = s2 as i128 * 1_000_000_000 + ns2 as i128;
        assert!(
            after >= target,
            "ABSMONO sleep woke {} ns early",
            target - after
        );
        worst = worst.max(Duration::from_nanos((after - target) as u64));
    }
    assert!(
        worst < Duration::from_millis(500),
        "ABSMONO sleep overshoot {worst:?}"
    );
    assert_eq!(counts(), (20, 20), "every sleep releases the vCPU");
    // RELWALL is a duration.
    let t0 = Instant::now();
    // SAFETY: plain call.
    assert_eq!(unsafe { rumpuser_clock_sleep(0, 0, 20_000_000) }, 0);
    assert!(t0.elapsed() >= Duration::from_millis(20));
    let (mut ws, mut wns) = (0i64, 0 as std::ffi::c_long);
    // SAFETY: valid out-pointers.
    assert_eq!(unsafe { rumpuser_clock_gettime(0, &mut ws, &mut wns) }, 0);
    assert!(ws > 1_600_000_000, "RELWALL is wall-clock time");
    no_violations();
}

// ---- files and block I/O ---------------------------------------------------------------------

fn temp_image(len: usize) -> (std::path::PathBuf, Vec<u8>) {
    static N: AtomicUsize = AtomicUsize::new(0);
    let p = std::env::temp_dir().join(format!(
        "rumpuser-adros-{}-{}.img",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 512) as u8).collect();
    std::fs::write(&p, &data).unwrap();
    (p, data)
}

struct Done {
    n: usize,
    error: c_int,
    scheduled: bool,
    lwp: usize,
    thread: std::thread::ThreadId,
}

type DoneSlot = std::sync::Mutex<Option<Done>>;

unsafe extern "C" fn biodone(arg: *mut c_void, n: usize, error: c_int) {
    // SAFETY: arg is the &DoneSlot the test passed and keeps alive until completion.
    let slot = unsafe { &*(arg as *const DoneSlot) };
    *slot.lock().unwrap() = Some(Done {
        n,
        error,
        scheduled: SCHEDULED.get(),
        lwp: rumpuser_curlwp() as usize,
        thread: std::thread::current().id(),
    });
}

fn wait_done(slot: &DoneSlot) -> Done {
    let t0 = Instant::now();
    loop {
        if let Some(d) = slot.lock().unwrap().take() {
            return d;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "bio never completed"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn bio_completes_in_a_rump_context() {
    setup();
    enter_rump(0xa00);
    let (path, data) = temp_image(64 * 1024);
    let cpath = CString::new(path.to_str().unwrap()).unwrap();
    let mut fd = -1;
    let (mut size, mut ft) = (0u64, -1);
    // SAFETY: valid path and out-pointers.
    unsafe {
        assert_eq!(rumpuser_getfileinfo(cpath.as_ptr(), &mut size, &mut ft), 0);
        assert_eq!((size, ft), (64 * 1024, 2));
        let before = counts();
        assert_eq!(rumpuser_open(cpath.as_ptr(), 0x2 | 0x10, &mut fd), 0);
        assert_eq!(counts().0 - before.0, 1, "open releases the vCPU");
    }
    assert!(fd >= 0);
    let slot: DoneSlot = std::sync::Mutex::new(None);
    let arg = &slot as *const DoneSlot as *mut c_void;
    let mut buf = vec![0u8; 4096];
    let before = counts();
    // SAFETY: buf and slot outlive the completion (we wait for it).
    unsafe {
        rumpuser_bio(
            fd,
            0x1,
            buf.as_mut_ptr().cast(),
            4096,
            8192,
            Some(biodone),
            arg,
        )
    };
    assert!(
        counts().0 - before.0 <= 1,
        "bio releases the vCPU only to start its threads"
    );
    let d = wait_done(&slot);
    assert_eq!((d.n, d.error), (4096, 0));
    assert_eq!(buf, data[8192..8192 + 4096]);
    // Once the threads run, queueing never blocks, so the caller keeps its vCPU.
    let before = counts();
    // SAFETY: as above.
    unsafe {
        rumpuser_bio(
            fd,
            0x1,
            buf.as_mut_ptr().cast(),
            4096,
            4096,
            Some(biodone),
            arg,
        )
    };
    assert_eq!(counts().0 - before.0, 0, "queueing a bio keeps the vCPU");
    let d = wait_done(&slot);
    assert_eq!((d.n, d.error), (4096, 0));
    assert_eq!(buf, data[4096..8192]);
    assert!(d.scheduled, "biodone must run holding a vCPU");
    assert_ne!(d.lwp, 0, "biodone must run on a thread with its own lwp");
    assert_ne!(d.thread, std::thread::current().id(), "bio is asynchronous");
    assert!(NEWLWPS.load(Ordering::SeqCst) >= 1);
    // Write (sync), then read it back through iovread.
    let wbuf = vec![0x5au8; 1024];
    // SAFETY: as above.
    unsafe {
        rumpuser_bio(
            fd,
            0x2 | 0x4,
            wbuf.as_ptr() as *mut c_void,
            1024,
            512,
            Some(biodone),
            arg,
        )
    };
    let d = wait_done(&slot);
    assert_eq!((d.n, d.error, d.scheduled), (1024, 0, true));
    let mut a = [0u8; 100];
    let mut b = [0u8; 1000];
    let iov = [
        RumpuserIovec {
            iov_base: a.as_mut_ptr().cast(),
            iov_len: 100,
        },
        RumpuserIovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: 1000,
        },
    ];
    let mut got = 0usize;
    let before = counts();
    assert_eq!(
        // SAFETY: iovecs describe our buffers.
        unsafe { rumpuser_iovread(fd, iov.as_ptr() as *mut _, 2, 500, &mut got) },
        0
    );
    assert_eq!(counts().0 - before.0, 1, "iovread releases the vCPU once");
    assert_eq!(got, 1100);
    assert_eq!(&a[..12], &data[500..512]);
    assert!(a[12..].iter().all(|&x| x == 0x5a));
    assert!(b[..936].iter().all(|&x| x == 0x5a));
    assert_eq!(&b[936..], &data[1536..1600]);
    // iovwrite at an offset, syncfd.
    let w = [1u8, 2, 3];
    let wiov = [RumpuserIovec {
        iov_base: w.as_ptr() as *mut c_void,
        iov_len: 3,
    }];
    // SAFETY: as above.
    unsafe {
        let before = counts();
        assert_eq!(rumpuser_iovwrite(fd, wiov.as_ptr(), 1, 0, &mut got), 0);
        assert_eq!(got, 3);
        assert_eq!(rumpuser_syncfd(fd, 0x2, 0, 0), 0);
        let after = counts();
        assert_eq!(
            (after.0 - before.0, after.1 - before.1),
            (2, 2),
            "iovwrite and syncfd release the vCPU"
        );
        assert_eq!(rumpuser_syncfd(fd, 0, 0, 0), EINVAL);
    }
    // A bad request still completes, with EINVAL, in a rump context.
    // SAFETY: null data is rejected by the shim and never touched.
    unsafe { rumpuser_bio(fd, 0x1, ptr::null_mut(), 512, 0, Some(biodone), arg) };
    let d = wait_done(&slot);
    assert_eq!((d.n, d.error, d.scheduled), (0, EINVAL, true));
    // SAFETY: fd from rumpuser_open.
    unsafe {
        assert_eq!(rumpuser_close(fd), 0);
        assert_eq!(rumpuser_close(fd), 9, "EBADF after close");
    }
    let on_disk = std::fs::read(&path).unwrap();
    assert_eq!(&on_disk[..3], &[1, 2, 3]);
    assert!(on_disk[512..1536].iter().all(|&x| x == 0x5a));
    std::fs::remove_file(&path).unwrap();
    let mut fd2 = -1;
    // SAFETY: valid path.
    unsafe {
        assert_eq!(rumpuser_open(cpath.as_ptr(), 0x0, &mut fd2), ENOENT);
        assert_eq!(rumpuser_open(cpath.as_ptr(), 0x3, &mut fd2), EINVAL);
    }
    no_violations();
}

unsafe extern "C" fn no_done(_arg: *mut c_void, _n: usize, _error: c_int) {}

/// Requests that continue each other on the disk and in memory are done as one I/O: each still
/// gets its own byte count (a short read at the end of the file is shared out in order), and a
/// failing joint I/O is redone request by request so each gets its own error.
#[test]
fn bio_joined_requests_keep_their_own_results() {
    setup();
    enter_rump(0xc00);
    let (path, data) = temp_image(64 * 1024);
    let cpath = CString::new(path.to_str().unwrap()).unwrap();
    let mut fd = -1;
    assert_eq!(
        // SAFETY: valid path.
        unsafe { rumpuser_open(cpath.as_ptr(), 0x2 | 0x10, &mut fd) },
        0
    );
    let mut buf = vec![0u8; 16 * 1024];
    let req = |i: usize, off: u64, buf: &mut Vec<u8>| BioReq {
        fd,
        write: false,
        sync: false,
        data: buf.as_mut_ptr().wrapping_add(i * 4096),
        len: 4096,
        off,
        done: no_done,
        arg: ptr::null_mut(),
    };
    let run: Vec<BioReq> = (0..4)
        .map(|i| req(i, (58 * 1024 + i * 4096) as u64, &mut buf))
        .collect();
    assert!(run.windows(2).all(|w| w[0].continued_by(&w[1])));
    // 16 KiB from 6 KiB before the end of the file: 4096, 2048, 0, 0.
    let got: Vec<(usize, c_int)> = perform_run(&run);
    assert_eq!(got, vec![(4096, 0), (2048, 0), (0, 0), (0, 0)]);
    assert_eq!(buf[..6 * 1024], data[58 * 1024..]);
    // Not continued: a gap on the disk, or in memory.
    let a = req(0, 0, &mut buf);
    assert!(!a.continued_by(&req(1, 8192, &mut buf)), "gap on the disk");
    assert!(
        !a.followed_on_disk_by(&req(1, 8192, &mut buf)),
        "gap on the disk"
    );
    assert!(!a.continued_by(&req(2, 4096, &mut buf)), "gap in memory");
    assert!(
        a.followed_on_disk_by(&req(2, 4096, &mut buf)),
        "gap in memory only"
    );
    // Following on the disk but with buffers apart: done as one vectored I/O where the host
    // has it (the std host: preadv/pwritev2), else through a host buffer.
    let (mut x, mut y) = (vec![0u8; 4096], vec![0u8; 8192]);
    let split = |b: &mut Vec<u8>, off: u64, write: bool| BioReq {
        data: b.as_mut_ptr(),
        len: b.len(),
        off,
        write,
        ..req(0, 0, &mut Vec::new())
    };
    let run = [split(&mut x, 4096, false), split(&mut y, 8192, false)];
    assert_eq!(perform_run(&run), vec![(4096, 0), (8192, 0)]);
    assert_eq!(x[..], data[4096..8192]);
    assert_eq!(y[..], data[8192..16384]);
    x.fill(0xa1);
    y.fill(0xb2);
    let run = [split(&mut x, 512, true), split(&mut y, 4608, true)];
    assert_eq!(perform_run(&run), vec![(4096, 0), (8192, 0)]);
    let on_disk = std::fs::read(&path).unwrap();
    assert!(
        on_disk[512..4608].iter().all(|&b| b == 0xa1)
            && on_disk[4608..12800].iter().all(|&b| b == 0xb2)
    );
    assert_eq!(on_disk[..512], data[..512]);
    assert_eq!(on_disk[12800..], data[12800..]);
    // The same, synchronous (BIO_SYNC), and a short read at the end of the file shared out.
    x.fill(0xc3);
    y.fill(0xd4);
    let mut run = [split(&mut x, 16384, true), split(&mut y, 20480, true)];
    for r in &mut run {
        r.sync = true;
    }
    assert_eq!(perform_run(&run), vec![(4096, 0), (8192, 0)]);
    let on_disk = std::fs::read(&path).unwrap();
    assert!(
        on_disk[16384..20480].iter().all(|&b| b == 0xc3)
            && on_disk[20480..28672].iter().all(|&b| b == 0xd4)
    );
    let run = [
        split(&mut y, 56 * 1024, false),
        split(&mut x, 64 * 1024, false),
    ];
    assert_eq!(perform_run(&run), vec![(8192, 0), (0, 0)]);
    assert_eq!(y[..], on_disk[56 * 1024..]);
    // A joint write through a closed descriptor fails: every request reports EBADF itself.
    // SAFETY: fd from rumpuser_open.
    assert_eq!(unsafe { rumpuser_close(fd) }, 0);
    let mut w: Vec<BioReq> = (0..3)
        .map(|i| req(i, (i * 4096) as u64, &mut buf))
        .collect();
    for r in &mut w {
        r.write = true;
    }
    assert_eq!(perform_run(&w), vec![(0, 9), (0, 9), (0, 9)]);
    std::fs::remove_file(&path).unwrap();
    no_violations();
}

#[test]
fn bio_many_in_flight() {
    setup();
    enter_rump(0xb00);
    let (path, data) = temp_image(256 * 1024);
    let cpath = CString::new(path.to_str().unwrap()).unwrap();
    let mut fd = -1;
    // SAFETY: valid path.
    assert_eq!(unsafe { rumpuser_open(cpath.as_ptr(), 0x10, &mut fd) }, 0);
    let n = 64;
    let slots: Vec<DoneSlot> = (0..n).map(|_| std::sync::Mutex::new(None)).collect();
    let mut bufs: Vec<Vec<u8>> = (0..n).map(|_| vec![0u8; 4096]).collect();
    let barrier = Barrier::new(1);
    barrier.wait();
    for i in 0..n {
        // SAFETY: buffers and slots outlive the completions.
        unsafe {
            rumpuser_bio(
                fd,
                0x1,
                bufs[i].as_mut_ptr().cast(),
                4096,
                (i * 4096) as i64,
                Some(biodone),
                &slots[i] as *const _ as *mut c_void,
            )
        };
    }
    for i in 0..n {
        let d = wait_done(&slots[i]);
        assert_eq!((d.n, d.error, d.scheduled), (4096, 0, true));
        assert_eq!(bufs[i][..], data[i * 4096..(i + 1) * 4096]);
    }
    // SAFETY: fd from rumpuser_open.
    assert_eq!(unsafe { rumpuser_close(fd) }, 0);
    std::fs::remove_file(&path).unwrap();
    no_violations();
}
