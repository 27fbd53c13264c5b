/*
 * rt/desc.h - the runtime's GDT, TSS and IDT (runtime/pc/desc.c).
 *
 * rt_cpu_init() loads a GDT with flat ring-0 and ring-3 code and data
 * segments and a 32-bit TSS, reloads every segment register, loads TR and
 * an IDT whose 256 gates all lead to the runtime's assembly stubs
 * (rt/trap.h), and calls rt_pic_init() (rt/pic.h): IRQs remapped to
 * vectors 0x20-0x2F and all masked, so that STI is safe afterwards (the
 * BIOS leaves the timer unmasked on vector 8).  It does not touch paging
 * or EFLAGS.IF.
 *
 * GDT layout (RT_GDT_ENTRIES entries):
 *
 *   index  selector  descriptor
 *   0      0x00      null
 *   1      0x08      RT_KCODE  ring-0 code, base 0, limit 4 GiB, 32-bit
 *   2      0x10      RT_KDATA  ring-0 data, base 0, limit 4 GiB, writable
 *   3      0x1B      RT_UCODE  ring-3 code (DPL 3), flat, 32-bit
 *   4      0x23      RT_UDATA  ring-3 data (DPL 3), flat, writable
 *   5      0x28      RT_TSS_SEL  the TSS (32-bit, busy after LTR)
 *   6..    free for the guest (RT_GDT_FREE is the first free index)
 *
 * All runtime descriptors are created with the accessed bit already set,
 * so the GDT is not written by the CPU when they are loaded.
 */
#ifndef RT_DESC_H
#define RT_DESC_H

#define RT_KCODE    0x08
#define RT_KDATA    0x10
#define RT_UCODE    0x1B
#define RT_UDATA    0x23
#define RT_TSS_SEL  0x28

#define RT_GDT_FREE     6
#define RT_GDT_ENTRIES  32

/* A selector for GDT index i with requested privilege level rpl. */
#define RT_SEL(i, rpl) (((i) << 3) | (rpl))

/* Access byte (bits 15:8 of the descriptor's high dword). */
#define SEG_P          0x80
#define SEG_DPL(n)     ((n) << 5)
#define SEG_S          0x10     /* code/data (clear: system descriptor) */
#define SEG_CODE       0x08
#define SEG_CONFORMING 0x04     /* code */
#define SEG_READABLE   0x02     /* code */
#define SEG_EXPDOWN    0x04     /* data */
#define SEG_WRITABLE   0x02     /* data */
#define SEG_ACCESSED   0x01
/* System descriptor types (SEG_S clear). */
#define SEG_TYPE_LDT       0x2
#define SEG_TYPE_TSS32     0x9
#define SEG_TYPE_TSS32_BUSY 0xB
#define SEG_TYPE_CALLGATE  0xC
#define SEG_TYPE_INTGATE   0xE
#define SEG_TYPE_TRAPGATE  0xF
/* Flags nibble (bits 23:20 of the high dword). */
#define SEG_G   0x8              /* limit in 4 KiB units */
#define SEG_DB  0x4              /* 32-bit code / big stack / 4 GiB expand-down */

#ifndef __ASSEMBLER__
#include <stdint.h>

/* The 32-bit TSS as the CPU sees it, followed by the I/O permission
 * bitmap (one bit per port, 1 = denied) and the required all-ones byte. */
struct rt_tss {
    uint16_t link, _r0;
    uint32_t esp0;
    uint16_t ss0, _r1;
    uint32_t esp1;
    uint16_t ss1, _r2;
    uint32_t esp2;
    uint16_t ss2, _r3;
    uint32_t cr3, eip, eflags;
    uint32_t eax, ecx, edx, ebx, esp, ebp, esi, edi;
    uint16_t es, _r4, cs, _r5, ss, _r6, ds, _r7, fs, _r8, gs, _r9, ldt, _r10;
    uint16_t trap, iomap_base;
    uint8_t iopb[8192];
    uint8_t iopb_end;           /* 0xFF */
} __attribute__((packed, aligned(128)));

extern uint64_t rt_gdt[RT_GDT_ENTRIES];
extern uint64_t rt_idt[256];
extern struct rt_tss rt_tss;
/* The stack the CPU switches to on an interrupt or exception from ring 3
 * (TSS.ESP0 points at its top unless rt_tss_set_esp0 changes it). */
#define RT_TRAP_STACK_SIZE 8192
extern uint8_t rt_trap_stack[RT_TRAP_STACK_SIZE];
#define RT_TRAP_STACK_TOP ((uint32_t)(uintptr_t)(rt_trap_stack + RT_TRAP_STACK_SIZE))

/* Load GDT, segment registers, TR and IDT as described above. */
void rt_cpu_init(void);

/* ---- GDT ---- */
uint64_t rt_desc_make(uint32_t base, uint32_t limit, uint8_t access, uint8_t flags);
/* Writes GDT entry `index` (does not reload anything). */
void rt_gdt_set(unsigned index, uint32_t base, uint32_t limit, uint8_t access, uint8_t flags);
/* A call gate in GDT entry `index` to sel:offset, copying `params`
 * dwords from the caller's stack on a privilege change. */
void rt_gdt_set_callgate(unsigned index, uint16_t sel, uint32_t offset, unsigned params, unsigned dpl);
/* Load the GDTR with the runtime GDT again (after editing the limit...). */
void rt_gdt_reload(void);

/* ---- TSS ---- */
void rt_tss_set_esp0(uint32_t esp0);
/* Allow (1) or deny (0) ports [port, port + count) to CPL > IOPL code. */
void rt_iopb_set(uint16_t port, unsigned count, int allow);

/* ---- IDT ---- */
/* Gate `vector` -> sel:offset.  type: SEG_TYPE_INTGATE or SEG_TYPE_TRAPGATE. */
void rt_idt_set_gate(unsigned vector, uint16_t sel, uint32_t offset, unsigned type, unsigned dpl);
/* Gate `vector` -> the runtime stub for that vector (what rt_cpu_init
 * installs: interrupt gates, DPL 0 except #BP and #OF, which have DPL 3 so
 * that INT3 and INTO work from ring 3). */
void rt_idt_set_default(unsigned vector, unsigned type, unsigned dpl);
/* Set or clear the present bit of a gate. */
void rt_idt_set_present(unsigned vector, int present);
/* The address of the runtime's entry stub for `vector`. */
uint32_t rt_isr_stub(unsigned vector);

#endif /* __ASSEMBLER__ */

#endif /* RT_DESC_H */
