/*
 * cli-sti - microbenchmark: N pairs of CLI; STI in ring 0.  Every IRQ is
 * masked at the PIC (rt_cpu_init), so no interrupt arrives while IF=1.
 * n=N on the command line, default 10000.
 */
#include <rt/kernel.h>

void cli_sti_loop(uint32_t n);

int main(void)
{
    unsigned n = rt_cmdline_n(10000);
    rt_cpu_init();
    if (n)
        cli_sti_loop(n);
    uint32_t f = rt_read_eflags();
    rt_cli();
    if (n && !(f & EFL_IF)) {
        printf("FAIL cli-sti: IF is clear after STI\n");
        return 1;
    }
    printf("cli-sti: %u iterations\n", n);
    return 0;
}
