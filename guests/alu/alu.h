/*
 * alu/alu.h - data structures shared by the alu guest, its generated tables
 * and the assembly harness (harness.h).
 *
 * Every test "variant" is a small assembly function (generated into
 * alu_variants.S) that loads EAX..EDI and EFLAGS from an alu_io block,
 * executes the instruction(s) under test, and stores the registers, EFLAGS
 * and the stack-pointer change back.  A "case" is one variant run on one
 * set of inputs, with the known answer recorded on a real x86 CPU.
 */
#ifndef ALU_H
#define ALU_H

/* Register slots, in this order, in alu_io.in/out and alu_case.in/out. */
#define R_EAX 0
#define R_ECX 1
#define R_EDX 2
#define R_EBX 3
#define R_EBP 4
#define R_ESI 5
#define R_EDI 6
#define R_EFLAGS 7
#define ALU_NREGS 8

#define ALU_MEM_SIZE 64

/* Byte offsets inside struct alu_io, for the assembly harness. */
#define IO_IN      0
#define IO_OUT     32
#define IO_ESPD    64
#define IO_MEM     80

#ifndef __ASSEMBLER__
#include <stdint.h>

/* The block a variant function reads its inputs from and writes to. */
struct alu_io {
    uint32_t in[ALU_NREGS];
    uint32_t out[ALU_NREGS];
    int32_t esp_delta;          /* ESP after the test code minus ESP before */
    uint32_t pad[3];
    uint8_t mem[ALU_MEM_SIZE];  /* scratch memory operands point into */
} __attribute__((aligned(16)));

_Static_assert(__builtin_offsetof(struct alu_io, in) == IO_IN, "IO_IN");
_Static_assert(__builtin_offsetof(struct alu_io, out) == IO_OUT, "IO_OUT");
_Static_assert(__builtin_offsetof(struct alu_io, esp_delta) == IO_ESPD, "IO_ESPD");
_Static_assert(__builtin_offsetof(struct alu_io, mem) == IO_MEM, "IO_MEM");

typedef void (*alu_fn)(struct alu_io *io);

struct alu_variant {
    alu_fn fn;
    const char *text;           /* the instruction(s), for messages */
    uint16_t group;             /* index into alu_groups */
    uint16_t uses_mem;          /* mem[] is an input/output */
};

struct alu_case {
    uint16_t variant;           /* index into alu_variants */
    uint16_t mem;               /* 0, or 1 + index into alu_mem_images */
    uint32_t flags_mask;        /* EFLAGS bits that are defined and compared */
    uint32_t in[ALU_NREGS];     /* inputs; in[R_EFLAGS] is loaded with POPF */
    uint32_t out[ALU_NREGS];    /* known answer; out[R_EFLAGS] already masked */
    int32_t esp_delta;
    uint32_t mem_hash;          /* FNV-1a of mem[] afterwards (if uses_mem) */
};

/* Generated (alu_cases.c). Cases are sorted by group. */
extern const char *const alu_groups[];
extern const unsigned alu_ngroups;
extern const struct alu_variant alu_variants[];
extern const struct alu_case alu_cases[];
extern const unsigned alu_ncases;
extern const uint8_t alu_mem_images[][ALU_MEM_SIZE];

/* Used by the harness: the io block of the running case, the stack pointer
 * around the test code. */
extern struct alu_io *alu_cur_io;
extern uint32_t alu_saved_esp, alu_esp_after;

#endif /* !__ASSEMBLER__ */
#endif /* ALU_H */
