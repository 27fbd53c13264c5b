/*
 * in - microbenchmark: N port reads from ring 0 (IN AL, 0x80, the POST
 * diagnostic port: no side effects).  n=N on the command line, default
 * 10000.
 */
#include <rt/rt.h>

void in_loop(uint32_t n);

int main(void)
{
    unsigned n = rt_cmdline_n(10000);
    if (n)
        in_loop(n);
    printf("in: %u iterations\n", n);
    return 0;
}
