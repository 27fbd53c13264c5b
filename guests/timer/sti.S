/*
 * timer/sti.S - the STI shadow: with an interrupt pending and IF=0,
 * STI; NOP lets the NOP execute and takes the interrupt before the
 * instruction after it, so the saved EIP is t_sti_after.
 */
        .text
        .globl  t_sti_shadow, t_sti_after
        .type   t_sti_shadow, @function
t_sti_shadow:
        sti
        nop
t_sti_after:
        cli
        ret
        .size   t_sti_shadow, . - t_sti_shadow
