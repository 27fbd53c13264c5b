/* in/loop.S - void in_loop(uint32_t n): n x IN AL, 0x80 (n >= 1). */
        .text
        .globl  in_loop
in_loop:
        movl    4(%esp), %ecx
1:      inb     $0x80, %al
        decl    %ecx
        jnz     1b
        ret
