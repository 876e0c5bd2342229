// AdrOS aarch64 boot stub (QEMU `virt`, loaded as an ELF through `-kernel`, or as the flat
// arm64 `Image` made from that ELF: the header below comes first in both).
//
// QEMU enters `_start` at its physical address with the MMU off, at EL1 (or EL2 with
// `virtualization=on`). x0 holds the device tree's physical address when QEMU boots a Linux
// `Image`; for an ELF it is 0 and QEMU put the tree at the start of RAM (the Rust side looks
// there). The stub:
//   1. drops from EL2 to EL1 if needed (AArch64 EL1, the EL1 timers usable, CNTVOFF = 0);
//   2. clears the BSS and takes the boot stack (both at their physical addresses);
//   3. builds the boot translation tables (4 KiB granule, 48-bit VAs, 1 GiB blocks):
//        TTBR0: identity map of physical 0..4 GiB (devices below 1 GiB, RAM above) — only
//               until the jump to the higher half;
//        TTBR1: the linear map of RAM, PHYS_OFFSET + pa for pa in 1..4 GiB (never executable),
//               the device window MMIO_OFFSET + pa for pa in 0..1 GiB (Device-nGnRnE),
//               the kernel image at KERNEL_VMA + pa (the GiB holding it);
//   4. turns the MMU and caches on, jumps to the higher half, sets VBAR_EL1 and calls
//      `kmain(dtb_pa)` on the boot stack's higher-half address.
// Secondary CPUs (`_secondary_start`, started by smp.rs through PSCI) do 1 and 4 with the
// same tables and call `adros_ap_main(index)` on a kernel stack.
// The values match mm/layout.rs; paging.rs edits these same tables afterwards.

.equ KERNEL_VMA,      0xFFFFFFFF80000000
.equ DESC_TABLE,      0x3
.equ BLOCK_NORMAL,    0x705            // valid block, AttrIdx 1, inner shareable, AF
.equ BLOCK_DEVICE,    0x401            // valid block, AttrIdx 0, AF
.equ XN,              0x0060000000000000  // PXN | UXN
.equ MAIR_VALUE,      0x44FF00         // attr0 Device-nGnRnE, attr1 WB normal, attr2 NC normal
// T0SZ = T1SZ = 16, 4 KiB granules, WB-WA inner shareable walks; IPS filled in below.
.equ TCR_VALUE,       0xB5103510
// M, C, SA, I and the RES1 bits of ARMv8.0; alignment checks off; UCT (bit 15) and UCI
// (bit 26) as Linux sets them: user space reads CTR_EL0 and cleans/invalidates caches by VA
// (dc cvau, ic ivau), which libgcc's __clear_cache does for code it writes.
.equ SCTLR_VALUE,     0x34D0980D

.section .text.boot, "ax"

// EL2 -> EL1 if needed (AArch64 EL1, the EL1 timers usable, CNTVOFF = 0), every exception
// masked; FP/SIMD left trapping (the kernel is soft-float: a stray use faults loudly).
.macro DROP_TO_EL1
    msr     daifset, #0xf
    mrs     x1, CurrentEL
    lsr     x1, x1, #2
    cmp     x1, #2
    b.ne    1f
    mov     x1, #(1 << 31)
    msr     hcr_el2, x1
    mov     x1, #3
    msr     cnthctl_el2, x1
    msr     cntvoff_el2, xzr
    mov     x1, #0x3c5                  // EL1h, D A I F masked
    msr     spsr_el2, x1
    adr     x1, 1f
    msr     elr_el2, x1
    eret
1:
    msr     cpacr_el1, xzr
.endm

// The arm64 Linux `Image` header (Documentation/arch/arm64/booting.rst) at the image's first
// byte, so that the flat binary (`objcopy -O binary`) boots through QEMU's Linux path, which
// loads it at RAM + text_offset (the ELF's load address), passes the device tree in x0 and
// puts `-initrd` and `-append` in it. An ELF boot enters `_start` directly.
.global adros_image_header
adros_image_header:
    b       _start                      // code0
    .long   0                           // code1
    .quad   0x200000                    // text_offset: LOAD_PA - RAM base (linker.ld)
    .quad   __image_size                // image_size, with the BSS
    .quad   0x2                         // flags: little endian, 4 KiB pages, near RAM base
    .quad   0, 0, 0                     // res2-res4
    .ascii  "ARM\x64"                   // magic
    .long   0                           // res5

.global _start
_start:
    mov     x19, x0                     // device tree (0 for an ELF boot)
    mov     x22, #0                     // the boot CPU
    DROP_TO_EL1
    // BSS (physical).
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
2:  cmp     x1, x2
    b.hs    3f
    str     xzr, [x1], #8
    b       2b
3:
    adrp    x1, boot_stack_top
    add     x1, x1, :lo12:boot_stack_top
    mov     sp, x1

    // TTBR0: identity map, L0[0] -> l1_ident.
    adrp    x1, boot_l0_ident
    adrp    x2, boot_l1_ident
    orr     x3, x2, #DESC_TABLE
    str     x3, [x1]
    mov     x3, #BLOCK_DEVICE           // [0]: 0..1 GiB, devices
    movz    x4, #(XN >> 48), lsl #48
    orr     x3, x3, x4
    str     x3, [x2]
    mov     x5, #1                      // [1..4]: 1..4 GiB, RAM
4:  lsl     x3, x5, #30
    mov     x6, #BLOCK_NORMAL
    orr     x3, x3, x6
    str     x3, [x2, x5, lsl #3]
    add     x5, x5, #1
    cmp     x5, #4
    b.lo    4b

    // TTBR1 root.
    adrp    x1, boot_l0_high
    // L0[256] -> l1_linear: PHYS_OFFSET + 1..4 GiB, never executable.
    adrp    x2, boot_l1_linear
    orr     x3, x2, #DESC_TABLE
    str     x3, [x1, #(256 * 8)]
    mov     x5, #1
5:  lsl     x3, x5, #30
    mov     x6, #BLOCK_NORMAL
    orr     x3, x3, x6
    orr     x3, x3, x4
    str     x3, [x2, x5, lsl #3]
    add     x5, x5, #1
    cmp     x5, #4
    b.lo    5b
    // L0[416] -> l1_mmio: MMIO_OFFSET + 0..1 GiB, Device-nGnRnE.
    adrp    x2, boot_l1_mmio
    orr     x3, x2, #DESC_TABLE
    str     x3, [x1, #(416 * 8)]
    mov     x3, #BLOCK_DEVICE
    orr     x3, x3, x4
    str     x3, [x2]
    // L0[511] -> l1_kernel: the GiB holding the image at KERNEL_VMA + pa.
    adrp    x2, boot_l1_kernel
    orr     x3, x2, #DESC_TABLE
    str     x3, [x1, #(511 * 8)]
    adr     x5, _start
    lsr     x5, x5, #30                 // the image's GiB
    lsl     x3, x5, #30
    mov     x6, #BLOCK_NORMAL
    orr     x3, x3, x6
    movz    x7, #0x8000, lsl #16        // KERNEL_VMA's GiB index in its L1: (va >> 30) & 511
    movk    x7, #0xffff, lsl #32
    movk    x7, #0xffff, lsl #48
    add     x7, x7, x5, lsl #30
    lsr     x7, x7, #30
    and     x7, x7, #511
    str     x3, [x2, x7, lsl #3]

    adrp    x20, boot_l0_ident
    adrp    x21, boot_l0_high

    // MMU on with TTBR0 = x20, TTBR1 = x21 (physical); x22: 0 on the boot CPU, 1 on others.
enable_mmu:
    ldr     x1, =MAIR_VALUE
    msr     mair_el1, x1
    ldr     x1, =TCR_VALUE
    mrs     x2, id_aa64mmfr0_el1
    and     x2, x2, #0x7                // PARange -> IPS
    bfi     x1, x2, #32, #3
    msr     tcr_el1, x1
    msr     ttbr0_el1, x20
    msr     ttbr1_el1, x21
    dsb     ish
    isb
    tlbi    vmalle1
    dsb     nsh
    isb
    ldr     x1, =SCTLR_VALUE
    msr     sctlr_el1, x1
    mov     x1, #2                      // CNTKCTL_EL1.EL0VCTEN: the vDSO reads CNTVCT_EL0
    msr     cntkctl_el1, x1
    isb
    ldr     x1, =6f
    br      x1
6:
    // Higher half from here on.
    cbnz    x22, 8f
    ldr     x1, =boot_stack_top
    mov     sp, x1
    ldr     x1, =boot_emergency_top     // fatal exceptions' stack (exceptions.rs)
    msr     sp_el0, x1
    ldr     x1, =adros_vectors
    msr     vbar_el1, x1
    isb
    mov     x29, xzr
    mov     x30, xzr
    mov     x0, x19
    bl      kmain
7:  wfi
    b       7b
8:
    // A secondary CPU: the stack its starter prepared, then Rust.
    ldr     x1, =ADROS_AP_STACK_TOP
    ldr     x1, [x1]
    mov     sp, x1
    ldr     x1, =adros_vectors
    msr     vbar_el1, x1
    isb
    mov     x29, xzr
    mov     x30, xzr
    mov     x0, x19
    bl      adros_ap_main
    b       7b

// Secondary CPUs enter here from PSCI CPU_ON (physical address, MMU off) with their CPU
// index in x0; the starter published the kernel's TTBR1 and the stack (cleaned to memory).
.global _secondary_start
_secondary_start:
    mov     x19, x0
    mov     x22, #1
    DROP_TO_EL1
    adrp    x20, boot_l0_ident
    adrp    x1, ADROS_AP_TTBR1
    add     x1, x1, :lo12:ADROS_AP_TTBR1
    ldr     x21, [x1]
    b       enable_mmu
.ltorg

// Switches TTBR1 to the table at x0 (physical) from the identity map, so no higher-half
// translation is in use while it changes (paging::protect_kernel): first an empty table and
// a TLB flush, then the new one. IRQs masked; no stack used; returns to the higher half.
.global adros_replace_ttbr1
adros_replace_ttbr1:
    ldr     x1, =KERNEL_VMA
    adr     x2, 1f
    sub     x2, x2, x1
    br      x2
1:  adrp    x3, boot_l0_empty
    msr     ttbr1_el1, x3
    isb
    tlbi    vmalle1is
    dsb     ish
    isb
    msr     ttbr1_el1, x0
    isb
    tlbi    vmalle1is
    dsb     ish
    isb
    ret
.ltorg

.section .bss.boot, "aw", @nobits
.balign 4096
.global boot_l0_ident
boot_l0_ident:   .skip 4096
boot_l1_ident:   .skip 4096
.global boot_l0_high
boot_l0_high:    .skip 4096
boot_l1_linear:  .skip 4096
boot_l1_mmio:    .skip 4096
boot_l1_kernel:  .skip 4096
boot_l0_empty:   .skip 4096
// Left unmapped by paging::protect_kernel: an overflow of the boot stack faults.
.global boot_stack_guard
boot_stack_guard:
    .skip 4096
.global boot_stack_bottom
boot_stack_bottom:
    .skip 64 * 1024
.global boot_stack_top
boot_stack_top:
    .skip 16 * 1024
boot_emergency_top:
