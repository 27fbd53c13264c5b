/* callret/loop.S - uint32_t callret_loop(uint32_t n): n x (CALL f; f: INC; RET). */
        .text
        .globl  callret_loop
callret_loop:
        movl    4(%esp), %ecx
        xorl    %eax, %eax
1:      call    2f
        decl    %ecx
        jnz     1b
        ret
2:      incl    %eax
        ret
