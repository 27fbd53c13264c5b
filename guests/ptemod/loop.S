/*
 * ptemod/loop.S - uint32_t ptemod_loop(uint32_t n, uint32_t va, uint32_t *pte,
 *                                      uint32_t pte_a, uint32_t pte_b):
 * n times: write the PTE for va (alternating pte_b, pte_a), INVLPG va and
 * read the first word of the page now mapped.  Returns the sum of the
 * words read.
 */
        .text
        .globl  ptemod_loop
ptemod_loop:
        pushl   %ebx
        pushl   %esi
        pushl   %edi
        pushl   %ebp
        movl    20(%esp), %ecx
        movl    24(%esp), %esi
        movl    28(%esp), %edi
        movl    32(%esp), %ebx          /* pte_a */
        movl    36(%esp), %ebp          /* pte_b */
        xorl    %eax, %eax
1:      movl    %ebp, (%edi)
        invlpg  (%esi)
        addl    (%esi), %eax
        xchgl   %ebx, %ebp
        decl    %ecx
        jnz     1b
        popl    %ebp
        popl    %edi
        popl    %esi
        popl    %ebx
        ret
