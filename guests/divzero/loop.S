/*
 * divzero/loop.S - void divzero_loop(uint32_t n): n x DIV by zero; the #DE
 * handler de_fast counts and skips the 2-byte DIV.
 */
        .text
        .globl  divzero_loop, de_fast
divzero_loop:
        pushl   %ebx
        movl    8(%esp), %ecx
        xorl    %ebx, %ebx
1:      movl    $1, %eax
        xorl    %edx, %edx
        divl    %ebx                    /* F7 F3: #DE */
        decl    %ecx
        jnz     1b
        popl    %ebx
        ret

de_fast:
        addl    $2, (%esp)              /* skip the DIV */
        incl    de_count
        iret
