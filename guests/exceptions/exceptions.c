/*
 * exceptions - raise and handle every exception vector a 32-bit protected-
 * mode kernel can meet, checking the vector, the error code, CR2 and the
 * saved EIP (the faulting instruction for faults, the next one for traps)
 * exactly.
 *
 * Faults are caught with rt_try_call (the runtime's default handler records
 * the frame and resumes at the call); traps that must resume (#DB, #BP,
 * #OF) and #NM's retry have handlers of their own.  The instructions live
 * in snippets.S.  Output is deterministic: EIPs are printed as offsets
 * from the expected label, selectors are this guest's own.
 *
 * Vectors not raised: NMI (an external event), 9 (coprocessor segment
 * overrun, gone since the 486), 15 (reserved), #MF (needs x87 arithmetic),
 * #MC (hardware errors), #XM (SSE), #VE (EPT), #CP (CET); each prints a
 * SKIP line.  #TS is raised without a task switch: an INT 0x80 from ring 3
 * while TSS.SS0 holds a code segment.
 *
 * Checks QEMU's TCG cannot pass run only with `strict=1` on the command
 * line: TCG does not check segment limits or the write permission of data
 * segments, treats a null segment as base 0, and never raises #AC.  By
 * default they print a SKIP line, so the default output is what every
 * faithful PC prints, QEMU included.
 */
#include <rt/kernel.h>
#include "exceptions.h"

typedef void snippet_fn(void *);

extern snippet_fn t_div0, t_idiv_overflow, t_single_step, t_int3, t_into, t_bound_in,
    t_bound_out, t_ud2, t_ud_ff7, t_ud_lock, x87_deliberate_fwait, t_double_fault, t_np_ds,
    t_np_gs, t_ss_np, t_ss_limit, t_gp_beyond, t_gp_system, t_gp_ss_rpl, t_gp_readonly,
    t_gp_limit, t_gp_null, t_pf_read, t_pf_write, t_pf_ro, t_pf_fetch, t_ac_ring0;
extern const uint8_t t_div0_insn[], t_idiv_insn[], t_step_insn[], t_step_next[],
    t_int3_insn[], t_int3_next[], t_int3b_insn[], t_int3b_next[], t_into_next[],
    t_bound_insn[], t_ud2_insn[], t_ud_ff7_insn[], t_ud_lock_insn[],
    t_np_ds_insn[], t_np_gs_insn[], t_ss_np_insn[], t_ss_limit_insn[], t_gp_beyond_insn[],
    t_gp_system_insn[], t_gp_ss_rpl_insn[], t_gp_readonly_insn[], t_gp_limit_insn[],
    t_gp_null_insn[], t_pf_read_insn[], t_pf_write_insn[], t_pf_ro_insn[];
extern const uint8_t u_hlt[], u_hlt_insn[], u_mov_cr0[], u_mov_cr0_insn[], u_int40[],
    u_int40_insn[], u_pf_super[], u_pf_super_insn[], u_pf_user_ro[], u_pf_user_ro_insn[],
    u_ac[], u_ac_insn[], u_ac_clear[], u_ts[], u_ts_insn[], u_ts_handler[], u_stack_top[];
extern uint32_t u_ts_error, u_ts_eip, u_ts_cs;
extern uint32_t scratch;

#define A(p) ((uint32_t)(uintptr_t)(p))
#define USER_ESP (A(u_stack_top) - 16)

static unsigned passed, total;
static unsigned strict;     /* strict=1: also the checks QEMU's TCG fails */

static void report(const char *name, int ok, const char *what)
{
    total++;
    passed += ok;
    printf("%s %s: %s\n", ok ? "PASS" : "FAIL", name, what);
}

static void print_eip(const char *label, uint32_t eip, uint32_t expect)
{
    int32_t d = (int32_t)(eip - expect);
    if (d >= 0)
        printf("%s=insn+%d", label, (int)d);
    else
        printf("%s=insn-%d", label, (int)-d);
}

/* Print what was caught, for FAIL lines. */
static void explain(const struct rt_fault *f, uint32_t expect_eip)
{
    if (f->vector == RT_NO_FAULT) {
        printf("  got: no exception\n");
        return;
    }
    printf("  got: %s (vector %u) error %04x ", rt_vector_name(f->vector), f->vector, f->error);
    print_eip("eip", f->eip, expect_eip);
    printf(" cs=%04x cr2=%08x\n", f->cs, f->cr2);
}

/* Run fn (ring 0) and expect exactly (vector, error) at EIP `insn`. */
static void expect_fault(const char *name, const char *what, snippet_fn *fn, void *arg,
                         unsigned vector, uint32_t error, const void *insn)
{
    struct rt_fault f;
    rt_try_call(fn, arg, &f);
    int ok = f.vector == vector && f.error == error && f.eip == A(insn) && f.cs == RT_KCODE;
    report(name, ok, what);
    if (!ok)
        explain(&f, A(insn));
}

static void expect_no_fault(const char *name, const char *what, snippet_fn *fn, void *arg)
{
    struct rt_fault f;
    rt_try_call(fn, arg, &f);
    report(name, f.vector == RT_NO_FAULT, what);
    if (f.vector != RT_NO_FAULT)
        explain(&f, 0);
}

/* ---- ring 3 ---- */
static uint32_t user_eip;
static void run_user(void *arg)
{
    (void)arg;
    rt_user_run(user_eip, USER_ESP, 0);
}

/* Run user code at `entry` and expect (vector, error) at `insn` from CPL 3. */
static void expect_user_fault(const char *name, const char *what, const void *entry,
                              unsigned vector, uint32_t error, const void *insn,
                              struct rt_fault *out)
{
    struct rt_fault f;
    user_eip = A(entry);
    rt_try_call(run_user, 0, &f);
    int ok = f.vector == vector && f.error == error && f.eip == A(insn) && f.cs == RT_UCODE &&
             f.ss == RT_UDATA && f.esp == USER_ESP;
    report(name, ok, what);
    if (!ok) {
        explain(&f, A(insn));
        if (f.vector != RT_NO_FAULT)
            printf("  got: ss:esp=%04x:top%+d\n", f.ss, (int)(f.esp - USER_ESP));
    }
    if (out)
        *out = f;
}

/* ---- trap handlers that resume ---- */
static volatile unsigned trap_count;
static volatile uint32_t trap_eip[4], trap_dr6;

static void record_trap(struct rt_frame *f)
{
    if (trap_count < 4)
        trap_eip[trap_count] = f->eip;
    trap_count++;
}

static void db_handler(struct rt_frame *f)
{
    uint32_t dr6;
    __asm__ volatile("mov %%dr6, %0" : "=r"(dr6));
    trap_dr6 = dr6;
    f->eflags &= ~EFL_TF;               /* single-step once only */
    record_trap(f);
}

static volatile uint32_t nm_cr0;
static void nm_handler(struct rt_frame *f)
{
    nm_cr0 = rt_read_cr0();
    record_trap(f);
    rt_clts();                          /* and retry the FWAIT */
}

static void df_handler(struct rt_frame *f)
{
    /* An abort: CS:EIP are undefined; report and leave for good. */
    rt_idt_set_present(EXC_GP, 1);
    rt_try_catch(f);
    rt_panic_frame(f);
}

static void test_de(void)
{
    expect_fault("#DE div", "DIV by zero: vector 0, EIP at the DIV", t_div0, 0, EXC_DE, 0,
                 t_div0_insn);
    expect_fault("#DE idiv", "IDIV quotient overflow (-2^31 / -1): vector 0, EIP at the IDIV",
                 t_idiv_overflow, 0, EXC_DE, 0, t_idiv_insn);
}

static void test_db(void)
{
    uint32_t clear = 0xFFFF0FF0u;
    __asm__ volatile("mov %0, %%dr6" : : "r"(clear));
    trap_count = 0;
    rt_set_handler(EXC_DB, db_handler);
    struct rt_fault f;
    rt_try_call(t_single_step, 0, &f);
    rt_set_handler(EXC_DB, 0);
    int ok = f.vector == RT_NO_FAULT && trap_count == 1 && trap_eip[0] == A(t_step_next) &&
             (trap_dr6 & 0x4000);
    report("#DB single-step", ok,
           "POPF sets TF: one trap after the next instruction, EIP after it, DR6.BS=1, TF cleared");
    if (!ok) {
        printf("  got: %u traps, dr6=%08x ", trap_count, trap_dr6);
        print_eip("eip", trap_eip[0], A(t_step_next));
        printf("\n");
        explain(&f, 0);
    }
}

static void test_bp_of(void)
{
    struct rt_fault f;
    trap_count = 0;
    rt_set_handler(EXC_BP, record_trap);
    rt_try_call(t_int3, 0, &f);
    rt_set_handler(EXC_BP, 0);
    int ok = f.vector == RT_NO_FAULT && trap_count == 2 && trap_eip[0] == A(t_int3_next) &&
             trap_eip[1] == A(t_int3b_next);
    report("#BP int3", ok, "INT3 and INT 3 (CD 03) trap with EIP after the instruction, and resume");
    if (!ok)
        printf("  got: %u traps, eip0=%08x eip1=%08x\n", trap_count, trap_eip[0], trap_eip[1]);

    trap_count = 0;
    rt_set_handler(EXC_OF, record_trap);
    rt_try_call(t_into, 0, &f);
    rt_set_handler(EXC_OF, 0);
    ok = f.vector == RT_NO_FAULT && trap_count == 1 && trap_eip[0] == A(t_into_next);
    report("#OF into", ok, "INTO traps with OF=1 (EIP after it) and not with OF=0");
    if (!ok)
        printf("  got: %u traps, eip0=%08x\n", trap_count, trap_eip[0]);
}

static void test_br(void)
{
    expect_no_fault("#BR bound (in range)", "BOUND with index 10 in [0,10]: no exception",
                    t_bound_in, 0);
    expect_fault("#BR bound", "BOUND with index 11 outside [0,10]: vector 5, EIP at the BOUND",
                 t_bound_out, 0, EXC_BR, 0, t_bound_insn);
}

static void test_ud(void)
{
    expect_fault("#UD ud2", "UD2: vector 6, EIP at the UD2", t_ud2, 0, EXC_UD, 0, t_ud2_insn);
    expect_fault("#UD ff/7", "opcode FF /7 (undefined): vector 6, EIP at it", t_ud_ff7, 0, EXC_UD, 0,
                 t_ud_ff7_insn);
    expect_fault("#UD lock", "LOCK ADD with a register destination: vector 6, EIP at the prefix",
                 t_ud_lock, 0, EXC_UD, 0, t_ud_lock_insn);
}

static void test_nm(void)
{
    struct rt_fault f;
    uint32_t cr0 = rt_read_cr0();
    trap_count = 0;
    rt_set_handler(EXC_NM, nm_handler);
    rt_write_cr0((cr0 & ~CR0_EM) | CR0_MP | CR0_TS);
    rt_try_call(x87_deliberate_fwait, 0, &f);
    uint32_t after = rt_read_cr0();
    rt_write_cr0(cr0);
    rt_set_handler(EXC_NM, 0);
    int ok = f.vector == RT_NO_FAULT && trap_count == 1 && trap_eip[0] == A(x87_deliberate_fwait) &&
             (nm_cr0 & CR0_TS) && !(after & CR0_TS);
    report("#NM fwait", ok,
           "FWAIT with CR0.MP=TS=1: vector 7 at the FWAIT; handler CLTS, the retry runs");
    if (!ok)
        printf("  got: %u traps, cr0 in handler %08x, after %08x\n", trap_count, nm_cr0, after);
}

static void test_df(void)
{
    struct rt_fault f;
    rt_set_handler(EXC_DF, df_handler);
    rt_idt_set_present(EXC_GP, 0);
    rt_try_call(t_double_fault, 0, &f);
    rt_idt_set_present(EXC_GP, 1);
    rt_set_handler(EXC_DF, 0);
    int ok = f.vector == EXC_DF && f.error == 0;
    report("#DF", ok, "#GP with the #GP gate not present -> #NP -> double fault, error 0");
    if (!ok)
        explain(&f, 0);
}

static void test_ts(uint32_t *pd)
{
    /* Paging off: the ring-3 handler writes the (supervisor) TSS. */
    rt_paging_disable();
    u_ts_error = u_ts_eip = u_ts_cs = 0xFFFFFFFFu;
    rt_idt_set_gate(EXC_TS, SEL_CONFORM, A(u_ts_handler), SEG_TYPE_INTGATE, 0);
    rt_tss.ss0 = RT_KCODE;
    struct rt_fault f;
    user_eip = A(u_ts);
    int value = -1;
    if (RT_TRY(&f)) {
        value = rt_user_run(user_eip, USER_ESP, 0);
        rt_try_end();
    }
    rt_tss.ss0 = RT_KDATA;
    rt_idt_set_default(EXC_TS, SEG_TYPE_INTGATE, 0);
    rt_paging_enable(pd, 1);
    int ok = f.vector == RT_NO_FAULT && value == 0x7575 && u_ts_error == RT_KCODE &&
             u_ts_eip == A(u_ts_insn) && u_ts_cs == (SEL_CONFORM | 3);
    report("#TS", ok,
           "INT 0x80 from ring 3 with TSS.SS0 = a code segment: error 0008, EIP at the INT; "
           "conforming handler at CPL 3 repairs SS0, the INT is retried");
    if (!ok) {
        printf("  got: value %x error %08x cs %08x ", (unsigned)value, u_ts_error, u_ts_cs);
        print_eip("eip", u_ts_eip, A(u_ts_insn));
        printf("\n");
        explain(&f, 0);
    }
}

static void test_np(void)
{
    expect_fault("#NP ds", "MOV DS, not-present segment: error = selector 0030, EIP at the MOV",
                 t_np_ds, 0, EXC_NP, SEL_NP_DATA, t_np_ds_insn);
    expect_fault("#NP gs", "MOV GS, not-present segment: error = selector 0030", t_np_gs, 0,
                 EXC_NP, SEL_NP_DATA, t_np_gs_insn);
}

static void skip(const char *name, const char *why)
{
    printf("SKIP %s: %s\n", name, why);
}

#define TCG_NOTE(what) "strict=1 only (" what ")"

static void test_ss(void)
{
    expect_fault("#SS not present", "MOV SS, not-present segment: error = selector 0050",
                 t_ss_np, 0, EXC_SS, SEL_NP_STACK, t_ss_np_insn);
    if (!strict)
        skip("#SS limit", TCG_NOTE("QEMU TCG does not check segment limits"));
    else
        expect_fault("#SS limit", "SS-relative load crossing the stack segment's limit: error 0",
                 t_ss_limit, 0, EXC_SS, 0, t_ss_limit_insn);
}

static void test_gp(void)
{
    expect_fault("#GP selector beyond GDT", "MOV ES, 0100 (past the GDT limit): error 0100",
                 t_gp_beyond, 0, EXC_GP, SEL_BEYOND, t_gp_beyond_insn);
    expect_fault("#GP system segment", "MOV FS, the TSS selector: error 0028", t_gp_system, 0,
                 EXC_GP, RT_TSS_SEL, t_gp_system_insn);
    expect_fault("#GP ss rpl", "MOV SS, 0023 at CPL 0 (RPL/DPL 3): error 0020", t_gp_ss_rpl, 0,
                 EXC_GP, RT_UDATA & ~3u, t_gp_ss_rpl_insn);
    if (!strict) {
        skip("#GP read-only", TCG_NOTE("QEMU TCG does not check data segment write permission"));
        skip("#GP limit", TCG_NOTE("QEMU TCG does not check segment limits"));
        skip("#GP null", TCG_NOTE("QEMU TCG treats a null data segment as base 0"));
    } else {
        expect_fault("#GP read-only", "write through a read-only data segment: error 0",
                     t_gp_readonly, 0, EXC_GP, 0, t_gp_readonly_insn);
        expect_fault("#GP limit", "4-byte read at offset FFD of a segment with limit FFF: error 0",
                     t_gp_limit, 0, EXC_GP, 0, t_gp_limit_insn);
        expect_fault("#GP null", "memory access through a null GS: error 0", t_gp_null, 0, EXC_GP,
                     0, t_gp_null_insn);
    }
    expect_user_fault("#GP hlt at CPL 3", "HLT in ring 3: error 0, EIP at HLT, CS 001b SS 0023",
                      u_hlt, EXC_GP, 0, u_hlt_insn, 0);
    expect_user_fault("#GP mov cr0 at CPL 3", "MOV EAX, CR0 in ring 3: error 0", u_mov_cr0,
                      EXC_GP, 0, u_mov_cr0_insn, 0);
    expect_user_fault("#GP int to DPL-0 gate", "INT 0x40 in ring 3, gate DPL 0: error 0202 (IDT)",
                      u_int40, EXC_GP, 0x40 * 8 + ERR_IDT, u_int40_insn, 0);
}

static void test_pf(void)
{
    struct rt_fault f;
    expect_fault("#PF read not present", "read of a not-present page: error 0", t_pf_read, 0,
                 EXC_PF, 0, t_pf_read_insn);
    rt_try_call(t_pf_read, 0, &f);
    report("#PF read cr2", f.cr2 == VA_NOT_PRESENT + 0x10, "CR2 = the address read");
    expect_fault("#PF write not present", "write to a not-present page: error 2 (W)", t_pf_write,
                 0, EXC_PF, PF_W, t_pf_write_insn);
    rt_try_call(t_pf_write, 0, &f);
    report("#PF write cr2", f.cr2 == VA_NOT_PRESENT + 0x24, "CR2 = the address written");
    expect_fault("#PF write read-only", "CR0.WP=1, ring-0 write to a read-only page: error 3 (P|W)",
                 t_pf_ro, 0, EXC_PF, PF_P | PF_W, t_pf_ro_insn);
    rt_try_call(t_pf_fetch, 0, &f);
    int ok = f.vector == EXC_PF && f.error == 0 && f.eip == VA_NO_CODE && f.cr2 == VA_NO_CODE;
    report("#PF fetch", ok, "call to a not-present page: error 0, CR2 = EIP = the target");
    if (!ok)
        explain(&f, VA_NO_CODE);
    expect_user_fault("#PF user reads supervisor page",
                      "ring-3 read of a supervisor page: error 5 (P|U)", u_pf_super, EXC_PF,
                      PF_P | PF_U, u_pf_super_insn, &f);
    report("#PF user cr2", f.cr2 == VA_SUPER_RO, "CR2 = the supervisor address");
    expect_user_fault("#PF user writes read-only page",
                      "ring-3 write to a user read-only page: error 7 (P|W|U)", u_pf_user_ro,
                      EXC_PF, PF_P | PF_W | PF_U, u_pf_user_ro_insn, &f);
    report("#PF user write cr2", f.cr2 == VA_USER_RO + 4, "CR2 = the address written");
}

static void test_ac(void)
{
    uint32_t cr0 = rt_read_cr0();
    rt_write_cr0(cr0 | CR0_AM);
    if (!strict)
        skip("#AC", TCG_NOTE("QEMU TCG does not implement alignment checks"));
    else
        expect_user_fault("#AC", "CR0.AM=1, EFLAGS.AC=1, misaligned 4-byte read in ring 3: error 0",
                          u_ac, EXC_AC, 0, u_ac_insn, 0);
    int v = rt_user_run(A(u_ac_clear), USER_ESP, 0);
    report("#AC with AC=0", v == 0x600D, "the same read in ring 3 with EFLAGS.AC=0: no exception");
    expect_no_fault("#AC at CPL 0", "the same read in ring 0 with AC=1: no exception", t_ac_ring0, 0);
    rt_write_cr0(cr0);
}

int main(void)
{
    strict = rt_cmdline_uint("strict", 0);
    rt_cpu_init();
    rt_syscall_init();
    rt_gdt_set(6, 0, 0xFFFFF, SEG_S | SEG_WRITABLE | SEG_ACCESSED, SEG_G | SEG_DB); /* P=0 */
    rt_gdt_set(7, 0, 0xFFFFF, SEG_P | SEG_S | SEG_ACCESSED, SEG_G | SEG_DB);
    rt_gdt_set(8, A(&scratch) & ~0xFFFu, 0xFFF, SEG_P | SEG_S | SEG_WRITABLE | SEG_ACCESSED, SEG_DB);
    rt_gdt_set(9, 0, 0x3FFF, SEG_P | SEG_S | SEG_WRITABLE | SEG_ACCESSED, SEG_G | SEG_DB);
    rt_gdt_set(10, 0, 0xFFFFF, SEG_S | SEG_WRITABLE | SEG_ACCESSED, SEG_G | SEG_DB);   /* P=0 */
    rt_gdt_set(11, 0, 0xFFFFF, SEG_P | SEG_S | SEG_CODE | SEG_CONFORMING | SEG_READABLE | SEG_ACCESSED,
               SEG_G | SEG_DB);

    uint32_t *pd = rt_pd_kernel(0);
    rt_user_map_sections(pd);
    uint32_t *super_page = rt_page_alloc(), *user_page = rt_page_alloc();
    rt_map_page(pd, VA_SUPER_RO, A(super_page), 0);
    rt_map_page(pd, VA_USER_RO, A(user_page), PTE_U);
    rt_paging_enable(pd, 1);

    test_de();
    test_db();
    skip("NMI", "vector 2 is an external event, nothing in a guest raises it");
    test_bp_of();
    test_br();
    test_ud();
    test_nm();
    test_df();
    skip("#CSO", "vector 9 (coprocessor segment overrun) is not raised by processors after the 386");
    test_ts(pd);
    test_np();
    test_ss();
    test_gp();
    test_pf();
    skip("vector 15", "reserved");
    skip("#MF", "needs x87 arithmetic, which these guests do not use");
    test_ac();
    skip("#MC", "machine checks report hardware errors");
    skip("#XM", "needs SSE, which these guests do not use");
    skip("#VE", "virtualization exceptions come from EPT, not from a guest");
    skip("#CP", "control-protection exceptions need CET");

    printf("exceptions: %u/%u checks passed\n", passed, total);
    return passed == total ? 0 : 1;
}
