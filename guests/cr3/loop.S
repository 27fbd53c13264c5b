/* cr3/loop.S - void cr3_loop(uint32_t n, uint32_t pd_a, uint32_t pd_b):
 * n writes of CR3, alternating between two page directories; ends on pd_a
 * if n is even. */
        .text
        .globl  cr3_loop
cr3_loop:
        pushl   %esi
        pushl   %edi
        movl    12(%esp), %ecx
        movl    16(%esp), %esi
        movl    20(%esp), %edi
1:      movl    %edi, %cr3
        xchgl   %esi, %edi
        decl    %ecx
        jnz     1b
        popl    %edi
        popl    %esi
        ret
