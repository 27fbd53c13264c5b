/*
 * exceptions/exceptions.h - GDT entries and addresses shared by the C driver
 * and the assembly test snippets.
 */
#ifndef EXCEPTIONS_H
#define EXCEPTIONS_H

#include <rt/desc.h>

#define SEL_NP_DATA   RT_SEL(6, 0)   /* data segment, not present */
#define SEL_RO_DATA   RT_SEL(7, 0)   /* read-only data, flat */
#define SEL_SMALL     RT_SEL(8, 0)   /* writable data, byte limit 0xFFF */
#define SEL_SS_64M    RT_SEL(9, 0)   /* writable data, base 0, limit 64 MiB (a stack) */
#define SEL_NP_STACK  RT_SEL(10, 0)  /* writable data, not present (for SS) */
#define SEL_CONFORM   RT_SEL(11, 0)  /* ring-0 conforming code, flat (the #TS gate) */
#define SEL_BEYOND    0x0100         /* index 32: past the GDT limit (0xFF) */

/* Test pages (paging on). */
#define VA_NOT_PRESENT  0x80000000u
#define VA_SUPER_RO     0x80001000u   /* supervisor, read-only */
#define VA_USER_RO      0x80002000u   /* user, read-only */
#define VA_NO_CODE      0x80003000u   /* not present: a jump target */

#define TSS_SS0_OFFSET  8             /* offsetof(struct rt_tss, ss0) */

#endif
