/*
 * smc - self-modifying code that a translation cache must notice.
 *
 *   patch-imm          overwrite the immediate of a MOV in a function that
 *                      has already run many times (translated, chained),
 *                      then call it again
 *   patch-opcode       overwrite the opcode byte of an instruction (add ->
 *                      sub -> xor -> or) between calls
 *   inblock-imm        a loop whose block writes the immediate of a MOV
 *                      later in the same straight-line block, then runs it
 *   inblock-opcode     same, rewriting the opcode of the later instruction
 *   copy-overwrite     copy a function into a buffer, run it, copy another
 *                      function over it, run again, and back
 *   code-page-data     a loop that writes data stored on its own code page
 *                      (no code changes: the result must simply be right)
 *
 * Prints PASS/FAIL per case and "smc: N/M cases passed"; exit 0 if all pass.
 */
#include <rt/rt.h>

typedef uint32_t (*fn0)(void);
typedef uint32_t (*fn1)(uint32_t);
typedef uint32_t (*fn2)(uint32_t, uint32_t);

uint32_t smc_imm_fn(void);
uint32_t smc_op_fn(uint32_t a, uint32_t b);
uint32_t smc_inblock_imm(uint32_t n);
uint32_t smc_inblock_op(uint32_t n);
uint32_t smc_code_page_data(uint32_t n);
extern uint8_t smc_imm_field[], smc_op_field[];
extern const uint8_t smc_op_cycle[3];
extern const uint8_t smc_copy_a[], smc_copy_a_end[];
extern const uint8_t smc_copy_b[], smc_copy_b_end[];
extern const uint8_t smc_copy_c[], smc_copy_c_end[];

#define WARM 1000       /* calls before patching, so the code is hot */

static unsigned passed, total;

/* Code buffer for copy-overwrite: its own page, away from .text. */
static uint8_t codebuf[4096] __attribute__((aligned(4096)));

static int check(const char *name, uint32_t got, uint32_t expected)
{
    if (got != expected) {
        printf("FAIL %s: got %08x expected %08x\n", name, got, expected);
        return 0;
    }
    return 1;
}

static void report(const char *name, int ok, const char *what)
{
    total++;
    if (ok) {
        passed++;
        printf("PASS %s: %s\n", name, what);
    }
}

/* Call f `WARM` times; every result must be `expected`. */
static int warm0(const char *name, fn0 f, uint32_t expected)
{
    uint32_t bad = 0, last = 0;
    for (int i = 0; i < WARM; i++) {
        last = f();
        bad |= last ^ expected;
    }
    return check(name, bad ? last : expected, expected);
}

static void test_patch_imm(void)
{
    static const uint32_t values[] = { 0x22222222, 0xDEADBEEF, 0x00000001 };
    volatile uint32_t *field = (volatile uint32_t *)smc_imm_field;
    int ok = warm0("patch-imm", smc_imm_fn, 0x11111111);

    for (unsigned i = 0; i < ARRAY_SIZE(values); i++) {
        *field = values[i];
        ok &= check("patch-imm", smc_imm_fn(), values[i]);     /* first call after */
        ok &= warm0("patch-imm", smc_imm_fn, values[i]);       /* and it stays */
    }
    report("patch-imm", ok, "a patched MOV immediate is seen by the next call");
}

static void test_patch_opcode(void)
{
    static const struct { uint8_t opcode; const char *name; } ops[] = {
        { 0x2B, "sub" }, { 0x33, "xor" }, { 0x0B, "or" }, { 0x03, "add" },
    };
    volatile uint8_t *field = smc_op_field;
    fn2 f = smc_op_fn;
    const uint32_t a = 0x12345678, b = 0x0F0F1111;
    int ok = 1;

    for (unsigned k = 0; k < ARRAY_SIZE(ops); k++) {
        uint32_t expected;
        *field = ops[k].opcode;
        switch (ops[k].opcode) {
        case 0x2B: expected = a - b; break;
        case 0x33: expected = a ^ b; break;
        case 0x0B: expected = a | b; break;
        default:   expected = a + b; break;
        }
        for (int i = 0; i < WARM / 4; i++)
            ok &= check("patch-opcode", f(a, b), expected);
        if (!ok)
            break;
    }
    report("patch-opcode", ok, "add -> sub -> xor -> or -> add, each seen at once");
}

static void test_inblock_imm(void)
{
    const uint32_t n = 1000;
    uint32_t expected = 3 * (n * (n - 1) / 2) + n;
    int ok = check("inblock-imm", smc_inblock_imm(n), expected);
    ok &= check("inblock-imm", smc_inblock_imm(7), 3 * 21 + 7);
    report("inblock-imm", ok, "a store into the running block changes a later MOV");
}

static void test_inblock_op(void)
{
    const uint32_t n = 999;
    uint32_t acc = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t v = i * 0x9E3779B9u + 1;
        switch (smc_op_cycle[i % 3]) {
        case 0x29: acc -= v; break;
        case 0x31: acc ^= v; break;
        default:   acc += v; break;
        }
    }
    report("inblock-opcode", check("inblock-opcode", smc_inblock_op(n), acc),
           "a store into the running block changes a later opcode");
}

static void load(const uint8_t *start, const uint8_t *end)
{
    memcpy(codebuf, start, (size_t)(end - start));
}

static int run_many(const char *what, uint32_t (*model)(uint32_t))
{
    fn1 f = (fn1)(uintptr_t)codebuf;
    int ok = 1;
    for (uint32_t x = 0; x < WARM / 4 && ok; x++)
        ok &= check(what, f(x), model(x));
    return ok;
}

static uint32_t model_a(uint32_t x) { return 3 * x + 7; }
static uint32_t model_b(uint32_t x) { return (x * x) ^ 0x5a5a; }
static uint32_t model_c(uint32_t x) { return x * (x + 1) / 2; }

static void test_copy_overwrite(void)
{
    int ok;
    load(smc_copy_a, smc_copy_a_end);
    ok = run_many("copy-overwrite (a)", model_a);
    load(smc_copy_b, smc_copy_b_end);
    ok &= run_many("copy-overwrite (b over a)", model_b);
    load(smc_copy_c, smc_copy_c_end);
    ok &= run_many("copy-overwrite (c over b)", model_c);
    load(smc_copy_a, smc_copy_a_end);
    ok &= run_many("copy-overwrite (a over c)", model_a);
    report("copy-overwrite", ok, "functions copied over each other in one buffer");
}

static void test_code_page_data(void)
{
    const uint32_t n = 5000;
    report("code-page-data",
           check("code-page-data", smc_code_page_data(n), n * (n + 1) / 2),
           "data written on a running code page");
}

int main(void)
{
    test_patch_imm();
    test_patch_opcode();
    test_inblock_imm();
    test_inblock_op();
    test_copy_overwrite();
    test_code_page_data();
    printf("smc: %u/%u cases passed\n", passed, total);
    return passed == total ? 0 : 1;
}
