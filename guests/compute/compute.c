/*
 * compute - a compute-bound integer benchmark.
 *
 * Four kernels, each printing a checksum:
 *   crc32     table-driven CRC-32 (IEEE) over a 64 KiB pseudo-random buffer
 *   sieve     sieve of Eratosthenes below 500,000 (count and sum of primes)
 *   matmul    64x64 32-bit integer matrix products, fed back into each other
 *   heapsort  heapsort of 25,000 pseudo-random 32-bit values, then verified
 *
 * About 30 million guest instructions at scale=1; the command line option
 * scale=N repeats every kernel N times as often.  Self-checks (CRC of
 * "123456789", prime count, sortedness) make the exit code 1 on failure.
 */
#include <rt/rt.h>
#include <rt/paging.h>

#define CRC_BUF_SIZE   65536u
#define CRC_PASSES     8u
#define SIEVE_LIMIT    500000u
#define SIEVE_PASSES   1u
#define MAT_N          64u
#define MAT_ROUNDS     3u
#define SORT_N         25000u
#define SORT_PASSES    1u

static int failures;

static uint32_t rng_state;

static void rng_seed(uint32_t s)
{
    rng_state = s ? s : 1;
}

static uint32_t rng_next(void)          /* xorshift32 */
{
    uint32_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return rng_state = x;
}

static void expect(const char *what, uint32_t got, uint32_t expected)
{
    if (got != expected) {
        printf("FAIL %s: got %08x expected %08x\n", what, got, expected);
        failures++;
    }
}

/* ---- CRC-32 ---- */

static uint32_t crc_table[256];
static uint8_t crc_buf[CRC_BUF_SIZE];

static void crc32_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc32_update(uint32_t crc, const uint8_t *p, uint32_t n)
{
    crc = ~crc;
    while (n--)
        crc = crc_table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

static void run_crc32(unsigned scale)
{
    crc32_init();
    expect("crc32 check value", crc32_update(0, (const uint8_t *)"123456789", 9), 0xCBF43926u);

    rng_seed(0x1234567u);
    for (uint32_t i = 0; i < CRC_BUF_SIZE; i += 4) {
        uint32_t r = rng_next();
        memcpy(crc_buf + i, &r, 4);
    }
    uint32_t crc = 0, passes = CRC_PASSES * scale;
    for (uint32_t k = 0; k < passes; k++)
        crc = crc32_update(crc, crc_buf, CRC_BUF_SIZE);
    printf("crc32: %u passes over %u bytes: crc %08x\n", passes, CRC_BUF_SIZE, crc);
}

/* ---- sieve ---- */

static uint8_t composite[SIEVE_LIMIT];

static void run_sieve(unsigned scale)
{
    uint32_t count = 0, sum = 0, passes = SIEVE_PASSES * scale;

    for (uint32_t k = 0; k < passes; k++) {
        memset(composite, 0, sizeof(composite));
        count = sum = 0;
        for (uint32_t i = 2; i < SIEVE_LIMIT; i++) {
            if (composite[i])
                continue;
            count++;
            sum += i;
            if (i <= SIEVE_LIMIT / i)
                for (uint32_t j = i * i; j < SIEVE_LIMIT; j += i)
                    composite[j] = 1;
        }
    }
    expect("sieve prime count", count, 41538);
    printf("sieve: %u passes below %u: %u primes, sum %08x\n", passes, SIEVE_LIMIT, count, sum);
}

/* ---- matrix multiply ---- */

static uint32_t mat_a[MAT_N][MAT_N], mat_b[MAT_N][MAT_N], mat_c[MAT_N][MAT_N];

static void run_matmul(unsigned scale)
{
    uint32_t rounds = MAT_ROUNDS * scale, sum = 0;

    rng_seed(0xC0FFEEu);
    for (uint32_t i = 0; i < MAT_N; i++)
        for (uint32_t j = 0; j < MAT_N; j++) {
            mat_a[i][j] = rng_next() & 0xFFFF;
            mat_b[i][j] = rng_next() & 0xFFFF;
        }
    for (uint32_t r = 0; r < rounds; r++) {
        for (uint32_t i = 0; i < MAT_N; i++)
            for (uint32_t j = 0; j < MAT_N; j++) {
                uint32_t acc = 0;
                for (uint32_t k = 0; k < MAT_N; k++)
                    acc += mat_a[i][k] * mat_b[k][j];
                mat_c[i][j] = acc;
            }
        /* feed back: A = C (scaled down), so every round depends on the last */
        for (uint32_t i = 0; i < MAT_N; i++)
            for (uint32_t j = 0; j < MAT_N; j++)
                mat_a[i][j] = mat_c[i][j] >> 16;
    }
    for (uint32_t i = 0; i < MAT_N; i++)
        for (uint32_t j = 0; j < MAT_N; j++)
            sum = sum * 31 + mat_c[i][j];
    printf("matmul: %u products of %ux%u: checksum %08x\n", rounds, MAT_N, MAT_N, sum);
}

/* ---- heapsort ---- */

static uint32_t sort_buf[SORT_N];

static void sift_down(uint32_t *a, uint32_t root, uint32_t n)
{
    uint32_t v = a[root];
    for (;;) {
        uint32_t child = 2 * root + 1;
        if (child >= n)
            break;
        if (child + 1 < n && a[child + 1] > a[child])
            child++;
        if (a[child] <= v)
            break;
        a[root] = a[child];
        root = child;
    }
    a[root] = v;
}

static void heapsort(uint32_t *a, uint32_t n)
{
    for (uint32_t i = n / 2; i-- > 0;)
        sift_down(a, i, n);
    for (uint32_t end = n; end-- > 1;) {
        uint32_t t = a[0];
        a[0] = a[end];
        a[end] = t;
        sift_down(a, 0, end);
    }
}

static void run_heapsort(unsigned scale)
{
    uint32_t passes = SORT_PASSES * scale, sum = 0;

    rng_seed(0xBADC0DEu);
    for (uint32_t k = 0; k < passes; k++) {
        for (uint32_t i = 0; i < SORT_N; i++)
            sort_buf[i] = rng_next();
        heapsort(sort_buf, SORT_N);
        uint32_t unsorted = 0;
        for (uint32_t i = 1; i < SORT_N; i++)
            unsorted += sort_buf[i - 1] > sort_buf[i];
        expect("heapsort order", unsorted, 0);
        for (uint32_t i = 0; i < SORT_N; i++)
            sum = (sum ^ sort_buf[i]) * 0x01000193u;
    }
    printf("heapsort: %u sorts of %u values: checksum %08x\n", passes, SORT_N, sum);
}

int main(void)
{
    unsigned scale = rt_cmdline_uint("scale", 1);
    if (scale == 0)
        scale = 1;
    /* paging=1: the same work with paging on (4 KiB pages over the kernel's
     * first 4 MiB, 4 MiB pages above), so every access goes through the TLB. */
    if (rt_cmdline_uint("paging", 0))
        rt_paging_enable(rt_pd_kernel(0), 1);

    printf("compute: scale=%u\n", scale);
    run_crc32(scale);
    run_sieve(scale);
    run_matmul(scale);
    run_heapsort(scale);
    printf("compute: %s\n", failures ? "FAILED" : "done");
    return failures ? 1 : 0;
}
