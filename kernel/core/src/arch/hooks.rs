//! The core's only calls upward: the entry points of user mode, which the process layer
//! registers once at boot ([`register`]). The core decides *when* they run (a `syscall`
//! instruction, a fault on a user address, an exception in user mode, every return to user
//! mode); what they do — system calls, demand paging, signals — belongs to the layers above.

use super::TrapFrame;

/// What the layers above do for user mode.
pub struct UserHooks {
    /// A `syscall` instruction: the number in `rax`, arguments in the frame; the result goes
    /// back into `rax`.
    pub syscall: fn(&mut TrapFrame),
    /// Every return to user mode (after a system call, an interrupt or an exception taken in
    /// user mode, and before a new thread's first instruction): pending signals, stops, exit.
    pub return_to_user: fn(&mut TrapFrame),
    /// A page fault at user address `addr` (write, instruction fetch), from user mode or from
    /// a user copy: true if it was resolved (demand paging, copy-on-write) and the access can
    /// be retried.
    pub user_fault: fn(addr: u64, write: bool, exec: bool) -> bool,
    /// An exception in user mode that nothing resolved (the frame's vector says which).
    pub user_exception: fn(&mut TrapFrame),
}

static HOOKS: spin::Once<UserHooks> = spin::Once::new();

/// Registers the user-mode entry points (once, before the first user thread starts).
pub fn register(hooks: UserHooks) {
    HOOKS.call_once(|| hooks);
}

/// The registered hooks. A user-mode entry before [`register`] is a kernel bug.
#[inline]
pub(crate) fn get() -> &'static UserHooks {
    HOOKS
        .get()
        .expect("user mode entered before the process layer registered its hooks")
}
