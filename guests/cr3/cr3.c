/*
 * cr3 - microbenchmark: N writes of CR3 (each one flushes the TLB),
 * alternating between two page directories that both identity-map the
 * first 8 MiB with 4 MiB pages.  n=N on the command line, default 10000.
 */
#include <rt/kernel.h>

void cr3_loop(uint32_t n, uint32_t pd_a, uint32_t pd_b);

int main(void)
{
    unsigned n = rt_cmdline_n(10000);
    uint32_t *a = rt_pd_create(), *b = rt_pd_create();
    for (uint32_t va = 0; va < (8u << 20); va += LARGE_PAGE_SIZE) {
        rt_map_large(a, va, va, PTE_W);
        rt_map_large(b, va, va, PTE_W);
    }
    rt_paging_enable(a, 1);
    if (n)
        cr3_loop(n, (uint32_t)(uintptr_t)a, (uint32_t)(uintptr_t)b);
    uint32_t expect = (uint32_t)(uintptr_t)(n & 1 ? b : a);
    if (rt_read_cr3() != expect) {
        printf("FAIL cr3: CR3 does not hold the last page directory written\n");
        return 1;
    }
    rt_paging_disable();
    printf("cr3: %u iterations\n", n);
    return 0;
}
