//! x86_64: boot stub, descriptor tables, interrupts, paging helpers, per-CPU data.

pub mod acpi_io;
pub mod apic;
pub mod cpu;
pub(crate) mod escape_asm;
pub mod gdt;
pub mod hpet;
pub mod idt;
pub mod ioapic;
pub mod pci_cfg;
pub mod percpu;
pub mod port_io;
pub mod probe;
pub mod rtc;
pub mod serial;
pub mod smp;
pub mod switch;
pub mod tlb;
pub mod uaccess;
pub mod upt;
pub mod user;

pub use apic::{tick_idle, tick_resume};
pub use idt::TrapFrame;

/// The top of what the boot stub maps before the kernel's own page tables exist (the
/// identity map of the first GiB): the frame allocator's bitmap goes below it.
pub const BOOT_MAPPED_TOP: u64 = 1 << 30;

/// The monotonic clock's counter: the TSC.
#[inline]
pub fn clock_counter() -> u64 {
    cpu::rdtsc()
}

/// Asks CPU `pc` to reschedule (the reschedule IPI through the LAPIC).
pub fn send_resched_ipi(pc: &percpu::PerCpu) {
    apic::send_ipi(pc.apic_id, idt::VECTOR_RESCHED);
}

// The boot stub switches between Intel and AT&T syntax for one far jump.
#[allow(bad_asm_style)]
mod boot_stub {
    core::arch::global_asm!(include_str!("boot.S"));
}

/// Local interrupt flag control.
pub mod irq {
    use x86_64::instructions::interrupts;

    /// Disables interrupts and returns whether they were enabled.
    #[inline]
    pub fn save_and_disable() -> bool {
        let was = interrupts::are_enabled();
        interrupts::disable();
        was
    }

    #[inline]
    pub fn restore(was_enabled: bool) {
        if was_enabled {
            interrupts::enable();
        }
    }

    #[inline]
    pub fn enabled() -> bool {
        interrupts::are_enabled()
    }

    #[inline]
    pub fn enable() {
        interrupts::enable();
    }

    /// Enables interrupts and halts until the next one, atomically (no lost wake-up).
    #[inline]
    pub fn enable_and_halt() {
        interrupts::enable_and_hlt();
    }
}

/// QEMU `isa-debug-exit` (iobase 0xf4): QEMU exits with status `(code << 1) | 1`.
pub fn qemu_exit(code: u8) -> ! {
    // SAFETY: port 0xf4 is the isa-debug-exit device on every QEMU command line xtask builds;
    // on real hardware the write is ignored and we fall through to halting.
    unsafe { x86_64::instructions::port::Port::<u32>::new(0xf4).write(u32::from(code)) };
    halt_forever()
}

/// Resets the machine through the 8042 controller's reset line, then by triple fault.
pub fn reset_machine() -> ! {
    // SAFETY: port 0x64 is the 8042 command port; 0xFE pulses the CPU reset line.
    unsafe { x86_64::instructions::port::Port::<u8>::new(0x64).write(0xFE) };
    for _ in 0..1_000_000 {
        core::hint::spin_loop();
    }
    // Still here: load an empty IDT and fault, which resets the CPU.
    let empty = x86_64::structures::DescriptorTablePointer {
        limit: 0,
        base: x86_64::VirtAddr::new(0),
    };
    // SAFETY: deliberately invalid IDT to force a triple fault (machine reset).
    unsafe {
        x86_64::instructions::tables::lidt(&empty);
        core::arch::asm!("int3");
    }
    halt_forever()
}

/// Stops this CPU for good.
pub fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}
