/*
 * loop - a tight integer loop for measuring block chaining.
 *
 * Runs loop_mix (loop_kernel.S: four basic blocks, ~14 instructions per
 * iteration) for 50,000 x scale iterations and prints the checksum.
 * Command line: scale=N multiplies the iteration count (default 1).
 */
#include <rt/rt.h>

#define ITERATIONS 50000u

uint32_t loop_mix(uint32_t n, uint32_t seed);

int main(void)
{
    unsigned scale = rt_cmdline_uint("scale", 1);
    uint32_t n = ITERATIONS * (scale ? scale : 1);
    uint32_t sum = loop_mix(n, 0x2545F491u);

    printf("loop: %u iterations, checksum %08x\n", n, sum);
    return 0;
}
