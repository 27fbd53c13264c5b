/*
 * runtime/pc/isr.S - interrupt entry stubs, the common entry and exit path,
 * rt_setjmp/rt_longjmp and the jump to ring 3.
 *
 * Stub for vector v (16 bytes apart, from rt_isr_stubs):
 *       pushl $0        only when the CPU pushes no error code
 *       pushl $v
 *       jmp   rt_isr_common
 *
 * rt_isr_common completes struct rt_frame (rt/trap.h): PUSHAL, then DS,
 * ES, FS, GS as zero-extended doublewords; loads RT_KDATA into DS and ES,
 * clears DF and calls rt_isr_dispatch(frame).  On return it restores the
 * frame (a handler may have changed it), drops vector and error code, and
 * IRETs.
 */
#include <rt/desc.h>

        .text
        .globl  rt_isr_stubs
        .p2align 4
rt_isr_stubs:
        .set    vec, 0
        .rept   256
        .p2align 4
        .if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
        .else
        pushl   $0
        .endif
        pushl   $vec
        jmp     rt_isr_common
        .set    vec, vec + 1
        .endr

        .globl  rt_isr_common
        .type   rt_isr_common, @function
rt_isr_common:
        pushal
        pushl   $0
        movw    %ds, (%esp)
        pushl   $0
        movw    %es, (%esp)
        pushl   $0
        movw    %fs, (%esp)
        pushl   $0
        movw    %gs, (%esp)
        movl    $RT_KDATA, %eax
        movl    %eax, %ds
        movl    %eax, %es
        cld
        pushl   %esp                    /* struct rt_frame * */
        call    rt_isr_dispatch
        addl    $4, %esp
        .globl  rt_isr_return
rt_isr_return:
        popl    %gs
        popl    %fs
        popl    %es
        popl    %ds
        popal
        addl    $8, %esp                /* vector, error code */
        iret
        .size   rt_isr_common, . - rt_isr_common

/*
 * int rt_setjmp(rt_jmp_buf jb)
 * jb: 0 EBX, 4 ESI, 8 EDI, 12 EBP, 16 ESP, 20 EIP, 24 EFLAGS, 28 CS, 32 SS,
 *     36 DS, 40 ES, 44 FS, 48 GS
 */
        .globl  rt_setjmp
        .type   rt_setjmp, @function
rt_setjmp:
        movl    4(%esp), %eax
        movl    %ebx, 0(%eax)
        movl    %esi, 4(%eax)
        movl    %edi, 8(%eax)
        movl    %ebp, 12(%eax)
        leal    4(%esp), %ecx
        movl    %ecx, 16(%eax)
        movl    (%esp), %ecx
        movl    %ecx, 20(%eax)
        pushfl
        popl    24(%eax)
        xorl    %ecx, %ecx
        movl    %ecx, 28(%eax)
        movl    %ecx, 32(%eax)
        movl    %ecx, 36(%eax)
        movl    %ecx, 40(%eax)
        movl    %ecx, 44(%eax)
        movl    %ecx, 48(%eax)
        movw    %cs, 28(%eax)
        movw    %ss, 32(%eax)
        movw    %ds, 36(%eax)
        movw    %es, 40(%eax)
        movw    %fs, 44(%eax)
        movw    %gs, 48(%eax)
        xorl    %eax, %eax
        ret
        .size   rt_setjmp, . - rt_setjmp

/* void rt_longjmp(rt_jmp_buf jb, int val): never returns; val 0 becomes 1. */
        .globl  rt_longjmp
        .type   rt_longjmp, @function
rt_longjmp:
        movl    4(%esp), %edx
        movl    8(%esp), %eax
        testl   %eax, %eax
        jnz     1f
        incl    %eax
1:      movw    32(%edx), %ss           /* SS:ESP together (MOV SS shadow) */
        movl    16(%edx), %esp
        pushl   24(%edx)                /* EFLAGS, CS, EIP for the IRET */
        pushl   28(%edx)
        pushl   20(%edx)
        movl    0(%edx), %ebx
        movl    4(%edx), %esi
        movl    8(%edx), %edi
        movl    12(%edx), %ebp
        movw    40(%edx), %es
        movw    44(%edx), %fs
        movw    48(%edx), %gs
        movw    36(%edx), %ds           /* last: jb is read through DS */
        iret
        .size   rt_longjmp, . - rt_longjmp

/*
 * void rt_enter_ring3(uint32_t eip, uint32_t esp, uint32_t eflags)
 * IRET to RT_UCODE:eip with RT_UDATA:esp, the given EFLAGS, RT_UDATA in
 * DS/ES/FS/GS and the general registers cleared.  Does not return.
 */
        .globl  rt_enter_ring3
        .type   rt_enter_ring3, @function
rt_enter_ring3:
        movl    4(%esp), %eax
        movl    8(%esp), %ecx
        movl    12(%esp), %edx
        movl    $RT_UDATA, %ebx
        pushl   %ebx                    /* SS */
        pushl   %ecx                    /* ESP */
        pushl   %edx                    /* EFLAGS */
        pushl   $RT_UCODE               /* CS */
        pushl   %eax                    /* EIP */
        movl    %ebx, %ds
        movl    %ebx, %es
        movl    %ebx, %fs
        movl    %ebx, %gs
        xorl    %eax, %eax
        xorl    %ebx, %ebx
        xorl    %ecx, %ecx
        xorl    %edx, %edx
        xorl    %esi, %esi
        xorl    %edi, %edi
        xorl    %ebp, %ebp
        iret
        .size   rt_enter_ring3, . - rt_enter_ring3
