//! Per-CPU GDT and TSS. Selector layout (fixed; `syscall`/`sysret` depend on it):
//! 0x08 kernel code, 0x10 kernel data, 0x18 user data, 0x20 user code, 0x28 TSS.

use alloc::boxed::Box;
use x86_64::PrivilegeLevel;
use x86_64::VirtAddr;
use x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;

use crate::mm::kstack::KernelStack;

pub const IST_DOUBLE_FAULT: u16 = 0;
pub const IST_NMI: u16 = 1;
pub const IST_MACHINE_CHECK: u16 = 2;

pub const KERNEL_CS: SegmentSelector = SegmentSelector::new(1, PrivilegeLevel::Ring0);
pub const KERNEL_DS: SegmentSelector = SegmentSelector::new(2, PrivilegeLevel::Ring0);
pub const USER_DS: SegmentSelector = SegmentSelector::new(3, PrivilegeLevel::Ring3);
pub const USER_CS: SegmentSelector = SegmentSelector::new(4, PrivilegeLevel::Ring3);

const IST_STACK_SIZE: usize = 32 << 10;

/// Builds and loads this CPU's GDT and TSS (IST stacks with guard pages). Returns the TSS so
/// the scheduler can update `rsp0`.
pub fn init_this_cpu() -> &'static mut TaskStateSegment {
    let mut tss = Box::new(TaskStateSegment::new());
    for ist in [IST_DOUBLE_FAULT, IST_NMI, IST_MACHINE_CHECK] {
        let stack = KernelStack::new(IST_STACK_SIZE).expect("no memory for an IST stack");
        tss.interrupt_stack_table[ist as usize] = VirtAddr::new(stack.top());
        core::mem::forget(stack); // lives as long as the CPU
    }
    let tss: &'static mut TaskStateSegment = Box::leak(tss);
    let tss_ptr: *const TaskStateSegment = tss;
    super::percpu::current()
        .tss
        .store(tss_ptr as u64, core::sync::atomic::Ordering::Release);

    let mut gdt = Box::new(GlobalDescriptorTable::<8>::new());
    let kcs = gdt.append(Descriptor::kernel_code_segment());
    let kds = gdt.append(Descriptor::kernel_data_segment());
    let uds = gdt.append(Descriptor::user_data_segment());
    let ucs = gdt.append(Descriptor::user_code_segment());
    // SAFETY: the TSS is leaked ('static) and never moves.
    let tss_sel = gdt.append(unsafe { Descriptor::tss_segment_unchecked(tss_ptr) });
    debug_assert_eq!(
        (kcs, kds, uds, ucs),
        (KERNEL_CS, KERNEL_DS, USER_DS, USER_CS)
    );
    let gdt: &'static GlobalDescriptorTable<8> = Box::leak(gdt);
    gdt.load();
    // SAFETY: the selectors index the GDT just loaded.
    unsafe {
        CS::set_reg(KERNEL_CS);
        SS::set_reg(KERNEL_DS);
        DS::set_reg(SegmentSelector(0));
        ES::set_reg(SegmentSelector(0));
        load_tss(tss_sel);
    }
    tss
}
