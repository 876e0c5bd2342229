//! `adros_catch` / `adros_escape` for x86_64 (see `arch/escape.rs`): the System V ABI's
//! callee-saved registers (rbx, rbp, r12–r15), the stack pointer and the return address.

/// Words of a `Resume`: rbx, rbp, r12, r13, r14, r15, rsp, rip.
pub const RESUME_WORDS: usize = 8;

core::arch::global_asm!(
    ".globl adros_catch",
    // rdi = *mut Resume, rsi = data, rdx = extern "C" fn(data). Returns 0 after `f`
    // returned, 1 when `escape` came back here.
    "adros_catch:",
    "mov [rdi + 0], rbx",
    "mov [rdi + 8], rbp",
    "mov [rdi + 16], r12",
    "mov [rdi + 24], r13",
    "mov [rdi + 32], r14",
    "mov [rdi + 40], r15",
    // The caller's stack pointer after our return, and the return address.
    "lea rax, [rsp + 8]",
    "mov [rdi + 48], rax",
    "mov rax, [rsp]",
    "mov [rdi + 56], rax",
    // Keep the call ABI's 16-byte alignment: rsp is 8 mod 16 here.
    "sub rsp, 8",
    "mov rdi, rsi",
    "call rdx",
    "add rsp, 8",
    "xor eax, eax",
    "ret",
    ".globl adros_escape",
    // rdi = *const Resume.
    "adros_escape:",
    "mov rbx, [rdi + 0]",
    "mov rbp, [rdi + 8]",
    "mov r12, [rdi + 16]",
    "mov r13, [rdi + 24]",
    "mov r14, [rdi + 32]",
    "mov r15, [rdi + 40]",
    "mov rsp, [rdi + 48]",
    "mov eax, 1",
    "cld",
    "jmp qword ptr [rdi + 56]",
);
