/* Two entries, one path. Multiboot2: GRUB enters `_start` in 32-bit protected mode with paging
 * off, EAX = 0x36d76289 and EBX = physical address of the boot information. PVH (the x86/HVM
 * direct boot ABI QEMU's `-kernel` uses for an ELF kernel with the XEN_ELFNOTE_PHYS32_ENTRY
 * note below): `pvh_start` is entered in the same mode with EBX = physical address of the
 * `hvm_start_info`; it puts the PVH magic in EAX and joins `_start`. kmain gets the magic in
 * RDI and the structure's address in RSI and asks `bootinfo` to read whichever it is.
 * We build just enough page tables to reach long mode: the first 1 GiB identity mapped
 * (for this stub) and mirrored at 0xFFFFFFFF80000000 (the kernel's link address), then
 * jump to `kernel_entry64` in the higher half. The Rust side builds the real tables. */

.section .multiboot2, "a"
.align 8
mb2_header_start:
    .long 0xE85250D6
    .long 0
    .long mb2_header_end - mb2_header_start
    .long -(0xE85250D6 + 0 + (mb2_header_end - mb2_header_start))
    /* end tag */
    .align 8
    .short 0
    .short 0
    .long 8
mb2_header_end:

/* The PVH entry note (Xen's elfnote.h: XEN_ELFNOTE_PHYS32_ENTRY = 18, name "Xen"): the 32-bit
 * physical entry point. QEMU reads the descriptor as a 64-bit value for an ELF64 kernel. */
.section .note.Xen, "a", @note
.align 4
    .long 4                     /* namesz: "Xen\0" */
    .long 8                     /* descsz */
    .long 18                    /* type: XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .align 4
    .quad pvh_start
    .align 4

.section .boot.bss, "aw", @nobits
.align 4096
.global boot_pml4
boot_pml4:      .skip 4096
boot_pdpt_low:  .skip 4096
boot_pdpt_high: .skip 4096
boot_pd:        .skip 4096

.section .boot.rodata, "a"
.align 16
boot_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF    /* 0x08: 64-bit code */
    .quad 0x00CF92000000FFFF    /* 0x10: data */
boot_gdt_end:
boot_gdt_ptr:
    .short boot_gdt_end - boot_gdt - 1
    .long boot_gdt

.section .boot.text, "ax"
.code32
.global _start
_start:
    cli
    cld
    mov esp, offset boot_stack_top_phys
    mov edi, eax                /* multiboot magic, kept for kernel_entry64 */
    mov esi, ebx                /* boot information (physical) */

    cmp eax, 0x36d76289
    je 4f
    cmp eax, 0x336ec578         /* set by pvh_start below */
    jne no_multiboot
4:

    /* Long mode available? */
    mov eax, 0x80000000
    cpuid
    cmp eax, 0x80000001
    jb no_long_mode
    mov eax, 0x80000001
    cpuid
    test edx, (1 << 29)
    jz no_long_mode

    /* Zero the four boot tables. */
    push edi
    mov edi, offset boot_pml4
    xor eax, eax
    mov ecx, 4096
    rep stosd
    pop edi

    mov eax, offset boot_pdpt_low
    or eax, 3
    mov [boot_pml4], eax
    mov eax, offset boot_pdpt_high
    or eax, 3
    mov [boot_pml4 + 511 * 8], eax
    mov eax, offset boot_pd
    or eax, 3
    mov [boot_pdpt_low], eax
    mov [boot_pdpt_high + 510 * 8], eax

    /* 512 x 2 MiB pages: 0 .. 1 GiB, present + writable + huge. */
    xor ecx, ecx
1:
    mov eax, ecx
    shl eax, 21
    or eax, 0x83
    mov [boot_pd + ecx * 8], eax
    inc ecx
    cmp ecx, 512
    jne 1b

    /* PAE on, CR3, EFER.LME + NXE, paging on with write protect. */
    mov eax, cr4
    or eax, (1 << 5)
    mov cr4, eax
    mov eax, offset boot_pml4
    mov cr3, eax
    mov ecx, 0xC0000080
    rdmsr
    or eax, (1 << 8) | (1 << 11)
    wrmsr
    mov eax, cr0
    or eax, (1 << 31) | (1 << 16)
    mov cr0, eax

    lgdt [boot_gdt_ptr]
    .att_syntax
    ljmp $0x08, $long_mode_low
    .intel_syntax noprefix

/* PVH: 32-bit protected mode, paging off, EBX = hvm_start_info (its magic is checked by
 * kmain). EAX is undefined on entry, so say which protocol this is. */
.global pvh_start
pvh_start:
    mov eax, 0x336ec578
    jmp _start

no_multiboot:
    mov al, 'M'
    jmp boot_fail
no_long_mode:
    mov al, 'L'
boot_fail:
    /* Say why on COM1, then exit QEMU through isa-debug-exit (status 0x7f -> 255). */
    mov dx, 0x3f8
    out dx, al
    mov al, '!'
    out dx, al
    mov al, 0x7f
    mov dx, 0xf4
    out dx, al
2:
    hlt
    jmp 2b

.code64
long_mode_low:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor ax, ax
    mov fs, ax
    mov gs, ax
    movabs rax, offset kernel_entry64
    jmp rax

.section .text.kernel_entry64, "ax"
kernel_entry64:
    movabs rsp, offset boot_stack_top
    xor ebp, ebp
    /* rdi = magic, rsi = boot information physical address */
    call kmain
3:
    cli
    hlt
    jmp 3b

.section .bss.boot_stack, "aw", @nobits
.align 4096
.global boot_stack_guard
boot_stack_guard:
    .skip 4096
.global boot_stack_bottom
boot_stack_bottom:
    .skip 65536
.global boot_stack_top
boot_stack_top:
