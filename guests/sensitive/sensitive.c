/*
 * sensitive - probes every privileged and sensitive instruction from
 * ring 0, with the guest's own GDT, IDT and TSS, and prints exactly what it
 * saw, one line per probe: `probe <name>: <what it saw>`.
 *
 * On bare hardware (and in QEMU) a ring-0 kernel sees RPL 0 in CS and SS,
 * IF and IOPL change under POPF, SGDT/SIDT/STR/SLDT return what it loaded,
 * LAR reports DPL 0 for its own segments, and so on.  A kernel that is
 * secretly deprivileged (run in ring 1 or 3 by a VMM without binary
 * translation of these instructions) would see other values: this guest
 * makes them visible.  Addresses of the runtime's tables depend on the
 * build, so they are printed as "the loaded GDT" when they match and as
 * raw numbers only when they do not.
 *
 * The summary counts the probes that saw what bare hardware shows; the
 * exit code is 0 either way (the output itself is what gets compared).
 */
#include <rt/kernel.h>

#define A(p) ((uint32_t)(uintptr_t)(p))
#define SEL_KCODE2 RT_SEL(6, 0)
#define SEL_KDATA2 RT_SEL(7, 0)
#define SEL_LDT    RT_SEL(8, 0)

uint32_t far_call(void);
uint32_t far_jmp(void);

static unsigned probes, native;
static uint64_t ldt[2];

static void probe(const char *name, int as_native, const char *fmt, ...) RT_PRINTF(3, 4);
static void probe(const char *name, int as_native, const char *fmt, ...)
{
    char buf[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    printf("probe %s: %s\n", name, buf);
    probes++;
    native += as_native != 0;
}

static const char *yn(int b) { return b ? "yes" : "no"; }

/* ---- segment selectors ---- */
static void probe_selectors(void)
{
    uint16_t cs, ss;
    __asm__ volatile("movw %%cs, %0" : "=r"(cs));
    __asm__ volatile("movw %%ss, %0" : "=r"(ss));
    probe("mov from cs", cs == RT_KCODE, "cs=%04x rpl=%u", cs, cs & 3);
    probe("mov from ss", ss == RT_KDATA, "ss=%04x rpl=%u", ss, ss & 3);
    uint32_t pushed;
    __asm__ volatile("pushl %%cs; popl %0" : "=r"(pushed));
    probe("push cs", (pushed & 0xFFFF) == RT_KCODE, "popped %04x rpl=%u", pushed & 0xFFFF,
          pushed & 3);
}

/* ---- EFLAGS ---- */
static void probe_eflags(void)
{
    rt_sti();
    uint32_t f = rt_read_eflags();
    probe("pushf", (f & EFL_IF) && !(f & EFL_IOPL_MASK), "IF=%u IOPL=%u", (f >> 9) & 1,
          (f >> 12) & 3);

    rt_write_eflags(f & ~EFL_IF);                       /* POPF clearing IF */
    uint32_t g = rt_read_eflags();
    probe("popf clear if", !(g & EFL_IF), "IF 1 -> %u (%s)", (g >> 9) & 1,
          g & EFL_IF ? "unchanged" : "changed");
    rt_sti();

    rt_write_eflags(f | EFL_IOPL(3));                   /* POPF raising IOPL */
    g = rt_read_eflags();
    probe("popf set iopl", (g & EFL_IOPL_MASK) == EFL_IOPL(3), "IOPL 0 -> %u (%s)", (g >> 12) & 3,
          (g & EFL_IOPL_MASK) ? "changed" : "unchanged");
    rt_write_eflags(f);

    rt_cli();
    uint32_t a = rt_read_eflags();
    rt_sti();
    uint32_t b = rt_read_eflags();
    probe("cli/sti", !(a & EFL_IF) && (b & EFL_IF), "IF after CLI=%u, after STI=%u",
          (a >> 9) & 1, (b >> 9) & 1);
    rt_cli();
}

/* ---- descriptor table registers ---- */
static void probe_tables(void)
{
    struct rt_dtr d;
    rt_sgdt(&d);
    int ok = d.base == A(rt_gdt) && d.limit == sizeof(rt_gdt) - 1;
    if (ok)
        probe("sgdt", 1, "limit %04x, base = the GDT loaded with LGDT", d.limit);
    else
        probe("sgdt", 0, "limit %04x base %08x (loaded: limit %04x base %08x)", d.limit, d.base,
              (unsigned)sizeof(rt_gdt) - 1, A(rt_gdt));
    rt_sidt(&d);
    ok = d.base == A(rt_idt) && d.limit == sizeof(rt_idt) - 1;
    if (ok)
        probe("sidt", 1, "limit %04x, base = the IDT loaded with LIDT", d.limit);
    else
        probe("sidt", 0, "limit %04x base %08x (loaded: limit %04x base %08x)", d.limit, d.base,
              (unsigned)sizeof(rt_idt) - 1, A(rt_idt));

    uint16_t ldtr = rt_sldt();
    probe("sldt", ldtr == SEL_LDT, "%04x (loaded %04x)", ldtr, SEL_LDT);
    uint16_t tr = rt_str();
    probe("str", tr == RT_TSS_SEL, "%04x (loaded %04x)", tr, RT_TSS_SEL);

    struct rt_dtr g = { sizeof(rt_gdt) - 1, A(rt_gdt) }, i = { sizeof(rt_idt) - 1, A(rt_idt) };
    rt_lgdt(&g);
    rt_lidt(&i);
    struct rt_dtr g2, i2;
    rt_sgdt(&g2);
    rt_sidt(&i2);
    ok = g2.base == g.base && g2.limit == g.limit && i2.base == i.base && i2.limit == i.limit;
    probe("lgdt/lidt", ok, "reloaded the same tables, SGDT/SIDT still match: %s", yn(ok));
}

/* ---- control registers ---- */
static void probe_cr(void)
{
    rt_write_cr0(0x00000033);                           /* PE MP ET NE */
    uint32_t cr0 = rt_read_cr0();
    probe("mov cr0", cr0 == 0x33, "wrote 00000033, read %08x", cr0);
    uint16_t msw;
    __asm__ volatile("smsw %0" : "=m"(msw));
    probe("smsw", msw == 0x33, "%04x: PE=%u, equals CR0[15:0]: %s", msw, msw & 1,
          yn(msw == (cr0 & 0xFFFF)));

    rt_write_cr3(0x00123000);                           /* paging is off: any value */
    uint32_t cr3 = rt_read_cr3();
    probe("mov cr3", cr3 == 0x00123000, "wrote 00123000, read %08x", cr3);
    rt_write_cr4(CR4_PSE);
    uint32_t cr4 = rt_read_cr4();
    probe("mov cr4", cr4 == CR4_PSE, "wrote 00000010, read %08x", cr4);

    rt_write_cr0(cr0 | CR0_TS);
    uint32_t ts = rt_read_cr0() & CR0_TS;
    rt_clts();
    uint32_t after = rt_read_cr0() & CR0_TS;
    probe("clts", ts && !after, "CR0.TS %u -> %u", ts ? 1 : 0, after ? 1 : 0);
}

/* ---- LAR/LSL/VERR/VERW on the guest's own selectors ---- */
static void probe_access(uint16_t sel, uint32_t ar_expected, int w_expected)
{
    uint32_t ar = 0, lim = 0;
    uint8_t zl, zs, zr, zw;
    __asm__ volatile("larl %2, %0; setz %1" : "=r"(ar), "=q"(zl) : "r"((uint32_t)sel), "0"(0u));
    __asm__ volatile("lsll %2, %0; setz %1" : "=r"(lim), "=q"(zs) : "r"((uint32_t)sel), "0"(0u));
    __asm__ volatile("verr %1; setz %0" : "=q"(zr) : "r"(sel));
    __asm__ volatile("verw %1; setz %0" : "=q"(zw) : "r"(sel));
    char name[16];
    snprintf(name, sizeof(name), "lar %04x", sel);
    probe(name, zl && ar == ar_expected, "ZF=%u access rights %08x (DPL %u)", zl, ar, (ar >> 13) & 3);
    snprintf(name, sizeof(name), "lsl %04x", sel);
    probe(name, zs && lim == 0xFFFFFFFF, "ZF=%u limit %08x", zs, lim);
    snprintf(name, sizeof(name), "verr/verw %04x", sel);
    probe(name, zr && zw == w_expected, "readable %u writable %u", zr, zw);
}

static void probe_segments(void)
{
    probe_access(RT_KCODE, 0x00C09B00, 0);
    probe_access(RT_KDATA, 0x00C09300, 1);
    uint16_t ds;
    rt_load_ds(SEL_KDATA2);
    __asm__ volatile("movw %%ds, %0" : "=r"(ds));
    rt_load_ds(RT_KDATA);
    probe("mov ds", ds == SEL_KDATA2, "loaded 0038 (DPL 0 data), DS=%04x", ds);
    uint32_t v = far_call();
    probe("far call", v == ((uint32_t)SEL_KCODE2 << 16 | RT_KCODE),
          "CS in the callee %04x (RPL %u), after LRET %04x", v >> 16, (v >> 16) & 3, v & 0xFFFF);
    v = far_jmp();
    probe("far jmp", v == ((uint32_t)SEL_KCODE2 << 16 | RT_KCODE),
          "CS after LJMP %04x (RPL %u), after the jump back %04x", v >> 16, (v >> 16) & 3,
          v & 0xFFFF);
}

/* ---- INT n / IRET ---- */
static volatile uint32_t int_cs, int_saved_cs, int_count;
static void int_handler(struct rt_frame *f)
{
    uint16_t cs;
    __asm__ volatile("movw %%cs, %0" : "=r"(cs));
    int_cs = cs;
    int_saved_cs = f->cs & 0xFFFF;
    int_count++;
}

static volatile uint32_t ticks;
static void irq0(struct rt_frame *f)
{
    (void)f;
    ticks++;
    rt_pic_eoi(0);
}

static void probe_interrupts(void)
{
    rt_set_handler(0x81, int_handler);
    __asm__ volatile("int $0x81" ::: "memory");
    probe("int/iret", int_count == 1 && int_cs == RT_KCODE && int_saved_cs == RT_KCODE,
          "INT 0x81: handler CS %04x (CPL %u), saved CS %04x, IRET returned: %s", int_cs,
          int_cs & 3, int_saved_cs, yn(int_count == 1));

    /* HLT with an interrupt pending: IRQ 0 requested while IF=0, then STI; HLT. */
    rt_irq_set_handler(0, irq0);
    rt_pit_oneshot(1193);                               /* 1 ms */
    rt_pic_unmask(0);
    int pending = 0;
    for (int w = 0; w < 20 && !pending; w++) {         /* up to ~1 s */
        rt_pit2_start(59659);
        while (!rt_pit2_expired() && !(pending = rt_pic_irr() & 1))
            ;
    }
    uint32_t t0 = ticks;
    rt_sti_hlt();
    rt_cli();
    rt_pic_mask(0);
    probe("hlt", pending && ticks == t0 + 1, "IRQ 0 pending: %s, STI;HLT woke with it delivered: %s",
          yn(pending), yn(ticks == t0 + 1));
}

/* ---- I/O, TSC, MSR, caches, TLB ---- */
static void probe_misc(void)
{
    struct rt_fault f;
    uint8_t v = 0;
    if (RT_TRY(&f)) {
        v = inb(0x80);
        rt_try_end();
    }
    (void)v;
    probe("in 0x80", f.vector == RT_NO_FAULT, "%s", f.vector == RT_NO_FAULT ? "no fault" : "fault");
    if (RT_TRY(&f)) {
        outb(0x80, 0x55);
        rt_try_end();
    }
    probe("out 0x80", f.vector == RT_NO_FAULT, "%s", f.vector == RT_NO_FAULT ? "no fault" : "fault");

    uint64_t a = rt_rdtsc();
    for (volatile int i = 0; i < 100; i++)
        ;
    uint64_t b = rt_rdtsc();
    probe("rdtsc", b > a, "no fault, a later read is larger: %s", yn(b > a));

    uint64_t apic = rt_rdmsr(MSR_IA32_APIC_BASE);
    probe("rdmsr 0x1b", (apic & APIC_BASE_BSP) != 0, "no fault, BSP flag %u",
          (unsigned)((apic >> 8) & 1));

    if (RT_TRY(&f)) {
        rt_wbinvd();
        rt_try_end();
    }
    probe("wbinvd", f.vector == RT_NO_FAULT, "%s", f.vector == RT_NO_FAULT ? "no fault" : "fault");

    uint32_t *pd = rt_pd_kernel(0);
    rt_paging_enable(pd, 1);
    uint32_t *page = rt_page_alloc(), *other = rt_page_alloc();
    page[0] = 0x1111;
    other[0] = 0x2222;
    rt_map_page(pd, 0x50000000, A(page), PTE_W);
    uint32_t r1 = *(volatile uint32_t *)0x50000000;
    *rt_pte(pd, 0x50000000, 0) = A(other) | PTE_P | PTE_W;
    rt_invlpg(0x50000000);
    uint32_t r2 = *(volatile uint32_t *)0x50000000;
    probe("invlpg", r1 == 0x1111 && r2 == 0x2222, "PTE changed, after INVLPG the new page is seen: %s",
          yn(r1 == 0x1111 && r2 == 0x2222));
    probe("mov cr3 (paging)", rt_read_cr3() == A(pd), "reads back the page directory loaded: %s",
          yn(rt_read_cr3() == A(pd)));
    rt_paging_disable();
}

int main(void)
{
    rt_cpu_init();
    rt_gdt_set(6, 0, 0xFFFFF, SEG_P | SEG_S | SEG_CODE | SEG_READABLE | SEG_ACCESSED, SEG_G | SEG_DB);
    rt_gdt_set(7, 0, 0xFFFFF, SEG_P | SEG_S | SEG_WRITABLE | SEG_ACCESSED, SEG_G | SEG_DB);
    ldt[1] = rt_desc_make(0, 0xFFFFF, SEG_P | SEG_S | SEG_WRITABLE | SEG_ACCESSED, SEG_G | SEG_DB);
    rt_gdt_set(8, A(ldt), sizeof(ldt) - 1, SEG_P | SEG_TYPE_LDT, 0);
    rt_lldt(SEL_LDT);

    probe_selectors();
    probe_eflags();
    probe_tables();
    probe_cr();
    probe_segments();
    probe_interrupts();
    probe_misc();

    printf("sensitive: %u probes, %u as on bare hardware\n", probes, native);
    return 0;
}
