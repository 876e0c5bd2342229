//! Panic and fatal-exception reporting: message, registers, symbolized backtrace, then a
//! failing QEMU exit status (`isa-debug-exit`) so a test run never hangs on a dead kernel.

use core::sync::atomic::{AtomicBool, Ordering};

use crate::arch::idt::TrapFrame;
use crate::symbols::Sym;

/// QEMU exit statuses: `(code << 1) | 1`.
pub const EXIT_SUCCESS: u8 = 0x10; // QEMU exits 33
pub const EXIT_FAILURE: u8 = 0x11; // 35
pub const EXIT_PANIC: u8 = 0x12; // 37

static PANICKING: AtomicBool = AtomicBool::new(false);

pub fn begin() {
    crate::arch::irq::save_and_disable();
    if PANICKING.swap(true, Ordering::SeqCst) {
        // A second panic while reporting the first: stop quietly.
        crate::arch::qemu_exit(EXIT_PANIC);
    }
}

pub fn print(args: core::fmt::Arguments<'_>) {
    crate::arch::serial::panic_write_fmt(args);
}

pub fn print_registers(f: &TrapFrame) {
    print(format_args!(
        "    rax {:016x} rbx {:016x} rcx {:016x} rdx {:016x}\n    rsi {:016x} rdi {:016x} rbp {:016x} rsp {:016x}\n    r8  {:016x} r9  {:016x} r10 {:016x} r11 {:016x}\n    r12 {:016x} r13 {:016x} r14 {:016x} r15 {:016x}\n    cs {:#x} ss {:#x} rflags {:#x}\n",
        f.rax, f.rbx, f.rcx, f.rdx, f.rsi, f.rdi, f.rbp, f.rsp, f.r8, f.r9, f.r10, f.r11, f.r12, f.r13, f.r14, f.r15, f.cs, f.ss, f.rflags
    ));
}

/// Walks the frame-pointer chain (the kernel is built with frame pointers).
pub fn backtrace_from(mut rbp: u64) {
    print(format_args!("    backtrace:\n"));
    let mut last = 0;
    let mut repeats = 0;
    for depth in 0..64 {
        if rbp == 0 || rbp % 8 != 0 || rbp < 0xFFFF_8000_0000_0000 {
            break;
        }
        // Only follow frames on mapped kernel memory.
        if crate::mm::paging::query(rbp).is_none() || crate::mm::paging::query(rbp + 8).is_none() {
            break;
        }
        // SAFETY: both words were just checked to be mapped kernel memory.
        let (next, ret) = unsafe { (*(rbp as *const u64), *((rbp + 8) as *const u64)) };
        if ret == 0 {
            break;
        }
        if ret == last {
            repeats += 1;
        } else {
            if repeats > 0 {
                print(format_args!("      ... previous frame repeated {repeats} more times\n"));
            }
            repeats = 0;
            print(format_args!("      #{depth:<2} {}\n", Sym(ret)));
        }
        last = ret;
        rbp = next;
    }
    if repeats > 0 {
        print(format_args!("      ... previous frame repeated {repeats} more times\n"));
    }
}

pub fn current_rbp() -> u64 {
    let rbp: u64;
    // SAFETY: reads a register.
    unsafe { core::arch::asm!("mov {}, rbp", out(reg) rbp, options(nomem, nostack, preserves_flags)) };
    rbp
}

pub fn end() -> ! {
    print(format_args!("!!! end of report; stopping (QEMU exit status {})\n", (EXIT_PANIC << 1) | 1));
    crate::arch::qemu_exit(EXIT_PANIC)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    begin();
    print(format_args!("\n!!! KERNEL PANIC on CPU {}: {}\n", crate::arch::percpu::cpu_id(), info.message()));
    if let Some(loc) = info.location() {
        print(format_args!("    at {}:{}:{}\n", loc.file(), loc.line(), loc.column()));
    }
    backtrace_from(current_rbp());
    end()
}
