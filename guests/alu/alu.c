/*
 * alu - self-checking integer instruction test with known answers.
 *
 * Each case (alu_cases.c) runs one variant (alu_variants.S) on fixed inputs
 * and compares EAX..EDI, the defined EFLAGS bits, the ESP change and (for
 * memory variants) a hash of the scratch memory with answers recorded on a
 * real x86 CPU by gen/gen_alu.py.
 *
 * Output: one line per group ("PASS add (46 cases)"), failing cases listed
 * before their group's FAIL line, then "alu: N/M cases passed".
 * Exit code 0 if every case passes, 1 otherwise.
 *
 * Built with -DALU_GEN (by gen_alu.py, on the host platform) it instead
 * prints the raw results of every case: "R <index> <8 regs> <espd> <hash>".
 */
#include <rt/rt.h>
#include "alu.h"

#define MAX_FAIL_LINES_PER_GROUP 8

struct alu_io *alu_cur_io;
uint32_t alu_saved_esp, alu_esp_after;

static struct alu_io io;

static uint32_t fnv1a(const uint8_t *p, unsigned n)
{
    uint32_t h = 2166136261u;
    while (n--)
        h = (h ^ *p++) * 16777619u;
    return h;
}

static void run_case(const struct alu_case *c)
{
    const struct alu_variant *v = &alu_variants[c->variant];

    memset(&io, 0, sizeof(io));
    memcpy(io.in, c->in, sizeof(io.in));
    if (c->mem)
        memcpy(io.mem, alu_mem_images[c->mem - 1], ALU_MEM_SIZE);
    v->fn(&io);
}

static uint32_t case_mem_hash(const struct alu_case *c)
{
    return alu_variants[c->variant].uses_mem ? fnv1a(io.mem, ALU_MEM_SIZE) : 0;
}

#ifdef ALU_GEN

int main(void)
{
    for (unsigned i = 0; i < alu_ncases; i++) {
        const struct alu_case *c = &alu_cases[i];
        run_case(c);
        printf("R %u", i);
        for (int r = 0; r < ALU_NREGS; r++)
            printf(" %08x", io.out[r]);
        printf(" %08x %08x\n", (uint32_t)io.esp_delta, case_mem_hash(c));
    }
    return 0;
}

#else

static const char *const reg_names[ALU_NREGS] = {
    "eax", "ecx", "edx", "ebx", "ebp", "esi", "edi", "eflags"
};

/* Compare the results in `io` with the case's known answer; on a mismatch
 * print one line naming every differing field, plus the inputs. */
static int check_case(const struct alu_case *c, const char *group, unsigned idx, int verbose)
{
    char got[160], exp[160];
    int glen = 0, elen = 0, bad = 0;

    for (int r = 0; r < ALU_NREGS; r++) {
        uint32_t g = io.out[r], e = c->out[r];
        if (r == R_EFLAGS)
            g &= c->flags_mask;
        if (g != e) {
            glen += snprintf(got + glen, sizeof(got) - glen, " %s=%08x", reg_names[r], g);
            elen += snprintf(exp + elen, sizeof(exp) - elen, " %s=%08x", reg_names[r], e);
            bad = 1;
        }
    }
    if (io.esp_delta != c->esp_delta) {
        glen += snprintf(got + glen, sizeof(got) - glen, " espdelta=%d", io.esp_delta);
        elen += snprintf(exp + elen, sizeof(exp) - elen, " espdelta=%d", c->esp_delta);
        bad = 1;
    }
    uint32_t h = case_mem_hash(c);
    if (h != c->mem_hash) {
        glen += snprintf(got + glen, sizeof(got) - glen, " memhash=%08x", h);
        elen += snprintf(exp + elen, sizeof(exp) - elen, " memhash=%08x", c->mem_hash);
        bad = 1;
    }
    if (bad && verbose) {
        printf("FAIL %s case %u [%s]: got%s expected%s (flags mask %04x)\n", group, idx,
               alu_variants[c->variant].text, got, exp, c->flags_mask);
        printf("     inputs: eax=%08x ecx=%08x edx=%08x ebx=%08x ebp=%08x esi=%08x edi=%08x"
               " eflags=%08x\n", c->in[0], c->in[1], c->in[2], c->in[3], c->in[4], c->in[5],
               c->in[6], c->in[7]);
    }
    return !bad;
}

int main(void)
{
    unsigned passed = 0, i = 0;

    while (i < alu_ncases) {
        unsigned group = alu_variants[alu_cases[i].variant].group;
        const char *name = alu_groups[group];
        unsigned n = 0, ok = 0;

        for (; i < alu_ncases && alu_variants[alu_cases[i].variant].group == group; i++, n++) {
            run_case(&alu_cases[i]);
            ok += check_case(&alu_cases[i], name, n, n - ok < MAX_FAIL_LINES_PER_GROUP);
        }
        if (ok == n)
            printf("PASS %s (%u cases)\n", name, n);
        else
            printf("FAIL %s (%u of %u cases failed)\n", name, n - ok, n);
        passed += ok;
    }
    printf("alu: %u/%u cases passed\n", passed, alu_ncases);
    return passed == alu_ncases ? 0 : 1;
}

#endif
