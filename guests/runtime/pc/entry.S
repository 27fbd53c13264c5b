/*
 * runtime/pc/entry.S - Multiboot v1 header and kernel entry point.
 *
 * The loader (QEMU -kernel, or dbt) enters _start in 32-bit protected mode
 * with flat segments, paging off, interrupts disabled,
 * EAX = 0x2BADB002 and EBX = physical address of the multiboot_info.
 * There is no stack: we set ESP before touching memory through it.
 */

#define MB_MAGIC    0x1BADB002
#define MB_FLAGS    0x00000003          /* bit 0: page-align modules, bit 1: memory info */
#define STACK_SIZE  16384

/* The header must lie, 4-byte aligned, in the first 8 KiB of the image; the
 * linker script puts section .multiboot first in .text. */
        .section .multiboot, "a"
        .p2align 2
multiboot_header:
        .long   MB_MAGIC
        .long   MB_FLAGS
        .long   -(MB_MAGIC + MB_FLAGS)  /* checksum: the three fields sum to 0 */

        .section .text.entry, "ax"
        .globl  _start
        .type   _start, @function
_start:
        movl    $rt_stack_top, %esp
        movl    %eax, %esi              /* keep magic and info pointer while */
        movl    %ebx, %ebp              /* .bss is cleared */

        cld
        movl    $__bss_start, %edi      /* zero .bss (includes the stack) */
        movl    $__bss_end, %ecx
        subl    %edi, %ecx
        shrl    $2, %ecx                /* the linker script 4-aligns both ends */
        xorl    %eax, %eax
        rep stosl

        pushl   $0                      /* 16-byte aligned frame, fake return */
        pushl   $0
        pushl   %ebp                    /* multiboot_info pointer */
        pushl   %esi                    /* magic */
        call    rt_pc_start             /* does not return */
1:      cli
        hlt
        jmp     1b
        .size   _start, . - _start

        .section .bss.stack, "aw", @nobits
        .p2align 12
rt_stack_bottom:
        .skip   STACK_SIZE
        .globl  rt_stack_top
rt_stack_top:
