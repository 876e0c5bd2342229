//! aarch64's signal frame, as Linux's arm64 builds it (arch/arm64/kernel/signal.c): an
//! `rt_sigframe` — the siginfo, then a `ucontext` whose `sigcontext` holds x0–x30, SP, PC,
//! PSTATE and the fault address, and in its reserved area an `fpsimd_context` record (q0–q31,
//! FPSR, FPCR) followed by the end record — with a frame record (x29, x30) above it. The
//! handler gets x0 = signal, x1 = &info, x2 = &uc, SP at the frame, x29 at the frame record,
//! and returns through x30 = `sa_restorer` (`svc` for `rt_sigreturn`), or without one (glibc
//! never gives one on arm64) to the trampoline Linux keeps in its vDSO, here the page
//! `vdso::SIGRETURN_AT`.

use alloc::sync::Arc;
use core::mem::{offset_of, size_of};

use crate::arch::TrapFrame;
use crate::arch::uaccess::{read_val, write_val};
use crate::errno::{Errno, KResult};
use crate::proc::Task;
use crate::proc::signal::{
    SA_ONSTACK, SA_RESTORER, SIGBUS, SIGKILL, SIGSEGV, SIGSTOP, SigInfo, bit,
};
use crate::syscall::abi::{SigAction, SigInfoBytes, StackT};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

/// `struct fpsimd_context` (arch/arm64/include/uapi/asm/sigcontext.h).
#[repr(C)]
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
struct FpsimdContext {
    magic: u32,
    size: u32,
    fpsr: u32,
    fpcr: u32,
    vregs: [u64; 64],
}
const FPSIMD_MAGIC: u32 = 0x4650_8001;
const _: () = assert!(size_of::<FpsimdContext>() == 528);

/// `struct sigcontext` (arm64): the saved registers and the 4096-byte record area.
#[repr(C, align(16))]
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
struct SigContext {
    fault_address: u64,
    regs: [u64; 31],
    sp: u64,
    pc: u64,
    pstate: u64,
    _pad: u64,
    fpsimd: FpsimdContext,
    /// The end record (magic 0, size 0) and the rest of `__reserved`.
    rest: [u8; 4096 - 528],
}
const _: () = assert!(offset_of!(SigContext, fpsimd) == 288);
const _: () = assert!(size_of::<SigContext>() == 4384);

/// `struct ucontext` (arm64): `uc_sigmask` with the room for glibc's 1024-bit sigset, then
/// `uc_mcontext` at offset 176.
#[repr(C, align(16))]
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
struct UContext {
    uc_flags: u64,
    uc_link: u64,
    uc_stack: StackT,
    uc_sigmask: u64,
    unused: [u8; 120],
    _pad: u64,
    uc_mcontext: SigContext,
}
const _: () = assert!(offset_of!(UContext, uc_mcontext) == 176);

/// `struct rt_sigframe` (arm64): the siginfo, then the context.
#[repr(C, align(16))]
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
struct RtSigFrame {
    info: SigInfoBytes,
    uc: UContext,
}
const _: () = assert!(offset_of!(RtSigFrame, uc) == 128);

/// PSTATE bits user mode may set through `rt_sigreturn`: the condition flags (NZCV) only;
/// the mode stays EL0t with interrupts unmasked.
const PSTATE_USER_MASK: u64 = 0xf000_0000;

/// Builds the frame on the user stack (or the alternate stack) and points `frame` at the
/// handler.
pub fn setup(
    t: &Arc<Task>,
    frame: &mut TrapFrame,
    info: &SigInfo,
    act: &SigAction,
    mask: u64,
) -> KResult<()> {
    let sig = info.signo;
    let (ss_sp, ss_size, ss_flags) = t.sig.lock().altstack;
    let top = if act.flags & SA_ONSTACK != 0
        && ss_size != 0
        && !(ss_sp..ss_sp + ss_size).contains(&frame.sp())
    {
        ss_sp + ss_size
    } else {
        frame.sp()
    };
    // The frame record (x29, x30) on top, the rt_sigframe under it, both 16-aligned.
    let record = (top - 16) & !15;
    let base = (record - size_of::<RtSigFrame>() as u64) & !15;
    let fpu = crate::sched::current().fpu_snapshot();
    let mut fp = FpsimdContext::new_zeroed();
    fp.magic = FPSIMD_MAGIC;
    fp.size = size_of::<FpsimdContext>() as u32;
    fp.vregs.as_mut_bytes().copy_from_slice(&fpu.0[..512]);
    fp.fpcr = u32::from_le_bytes([fpu.0[512], fpu.0[513], fpu.0[514], fpu.0[515]]);
    fp.fpsr = u32::from_le_bytes([fpu.0[520], fpu.0[521], fpu.0[522], fpu.0[523]]);
    let mut rt = RtSigFrame::new_zeroed();
    rt.info = info.to_bytes();
    rt.uc.uc_stack = StackT {
        ss_sp,
        ss_flags,
        __pad: 0,
        ss_size,
    };
    rt.uc.uc_sigmask = mask;
    let m = &mut rt.uc.uc_mcontext;
    m.fault_address = if sig == SIGSEGV || sig == SIGBUS {
        info.addr
    } else {
        0
    };
    m.regs = frame.x;
    m.sp = frame.sp();
    m.pc = frame.pc();
    m.pstate = frame.spsr;
    m.fpsimd = fp;
    write_val(base, &rt)?;
    let restorer = if act.flags & SA_RESTORER != 0 {
        act.restorer
    } else {
        crate::proc::vdso::SIGRETURN_AT
    };
    write_val(record, &[frame.x[29], frame.x[30]])?;
    frame.set_sp(base);
    frame.set_pc(act.handler);
    frame.x[0] = u64::from(sig);
    frame.x[1] = base + offset_of!(RtSigFrame, info) as u64;
    frame.x[2] = base + offset_of!(RtSigFrame, uc) as u64;
    frame.x[29] = record;
    frame.x[30] = restorer;
    Ok(())
}

/// `rt_sigreturn`: restores the context `setup` saved; SP is where the handler found the
/// frame (it must leave SP as it was, as on Linux).
pub fn sigreturn(frame: &mut TrapFrame) -> KResult<u64> {
    let t = crate::proc::current_task().ok_or(Errno::EPERM)?;
    let base = frame.sp();
    if base & 15 != 0 {
        return Err(Errno::EFAULT);
    }
    let uc: UContext = read_val(base + offset_of!(RtSigFrame, uc) as u64)?;
    let m = &uc.uc_mcontext;
    let fp = &m.fpsimd;
    if fp.magic != FPSIMD_MAGIC || fp.size as usize != size_of::<FpsimdContext>() {
        return Err(Errno::EFAULT);
    }
    frame.x = m.regs;
    frame.set_sp(m.sp);
    frame.set_pc(m.pc);
    frame.spsr = m.pstate & PSTATE_USER_MASK;
    let mut st = crate::arch::user::FpuState::initial();
    st.0[..512].copy_from_slice(fp.vregs.as_bytes());
    st.0[512..516].copy_from_slice(&fp.fpcr.to_le_bytes());
    st.0[520..524].copy_from_slice(&fp.fpsr.to_le_bytes());
    st.restore();
    t.sig.lock().mask = uc.uc_sigmask & !(bit(SIGKILL) | bit(SIGSTOP));
    Ok(frame.ret())
}
