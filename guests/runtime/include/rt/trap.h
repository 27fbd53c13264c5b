/*
 * rt/trap.h - interrupts and exceptions (runtime/pc/isr.S, runtime/pc/trap.c).
 *
 * Every IDT vector has an assembly stub.  It pushes a uniform frame
 * (struct rt_frame: 0 as the error code when the CPU pushes none, the
 * vector, the general registers and DS/ES/FS/GS), loads RT_KDATA into DS
 * and ES, clears DF and calls the C handler installed for the vector with
 * rt_set_handler().  When the handler returns, the stub restores the
 * frame, so a handler may change registers, EIP (to skip an instruction),
 * EFLAGS, and for a frame from ring 3 ESP and SS, before the IRET.
 * Handlers run with IF=0 (the runtime installs interrupt gates).
 *
 * Vectors without a handler go to rt_trap_default():
 *   - an exception (vector < 32) while an rt_try is armed is caught:
 *     recorded in the rt_fault and resumed at the rt_try point;
 *   - a spurious IRQ 7 or 15 (vector 0x27, 0x2F with the ISR bit clear)
 *     is ignored (for 15, the master PIC gets its EOI);
 *   - anything else is fatal: rt_panic_frame() prints the vector, error
 *     code, EIP and registers and exits with RT_EXIT_UNHANDLED.
 *
 * Caution: the stubs of vectors 8, 10-14, 17, 21, 29 and 30 expect an error
 * code from the CPU; raising those vectors with INT n leaves the frame one
 * word off.
 */
#ifndef RT_TRAP_H
#define RT_TRAP_H

#include <stdint.h>

/* Exception vectors. */
enum {
    EXC_DE = 0, EXC_DB = 1, EXC_NMI = 2, EXC_BP = 3, EXC_OF = 4, EXC_BR = 5,
    EXC_UD = 6, EXC_NM = 7, EXC_DF = 8, EXC_CSO = 9, EXC_TS = 10, EXC_NP = 11,
    EXC_SS = 12, EXC_GP = 13, EXC_PF = 14, EXC_MF = 16, EXC_AC = 17,
    EXC_MC = 18, EXC_XM = 19, EXC_VE = 20, EXC_CP = 21,
};

/* #PF error code bits. */
#define PF_P    0x1     /* 1: protection violation, 0: not present */
#define PF_W    0x2     /* write access */
#define PF_U    0x4     /* access from CPL 3 */
#define PF_RSVD 0x8
#define PF_I    0x10    /* instruction fetch (PAE/NX or SMEP only) */

/* Selector error codes (#TS #NP #SS #GP). */
#define ERR_EXT 0x1     /* caused by an external event */
#define ERR_IDT 0x2     /* the index refers to an IDT gate */
#define ERR_TI  0x4     /* LDT */

#define RT_EXIT_UNHANDLED 3     /* exit code after an unhandled trap */

struct rt_frame {
    uint32_t gs, fs, es, ds;                /* low 16 bits are the selector, the rest 0 */
    uint32_t edi, esi, ebp, esp_pushal;     /* PUSHAL order; esp_pushal is ignored on return */
    uint32_t ebx, edx, ecx, eax;
    uint32_t vector;
    uint32_t error;                         /* 0 when the CPU pushes none */
    uint32_t eip, cs, eflags;               /* pushed by the CPU; only CS[15:0] is defined */
    uint32_t user_esp, user_ss;             /* pushed by the CPU only on entry from ring 3 */
};

typedef void (*rt_handler_t)(struct rt_frame *f);

/* Install `h` for `vector` (NULL restores the default); returns the old one. */
rt_handler_t rt_set_handler(unsigned vector, rt_handler_t h);

/* True if the frame was pushed on entry from ring 3. */
static inline int rt_frame_from_user(const struct rt_frame *f) { return (f->cs & 3) != 0; }

/* The ESP of the interrupted code. */
static inline uint32_t rt_frame_esp(const struct rt_frame *f)
{
    return rt_frame_from_user(f) ? f->user_esp : (uint32_t)(uintptr_t)&f->user_esp;
}

/* What the runtime does for vectors without a handler (see above); a
 * handler may call it for cases it does not want to handle itself. */
void rt_trap_default(struct rt_frame *f);

/* Print "unhandled <name> (vector N) error E at CS:EIP" and the registers,
 * then exit(RT_EXIT_UNHANDLED). */
void rt_panic_frame(const struct rt_frame *f) __attribute__((noreturn));

/* "#GP", "#PF", ... for vector < 32; "IRQ" or "INT" otherwise. */
const char *rt_vector_name(unsigned vector);

/* ---- setjmp/longjmp (runtime/pc/isr.S) ---------------------------------- */
/* Saves EBX ESI EDI EBP ESP EIP, EFLAGS, CS, SS and DS/ES/FS/GS.
 * rt_longjmp restores all of them (CS, EIP and EFLAGS with an IRET), so it
 * may be called from a handler to leave it for good, and may return to
 * ring 0 from a fault taken in ring 3.  Ring 0 only. */
typedef uint32_t rt_jmp_buf[13];
int rt_setjmp(rt_jmp_buf jb) __attribute__((returns_twice));
void rt_longjmp(rt_jmp_buf jb, int val) __attribute__((noreturn));

/* ---- catching faults ---------------------------------------------------- */
#define RT_NO_FAULT 0xFFFFFFFFu

struct rt_fault {
    uint32_t vector;        /* RT_NO_FAULT if nothing was caught */
    uint32_t error;
    uint32_t eip, cs, eflags;
    uint32_t esp, ss;       /* of the faulting code */
    uint32_t cr2;           /* read in the handler (meaningful for #PF) */
    struct rt_frame frame;  /* the whole frame, registers included */
};

/*
 * Call fn(arg) with faults caught: if an exception without its own
 * handler happens (at any CPL), it is recorded in *f and rt_try_call
 * returns 1; if fn returns, rt_try_call returns 0 with f->vector ==
 * RT_NO_FAULT.  Either way EFLAGS, the segment registers and the callee-
 * saved registers are those of the caller.  Not nestable.
 */
int rt_try_call(void (*fn)(void *), void *arg, struct rt_fault *f);

/* The macro form, for code inline in the caller:
 *
 *     struct rt_fault f;
 *     if (RT_TRY(&f)) {
 *         ... code that may fault ...
 *         rt_try_end();
 *     }
 *     if (f.vector == EXC_UD) ...
 *
 * The usual setjmp rules apply: locals changed inside the body and used
 * after a fault must be volatile. */
extern rt_jmp_buf rt_try_jb;
void rt_try_arm(struct rt_fault *f);
void rt_try_end(void);
#define RT_TRY(f) (rt_try_arm(f), rt_setjmp(rt_try_jb) == 0)

/* Copy a frame into a fault record and leave the handler for the armed
 * rt_try (what rt_trap_default does for exceptions).  Returns only if no
 * rt_try is armed. */
void rt_try_catch(struct rt_frame *f);

#endif /* RT_TRAP_H */
