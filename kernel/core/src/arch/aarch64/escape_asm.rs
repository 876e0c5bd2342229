//! `adros_catch` / `adros_escape` for aarch64 (see `arch/escape.rs`): the AAPCS64's
//! callee-saved registers x19–x28, the frame pointer x29, the link register x30 (where
//! `adros_catch` returns to) and the stack pointer. The kernel is built soft-float, so no
//! FP/SIMD register holds kernel state across a call.

/// Words of a `Resume`: x19–x30 and sp.
pub const RESUME_WORDS: usize = 13;

core::arch::global_asm!(
    ".globl adros_catch",
    // x0 = *mut Resume, x1 = data, x2 = extern "C" fn(data). Returns 0 after `f`
    // returned, 1 when `escape` came back here.
    "adros_catch:",
    "stp x19, x20, [x0, #0]",
    "stp x21, x22, [x0, #16]",
    "stp x23, x24, [x0, #32]",
    "stp x25, x26, [x0, #48]",
    "stp x27, x28, [x0, #64]",
    "stp x29, x30, [x0, #80]",
    "mov x9, sp",
    "str x9, [x0, #96]",
    "stp x29, x30, [sp, #-16]!",
    "mov x29, sp",
    "mov x0, x1",
    "blr x2",
    "ldp x29, x30, [sp], #16",
    "mov x0, #0",
    "ret",
    ".globl adros_escape",
    // x0 = *const Resume: back to adros_catch's caller with 1.
    "adros_escape:",
    "ldp x19, x20, [x0, #0]",
    "ldp x21, x22, [x0, #16]",
    "ldp x23, x24, [x0, #32]",
    "ldp x25, x26, [x0, #48]",
    "ldp x27, x28, [x0, #64]",
    "ldp x29, x30, [x0, #80]",
    "ldr x9, [x0, #96]",
    "mov sp, x9",
    "mov x0, #1",
    "ret",
);
