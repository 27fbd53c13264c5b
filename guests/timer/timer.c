/*
 * timer - the PIT and the PIC: IRQ 0 at 1000 Hz (channel 0, mode 2), HLT
 * woken by each tick, the tick rate measured against PIT channel 2 (a
 * stopwatch read through port 0x61) with a wide tolerance, latched reads
 * of channel 0, a masked IRQ held in the IRR and delivered on unmasking,
 * EOI discipline (no second tick while the first is in service), and the
 * interrupt flag (no tick with IF=0; the pending one arrives right after
 * the instruction that follows STI).
 *
 * Only properties are printed, never counts: interrupt timing differs
 * between correct implementations.  The checks wait for events (an IRR
 * bit, a tick) rather than for fixed times, because QEMU raises timer
 * interrupts from host timers: when the host deschedules it, whole
 * milliseconds pass without a tick, and several ticks can fall due at
 * once (so the IF check holds its EOI until it has counted).
 */
#include <rt/kernel.h>

#define HZ 1000
#define DIVISOR 1193            /* PIT_HZ / HZ, rounded */

void t_sti_shadow(void);
extern const uint8_t t_sti_after[];

static unsigned passed, total;
static volatile uint32_t ticks, last_eip;
static volatile int eoi = 1;

static void report(const char *name, int ok, const char *what)
{
    total++;
    passed += ok;
    printf("%s %s: %s\n", ok ? "PASS" : "FAIL", name, what);
}

static void irq0(struct rt_frame *f)
{
    ticks++;
    last_eip = f->eip;
    if (eoi)
        rt_pic_eoi(0);
}

static void test_hlt(void)
{
    unsigned woke = 0;
    for (int i = 0; i < 20; i++) {
        rt_cli();
        uint32_t t0 = ticks;
        rt_sti_hlt();
        rt_cli();
        woke += ticks != t0;
    }
    rt_sti();
    report("hlt", woke == 20, "20 ticks, HLT woke each time");
}

static void test_pit_read(void)
{
    unsigned bad = 0;
    for (int i = 0; i < 500; i++) {
        uint16_t c = rt_pit_read();
        bad += c < 1 || c > DIVISOR;
    }
    report("pit count", bad == 0, "500 latched reads of channel 0 all within 1..1193 (mode 2)");
}

/* Poll until cond() holds, for at most about 500 ms (ten 50 ms windows of
 * PIT channel 2).  The checks wait for events, not for fixed times, so a
 * slow or descheduled implementation only waits longer. */
static int wait_for(int (*cond)(void))
{
    for (int w = 0; w < 10; w++) {
        rt_pit2_start(59659);
        while (!rt_pit2_expired())
            if (cond())
                return 1;
    }
    return cond();
}

static uint32_t mark;
static int irr0_set(void) { return rt_pic_irr() & 1; }
static int ticked(void) { return ticks != mark; }

static void test_rate(void)
{
    /* Up to three 50 ms windows: a host that deschedules the emulator
     * loses ticks, but not in every window. */
    uint32_t n = 0;
    for (int attempt = 0; attempt < 3; attempt++) {
        rt_cli();
        uint32_t t0 = ticks;
        rt_pit2_start(59659);           /* 50 ms */
        while (!rt_pit2_expired())
            rt_sti_hlt(), rt_cli();
        n = ticks - t0;
        rt_sti();
        if (n >= 25 && n <= 75)
            break;
    }
    report("rate", n >= 25 && n <= 75, "50 ms measured by PIT channel 2 saw 25..75 ticks at 1000 Hz");
    if (n < 25 || n > 75)
        printf("  got: %u ticks\n", n);
}

static void test_masked(void)
{
    rt_cli();
    rt_pic_mask(0);
    uint32_t t0 = ticks;
    rt_sti();
    int irr = wait_for(irr0_set);       /* IF=1: a tick would be taken if it could */
    for (volatile int i = 0; i < 100; i++)
        ;
    rt_cli();
    uint32_t t1 = ticks;
    mark = t1;
    rt_sti();
    rt_pic_unmask(0);
    int delivered = wait_for(ticked);
    int ok = t1 == t0 && irr && delivered;
    report("masked", ok,
           "IRQ 0 masked: requested (IRR bit 0) but not delivered with IF=1; unmasking delivered it");
    if (!ok)
        printf("  got: %u ticks masked, irr %d, delivered %d\n", t1 - t0, irr, delivered);
}

static void test_eoi(void)
{
    rt_cli();
    eoi = 0;
    mark = ticks;
    uint32_t t0 = ticks;
    rt_sti();
    int first = wait_for(ticked);       /* the first tick: no EOI */
    int second = wait_for(irr0_set);    /* the next request, held back */
    for (volatile int i = 0; i < 100; i++)
        ;
    rt_cli();
    uint32_t t1 = ticks;
    int isr = rt_pic_isr() & 1;
    eoi = 1;
    mark = ticks;
    rt_pic_eoi(0);
    rt_sti();
    int resumed = wait_for(ticked);
    int ok = first && second && t1 - t0 == 1 && isr && resumed;
    report("eoi", ok,
           "without an EOI one tick, then the next request waits in the IRR (ISR bit 0 set); "
           "after the EOI it is delivered");
    if (!ok)
        printf("  got: first %d second %d, %u ticks without EOI, isr %d, resumed %d\n", first,
               second, t1 - t0, isr, resumed);
}

static void test_if(void)
{
    rt_cli();
    uint32_t t0 = ticks;
    int irr = wait_for(irr0_set);
    uint32_t t1 = ticks;
    uint16_t isr = rt_pic_isr();
    eoi = 0;                            /* a second tick waits behind ISR bit 0 */
    t_sti_shadow();                     /* STI; NOP; CLI */
    uint32_t t2 = ticks, eip = last_eip;
    eoi = 1;
    rt_pic_eoi(0);
    rt_sti();
    int ok = t1 == t0 && irr && !(isr & 1) && t2 == t1 + 1 && eip == (uint32_t)(uintptr_t)t_sti_after;
    report("if", ok,
           "IF=0: the tick waits in the IRR (ISR clear); after STI it comes after exactly one "
           "more instruction");
    if (!ok)
        printf("  got: %u ticks with IF=0, irr %d isr %x, %u after STI, eip %s\n", t1 - t0, irr,
               isr, t2 - t1, eip == (uint32_t)(uintptr_t)t_sti_after ? "ok" : "elsewhere");
}

int main(void)
{
    rt_cpu_init();
    rt_irq_set_handler(0, irq0);
    rt_pit_start(HZ, 2);
    rt_pic_unmask(0);
    rt_sti();

    test_hlt();
    test_pit_read();
    test_rate();
    test_masked();
    test_eoi();
    test_if();

    rt_cli();
    rt_pic_mask(0);
    printf("timer: %u/%u checks passed\n", passed, total);
    return passed == total ? 0 : 1;
}
