/*
 * usermode - a kernel with ring-3 programs: system calls through INT 0x80
 * (write a string, read a counter), faults in ring 3 that the kernel
 * either resumes (HLT: skipped) or answers by killing the program (a
 * privileged instruction, a read of a supervisor page), the I/O permission
 * bitmap (port 0x80 allowed, 0x81 denied, a word access straddling both),
 * IOPL 3 versus IOPL 0 for CLI/STI, and POPF at CPL 3 leaving IF and IOPL
 * alone.
 *
 * Paging is on; only the user sections (rt/user.h) are user-accessible.
 * rt_cpu_init leaves every IRQ masked at the PIC, so the user programs can
 * run with IF=1 without being interrupted.
 */
#include <rt/kernel.h>

#define A(p) ((uint32_t)(uintptr_t)(p))
#define SYS_COUNTER 2
#define KILLED 0xDEAD0000u

static unsigned passed, total;
static uint32_t counter;
static volatile uint32_t kernel_secret = 0x5EC2E7;     /* supervisor page */

static RT_USER_DATA uint8_t user_stack[4096] __attribute__((aligned(4096)));
#define USER_ESP (A(user_stack) + sizeof(user_stack) - 16)

extern const uint8_t u_io80[], u_io81[], u_io81_insn[], u_io80w[], u_io80w_insn[], u_cli[],
    u_cli_insn[], u_sti[], u_sti_insn[], u_iopl3[], u_popf[];
extern const uint8_t u_hlt_insn[], u_cr3_insn[], u_super_insn[];

static void report(const char *name, int ok, const char *what)
{
    total++;
    passed += ok;
    printf("%s %s: %s\n", ok ? "PASS" : "FAIL", name, what);
}

/* ---- ring-3 programs (C) ---- */
RT_USER_RODATA static const char msg_hello[] = "user: hello from ring 3 through INT 0x80\n";
RT_USER_RODATA static const char msg_after_hlt[] = "user: still running after the HLT\n";
RT_USER_RODATA static const char msg_never[] = "user: this line must not appear\n";

RT_USER_TEXT static void prog_hello(void)
{
    rt_sys2(RT_SYS_WRITE, A(msg_hello), sizeof(msg_hello) - 1);
    uint32_t a = rt_sys0(SYS_COUNTER);
    uint32_t b = rt_sys0(SYS_COUNTER);
    uint32_t c = rt_sys0(SYS_COUNTER);
    uint32_t bad = rt_sys0(31);                         /* no such call: -1 */
    rt_sys1(RT_SYS_EXIT, (b == a + 1 && c == b + 1 && bad == 0xFFFFFFFFu) ? c : 0xBAD);
    for (;;)
        ;
}

RT_USER_TEXT static void prog_hlt(void)
{
    __asm__ volatile(".globl u_hlt_insn\nu_hlt_insn: hlt");
    rt_sys2(RT_SYS_WRITE, A(msg_after_hlt), sizeof(msg_after_hlt) - 1);
    rt_sys1(RT_SYS_EXIT, 7);
    for (;;)
        ;
}

RT_USER_TEXT static void prog_cr3(void)
{
    uint32_t v;
    __asm__ volatile(".globl u_cr3_insn\nu_cr3_insn: mov %%cr3, %0" : "=r"(v));
    rt_sys2(RT_SYS_WRITE, A(msg_never), sizeof(msg_never) - 1);
    rt_sys1(RT_SYS_EXIT, v);
    for (;;)
        ;
}

RT_USER_TEXT static void prog_super(void)
{
    uint32_t v;
    __asm__ volatile(".globl u_super_insn\nu_super_insn: movl %1, %0"
                     : "=r"(v) : "m"(kernel_secret));
    rt_sys2(RT_SYS_WRITE, A(msg_never), sizeof(msg_never) - 1);
    rt_sys1(RT_SYS_EXIT, v);
    for (;;)
        ;
}

/* ---- kernel side ---- */
static void sys_counter(struct rt_frame *f)
{
    f->eax = ++counter;
}

/* #GP from ring 3 on a HLT: skip it and resume (like a kernel emulating
 * or ignoring an instruction).  Everything else kills the program. */
static unsigned hlt_skipped;
static uint32_t hlt_eip;

static void gp_handler(struct rt_frame *f)
{
    if (rt_frame_from_user(f) && *(const uint8_t *)(uintptr_t)f->eip == 0xF4) {
        hlt_skipped++;
        hlt_eip = f->eip;
        f->eip += 1;
        return;
    }
    rt_trap_default(f);                 /* caught by run(): the program is killed */
}

struct run_args {
    uint32_t eip, eflags;
    int value;
};

static void run_body(void *p)
{
    struct run_args *r = p;
    r->value = rt_user_run(r->eip, USER_ESP, r->eflags);
}

/* Run a program; a fault kills it: returns KILLED | vector, fault in *f. */
static uint32_t run(const void *entry, uint32_t eflags, struct rt_fault *f)
{
    struct run_args r = { A(entry), eflags, 0 };
    if (rt_try_call(run_body, &r, f))
        return KILLED | f->vector;
    return (uint32_t)r.value;
}

static void expect_gp(const char *name, const char *what, const void *entry, uint32_t eflags,
                      const void *insn)
{
    struct rt_fault f;
    uint32_t v = run(entry, eflags, &f);
    int ok = v == (KILLED | EXC_GP) && f.error == 0 && f.eip == A(insn) && f.cs == RT_UCODE;
    report(name, ok, what);
    if (!ok)
        printf("  got: result %08x error %04x eip %08x\n", v, f.error, f.eip);
}

int main(void)
{
    struct rt_fault f;
    uint32_t v;

    rt_cpu_init();
    rt_syscall_init();
    rt_syscall_set(SYS_COUNTER, sys_counter);
    rt_set_handler(EXC_GP, gp_handler);
    rt_iopb_set(0x80, 1, 1);

    uint32_t *pd = rt_pd_kernel(0);
    rt_user_map_sections(pd);
    rt_paging_enable(pd, 1);
    rt_sti();                           /* every IRQ is masked at the PIC */

    v = run(prog_hello, EFL_IF, &f);
    report("syscalls", v == 3 && counter == 3,
           "ring-3 program wrote its line, got counter values 1, 2, 3, unknown call returned -1, exited");

    v = run(prog_hlt, EFL_IF, &f);
    report("resume after fault", v == 7 && hlt_skipped == 1 && hlt_eip == A(u_hlt_insn),
           "HLT in ring 3: #GP at the HLT, the kernel skipped it, the program went on and exited");

    v = run(prog_cr3, EFL_IF, &f);
    int ok = v == (KILLED | EXC_GP) && f.error == 0 && f.eip == A(u_cr3_insn) && f.cs == RT_UCODE &&
             f.ss == RT_UDATA;
    report("kill privileged", ok, "MOV from CR3 in ring 3: #GP(0), the program is killed");

    v = run(prog_super, EFL_IF, &f);
    ok = v == (KILLED | EXC_PF) && f.error == (PF_P | PF_U) && f.cr2 == A(&kernel_secret) &&
         f.eip == A(u_super_insn);
    report("kill supervisor access", ok,
           "ring-3 read of a kernel page: #PF error 5, CR2 = its address, the program is killed");

    v = run(u_io80, EFL_IF, &f);
    report("iopb allowed", v == 0x80, "IOPL 0: IN and OUT on port 0x80 (allowed in the bitmap) work");
    expect_gp("iopb denied", "IOPL 0: IN from port 0x81 (denied in the bitmap): #GP(0)", u_io81,
              EFL_IF, u_io81_insn);
    expect_gp("iopb word", "IOPL 0: 16-bit IN from 0x80 needs 0x81 too: #GP(0)", u_io80w, EFL_IF,
              u_io80w_insn);
    rt_iopb_set(0x81, 1, 1);
    v = run(u_io80w, EFL_IF, &f);
    report("iopb word allowed", v == 0x8080, "with 0x81 allowed as well, the 16-bit IN works");
    rt_iopb_set(0x81, 1, 0);

    expect_gp("iopl 0 cli", "IOPL 0: CLI in ring 3: #GP(0)", u_cli, EFL_IF, u_cli_insn);
    expect_gp("iopl 0 sti", "IOPL 0: STI in ring 3: #GP(0)", u_sti, 0, u_sti_insn);
    v = run(u_iopl3, EFL_IF | EFL_IOPL(3), &f);
    report("iopl 3", v == 2,
           "IOPL 3: CLI clears IF and STI sets it in ring 3; IN from a denied port works");
    v = run(u_popf, EFL_IF, &f);
    report("popf at cpl 3", v == 15,
           "POPF in ring 3 at IOPL 0: IF and IOPL unchanged, no fault, CF changed");
    report("kernel intact", (rt_read_eflags() & EFL_IF) && kernel_secret == 0x5EC2E7 &&
                                rt_read_cs() == RT_KCODE,
           "after all programs the kernel runs at CPL 0 with its state unchanged");

    printf("usermode: %u/%u checks passed\n", passed, total);
    return passed == total ? 0 : 1;
}
