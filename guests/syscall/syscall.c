/*
 * syscall - microbenchmark: N system calls from ring 3 (INT 0x80 through a
 * DPL-3 interrupt gate to a ring-0 handler that only counts, then IRET).
 * N comes from the command line (n=N, default 10000).  Paging is off, so
 * the ring-3 loop runs straight from the kernel image.
 */
#include <rt/kernel.h>

extern const uint8_t u_syscall_loop[], sys_fast[];
uint32_t bench_n;
volatile uint32_t sys_count;
static uint8_t user_stack[256] __attribute__((aligned(16)));

static void sys_exit(struct rt_frame *f)
{
    (void)f;
    rt_user_return(0);
}

int main(void)
{
    unsigned n = rt_cmdline_n(10000);
    rt_cpu_init();
    rt_idt_set_gate(0x80, RT_KCODE, (uint32_t)(uintptr_t)sys_fast, SEG_TYPE_INTGATE, 3);
    rt_set_handler(0x81, sys_exit);
    rt_idt_set_default(0x81, SEG_TYPE_INTGATE, 3);
    bench_n = n;
    if (n)
        rt_user_run((uint32_t)(uintptr_t)u_syscall_loop,
                    (uint32_t)(uintptr_t)(user_stack + sizeof(user_stack)), 0);
    if (sys_count != n) {
        printf("FAIL syscall: %u calls counted\n", sys_count);
        return 1;
    }
    printf("syscall: %u iterations\n", n);
    return 0;
}
