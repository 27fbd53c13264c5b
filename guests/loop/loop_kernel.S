/*
 * loop/loop_kernel.S - the measured loop, in assembly so that its block
 * structure does not depend on the compiler:
 *
 *   A: xorshift32 step on x, test bit 0      (10 instructions, ends in JZ)
 *   B: acc += x                               (2, ends in JMP)
 *   C: acc ^= x; acc = rol(acc, 3)            (2, falls through)
 *   D: --n, loop                              (2, ends in JNZ)
 *
 * uint32_t loop_mix(uint32_t n, uint32_t seed)   n >= 1
 */
        .text
        .globl  loop_mix
        .type   loop_mix, @function
        .p2align 4
loop_mix:
        pushl   %ebx
        movl    8(%esp), %ecx           /* n */
        movl    12(%esp), %eax          /* x = seed (nonzero) */
        xorl    %edx, %edx              /* acc */
.Lblock_a:
        movl    %eax, %ebx
        shll    $13, %ebx
        xorl    %ebx, %eax
        movl    %eax, %ebx
        shrl    $17, %ebx
        xorl    %ebx, %eax
        movl    %eax, %ebx
        shll    $5, %ebx
        xorl    %ebx, %eax
        testb   $1, %al
        jz      .Lblock_c
.Lblock_b:
        addl    %eax, %edx
        jmp     .Lblock_d
.Lblock_c:
        xorl    %eax, %edx
        roll    $3, %edx
.Lblock_d:
        decl    %ecx
        jnz     .Lblock_a
        movl    %edx, %eax
        popl    %ebx
        ret
        .size   loop_mix, . - loop_mix
