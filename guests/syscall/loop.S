/*
 * syscall/loop.S - the measured loop and its handler.
 *
 * u_syscall_loop runs in ring 3: bench_n times INT 0x80, then INT 0x81
 * (the runtime's exit path back to the kernel).  sys_fast is the INT 0x80
 * handler: it counts the call and IRETs, nothing else.
 */
        .text
        .globl  u_syscall_loop, sys_fast
u_syscall_loop:
        movl    bench_n, %ecx
1:      int     $0x80
        decl    %ecx
        jnz     1b
        int     $0x81
        jmp     .

sys_fast:
        incl    sys_count
        iret
