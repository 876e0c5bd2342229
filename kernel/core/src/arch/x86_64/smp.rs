//! Application-processor bring-up: INIT-SIPI-SIPI to every CPU the MADT lists, through a
//! real-mode trampoline copied to physical page 0x8000. Each AP enters long mode on the
//! kernel's page tables, gets its own stack, GDT/TSS/IST stacks, per-CPU block (GS), LAPIC
//! (timer calibrated per CPU) and idle thread, then joins the scheduler. A CPU that does not
//! come up within its deadline is reported and skipped.

use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use alloc::vec::Vec;

use super::{apic, cpu, gdt, idt, percpu};
use crate::mm::kstack::KernelStack;
use crate::mm::paging::{self, Flags};

/// Physical page the trampoline runs from (SIPI vector 0x08).
const TRAMPOLINE: u64 = 0x8000;

// Parameter block at the end of the trampoline page (offsets from TRAMPOLINE).
const P_CR3: u64 = 0xF00;
const P_STACK: u64 = 0xF08;
const P_ENTRY: u64 = 0xF10;
const P_ARG: u64 = 0xF18;

core::arch::global_asm!(
    r#"
.section .rodata.ap_trampoline, "a"
.global ap_trampoline_start
.global ap_trampoline_end
.code16
ap_trampoline_start:
    cli
    cld
    xorw %ax, %ax
    movw %ax, %ds
    lgdtl (ap_gdt_ptr - ap_trampoline_start + 0x8000)
    movl %cr0, %eax
    orl $1, %eax
    movl %eax, %cr0
    ljmpl $0x08, $(ap_pm32 - ap_trampoline_start + 0x8000)
.code32
ap_pm32:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movl %cr4, %eax
    orl $(1 << 5), %eax
    movl %eax, %cr4
    movl (0x8000 + 0xF00), %eax
    movl %eax, %cr3
    movl $0xC0000080, %ecx
    rdmsr
    orl $((1 << 8) | (1 << 11)), %eax
    wrmsr
    movl %cr0, %eax
    orl $0x80010001, %eax
    movl %eax, %cr0
    ljmpl $0x18, $(ap_lm64 - ap_trampoline_start + 0x8000)
.code64
ap_lm64:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movq (0x8000 + 0xF08), %rsp
    movq (0x8000 + 0xF18), %rdi
    movq (0x8000 + 0xF10), %rax
    xorl %ebp, %ebp
    pushq $0
    jmpq *%rax
.balign 8
ap_gdt:
    .quad 0
    .quad 0x00CF9A000000FFFF
    .quad 0x00CF92000000FFFF
    .quad 0x00AF9A000000FFFF
ap_gdt_ptr:
    .word ap_gdt_ptr - ap_gdt - 1
    .long ap_gdt - ap_trampoline_start + 0x8000
ap_trampoline_end:
.text
"#,
    options(att_syntax)
);

unsafe extern "C" {
    static ap_trampoline_start: u8;
    static ap_trampoline_end: u8;
}

/// CPUs that have finished `ap_main`.
static ONLINE: AtomicUsize = AtomicUsize::new(1);
/// Set by the AP being started, to tell the BSP it is running.
static ARRIVED: AtomicU32 = AtomicU32::new(u32::MAX);

/// Starts every startable CPU in `apic_ids` (the BSP's own id is skipped), at most
/// `max_cpus` CPUs in total. Returns the number of CPUs online afterwards.
pub fn start_aps(apic_ids: &[u32], max_cpus: usize) -> usize {
    let bsp = apic::id();
    // SAFETY: linker symbols; only addresses are taken.
    let (start, end) = unsafe {
        (
            &ap_trampoline_start as *const u8 as u64,
            &ap_trampoline_end as *const u8 as u64,
        )
    };
    let len = end - start;
    if len > P_CR3 {
        log::error!("smp: trampoline is {len} bytes, too big; staying on one CPU");
        return 1;
    }
    // The trampoline page is reserved by the frame allocator (frames below 1 MiB are never
    // handed out). Identity-map it while APs start: the trampoline turns paging on while
    // still executing at 0x8000.
    let dst = crate::mm::phys_to_virt(TRAMPOLINE) as *mut u8;
    // SAFETY: page 0x8000 is reserved low memory, reached through the linear map; we copy the
    // trampoline code into it.
    unsafe { core::ptr::copy_nonoverlapping(start as *const u8, dst, len as usize) };
    let identity = paging::map(TRAMPOLINE, TRAMPOLINE, Flags::PRESENT | Flags::WRITABLE).is_ok();
    let param = |off: u64, v: u64| {
        // SAFETY: the parameter block lies inside the reserved trampoline page.
        unsafe {
            core::ptr::write_volatile(crate::mm::phys_to_virt(TRAMPOLINE + off) as *mut u64, v)
        };
    };
    param(P_CR3, paging::kernel_pml4());
    param(P_ENTRY, ap_entry as *const () as u64);

    let mut next_index = 1usize;
    let mut failed: Vec<u32> = Vec::new();
    for &id in apic_ids.iter().filter(|&&id| id != bsp) {
        if next_index >= max_cpus {
            log::info!("smp: CPU with APIC id {id} not started (maxcpus={max_cpus})");
            continue;
        }
        let Some(stack) = KernelStack::new(64 << 10) else {
            log::error!("smp: no memory for CPU {id}'s stack; skipping it");
            continue;
        };
        param(P_STACK, stack.top());
        param(P_ARG, ((next_index as u64) << 32) | u64::from(id));
        ARRIVED.store(u32::MAX, Ordering::SeqCst);
        let before = ONLINE.load(Ordering::SeqCst);
        apic::send_raw_ipi(id, apic::ICR_INIT);
        crate::time::spin_ns(10_000_000);
        let mut up = false;
        for _ in 0..2 {
            apic::send_raw_ipi(id, apic::ICR_STARTUP | (TRAMPOLINE >> 12) as u32);
            let t0 = crate::time::now_ns();
            // Under TCG a CPU can take a while to run its first instructions.
            while crate::time::now_ns() - t0 < 200_000_000 {
                if ARRIVED.load(Ordering::SeqCst) == id {
                    up = true;
                    break;
                }
                core::hint::spin_loop();
            }
            if up {
                break;
            }
        }
        if !up {
            log::error!(
                "smp: CPU with APIC id {id} did not respond to INIT-SIPI-SIPI; skipping it"
            );
            failed.push(id);
            core::mem::forget(stack); // it might still wake up later and use it
            continue;
        }
        // Wait until it finished its own init (it uses the shared parameter block until then).
        let t0 = crate::time::now_ns();
        while ONLINE.load(Ordering::SeqCst) == before && crate::time::now_ns() - t0 < 5_000_000_000
        {
            core::hint::spin_loop();
        }
        if ONLINE.load(Ordering::SeqCst) == before {
            log::error!("smp: CPU with APIC id {id} started but did not finish initialising");
            failed.push(id);
        }
        core::mem::forget(stack); // the AP's boot stack lives as long as the CPU
        next_index += 1;
    }
    if identity {
        let _ = paging::unmap(TRAMPOLINE);
    }
    let n = ONLINE.load(Ordering::SeqCst);
    if !failed.is_empty() {
        log::warn!(
            "smp: {} CPU(s) failed to start: APIC ids {:?}",
            failed.len(),
            failed
        );
    }
    n
}

pub fn online_count() -> usize {
    ONLINE.load(Ordering::SeqCst)
}

/// First Rust code on an AP: rdi = (cpu index << 32) | APIC id.
extern "C" fn ap_entry(arg: u64) -> ! {
    let apic_id = arg as u32;
    let index = (arg >> 32) as usize;
    ARRIVED.store(apic_id, Ordering::SeqCst);
    let feats = cpu::features();
    cpu::enable_protections(&feats);
    percpu::init_this_cpu(index, apic_id);
    super::cpu::set_tsc_aux(index);
    gdt::init_this_cpu();
    idt::load();
    super::user::init_this_cpu();
    apic::init_this_cpu(feats.x2apic);
    apic::calibrate_against_tsc(10);
    crate::sched::init_this_cpu_idle();
    apic::start_timer(crate::time::TICK_HZ);
    ONLINE.fetch_add(1, Ordering::SeqCst);
    log::debug!("smp: CPU {index} (APIC id {apic_id}) online");
    crate::sched::idle_forever()
}
