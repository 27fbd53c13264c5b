/*
 * segments/snippets.S - segment register loads, far transfers, a 16-bit
 * code segment, LAR/LSL/VERR/VERW, ARPL, call gates and conforming code.
 * All functions follow the C calling convention (cdecl, EBX ESI EDI EBP
 * preserved) unless they are ring-3 entry points (u_*).
 */
#include "segments.h"

#define GLOBAL(x) .globl x; x
#define FUNC(x) .globl x; .type x, @function; x

        .text

/* uint32_t s_far_jmp(void): (CS after LJMP to SEL_KCODE2) << 16 | CS after
 * the LJMP back. */
FUNC(s_far_jmp):
        xorl    %eax, %eax
        ljmp    $SEL_KCODE2, $1f
1:      movw    %cs, %ax
        ljmp    $RT_KCODE, $2f
2:      shll    $16, %eax
        movw    %cs, %ax
        ret

/* uint32_t s_far_call(uint32_t *caller_cs): LCALL SEL_KCODE2:s_far_target;
 * returns (CS in the callee) << 16 | CS after the LRET, stores the CS the
 * callee found on its stack. */
FUNC(s_far_call):
        lcall   $SEL_KCODE2, $s_far_target
        movl    4(%esp), %ecx
        movl    %edx, (%ecx)
        shll    $16, %eax
        movw    %cs, %ax
        ret
s_far_target:
        xorl    %eax, %eax
        movw    %cs, %ax
        movzwl  4(%esp), %edx           /* the caller's CS (low 16 bits) */
        lret

/* uint32_t s_far_call_mem(void): the same through a far pointer in memory. */
FUNC(s_far_call_mem):
        lcall   *far_ptr_kcode2
        shll    $16, %eax
        movw    %cs, %ax
        ret

/* uint32_t s_far_call_acode(void): LCALL to the code segment whose
 * accessed bit is clear. */
FUNC(s_far_call_acode):
        lcall   $SEL_ACODE, $s_far_target
        ret

/* uint32_t s_based_call(void): LCALL into a code segment with base
 * CODE_BASE; the callee returns its own EIP (a segment offset). */
FUNC(s_based_call):
        lcall   $SEL_CODE_BASED, $(s_based_target - CODE_BASE)
        ret
s_based_target:
        call    1f
GLOBAL(s_based_label):
1:      popl    %eax
        lret

/* uint32_t s_xonly_run(void): jump into the execute-only segment, read CS
 * there, come back. */
FUNC(s_xonly_run):
        xorl    %eax, %eax
        ljmp    $SEL_XONLY, $1f
1:      movw    %cs, %ax
        ljmp    $RT_KCODE, $2f
2:      ret

/* void s_xonly_read(void *): read memory through CS while CS is execute-
 * only: #GP(0) (checked only with strict=1). */
FUNC(s_xonly_read):
        ljmp    $SEL_XONLY, $1f
1:
GLOBAL(s_xonly_read_insn):
        movl    %cs:far_ptr_kcode2, %eax
        ljmp    $RT_KCODE, $2f
2:      ret

/* void s_code16(uint32_t out[3]): LCALL into a 16-bit code segment.
 * out[0] = EAX after INC AX on 0x1234FFFF, out[1] = ESP change of a PUSH
 * imm (16-bit operand size), out[2] = the IP a near CALL pushed. */
FUNC(s_code16):
        pushl   %ebx
        movl    $0x1234FFFF, %eax
        lcall   $SEL_CODE16, $0
        movl    8(%esp), %ebx
        movl    %eax, 0(%ebx)
        movl    %ecx, 4(%ebx)
        movl    %edx, 8(%ebx)
        popl    %ebx
        ret

        .code16
GLOBAL(code16_start):
        incw    %ax                     /* 16-bit: EAX[31:16] untouched */
        movl    %esp, %ecx
        pushw   $0x5678                 /* 2 bytes */
        subl    %esp, %ecx
        popw    %bx
        call    1f                      /* pushes a 16-bit IP */
GLOBAL(code16_ret_ip):
1:      popw    %dx
        movzwl  %dx, %edx
        jmp     2f
        hlt                             /* skipped */
2:      lretl                           /* 32-bit far return to the caller */
GLOBAL(code16_end):
        .code32

/* void s_lxs(uint32_t out[15]): LES, LFS, LGS, LDS from far pointers, a
 * read through each new segment, and LSS. */
FUNC(s_lxs):
        pushl   %ebx
        pushl   %esi
        pushl   %edi
        pushl   %ebp
        movl    20(%esp), %edi
        les     fp_small, %eax
        movl    %es:(%eax), %ebx
        movl    %eax, 0(%edi)
        movl    %ebx, 4(%edi)
        movl    $0, 8(%edi)
        movw    %es, 8(%edi)
        lfs     fp_expdown32, %eax
        movl    %fs:(%eax), %ebx
        movl    %eax, 12(%edi)
        movl    %ebx, 16(%edi)
        movl    $0, 20(%edi)
        movw    %fs, 20(%edi)
        lgs     fp_expdown16, %eax
        movl    %gs:(%eax), %ebx
        movl    %eax, 24(%edi)
        movl    %ebx, 28(%edi)
        movl    $0, 32(%edi)
        movw    %gs, 32(%edi)
        lds     fp_small2, %esi
        movl    (%esi), %ebx            /* through DS = SEL_SMALL */
        xorl    %edx, %edx
        movw    %ds, %dx
        movl    $RT_KDATA, %eax
        movl    %eax, %ds
        movl    %esi, 36(%edi)
        movl    %ebx, 40(%edi)
        movl    %edx, 44(%edi)
        movl    %esp, %ebp
        lss     fp_altstack, %esp
        pushl   $0xABCD
        movl    %esp, %ecx
        xorl    %edx, %edx
        movw    %ss, %dx
        movl    %ebp, %esp              /* SS is RT_KDATA again (flat) */
        movl    %ecx, 48(%edi)
        movl    %edx, 52(%edi)
        movl    (%ecx), %eax
        movl    %eax, 56(%edi)
        movl    $RT_KDATA, %eax
        movl    %eax, %es
        movl    %eax, %fs
        movl    %eax, %gs
        popl    %ebp
        popl    %edi
        popl    %esi
        popl    %ebx
        ret

/* void s_lds_bad(void *): LDS with a selector past the GDT limit: #GP,
 * ESI (0x11111111) must be left alone. */
FUNC(s_lds_bad):
        pushl   %esi
        movl    $0x11111111, %esi
GLOBAL(s_lds_bad_insn):
        lds     fp_beyond, %esi
        popl    %esi
        ret

/* void s_pushpop(uint32_t out[6]) */
FUNC(s_pushpop):
        pushl   %edi
        movl    8(%esp), %edi
        movl    %esp, %ecx
        pushl   %ds                     /* 32-bit operand size: 4 bytes */
        subl    %esp, %ecx
        movzwl  (%esp), %eax            /* only bits 15:0 are defined */
        popl    %ds
        movl    %ecx, 0(%edi)
        movl    %eax, 4(%edi)
        movl    %esp, %ecx
        pushw   %fs                     /* 16-bit operand size: 2 bytes */
        subl    %esp, %ecx
        movzwl  (%esp), %eax
        popw    %fs
        movl    %ecx, 8(%edi)
        movl    %eax, 12(%edi)
        pushl   $SEL_SMALL
        popl    %es                     /* POP ES loads a selector */
        xorl    %eax, %eax
        movw    %es, %ax
        movl    %eax, 16(%edi)
        movl    $RT_KDATA, %eax
        movl    %eax, %es
        popl    %edi
        ret

/* void s_pop_bad(void *): POP DS of a selector past the GDT limit: #GP
 * with ESP still pointing at the selector. */
FUNC(s_pop_bad):
        pushl   $SEL_BEYOND
        movl    %esp, pop_bad_esp
GLOBAL(s_pop_bad_insn):
        popl    %ds
        ret

/* uint32_t s_arpl(uint32_t dst, uint32_t src): ZF << 16 | the new dst */
FUNC(s_arpl):
        movl    4(%esp), %eax
        movl    8(%esp), %ecx
        arpl    %cx, %ax
        setz    %dl
        movzbl  %dl, %edx
        shll    $16, %edx
        movzwl  %ax, %eax
        orl     %edx, %eax
        ret

/* void s_probe(uint32_t sel, uint32_t out[6]): LAR, LSL, VERR, VERW.
 * out[0] = LAR ZF, out[1] = LAR result (0xDEADBEEF if not written),
 * out[2] = LSL ZF, out[3] = LSL result, out[4] = VERR ZF, out[5] = VERW ZF. */
FUNC(s_probe):
        pushl   %edi
        movl    8(%esp), %ecx
        movl    12(%esp), %edi
        movl    $0xDEADBEEF, %eax
        larl    %ecx, %eax
        setz    %dl
        movzbl  %dl, %edx
        movl    %edx, 0(%edi)
        movl    %eax, 4(%edi)
        movl    $0xDEADBEEF, %eax
        lsll    %ecx, %eax
        setz    %dl
        movzbl  %dl, %edx
        movl    %edx, 8(%edi)
        movl    %eax, 12(%edi)
        verr    %cx
        setz    %dl
        movzbl  %dl, %edx
        movl    %edx, 16(%edi)
        verw    %cx
        setz    %dl
        movzbl  %dl, %edx
        movl    %edx, 20(%edi)
        popl    %edi
        ret

/* void s_access(struct access *a): a = { sel, offset, write }: load GS
 * with sel and read or write 4 bytes at gs:offset. */
FUNC(s_access):
        movl    4(%esp), %edx
        movl    0(%edx), %eax
        movl    4(%edx), %ecx
        cmpl    $0, 8(%edx)
        movl    %eax, %gs
        jne     1f
GLOBAL(s_access_read):
        movl    %gs:(%ecx), %eax
        jmp     2f
GLOBAL(s_access_write):
1:      movl    %eax, %gs:(%ecx)
2:      movl    $RT_KDATA, %eax
        movl    %eax, %gs
        ret

/* void s_load_ds(uint32_t sel) (via rt_try_call's arg) */
FUNC(s_load_ds):
        movl    4(%esp), %eax
GLOBAL(s_load_ds_insn):
        movl    %eax, %ds
        movl    $RT_KDATA, %eax
        movl    %eax, %ds
        ret

/* ---- call gate target (ring 0, entered from ring 3 with 2 params) ---- */
FUNC(cg_target):
        movl    $0, cg_seen_cs
        movw    %cs, cg_seen_cs
        movl    $0, cg_seen_ss
        movw    %ss, cg_seen_ss
        movl    4(%esp), %eax
        movl    %eax, cg_caller_cs
        movl    8(%esp), %eax
        movl    %eax, cg_param0
        movl    12(%esp), %eax
        movl    %eax, cg_param1
        movl    16(%esp), %eax
        movl    %eax, cg_caller_esp
        movl    20(%esp), %eax
        movl    %eax, cg_caller_ss
        movl    $0xC0DE, %eax
        lret    $8                      /* pops the parameters on both stacks */

/* ---- conforming target: runs at the caller's CPL ---- */
FUNC(conf_target):
        xorl    %eax, %eax
        movw    %cs, %ax
        lret

/* ---- ring 3 (paging is off: user code may live anywhere) ---- */
FUNC(u_callgate):
        movl    %esp, %esi
        pushl   $0x1111
        pushl   $0x2222
        movl    %esp, u_esp_at_call
        lcall   $(SEL_CALLGATE | 3), $0
        subl    %esp, %esi              /* 0: LRET 8 popped the parameters */
        movl    %esi, u_esp_delta
        movl    $0, u_cs_after
        movw    %cs, u_cs_after
        movl    %eax, %ebx
        xorl    %eax, %eax              /* RT_SYS_EXIT(result) */
        int     $0x80

FUNC(u_conforming):
        lcall   $SEL_CONFORM, $conf_target      /* RPL 0 selector from CPL 3 */
        movl    %eax, %ebx
        movl    $0, u_cs_after
        movw    %cs, u_cs_after
        xorl    %eax, %eax
        int     $0x80

FUNC(u_call_kcode):
GLOBAL(u_call_kcode_insn):
        lcall   $RT_KCODE, $conf_target        /* non-conforming DPL 0: #GP */
        xorl    %eax, %eax
        int     $0x80

FUNC(u_load_kdata):
        movl    $RT_KDATA, %eax
GLOBAL(u_load_kdata_insn):
        movl    %eax, %ds
        xorl    %eax, %eax
        int     $0x80

        .section .rodata
        .p2align 3
far_ptr_kcode2:
        .long   s_far_target
        .word   SEL_KCODE2
        .p2align 3
fp_small:       .long 0x10
                .word SEL_SMALL
        .p2align 3
fp_small2:      .long 0x20
                .word SEL_SMALL
        .p2align 3
fp_expdown32:   .long 0x1000
                .word SEL_EXPDOWN32
        .p2align 3
fp_expdown16:   .long 0x1004
                .word SEL_EXPDOWN16
        .p2align 3
fp_beyond:      .long 0
                .word SEL_BEYOND
        .p2align 3
fp_altstack:    .long alt_stack_top
                .word RT_KDATA

        .data
        .p2align 2
GLOBAL(pop_bad_esp):    .long 0
GLOBAL(cg_seen_cs):     .long 0
GLOBAL(cg_seen_ss):     .long 0
GLOBAL(cg_caller_cs):   .long 0
GLOBAL(cg_param0):      .long 0
GLOBAL(cg_param1):      .long 0
GLOBAL(cg_caller_esp):  .long 0
GLOBAL(cg_caller_ss):   .long 0
GLOBAL(u_esp_at_call):  .long 0
GLOBAL(u_esp_delta):    .long 0
GLOBAL(u_cs_after):     .long 0
        .p2align 4
        .skip   256
GLOBAL(alt_stack_top):
