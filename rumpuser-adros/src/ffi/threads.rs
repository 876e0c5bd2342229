//! Threads, `curlwp`, and the lock objects rump creates: mutexes, rwlocks and condition
//! variables (the logic is in [`crate::locks`]).
//!
//! Safety contract: as for every hypercall (see [`super`]).

use super::*;

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_thread_create(
    f: Option<crate::host::ThreadEntry>,
    arg: *mut c_void,
    name: *const c_char,
    mustjoin: c_int,
    _pri: c_int,
    cpuidx: c_int,
    cookie: *mut *mut c_void,
) -> c_int {
    let Some(f) = f else {
        return Errno::EINVAL.code();
    };
    if mustjoin != 0 && cookie.is_null() {
        return Errno::EINVAL.code();
    }
    let name = if name.is_null() {
        "rump"
    } else {
        path_arg(name).unwrap_or("rump")
    };
    match host::host().thread_create(f, arg, name, mustjoin != 0, cpuidx) {
        Ok(c) => {
            if mustjoin != 0 {
                put(cookie, c.map_or(0, |c| c.0) as *mut c_void);
            }
            0
        }
        Err(e) => e.code(),
    }
}

/// `C-unwind`: on the std host this ends in `pthread_exit`, a forced unwind that must be allowed
/// to pass this frame.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn rumpuser_thread_exit() -> ! {
    host::host().thread_exit()
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_thread_join(cookie: *mut c_void) -> c_int {
    if cookie.is_null() {
        return Errno::EINVAL.code();
    }
    let c = ThreadCookie(cookie as usize);
    ret(hyp::without_vcpu(|| host::host().thread_join(c)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_curlwpop(op: c_int, l: *mut c_void) {
    let h = host::host();
    match op {
        RUMPUSER_LWP_CREATE | RUMPUSER_LWP_DESTROY => {}
        RUMPUSER_LWP_SET => {
            debug_assert_eq!(h.curlwp(), 0, "LWP_SET over an existing curlwp");
            h.set_curlwp(l as usize);
        }
        RUMPUSER_LWP_CLEAR => {
            debug_assert_eq!(h.curlwp(), l as usize, "LWP_CLEAR of another lwp");
            h.set_curlwp(0);
        }
        _ => h.console_write(b"rumpuser_curlwpop: bad op\n"),
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn rumpuser_curlwp() -> *mut c_void {
    host::current_curlwp() as *mut c_void
}

// ---- mutexes ---------------------------------------------------------------------------------

static MUTEXES: crate::CacheAligned<Recycler<Mutex>> = crate::CacheAligned(Recycler::new());
static RWLOCKS: crate::CacheAligned<Recycler<RwLock>> = crate::CacheAligned(Recycler::new());
static CONDVARS: crate::CacheAligned<Recycler<Condvar>> = crate::CacheAligned(Recycler::new());

/// Borrows a lock object rump got from our `*_init`.
fn obj<'a, T>(p: *mut T) -> &'a T {
    assert!(!p.is_null(), "rumpuser: null lock object");
    // SAFETY: rump passes only objects from rumpuser_{mutex,rw,cv}_init that it has not
    // destroyed; they are heap objects (see `recycle`) shared immutably (interior mutability).
    unsafe { &*p }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_mutex_init(mtxp: *mut *mut RumpuserMtx, flags: c_int) {
    assert!(!mtxp.is_null());
    put(mtxp, MUTEXES.make(Mutex::new(flags)));
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_mutex_enter(m: *mut RumpuserMtx) {
    obj(m).enter(host::host());
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_mutex_enter_nowrap(m: *mut RumpuserMtx) {
    obj(m).enter_nowrap(host::host());
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_mutex_tryenter(m: *mut RumpuserMtx) -> c_int {
    ret(obj(m).tryenter(host::host()))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_mutex_exit(m: *mut RumpuserMtx) {
    obj(m).exit();
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_mutex_destroy(m: *mut RumpuserMtx) {
    if !m.is_null() {
        // SAFETY: made by MUTEXES in rumpuser_mutex_init; rump destroys it once.
        unsafe { MUTEXES.destroy(m) };
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_mutex_owner(m: *mut RumpuserMtx, lp: *mut *mut c_void) {
    match obj(m).owner() {
        Some(o) => put(lp, o as *mut c_void),
        None => {
            host::host().console_write(b"panic: rumpuser_mutex_owner on a non-kmutex\n");
            host::host().exit(-1, true)
        }
    }
}

// ---- rwlocks ---------------------------------------------------------------------------------

fn rw_mode(m: c_int) -> Option<RwMode> {
    match m {
        RUMPUSER_RW_READER => Some(RwMode::Read),
        RUMPUSER_RW_WRITER => Some(RwMode::Write),
        _ => None,
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_rw_init(rwp: *mut *mut RumpuserRw) {
    assert!(!rwp.is_null());
    put(rwp, RWLOCKS.make(RwLock::new()));
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_rw_enter(mode: c_int, rw: *mut RumpuserRw) {
    let mode = rw_mode(mode).expect("rumpuser_rw_enter: bad mode");
    obj(rw).enter(host::host(), mode);
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_rw_tryenter(mode: c_int, rw: *mut RumpuserRw) -> c_int {
    match rw_mode(mode) {
        Some(m) => ret(obj(rw).tryenter(host::host(), m)),
        None => Errno::EINVAL.code(),
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_rw_tryupgrade(rw: *mut RumpuserRw) -> c_int {
    ret(obj(rw).tryupgrade(host::host()))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_rw_downgrade(rw: *mut RumpuserRw) {
    obj(rw).downgrade();
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_rw_exit(rw: *mut RumpuserRw) {
    obj(rw).exit();
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_rw_destroy(rw: *mut RumpuserRw) {
    if !rw.is_null() {
        // SAFETY: made by RWLOCKS in rumpuser_rw_init; destroyed once.
        unsafe { RWLOCKS.destroy(rw) };
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_rw_held(mode: c_int, rw: *mut RumpuserRw, rv: *mut c_int) {
    let v = rw_mode(mode).map_or(0, |m| obj(rw).held(host::host(), m));
    put(rv, v);
}

// ---- condition variables ---------------------------------------------------------------------

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_cv_init(cvp: *mut *mut RumpuserCv) {
    assert!(!cvp.is_null());
    put(cvp, CONDVARS.make(Condvar::new()));
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_cv_destroy(cv: *mut RumpuserCv) {
    if !cv.is_null() {
        // SAFETY: made by CONDVARS in rumpuser_cv_init; destroyed once.
        unsafe { CONDVARS.destroy(cv) };
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_cv_wait(cv: *mut RumpuserCv, m: *mut RumpuserMtx) {
    let _ = obj(cv).wait(host::host(), obj(m), None);
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_cv_wait_nowrap(cv: *mut RumpuserCv, m: *mut RumpuserMtx) {
    obj(cv).wait_nowrap(host::host(), obj(m));
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_cv_timedwait(
    cv: *mut RumpuserCv,
    m: *mut RumpuserMtx,
    sec: i64,
    nsec: i64,
) -> c_int {
    ret(obj(cv).wait(host::host(), obj(m), Some(RelTimeout { sec, nsec })))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_cv_signal(cv: *mut RumpuserCv) {
    obj(cv).signal();
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_cv_broadcast(cv: *mut RumpuserCv) {
    obj(cv).broadcast();
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rumpuser_cv_has_waiters(cv: *mut RumpuserCv, n: *mut c_int) {
    put(n, obj(cv).has_waiters());
}
