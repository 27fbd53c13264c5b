/* cli-sti/loop.S - void cli_sti_loop(uint32_t n): n x (CLI; STI), ends with IF=1. */
        .text
        .globl  cli_sti_loop
cli_sti_loop:
        movl    4(%esp), %ecx
1:      cli
        sti
        decl    %ecx
        jnz     1b
        ret
