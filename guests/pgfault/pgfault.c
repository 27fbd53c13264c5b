/*
 * pgfault - microbenchmark: N page faults.  Each iteration reads a page
 * that is not present; the #PF handler maps it and the read is retried;
 * then the loop unmaps the page again (PTE = 0, INVLPG).
 * n=N on the command line, default 10000.
 */
#include <rt/kernel.h>

#define VA 0x40000000u

void pgfault_loop(uint32_t n, uint32_t va, uint32_t *pte);
extern const uint8_t pf_fast[];
uint32_t *pf_pte;
uint32_t pf_value;
volatile uint32_t pf_count;

int main(void)
{
    unsigned n = rt_cmdline_n(10000);
    rt_cpu_init();
    uint32_t *pd = rt_pd_create();
    rt_map_large(pd, 0, 0, PTE_W);                      /* the kernel: 0-4 MiB */
    uint32_t *page = rt_page_alloc();
    page[0] = 0x12345678;
    rt_map_page(pd, VA, (uint32_t)(uintptr_t)page, PTE_W);
    pf_pte = rt_pte(pd, VA, 0);
    pf_value = *pf_pte;
    *pf_pte = 0;                                        /* not present */
    rt_idt_set_gate(EXC_PF, RT_KCODE, (uint32_t)(uintptr_t)pf_fast, SEG_TYPE_INTGATE, 0);
    rt_paging_enable(pd, 1);
    if (n)
        pgfault_loop(n, VA, pf_pte);
    rt_paging_disable();
    if (pf_count != n) {
        printf("FAIL pgfault: %u faults counted\n", pf_count);
        return 1;
    }
    printf("pgfault: %u iterations\n", n);
    return 0;
}
