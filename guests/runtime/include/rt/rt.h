/*
 * rt/rt.h - the dbt guest runtime: everything a guest normally needs.
 *
 * A guest provides `int main(void)`.  The platform start code (runtime/pc)
 * sets up a stack, zeroes .bss, initialises the serial port, records the
 * Multiboot information and then calls main(); main's return value is passed
 * to exit().
 *
 * Freestanding: there is no libc.  The functions below are the whole C
 * library a guest gets.  All output goes to the COM1 serial port, byte for
 * byte ("\n" is sent as a single LF, never CR LF).
 */
#ifndef RT_RT_H
#define RT_RT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define RT_NORETURN  __attribute__((noreturn))
#define RT_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- console output (serial, see lib/printf.c) ------------------------ */

/*
 * printf-style formatting.  Conversions: %s %c %d %i %u %x %X %p %%.
 * Flags/width: '-' (left-justify), '0' (zero pad) and a decimal width, e.g.
 * %08x, %-10s, %5d.  Length modifiers 'l' and 'z' are accepted (no-ops on
 * i386); 64-bit values are not supported (print them as two %08x halves).
 * Returns the number of characters produced.
 */
int printf(const char *fmt, ...) RT_PRINTF(1, 2);
int vprintf(const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...) RT_PRINTF(3, 4);
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int putchar(int c);
int puts(const char *s);          /* writes s and a "\n" */

/* ---- machine control (platform) --------------------------------------- */

/*
 * End the machine: writes `code` (32-bit OUT) to the isa-debug-exit port
 * 0xF4, so QEMU/dbt exit with status (code << 1) | 1.  If no such device
 * exists the CPU halts forever.
 */
void exit(int code) RT_NORETURN;

/* ---- boot information (lib/cmdline.c, platform) ----------------------- */

/* The Multiboot magic found in EAX at entry (0x2BADB002 when booted by a
 * Multiboot loader) and the info structure pointer found in EBX. */
extern uint32_t rt_boot_magic;
extern const struct multiboot_info *rt_boot_info;

/* The kernel command line ("" if the loader gave none). */
const char *rt_cmdline(void);

/*
 * Look up `key=N` among the space-separated words of the command line and
 * return N (decimal, or hex with 0x).  Returns `def` if the key is absent or
 * malformed.  Example: rt_cmdline_uint("scale", 1).
 */
unsigned rt_cmdline_uint(const char *key, unsigned def);

/* The iteration count of a microbenchmark: `n=N` on the command line, or
 * `def` (rt_cmdline_uint("n", def)). */
unsigned rt_cmdline_n(unsigned def);

/* ---- strings and memory (lib/string.c) -------------------------------- */
/* gcc may emit calls to memcpy/memset/memmove/memcmp itself. */

void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);

/* ---- arithmetic helpers (lib/div64.c) ---------------------------------- */

/*
 * 64-bit unsigned division without libgcc: returns n / d and, if rem is not
 * NULL, stores n % d.  Never write `/` or `%` on 64-bit values in guest C:
 * gcc would call __udivdi3, which does not exist here (link error).
 */
uint64_t rt_udivmod64(uint64_t n, uint64_t d, uint64_t *rem);

#include "multiboot.h"

#endif /* RT_RT_H */
