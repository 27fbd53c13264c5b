/*
 * runtime/lib/div64.c - 64-bit division by shift-and-subtract, so guests
 * never need libgcc's __udivdi3.
 */
#include <rt/rt.h>

uint64_t rt_udivmod64(uint64_t n, uint64_t d, uint64_t *rem)
{
    uint64_t q = 0, r = 0;

    if (d == 0) {               /* undefined; mirror the hardware's #DE loudly */
        printf("rt_udivmod64: division by zero\n");
        exit(255);
    }
    if ((d >> 32) == 0 && (n >> 32) == 0) {     /* fast path: 32-bit divide */
        uint32_t n32 = (uint32_t)n, d32 = (uint32_t)d;
        if (rem)
            *rem = n32 % d32;
        return n32 / d32;
    }
    for (int i = 63; i >= 0; i--) {
        r = (r << 1) | ((n >> i) & 1);
        if (r >= d) {
            r -= d;
            q |= (uint64_t)1 << i;
        }
    }
    if (rem)
        *rem = r;
    return q;
}
