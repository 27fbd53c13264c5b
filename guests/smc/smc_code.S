/*
 * smc/smc_code.S - code that the smc guest rewrites at run time.
 *
 * Everything here lives in .text on purpose: unlike every other guest, smc
 * writes to its own code pages (paging is off, so they are writable).
 */
        .text

/* (a) uint32_t smc_imm_fn(void): returns the immediate of its MOV, which
 * smc.c overwrites through the label smc_imm_field. */
        .globl  smc_imm_fn, smc_imm_field
        .type   smc_imm_fn, @function
        .p2align 4
smc_imm_fn:
        .byte   0xB8                    /* movl $imm32, %eax */
smc_imm_field:
        .long   0x11111111
        ret
        .size   smc_imm_fn, . - smc_imm_fn

/* (a') uint32_t smc_op_fn(uint32_t a, uint32_t b): returns a OP b where OP is
 * the opcode byte at smc_op_field (0x03 add, 0x2B sub, 0x33 xor, 0x0B or:
 * the "r32, r/m32" forms). */
        .globl  smc_op_fn, smc_op_field
        .type   smc_op_fn, @function
        .p2align 4
smc_op_fn:
        movl    4(%esp), %eax
smc_op_field:
        addl    8(%esp), %eax           /* 03 44 24 08 */
        ret
        .size   smc_op_fn, . - smc_op_fn

/* (b) uint32_t smc_inblock_imm(uint32_t n): each iteration i writes 3*i+1
 * into the immediate of a MOV a few instructions further on in the same
 * straight-line block, then executes it.  Returns the sum of the values the
 * MOV produced: sum(3*i+1, i < n) when the write is noticed at once. */
        .globl  smc_inblock_imm
        .type   smc_inblock_imm, @function
        .p2align 4
smc_inblock_imm:
        pushl   %ebx
        movl    8(%esp), %ecx           /* n */
        xorl    %edx, %edx              /* sum */
        xorl    %ebx, %ebx              /* i */
1:      leal    1(%ebx,%ebx,2), %eax    /* 3*i+1 */
        movl    %eax, 2f+1              /* patch the MOV below ... */
        xorl    %eax, %eax
2:      movl    $0, %eax                /* ... and run it: EAX = 3*i+1 */
        addl    %eax, %edx
        incl    %ebx
        cmpl    %ecx, %ebx
        jb      1b
        movl    %edx, %eax
        popl    %ebx
        ret
        .size   smc_inblock_imm, . - smc_inblock_imm

/* (b') uint32_t smc_inblock_op(uint32_t n): each iteration i rewrites the
 * opcode byte of the next-but-two instruction (same block) to
 * smc_op_cycle[i % 3] (sub, xor, add of EAX into EDX), then executes it with
 * EAX = i * 0x9E3779B9 + 1.  Returns EDX. */
        .globl  smc_inblock_op
        .type   smc_inblock_op, @function
        .p2align 4
smc_inblock_op:
        pushl   %ebx
        pushl   %esi
        movl    12(%esp), %ecx          /* n */
        xorl    %edx, %edx              /* acc */
        xorl    %ebx, %ebx              /* i */
        xorl    %esi, %esi              /* i % 3 */
1:      movb    smc_op_cycle(%esi), %al
        movb    %al, 2f                 /* patch the opcode at 2: */
        imull   $0x9E3779B9, %ebx, %eax
        incl    %eax
2:      addl    %eax, %edx              /* 01 C2: becomes 29 C2 / 31 C2 / 01 C2 */
        incl    %esi
        cmpl    $3, %esi
        jne     3f
        xorl    %esi, %esi
3:      incl    %ebx
        cmpl    %ecx, %ebx
        jb      1b
        movl    %edx, %eax
        popl    %esi
        popl    %ebx
        ret
        .size   smc_inblock_op, . - smc_inblock_op

        .section .rodata
        .globl  smc_op_cycle
smc_op_cycle:
        .byte   0x29, 0x31, 0x01        /* sub, xor, add  (r/m32, r32) */
        .text

/* (c) Position-independent functions that smc.c copies into a buffer. */
        .globl  smc_copy_a, smc_copy_a_end
        .p2align 4
smc_copy_a:                             /* uint32_t f(uint32_t x) = 3*x + 7 */
        movl    4(%esp), %eax
        leal    7(%eax,%eax,2), %eax
        ret
smc_copy_a_end:

        .globl  smc_copy_b, smc_copy_b_end
        .p2align 4
smc_copy_b:                             /* uint32_t f(uint32_t x) = x*x ^ 0x5a5a */
        movl    4(%esp), %eax
        imull   %eax, %eax
        xorl    $0x5a5a, %eax
        ret
smc_copy_b_end:

        .globl  smc_copy_c, smc_copy_c_end
        .p2align 4
smc_copy_c:                             /* uint32_t f(uint32_t x) = 1 + 2 + ... + x */
        movl    4(%esp), %ecx
        xorl    %eax, %eax
        testl   %ecx, %ecx
        jz      2f
1:      addl    %ecx, %eax
        decl    %ecx
        jnz     1b
2:      ret
smc_copy_c_end:

/* (d) uint32_t smc_code_page_data(uint32_t n): adds 1..n into a counter that
 * lives in this code page (data written next to code that is running, but
 * no code changes).  Returns the counter: n*(n+1)/2. */
        .globl  smc_code_page_data
        .type   smc_code_page_data, @function
        .p2align 4
smc_code_page_data:
        movl    4(%esp), %ecx
        movl    $0, smc_code_counter
1:      addl    %ecx, smc_code_counter
        decl    %ecx
        jnz     1b
        movl    smc_code_counter, %eax
        ret
        .p2align 2
smc_code_counter:
        .long   0
        .size   smc_code_page_data, . - smc_code_page_data
