/*
 * segments - protected-mode segmentation: descriptor loads and their
 * faults, expand-up and expand-down data segments, read-only data and
 * execute-only code, far JMP/CALL/RET within ring 0 (also into a segment
 * with a non-zero base), a call gate from ring 3 to ring 0 with parameter
 * copying, a conforming code segment called from ring 3, LAR/LSL/VERR/VERW
 * over many selectors at CPL 0 and CPL 3 (checked against a model of the
 * SDM's rules), LDS/LES/LFS/LGS/LSS, PUSH/POP of segment registers, ARPL,
 * accessed bits, and a 16-bit code segment.
 *
 * Paging stays off, so ring-3 code can run from the kernel image.
 * Limit and type checks on memory accesses (which QEMU's TCG does not
 * perform) run only with `strict=1`; by default they print SKIP lines.
 */
#include <rt/kernel.h>
#include "segments.h"

typedef void snippet_fn(void *);

uint32_t s_far_jmp(void);
uint32_t s_far_call(uint32_t *caller_cs);
uint32_t s_far_call_mem(void);
uint32_t s_far_call_acode(void);
uint32_t s_based_call(void);
uint32_t s_xonly_run(void);
uint32_t s_arpl(uint32_t dst, uint32_t src);
void s_probe(uint32_t sel, uint32_t out[6]);
snippet_fn s_code16, s_lxs, s_lds_bad, s_pushpop, s_pop_bad, s_access, s_load_ds, s_xonly_read;
extern const uint8_t s_based_label[], code16_start[], code16_end[], code16_ret_ip[],
    s_lds_bad_insn[], s_pop_bad_insn[], s_access_read[], s_access_write[], s_load_ds_insn[],
    s_xonly_read_insn[], cg_target[], u_callgate[], u_conforming[], u_call_kcode[],
    u_call_kcode_insn[], u_load_kdata[], u_load_kdata_insn[];
extern uint32_t pop_bad_esp, cg_seen_cs, cg_seen_ss, cg_caller_cs, cg_param0, cg_param1,
    cg_caller_esp, cg_caller_ss, u_esp_at_call, u_esp_delta, u_cs_after;

#define A(p) ((uint32_t)(uintptr_t)(p))

static unsigned passed, total, strict;
static uint32_t buf[1024] __attribute__((aligned(4096)));
static uint64_t ldt[1];
static uint8_t user_stack[4096] __attribute__((aligned(16)));
#define USER_ESP (A(user_stack) + sizeof(user_stack) - 16)

static void report(const char *name, int ok, const char *what)
{
    total++;
    passed += ok;
    printf("%s %s: %s\n", ok ? "PASS" : "FAIL", name, what);
}

static void skip(const char *name, const char *why)
{
    printf("SKIP %s: strict=1 only (%s)\n", name, why);
}

static void explain(const struct rt_fault *f)
{
    if (f->vector == RT_NO_FAULT)
        printf("  got: no exception\n");
    else
        printf("  got: %s (vector %u) error %04x eip %08x cs %04x\n", rt_vector_name(f->vector),
               f->vector, f->error, f->eip, f->cs);
}

static int fault_is(const struct rt_fault *f, unsigned vector, uint32_t error, const void *eip)
{
    return f->vector == vector && f->error == error && (!eip || f->eip == A(eip));
}

/* ---- segment loads, limits and types ---- */
struct access {
    uint32_t sel, offset, write;
};

static void access_check(const char *name, const char *what, uint32_t sel, uint32_t offset,
                         int write, int should_fault)
{
    struct access a = { sel, offset, (uint32_t)write };
    struct rt_fault f;
    rt_try_call(s_access, &a, &f);
    int ok = should_fault ? fault_is(&f, EXC_GP, 0, write ? s_access_write : s_access_read)
                          : f.vector == RT_NO_FAULT;
    report(name, ok, what);
    if (!ok)
        explain(&f);
}

static void load_check(const char *name, const char *what, uint32_t sel, int fault_vec,
                       uint32_t error)
{
    struct rt_fault f;
    rt_try_call(s_load_ds, (void *)(uintptr_t)sel, &f);
    int ok = fault_vec < 0 ? f.vector == RT_NO_FAULT
                           : fault_is(&f, (unsigned)fault_vec, error, s_load_ds_insn);
    report(name, ok, what);
    if (!ok)
        explain(&f);
}

static void test_loads(void)
{
    load_check("load data", "MOV DS, a present DPL-0 data segment", SEL_SMALL, -1, 0);
    load_check("load readable code", "MOV DS, a readable code segment", RT_KCODE, -1, 0);
    load_check("load null", "MOV DS, 0 (a null selector may be loaded)", 0, -1, 0);
    load_check("load ldt entry", "MOV DS, 0004 (entry 0 of the LDT)", SEL_LDT_DATA, -1, 0);
    load_check("load beyond gdt", "MOV DS, 0100 (past the GDT limit): #GP(0100)", SEL_BEYOND,
               EXC_GP, SEL_BEYOND);
    load_check("load beyond ldt", "MOV DS, 000c (past the LDT limit): #GP(000c)", 0x000C, EXC_GP,
               0x000C);
    load_check("load execute-only", "MOV DS, an execute-only code segment: #GP(0060)", SEL_XONLY,
               EXC_GP, SEL_XONLY);
    load_check("load system", "MOV DS, the LDT descriptor: #GP(0080)", SEL_LDT, EXC_GP, SEL_LDT);
    load_check("load rpl 3", "MOV DS, 0013 at CPL 0 (RPL 3 > DPL 0): #GP(0010)", RT_KDATA | 3,
               EXC_GP, RT_KDATA);
    load_check("load not present", "MOV DS, a not-present segment: #NP(00a0)", SEL_NP_DATA,
               EXC_NP, SEL_NP_DATA);
    load_check("load callgate", "MOV DS, a call gate: #GP(0068)", SEL_CALLGATE, EXC_GP,
               SEL_CALLGATE);
}

static void test_limits(void)
{
    /* In-limit accesses: what every implementation must allow. */
    access_check("expand-up inside", "limit FFF: 4-byte read at FFC", SEL_SMALL, 0xFFC, 0, 0);
    access_check("expand-down inside", "expand-down limit FFF, B=1: read at 1000",
                 SEL_EXPDOWN32, 0x1000, 0, 0);
    access_check("expand-down top", "expand-down B=1: read at FFFFFFFC", SEL_EXPDOWN32,
                 0xFFFFFFFC, 0, 0);
    access_check("expand-down 16 inside", "expand-down limit FFF, B=0: read at FFFC",
                 SEL_EXPDOWN16, 0xFFFC, 0, 0);
    access_check("read-only read", "read-only data segment: read", SEL_RODATA, 0x100, 0, 0);
    access_check("code read", "readable code segment in GS: read", RT_KCODE, A(buf), 0, 0);

    if (!strict) {
        skip("expand-up limit", "QEMU TCG does not check segment limits");
        skip("expand-down limit", "QEMU TCG does not check segment limits");
        skip("expand-down 16 limit", "QEMU TCG does not check segment limits");
        skip("read-only write", "QEMU TCG does not check data segment write permission");
        skip("code write", "QEMU TCG does not check data segment write permission");
        skip("execute-only read", "QEMU TCG does not check CS reads");
        return;
    }
    access_check("expand-up limit", "limit FFF: 4-byte read at FFD: #GP(0)", SEL_SMALL, 0xFFD, 0, 1);
    access_check("expand-down limit", "expand-down limit FFF: read at FFC: #GP(0)", SEL_EXPDOWN32,
                 0xFFC, 0, 1);
    access_check("expand-down 16 limit", "expand-down B=0: read at FFFD crosses FFFF: #GP(0)",
                 SEL_EXPDOWN16, 0xFFFD, 0, 1);
    access_check("read-only write", "read-only data segment: write: #GP(0)", SEL_RODATA, 0x100, 1, 1);
    access_check("code write", "code segment in GS: write: #GP(0)", RT_KCODE, A(buf), 1, 1);
    struct rt_fault f;
    rt_try_call(s_xonly_read, 0, &f);
    int ok = fault_is(&f, EXC_GP, 0, s_xonly_read_insn) && f.cs == SEL_XONLY;
    report("execute-only read", ok, "CS-relative read in an execute-only segment: #GP(0)");
    if (!ok)
        explain(&f);
}

/* ---- far transfers ---- */
static void test_far(void)
{
    uint32_t v = s_far_jmp();
    report("far jmp", v == ((uint32_t)SEL_KCODE2 << 16 | RT_KCODE),
           "LJMP to 0030 runs with CS=0030, LJMP back gives 0008");
    uint32_t caller = 0;
    v = s_far_call(&caller);
    report("far call", v == ((uint32_t)SEL_KCODE2 << 16 | RT_KCODE) && caller == RT_KCODE,
           "LCALL 0030: callee CS=0030, caller CS 0008 on the stack, LRET back to 0008");
    v = s_far_call_mem();
    report("far call indirect", v == ((uint32_t)SEL_KCODE2 << 16 | RT_KCODE),
           "LCALL through a far pointer in memory");
    v = s_based_call();
    report("code segment base", v == A(s_based_label) - CODE_BASE,
           "LCALL into a code segment with base 00100000: EIP is the offset in the segment");
    if (v != A(s_based_label) - CODE_BASE)
        printf("  got: eip %08x, expected %08x\n", v, A(s_based_label) - CODE_BASE);
    v = s_xonly_run();
    report("execute-only run", v == SEL_XONLY, "LJMP into an execute-only segment runs code there");
}

static void test_code16(void)
{
    uint32_t out[3] = { 0, 0, 0 };
    struct rt_fault f;
    rt_try_call(s_code16, out, &f);
    int ok = f.vector == RT_NO_FAULT && out[0] == 0x12340000 && out[1] == 2 &&
             out[2] == A(code16_ret_ip) - A(code16_start);
    report("16-bit code", ok,
           "LCALL into a D=0 segment: INC AX wraps in 16 bits, PUSH imm and CALL push 2 bytes, "
           "LRETL returns");
    if (!ok) {
        printf("  got: eax %08x push %u ip %04x\n", out[0], out[1], out[2]);
        explain(&f);
    }
}

/* ---- LDS/LES/LFS/LGS/LSS, PUSH/POP ---- */
static void test_lxs(void)
{
    uint32_t o[15];
    memset(o, 0, sizeof(o));
    s_lxs(o);
    report("les", o[0] == 0x10 && o[1] == buf[4] && o[2] == SEL_SMALL,
           "LES: ES=0040, offset 10, reads buf[4] through the new base");
    report("lfs", o[3] == 0x1000 && o[4] == buf[0] && o[5] == SEL_EXPDOWN32,
           "LFS: FS=0048 (expand-down), offset 1000 reads buf[0]");
    report("lgs", o[6] == 0x1004 && o[7] == buf[1] && o[8] == SEL_EXPDOWN16,
           "LGS: GS=0050 (expand-down, B=0), offset 1004 reads buf[1]");
    report("lds", o[9] == 0x20 && o[10] == buf[8] && o[11] == SEL_SMALL,
           "LDS: DS=0040, offset 20 reads buf[8]");
    extern uint8_t alt_stack_top[];
    report("lss", o[12] == A(alt_stack_top) - 4 && o[13] == RT_KDATA && o[14] == 0xABCD,
           "LSS: SS:ESP switched together, PUSH lands on the new stack");

    struct rt_fault f;
    rt_try_call(s_lds_bad, 0, &f);
    int ok = fault_is(&f, EXC_GP, SEL_BEYOND, s_lds_bad_insn) && f.frame.esi == 0x11111111;
    report("lds fault", ok, "LDS with selector 0100: #GP(0100), ESI not written");
    if (!ok)
        explain(&f);

    uint32_t p[5];
    memset(p, 0, sizeof(p));
    s_pushpop(p);
    report("push ds", p[0] == 4 && p[1] == RT_KDATA,
           "PUSH DS (32-bit): ESP-4, selector in bits 15:0");
    report("pushw fs", p[2] == 2 && p[3] == RT_KDATA, "PUSHW FS (16-bit): ESP-2");
    report("pop es", p[4] == SEL_SMALL, "POP ES loads the selector from the stack");

    rt_try_call(s_pop_bad, 0, &f);
    ok = fault_is(&f, EXC_GP, SEL_BEYOND, s_pop_bad_insn) && f.esp == pop_bad_esp;
    report("pop ds fault", ok, "POP DS of 0100: #GP(0100), ESP not incremented");
    if (!ok)
        explain(&f);
}

static void test_arpl(void)
{
    report("arpl raise", s_arpl(0x0010, 0x0003) == 0x10013, "ARPL 0010, 0003: 0013, ZF=1");
    report("arpl keep", s_arpl(0x0013, 0x0001) == 0x0013, "ARPL 0013, 0001: unchanged, ZF=0");
    report("arpl equal", s_arpl(0x0011, 0x0021) == 0x0011, "ARPL 0011, 0021: unchanged, ZF=0");
}

static void test_accessed(void)
{
    uint32_t before = (uint32_t)(rt_gdt[18] >> 40) & 1;
    rt_load_es(SEL_ADATA);
    uint32_t after = (uint32_t)(rt_gdt[18] >> 40) & 1;
    rt_load_es(RT_KDATA);
    report("accessed data", before == 0 && after == 1, "MOV ES sets the descriptor's accessed bit");
    if (!strict) {
        skip("accessed code", "QEMU TCG does not set the accessed bit on far CALL/JMP");
        return;
    }
    before = (uint32_t)(rt_gdt[19] >> 40) & 1;
    uint32_t cs = s_far_call_acode();
    after = (uint32_t)(rt_gdt[19] >> 40) & 1;
    report("accessed code", before == 0 && after == 1 && cs == SEL_ACODE,
           "LCALL sets the code descriptor's accessed bit");
}

/* ---- LAR/LSL/VERR/VERW ---- */
static const uint16_t probe_sels[] = {
    0x0000, RT_KCODE, RT_KDATA, RT_KDATA | 3, RT_UCODE, RT_UDATA, RT_TSS_SEL, SEL_KCODE2,
    SEL_SMALL, SEL_EXPDOWN32, SEL_EXPDOWN16, SEL_RODATA, SEL_XONLY, SEL_CALLGATE, SEL_CONFORM,
    SEL_CODE16, SEL_LDT, SEL_UDATA_RO, SEL_UDATA_RO | 3, SEL_LDT_DATA, 0x000C, SEL_BEYOND,
};
#define NPROBES ARRAY_SIZE(probe_sels)

static uint32_t probe_cpl3[NPROBES][6];

/* What the SDM says LAR/LSL/VERR/VERW return for `sel` at `cpl`. */
static void model(uint16_t sel, unsigned cpl, uint32_t exp[6])
{
    exp[0] = 0; exp[1] = 0xDEADBEEF; exp[2] = 0; exp[3] = 0xDEADBEEF; exp[4] = 0; exp[5] = 0;
    unsigned idx = sel >> 3, rpl = sel & 3;
    uint64_t d;
    if (sel & 4) {
        if (idx >= ARRAY_SIZE(ldt))
            return;
        d = ldt[idx];
    } else {
        if (idx == 0 || idx >= RT_GDT_ENTRIES)
            return;
        d = rt_gdt[idx];
    }
    uint32_t hi = (uint32_t)(d >> 32), lo = (uint32_t)d;
    unsigned type = (hi >> 8) & 0xF, s = (hi >> 12) & 1, dpl = (hi >> 13) & 3;
    uint32_t limit = (lo & 0xFFFF) | (hi & 0xF0000);
    if (hi & (1u << 23))
        limit = (limit << 12) | 0xFFF;
    int priv = dpl >= cpl && dpl >= rpl;
    int conforming = s && (type & 0xC) == 0xC;
    int lar_ok, lsl_ok;
    if (s) {
        lar_ok = lsl_ok = conforming || priv;
    } else {
        lar_ok = priv && (type == 1 || type == 2 || type == 3 || type == 4 || type == 5 ||
                          type == 9 || type == 0xB || type == 0xC);
        lsl_ok = priv && (type == 1 || type == 2 || type == 3 || type == 9 || type == 0xB);
    }
    if (lar_ok) {
        exp[0] = 1;
        exp[1] = hi & 0x00F0FF00;
    }
    if (lsl_ok) {
        exp[2] = 1;
        exp[3] = limit;
    }
    if (s) {
        int code = type & 8;
        int readable = code ? (type & 2) != 0 : 1;
        int writable = !code && (type & 2);
        exp[4] = readable && (conforming || priv);
        exp[5] = writable && priv;
    }
}

static void probe_report(unsigned cpl, uint32_t (*got)[6])
{
    unsigned good = 0;
    for (unsigned i = 0; i < NPROBES; i++) {
        uint32_t exp[6];
        model(probe_sels[i], cpl, exp);
        int ok = memcmp(exp, got[i], sizeof(exp)) == 0;
        good += ok;
        printf("  cpl%u %04x: lar %u %08x  lsl %u %08x  verr %u  verw %u%s\n", cpl, probe_sels[i],
               got[i][0], got[i][1], got[i][2], got[i][3], got[i][4], got[i][5],
               ok ? "" : "  MISMATCH");
        if (!ok)
            printf("  expected:  lar %u %08x  lsl %u %08x  verr %u  verw %u\n", exp[0], exp[1],
                   exp[2], exp[3], exp[4], exp[5]);
    }
    char what[80];
    snprintf(what, sizeof(what), "LAR/LSL/VERR/VERW on %u selectors match the SDM rules",
             (unsigned)NPROBES);
    report(cpl ? "probe cpl 3" : "probe cpl 0", good == NPROBES, what);
}

static void user_probe_main(void)
{
    for (unsigned i = 0; i < NPROBES; i++)
        s_probe(probe_sels[i], probe_cpl3[i]);
    rt_sys1(RT_SYS_EXIT, 0);
    for (;;)
        ;
}

static void test_probes(void)
{
    uint32_t got[NPROBES][6];
    for (unsigned i = 0; i < NPROBES; i++)
        s_probe(probe_sels[i], got[i]);
    probe_report(0, got);
    rt_user_run(A(user_probe_main), USER_ESP, 0);
    probe_report(3, probe_cpl3);
}

/* ---- ring 3: call gate, conforming code ---- */
static void run_user(void *entry)
{
    rt_user_run(A(entry), USER_ESP, 0);
}

static void test_ring3(void)
{
    int v = rt_user_run(A(u_callgate), USER_ESP, 0);
    int ok = v == 0xC0DE && cg_seen_cs == RT_KCODE && cg_seen_ss == RT_KDATA &&
             (cg_caller_cs & 0xFFFF) == RT_UCODE && cg_param0 == 0x2222 && cg_param1 == 0x1111 &&
             cg_caller_esp == u_esp_at_call && (cg_caller_ss & 0xFFFF) == RT_UDATA &&
             u_esp_delta == 0 && u_cs_after == RT_UCODE;
    report("call gate", ok,
           "LCALL through a DPL-3 gate: CPL 0 on the TSS stack, 2 parameters copied, caller "
           "SS:ESP and CS saved, LRET 8 back to ring 3");
    if (!ok)
        printf("  got: ret %x cs %x ss %x caller %x params %x %x esp %s ss %x delta %u cs %x\n",
               (unsigned)v, cg_seen_cs, cg_seen_ss, cg_caller_cs, cg_param0, cg_param1,
               cg_caller_esp == u_esp_at_call ? "ok" : "wrong", cg_caller_ss, u_esp_delta,
               u_cs_after);

    v = rt_user_run(A(u_conforming), USER_ESP, 0);
    report("conforming", v == (SEL_CONFORM | 3) && u_cs_after == RT_UCODE,
           "LCALL from ring 3 to a DPL-0 conforming segment: CS=0073 (CPL stays 3)");

    struct rt_fault f;
    rt_try_call(run_user, (void *)u_call_kcode, &f);
    ok = fault_is(&f, EXC_GP, RT_KCODE, u_call_kcode_insn) && f.cs == RT_UCODE;
    report("call ring 0 from ring 3", ok, "LCALL 0008 (non-conforming, DPL 0) from ring 3: #GP(0008)");
    if (!ok)
        explain(&f);
    rt_try_call(run_user, (void *)u_load_kdata, &f);
    ok = fault_is(&f, EXC_GP, RT_KDATA, u_load_kdata_insn) && f.cs == RT_UCODE;
    report("load dpl 0 from ring 3", ok, "MOV DS, 0010 in ring 3: #GP(0010)");
    if (!ok)
        explain(&f);
}

int main(void)
{
    strict = rt_cmdline_uint("strict", 0);
    rt_cpu_init();
    rt_syscall_init();
    for (unsigned i = 0; i < ARRAY_SIZE(buf); i++)
        buf[i] = 0xB0000000u + i;

    const uint8_t data = SEG_P | SEG_S | SEG_WRITABLE | SEG_ACCESSED;
    const uint8_t code = SEG_P | SEG_S | SEG_CODE | SEG_READABLE | SEG_ACCESSED;
    rt_gdt_set(6, 0, 0xFFFFF, code, SEG_G | SEG_DB);
    rt_gdt_set(7, CODE_BASE, 0xFFFFF, code, SEG_G | SEG_DB);
    rt_gdt_set(8, A(buf), 0xFFF, data, SEG_DB);
    rt_gdt_set(9, A(buf) - 0x1000, 0xFFF, data | SEG_EXPDOWN, SEG_DB);
    rt_gdt_set(10, A(buf) - 0x1000, 0xFFF, data | SEG_EXPDOWN, 0);
    rt_gdt_set(11, 0, 0xFFFFF, SEG_P | SEG_S | SEG_ACCESSED, SEG_G | SEG_DB);
    rt_gdt_set(12, 0, 0xFFFFF, SEG_P | SEG_S | SEG_CODE | SEG_ACCESSED, SEG_G | SEG_DB);
    rt_gdt_set_callgate(13, RT_KCODE, A(cg_target), 2, 3);
    rt_gdt_set(14, 0, 0xFFFFF, code | SEG_CONFORMING, SEG_G | SEG_DB);
    rt_gdt_set(15, A(code16_start), 0xFFFF, code, 0);
    ldt[0] = rt_desc_make(0, 0xFFFFF, data, SEG_G | SEG_DB);
    rt_gdt_set(16, A(ldt), sizeof(ldt) - 1, SEG_P | SEG_TYPE_LDT, 0);
    rt_gdt_set(17, 0, 0xFFFFF, SEG_P | SEG_DPL(3) | SEG_S | SEG_ACCESSED, SEG_G | SEG_DB);
    rt_gdt_set(18, 0, 0xFFFFF, SEG_P | SEG_S | SEG_WRITABLE, SEG_G | SEG_DB);
    rt_gdt_set(19, 0, 0xFFFFF, SEG_P | SEG_S | SEG_CODE | SEG_READABLE, SEG_G | SEG_DB);
    rt_gdt_set(20, 0, 0xFFFFF, SEG_S | SEG_WRITABLE | SEG_ACCESSED, SEG_G | SEG_DB);
    rt_lldt(SEL_LDT);

    test_loads();
    test_limits();
    test_far();
    test_code16();
    test_lxs();
    test_arpl();
    test_accessed();
    test_probes();
    test_ring3();

    printf("segments: %u/%u checks passed\n", passed, total);
    return passed == total ? 0 : 1;
}
