//! Event and IPC file kinds behind the Linux calls of the same names: epoll, eventfd,
//! timerfd, signalfd and AF_UNIX sockets. Each is an [`AnonFile`](crate::fs::anon::AnonFile);
//! readiness comes from `poll`, and waiting from the wait queues those files wake — an
//! epoll instance (or a socket relaying its two pipes) watches the queues of what it waits
//! on through [`Notify`](crate::sched::wait::Notify), so nothing polls in a loop.

pub mod epoll;
pub mod eventfd;
pub mod signalfd;
pub mod timerfd;
pub mod unix;

use crate::errno::{Errno, KResult};

/// Blocks on `wq` until `ready()` gives a value; ERESTARTSYS if a signal arrives first.
/// `ready` runs with the queue lock held: it may only take spin locks.
pub(crate) fn wait_for<T>(
    wq: &crate::sched::wait::WaitQueue,
    mut ready: impl FnMut() -> Option<T>,
) -> KResult<T> {
    let mut out = None;
    let mut intr = false;
    wq.wait_until(
        || {
            out = ready();
            out.is_some() || {
                intr = crate::proc::signal::pending_for_current();
                intr
            }
        },
        None,
    );
    out.ok_or(Errno::ERESTARTSYS)
}
