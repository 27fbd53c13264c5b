/*
 * paging/higher.S - code that runs at its higher-half alias.
 *
 * uint32_t hh_run(void): jumps to the alias (address + 0xC0000000) of the
 * next instruction, finds its own EIP there with CALL/POP and returns it
 * (the RET goes back to the caller's ordinary address).
 */
        .text
        .globl  hh_run, hh_label
        .type   hh_run, @function
hh_run:
        movl    $1f, %eax
        addl    $0xC0000000, %eax
        jmp     *%eax
1:      call    hh_label
hh_label:
        popl    %eax
        ret
        .size   hh_run, . - hh_run
