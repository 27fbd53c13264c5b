/*
 * rt/cpu.h - privileged x86 helpers (inline, header-only): control
 * registers, EFLAGS, the interrupt flag, HLT, TLB, MSRs, TSC, descriptor
 * table registers and segment registers.
 *
 * Everything here is a thin wrapper around one instruction; nothing checks
 * the CPL, so calling the privileged ones from ring 3 raises #GP as on
 * hardware.
 */
#ifndef RT_CPU_H
#define RT_CPU_H

#include <stdint.h>

/* ---- EFLAGS ---------------------------------------------------------- */
#define EFL_CF    0x00000001u
#define EFL_FIXED 0x00000002u   /* bit 1 always reads as 1 */
#define EFL_PF    0x00000004u
#define EFL_AF    0x00000010u
#define EFL_ZF    0x00000040u
#define EFL_SF    0x00000080u
#define EFL_TF    0x00000100u
#define EFL_IF    0x00000200u
#define EFL_DF    0x00000400u
#define EFL_OF    0x00000800u
#define EFL_IOPL_MASK 0x00003000u
#define EFL_IOPL(n) ((uint32_t)(n) << 12)
#define EFL_NT    0x00004000u
#define EFL_RF    0x00010000u
#define EFL_VM    0x00020000u
#define EFL_AC    0x00040000u
#define EFL_ID    0x00200000u

/* ---- control registers ------------------------------------------------ */
#define CR0_PE 0x00000001u
#define CR0_MP 0x00000002u
#define CR0_EM 0x00000004u
#define CR0_TS 0x00000008u
#define CR0_ET 0x00000010u
#define CR0_NE 0x00000020u
#define CR0_WP 0x00010000u
#define CR0_AM 0x00040000u
#define CR0_NW 0x20000000u
#define CR0_CD 0x40000000u
#define CR0_PG 0x80000000u

#define CR4_VME 0x00000001u
#define CR4_PVI 0x00000002u
#define CR4_TSD 0x00000004u
#define CR4_DE  0x00000008u
#define CR4_PSE 0x00000010u
#define CR4_PAE 0x00000020u
#define CR4_PGE 0x00000080u

#define MSR_IA32_APIC_BASE 0x1Bu
#define APIC_BASE_BSP      0x100u

#define RT_CR_ACCESSORS(n)                                                     \
    static inline uint32_t rt_read_cr##n(void)                                 \
    {                                                                          \
        uint32_t v;                                                            \
        __asm__ volatile("mov %%cr" #n ", %0" : "=r"(v));                      \
        return v;                                                              \
    }                                                                          \
    static inline void rt_write_cr##n(uint32_t v)                              \
    {                                                                          \
        __asm__ volatile("mov %0, %%cr" #n : : "r"(v) : "memory");             \
    }
RT_CR_ACCESSORS(0)
RT_CR_ACCESSORS(2)
RT_CR_ACCESSORS(3)
RT_CR_ACCESSORS(4)
#undef RT_CR_ACCESSORS

static inline uint32_t rt_read_eflags(void)
{
    uint32_t v;
    __asm__ volatile("pushfl; popl %0" : "=r"(v));
    return v;
}

static inline void rt_write_eflags(uint32_t v)
{
    __asm__ volatile("pushl %0; popfl" : : "r"(v) : "memory", "cc");
}

/* ---- interrupts and halting ------------------------------------------ */
static inline void rt_cli(void) { __asm__ volatile("cli" ::: "memory"); }
static inline void rt_sti(void) { __asm__ volatile("sti" ::: "memory"); }
static inline void rt_hlt(void) { __asm__ volatile("hlt" ::: "memory"); }

/* STI; HLT: the STI shadow guarantees that an interrupt which is already
 * pending is taken only after HLT has started, so it wakes the HLT instead
 * of being lost in between.  Returns with IF=1. */
static inline void rt_sti_hlt(void) { __asm__ volatile("sti; hlt" ::: "memory"); }

/* Save EFLAGS and disable interrupts; rt_irq_restore puts IF back. */
static inline uint32_t rt_irq_save(void)
{
    uint32_t f;
    __asm__ volatile("pushfl; popl %0; cli" : "=r"(f) : : "memory");
    return f;
}

static inline void rt_irq_restore(uint32_t f)
{
    __asm__ volatile("pushl %0; popfl" : : "r"(f) : "memory", "cc");
}

/* ---- TLB, caches, MSRs, TSC ------------------------------------------ */
static inline void rt_invlpg(uint32_t va)
{
    __asm__ volatile("invlpg (%0)" : : "r"(va) : "memory");
}

/* Reload CR3 with its own value: flushes every non-global TLB entry. */
static inline void rt_flush_tlb(void) { rt_write_cr3(rt_read_cr3()); }

static inline void rt_wbinvd(void) { __asm__ volatile("wbinvd" ::: "memory"); }
static inline void rt_clts(void) { __asm__ volatile("clts" ::: "memory"); }

static inline uint64_t rt_rdmsr(uint32_t msr)
{
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return ((uint64_t)hi << 32) | lo;
}

static inline void rt_wrmsr(uint32_t msr, uint64_t v)
{
    __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

static inline uint64_t rt_rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

/* ---- descriptor table registers --------------------------------------- */
struct rt_dtr {
    uint16_t limit;
    uint32_t base;
} __attribute__((packed));

static inline void rt_lgdt(const struct rt_dtr *d) { __asm__ volatile("lgdt %0" : : "m"(*d)); }
static inline void rt_lidt(const struct rt_dtr *d) { __asm__ volatile("lidt %0" : : "m"(*d)); }
static inline void rt_sgdt(struct rt_dtr *d) { __asm__ volatile("sgdt %0" : "=m"(*d)); }
static inline void rt_sidt(struct rt_dtr *d) { __asm__ volatile("sidt %0" : "=m"(*d)); }
static inline void rt_ltr(uint16_t sel) { __asm__ volatile("ltr %0" : : "r"(sel)); }
static inline void rt_lldt(uint16_t sel) { __asm__ volatile("lldt %0" : : "r"(sel)); }

/* STR/SLDT into a 32-bit register leave bits 31:16 implementation
 * specific on old CPUs: the 16-bit memory forms are used instead. */
static inline uint16_t rt_str(void)
{
    uint16_t v;
    __asm__ volatile("str %0" : "=m"(v));
    return v;
}

static inline uint16_t rt_sldt(void)
{
    uint16_t v;
    __asm__ volatile("sldt %0" : "=m"(v));
    return v;
}

/* ---- segment registers ------------------------------------------------ */
/* Reads use a 16-bit memory store, whose result is fully defined (a MOV
 * from a segment register to a 32-bit register leaves the upper half
 * implementation specific on some CPUs). */
#define RT_SEG_READ(name)                                                      \
    static inline uint16_t rt_read_##name(void)                                \
    {                                                                          \
        uint16_t v;                                                            \
        __asm__ volatile("movw %%" #name ", %0" : "=m"(v));                    \
        return v;                                                              \
    }
RT_SEG_READ(cs)
RT_SEG_READ(ds)
RT_SEG_READ(es)
RT_SEG_READ(fs)
RT_SEG_READ(gs)
RT_SEG_READ(ss)
#undef RT_SEG_READ

static inline void rt_load_ds(uint16_t s) { __asm__ volatile("movw %0, %%ds" : : "rm"(s) : "memory"); }
static inline void rt_load_es(uint16_t s) { __asm__ volatile("movw %0, %%es" : : "rm"(s) : "memory"); }
static inline void rt_load_fs(uint16_t s) { __asm__ volatile("movw %0, %%fs" : : "rm"(s) : "memory"); }
static inline void rt_load_gs(uint16_t s) { __asm__ volatile("movw %0, %%gs" : : "rm"(s) : "memory"); }

#endif /* RT_CPU_H */
