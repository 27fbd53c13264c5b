/*
 * runtime/pc/trap.c - C side of interrupt dispatch, the default handler and
 * fault catching (rt/trap.h).
 */
#include <rt/cpu.h>
#include <rt/desc.h>
#include <rt/pic.h>
#include <rt/rt.h>
#include <rt/trap.h>

static rt_handler_t handlers[256];

rt_jmp_buf rt_try_jb;
static struct rt_fault *try_fault;

void rt_isr_dispatch(struct rt_frame *f);

void rt_isr_dispatch(struct rt_frame *f)
{
    rt_handler_t h = handlers[f->vector & 0xFF];
    if (h)
        h(f);
    else
        rt_trap_default(f);
}

rt_handler_t rt_set_handler(unsigned vector, rt_handler_t h)
{
    rt_handler_t old = handlers[vector & 0xFF];
    handlers[vector & 0xFF] = h;
    return old;
}

static const char *const exc_names[32] = {
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM",
    "#DF", "CSO", "#TS", "#NP", "#SS", "#GP", "#PF", "RSV",
    "#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "RSV", "RSV",
    "RSV", "RSV", "RSV", "RSV", "#HV", "#VC", "#SX", "RSV",
};

const char *rt_vector_name(unsigned vector)
{
    if (vector < 32)
        return exc_names[vector];
    if (vector >= RT_IRQ_BASE && vector < RT_IRQ_BASE + 16)
        return "IRQ";
    return "INT";
}

void rt_panic_frame(const struct rt_frame *f)
{
    int user = rt_frame_from_user(f);
    printf("unhandled %s (vector %u) error %04x at %04x:%08x%s\n", rt_vector_name(f->vector),
           f->vector, f->error, f->cs & 0xFFFF, f->eip, user ? " (ring 3)" : "");
    printf("eax=%08x ebx=%08x ecx=%08x edx=%08x\n", f->eax, f->ebx, f->ecx, f->edx);
    printf("esi=%08x edi=%08x ebp=%08x esp=%08x\n", f->esi, f->edi, f->ebp, rt_frame_esp(f));
    printf("eflags=%08x ds=%04x es=%04x fs=%04x gs=%04x ss=%04x\n", f->eflags, f->ds & 0xFFFF,
           f->es & 0xFFFF, f->fs & 0xFFFF, f->gs & 0xFFFF, user ? f->user_ss & 0xFFFF : rt_read_ss());
    printf("cr0=%08x cr2=%08x cr3=%08x cr4=%08x\n", rt_read_cr0(), rt_read_cr2(), rt_read_cr3(),
           rt_read_cr4());
    exit(RT_EXIT_UNHANDLED);
}

void rt_try_arm(struct rt_fault *f)
{
    f->vector = RT_NO_FAULT;
    try_fault = f;
}

void rt_try_end(void)
{
    try_fault = 0;
}

void rt_try_catch(struct rt_frame *fr)
{
    struct rt_fault *f = try_fault;
    if (!f)
        return;
    try_fault = 0;
    f->cr2 = rt_read_cr2();
    f->vector = fr->vector;
    f->error = fr->error;
    f->eip = fr->eip;
    f->cs = fr->cs & 0xFFFF;
    f->eflags = fr->eflags;
    f->esp = rt_frame_esp(fr);
    f->ss = rt_frame_from_user(fr) ? fr->user_ss & 0xFFFF : rt_read_ss();
    f->frame = *fr;
    rt_longjmp(rt_try_jb, 1);
}

int rt_try_call(void (*fn)(void *), void *arg, struct rt_fault *f)
{
    if (RT_TRY(f)) {
        fn(arg);
        rt_try_end();
        return 0;
    }
    return 1;
}

void rt_trap_default(struct rt_frame *f)
{
    unsigned v = f->vector;
    if (v < 32 && try_fault)
        rt_try_catch(f);
    if (v == RT_IRQ_BASE + 7 && !(rt_pic_isr() & (1u << 7)))
        return;                             /* spurious IRQ 7 */
    if (v == RT_IRQ_BASE + 15 && !(rt_pic_isr() & (1u << 15))) {
        rt_pic_eoi(2);                      /* spurious IRQ 15: the master saw IRQ 2 */
        return;
    }
    rt_panic_frame(f);
}
