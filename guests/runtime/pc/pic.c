/*
 * runtime/pc/pic.c - 8259A PICs and 8254 PIT (rt/pic.h).
 */
#include <rt/io.h>
#include <rt/pic.h>
#include <rt/trap.h>

void rt_pic_init(void)
{
    outb(PIC1_DATA, 0xFF);              /* mask everything while reprogramming */
    outb(PIC2_DATA, 0xFF);
    outb(PIC1_CMD, 0x11);               /* ICW1: edge, cascade, ICW4 follows */
    outb(PIC2_CMD, 0x11);
    outb(PIC1_DATA, RT_IRQ_BASE);       /* ICW2: vector base */
    outb(PIC2_DATA, RT_IRQ_BASE + 8);
    outb(PIC1_DATA, 0x04);              /* ICW3: slave on IRQ 2 */
    outb(PIC2_DATA, 0x02);              /* ICW3: slave identity 2 */
    outb(PIC1_DATA, 0x01);              /* ICW4: 8086 mode, normal EOI */
    outb(PIC2_DATA, 0x01);
    outb(PIC1_DATA, 0xFF);              /* OCW1: all masked */
    outb(PIC2_DATA, 0xFF);
}

void rt_pic_set_masks(uint16_t masks)
{
    outb(PIC1_DATA, (uint8_t)masks);
    outb(PIC2_DATA, (uint8_t)(masks >> 8));
}

uint16_t rt_pic_get_masks(void)
{
    return (uint16_t)(inb(PIC1_DATA) | (inb(PIC2_DATA) << 8));
}

void rt_pic_mask(unsigned irq)
{
    rt_pic_set_masks((uint16_t)(rt_pic_get_masks() | (1u << irq)));
}

void rt_pic_unmask(unsigned irq)
{
    uint16_t m = (uint16_t)(rt_pic_get_masks() & ~(1u << irq));
    if (irq >= 8)
        m &= (uint16_t)~(1u << 2);
    rt_pic_set_masks(m);
}

void rt_pic_eoi(unsigned irq)
{
    if (irq >= 8)
        outb(PIC2_CMD, 0x20);
    outb(PIC1_CMD, 0x20);
}

static uint16_t read_ocw3(uint8_t ocw3)
{
    outb(PIC1_CMD, ocw3);
    outb(PIC2_CMD, ocw3);
    uint16_t v = (uint16_t)(inb(PIC1_CMD) | (inb(PIC2_CMD) << 8));
    outb(PIC1_CMD, 0x0A);               /* leave the IRR selected (the reset default) */
    outb(PIC2_CMD, 0x0A);
    return v;
}

uint16_t rt_pic_isr(void) { return read_ocw3(0x0B); }
uint16_t rt_pic_irr(void) { return read_ocw3(0x0A); }

void rt_irq_set_handler(unsigned irq, void (*h)(struct rt_frame *f))
{
    rt_set_handler(RT_IRQ_BASE + irq, h);
}

static uint32_t divisor(unsigned hz)
{
    uint32_t d = (PIT_HZ + hz / 2) / hz;
    if (d < 1)
        d = 1;
    if (d > 65536)
        d = 65536;
    return d;
}

static void load_ch(uint16_t port, uint32_t count)
{
    outb(port, (uint8_t)count);          /* 65536 is written as 0 */
    outb(port, (uint8_t)(count >> 8));
}

void rt_pit_start(unsigned hz, unsigned mode)
{
    outb(PIT_CMD, (uint8_t)(0x30 | ((mode & 7) << 1)));  /* ch 0, lobyte/hibyte */
    load_ch(PIT_CH0, divisor(hz));
}

void rt_pit_oneshot(uint32_t count)
{
    outb(PIT_CMD, 0x30);                 /* ch 0, lobyte/hibyte, mode 0 */
    load_ch(PIT_CH0, count);
}

uint16_t rt_pit_read(void)
{
    outb(PIT_CMD, 0x00);                 /* latch channel 0 */
    uint8_t lo = inb(PIT_CH0);
    uint8_t hi = inb(PIT_CH0);
    return (uint16_t)(lo | (hi << 8));
}

void rt_pit2_start(uint32_t count)
{
    uint8_t b = inb(PORT_B);
    outb(PORT_B, (uint8_t)(b & ~0x03));  /* gate off, speaker off */
    outb(PIT_CMD, 0xB0);                 /* ch 2, lobyte/hibyte, mode 0 */
    load_ch(PIT_CH2, count);
    outb(PORT_B, (uint8_t)((b & ~0x02) | 0x01));  /* gate on: counting starts */
}

int rt_pit2_expired(void)
{
    return (inb(PORT_B) & 0x20) != 0;
}

void rt_pit2_delay_us(unsigned us)
{
    if (us > 54925)
        us = 54925;
    rt_pit2_start((us * 1193u) / 1000u + 1);     /* 1.193182 clocks per microsecond */
    while (!rt_pit2_expired())
        ;
}
