/*
 * divzero - microbenchmark: N divide errors.  Each iteration divides by
 * zero; the #DE handler counts and moves EIP past the DIV.
 * n=N on the command line, default 10000.
 */
#include <rt/kernel.h>

void divzero_loop(uint32_t n);
extern const uint8_t de_fast[];
volatile uint32_t de_count;

int main(void)
{
    unsigned n = rt_cmdline_n(10000);
    rt_cpu_init();
    rt_idt_set_gate(EXC_DE, RT_KCODE, (uint32_t)(uintptr_t)de_fast, SEG_TYPE_INTGATE, 0);
    if (n)
        divzero_loop(n);
    if (de_count != n) {
        printf("FAIL divzero: %u faults counted\n", de_count);
        return 1;
    }
    printf("divzero: %u iterations\n", n);
    return 0;
}
