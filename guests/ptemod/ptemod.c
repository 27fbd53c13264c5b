/*
 * ptemod - microbenchmark: N page-table updates.  Each iteration rewrites
 * the PTE of one page (alternating between two physical pages), INVLPGs
 * it and reads the page, so the new translation is used every time.
 * n=N on the command line, default 10000.
 */
#include <rt/kernel.h>

#define VA 0x40000000u

uint32_t ptemod_loop(uint32_t n, uint32_t va, uint32_t *pte, uint32_t pte_a, uint32_t pte_b);

int main(void)
{
    unsigned n = rt_cmdline_n(10000);
    uint32_t *pd = rt_pd_create();
    rt_map_large(pd, 0, 0, PTE_W);                      /* the kernel: 0-4 MiB */
    uint32_t *a = rt_page_alloc(), *b = rt_page_alloc();
    a[0] = 1;
    b[0] = 0x10000;
    rt_map_page(pd, VA, (uint32_t)(uintptr_t)a, PTE_W);
    uint32_t *pte = rt_pte(pd, VA, 0);
    uint32_t pte_a = *pte, pte_b = ((uint32_t)(uintptr_t)b) | PTE_P | PTE_W;
    rt_paging_enable(pd, 1);
    uint32_t sum = n ? ptemod_loop(n, VA, pte, pte_a, pte_b) : 0;
    rt_paging_disable();
    /* Odd iterations (1st, 3rd, ...) map b, even ones a. */
    uint32_t expect = ((n + 1) / 2) * 0x10000u + (n / 2);
    if (sum != expect) {
        printf("FAIL ptemod: sum %08x, expected %08x\n", sum, expect);
        return 1;
    }
    printf("ptemod: %u iterations\n", n);
    return 0;
}
