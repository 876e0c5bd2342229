//! The in-kernel test cases, one module per subsystem.

use crate::ktest::TestFn;

mod block;
mod faults;
mod fs;
mod memory;
mod pci;
mod platform;
mod sched;
mod userland;

pub fn register(v: &mut alloc::vec::Vec<(&'static str, TestFn)>) {
    memory::register(v);
    faults::register(v);
    sched::register(v);
    platform::register(v);
    pci::register(v);
    fs::register(v);
    block::register(v);
    userland::register(v);
}
