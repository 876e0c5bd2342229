//! x86_64's signal frame: `struct rt_sigframe` as Linux builds it (the return address
//! `sa_restorer`, the `ucontext` with its `sigcontext`, the siginfo) with the FXSAVE image
//! below it, and `rt_sigreturn`, which restores from it.

use alloc::sync::Arc;
use core::mem::{offset_of, size_of};

use crate::arch::TrapFrame;
use crate::arch::uaccess::{copy_to_user, read_val, write_val};
use crate::errno::{Errno, KResult};
use crate::proc::Task;
use crate::proc::signal::{
    SA_ONSTACK, SA_RESTORER, SIGBUS, SIGKILL, SIGSEGV, SIGSTOP, SigInfo, bit,
};
use crate::syscall::abi;
use crate::syscall::abi::SigAction;
use zerocopy::IntoBytes;

/// The saved registers of a signal frame (`uc_mcontext`).
fn sigcontext(
    f: &TrapFrame,
    mask: u64,
    fpstate: u64,
    err_trap: (u64, u64),
    cr2: u64,
) -> abi::SigContext {
    abi::SigContext {
        r8: f.r8,
        r9: f.r9,
        r10: f.r10,
        r11: f.r11,
        r12: f.r12,
        r13: f.r13,
        r14: f.r14,
        r15: f.r15,
        rdi: f.rdi,
        rsi: f.rsi,
        rbp: f.rbp,
        rbx: f.rbx,
        rdx: f.rdx,
        rax: f.rax,
        rcx: f.rcx,
        rsp: f.rsp,
        rip: f.rip,
        eflags: f.rflags,
        cs: f.cs as u16,
        gs: 0,
        fs: 0,
        ss: f.ss as u16,
        err: err_trap.0,
        trapno: err_trap.1,
        oldmask: mask,
        cr2,
        fpstate,
        reserved1: [0; 8],
    }
}

pub fn setup(
    t: &Arc<Task>,
    frame: &mut TrapFrame,
    info: &SigInfo,
    act: &SigAction,
    mask: u64,
) -> KResult<()> {
    let sig = info.signo;
    let fault_addr = info.addr;
    let (ss_sp, ss_size, _) = t.sig.lock().altstack;
    let mut sp = if act.flags & SA_ONSTACK != 0
        && ss_size != 0
        && !(ss_sp..ss_sp + ss_size).contains(&frame.rsp)
    {
        ss_sp + ss_size
    } else {
        frame.rsp - 128 // red zone
    };
    // FXSAVE area.
    sp = (sp - 512) & !63;
    let fp_at = sp;
    let fpu = crate::sched::current().fpu_snapshot();
    copy_to_user(fp_at, &fpu.0)?;
    // The frame, so that the handler starts with rsp % 16 == 8 (as after a call).
    sp = ((sp - size_of::<abi::RtSigFrame>() as u64) & !15) - 8;
    let base = sp;
    let restorer = if act.flags & SA_RESTORER != 0 {
        act.restorer
    } else {
        0
    };
    let (a_sp, a_size, a_flags) = t.sig.lock().altstack;
    let cr2 = if sig == SIGSEGV || sig == SIGBUS {
        fault_addr
    } else {
        0
    };
    let rt = abi::RtSigFrame {
        pretcode: restorer,
        uc: abi::UContext {
            uc_flags: 0,
            uc_link: 0,
            uc_stack: abi::StackT {
                ss_sp: a_sp,
                ss_flags: a_flags,
                __pad: 0,
                ss_size: a_size,
            },
            uc_mcontext: sigcontext(frame, mask, fp_at, (frame.error_code, frame.vector), cr2),
            uc_sigmask: mask,
            __glibc_sigset_rest: [0; 128],
        },
        info: info.to_bytes(),
    };
    write_val(base, &rt)?;
    frame.rsp = base;
    frame.rip = act.handler;
    frame.rdi = u64::from(sig);
    frame.rsi = base + offset_of!(abi::RtSigFrame, info) as u64;
    frame.rdx = base + offset_of!(abi::RtSigFrame, uc) as u64;
    frame.rax = 0;
    frame.rflags &= !(1 << 10); // DF clear
    Ok(())
}

/// `rt_sigreturn`: restores the context saved by `setup_frame`.
pub fn sigreturn(frame: &mut TrapFrame) -> KResult<u64> {
    let t = crate::proc::current_task().ok_or(Errno::EPERM)?;
    let base = frame.rsp - 8; // the handler's `ret` popped pretcode
    let uc: abi::UContext = read_val(base + offset_of!(abi::RtSigFrame, uc) as u64)?;
    let (mask, w) = (uc.uc_sigmask, uc.uc_mcontext);
    frame.r8 = w.r8;
    frame.r9 = w.r9;
    frame.r10 = w.r10;
    frame.r11 = w.r11;
    frame.r12 = w.r12;
    frame.r13 = w.r13;
    frame.r14 = w.r14;
    frame.r15 = w.r15;
    frame.rdi = w.rdi;
    frame.rsi = w.rsi;
    frame.rbp = w.rbp;
    frame.rbx = w.rbx;
    frame.rdx = w.rdx;
    frame.rax = w.rax;
    frame.rcx = w.rcx;
    frame.rsp = w.rsp;
    frame.rip = w.rip;
    // Only the arithmetic/direction flags come from user space; IF stays on.
    frame.rflags = (w.eflags & 0x0cd5) | 0x202;
    frame.cs = u64::from(crate::arch::gdt::USER_CS.0);
    frame.ss = u64::from(crate::arch::gdt::USER_DS.0);
    if w.fpstate != 0 {
        let mut fx: abi::FpState = read_val(w.fpstate)?;
        // Keep MXCSR reserved bits clear so fxrstor cannot #GP.
        fx.mxcsr &= 0xffff;
        let mut st = crate::arch::user::FpuState::initial();
        st.0.copy_from_slice(fx.as_bytes());
        st.restore();
    }
    t.sig.lock().mask = mask & !(bit(SIGKILL) | bit(SIGSTOP));
    Ok(frame.rax)
}
