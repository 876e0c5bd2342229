//! futex: wait (with timeout), wake, requeue, bitset variants — keyed by (address space,
//! user address), waiters sleep on per-key wait queues.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;

use super::abi::Timespec;
use super::{Call, Table};
use crate::arch::uaccess::read_val;
use crate::errno::{Errno, KResult};
use crate::sched::wait::WaitQueue;
use crate::sync::spin::IrqSpinLock;

pub fn register(t: &mut Table) {
    t.add(202, "futex", futex);
}

struct Bucket {
    wq: WaitQueue,
    /// Bumped by every wake, so a waiter can tell it was woken.
    seq: core::sync::atomic::AtomicU64,
}

static FUTEXES: IrqSpinLock<BTreeMap<(u64, u64), Arc<Bucket>>> = IrqSpinLock::new(BTreeMap::new());

fn key(addr: u64) -> (u64, u64) {
    let space = crate::proc::current_process()
        .map(|p| p.aspace().pml4())
        .unwrap_or(0);
    (space, addr)
}

fn bucket(k: (u64, u64)) -> Arc<Bucket> {
    FUTEXES
        .lock()
        .entry(k)
        .or_insert_with(|| {
            Arc::new(Bucket {
                wq: WaitQueue::new(),
                seq: core::sync::atomic::AtomicU64::new(0),
            })
        })
        .clone()
}

/// Wakes up to `n` waiters on `addr` in the current address space.
pub fn wake(addr: u64, n: usize) -> usize {
    let b = match FUTEXES.lock().get(&key(addr)) {
        Some(b) => b.clone(),
        None => return 0,
    };
    b.seq.fetch_add(1, core::sync::atomic::Ordering::AcqRel);
    let mut woken = 0;
    while woken < n && b.wq.wake_one() {
        woken += 1;
    }
    woken
}

const FUTEX_WAIT: u64 = 0;
const FUTEX_WAKE: u64 = 1;
const FUTEX_REQUEUE: u64 = 3;
const FUTEX_CMP_REQUEUE: u64 = 4;
const FUTEX_WAKE_OP: u64 = 5;
const FUTEX_WAIT_BITSET: u64 = 9;
const FUTEX_WAKE_BITSET: u64 = 10;

fn futex(c: &mut Call<'_>) -> KResult<u64> {
    let addr = c.a0();
    let op = c.a1() & 0x7f; // strip FUTEX_PRIVATE_FLAG and CLOCK_REALTIME
    let val = c.a2() as u32;
    if !addr.is_multiple_of(4) {
        return Err(Errno::EINVAL);
    }
    match op {
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            let deadline = if c.a3() != 0 {
                let ts: Timespec = read_val(c.a3())?;
                if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
                    return Err(Errno::EINVAL);
                }
                let ns = (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64;
                Some(if op == FUTEX_WAIT_BITSET {
                    // Absolute, on CLOCK_MONOTONIC (or REALTIME with the flag).
                    if c.a1() & 256 != 0 {
                        ns.saturating_sub(crate::time::wall_clock_ns() - crate::time::now_ns())
                    } else {
                        ns
                    }
                } else {
                    crate::time::now_ns() + ns
                })
            } else {
                None
            };
            let b = bucket(key(addr));
            let seq0 = b.seq.load(core::sync::atomic::Ordering::Acquire);
            // Check the value under the queue's protocol: read, then sleep unless a wake
            // came in between (seq changed).
            let cur: u32 = read_val(addr)?;
            if cur != val {
                return Err(Errno::EAGAIN);
            }
            let mut intr = false;
            let woke = b.wq.wait_until(
                || {
                    if crate::proc::signal::pending_for_current() {
                        intr = true;
                        return true;
                    }
                    b.seq.load(core::sync::atomic::Ordering::Acquire) != seq0
                },
                deadline,
            );
            if intr {
                return Err(Errno::EINTR);
            }
            if !woke {
                return Err(Errno::ETIMEDOUT);
            }
            Ok(0)
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET => Ok(wake(addr, val as usize) as u64),
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
            if op == FUTEX_CMP_REQUEUE {
                let cur: u32 = read_val(addr)?;
                if cur != c.a5() as u32 {
                    return Err(Errno::EAGAIN);
                }
            }
            // Wake `val` waiters and, instead of moving up to `val2` more onto uaddr2, wake
            // them too: a futex waiter must tolerate spurious wake-ups, re-checks its word and
            // waits again (on uaddr2 if that is where it now belongs). Correct, if slower.
            let n = wake(addr, (val as usize).saturating_add(c.a3() as usize));
            Ok(n as u64)
        }
        FUTEX_WAKE_OP => {
            // *uaddr2 = old OP oparg (atomically); wake `val` on uaddr; if old CMP cmparg,
            // wake `val2` on uaddr2.
            let uaddr2 = c.a4();
            let val3 = c.a5() as u32;
            let op = (val3 >> 28) & 0x7;
            let shift = (val3 >> 28) & 0x8 != 0;
            let cmp = (val3 >> 24) & 0xf;
            let mut oparg = (val3 >> 12) & 0xfff;
            let cmparg = val3 & 0xfff;
            if shift {
                oparg = 1u32.checked_shl(oparg).unwrap_or(0);
            }
            let mut old: u32 = read_val(uaddr2)?;
            loop {
                let new = match op {
                    0 => oparg,
                    1 => old.wrapping_add(oparg),
                    2 => old | oparg,
                    3 => old & !oparg,
                    4 => old ^ oparg,
                    _ => return Err(Errno::ENOSYS),
                };
                let seen = crate::arch::uaccess::cmpxchg_user(uaddr2, old, new)?;
                if seen == old {
                    break;
                }
                old = seen;
            }
            let hit = match cmp {
                0 => old == cmparg,
                1 => old != cmparg,
                2 => (old as i32) < (cmparg as i32),
                3 => (old as i32) <= (cmparg as i32),
                4 => (old as i32) > (cmparg as i32),
                5 => (old as i32) >= (cmparg as i32),
                _ => return Err(Errno::ENOSYS),
            };
            let n = wake(addr, val as usize);
            let m = if hit {
                wake(uaddr2, c.a3() as usize)
            } else {
                0
            };
            Ok((n + m) as u64)
        }
        _ => Err(Errno::ENOSYS),
    }
}
