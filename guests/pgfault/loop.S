/*
 * pgfault/loop.S - the measured loop and its #PF handler.
 *
 * void pgfault_loop(uint32_t n, uint32_t va, uint32_t *pte): n times: read
 * va (not present: #PF), then clear the PTE again and INVLPG va.
 * pf_fast, the #PF handler, writes pf_value into *pf_pte (mapping the
 * page), counts, and returns to retry the read.
 */
        .text
        .globl  pgfault_loop, pf_fast
pgfault_loop:
        pushl   %esi
        pushl   %edi
        movl    12(%esp), %ecx
        movl    16(%esp), %esi
        movl    20(%esp), %edi
1:      movl    (%esi), %eax            /* #PF, mapped, retried */
        movl    $0, (%edi)              /* unmap */
        invlpg  (%esi)
        decl    %ecx
        jnz     1b
        popl    %edi
        popl    %esi
        ret

pf_fast:
        pushl   %eax
        pushl   %ecx
        movl    pf_pte, %eax
        movl    pf_value, %ecx
        movl    %ecx, (%eax)
        incl    pf_count
        popl    %ecx
        popl    %eax
        addl    $4, %esp                /* the error code */
        iret
