/*
 * rt/pic.h - the 8259A interrupt controllers and the 8254 timer
 * (runtime/pc/pic.c).
 *
 * rt_pic_init() remaps IRQ 0-7 to vectors 0x20-0x27 and IRQ 8-15 to
 * 0x28-0x2F (edge triggered, cascade on IRQ 2, normal EOI) and masks every
 * IRQ.  Handlers for IRQs are ordinary vector handlers (rt/trap.h); they
 * must send the EOI themselves with rt_pic_eoi(irq) (the runtime never does
 * it behind the handler's back, so a guest can test what happens without).
 */
#ifndef RT_PIC_H
#define RT_PIC_H

#include <stdint.h>

#define RT_IRQ_BASE 0x20        /* vector of IRQ 0; IRQ n is RT_IRQ_BASE + n */

#define PIC1_CMD  0x20
#define PIC1_DATA 0x21
#define PIC2_CMD  0xA0
#define PIC2_DATA 0xA1

void rt_pic_init(void);
void rt_pic_mask(unsigned irq);
void rt_pic_unmask(unsigned irq);        /* unmasking IRQ 8-15 also unmasks IRQ 2 */
void rt_pic_set_masks(uint16_t masks);   /* bit n = IRQ n masked */
uint16_t rt_pic_get_masks(void);
void rt_pic_eoi(unsigned irq);           /* non-specific EOI (to both PICs for 8-15) */
uint16_t rt_pic_isr(void);               /* in-service registers, bit n = IRQ n */
uint16_t rt_pic_irr(void);               /* request registers */

/* Install a handler for IRQ `irq` (vector RT_IRQ_BASE + irq). */
struct rt_frame;
void rt_irq_set_handler(unsigned irq, void (*h)(struct rt_frame *f));

/* ---- 8254 PIT ---------------------------------------------------------- */
#define PIT_HZ     1193182u      /* input clock */
#define PIT_CH0    0x40
#define PIT_CH2    0x42
#define PIT_CMD    0x43
#define PORT_B     0x61          /* bit 0: channel 2 gate, bit 5: channel 2 output */

/* Channel 0 in mode 2 (rate generator) or 3 (square wave) at `hz`
 * (divisor PIT_HZ / hz, rounded to nearest, 1..65536): IRQ 0 at that rate. */
void rt_pit_start(unsigned hz, unsigned mode);
/* Channel 0 in mode 0 (interrupt on terminal count): one IRQ 0 edge
 * after `count` input clocks (1..65536). */
void rt_pit_oneshot(uint32_t count);
/* The current count of channel 0 (counter latch command). */
uint16_t rt_pit_read(void);

/* Channel 2 as a stopwatch, independent of interrupts: mode 0 with
 * `count` input clocks (1..65536), gate on, speaker off.  rt_pit2_expired()
 * becomes true (port 0x61 bit 5, the OUT2 line) when the count runs out. */
void rt_pit2_start(uint32_t count);
int rt_pit2_expired(void);
/* Busy-wait `us` microseconds (at most 54925) on channel 2. */
void rt_pit2_delay_us(unsigned us);

#endif /* RT_PIC_H */
