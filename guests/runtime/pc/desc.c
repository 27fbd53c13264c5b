/*
 * runtime/pc/desc.c - GDT, TSS and IDT (rt/desc.h).
 */
#include <rt/cpu.h>
#include <rt/desc.h>
#include <rt/pic.h>
#include <rt/rt.h>

uint64_t rt_gdt[RT_GDT_ENTRIES] __attribute__((aligned(8)));
uint64_t rt_idt[256] __attribute__((aligned(8)));

/* The I/O bitmap starts out all ones (every port denied to CPL > IOPL);
 * in .data, so that no code has to fill 8 KiB at start-up. */
struct rt_tss rt_tss = {
    .ss0 = RT_KDATA,
    .iomap_base = __builtin_offsetof(struct rt_tss, iopb),
    .iopb = { [0 ... 8191] = 0xFF },
    .iopb_end = 0xFF,
};

uint8_t rt_trap_stack[RT_TRAP_STACK_SIZE] __attribute__((aligned(16)));

extern const uint8_t rt_isr_stubs[];

uint64_t rt_desc_make(uint32_t base, uint32_t limit, uint8_t access, uint8_t flags)
{
    uint32_t lo = (limit & 0xFFFFu) | (base << 16);
    uint32_t hi = ((base >> 16) & 0xFFu) | ((uint32_t)access << 8) | (limit & 0xF0000u) |
                  ((uint32_t)(flags & 0xF) << 20) | (base & 0xFF000000u);
    return ((uint64_t)hi << 32) | lo;
}

void rt_gdt_set(unsigned index, uint32_t base, uint32_t limit, uint8_t access, uint8_t flags)
{
    rt_gdt[index] = rt_desc_make(base, limit, access, flags);
}

static uint64_t gate(uint16_t sel, uint32_t offset, unsigned type, unsigned dpl, unsigned params)
{
    uint32_t lo = (offset & 0xFFFFu) | ((uint32_t)sel << 16);
    uint32_t hi = (offset & 0xFFFF0000u) | 0x8000u | ((dpl & 3) << 13) | ((type & 0xF) << 8) |
                  (params & 0x1F);
    return ((uint64_t)hi << 32) | lo;
}

void rt_gdt_set_callgate(unsigned index, uint16_t sel, uint32_t offset, unsigned params, unsigned dpl)
{
    rt_gdt[index] = gate(sel, offset, SEG_TYPE_CALLGATE, dpl, params);
}

void rt_gdt_reload(void)
{
    struct rt_dtr d = { sizeof(rt_gdt) - 1, (uint32_t)(uintptr_t)rt_gdt };
    rt_lgdt(&d);
}

void rt_tss_set_esp0(uint32_t esp0)
{
    rt_tss.esp0 = esp0;
}

void rt_iopb_set(uint16_t port, unsigned count, int allow)
{
    for (unsigned p = port; p < (unsigned)port + count && p < 65536; p++) {
        if (allow)
            rt_tss.iopb[p >> 3] &= (uint8_t)~(1u << (p & 7));
        else
            rt_tss.iopb[p >> 3] |= (uint8_t)(1u << (p & 7));
    }
}

uint32_t rt_isr_stub(unsigned vector)
{
    return (uint32_t)(uintptr_t)(rt_isr_stubs + 16 * vector);
}

void rt_idt_set_gate(unsigned vector, uint16_t sel, uint32_t offset, unsigned type, unsigned dpl)
{
    rt_idt[vector] = gate(sel, offset, type, dpl, 0);
}

void rt_idt_set_default(unsigned vector, unsigned type, unsigned dpl)
{
    rt_idt_set_gate(vector, RT_KCODE, rt_isr_stub(vector), type, dpl);
}

void rt_idt_set_present(unsigned vector, int present)
{
    if (present)
        rt_idt[vector] |= 1ull << 47;
    else
        rt_idt[vector] &= ~(1ull << 47);
}

void rt_cpu_init(void)
{
    struct rt_dtr idtr = { sizeof(rt_idt) - 1, (uint32_t)(uintptr_t)rt_idt };

    rt_gdt[0] = 0;
    rt_gdt_set(1, 0, 0xFFFFF, SEG_P | SEG_S | SEG_CODE | SEG_READABLE | SEG_ACCESSED, SEG_G | SEG_DB);
    rt_gdt_set(2, 0, 0xFFFFF, SEG_P | SEG_S | SEG_WRITABLE | SEG_ACCESSED, SEG_G | SEG_DB);
    rt_gdt_set(3, 0, 0xFFFFF, SEG_P | SEG_DPL(3) | SEG_S | SEG_CODE | SEG_READABLE | SEG_ACCESSED,
               SEG_G | SEG_DB);
    rt_gdt_set(4, 0, 0xFFFFF, SEG_P | SEG_DPL(3) | SEG_S | SEG_WRITABLE | SEG_ACCESSED, SEG_G | SEG_DB);
    rt_gdt_set(5, (uint32_t)(uintptr_t)&rt_tss, __builtin_offsetof(struct rt_tss, iopb_end),
               SEG_P | SEG_TYPE_TSS32, 0);
    rt_gdt_reload();
    __asm__ volatile(
        "ljmp %[cs], $1f\n"
        "1:\n\t"
        "movl %[ds], %%eax\n\t"
        "movl %%eax, %%ds\n\t"
        "movl %%eax, %%es\n\t"
        "movl %%eax, %%fs\n\t"
        "movl %%eax, %%gs\n\t"
        "movl %%eax, %%ss\n\t"
        : : [cs] "i"(RT_KCODE), [ds] "i"(RT_KDATA) : "eax", "memory");

    rt_tss.ss0 = RT_KDATA;
    rt_tss.esp0 = RT_TRAP_STACK_TOP;
    rt_ltr(RT_TSS_SEL);

    for (unsigned v = 0; v < 256; v++)
        rt_idt_set_default(v, SEG_TYPE_INTGATE, v == 3 || v == 4 ? 3 : 0);
    rt_lidt(&idtr);

    /* The BIOS leaves IRQ 0-7 on vectors 8-15, with the timer unmasked:
     * an STI would soon deliver a timer tick as a "double fault". */
    rt_pic_init();
}
