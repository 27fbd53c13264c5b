/*
 * callret - microbenchmark: N near calls and returns (the callee only
 * counts).  n=N on the command line, default 10000.
 */
#include <rt/rt.h>

uint32_t callret_loop(uint32_t n);

int main(void)
{
    unsigned n = rt_cmdline_n(10000);
    uint32_t calls = n ? callret_loop(n) : 0;
    if (calls != n) {
        printf("FAIL callret: %u calls counted\n", calls);
        return 1;
    }
    printf("callret: %u iterations\n", n);
    return 0;
}
