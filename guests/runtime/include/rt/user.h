/*
 * rt/user.h - ring 3: user sections, entering user mode, INT 0x80 system
 * calls (runtime/pc/user.c, runtime/pc/isr.S).
 *
 * User code and data live in sections of their own (see runtime/guest.ld):
 * mark functions RT_USER_TEXT, constants RT_USER_RODATA and variables
 * RT_USER_DATA.  The linker puts them on pages of their own, between
 * __user_text_start/__user_text_end and __user_data_start/__user_data_end,
 * so that a guest with paging can map exactly those pages user-accessible.
 * Code in them must not call kernel functions or use string literals
 * (gcc puts those in .rodata): declare strings as RT_USER_RODATA arrays,
 * and use the always-inline rt_sysN() wrappers below.
 */
#ifndef RT_USER_H
#define RT_USER_H

#include <stdint.h>

struct rt_frame;

#define RT_USER_TEXT   __attribute__((section(".user.text"), noinline))
#define RT_USER_RODATA __attribute__((section(".user.rodata")))
#define RT_USER_DATA   __attribute__((section(".user.data")))

extern uint8_t __user_text_start[], __user_text_end[];
extern uint8_t __user_data_start[], __user_data_end[];

/* Map the user sections into pd: text user read-only, data user writable
 * (4 KiB identity mappings). */
void rt_user_map_sections(uint32_t *pd);

/*
 * Run user code: IRET to RT_UCODE:eip with stack RT_UDATA:esp and EFLAGS
 * `eflags` (bit 1 is forced on; give EFL_IF for interrupts, EFL_IOPL(3)
 * for IOPL 3).  Returns the value a handler passes to rt_user_return().
 * Traps from ring 3 run on the stack TSS.ESP0 points to (the runtime's
 * trap stack unless changed), not on the stack rt_user_run was called on.
 */
int rt_user_run(uint32_t eip, uint32_t esp, uint32_t eflags);
/* From a handler (ring 0): abandon the user program and make rt_user_run
 * return `value`.  Interrupts stay as they were in rt_user_run's caller. */
void rt_user_return(int value) __attribute__((noreturn));
/* The bare IRET to ring 3 used by rt_user_run. */
void rt_enter_ring3(uint32_t eip, uint32_t esp, uint32_t eflags) __attribute__((noreturn));

/* ---- system calls ------------------------------------------------------- */
#define RT_SYSCALL_VECTOR 0x80
#define RT_SYSCALL_MAX    32

/* Calling convention: EAX = number, arguments in EBX, ECX, EDX, ESI, EDI;
 * the handler puts the result in f->eax.  An unknown number returns -1. */
typedef void (*rt_syscall_fn)(struct rt_frame *f);

/* Install the INT 0x80 gate (interrupt gate, DPL 3) and the dispatcher,
 * with two built-in calls:
 *   RT_SYS_EXIT  (code)        rt_user_return(code)
 *   RT_SYS_WRITE (buf, len)    write len bytes to the console; returns len */
void rt_syscall_init(void);
void rt_syscall_set(unsigned nr, rt_syscall_fn fn);

#define RT_SYS_EXIT  0
#define RT_SYS_WRITE 1

#define RT_SYS_INLINE static inline __attribute__((always_inline))

RT_SYS_INLINE uint32_t rt_sys0(uint32_t nr)
{
    uint32_t r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(nr) : "memory");
    return r;
}

RT_SYS_INLINE uint32_t rt_sys1(uint32_t nr, uint32_t a)
{
    uint32_t r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(nr), "b"(a) : "memory");
    return r;
}

RT_SYS_INLINE uint32_t rt_sys2(uint32_t nr, uint32_t a, uint32_t b)
{
    uint32_t r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(nr), "b"(a), "c"(b) : "memory");
    return r;
}

RT_SYS_INLINE uint32_t rt_sys3(uint32_t nr, uint32_t a, uint32_t b, uint32_t c)
{
    uint32_t r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
    return r;
}

#endif /* RT_USER_H */
