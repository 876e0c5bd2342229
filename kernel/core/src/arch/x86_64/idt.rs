//! The IDT and every interrupt entry. 256 assembly stubs push a uniform [`TrapFrame`] and
//! call [`interrupt_dispatch`]. Exceptions print vector, error code, RIP, CR2, all registers
//! and a symbolized backtrace, then end the run with a failing QEMU exit status. Device and
//! IPI vectors go to handlers registered with [`register`].

use core::sync::atomic::{AtomicUsize, Ordering};

use x86_64::VirtAddr;
use x86_64::structures::idt::InterruptDescriptorTable;

use super::gdt;

pub const VECTOR_TIMER: u8 = 0xF0;
pub const VECTOR_RESCHED: u8 = 0xF1;
pub const VECTOR_TLB: u8 = 0xF2;
pub const VECTOR_CALL: u8 = 0xF3;
pub const VECTOR_SPURIOUS: u8 = 0xFF;
/// Device interrupts are handed out from here up.
pub const VECTOR_DEVICE_FIRST: u8 = 0x30;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

impl TrapFrame {
    pub fn from_user(&self) -> bool {
        self.cs & 3 != 0
    }

    /// Where the interrupted code was (the arch-neutral name the scheduler uses).
    pub fn pc(&self) -> u64 {
        self.rip
    }

    // The arch-neutral view of a user frame the layers above use (system calls, signals,
    // fork); aarch64's TrapFrame has the same methods.

    /// Resumes at `pc`.
    #[inline]
    pub fn set_pc(&mut self, pc: u64) {
        self.rip = pc;
    }

    /// The user stack pointer.
    #[inline]
    pub fn sp(&self) -> u64 {
        self.rsp
    }

    #[inline]
    pub fn set_sp(&mut self, sp: u64) {
        self.rsp = sp;
    }

    /// The system call number at entry (rax).
    #[inline]
    pub fn syscall_nr(&self) -> u64 {
        self.rax
    }

    /// System call argument `i`: rdi, rsi, rdx, r10, r8, r9 (0 past the sixth).
    #[inline]
    pub fn syscall_arg(&self, i: usize) -> u64 {
        match i {
            0 => self.rdi,
            1 => self.rsi,
            2 => self.rdx,
            3 => self.r10,
            4 => self.r8,
            5 => self.r9,
            _ => 0,
        }
    }

    /// What user mode finds returned (rax).
    #[inline]
    pub fn ret(&self) -> u64 {
        self.rax
    }

    #[inline]
    pub fn set_ret(&mut self, v: u64) {
        self.rax = v;
    }

    /// Whether the frame was built by the system call entry.
    #[inline]
    pub fn is_syscall(&self) -> bool {
        self.vector == super::user::SYSCALL_VECTOR
    }

    /// Keeps what a restart needs ([`Self::restart_syscall`]): the number, in the
    /// error-code slot (rax gets the result).
    #[inline]
    pub fn keep_for_restart(&mut self) {
        self.error_code = self.rax;
    }

    /// The number kept by [`Self::keep_for_restart`].
    #[inline]
    pub fn kept_syscall_nr(&self) -> u64 {
        self.error_code
    }

    /// Makes the system call run again on the way back: its number in rax again, RIP back
    /// on the two-byte `syscall` instruction.
    #[inline]
    pub fn restart_syscall(&mut self) {
        self.rax = self.error_code;
        self.rip -= 2;
    }

    /// What a CPU exception in user mode was, for the layer that makes it a signal.
    pub fn user_trap(&self) -> super::super::UserTrap {
        use super::super::UserTrap as T;
        match self.vector {
            0 | 16 | 19 => T::Arithmetic,
            6 => T::IllegalInstruction,
            3 => T::Breakpoint,
            14 => T::PageFault {
                addr: super::cpu::read_cr2(),
            },
            17 => T::Alignment,
            _ => T::Protection,
        }
    }

    /// The exception's name, for logs.
    pub fn trap_name(&self) -> &'static str {
        EXCEPTION_NAMES
            .get(self.vector as usize)
            .copied()
            .unwrap_or("?")
    }
}

core::arch::global_asm!(
    r#"
.section .text.isr, "ax"
.align 16
.global isr_stubs
isr_stubs:
.set vec, 0
.rept 256
    .align 16
    .if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
    .else
    push 0
    .endif
    push vec
    jmp isr_common
    .set vec, vec + 1
.endr

isr_common:
    test qword ptr [rsp + 24], 3
    jz 1f
    swapgs
1:
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    mov rdi, rsp
    cld
    call {dispatch}
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
    test qword ptr [rsp + 24], 3
    jz 2f
    swapgs
2:
    add rsp, 16
    iretq
"#,
    dispatch = sym interrupt_dispatch,
);

unsafe extern "C" {
    static isr_stubs: u8;
}

static mut IDT: InterruptDescriptorTable = InterruptDescriptorTable::new();

/// Handlers for vectors 32..256 (function pointers stored as usize; 0 = none).
static HANDLERS: [AtomicUsize; 256] = [const { AtomicUsize::new(0) }; 256];

pub type Handler = fn(&mut TrapFrame);

/// Builds the IDT (once, on the boot CPU).
pub fn init() {
    // SAFETY: called once before interrupts are enabled and before any other CPU runs, so
    // nothing else references IDT.
    let idt = unsafe { &mut *core::ptr::addr_of_mut!(IDT) };
    // SAFETY: only the address is taken.
    let base = unsafe { &isr_stubs as *const u8 as u64 };
    for v in 0..256usize {
        let addr = VirtAddr::new(base + 16 * v as u64);
        // SAFETY: each stub is a valid interrupt entry that ends in iretq.
        unsafe {
            let opts = match v {
                0..=31 => idt_entry_exception(idt, v).set_handler_addr(addr),
                _ => idt[v as u8].set_handler_addr(addr),
            };
            match v {
                8 => {
                    opts.set_stack_index(gdt::IST_DOUBLE_FAULT);
                }
                2 => {
                    opts.set_stack_index(gdt::IST_NMI);
                }
                18 => {
                    opts.set_stack_index(gdt::IST_MACHINE_CHECK);
                }
                _ => {}
            }
        }
    }
    load();
}

fn idt_entry_exception(
    idt: &mut InterruptDescriptorTable,
    v: usize,
) -> &mut x86_64::structures::idt::Entry<x86_64::structures::idt::HandlerFunc> {
    // The x86_64 crate types exception entries by signature; all our stubs share one layout,
    // so we reach them through the raw slice view of the table.
    // SAFETY: InterruptDescriptorTable is repr(C) with 256 entries of identical layout.
    let raw = unsafe {
        &mut *(idt as *mut InterruptDescriptorTable
            as *mut [x86_64::structures::idt::Entry<x86_64::structures::idt::HandlerFunc>; 256])
    };
    &mut raw[v]
}

/// Loads the IDT on this CPU.
pub fn load() {
    // SAFETY: IDT is fully built before any CPU loads it and never changes afterwards.
    unsafe { (*core::ptr::addr_of!(IDT)).load_unsafe() };
}

pub fn register(vector: u8, handler: Handler) {
    HANDLERS[vector as usize].store(handler as usize, Ordering::Release);
}

pub const EXCEPTION_NAMES: [&str; 32] = [
    "divide error (#DE)",
    "debug (#DB)",
    "non-maskable interrupt",
    "breakpoint (#BP)",
    "overflow (#OF)",
    "bound range exceeded (#BR)",
    "invalid opcode (#UD)",
    "device not available (#NM)",
    "double fault (#DF)",
    "coprocessor segment overrun",
    "invalid TSS (#TS)",
    "segment not present (#NP)",
    "stack-segment fault (#SS)",
    "general protection fault (#GP)",
    "page fault (#PF)",
    "reserved",
    "x87 floating-point (#MF)",
    "alignment check (#AC)",
    "machine check (#MC)",
    "SIMD floating-point (#XM)",
    "virtualization (#VE)",
    "control protection (#CP)",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "hypervisor injection (#HV)",
    "VMM communication (#VC)",
    "security (#SX)",
    "reserved",
];

extern "C" fn interrupt_dispatch(frame: &mut TrapFrame) {
    let v = frame.vector as usize;
    if v < 32 {
        if v == 2 {
            // An NMI runs on its own stack, possibly inside any other code (even with
            // interrupts off, even with the user's GS): it reports and returns, never
            // schedules or delivers signals.
            let swapped = super::cpu::nmi_kernel_gs();
            crate::panic::nmi(frame);
            super::cpu::nmi_restore_gs(swapped);
            return;
        }
        exception(frame);
        if frame.from_user() {
            (crate::arch::hooks::get().return_to_user)(frame);
        }
        return;
    }
    let h = HANDLERS[v].load(Ordering::Acquire);
    if h != 0 {
        // SAFETY: only `register` stores into HANDLERS, always a valid `Handler`.
        let f: Handler = unsafe { core::mem::transmute::<usize, Handler>(h) };
        f(frame);
    } else if v as u8 != VECTOR_SPURIOUS {
        log::warn!("unexpected interrupt vector {v:#x}");
    }
    if v as u8 != VECTOR_SPURIOUS {
        super::apic::eoi();
    }
    // Preemption point: the timer (or a wake-up IPI) may have asked for a reschedule.
    crate::sched::preempt_on_irq_exit(frame);
    if frame.from_user() {
        (crate::arch::hooks::get().return_to_user)(frame);
    }
}

fn exception(frame: &mut TrapFrame) {
    let v = frame.vector as u8;
    if v == 14 {
        let cr2 = super::cpu::read_cr2();
        let write = frame.error_code & 2 != 0;
        let exec = frame.error_code & 16 != 0;
        // User addresses: demand paging / copy-on-write, from user mode or a user copy.
        if cr2 < crate::mm::uspace::USER_TOP
            && (frame.from_user() || super::uaccess::fixup_for(frame.rip).is_some())
        {
            if (crate::arch::hooks::get().user_fault)(cr2, write, exec) {
                return;
            }
            if let Some(fix) = super::uaccess::fixup_for(frame.rip) {
                frame.rip = fix;
                return;
            }
        }
    }
    if frame.from_user() {
        (crate::arch::hooks::get().user_exception)(frame);
        return;
    }
    // An in-kernel test that expects exactly this fault: report it and resume.
    if super::percpu::is_ready() {
        let pc = super::percpu::current();
        if let Some(fix) = pc.fault_fixup.get()
            && fix.vector == v
            && !frame.from_user()
        {
            pc.fault_fixup.set(None);
            pc.last_fault.set(Some((v, frame.rip, frame.error_code)));
            crate::println!(
                "[fault caught] {} at rip={:#x} err={:#x} cr2={:#x} (expected by a test; resuming)",
                EXCEPTION_NAMES[v as usize],
                frame.rip,
                frame.error_code,
                super::cpu::read_cr2()
            );
            // SAFETY: the test that armed the fixup keeps the slot alive and wrote the
            // resume address into it before the faulting instruction.
            frame.rip = unsafe { fix.resume_slot.read_volatile() };
            return;
        }
    }
    fatal(frame);
}

fn fatal(frame: &TrapFrame) -> ! {
    let v = frame.vector as usize;
    let cr2 = super::cpu::read_cr2();
    crate::panic::begin();
    crate::panic::print(format_args!(
        "\n!!! KERNEL EXCEPTION on CPU {}: vector {} {}\n",
        super::percpu::cpu_id(),
        v,
        EXCEPTION_NAMES.get(v).copied().unwrap_or("?")
    ));
    crate::panic::print(format_args!(
        "    error code {:#x}  rip {:#018x}  cr2 {:#018x}\n",
        frame.error_code, frame.rip, cr2
    ));
    if v == 14 {
        let e = frame.error_code;
        crate::panic::print(format_args!(
            "    page fault: {} {} in {} mode{}{}\n",
            if e & 1 != 0 {
                "protection violation"
            } else {
                "non-present page"
            },
            if e & 2 != 0 {
                "on write"
            } else if e & 16 != 0 {
                "on instruction fetch"
            } else {
                "on read"
            },
            if e & 4 != 0 { "user" } else { "kernel" },
            if e & 8 != 0 { ", reserved bit set" } else { "" },
            if crate::mm::kstack_guard_hit(cr2) {
                " — kernel STACK OVERFLOW (guard page)"
            } else {
                ""
            },
        ));
    }
    if v == 8 && (crate::mm::kstack_guard_hit(cr2) || crate::mm::kstack_guard_hit(frame.rsp)) {
        crate::panic::print(format_args!(
            "    kernel STACK OVERFLOW: the stack ran into its guard page (cr2 {cr2:#x})\n"
        ));
    }
    crate::panic::print_registers(frame);
    crate::panic::print(format_args!(
        "    rip: {}\n",
        crate::symbols::Sym(frame.rip)
    ));
    crate::panic::backtrace_from(frame.rbp);
    crate::panic::end()
}
